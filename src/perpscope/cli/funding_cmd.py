"""``perpscope funding``: cross-venue table, history, extremes, arbitrage and venue spreads."""

from __future__ import annotations

from typing import Annotated

import typer

from perpscope.cli._common import Format, emit, err_console, state
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

app = typer.Typer(
    help="Funding rates: normalised, aggregated, extremes and arbitrage.", no_args_is_help=True
)

ThresholdOpt = Annotated[
    str,
    typer.Option(
        "--threshold", help="Extreme level per 8h in percent: 0.05 and 0.05% both mean 0.05%."
    ),
]


@app.command("table")
def table(
    ctx: typer.Context,
    venue: VenueOpt = None,
    instrument: InstrumentOpt = None,
    asset: AssetOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Latest funding per venue (8h-equivalent and annualised) and the OI-weighted aggregate."""
    from perpscope.cli import _columns
    from perpscope.services.markets import funding_table_report

    result = funding_table_report(state(ctx).lake(), query(venue, instrument, asset, since, until))
    if result.stale_note and fmt is Format.TABLE:
        err_console.print(result.stale_note, markup=False)
    emit_sections({"assets": result.assets, "venues": result.venues}, fmt, _columns.FUNDING_TABLE)


@app.command("history")
def history(
    ctx: typer.Context,
    venue: VenueOpt = None,
    instrument: InstrumentOpt = None,
    asset: AssetOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    zscore_window_h: Annotated[
        float, typer.Option("--zscore-window-h", min=1, help="z-score window, hours.")
    ] = 168.0,
    percentile_window_h: Annotated[
        float, typer.Option("--percentile-window-h", min=1, help="Percentile window, hours.")
    ] = 720.0,
    tail: Annotated[
        int, typer.Option("--tail", min=0, help="Only the last N rows per series (0 = all).")
    ] = 24,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Settlements with accumulated funding, z-score, percentile and acceleration."""
    from perpscope.cli import _columns
    from perpscope.services.markets import (
        funding_history_report,
    )

    frame = funding_history_report(
        state(ctx).lake(),
        query(venue, instrument, asset, since, until),
        zscore_window_h=zscore_window_h,
        percentile_window_h=percentile_window_h,
    )
    if tail:
        frame = frame.group_by("venue", "instrument", maintain_order=True).tail(tail)
    emit(frame, fmt.value, title="funding history", spec=_columns.FUNDING_HISTORY)


@app.command("extremes")
def extremes(
    ctx: typer.Context,
    venue: VenueOpt = None,
    instrument: InstrumentOpt = None,
    asset: AssetOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    threshold: ThresholdOpt = "0.05",
    min_venues: Annotated[
        int, typer.Option("--min-venues", help="Venues extreme at once (N).")
    ] = 2,
    min_duration_h: Annotated[
        float, typer.Option("--min-duration-h", min=0, help="Shortest episode, hours.")
    ] = 24.0,
    by_year: Annotated[
        bool, typer.Option("--by-year/--no-by-year", help="Print only the count per year.")
    ] = False,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Episodes of extreme funding (>= threshold on N venues for >= 24h), graded."""
    from perpscope.services.markets import (
        funding_extremes_report,
    )

    episodes, per_year = funding_extremes_report(
        state(ctx).lake(),
        query(venue, instrument, asset, since, until),
        threshold_8h=percent(threshold, "--threshold"),
        min_venues=min_venues,
        min_duration_h=min_duration_h,
    )
    if by_year:
        emit(per_year, fmt.value, title="extreme-funding episodes per year")
        return
    emit_sections({"episodes": episodes, "per_year": per_year}, fmt)


@app.command("arbitrage")
def arbitrage(
    ctx: typer.Context,
    venue: VenueOpt = None,
    instrument: InstrumentOpt = None,
    asset: AssetOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    min_spread: Annotated[
        str, typer.Option("--min-spread", help="Smallest 8h spread shown, percent (0.01 or 0.01%).")
    ] = "0",
    alert_spread: Annotated[
        str, typer.Option("--alert-spread", help="8h spread that raises the alert flag, percent.")
    ] = "0.03",
    top: Annotated[
        int, typer.Option("--top", min=0, help="Show the N widest pairs (0 = all).")
    ] = 20,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Venue pairs with the widest 8h-normalised funding spread and their annualised carry."""
    from perpscope.cli import _columns
    from perpscope.services.markets import (
        funding_arbitrage_report,
    )

    frame = funding_arbitrage_report(
        state(ctx).lake(),
        query(venue, instrument, asset, since, until),
        min_spread_8h=percent(min_spread, "--min-spread"),
        alert_spread_8h=percent(alert_spread, "--alert-spread"),
    )
    emit(
        frame.head(top) if top else frame,
        fmt.value,
        title="funding arbitrage",
        spec=_columns.ARBITRAGE,
    )


@app.command("spread")
def spread(
    ctx: typer.Context,
    venue_a: Annotated[str, typer.Argument(help="Venue A (spread = A - B).")],
    venue_b: Annotated[str, typer.Argument(help="Venue B.")],
    instrument: InstrumentOpt = None,
    asset: AssetOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    alert_spread: Annotated[
        str, typer.Option("--alert-spread", help="8h spread counted in share_at_alert, percent.")
    ] = "0.03",
    history: Annotated[
        bool, typer.Option("--history/--no-history", help="Also print every period.")
    ] = False,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Funding spread of venue A minus venue B per 8h period, summarised per asset and year."""
    from perpscope.cli import _columns
    from perpscope.services.markets import (
        funding_spread_report,
    )

    periods, summary = funding_spread_report(
        state(ctx).lake(),
        query(None, instrument, asset, since, until),
        venue_a,
        venue_b,
        alert_spread_8h=percent(alert_spread, "--alert-spread"),
    )
    sections = {"summary": summary}
    if history:
        sections["periods"] = periods
    emit_sections(sections, fmt, _columns.FUNDING_SPREAD)


@app.command("divergence")
def divergence(
    ctx: typer.Context,
    venue: VenueOpt = None,
    instrument: InstrumentOpt = None,
    asset: AssetOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    timeframe: TimeframeOpt = Timeframe.H1,
    window_h: Annotated[
        float,
        typer.Option("--window-h", min=1, help="Price-extreme and funding-mean window, hours."),
    ] = 168.0,
    min_gap_h: Annotated[
        float, typer.Option("--min-gap-h", min=0, help="Least separation of two highs, hours.")
    ] = 24.0,
    tail: Annotated[
        int, typer.Option("--tail", min=0, help="Only the last N rows (0 = all).")
    ] = 50,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """New 7-day price high while funding's 7-day mean is below its value at the prior high."""
    from perpscope.cli import _columns
    from perpscope.services.markets import (
        funding_divergence_report,
    )

    frame = funding_divergence_report(
        state(ctx).lake(),
        query(venue, instrument, asset, since, until),
        timeframe=timeframe.value,
        window_h=window_h,
        min_gap_h=min_gap_h,
    )
    emit(
        frame.tail(tail) if tail else frame,
        fmt.value,
        title="funding-price divergence",
        spec=_columns.FUNDING_DIVERGENCE,
    )
