"""What each dashboard page shows: one call per service, shaped into tables and plotly figures.

The maths lives in the services; here the results are only selected and arranged. Every page is a
:class:`Page`, whose ``data`` is the page's JSON twin under ``/api/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from perpscope.errors import PerpscopeError, UsageError
from perpscope.formats import fmt_evidence
from perpscope.web.values import json_value, rows_of

if TYPE_CHECKING:
    import polars as pl

    from perpscope.store.lake import Lake

__all__ = ["Page", "Table", "assets_in", "simulated"]

EXTREME_8H = 0.0005
"""The playbook's extreme funding level, 0.05% per 8h: the heat colour saturates there."""


INFERNO = [[0.0, "#000004"], [0.2, "#320a5e"], [0.4, "#781c6d"], [0.6, "#bc3754"],
           [0.8, "#ed6925"], [0.9, "#fbb61a"], [1.0, "#fcffa4"]]  # fmt: skip
"""The heatmap's colour scale: matplotlib's inferno, as in ``perpscope heatmap``'s PNG."""


@dataclass(frozen=True, slots=True)
class Table:
    """A titled table; ``heat`` names a column whose cells are coloured by extremity."""

    title: str
    rows: list[dict[str, Any]]
    heat: str | None = None
    heat_scale: float = EXTREME_8H


@dataclass(slots=True)
class Page:
    """One page: its tables, charts (plotly figures as dicts), notes and JSON twin."""

    key: str
    title: str
    data: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    charts: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def simulated(lake: Lake) -> bool:
    """True for a demo store (its marker says so)."""
    try:
        return lake.exists() and bool(lake.marker().get("demo", False))
    except PerpscopeError:
        return False


def assets_in(lake: Lake) -> list[str]:
    """The assets with perpetual funding in the store, sorted."""
    if not lake.exists() or not lake.has_table("funding"):
        return []
    import polars as pl

    frame = lake.read("funding", ["instrument"]).select(
        pl.col("instrument").str.split("-").list.first().alias("asset")
    )
    return sorted(set(frame["asset"].to_list()))


def _query(asset: str | None) -> Any:
    from perpscope.services.filters import MarketQuery

    return MarketQuery.make(assets=[asset] if asset else None)


def _lines(frame: pl.DataFrame, y: str, title: str, *, percent: bool = False) -> dict[str, Any]:
    """One line per venue and instrument of column ``y`` over ``ts`` (``percent``: a fraction)."""
    traces = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"{keys[0]} {keys[1]}",
            "x": part["ts"].to_list(),
            "y": part[y].to_list(),
        }
        for keys, part in frame.sort("ts").group_by(["venue", "instrument"], maintain_order=True)
    ]
    yaxis = {"tickformat": ".3%"} if percent else {}
    return {"data": traces, "layout": {"title": {"text": title}, "height": 380, "yaxis": yaxis}}


def funding_page(lake: Lake, asset: str | None) -> Page:
    """Cross-venue funding table (heat-coloured by extremity) and the history per venue."""
    from perpscope.services.funding_table import funding_table_report
    from perpscope.services.markets import funding_history_report

    q = _query(asset)
    table = funding_table_report(lake, q)
    history = funding_history_report(lake, q)
    page = Page("funding", "Funding")
    page.tables = [
        Table("OI-weighted aggregate per asset", rows_of(table.assets), heat="agg_rate_8h"),
        Table("Latest funding per venue (8h-equivalent)", rows_of(table.venues), heat="rate_8h"),
    ]
    if table.stale_note:
        page.notes.append(table.stale_note)
    if not history.is_empty():
        page.charts.append(_lines(history, "rate_8h", "Funding per 8h, by venue", percent=True))
        page.charts.append(_lines(history, "zscore", "Funding z-score (168h)"))
    page.data = {"assets": table.assets, "venues": table.venues, "history": history}
    return page


