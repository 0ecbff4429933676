"""``perpscope cvd``: cumulative volume delta, perp and spot apart, and CVD-price divergence."""

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
    TimeframeOpt,
    UntilOpt,
    VenueOpt,
    emit_sections,
    query,
)

__all__ = ["cvd"]


def cvd(
    ctx: typer.Context,
    venue: VenueOpt = None,
    instrument: InstrumentOpt = None,
    asset: AssetOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    timeframe: TimeframeOpt = Timeframe.H1,
    window_h: Annotated[
        float, typer.Option("--window-h", min=1, help="Divergence window, hours.")
    ] = 168.0,
    tail: Annotated[
        int, typer.Option("--tail", min=0, help="Last N bars per series (0 = all).")
    ] = 24,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """CVD per series from taker volume, and where price and CVD diverge."""
    from perpscope.cli import _columns
    from perpscope.services.markets import cvd_report

    series, divergences = cvd_report(
        state(ctx).lake(),
        query(venue, instrument, asset, since, until),
        timeframe=timeframe.value,
        window_h=window_h,
    )
    if tail:
        series = series.group_by("venue", "instrument", maintain_order=True).tail(tail)
    emit_sections({"cvd": series, "divergences": divergences}, fmt, _columns.CVD)
