"""``perpscope oi``: open-interest summary and OI divergence."""

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

__all__ = ["app"]

app = typer.Typer(
    help="Open interest: changes, spikes, quadrants, share and divergence.", no_args_is_help=True
)

TimeframeOpt = Annotated[str, typer.Option("--timeframe", help="Candle timeframe used for price.")]


@app.command("summary")
def summary(
    ctx: typer.Context,
    venue: VenueOpt = None,
    instrument: InstrumentOpt = None,
    asset: AssetOpt = None,
    since: SinceOpt = None,
    timeframe: TimeframeOpt = "1h",
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Latest OI per series: 24h change, 24h/7d ratio, spike, alert, percentile, share, quadrant."""
    from perpscope.cli import _columns
    from perpscope.services.markets import oi_summary_report
    frame = oi_summary_report(
        state(ctx).lake(), query(venue, instrument, asset, since), timeframe=timeframe
    )
    from perpscope.services.oi_totals import asset_totals

    emit_sections({"assets": asset_totals(frame), "venues": frame}, fmt, _columns.OI_SUMMARY)


@app.command("divergence")
def divergence(
    ctx: typer.Context,
    venue: VenueOpt = None,
    instrument: InstrumentOpt = None,
    asset: AssetOpt = None,
    since: SinceOpt = None,
    window_h: Annotated[
        float, typer.Option("--window-h", min=1, help="Divergence window, hours.")
    ] = 72.0,
    min_oi_drop: Annotated[
        float,
        typer.Option("--min-oi-drop", min=0, help="Least OI fall over the window (0.08 = 8%)."),
    ] = 0.08,
    min_assets: Annotated[
        int, typer.Option("--min-assets", min=1, help="Assets for market-wide.")
    ] = 2,
    timeframe: TimeframeOpt = "1h",
    tail: Annotated[
        int, typer.Option("--tail", min=0, help="Only the last N rows (0 = all).")
    ] = 50,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Price at a new extreme while OI declines: ratio Y/X, guards, grade and market-wide form."""
    from perpscope.cli import _columns
    from perpscope.services.markets import oi_divergence_report
    live, market = oi_divergence_report(
        state(ctx).lake(),
        query(venue, instrument, asset, since),
        window_h=window_h,
        min_oi_drop=min_oi_drop,
        min_assets=min_assets,
        timeframe=timeframe,
    )
    if tail:
        live, market = live.tail(tail), market.tail(tail)
    emit_sections({"divergences": live, "market_wide": market}, fmt, _columns.OI_DIVERGENCE)
