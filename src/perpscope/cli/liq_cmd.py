"""``perpscope heatmap``, ``perpscope cascades`` and ``perpscope liquidations``.

The ESTIMATED liquidation heatmap and map (with clusters, the asymmetry read and the nearest dense
cluster), the cascade detector, and REALISED liquidation flows. Heavy libraries and the services
are imported inside the commands so the CLI starts fast.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from perpscope.cli._common import Format, state

if TYPE_CHECKING:
    import polars as pl

__all__ = ["cascades", "heatmap", "liquidations", "money", "pct"]

VenueArg = Annotated[str, typer.Option("--venue", help="Venue id, e.g. binance or sim1.")]
InstrumentArg = Annotated[
    str, typer.Option("--instrument", help="Canonical instrument, e.g. BTC-USDT-PERP.")
]
FormatArg = Annotated[Format, typer.Option("--format", help="Output format.")]


def _absolute(text: str | None, option: str) -> datetime | None:
    """An ISO time option as an aware UTC datetime (see :func:`_market_opts.parse_at`)."""
    from perpscope.cli._market_opts import parse_at

    return parse_at(text, option)


def money(usd: float | None) -> str:
    """USD for a trader: ``$4.42M``, ``$950.0K``, ``$12``."""
    if usd is None or usd != usd:
        return ""
    a = abs(usd)
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if a >= div:
            return f"{'-' if usd < 0 else ''}${a / div:.2f}{unit}"
    return f"{'-' if usd < 0 else ''}${a:,.0f}"


def pct(value: float | None, digits: int = 2) -> str:
    """A percentage already in percent units, signed: ``+1.25%``."""
    if value is None or value != value:
        return ""
    return f"{value:+.{digits}f}%"


def _px(value: float | None) -> str:
    from perpscope.formats import fmt_price

    return "" if value is None else fmt_price(value)


def _cluster_rows(clusters: pl.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "price": _px(r["price"]),
            "side": f"{r['side']} liquidations",
            "notional (ESTIMATED)": money(r["notional_usd"]),
            "distance": pct(r["distance_pct"]),
            "density": f"{r['density']:.1f}x",
            "band": f"{_px(r['low_px'])} - {_px(r['high_px'])}",
        }
        for r in clusters.iter_rows(named=True)
    ]


def _numbers(text: str, option: str) -> tuple[float, ...]:
    from perpscope.errors import UsageError

    try:
        out = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UsageError(f"{option} {text!r}: give comma-separated numbers") from None
    if not out or not all(x == x and abs(x) != float("inf") for x in out):
        raise UsageError(f"{option} {text!r}: give comma-separated finite numbers")
    return out


def estimator_params(
    leverages: str | None,
    weights: str | None,
    entry_price: str | None,
    split: str | None,
    half_life: float | None,
    bin_pct: str | None,
    config: Any = None,
    turnover: float | None = None,
) -> Any:
    """The estimator's parameters: the defaults, then the ``[heatmap]`` configuration, then the
    options given (None when nothing changes them).

    Raises:
        UsageError: a bad value (named), e.g. a weight count that does not match the tiers.
    """
    from dataclasses import replace

    from perpscope.analytics.liquidations import HeatmapParams
    from perpscope.cli._market_opts import percent
    from perpscope.errors import UsageError

    changes: dict[str, Any] = {}
    if config is not None:
        pairs = (("leverages", config.leverages), ("weights", config.weights),
                 ("entry", config.entry_price), ("split", config.split),
                 ("bin_pct", config.bin_pct))  # fmt: skip
        changes.update({k: v for k, v in pairs if v is not None})
        if config.half_life_bars is not None:
            changes["half_life_bars"] = config.half_life_bars or None
        if config.turnover_half_life_h is not None:
            changes["turnover_half_life_h"] = config.turnover_half_life_h or None
    given = (leverages, weights, entry_price, split, half_life, bin_pct, turnover)
    if all(v is None for v in given) and not changes:
        return None
    p = HeatmapParams()
    if leverages is not None:
        changes["leverages"] = _numbers(leverages, "--leverages")
        if weights is None:
            raise UsageError("--leverages needs --weights (one per tier)")
    if weights is not None:
        changes["weights"] = _numbers(weights, "--weights")
    if entry_price is not None:
        if entry_price not in ("typical", "close", "vwap", "ohlc4"):
            raise UsageError(f"--entry-price {entry_price!r}: use typical, close, vwap or ohlc4")
        changes["entry"] = entry_price
    if split is not None:
        if split not in ("taker", "long_short", "candle", "neutral"):
            raise UsageError(f"--split {split!r}: use taker, long_short, candle or neutral")
        changes["split"] = split
    if half_life is not None:
        changes["half_life_bars"] = half_life or None
    if turnover is not None:
        changes["turnover_half_life_h"] = turnover or None
    if bin_pct is not None:
        changes["bin_pct"] = percent(bin_pct, "--bin-pct")
    try:
        return replace(p, **changes)
    except ValueError as exc:
        raise UsageError(f"estimator settings ([heatmap] and options): {exc}") from None


def heatmap(
    ctx: typer.Context,
    venue: VenueArg,
    instrument: InstrumentArg,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Map as of this UTC time (ISO 8601); default: the last bar."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also draw the heatmap to FILE.png or FILE.html (plotly)."),
    ] = None,
    timeframe: Annotated[str, typer.Option("--timeframe", help="Bar length of the input.")] = "1h",
    days: Annotated[
        float, typer.Option("--days", min=1, help="Days of history the picture shows.")
    ] = 30.0,
    entry: Annotated[
        float | None, typer.Option("--entry", help="Trade helper: planned entry price.")
    ] = None,
    target: Annotated[
        float | None, typer.Option("--target", help="Trade helper: planned target price.")
    ] = None,
    liq_px: Annotated[
        float | None,
        typer.Option("--liq-px", help="Trade helper: your position's liquidation price."),
    ] = None,
    leverages: Annotated[
        str | None,
        typer.Option("--leverages", help="Estimator: leverage tiers, e.g. 5,10,25,50,100."),
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights", help="Estimator: share of new notional per tier, e.g. 40,30,15,10,5."
        ),
    ] = None,
    entry_price: Annotated[
        str | None,
        typer.Option("--entry-price", help="Estimator: typical, close, vwap or ohlc4."),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option("--split", help="Estimator: taker, long_short, candle or neutral."),
    ] = None,
    half_life: Annotated[
        float | None,
        typer.Option("--half-life", min=0.0, help="Estimator: level decay half-life in bars."),
    ] = None,
    turnover: Annotated[
        float | None,
        typer.Option(
            "--turnover",
            min=0.0,
            help="Estimator: positions' turnover half-life in hours (default 72; 0: never).",
        ),
    ] = None,
    bin_pct: Annotated[
        str | None, typer.Option("--bin-pct", help="Estimator: price bin width, e.g. 0.1%.")
    ] = None,
    fmt: FormatArg = Format.TABLE,
) -> None:
    """ESTIMATED liquidation map and heatmap: levels, clusters, asymmetry, trade helper.

    The estimator's settings (docs/liquidation-heatmap.md) default to the frozen, scored ones;
    --leverages/--weights/--entry-price/--split/--half-life/--turnover/--bin-pct change them for
    this map.
    """
    from perpscope.cli._common import emit, err_console
    from perpscope.errors import UsageError
    from perpscope.services.liquidations import TradePlan, heatmap_report

    when = _absolute(at, "--at")
    plan = None
    if entry is not None or target is not None:
        if entry is None or target is None:
            raise UsageError("the trade helper needs both --entry and --target")
        plan = TradePlan(entry, target, liq_px)
    elif liq_px is not None:
        raise UsageError("--liq-px goes with --entry and --target")
    params = estimator_params(
        leverages,
        weights,
        entry_price,
        split,
        half_life,
        bin_pct,
        state(ctx).config.heatmap,
        turnover,
    )
    report = heatmap_report(
        state(ctx).lake(), venue, instrument, at=when, timeframe=timeframe, plan=plan,
        params=params,
    )  # fmt: skip
    if out is not None:
        from perpscope.services.liq_render import render_heatmap

        written = render_heatmap(report, out, days=days)
        err_console.print(f"wrote {written} (ESTIMATED heatmap)")
    if fmt is Format.JSON:
        emit(report.to_json(), "json")
        return
    a = report.asymmetry
    summary: dict[str, object] = {
        "label": "ESTIMATED (no venue publishes liquidation levels)",
        "series": f"{report.venue} {report.instrument}",
        "map at": report.ts,
        "price": _px(report.price),
        f"long liquidations within {a.window_pct:.0%} below": money(a.long_below_usd),
        f"short liquidations within {a.window_pct:.0%} above": money(a.short_above_usd),
        "read": a.read,
        "nearest dense cluster": (
            "none within 2%"
            if report.nearest is None
            else f"{_px(report.nearest['price'])} ({pct(report.nearest['distance_pct'])}, "
            f"{money(report.nearest['notional_usd'])})"
        ),
    }
    if report.notes:
        summary["notes"] = "; ".join(report.notes)
    emit(summary, "table", title="liquidation map (ESTIMATED)")
    emit(_cluster_rows(report.clusters), "table", title="clusters (ESTIMATED), densest first")
    if report.trade is not None:
        t = report.trade
        inside = t["own_liq_in_cluster"]
        verdict = {
            "entry -> target": f"{_px(t['entry_px'])} -> {_px(t['target_px'])}",
            "clusters on the way": str(len(t["clusters_between"])),
            "your liquidation price": (
                "not given"
                if t["own_liq_px"] is None
                else f"{_px(t['own_liq_px'])}: "
                + (
                    "outside every cluster"
                    if inside is None
                    else f"INSIDE the {inside['side']}-liquidation cluster at "
                    f"{_px(inside['price'])} ({money(inside['notional_usd'])}): it would be swept "
                    "with the crowd's"
                )
            ),
        }
        emit(verdict, "table", title="trade helper (ESTIMATED map)")
        if t["clusters_between"]:
            import polars as pl

            emit(
                _cluster_rows(pl.DataFrame(t["clusters_between"])),
                "table",
                title="clusters between entry and target, nearest entry first",
            )


def cascades(
    ctx: typer.Context,
    venue: VenueArg,
    instrument: InstrumentArg,
    since: Annotated[
        str | None, typer.Option("--since", help="Only climaxes from this UTC time on (ISO 8601).")
    ] = None,
    fmt: FormatArg = Format.TABLE,
) -> None:
    """Liquidation cascades: initiation, acceleration, climax, exhaustion and the retrace."""
    from perpscope.cli._common import emit
    from perpscope.services.liquidations import cascades_report

    found = cascades_report(state(ctx).lake(), venue, instrument, since=_absolute(since, "--since"))
    if fmt is Format.JSON:
        emit(found, "json")
        return
    rows = [
        {
            "climax": r["climax_ts"],
            "climax px": _px(r["climax_px"]),
            "side liquidated": r["side"],
            "move": pct(r["move_pct"]),
            "volume": f"{r['volume_x']:.1f}x avg",
            "liquidated (REALISED)": money(r["liquidated_usd"]),
            "retrace 4h": "" if r["retrace_4h"] is None else f"{r['retrace_4h']:.0%}",
            "initiation": r["initiation_ts"],
            "exhaustion": r["exhaustion_ts"],
        }
        for r in found.iter_rows(named=True)
    ]
    if not rows:
        emit(found, "table", title="cascades")
        return
    emit(rows, "table", title=f"cascades {venue} {instrument}")


def liquidations(
    ctx: typer.Context,
    venue: Annotated[
        list[str] | None, typer.Option("--venue", help="Venue id (repeatable; default: all).")
    ] = None,
    instrument: Annotated[
        str | None, typer.Option("--instrument", help="One instrument, e.g. BTC-USDT-PERP.")
    ] = None,
    window: Annotated[str, typer.Option("--window", help="1h, 4h or 24h.")] = "24h",
    fmt: FormatArg = Format.TABLE,
) -> None:
    """REALISED liquidations by venue and side over the last window (to the latest event)."""
    from perpscope.cli._common import emit
    from perpscope.services.liquidations import liquidations_report

    flows = liquidations_report(state(ctx).lake(), venue, instrument, window=window)
    if fmt is Format.JSON:
        emit(flows, "json")
        return
    rows = [
        {
            "venue": r["venue"],
            "instrument": r["instrument"],
            "side liquidated": r["side"],
            "events": r["events"],
            "notional (REALISED)": money(r["notional_usd"]) + (" *" if r["lower_bound"] else ""),
            "long share": f"{r['long_share']:.0%}",
            "window": f"{r['from_ts']:%Y-%m-%d %H:%M}Z to {r['to_ts']:%Y-%m-%d %H:%M}Z",
        }
        for r in flows.iter_rows(named=True)
    ]
    if not rows:
        emit(flows, "table", title=f"liquidations {window} (REALISED)")
        return
    emit(rows, "table", title=f"liquidations, last {window} (REALISED)")
    if any(r["lower_bound"] for r in flows.iter_rows(named=True)):
        from perpscope.cli._common import out_console

        out_console.print(
            "* lower bound: the venue's feed is sampled (Binance sends at most one liquidation "
            "per symbol per second), so its totals undercount",
            markup=False,
        )
