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
    Timeframe,
    TimeframeOpt,
    UntilOpt,
    VenueOpt,
    emit_sections,
    percent,
    query,
)

__all__ = ["app"]

MinOiUsdOpt = Annotated[
    float,
    typer.Option("--min-oi-usd", min=0, help="Smallest OI (USD) at the start of a change."),
]

app = typer.Typer(
    help="Open interest: changes, spikes, quadrants, share and divergence.", no_args_is_help=True
)


@app.command("summary")
def summary(
    ctx: typer.Context,
    venue: VenueOpt = None,
    instrument: InstrumentOpt = None,
    asset: AssetOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    timeframe: TimeframeOpt = Timeframe.H1,
    min_price_move: Annotated[
        str,
        typer.Option(
            "--min-price-move", help="Smallest 24h price move for a quadrant, percent (0.5)."
        ),
    ] = "0.5",
    min_oi_move: Annotated[
        str,
        typer.Option(
            "--min-oi-move", help="Smallest 24h OI move for a quadrant or wave, percent (0.5)."
        ),
    ] = "0.5",
    min_oi_usd: MinOiUsdOpt = 1e6,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Latest OI per series: 24h change, 24h/7d ratio, spike, alert, percentile, share, quadrant."""
    from perpscope.cli import _columns
    from perpscope.services.markets import oi_summary_report

    frame = oi_summary_report(
        state(ctx).lake(),
        query(venue, instrument, asset, since, until),
        timeframe=timeframe.value,
        min_price_move=percent(min_price_move, "--min-price-move"),
        min_oi_move=percent(min_oi_move, "--min-oi-move"),
        min_oi_usd=min_oi_usd,
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
    until: UntilOpt = None,
    window_h: Annotated[
        float, typer.Option("--window-h", min=1, help="Divergence window, hours.")
    ] = 72.0,
    min_oi_drop: Annotated[
        str,
        typer.Option("--min-oi-drop", help="Least OI fall over the window, percent (8 or 8%)."),
    ] = "8",
    min_assets: Annotated[
        int, typer.Option("--min-assets", min=1, help="Assets for market-wide.")
    ] = 2,
    min_price_move: Annotated[
        str,
        typer.Option("--min-price-move", help="Smallest price move over the window, percent (2)."),
    ] = "2",
    min_oi_usd: MinOiUsdOpt = 1e6,
    timeframe: TimeframeOpt = Timeframe.H1,
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
        query(venue, instrument, asset, since, until),
        window_h=window_h,
        min_oi_drop=percent(min_oi_drop, "--min-oi-drop"),
        min_assets=min_assets,
        timeframe=timeframe.value,
        min_price_move=percent(min_price_move, "--min-price-move"),
        min_oi_usd=min_oi_usd,
    )
    if tail:
        live, market = live.tail(tail), market.tail(tail)
    emit_sections({"divergences": live, "market_wide": market}, fmt, _columns.OI_DIVERGENCE)
