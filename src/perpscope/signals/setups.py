"""The playbook's setups as detectors over one asset's data at one time.

Each detector takes a :class:`MarketData` bundle and a time ``at``, uses only the data known at
``at`` (:meth:`MarketData.upto`), reuses the analytics functions (never re-deriving a metric) and
returns a list of :class:`Signal` (empty when the setup is absent). When an input is missing, the
detector records it in ``missing`` and degrades: a setup whose derivatives condition holds but
whose price trigger cannot be checked is reported at stage ``watch`` with no entry. The exact
rules and the playbook lines they come from are in ``docs/signals.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
import polars as pl

from perpscope.analytics.basis import basis_trade_carry
from perpscope.analytics.cvd import (
    cumulative_volume_delta,
    cvd_price_divergence,
    delta_from_candles,
)
from perpscope.analytics.funding_series import (
    extreme_persistence,
    funding_acceleration,
    funding_price_divergence,
)
from perpscope.analytics.liquidations import find_clusters
from perpscope.analytics.oi import oi_divergence
from perpscope.signals import _batch
from perpscope.signals._common import (
    Context,
    Evidence,
    MarketData,
    Signal,
    change_since,
    clip01,
    context,
    trade_levels,
    ts_cut,
)
from perpscope.signals.options import (
    HIGHS_PCT,
    MAGNET_MAX_PCT,
    MAGNET_MIN_PCT,
    UNUSUAL_USD,
    options_context,
    options_evidence,
    options_reading,
    unusual_flow,
)

__all__ = [
    "DETECTORS",
    "Context",
    "Evidence",
    "MarketData",
    "Signal",
    "basis_trade",
    "cvd_divergence",
    "detect_all",
    "funding_acceleration_setup",
    "funding_divergence",
    "funding_fade",
    "funding_rotation",
    "latest_funding_by_venue",
    "latest_rows",
    "liquidation_magnet",
    "max_pain_magnet",
    "oi_divergence_setup",
    "pcr_extreme",
    "triple_confluence",
    "unusual_options",
]

EXTREME_8H: Final = 0.0005
"""Playbook line 77/84: "-0.05% or more negative" / "+0.05% or more positive"."""
MIN_VENUES: Final = 2
"""Playbook line 77/84: "across at least two major exchanges"."""
MIN_STREAK_H: Final = 24.0
"""Playbook line 78: "at least 3 consecutive periods (24 hours)"."""
NEAR_PCT: Final = 0.01
"""How close "at or near" a zone is (line 79/86): within 1% of the last close."""
TRIGGER_BARS: Final = 6
"""A structural trigger counts for this many closed bars."""


def _side(direction: str) -> int:
    return -1 if direction == "short" else 1


def latest_funding_by_venue(
    funding: pl.DataFrame, threshold_8h: float = EXTREME_8H
) -> pl.DataFrame:
    """Each venue's latest settlement with its extreme streak (:func:`extreme_persistence`).

    Returns:
        ``venue instrument ts rate_8h extreme_side extreme_streak_h`` one row per series.
    """
    return latest_rows(extreme_persistence(funding, threshold_8h=threshold_8h))


def latest_rows(ext: pl.DataFrame) -> pl.DataFrame:
    """The last row per (venue, instrument) of :func:`extreme_persistence` output."""
    return _batch.latest_rows(ext)


def _fresh(latest: pl.DataFrame, at: datetime, max_age_h: float = _batch.FRESH_H) -> pl.DataFrame:
    return latest.filter(pl.col("ts") > at - timedelta(hours=max_age_h))


def _funding_extreme(
    data: MarketData, at: datetime, ev: list[Evidence]
) -> tuple[str | None, float]:
    """The fade's funding criteria: the crowded side (``positive``/``negative``) and the mean
    extreme rate, or (None, mean) when fewer than two venues qualify."""
    assert data.funding is not None
    ctx = context(data, at)
    latest = _batch.memo(
        ctx, _batch.LATEST_FUNDING, lambda: _fresh(latest_rows(ctx.persistence()), at)
    )
    sides = latest["extreme_side"].to_numpy()
    long_enough = latest["extreme_streak_h"].to_numpy() >= MIN_STREAK_H
    for side, name in ((1, "positive"), (-1, "negative")):
        at_side = sides == side
        n_ext = int(np.count_nonzero(at_side))
        n_q = int(np.count_nonzero(at_side & long_enough))
        if n_ext >= MIN_VENUES:
            mean = float(latest["rate_8h"].filter(pl.Series(at_side)).mean())  # type: ignore[arg-type]
            ev.append(Evidence(f"venues at {name} extreme", n_ext, MIN_VENUES, True))
            ev.append(Evidence("mean extreme rate_8h", mean, side * EXTREME_8H, True))
            ev.append(Evidence("venues extreme for 24h+", n_q, MIN_VENUES, n_q >= MIN_VENUES))
            return (name if n_q >= MIN_VENUES else None), mean
    mean_all = float(latest["rate_8h"].mean()) if latest.height else math.nan  # type: ignore[arg-type]
    ev.append(Evidence("venues at an extreme", 0, MIN_VENUES, False))
    ev.append(Evidence("mean rate_8h", mean_all, EXTREME_8H, False))
    return None, mean_all


def _entry_from_trigger(
    ctx: Context, direction: str, trig: Mapping[str, object]
) -> tuple[float, float, float]:
    """Entry zone (trigger level .. last close) and invalidation beyond the trigger's extreme,
    with a 0.1 ATR buffer (playbook line 98: "above the SFP high with a small buffer")."""
    close = ctx.last_close()
    assert close is not None
    level = trig.get("level")
    extreme = trig.get("extreme")
    lvl = float(level) if isinstance(level, int | float) else close
    ext = float(extreme) if isinstance(extreme, int | float) else lvl
    atr = ctx.regime_row().get("atr") or 0.0
    sign = _side(direction)
    # the stop sits beyond the most extreme price of the trigger bar
    last = ctx.candles.row(-1, named=True)
    far = max(ext, lvl, float(last["h"])) if sign < 0 else min(ext, lvl, float(last["l"]))
    stop = far - sign * max(0.1 * float(atr), 0.001 * close)
    lo, hi = sorted((lvl, close))
    if sign < 0:
        hi = min(hi, stop)
    else:
        lo = max(lo, stop)
    return lo, hi, stop


def _zone_targets(ctx: Context, direction: str) -> list[float | None]:
    z = ctx.zones()
    vwap = ctx.vwap()
    out: list[float | None] = [vwap]
    if z.height:
        kind = "support" if direction == "short" else "resistance"
        zz = z.filter(pl.col("kind") == kind)
        if zz.height:
            out.append(float(zz["mid_px"][-1] if direction == "short" else zz["mid_px"][0]))
    return out


_OPTION_SETUPS: Final = ("pcr_extreme", "max_pain_magnet")


def _signal(
    setup: str,
    data: MarketData,
    at: datetime,
    direction: str,
    strength: float,
    ev: list[Evidence],
    ctx: Context | None,
    missing: tuple[str, ...],
    *,
    trig: Mapping[str, object] | None = None,
    stage: str | None = None,
    extra_targets: list[float | None] | None = None,
) -> Signal:
    opt = None if setup in _OPTION_SETUPS else options_reading(data, at)
    if opt is not None:  # context, and the near expiry's max pain as a target (L300)
        ev = [*ev, *options_context(opt)]
        extra_targets = [*(extra_targets or []), opt.max_pain_px]
    venue, instrument = "all", f"{data.asset}"
    entry_lo = entry_hi = stop = None
    targets: tuple[float, ...] = ()
    if ctx is not None and ctx.candles.height:
        row = ctx.candles.row(-1, named=True)
        venue, instrument = str(row["venue"]), str(row["instrument"])
        ts = row["ts"] + timedelta(hours=data.bar_h)
        if trig is not None:
            entry_lo, entry_hi, stop = _entry_from_trigger(ctx, direction, trig)
            entry = entry_hi if direction == "short" else entry_lo
            extra = _zone_targets(ctx, direction) + list(extra_targets or [])
            targets = trade_levels(direction, entry, stop, extra)
    else:
        ts = at
    st = stage or ("entry" if trig is not None else "watch")
    return Signal(
        setup=setup,
        asset=data.asset,
        ts=ts,
        direction=direction,
        strength=round(clip01(strength), 4),
        stage=st,
        evidence=tuple(ev),
        venue=venue,
        instrument=instrument,
        entry_low_px=entry_lo,
        entry_high_px=entry_hi,
        invalidation_px=stop,
        targets_px=targets,
        missing=missing,
    )


def funding_fade(data: MarketData, at: datetime) -> list[Signal]:
    """Funding-rate fade (playbook lines 75-88): short positive / long negative funding.

    Required: the extreme on >= 2 venues (line 77/84), for >= 24h (line 78/85), and a reversal
    trigger in the fade's direction in the last bars (line 81/88: SFP, CHoCH/BOS, UTAD/spring).
    Graded (strength): near a resistance/supply (support/demand) zone (line 79/86), a low-volume
    node above (high-volume node near) in the volume profile (line 80/87), the distance of the
    rate from the threshold, and the regime (line 139: trending halves the fade).
    """
    data = data.upto(at)
    missing = data.missing("funding", "candles")
    if "funding" in missing:
        return []
    ev: list[Evidence] = []
    crowded, mean = _funding_extreme(data, at, ev)
    if crowded is None:
        return []
    direction = "short" if crowded == "positive" else "long"
    dist = clip01(abs(mean) / EXTREME_8H - 1.0)
    if "candles" in missing:
        ev.append(Evidence("price trigger", "not checked: no candles", None, None))
        return [_signal("funding_fade", data, at, direction, 0.3 * dist + 0.2, ev, None, missing)]
    ctx = context(data, at)
    close = ctx.last_close()
    assert close is not None
    trig = ctx.trigger(direction, TRIGGER_BARS)
    ev.append(
        Evidence(
            "reversal trigger",
            None if trig is None else f"{trig['event']} at {trig['level']:.6g}",
            f"within {TRIGGER_BARS} bars",
            trig is not None,
        )
    )
    z = ctx.zones()
    kind = "resistance" if direction == "short" else "support"
    near = (
        z.filter(
            ((pl.col("kind") == kind) | (pl.col("kind") == "inside"))
            & (pl.col("distance_pct").abs() <= NEAR_PCT)
        )
        if z.height
        else z
    )
    ev.append(Evidence(f"near {kind} zone", near.height, f"within {NEAR_PCT:.0%}", near.height > 0))
    prof = ctx.profile()
    if direction == "short":
        nodes = [p for p in prof.lvn_px if close < p <= close * 1.03]
        ev.append(Evidence("low-volume node above", len(nodes), "within 3%", bool(nodes)))
    else:
        nodes = [p for p in prof.hvn_px if abs(p / close - 1.0) <= 0.02]
        ev.append(Evidence("high-volume node nearby", len(nodes), "within 2%", bool(nodes)))
    reg = ctx.regime_row()
    size = reg.get("size_mult")
    ev.append(Evidence("regime", reg.get("regime"), "trending halves the fade", size != 0.5))
    graded = [near.height > 0, bool(nodes), size != 0.5]
    strength = (dist + sum(graded)) / 4.0
    if trig is None:
        return [_signal("funding_fade", data, at, direction, strength * 0.5, ev, ctx, missing)]
    return [_signal("funding_fade", data, at, direction, strength, ev, ctx, missing, trig=trig)]


def _agg_funding(ctx: Context) -> pl.DataFrame:
    """Mean 8h-equivalent rate across venues per settlement time."""
    return _batch.memo(ctx, _batch.AGG_FUNDING, lambda: _batch.agg_funding(ctx.persistence()))


def _with_price(ctx: Context, extra: pl.DataFrame, col: str) -> pl.DataFrame:
    c = ctx.candles.select("venue", "instrument", "ts", pl.col("c").alias("close_px"))
    return c.join_asof(extra.select("ts", col).sort("ts"), on="ts", strategy="backward")


def _fdiv_row(ctx: Context) -> dict[str, Any] | None:
    """The last divergence row of the funding-price divergence in the last bars, or None."""
    if not ctx.near_extreme(168.0, TRIGGER_BARS):
        return None
    frame = _with_price(ctx, _agg_funding(ctx), "rate_8h").drop_nulls("rate_8h")
    if frame.is_empty():
        return None
    out = funding_price_divergence(frame).tail(TRIGGER_BARS).drop_nulls("fdiv_divergence")
    return out.row(-1, named=True) if out.height else None


def funding_divergence(data: MarketData, at: datetime) -> list[Signal]:
    """Funding divergence (lines 62-68): a new 7-day price high with funding's 7-day mean lower
    than at the prior high (short), or the mirror at lows (long), on the last closed bar(s)."""
    data = data.upto(at)
    missing = data.missing("funding", "candles")
    if missing:
        return []
    ctx = context(data, at)
    r = _batch.memo(ctx, _batch.FDIV_ROW, lambda: _fdiv_row(ctx))
    if r is None:
        return []
    direction = "short" if r["fdiv_divergence"] == "bearish" else "long"
    gap = abs(r["funding_mean_8h"] - r["fdiv_prior_value"]) / EXTREME_8H
    ev = [
        Evidence(
            "close_px", r["close_px"], f"new 7d {'high' if direction == 'short' else 'low'}", True
        ),
        Evidence("prior extreme px", r["fdiv_prior_price"], None, True),
        Evidence("funding 7d mean", r["funding_mean_8h"], r["fdiv_prior_value"], True),
    ]
    trig = {"level": r["close_px"], "extreme": r["close_px"]}
    return [_signal("funding_divergence", data, at, direction, 0.4 + gap, ev, ctx, (), trig=trig)]


def funding_acceleration_setup(data: MarketData, at: datetime) -> list[Signal]:
    """Funding acceleration (lines 69-73): a strong (+0.03%/period) or parabolic move of funding
    away from neutral on any venue's last settlement; contrarian direction; ``entry`` only with a
    structural trigger (line 73: "wait for structural confirmation"), else ``watch``."""
    data = data.upto(at)
    missing = data.missing("funding", "candles")
    if "funding" in missing:
        return []
    ctx = context(data, at)
    last = _batch.memo(
        ctx,
        _batch.ACCEL_LAST,
        lambda: _batch.last_fresh(funding_acceleration(data.funding), at),  # type: ignore[arg-type]
    )
    hit = last.filter((pl.col("accel_level") == "strong") | pl.col("parabolic"))
    if hit.is_empty():
        return []
    # the largest change; on a tie the first venue (group_by's order is arbitrary)
    by = [pl.col("change_8h").abs(), "venue", "instrument"]
    r = hit.sort(by, descending=[True, False, False]).row(0, named=True)
    direction = "short" if r["rate_8h"] > 0 else "long"
    ev = [
        Evidence(f"{r['venue']} rate_8h", r["rate_8h"], None, True),
        Evidence(
            f"{r['venue']} change per period", r["change_8h"], 0.0003, abs(r["change_8h"]) >= 0.0003
        ),
        Evidence(
            f"{r['venue']} parabolic", str(r["parabolic"]), "x1.5 twice", bool(r["parabolic"])
        ),
        Evidence("venues accelerating", hit.height, 1, True),
    ]
    strength = 0.4 + 0.2 * bool(r["parabolic"]) + 0.1 * (hit.height - 1)
    if "candles" in missing:
        return [_signal("funding_acceleration", data, at, direction, strength, ev, None, missing)]
    ctx = context(data, at)
    trig = ctx.trigger(direction, TRIGGER_BARS)
    ev.append(
        Evidence(
            "structural trigger",
            None if trig is None else str(trig["event"]),
            None,
            trig is not None,
        )
    )
    return [
        _signal(
            "funding_acceleration",
            data,
            at,
            direction,
            strength + 0.2 * (trig is not None),
            ev,
            ctx,
            missing,
            trig=trig,
        )
    ]


def _oi_div(ctx: Context, data: MarketData) -> dict[str, Any] | None:
    return _batch.memo(ctx, _batch.OI_DIV_ROW, lambda: _oi_div_row(ctx, data))


def _oi_div_row(ctx: Context, data: MarketData) -> dict[str, Any] | None:
    if not ctx.near_extreme(72.0, 1):
        return None
    frame = _with_price(ctx, data.oi, "oi_usd").drop_nulls("oi_usd")  # type: ignore[arg-type]
    if frame.is_empty():
        return None
    r = oi_divergence(frame).row(-1, named=True)
    return r if r["oi_divergence"] is not None else None


def oi_divergence_setup(data: MarketData, at: datetime) -> list[Signal]:
    """OI divergence (lines 169-190, 395): price at a 72h extreme while aggregate OI fell 8%+
    without recovering, ratio Y/X >= 0.5 (:func:`perpscope.analytics.oi.oi_divergence`).
    ``entry`` with a structural trigger (line 183: "Wait for confirmation"), else ``watch``."""
    data = data.upto(at)
    missing = data.missing("oi", "candles")
    if missing:
        return []
    ctx = context(data, at)
    r = _oi_div(ctx, data)
    if r is None:
        return []
    direction = "short" if r["oi_divergence"] == "bearish" else "long"
    ratio = float(r["divergence_ratio"])
    ev = [
        Evidence("price change 72h", r["price_change_w"], None, True),
        Evidence("OI change 72h", r["oi_change_w"], -0.08, True),
        Evidence("divergence ratio", ratio, 0.5, True),
        Evidence("grade", str(r["oi_divergence_grade"]), None, True),
    ]
    trig = ctx.trigger(direction, TRIGGER_BARS)
    ev.append(
        Evidence(
            "structural trigger",
            None if trig is None else str(trig["event"]),
            None,
            trig is not None,
        )
    )
    strength = 0.3 + 0.3 * clip01(ratio / 1.0) + 0.3 * (trig is not None)
    return [_signal("oi_divergence", data, at, direction, strength, ev, ctx, (), trig=trig)]


def triple_confluence(data: MarketData, at: datetime) -> list[Signal]:
    """Triple confluence (lines 347-351): funding extreme (+-0.05% on 2+ venues for 24h+), OI
    divergence against the crowded side, and a structural trigger; all three are required."""
    data = data.upto(at)
    missing = data.missing("funding", "oi", "candles")
    if missing:
        return []
    ev: list[Evidence] = []
    crowded, _ = _funding_extreme(data, at, ev)
    if crowded is None:
        return []
    direction = "short" if crowded == "positive" else "long"
    ctx = context(data, at)
    r = _oi_div(ctx, data)
    want = "bearish" if direction == "short" else "bullish"
    ok = r is not None and r["oi_divergence"] == want
    ev.append(Evidence("OI divergence", None if r is None else str(r["oi_divergence"]), want, ok))
    if not ok:
        return []
    trig = ctx.trigger(direction, TRIGGER_BARS)
    ev.append(
        Evidence(
            "structural trigger",
            None if trig is None else str(trig["event"]),
            None,
            trig is not None,
        )
    )
    if trig is None:
        return []
    assert r is not None
    strength = 0.7 + 0.3 * clip01(float(r["divergence_ratio"]) - 0.5)
    return [_signal("triple_confluence", data, at, direction, strength, ev, ctx, (), trig=trig)]


def liquidation_magnet(
    data: MarketData, at: datetime, *, within_pct: float = 5.0, min_density: float = 2.0
) -> list[Signal]:
    """Liquidation magnet (lines 364-373): the densest cluster within ``within_pct`` % of price
    (density >= ``min_density``) pulls price toward it: long liquidations below -> short, short
    liquidations above -> long. Target just beyond the cluster (line 367); stop half the way to
    the cluster on the other side, so the target is about 2R; ``entry`` with a trigger toward it.
    """
    data = data.upto(at)
    missing = data.missing("levels", "candles")
    if missing:
        return []
    ctx = context(data, at)
    price = ctx.last_close()
    assert price is not None
    assert data.levels is not None
    cl = find_clusters(data.levels, price)
    cl = cl.filter(
        (pl.col("distance_pct").abs() <= within_pct) & (pl.col("density") >= min_density)
    )
    if cl.is_empty():
        return []
    r = cl.sort("notional_usd", maintain_order=True).row(-1, named=True)
    direction = "short" if r["side"] == "long" else "long"
    sign = _side(direction)
    beyond = float(r["low_px"] if direction == "short" else r["high_px"])
    target = beyond * (1.0 + sign * 0.001)
    stop = price - sign * abs(target - price) / 2.0
    ev = [
        Evidence("cluster px", float(r["price"]), None, True),
        Evidence("cluster distance %", float(r["distance_pct"]), within_pct, True),
        Evidence("cluster density", float(r["density"]), min_density, True),
        Evidence("cluster notional USD (ESTIMATED)", float(r["notional_usd"]), None, True),
    ]
    trig = ctx.trigger(direction, TRIGGER_BARS)
    ev.append(
        Evidence(
            "structural trigger",
            None if trig is None else str(trig["event"]),
            None,
            trig is not None,
        )
    )
    row = ctx.candles.row(-1, named=True)
    strength = (
        0.3 + 0.3 * clip01((float(r["density"]) - min_density) / 4.0) + 0.3 * (trig is not None)
    )
    return [
        Signal(
            "liquidation_magnet",
            data.asset,
            row["ts"] + timedelta(hours=data.bar_h),
            direction,
            round(clip01(strength), 4),
            "entry" if trig is not None else "watch",
            tuple(ev),
            str(row["venue"]),
            str(row["instrument"]),
            min(price, price),
            max(price, price),
            stop,
            (target,),
            (),
        )
    ]


def _cdiv_row(ctx: Context) -> dict[str, Any] | None:
    """The last divergence row of the CVD-price divergence in the last bars, or None."""
    if not ctx.near_extreme(168.0, TRIGGER_BARS):
        return None
    c = ctx.candles
    if not _batch.has_taker_volume(c):
        return None
    cvd = cumulative_volume_delta(delta_from_candles(c))
    frame = cvd.join(c.select("ts", pl.col("c").alias("close_px")), on="ts")
    out = cvd_price_divergence(frame).tail(TRIGGER_BARS).drop_nulls("cdiv_divergence")
    return out.row(-1, named=True) if out.height else None


def cvd_divergence(data: MarketData, at: datetime) -> list[Signal]:
    """CVD divergence (lines 377-381): a new 7-day price high with CVD below its value at the
    prior high (short) or the mirror at lows (long), on the last closed bars."""
    data = data.upto(at)
    missing = data.missing("candles")
    if missing:
        return []
    ctx = context(data, at)
    r = _batch.memo(ctx, _batch.CDIV_ROW, lambda: _cdiv_row(ctx))
    if r is None:
        return []
    direction = "short" if r["cdiv_divergence"] == "bearish" else "long"
    ev = [
        Evidence("close_px", r["close_px"], "new 7d extreme", True),
        Evidence("prior extreme px", r["cdiv_prior_price"], None, True),
        Evidence("CVD", r["cvd_base"], r["cdiv_prior_value"], True),
    ]
    trig = {"level": r["close_px"], "extreme": r["close_px"]}
    return [_signal("cvd_divergence", data, at, direction, 0.5, ev, ctx, (), trig=trig)]


def basis_trade(data: MarketData, at: datetime) -> list[Signal]:
    """Basis trade (lines 274, 282): ``entry`` when the 7-day mean funding exceeds +0.03% on a
    venue, ``exit`` when its last settlement is below +0.01% (or negative) while the 7-day mean
    was favourable before (:func:`perpscope.analytics.basis.basis_trade_carry`). Neutral."""
    data = data.upto(at)
    if data.missing("funding"):
        return []
    last = _batch.memo(
        context(data, at),
        _batch.CARRY_LAST,
        lambda: _batch.last_fresh(basis_trade_carry(data.funding), at),  # type: ignore[arg-type]
    )
    out: list[Signal] = []
    fav = last.filter(pl.col("status") == "favorable")
    ext = last.filter((pl.col("status") == "exit") & (pl.col("mean_rate_8h") > 0.0001))
    for frame, stage in ((fav, "entry"), (ext, "exit")):
        if frame.is_empty():
            continue
        by = ["mean_rate_8h", "venue", "instrument"]
        r = frame.sort(by, descending=[True, False, False]).row(0, named=True)
        ev = [
            Evidence(f"{r['venue']} 7d mean rate_8h", r["mean_rate_8h"], 0.0003, stage == "entry"),
            Evidence(f"{r['venue']} last rate_8h", r["rate_8h"], 0.0001, r["rate_8h"] >= 0.0001),
            Evidence("carry annualised", r["carry_annualized"], None, None),
        ]
        out.append(
            Signal(
                "basis_trade",
                data.asset,
                r["ts"],
                "neutral",
                round(clip01(r["mean_rate_8h"] / 0.0006), 4),
                stage,
                tuple(ev),
                str(r["venue"]),
                str(r["instrument"]),
            )
        )
    return out


def funding_rotation(
    btc: MarketData,
    alt: MarketData,
    at: datetime,
    *,
    btc_min_8h: float = 0.0003,
    alt_max_8h: float = 0.0001,
    window_h: float = 24.0,
) -> list[Signal]:
    """BTC-vs-alt rotation (lines 374-375): BTC's mean funding over ``window_h`` at or above
    ``btc_min_8h`` (elevated: above the playbook's mild +0.01..0.03%) while the alt's is at or
    below ``alt_max_8h`` ("low or negative") -> ``watch`` long on the alt (the rotation follows
    the BTC correction)."""
    b, a = btc.upto(at), alt.upto(at)
    if b.missing("funding") or a.missing("funding"):
        return []
    since = at - timedelta(hours=window_h)

    def mean(d: MarketData) -> float:
        ctx = context(d, at)

        def make() -> float:
            f = ts_cut(_agg_funding(ctx), after=since)
            return float(f["rate_8h"].mean()) if f.height else math.nan  # type: ignore[arg-type]

        return _batch.memo(ctx, f"agg_mean_{window_h}", make)

    mb, ma = mean(b), mean(a)
    if not (mb >= btc_min_8h and ma <= alt_max_8h):
        return []
    ev = [
        Evidence("BTC mean rate_8h 24h", mb, btc_min_8h, True),
        Evidence(f"{alt.asset} mean rate_8h 24h", ma, alt_max_8h, True),
    ]
    return [
        Signal(
            "funding_rotation",
            alt.asset,
            at,
            "long",
            round(clip01((mb - ma) / 0.001), 4),
            "watch",
            tuple(ev),
        )
    ]


def _at_extreme(ctx: Context, direction: str) -> tuple[bool, float | None]:
    """Whether the last close is within :data:`~perpscope.signals.options.HIGHS_PCT` % of the
    30-day high (short) or low (long) close, and that high or low."""
    c = ctx.candles
    closes = c.filter(pl.col("ts") > ctx.at - timedelta(days=30))["c"] if c.height else None
    if closes is None or closes.len() == 0:
        return False, None
    last = float(closes[-1])
    if direction == "short":
        hi = float(closes.max())  # type: ignore[arg-type]
        return last >= hi * (1 - HIGHS_PCT / 100), hi
    lo = float(closes.min())  # type: ignore[arg-type]
    return last <= lo * (1 + HIGHS_PCT / 100), lo


def _trigger_ev(trig: Mapping[str, object] | None) -> Evidence:
    return Evidence(
        "structural trigger", None if trig is None else str(trig["event"]), None, trig is not None
    )


def pcr_extreme(data: MarketData, at: datetime) -> list[Signal]:
    """Put/call extreme (playbook line 298): an extremely low put/call OI ratio at market highs
    is a contrarian short, an extremely high one at market lows a contrarian long. ``entry``
    with a structural trigger in that direction, else ``watch`` (also without candles, when
    "at market highs" cannot be checked); max pain is a target when beyond 1R."""
    data = data.upto(at)
    r = options_reading(data, at)
    if r is None or r.pcr_extreme is None:
        return []
    direction = "short" if r.pcr_extreme == "low" else "long"
    ev = options_evidence(r)
    missing = data.missing("candles")
    ctx = context(data, at)
    trig = None
    if not missing:
        near, px = _at_extreme(ctx, direction)
        what = "high" if direction == "short" else "low"
        name = f"close within {HIGHS_PCT:g}% of 30d {what}"
        ev.append(Evidence(name, ctx.last_close(), px, near))
        if not near:
            return []
        trig = ctx.trigger(direction, TRIGGER_BARS)
        ev.append(_trigger_ev(trig))
    agrees = r.skew_pts is not None and (r.skew_pts < 0 if direction == "long" else r.skew_pts > 0)
    ev.append(Evidence("skew agrees", r.skew_pts, 0.0, agrees))
    strength = 0.5 + 0.3 * (trig is not None) + 0.2 * agrees
    return [
        _signal("pcr_extreme", data, at, direction, strength, ev, ctx if not missing else None,
                missing, trig=trig, extra_targets=[r.max_pain_px])
    ]  # fmt: skip


def max_pain_magnet(data: MarketData, at: datetime) -> list[Signal]:
    """Max pain magnet (playbook lines 299-300): the near expiry's (most OI within 7 days) max
    pain 1-10% from the chain's spot pulls price toward it. Entry at the last close, target max
    pain, stop half the way on the other side (about 2R, as the liquidation magnet); ``entry``
    with a structural trigger toward it, else ``watch``."""
    data = data.upto(at)
    r = options_reading(data, at)
    if r is None or r.max_pain_px is None or r.max_pain_pct is None:
        return []
    dist = abs(r.max_pain_pct)
    if not MAGNET_MIN_PCT <= dist <= MAGNET_MAX_PCT:
        return []
    direction = "long" if r.max_pain_pct > 0 else "short"
    ev = options_evidence(r)
    band = f"{MAGNET_MIN_PCT:g}-{MAGNET_MAX_PCT:g}"
    ev.append(Evidence("max pain distance |%|", dist, band, True))
    missing = data.missing("candles")
    ctx = context(data, at)
    trig = None if missing else ctx.trigger(direction, TRIGGER_BARS)
    ev.append(_trigger_ev(trig))
    days = r.expiry_days if r.expiry_days is not None else 7.0
    strength = 0.4 + 0.3 * clip01((7.0 - days) / 7.0) + 0.3 * (trig is not None)
    sig = _signal("max_pain_magnet", data, at, direction, strength, ev,
                  None if missing else ctx, missing)  # fmt: skip
    price = ctx.last_close()
    if missing or price is None:
        return [sig]
    sign = _side(direction)
    target = r.max_pain_px
    return [
        replace(
            sig,
            stage="entry" if trig is not None else "watch",
            entry_low_px=price,
            entry_high_px=price,
            invalidation_px=price - sign * abs(target - price) / 2.0,
            targets_px=(target,) if sign * (target - price) > 0 else (),
        )
    ]


QUIET_FUNDING_8H: Final = 0.0001
"""Line 302, "If funding is neutral": the mean of the venues' last settlements within +/-0.01%
per 8h (the playbook's near-zero band, line 258)."""
QUIET_OI_24H: Final = 0.03
"""Line 302, "OI is flat": aggregate OI within +/-3% over 24h (a tenth of the "sudden spike"
of 10-15% in hours, line 166)."""
FAR_STRIKE: Final = 0.20
"""Line 301, "a strike 20% above the current price": the strike's grade is full at 20% out of
the money in the trade's direction."""


def unusual_options(data: MarketData, at: datetime) -> list[Signal]:
    """Unusual options activity (playbook lines 301-302): option purchases of $10M or more in the
    last 24 hours ("a sudden purchase of $10 million in BTC call options ... suggests that
    someone with significant capital expects a large upward move"). Calls bought -> long, puts
    bought -> short (the larger total wins; sales are evidence only: a seller's view is not
    told by the trade). Strength 0.4, + 0.2 graded by the size up to $30M, + 0.2 by the largest
    purchase's strike up to 20% out of the money, + 0.2 when the perp market is quiet (line
    302: "If funding is neutral, OI is flat ... the options market is telling you something the
    perp market is not"). ``entry`` with a structural trigger in that direction, else ``watch``."""
    data = data.upto(at)
    flow = unusual_flow(data, at)
    if flow is None or flow.call_buys_usd == flow.put_buys_usd:
        return []
    calls = flow.call_buys_usd > flow.put_buys_usd
    direction = "long" if calls else "short"
    bought = max(flow.call_buys_usd, flow.put_buys_usd)
    largest = flow.largest_call if calls else flow.largest_put
    assert largest is not None  # the winning side bought something
    ev = [
        Evidence("unusual call buys USD 24h", flow.call_buys_usd, UNUSUAL_USD, calls),
        Evidence("unusual put buys USD 24h", flow.put_buys_usd, UNUSUAL_USD, not calls),
        Evidence("unusual sells USD 24h", flow.sells_usd),
        Evidence("unusual trades 24h", flow.trades),
        Evidence("largest purchase", f"{largest['instrument']} at {largest['ts'].isoformat()}"),
        Evidence("largest purchase USD", largest["notional_usd"], UNUSUAL_USD, True),
        Evidence("largest purchase days to expiry", largest["days_to_expiry"]),
    ]
    otm = largest["strike_distance_pct"]
    otm = None if otm is None else _side(direction) * float(otm)
    ev.append(Evidence("strike out of the money", otm, FAR_STRIKE, otm is not None and otm > 0))
    funding = None
    if not data.missing("funding"):
        latest = _fresh(latest_rows(context(data, at).persistence()), at)
        if latest.height:
            funding = float(latest["rate_8h"].mean())  # type: ignore[arg-type]
    oi_24h = math.nan if data.oi is None else change_since(data.oi, "oi_usd", at, 24.0)
    quiet_f = funding is not None and abs(funding) <= QUIET_FUNDING_8H
    quiet_oi = abs(oi_24h) <= QUIET_OI_24H  # False when unknown (NaN)
    ev.append(Evidence("perp funding neutral (mean rate_8h)", funding, QUIET_FUNDING_8H, quiet_f))
    ev.append(Evidence("perp OI flat (24h change)", oi_24h, QUIET_OI_24H, quiet_oi))
    missing = data.missing("candles")
    ctx = context(data, at)
    trig = None if missing else ctx.trigger(direction, TRIGGER_BARS)
    ev.append(_trigger_ev(trig))
    size = clip01((bought - UNUSUAL_USD) / (2.0 * UNUSUAL_USD))
    strike = clip01((otm or 0.0) / FAR_STRIKE)
    strength = 0.4 + 0.2 * size + 0.2 * strike + 0.2 * (quiet_f and quiet_oi)
    return [
        _signal("unusual_options", data, at, direction, strength, ev,
                None if missing else ctx, missing, trig=trig)
    ]  # fmt: skip


Detector = Callable[[MarketData, datetime], list[Signal]]

DETECTORS: Final[dict[str, Detector]] = {
    "funding_fade": funding_fade,
    "funding_divergence": funding_divergence,
    "funding_acceleration": funding_acceleration_setup,
    "oi_divergence": oi_divergence_setup,
    "triple_confluence": triple_confluence,
    "liquidation_magnet": liquidation_magnet,
    "cvd_divergence": cvd_divergence,
    "basis_trade": basis_trade,
    "pcr_extreme": pcr_extreme,
    "max_pain_magnet": max_pain_magnet,
    "unusual_options": unusual_options,
}
"""Single-asset detectors by setup name (``funding_rotation`` needs BTC and the alt)."""


def detect_all(assets: Mapping[str, MarketData], at: datetime) -> list[Signal]:
    """Every detector over every asset at ``at``, plus the rotation of each alt against BTC.

    The computations the detectors share run once over all the assets together
    (:func:`perpscope.signals._batch.prepare`), not asset by asset; the signals are the ones each
    detector gives on its own asset."""
    out: list[Signal] = []
    assets = {k: d.window(at) for k, d in assets.items()}
    _batch.prepare(assets, at, trigger_bars=TRIGGER_BARS)
    for data in assets.values():
        for det in DETECTORS.values():
            out.extend(det(data, at))
    btc = assets.get("BTC")
    if btc is not None:
        for name, data in assets.items():
            if name != "BTC":
                out.extend(funding_rotation(btc, data, at))
    return out
