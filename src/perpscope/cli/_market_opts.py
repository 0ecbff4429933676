"""Options shared by the market command groups (funding, oi, basis, cvd)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from perpscope.cli._common import Format
from perpscope.cli._common import emit_sections as emit_sections
from perpscope.errors import UsageError

if TYPE_CHECKING:
    from perpscope.services.markets import MarketQuery

__all__ = [
    "AssetOpt",
    "FormatOpt",
    "InstrumentOpt",
    "SinceOpt",
    "VenueOpt",
    "emit_sections",
    "query",
]

VenueOpt = Annotated[
    list[str] | None, typer.Option("--venue", help="Venue id (repeatable; default: all).")
]
InstrumentOpt = Annotated[
    str | None, typer.Option("--instrument", help="One canonical instrument, e.g. BTC-USDT-PERP.")
]
AssetOpt = Annotated[
    str | None, typer.Option("--asset", help="One asset (all its instruments), e.g. BTC.")
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since", help="Only from this UTC time on (ISO 8601: 2024-01-01 or ...T08:00Z)."
    ),
]
FormatOpt = Annotated[Format, typer.Option("--format", help="Output format.")]


def parse_since(text: str | None) -> datetime | None:
    """An ISO 8601 date or time as an aware UTC datetime (naive means UTC)."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"bad --since {text!r}: use ISO 8601, e.g. 2024-01-01 or 2024-01-01T08:00Z"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def query(
    venue: list[str] | None, instrument: str | None, asset: str | None, since: str | None
) -> MarketQuery:
    """The service query for the shared options (raises ``UsageError`` on bad values)."""
    from perpscope.services.markets import MarketQuery

    return MarketQuery.make(venue, instrument, asset, parse_since(since))

