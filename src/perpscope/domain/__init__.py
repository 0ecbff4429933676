"""Pure domain layer: ids, enums and table schemas. Imports nothing else of perpscope.

The names load on first use (module ``__getattr__``): the ids of ``domain.symbols`` are light,
while the schemas of ``domain.schema`` need pyarrow, which the CLI loads only when a command
touches the store.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from perpscope.domain.schema import TABLES, Column, TableSpec, table_spec
    from perpscope.domain.symbols import (
        COLLECTION_VENUES,
        SIM_VENUES,
        Instrument,
        InstrumentKind,
        OptionRight,
        parse_instrument,
        parse_venue,
    )

_LAZY = {
    "TABLES": "perpscope.domain.schema",
    "Column": "perpscope.domain.schema",
    "TableSpec": "perpscope.domain.schema",
    "table_spec": "perpscope.domain.schema",
    "COLLECTION_VENUES": "perpscope.domain.symbols",
    "SIM_VENUES": "perpscope.domain.symbols",
    "Instrument": "perpscope.domain.symbols",
    "InstrumentKind": "perpscope.domain.symbols",
    "OptionRight": "perpscope.domain.symbols",
    "parse_instrument": "perpscope.domain.symbols",
    "parse_venue": "perpscope.domain.symbols",
}

__all__ = [
    "COLLECTION_VENUES",
    "SIM_VENUES",
    "TABLES",
    "Column",
    "Instrument",
    "InstrumentKind",
    "OptionRight",
    "TableSpec",
    "parse_instrument",
    "parse_venue",
    "table_spec",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'perpscope.domain' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
