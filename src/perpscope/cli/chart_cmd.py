"""``perpscope regime``, ``perpscope structure``, ``perpscope profile``: chart reading by rules.

Heavy libraries (polars, numba, the services) are imported inside the commands so that the CLI
starts fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from perpscope.cli._common import Format, state
from perpscope.cli._market_opts import AssetOpt, FormatOpt, InstrumentOpt, SinceOpt, VenueOpt

__all__ = ["profile", "regime", "structure"]

TimeframeOpt = Annotated[
    str,
    typer.Option(
        "--timeframe", help="Bar timeframe (15m, 1h, 4h, 1d); finer stored bars are resampled."
    ),
]


def regime(
    ctx: typer.Context,
    venue: VenueOpt = None,
    instrument: InstrumentOpt = None,
    asset: AssetOpt = None,
    since: SinceOpt = None,
    timeframe: TimeframeOpt = "1h",
    adx_trend: Annotated[
        float, typer.Option("--adx-trend", min=0, max=100, help="ADX above which it trends.")
    ] = 30.0,
    tail: Annotated[
        int, typer.Option("--tail", min=0, help="Last N bars per series (0 = all).")
    ] = 1,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Regime per series: ATR, ADX and DIs, realised volatility, the label and its sizing rule.

    trending (ADX > 30): fade at half size or skip; ranging: full size, 2x ATR stops; volatile
    (non-trending, volatility in its top 20%): 1x ATR stops and faster profit-taking.
    """
    from perpscope.analytics.regime import RegimeParams
    from perpscope.cli._market_opts import emit_sections, query
    from perpscope.services.chart import regime_report

    frame = regime_report(
        state(ctx).lake(),
        query(venue, instrument, asset, since),
        timeframe=timeframe,
        params=RegimeParams(adx_trend=adx_trend),
        tail=tail,
    )
    emit_sections({"regime": frame}, fmt)


def structure(
    ctx: typer.Context,
    venue: VenueOpt = None,
    instrument: InstrumentOpt = None,
    asset: AssetOpt = None,
    since: SinceOpt = None,
    timeframe: TimeframeOpt = "1h",
    width: Annotated[
        int, typer.Option("--width", min=1, max=50, help="Swing width: bars on each side.")
    ] = 3,
    vol_mult: Annotated[
        float, typer.Option("--vol-mult", min=0.01, help="Volume multiple a spring/UTAD needs.")
    ] = 2.0,
    tolerance: Annotated[
        float,
        typer.Option("--zone-width", min=0.0001, max=0.2, help="Widest S/R zone (0.005 = 0.5%)."),
    ] = 0.005,
    events: Annotated[int, typer.Option("--events", min=1, help="Last N events per series.")] = 20,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Swings, swing failures, breaks of structure (BOS/CHoCH), springs/UTADs and S/R zones."""
    from perpscope.analytics.structure import StructureParams
    from perpscope.cli._market_opts import emit_sections, query
    from perpscope.services.chart import structure_report

    report = structure_report(
        state(ctx).lake(),
        query(venue, instrument, asset, since),
        timeframe=timeframe,
        params=StructureParams(width=width, vol_mult=vol_mult),
        tolerance=tolerance,
        events=events,
    )
    emit_sections({"swings": report.swings, "zones": report.zones, "events": report.events}, fmt)


def profile(
    ctx: typer.Context,
    venue: VenueOpt = None,
    instrument: InstrumentOpt = None,
    asset: AssetOpt = None,
    timeframe: TimeframeOpt = "1h",
    window_h: Annotated[
        float, typer.Option("--window-h", min=1, help="Profile window, hours back from the end.")
    ] = 168.0,
    bins: Annotated[int, typer.Option("--bins", min=3, max=1000, help="Price bins.")] = 50,
    value_area: Annotated[
        float, typer.Option("--value-area", min=0.01, max=1.0, help="Value area share.")
    ] = 0.70,
    show_bins: Annotated[
        bool, typer.Option("--bins-table/--no-bins-table", help="Also print every bin.")
    ] = False,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Volume profile: point of control, value area, high/low-volume nodes, session VWAP."""
    from perpscope.cli._market_opts import emit_sections, query
    from perpscope.services.chart import profile_report

    report = profile_report(
        state(ctx).lake(),
        query(venue, instrument, asset, None),
        timeframe=timeframe,
        window_h=window_h,
        bins=bins,
        value_area=value_area,
    )
    sections = {"profile": report.summary}
    if show_bins or fmt is Format.JSON:
        sections["bins"] = report.bins
    emit_sections(sections, fmt)
