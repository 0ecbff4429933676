"""perpscope: derivatives intelligence for crypto traders.

The curated public API: open a store and read its tables as polars frames, query it with SQL, and
use the pure analytics and domain functions directly.
"""

import importlib as _importlib
import typing as _typing

__version__ = "0.1.0"

if _typing.TYPE_CHECKING:
    from perpscope.domain.symbols import Instrument, parse_instrument, parse_venue
    from perpscope.store.lake import Lake
    from perpscope.store.query import open_store

# Loaded on first use, so that ``import perpscope`` (and the CLI's entry point, which a Ctrl-C may
# interrupt at any moment) does not load polars, deltalake and DuckDB up front.
_LAZY = {
    "Instrument": "perpscope.domain.symbols",
    "parse_instrument": "perpscope.domain.symbols",
    "parse_venue": "perpscope.domain.symbols",
    "Lake": "perpscope.store.lake",
    "open_store": "perpscope.store.query",
}

__all__ = [
    "Instrument",
    "Lake",
    "__version__",
    "open_store",
    "parse_instrument",
    "parse_venue",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'perpscope' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