def oi_page(lake: Lake, asset: str | None) -> Page:
    """Open interest by venue: level, share, 24h change, quadrant; totals per asset."""
    from perpscope.services.markets import oi_summary_report
    from perpscope.services.oi_totals import asset_totals

    summary = oi_summary_report(lake, _query(asset))
    totals = asset_totals(summary) if not summary.is_empty() else summary
    page = Page("oi", "Open interest")
    page.tables = [
        Table("Totals per asset", rows_of(totals)),
        Table("By venue", rows_of(summary), heat="oi_change_24h", heat_scale=0.15),
    ]
    if not summary.is_empty():
        traces = [
            {
                "type": "bar",
                "name": venue,
                "x": [i.split("-")[0] for i in part["instrument"].to_list()],
                "y": part["oi_usd"].to_list(),
            }
            for (venue,), part in summary.group_by(["venue"], maintain_order=True)
        ]
        page.charts.append(
            {
                "data": traces,
                "layout": {"title": {"text": "Open interest by venue, USD"}, "barmode": "stack"},
            }
        )
    page.data = {"totals": totals, "venues": summary}
    return page


def default_market(lake: Lake) -> tuple[str, str]:
    """The first perpetual in the store (venue, instrument), for pages about one market."""
    if not lake.exists() or not lake.has_table("ohlcv"):
        raise UsageError("no candles in the store: run 'perpscope demo' or a backfill first")
    frame = lake.read("ohlcv", ["venue", "instrument"]).unique().sort("instrument", "venue")
    perps = frame.filter(frame["instrument"].str.ends_with("-PERP"))
    first = (perps if perps.height else frame).row(0)
    return str(first[0]), str(first[1])


def liquidations_page(lake: Lake, venue: str | None, instrument: str | None) -> Page:
    """The ESTIMATED heatmap with candles, its clusters, and realised liquidations (24h)."""
    from perpscope.services.liq_render import heatmap_view
    from perpscope.services.liquidations import heatmap_report, liquidations_report

    if venue is None or instrument is None:
        d_venue, d_instrument = default_market(lake)
        venue, instrument = venue or d_venue, instrument or d_instrument
    report = heatmap_report(lake, venue, instrument)
    view = heatmap_view(report, days=7.0)
    candles = view.candles
    heat = {
        "type": "heatmap",
        "name": "ESTIMATED liquidations",
        "x": view.times,
        "y": view.prices.tolist(),
        "z": view.z.tolist(),
        "zmin": 0.0,
        "zmax": view.zmax,
        "colorscale": INFERNO,
        "zsmooth": False,
        "colorbar": {"title": {"text": "USD (ESTIMATED)"}},
    }
    candle = {
        "type": "candlestick",
        "name": "price",
        "x": candles["ts"].to_list(),
        "open": candles["o"].to_list(),
        "high": candles["h"].to_list(),
        "low": candles["l"].to_list(),
        "close": candles["c"].to_list(),
    }
    layout = {
        "title": {"text": view.title},
        "height": 560,
        "xaxis": {"rangeslider": {"visible": False}},
        "yaxis": {"title": {"text": "price"}},
    }
    realised = liquidations_report(lake)
    page = Page("liquidations", f"Liquidations: {venue} {instrument}")
    page.notes.append(
        "The heatmap is ESTIMATED from open interest and leverage assumptions; the realised "
        "table counts liquidations the venues reported."
    )
    page.notes.extend(report.notes)
    page.charts.append({"data": [heat, candle], "layout": layout})
    page.tables = [
        Table("Nearest clusters (ESTIMATED)", rows_of(report.clusters)),
        Table("Realised liquidations, last 24h", rows_of(realised)),
    ]
    page.data = {"heatmap": report.to_json(), "realised": realised}
    return page


def cvd_page(lake: Lake, asset: str | None) -> Page:
    """Cumulative volume delta per venue and its divergences with price."""
    from perpscope.services.markets import cvd_report

    series, divergences = cvd_report(lake, _query(asset))
    page = Page("cvd", "Cumulative volume delta")
    if not series.is_empty():
        page.charts.append(_lines(series, "cvd_base", "CVD (base units), by venue"))
    page.tables = [Table("Divergences with price", rows_of(divergences))]
    page.data = {"series": series, "divergences": divergences}
    return page


