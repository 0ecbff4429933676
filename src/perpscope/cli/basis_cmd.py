"""``perpscope basis``: perp premium to spot and index, and the basis-trade status."""

from __future__ import annotations

from typing import Annotated

import typer

from perpscope.cli._common import Format, state
from perpscope.cli._market_opts import (
    AssetOpt,
    FormatOpt,
    InstrumentOpt,
    SinceOpt,
    VenueOpt,
    emit_sections,
    query,
)

__all__ = ["basis"]


def basis(
    ctx: typer.Context,
    venue: VenueOpt = None,
    instrument: InstrumentOpt = None,
    asset: AssetOpt = None,
    since: SinceOpt = None,
    timeframe: Annotated[str, typer.Option("--timeframe", help="Candle timeframe.")] = "1h",
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Perp premium to spot and index (annualised), basis-trade status, dated-futures basis."""
    from perpscope.cli import _columns
    from perpscope.services.markets import basis_report
    perps, futures = basis_report(
        state(ctx).lake(), query(venue, instrument, asset, since), timeframe=timeframe
    )
    emit_sections({"perps": perps, "futures": futures}, fmt, _columns.BASIS)
