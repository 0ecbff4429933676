"""perpscope: derivatives intelligence for crypto traders.

The curated public API: open a store and read its tables as polars frames, query it with SQL, and
use the pure analytics and domain functions directly.

The names load on first use (module ``__getattr__``), so ``import perpscope`` and the ``perpscope``
command start without loading Delta Lake, DuckDB or polars until they are needed.
"""

import importlib
import typing

__version__ = "0.1.0"

if typing.TYPE_CHECKING:
    from perpscope.domain.symbols import Instrument, parse_instrument, parse_venue
    from perpscope.store.lake import Lake
    from perpscope.store.query import open_store

__all__ = [
    "Instrument",
    "Lake",
    "__version__",
    "open_store",
    "parse_instrument",
    "parse_venue",
]

_LAZY = {
    "Instrument": "perpscope.domain.symbols",
    "parse_instrument": "perpscope.domain.symbols",
    "parse_venue": "perpscope.domain.symbols",
    "Lake": "perpscope.store.lake",
    "open_store": "perpscope.store.query",
}


def __getattr__(name: str) -> object:
    """Load a public name from its module on first access."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'perpscope' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
