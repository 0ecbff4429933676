"""Pure domain layer: ids, enums and table schemas. Imports nothing else of perpscope."""

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
