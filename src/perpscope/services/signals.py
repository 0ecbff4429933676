"""Signals use-cases: load one asset's data from the store (up to ``at``), run the setups and the
scenario classifier, journal signals in the ``signals`` table and measure their outcomes.

Nothing here computes a metric: the detectors in :mod:`perpscope.signals` do.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import polars as pl

from perpscope.errors import UsageError
from perpscope.signals import DETECTORS, MarketData, ScenarioReading, Signal, classify, detect_all
from perpscope.signals._common import HISTORY_H
from perpscope.store.lake import Lake

__all__ = [
    "asset_readings",
    "HORIZONS_H",
    "JournalReport",
    "journal",
    "load_asset",
    "run_signals",
    "scenario_report",
]

HORIZONS_H: Final = (4, 24, 72)
"""Forward-return horizons of the journal, hours."""


def _asset(asset: str) -> str:
    a = asset.strip().upper()
    if not a.isalnum():
        raise UsageError(f"bad asset {asset!r}: use a base asset such as BTC")
    return a


def _read(lake: Lake, table: str, where: pl.Expr) -> pl.DataFrame:
    return lake.read(table, where=where) if lake.has_table(table) else pl.DataFrame()


def load_asset(
    lake: Lake, asset: str, at: datetime | None = None, *, with_levels: bool = True
) -> MarketData:
    """Everything the detectors read for ``asset``, as stored up to ``at``.

    Funding and OI of the asset's perpetuals on every venue; 1h trade candles of the perpetual on
    the venue with the largest latest OI (else the first with candles); the ESTIMATED liquidation
    map of that series at ``at`` (when OI and candles exist and ``with_levels``); the option chain
    snapshots of the asset up to ``at``, from 45 days before the read time (``at``, else the
    perpetuals' latest data), on the venue the options commands read
    (:func:`perpscope.services.options.resolve_venue`: Deribit when stored, else the venue with
    the most rows), None when the store has none (SOL, or no ``options_snapshot`` rows).

    Raises:
        UsageError: a bad asset, or nothing stored for it.
    """
    a = _asset(asset)
    perp = pl.col("instrument").str.contains(f"^{a}-[A-Z]+-PERP$")
    until = pl.col("ts") <= at if at is not None else None

    def w(e: pl.Expr) -> pl.Expr:
        return e if until is None else e & until

    funding = _read(lake, "funding", w(perp))
    oi_raw = _read(lake, "open_interest", w(perp))
    ohlcv = _read(
        lake, "ohlcv", w(perp & (pl.col("kind") == "trade") & (pl.col("timeframe") == "1h"))
    )
    if funding.is_empty() and ohlcv.is_empty():
        raise UsageError(
            f"no funding or candles for {a} perpetuals in the store"
            + (f" up to {at}" if at else "")
        )
    oi = None
    venue = None
    if oi_raw.height:
        hourly = (
            oi_raw.drop_nulls("oi_usd")
            .with_columns(pl.col("ts").dt.truncate("1h"))
            .sort("ts")
            .group_by("venue", "instrument", "ts")
            .agg(pl.col("oi_usd").last())
        )
        oi = hourly.group_by("ts").agg(pl.col("oi_usd").sum(), pl.len().alias("n")).sort("ts")
        full = oi["n"].max()
        oi = oi.filter(pl.col("n") == full).drop("n")
        last = hourly.sort("ts").group_by("venue").agg(pl.col("oi_usd").last()).sort("oi_usd")
        venue = str(last["venue"][-1])
    candles = None
    if ohlcv.height:
        venues = sorted(ohlcv["venue"].unique().to_list())
        v = venue if venue in venues else venues[0]
        candles = ohlcv.filter(pl.col("venue") == v).sort("ts")
        if at is not None:
            candles = candles.filter(pl.col("ts") + timedelta(hours=1) <= at)
    levels = None
    if with_levels and candles is not None and candles.height and oi is not None:
        from perpscope.services.liquidations import heatmap_report

        try:
            rep = heatmap_report(
                lake, str(candles["venue"][0]), str(candles["instrument"][0]), at=at
            )
            levels = rep.levels
        except UsageError:
            levels = None
    data = MarketData(
        a, funding=funding if funding.height else None, candles=candles, oi=oi, levels=levels
    )
    snaps, trades = _options(lake, a, at, _at(lake, data, at))
    return replace(data, options=snaps, option_trades=trades)


def _options(
    lake: Lake, asset: str, at: datetime | None, end: datetime
) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """The stored option snapshots of ``asset`` up to ``at`` and after 45 days before ``end``
    (the asset's read time; no rule looks further back), see :func:`load_asset`; and the
    option trades of the same venue and asset in the :data:`UNUSUAL_H` hours up to ``end``
    (the only rule that reads them looks no further back)."""
    from perpscope.services.options import resolve_venue
    from perpscope.signals.options import UNUSUAL_H

    venue = resolve_venue(lake, asset)
    if venue is None:
        return None, None
    until = pl.lit(True) if at is None else pl.col("ts") <= at
    where = (
        (pl.col("venue") == venue)
        & (pl.col("underlying") == asset)
        & (pl.col("ts") > end - timedelta(hours=HISTORY_H))
        & until
    )
    rows = lake.read("options_snapshot", where=where)
    trades = _read(
        lake,
        "option_trades",
        (pl.col("venue") == venue)
        & pl.col("instrument").str.starts_with(f"{asset}-")
        & (pl.col("ts") > end - timedelta(hours=UNUSUAL_H))
        & until,
    )
    return (
        rows.sort("ts") if rows.height else None,
        trades.sort("ts") if trades.height else None,
    )


def _at(lake: Lake, data: MarketData, at: datetime | None) -> datetime:
    if at is not None:
        return at
    ends = []
    if data.candles is not None and data.candles.height:
        ends.append(data.candles["ts"].max() + timedelta(hours=1))  # type: ignore[operator]
    if data.funding is not None and data.funding.height:
        ends.append(data.funding["ts"].max())
    return max(ends)  # type: ignore[return-value]


def scenario_report(lake: Lake, asset: str, at: datetime | None = None) -> ScenarioReading:
    """The six-scenario reading of ``asset`` at ``at`` (default: the latest stored data)."""
    data = load_asset(lake, asset, at)
    return classify(data, _at(lake, data, at))


def _row(s: Signal) -> dict[str, Any]:
    return {
        "venue": s.venue,
        "instrument": s.instrument or f"{s.asset}",
        "ts": s.ts,
        "signal": s.setup,
        "direction": s.direction,
        "strength": s.strength,
        "evidence_json": json.dumps(_jsonable(s.to_json()), sort_keys=True),
    }


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def run_signals(
    lake: Lake, assets: list[str], at: datetime | None = None, *, record: bool = True
) -> list[Signal]:
    """Every setup for ``assets`` at ``at``; with ``record`` they are written to ``signals``
    (idempotent on its key: venue, instrument, ts, signal)."""
    data = {(_asset(a)): load_asset(lake, a, at) for a in assets}
    when = at or max(_at(lake, d, None) for d in data.values())
    found = detect_all(data, when)
    if record and found:
        lake.ingest("signals", pl.DataFrame([_row(s) for s in found]))
    return found


def asset_readings(
    lake: Lake, asset: str, at: datetime | None = None
) -> tuple[ScenarioReading, list[Signal]]:
    """The scenario reading and the setups of one asset at ``at``, from one read of its data
    (what :func:`scenario_report` and :func:`run_signals` give, without recording)."""
    data = load_asset(lake, asset, at)
    when = _at(lake, data, at)
    return classify(data, when), detect_all({_asset(asset): data}, when)


@dataclass(frozen=True, slots=True)
class JournalReport:
    """Past signals with outcomes, and the aggregate per setup."""

    signals: pl.DataFrame
    per_setup: pl.DataFrame


def outcome(
    direction: str,
    entry: float | None,
    stop: float | None,
    target: float | None,
    after: pl.DataFrame,
) -> dict[str, Any]:
    """Forward returns of a signal (signed by direction) at :data:`HORIZONS_H` from its entry,
    and which of the invalidation or the first target was hit first within 72h (a bar touching
    both counts as the invalidation), with the R of the outcome.

    Args:
        after: hourly candles from the signal's time on (``ts o h l c``), sorted.
    """
    out: dict[str, Any] = {f"ret_{h}h": None for h in HORIZONS_H}
    out.update(first_hit=None, r=None)
    if after.is_empty():
        return out
    sign = -1.0 if direction == "short" else 1.0
    t0 = after["ts"][0]
    px0 = entry if entry is not None else float(after["o"][0])
    for h in HORIZONS_H:
        rows = after.filter(pl.col("ts") + timedelta(hours=1) <= t0 + timedelta(hours=h))
        if rows.height >= h:
            out[f"ret_{h}h"] = sign * (float(rows["c"][-1]) / px0 - 1.0)
    if direction == "neutral" or stop is None or target is None or entry is None:
        return out
    risk = abs(entry - stop)
    win = after.filter(pl.col("ts") < t0 + timedelta(hours=72))
    for r in win.iter_rows(named=True):
        hit_stop = r["h"] >= stop if sign < 0 else r["l"] <= stop
        hit_tgt = r["l"] <= target if sign < 0 else r["h"] >= target
        if hit_stop:
            out.update(first_hit="invalidation", r=-1.0)
            return out
        if hit_tgt:
            out.update(first_hit="target", r=abs(target - entry) / risk if risk else None)
            return out
    if win.height >= 72 and risk:
        out.update(first_hit="neither", r=sign * (float(win["c"][-1]) - entry) / risk)
    return out


def journal(lake: Lake, setup: str | None = None) -> JournalReport:
    """Stored signals with their outcomes (:func:`outcome`) and per setup: count, hit rate
    (target first, over signals resolved either way) and mean R (over signals with an R)."""
    if setup is not None and setup not in {*DETECTORS, "funding_rotation"}:
        raise UsageError(
            f"unknown setup {setup!r}; choose one of: {', '.join([*DETECTORS, 'funding_rotation'])}"
        )
    sig = lake.read("signals") if lake.has_table("signals") else pl.DataFrame()
    if sig.height and setup:
        sig = sig.filter(pl.col("signal") == setup)
    rows: list[dict[str, Any]] = []
    candles: dict[tuple[str, str], pl.DataFrame] = {}
    for s in (sig.sort("ts") if sig.height else sig).iter_rows(named=True):
        ev = json.loads(s["evidence_json"] or "{}")
        key = (s["venue"], s["instrument"])
        if key not in candles:
            where = (pl.col("venue") == key[0]) & (pl.col("instrument") == key[1])
            c = _read(lake, "ohlcv", where)
            if c.height:
                c = c.filter((pl.col("kind") == "trade") & (pl.col("timeframe") == "1h")).sort("ts")
            candles[key] = c
        c = candles[key]
        after = c.filter(pl.col("ts") >= s["ts"]) if c.height else c
        targets = ev.get("targets_px") or []
        lo, hi = ev.get("entry_low_px"), ev.get("entry_high_px")
        entry = None if lo is None or hi is None else (hi if s["direction"] == "short" else lo)
        o = outcome(
            s["direction"], entry, ev.get("invalidation_px"), targets[0] if targets else None, after
        )
        rows.append(
            {
                "ts": s["ts"],
                "setup": s["signal"],
                "venue": s["venue"],
                "instrument": s["instrument"],
                "direction": s["direction"],
                "strength": s["strength"],
                "stage": ev.get("stage"),
                "entry_px": entry,
                "invalidation_px": ev.get("invalidation_px"),
                "target_px": targets[0] if targets else None,
                **o,
                "evidence_json": json.dumps(ev.get("evidence", [])),
            }
        )
    schema: dict[str, pl.DataType | type[pl.DataType]] = {
        "ts": pl.Datetime("us", "UTC"),
        "setup": pl.String,
        "venue": pl.String,
        "instrument": pl.String,
        "direction": pl.String,
        "strength": pl.Float64,
        "stage": pl.String,
        "entry_px": pl.Float64,
        "invalidation_px": pl.Float64,
        "target_px": pl.Float64,
        "ret_4h": pl.Float64,
        "ret_24h": pl.Float64,
        "ret_72h": pl.Float64,
        "first_hit": pl.String,
        "r": pl.Float64,
        "evidence_json": pl.String,
    }
    frame = pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)
    per = (
        frame.group_by("setup")
        .agg(
            pl.len().alias("count"),
            (
                (pl.col("first_hit") == "target").sum()
                / pl.col("first_hit").is_in(["target", "invalidation"]).sum()
            ).alias("hit_rate"),
            pl.col("r").mean().alias("mean_r"),
            pl.col("ret_24h").mean().alias("mean_ret_24h"),
        )
        .sort("setup")
    )
    return JournalReport(frame, per)
