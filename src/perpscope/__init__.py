"""perpscope: derivatives intelligence for crypto traders.

The curated public API: open a store and read its tables as polars frames, query it with SQL, and
use the pure analytics and domain functions directly.
"""

__version__ = "0.1.0"

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
