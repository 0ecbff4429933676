"""``perpscope basis``: perp premium to spot and index, and the basis-trade status."""

from __future__ import annotations

import typer

from perpscope.cli._common import Format, state
from perpscope.cli._market_opts import (
    AssetOpt,
    FormatOpt,
    InstrumentOpt,
    SinceOpt,
    Timeframe,
    TimeframeOpt,
    UntilOpt,
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
    until: UntilOpt = None,
    timeframe: TimeframeOpt = Timeframe.H1,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Perp premium to spot and index (annualised), basis-trade status, dated-futures basis."""
    from perpscope.cli import _columns
    from perpscope.services.markets import basis_report

    perps, futures = basis_report(
        state(ctx).lake(), query(venue, instrument, asset, since, until), timeframe=timeframe.value
    )
    emit_sections({"perps": perps, "futures": futures}, fmt, _columns.BASIS)