def basis_page(lake: Lake, asset: str | None) -> Page:
    """Perpetual premium over spot and index, annualised, with the funding carry."""
    from perpscope.services.markets import basis_report

    latest, futures = basis_report(lake, _query(asset))
    page = Page("basis", "Basis")
    page.tables = [
        Table("Perpetual basis", rows_of(latest), heat="premium_index_annualized", heat_scale=0.5),
        Table("Dated futures", rows_of(futures)),
    ]
    if not latest.is_empty():
        page.charts.append(
            {
                "data": [
                    {
                        "type": "bar",
                        "name": "premium over index, annualised",
                        "x": [f"{v} {i}" for v, i in latest.select("venue", "instrument").rows()],
                        "y": latest["premium_index_annualized"].to_list(),
                    },
                    {
                        "type": "bar",
                        "name": "funding carry, annualised",
                        "x": [f"{v} {i}" for v, i in latest.select("venue", "instrument").rows()],
                        "y": latest["carry_annualized"].to_list(),
                    },
                ],
                "layout": {"title": {"text": "Basis and carry, annualised"}, "barmode": "group"},
            }
        )
    if futures.is_empty():
        page.notes.append("No dated futures in the store.")
    page.data = {"perpetuals": latest, "futures": futures}
    return page


def options_page(
    lake: Lake, venue: str | None, underlying: str, expiry: date | None = None
) -> Page:
    """Put/call ratio, max pain per expiry, and for one expiry (default: the next) the max-pain
    payout curve, open interest by strike and the smile."""
    from dataclasses import replace

    from perpscope.services.options import (
        ChainQuery,
        maxpain_curve_report,
        maxpain_report,
        oi_report,
        pcr_report,
        resolve_venue,
        smile_report,
    )

    venue = venue or resolve_venue(lake, underlying)
    page = Page("options", f"Options: {venue or 'no venue'} {underlying.upper()}")
    q = ChainQuery(venue=venue, underlying=underlying)
    try:
        pcr = pcr_report(lake, q)
    except UsageError as exc:
        page.notes.append(f"No options data yet: {exc}")
        page.data = {"available": False, "note": str(exc)}
        return page
    pains = maxpain_report(lake, q)
    if expiry is None and pains:
        expiry = pains[0]["expiry"]
    qe = replace(q, expiry=expiry)
    curve = maxpain_curve_report(lake, qe)
    by_strike = oi_report(lake, qe, top=None)
    vol = smile_report(lake, qe)
    by_expiry = pcr.pop("by_expiry", [])
    page.title += f", expiry {expiry}"
    page.tables = [
        Table("Put/call ratio", [{k: v for k, v in pcr.items() if not isinstance(v, list)}]),
        Table("Put/call by expiry", by_expiry),
        Table("Max pain per expiry", pains),
    ]
    page.charts = [
        _xy(curve, "strike_px", ["payout_usd"], f"Max pain payout curve, {expiry} (USD)"),
        _xy(by_strike, "strike_px", ["call_oi_usd", "put_oi_usd"], f"OI by strike, {expiry}"),
        _xy(vol["smile"], "strike_px", ["otm_iv"], f"Smile (OTM IV), {expiry}", kind="scatter"),
    ]
    page.data = {
        "available": True,
        "expiry": expiry,
        "pcr": {**pcr, "by_expiry": by_expiry},
        "maxpain": pains,
        "maxpain_curve": curve,
        "oi_by_strike": by_strike,
        "smile": vol,
    }
    return page


def _xy(
    rows: list[dict[str, Any]], x: str, ys: list[str], title: str, *, kind: str = "bar"
) -> dict[str, Any]:
    """One trace per column of ``ys`` against column ``x``."""
    traces = [
        {"type": kind, "name": y, "x": [r[x] for r in rows], "y": [r.get(y) for r in rows]}
        for y in ys
    ]
    return {"data": traces, "layout": {"title": {"text": title}, "xaxis": {"title": {"text": x}}}}


