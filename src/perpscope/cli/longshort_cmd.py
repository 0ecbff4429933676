"""``perpscope longshort``: the crowd against top traders, and long/short extremes."""

from __future__ import annotations

from typing import Annotated

import typer

from perpscope.cli._common import Format, state
from perpscope.cli._market_opts import (
    AssetOpt,
    FormatOpt,
    InstrumentOpt,
    SinceOpt,
    Timeframe,
    UntilOpt,
    VenueOpt,
    emit_sections,
    query,
)

__all__ = ["longshort"]


def longshort(
    ctx: typer.Context,
    venue: VenueOpt = None,
    instrument: InstrumentOpt = None,
    asset: AssetOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    period: Annotated[
        Timeframe | None, typer.Option("--period", help="Only this ratio period.")
    ] = None,
    window_h: Annotated[
        float, typer.Option("--window-h", min=1, help="Percentile window, hours.")
    ] = 720.0,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Latest global vs top-trader long/short ratios and each ratio's 30-day percentile."""
    from perpscope.cli import _columns
    from perpscope.services.markets import long_short_report

    compare, extremes = long_short_report(
        state(ctx).lake(),
        query(venue, instrument, asset, since, until),
        period=period.value if period else None,
        window_h=window_h,
    )
    emit_sections({"crowd_vs_top": compare, "extremes": extremes}, fmt, _columns.LONGSHORT)
