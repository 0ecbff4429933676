"""The morning brief: per asset, the playbook's workflow in one document.

"Check funding, check OI, check the liquidation heatmap, assess the scenario, then look at the
chart": :func:`build_brief` gathers, per asset, what the other services compute (it computes no
metric of its own): price, funding per venue and across venues, open interest, long/short
ratios, CVD, basis, the ESTIMATED liquidation clusters and REALISED liquidations, options
positioning, the regime, the scenario with its evidence, the active setups and the alerts of the
last 24 hours. A panel whose data is not in the store says so (``available: false`` and what is
missing) instead of failing the brief. ``docs/brief.md`` documents every field and
``docs/brief.schema.json`` is its JSON schema.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from perpscope.domain.symbols import SIM_VENUES
from perpscope.errors import PerpscopeError, UsageError
from perpscope.services._market_read import require_store
from perpscope.services.filters import MarketQuery
from perpscope.store.lake import Lake

__all__ = ["build_brief", "brief_assets"]


def _plain(value: Any) -> Any:
    """JSON-ready: datetimes and dates as ISO 8601 (UTC), floats to 12 significant digits,
    non-finite floats as null."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):  # 12 significant digits: no float noise in the JSON
        return float(f"{value:.12g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _rows(frame: pl.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    cols = [c for c in columns if c in frame.columns]
    return [_plain(r) for r in frame.select(cols).iter_rows(named=True)]


def _missing(why: str) -> dict[str, Any]:
    return {"available": False, "missing": why}


def _panel(build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A panel, or ``available: false`` with the service's own message when its data is absent."""
    try:
        out = build()
    except PerpscopeError as exc:
        return _missing(str(exc))
    return _plain({"available": True, **out})  # type: ignore[no-any-return]


def brief_assets(lake: Lake) -> list[str]:
    """The assets with funding in the store (BTC and ETH first), the brief's default."""
    if not lake.has_table("funding"):
        return []
    names = lake.read("funding", columns=["instrument"])["instrument"].unique().to_list()
    assets = sorted({n.split("-")[0] for n in names})
    first = [a for a in ("BTC", "ETH", "SOL") if a in assets]
    return first + [a for a in assets if a not in first]


def _latest(frame: pl.DataFrame, keys: Sequence[str] = ("venue", "instrument")) -> pl.DataFrame:
    return frame.sort("ts").group_by(list(keys), maintain_order=True).last().sort(list(keys))


def _funding(lake: Lake, q: MarketQuery, now: datetime | None) -> dict[str, Any]:
    from perpscope.services.funding_table import funding_table_report
    from perpscope.services.markets import funding_extremes_report

    table = funding_table_report(lake, q, now=now)
    venues = _rows(
        table.venues.sort("venue"),
        ("venue", "instrument", "ts", "rate", "interval_h", "rate_8h", "annualized", "zscore",
         "percentile", "predicted_rate_8h", "next_funding_in_h", "stale"),
    )  # fmt: skip
    venues = _with_streaks(lake, q, venues)
    agg = table.assets.row(0, named=True) if table.assets.height else {}
    try:
        episodes, _ = funding_extremes_report(lake, q, min_venues=1)
        streaks = (
            _rows(episodes.sort("start_ts").tail(3), episodes.columns) if episodes.height else []
        )
    except PerpscopeError:
        streaks = []
    return {
        "venues": venues,
        "aggregate_rate_8h": _plain(agg.get("agg_rate_8h")),
        "aggregate_annualized": _plain(agg.get("agg_annualized")),
        "weighting": agg.get("weighting"),
        "spread_8h": _plain(agg.get("spread_8h")),
        "high_venue": agg.get("high_venue"),
        "low_venue": agg.get("low_venue"),
        "extreme_episodes": streaks,
        "stale_note": table.stale_note,
    }


def _with_streaks(lake: Lake, q: MarketQuery, venues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each venue row with ``extreme_streak_h`` and ``extreme_periods``: how long its latest
    settlement's extreme (|rate per 8h| >= 0.05%) has lasted, from
    :func:`perpscope.analytics.funding_series.extreme_persistence` (0 when not extreme)."""
    from perpscope.analytics.funding_series import extreme_persistence
    from perpscope.services._market_read import read_table, resolve, within

    rq = replace(resolve(lake, "funding", q), since=None)  # the run may start before --since
    history = within(read_table(lake, "funding", rq), rq)
    if history.is_empty():
        return venues
    runs = extreme_persistence(history).sort("ts").group_by("venue", "instrument").last()
    by_key = {(r["venue"], r["instrument"]): r for r in runs.iter_rows(named=True)}
    out = []
    for v in venues:
        run = by_key.get((v["venue"], v["instrument"]))
        streak = float(run["extreme_streak_h"]) if run else None
        periods = round(streak / float(run["interval_h"])) if run and streak is not None else None
        out.append({**v, "extreme_streak_h": streak, "extreme_periods": periods})
    return out


def _oi_summary(lake: Lake, q: MarketQuery) -> pl.DataFrame:
    from perpscope.services.markets import oi_summary_report

    return oi_summary_report(lake, q)


def _open_interest(lake: Lake, q: MarketQuery, summary: pl.DataFrame) -> dict[str, Any]:
    from perpscope.services.markets import oi_divergence_report
    from perpscope.services.oi_totals import asset_totals

    totals = asset_totals(summary)
    total = totals.row(0, named=True) if totals.height else {}
    venues = _rows(
        summary.sort("oi_usd", descending=True, nulls_last=True),
        ("venue", "instrument", "ts", "oi_usd", "oi_change_24h", "oi_change_4h", "share", "spike",
         "alert_24h", "price_change_24h", "quadrant", "reading"),
    )  # fmt: skip
    try:
        div = oi_divergence_report(lake, q)
        frame = div[0] if isinstance(div, tuple) else div
        divergence = _rows(frame.tail(3), frame.columns) if frame.height else []
    except PerpscopeError:
        divergence = []
    return {
        "total_usd": _plain(total.get("oi_usd")),
        "change_24h": _plain(total.get("oi_change_24h")),
        "venues": venues,
        "divergence": divergence,
    }


def _long_short(lake: Lake, q: MarketQuery) -> dict[str, Any]:
    from perpscope.services.markets import long_short_report

    wide, _ = long_short_report(lake, q)
    return {"venues": _rows(_latest(wide), wide.columns)}


def _cvd(lake: Lake, q: MarketQuery) -> dict[str, Any]:
    from perpscope.services.markets import cvd_report

    series, divergences = cvd_report(lake, q)
    latest = _latest(series, ("venue", "instrument", "market"))
    recent = divergences.tail(3) if divergences.height else divergences
    return {
        "series": _rows(latest, ("venue", "instrument", "market", "ts", "cvd_base")),
        "divergences": _rows(recent, recent.columns),
    }


def _basis(lake: Lake, q: MarketQuery) -> dict[str, Any]:
    from perpscope.services.markets import basis_report

    out = basis_report(lake, q)
    frame = out[0] if isinstance(out, tuple) else out
    return {"series": _rows(_latest(frame), frame.columns)}


def _liquidations(
    lake: Lake, summary: pl.DataFrame, asset: str, at: datetime | None
) -> dict[str, Any]:
    from perpscope.services.liquidations import heatmap_report, liquidations_report

    summary = summary.filter(pl.col("oi_usd").is_not_null())
    if summary.is_empty():
        raise UsageError(f"no open interest of {asset} to estimate liquidations from")
    top = summary.sort("oi_usd", descending=True).row(0, named=True)
    rep = heatmap_report(lake, top["venue"], top["instrument"], at=at)
    price = rep.heatmap.price
    clusters = rep.clusters
    below = clusters.filter(pl.col("price") < price).sort("price", descending=True).head(3)
    above = clusters.filter(pl.col("price") > price).sort("price").head(3)
    cols = ("price", "side", "notional_usd", "distance_pct", "density")
    try:
        realised = liquidations_report(lake, None, None, window="24h").filter(
            pl.col("instrument").str.starts_with(f"{asset}-")
        )
        flows = _rows(realised, realised.columns)
    except PerpscopeError:
        flows = []
    a = rep.asymmetry
    return {
        "label": "ESTIMATED",
        "venue": rep.venue,
        "instrument": rep.instrument,
        "price": price,
        "clusters_below": _rows(below, cols),
        "clusters_above": _rows(above, cols),
        "asymmetry": {
            "long_below_usd": a.long_below_usd,
            "short_above_usd": a.short_above_usd,
            "ratio": _plain(a.ratio),
            "read": a.read,
        },  # fmt: skip
        "nearest": _plain(rep.nearest),
        "realised_24h": flows,
        "notes": list(rep.notes),
    }


def _options(lake: Lake, asset: str, at: datetime | None) -> dict[str, Any]:
    from perpscope.services.options import ChainQuery, maxpain_report, summary_report

    if not lake.has_table("options_snapshot"):
        raise UsageError("no option chains stored (perpscope import options or collect)")
    q = ChainQuery(underlying=asset, at=at)
    summary = summary_report(lake, q)
    pains = maxpain_report(lake, q)
    ahead = [p for p in pains if (p.get("days_to_expiry") or 0) >= 0]
    nxt = min(ahead, key=lambda p: float(p.get("days_to_expiry") or 0)) if ahead else None
    return {
        "summary": _plain(summary),
        "next_expiry": _plain(nxt),
    }


def _regime(lake: Lake, q: MarketQuery) -> dict[str, Any]:
    from perpscope.services.chart import regime_report

    frame = regime_report(lake, q).drop_nulls("regime")
    return {"series": _rows(_latest(frame), frame.columns)}


def _signals(lake: Lake, asset: str, at: datetime | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The scenario and setups panels, from one read of the asset's data."""
    from perpscope.services.signals import asset_readings

    try:
        reading, found = asset_readings(lake, asset, at)
    except PerpscopeError as exc:
        return _missing(str(exc)), _missing(str(exc))
    scenario = _plain({"available": True, **reading.to_json()})
    setups = _plain({"available": True, "setups": [s.to_json() for s in found]})
    return scenario, setups


def _alerts(lake: Lake, asset: str, until: datetime) -> dict[str, Any]:
    from perpscope.services.watch import alert_history

    rows = [e for e in alert_history(lake, since=until - timedelta(hours=24))
            if e["asset"] in (asset, "*") and e["ts"] <= until]  # fmt: skip
    keep = ("rule", "venue", "instrument", "ts", "severity", "message", "delivered")
    return {"alerts": [_plain({k: e[k] for k in keep}) for e in rows]}


def _price(lake: Lake, q: MarketQuery, summary: pl.DataFrame) -> dict[str, Any]:
    """The last close of the asset's largest perpetual (by OI) and its 24h change."""
    if summary.is_empty() or not lake.has_table("ohlcv"):
        raise UsageError("no prices stored")
    top = summary.sort("oi_usd", descending=True, nulls_last=True).row(0, named=True)
    where = (
        (pl.col("venue") == top["venue"])
        & (pl.col("instrument") == top["instrument"])
        & (pl.col("kind") == "trade")
    )
    if q.until is not None and isinstance(q.until, datetime):
        where &= pl.col("ts") < q.until
    candles = lake.read("ohlcv", columns=["ts", "c", "timeframe"], where=where)
    if candles.is_empty():
        raise UsageError(f"no candles of {top['venue']} {top['instrument']}")
    last = candles.sort("ts").row(-1, named=True)
    out: dict[str, Any] = _plain({"venue": top["venue"], "instrument": top["instrument"],
                                  "ts": last["ts"], "price": last["c"],
                                  "change_24h": top.get("price_change_24h")})  # fmt: skip
    return out


def _simulated(lake: Lake) -> bool:
    """As the CLI decides (``cli/_common.py``): a demo store, or data from a simulator venue."""
    if lake.marker().get("demo"):
        return True
    if not lake.has_table("funding"):
        return False
    venues = set(lake.read("funding", columns=["venue"])["venue"].unique().to_list())
    return bool(venues & set(SIM_VENUES))


def build_brief(
    lake: Lake, assets: Sequence[str] | None = None, *, at: datetime | None = None
) -> dict[str, Any]:
    """The brief of ``assets`` (default: every asset with funding) as of ``at`` (default: the
    latest data), as a JSON-ready document: ``generated_at``, ``simulated``, ``as_of``,
    ``assets`` (one object per asset with every panel) and ``notes``.

    Raises:
        UsageError: no store, an asset with no data at all, or no panel with data (``at``
            before the data starts).
    """
    require_store(lake)
    names = [a.strip().upper() for a in assets] if assets else brief_assets(lake)
    if not names:
        raise UsageError(f"no funding in the store at {lake.root}: nothing to brief")
    known = set(brief_assets(lake))
    unknown = [a for a in names if a not in known]
    if unknown:
        raise UsageError(
            f"no data for {', '.join(unknown)} (assets in the store: {', '.join(sorted(known))})"
        )
    now = datetime.now(UTC)
    out = _each(names, lambda asset: _asset_brief(lake, asset, at, now))
    market = [p for a in out for k, p in a.items() if isinstance(p, dict) and k != "alerts"]
    if all(p.get("available") is False for p in market):
        # No market data at all (e.g. --at before the data): one error, not empty panels.
        raise UsageError(out[0]["funding"]["missing"])
    return {
        "generated_at": _plain(now),
        "simulated": _simulated(lake),
        "as_of": _plain(at) if at else None,
        "assets": out,
        "notes": _notes(out),
    }


def _each(names: list[str], build: Callable[[str], dict[str, Any]]) -> list[dict[str, Any]]:
    """``build`` of each asset, in order; assets in parallel threads (polars and the numba
    kernels release the GIL while they work)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    workers = min(len(names), os.cpu_count() or 1)
    if workers <= 1:
        return [build(n) for n in names]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="brief") as pool:
        return list(pool.map(build, names))


def _notes(assets: list[dict[str, Any]]) -> list[str]:
    """One line per missing panel (with the assets it is missing for), then the labels."""
    missing: dict[tuple[str, str], list[str]] = {}
    for a in assets:
        for key, panel in a.items():
            if isinstance(panel, dict) and panel.get("available") is False:
                missing.setdefault((key, panel["missing"]), []).append(a["asset"])
    notes = [f"{key} missing for {', '.join(names)}: {why}"
             for (key, why), names in missing.items()]  # fmt: skip
    notes.append(
        "liquidation clusters are ESTIMATED (modelled from open interest and leverage tiers); "
        "realised_24h are REALISED liquidations as stored"
    )
    return notes


def _asset_brief(lake: Lake, asset: str, at: datetime | None, now: datetime) -> dict[str, Any]:
    """Every panel of one asset."""
    q = MarketQuery.make(assets=[asset], until=at)
    funding = _panel(lambda: _funding(lake, q, at))
    as_of = at or _as_of(funding) or now
    try:
        summary = _oi_summary(lake, q)  # shared by the price, OI and liquidation panels
    except PerpscopeError as exc:
        oi_missing: str | None = str(exc)
        summary = pl.DataFrame()
    else:
        oi_missing = None

    def with_oi(build: Callable[[pl.DataFrame], dict[str, Any]]) -> dict[str, Any]:
        if oi_missing is not None:
            return _missing(oi_missing)
        return _panel(lambda: build(summary))

    scenario, setups = _signals(lake, asset, at)
    return {
        "asset": asset,
        "price": with_oi(lambda s: _price(lake, q, s)),
        "funding": funding,
        "open_interest": with_oi(lambda s: _open_interest(lake, q, s)),
        "long_short": _panel(lambda: _long_short(lake, q)),
        "cvd": _panel(lambda: _cvd(lake, q)),
        "basis": _panel(lambda: _basis(lake, q)),
        "liquidations": with_oi(lambda s: _liquidations(lake, s, asset, at)),
        "options": _panel(lambda: _options(lake, asset, at)),
        "regime": _panel(lambda: _regime(lake, q)),
        "scenario": scenario,
        "setups": setups,
        "alerts": _panel(lambda: _alerts(lake, asset, as_of)),
    }


def _as_of(funding: dict[str, Any]) -> datetime | None:
    stamps = [v["ts"] for v in funding.get("venues", []) if v.get("ts")]
    if not stamps:
        return None
    return datetime.fromisoformat(max(stamps).replace("Z", "+00:00"))
