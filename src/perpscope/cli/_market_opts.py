"""Options shared by the market command groups (funding, oi, basis, cvd, longshort).

The conventions (repeatable ids, relative times, percent thresholds) are those of
:mod:`perpscope.services.filters`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from perpscope.cli._common import Format
from perpscope.cli._common import emit_sections as emit_sections
from perpscope.errors import UsageError
from perpscope.services.filters import MarketQuery, Timeframe, parse_percent, parse_time

__all__ = [
    "AssetOpt",
    "FormatOpt",
    "InstrumentOpt",
    "SinceOpt",
    "Timeframe",
    "TimeframeOpt",
    "UntilOpt",
    "VenueOpt",
    "emit_sections",
    "parse_at",
    "percent",
    "query",
]

VenueOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--venue", help="Venue id; repeatable or comma-separated (sim1,sim2). Default: all."
    ),
]
InstrumentOpt = Annotated[
    str | None, typer.Option("--instrument", help="One canonical instrument, e.g. BTC-USDT-PERP.")
]
AssetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--asset", help="Asset (all its instruments); repeatable or comma-separated (BTC,ETH)."
    ),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="From this time on: ISO (2024-01-05, 2024-01-05T08:00Z) or 7d, 24h, 90m, today, "
        "yesterday (counted back from the data's latest timestamp).",
    ),
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until",
        help="Before this time (exclusive; a date includes its whole day). Same forms as --since.",
    ),
]
TimeframeOpt = Annotated[
    Timeframe, typer.Option("--timeframe", help="Candle timeframe used for price.")
]
FormatOpt = Annotated[Format, typer.Option("--format", help="Output format.")]


def parse_at(text: str | None, option: str = "--at") -> datetime | None:
    """An ISO date or time option (``--at``) as an aware UTC datetime; relative forms are refused
    (an ``--at`` names one moment, not a window counted back from the data)."""
    if text is None:
        return None
    bound = parse_time(text, option)
    if bound.relative:
        raise UsageError(f"{option} takes an ISO date or time (e.g. 2024-01-05T08:00Z)")
    return bound.resolve(None)


def percent(text: str, option: str) -> float:
    """A percent option (``0.05`` or ``0.05%``, both 0.05%) as a fraction; exit 2 if bad."""
    return parse_percent(text, option)


def query(
    venue: list[str] | None,
    instrument: str | None,
    asset: list[str] | None,
    since: str | None,
    until: str | None = None,
) -> MarketQuery:
    """The service query for the shared options (raises ``UsageError`` on bad values)."""
    return MarketQuery.make(venue, instrument, asset, since, until)