def signals_page(lake: Lake) -> Page:
    """The scenario per asset with its evidence, the active setups, and the alerts fired."""
    from perpscope.services.signals import run_signals, scenario_report

    assets = assets_in(lake)
    page = Page("signals", "Signals and alerts")
    readings = [scenario_report(lake, a) for a in assets]
    setups = run_signals(lake, assets, record=False) if assets else []
    scen_rows = [
        {
            "asset": r.asset,
            "ts": r.ts,
            "scenario": r.scenario,
            "confidence": r.confidence,
            "evidence": "; ".join(
                f"{e.name}: {fmt_evidence(e.name, e.value)}"
                for e in r.evidence
                if e.ok is not False and not e.name.startswith("options ")
            )[:240],
        }
        for r in readings
    ]
    opt_rows = [row for row in (_options_row(r.asset, r.evidence) for r in readings) if row]
    setup_rows = [
        {
            "setup": s.setup,
            "asset": s.asset,
            "venue": s.venue,
            "direction": s.direction,
            "stage": s.stage,
            "strength": s.strength,
            "entry_low_px": s.entry_low_px,
            "invalidation_px": s.invalidation_px,
        }
        for s in setups
    ]
    alerts = (
        lake.read("alert_events").sort("fired_at", descending=True).head(50)
        if lake.exists() and lake.has_table("alert_events")
        else None
    )
    page.tables = [
        Table("Scenario per asset", scen_rows),
        Table("Options evidence (scenario)", opt_rows),
        Table("Active setups", setup_rows),
        Table("Alerts fired (latest 50)", rows_of(alerts) if alerts is not None else []),
    ]
    if alerts is None:
        page.notes.append("No alerts fired yet (run 'perpscope watch' to evaluate the rules).")
    page.data = {
        "scenarios": [r.to_json() for r in readings],
        "setups": [s.to_json() for s in setups],
        "alerts": alerts if alerts is not None else [],
    }
    return page


_OPTION_COLUMNS = {
    "options chain ts": "chain_ts",
    "options put/call OI": "put_call_oi",
    "options put/call percentile": "put_call_percentile",
    "options 25d skew vol pts": "skew_25d_vol_pts",
    "options fear grade": "fear_grade",
    "options front ATM IV": "front_atm_iv",
    "options back ATM IV": "back_atm_iv",
    "options term structure": "term_structure",
    "options expiry": "expiry",
    "options max pain px": "max_pain_px",
    "options max pain distance %": "max_pain_distance_pct",
    "options put wall px": "put_wall_px",
    "options call wall px": "call_wall_px",
}


def _options_row(asset: str, evidence: Any) -> dict[str, Any] | None:
    """One asset's options evidence (``docs/signals.md``) as a table row; None without it."""
    ev = {e.name: e.value for e in evidence if e.name in _OPTION_COLUMNS}
    if not ev:
        return None
    row = {"asset": asset, **{col: ev.get(name) for name, col in _OPTION_COLUMNS.items()}}
    pct = row["max_pain_distance_pct"]  # evidence in %, the page's *_pct columns are fractions
    row["max_pain_distance_pct"] = pct / 100.0 if isinstance(pct, float) else pct
    ts = row["chain_ts"]  # evidence carries it as ISO text; a time prints as every other time
    row["chain_ts"] = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    return row


def overview_page(lake: Lake, assets: list[str] | None) -> Page:
    """The morning brief, the whole picture per asset (``services.brief.build_brief``);
    ``data`` is the brief's JSON document itself (``generated_at``, ``simulated``, ``assets``)."""
    from perpscope.services.brief import build_brief

    page = Page("overview", "Overview")
    page.data = json_value(build_brief(lake, assets))
    page.notes.extend(str(n) for n in page.data.get("notes") or [])
    return page
