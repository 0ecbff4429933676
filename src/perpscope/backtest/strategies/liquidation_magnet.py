"""Liquidation magnet scalp: trade toward a dense liquidation cluster, exit at the cascade's climax.

The playbook: "When the liquidation heatmap shows a dense cluster on one side (longs below or
shorts above) and price is consolidating near the cluster: Identify the direction of the nearest
dense cluster; Watch for a structural trigger that initiates the move toward the cluster; Enter in
the direction of the sweep with a target just beyond the cluster; Exit as the cascade completes
(volume spike, rapid price extension, then reversal candle) [...] Position sizing should be
conservative". Its exit: "The cascade climax is identifiable by a volume spike that is 5-10x the
trailing hourly average [...] with a rapid price extension and an immediate reversal candle [...]
Close the remaining position."

At each bar's close, with only what is known then:

* **the cluster**: the ESTIMATED liquidation map after the bar
  (:func:`perpscope.analytics.liquidations.estimate_heatmap` on the bars and the open interest
  known at each close; new notional split long/short by the candle's direction, since the
  backtest's market has no taker volume; bins on a fixed lattice, so that a bar's map does not
  depend on later prices), read with
  :func:`~perpscope.analytics.liquidations.find_clusters`: of the clusters whose centre is
  within ``within_pct`` percent of the close and whose density is at least ``min_density``, the
  one with the most notional (as the ``liquidation_magnet`` signal picks it). Long liquidations
  below point short, short liquidations above long;
* **the trigger**: a swing failure or break of structure of
  :func:`perpscope.analytics.structure.structure` on this bar, toward the cluster;
* the near edge of the cluster must still be ahead of the close.

Entry at the next bar's open at ``size`` times the configured risk. The stop is ``stop_buffer``
beyond the trigger bar's extreme (measured from the close); T1 is the cluster's near edge, T2
``beyond`` past its far edge ("a target just beyond the cluster"), and there is no T3: the rest
is closed at the next open after the **climax** of a cascade of the cluster's side, found by
:func:`~perpscope.analytics.liquidations.detect_cascades` with the stored REALISED liquidations
of that side as the bar's volume (the forced orders are the cascade's volume): at least
``climax_mult`` times their trailing average, a new 24-bar extreme after a rapid move, and a
reversal wick. Every candidate bar counts (no merging: merging picks the most extreme of later
bars, which a trader at the close cannot know). The detector counts its windows in bars (a
24-bar extreme, a 168-bar trailing average): on hourly bars, as the playbook's "trailing hourly
average" reads. Use ``--time-stop-bars`` to bound the holding
time (the playbook: "usually 1-4 hours"), and ``--cascade-slippage`` for the extra slippage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from perpscope.analytics.liquidations import (
    CascadeParams,
    HeatmapParams,
    LiquidationHeatmap,
    detect_cascades,
    estimate_heatmap,
    find_clusters,
)
from perpscope.backtest.strategies._common import (
    known_index,
    require_oi,
    stop_beyond,
    structure_triggers,
)
from perpscope.backtest.types import Market, Signals

__all__ = ["LiquidationMagnetParams", "liquidation_magnet"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LiquidationMagnetParams:
    """Parameters of :func:`liquidation_magnet` (see the module doc).

    Attributes:
        within_pct: the cluster's centre within this percent of the close (5: the playbook's
            clusters "3-5% below current price").
        min_density: the cluster's peak bin over the mean bin (the signal's 2.0).
        beyond: T2's distance past the cluster's far edge, a fraction of price (0.001 = 0.1%).
        swing_width: bars on each side of a swing (analytics.structure's default 3).
        stop_buffer: the stop's distance beyond the trigger bar's extreme, a fraction of price.
        size: a multiple of the configured risk ("conservative": half).
        climax_mult: the climax's liquidations over their trailing hourly average (the
            playbook's "5-10x": 5).
        leverages: the estimate's leverage tiers (the estimator's default).
        weights: the share of new notional at each tier (the estimator's default).
    """

    within_pct: float = 5.0
    min_density: float = 2.0
    beyond: float = 0.001
    swing_width: int = 3
    stop_buffer: float = 0.001
    size: float = 0.5
    climax_mult: float = 5.0
    leverages: tuple[float, ...] = (5.0, 10.0, 25.0, 50.0, 100.0)
    weights: tuple[float, ...] = (0.15, 0.30, 0.25, 0.20, 0.10)

    def validate(self) -> None:
        """Raises ValueError naming the first bad parameter."""
        if not (math.isfinite(self.within_pct) and 0 < self.within_pct <= 20):
            raise ValueError("within_pct must be a percent in (0, 20]")
        if not (math.isfinite(self.min_density) and self.min_density >= 0):
            raise ValueError("min_density must be >= 0")
        for name in ("beyond", "stop_buffer"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value < 0.5):
                raise ValueError(f"{name} must be a fraction in [0, 0.5)")
        if self.swing_width < 1:
            raise ValueError("swing_width must be at least 1 bar")
        if not (math.isfinite(self.size) and 0 < self.size <= 10):
            raise ValueError("size must be a risk multiple in (0, 10]")
        if not (math.isfinite(self.climax_mult) and self.climax_mult > 1):
            raise ValueError("climax_mult must be above 1")
        if len(self.leverages) != len(self.weights) or not self.leverages:
            raise ValueError("leverages and weights need one weight per leverage tier")
        if min(self.leverages) < 1 or min(self.weights) < 0 or sum(self.weights) <= 0:
            raise ValueError("leverages must be >= 1 and weights non-negative, not all zero")


def _check_inputs(market: Market) -> None:
    require_oi(market, "liquidation-magnet", " for its liquidation map")
    if market.liq_ts is None or len(market.liq_ts) == 0:
        raise ValueError(
            "liquidation-magnet needs stored liquidation events of the traded perpetual "
            "(table liquidations)"
        )


def _bars(market: Market) -> pl.DataFrame:
    """The estimator's input: the bars and the open interest known at each bar's close."""
    assert market.oi_ts is not None
    assert market.oi is not None
    idx = known_index(market.ts, market.oi_ts)
    oi = np.where(idx >= 0, market.oi[np.clip(idx, 0, None)], np.nan)
    return pl.DataFrame(
        {
            "ts": pl.Series(market.ts).cast(pl.Datetime("ns", "UTC")),
            "o": market.o,
            "h": market.h,
            "l": market.l,
            "c": market.c,
            "mark_h": market.mark_h,
            "mark_l": market.mark_l,
            "oi_usd": oi,
        }
    )


def _levels_after(heat: LiquidationHeatmap, i: int) -> pl.DataFrame:
    """The estimated map after bar ``i``: ``price long_usd short_usd``."""
    start, width, nb = int(heat.heat_start[i]), heat.heat_long.shape[1], heat.bin_px.size
    lo, hi = max(start, 0), min(start + width, nb)
    return pl.DataFrame(
        {
            "price": heat.bin_px[lo:hi],
            "long_usd": heat.heat_long[i, lo - start : hi - start].astype(np.float64),
            "short_usd": heat.heat_short[i, lo - start : hi - start].astype(np.float64),
        }
    )


def _cluster(
    levels: pl.DataFrame, close: float, p: LiquidationMagnetParams
) -> dict[str, Any] | None:
    """The cluster to trade toward, or None."""
    near = find_clusters(levels, close).filter(
        (pl.col("distance_pct").abs() <= p.within_pct) & (pl.col("density") >= p.min_density)
    )
    return None if near.is_empty() else near.sort("notional_usd").row(-1, named=True)


def _climax_exits(market: Market, climax_mult: float) -> npt.NDArray[np.int8]:
    """+1 (close a long) after a buy-cascade climax, -1 (close a short) after a sell cascade."""
    assert market.liq_ts is not None
    assert market.liq_long is not None
    assert market.liq_usd is not None
    n = len(market.ts)
    bar = np.searchsorted(market.ts, market.liq_ts, side="right") - 1
    step = market.ts[-1] - market.ts[-2] if n > 1 else 3_600_000_000_000
    ok = (bar >= 0) & (market.liq_ts < market.ts[-1] + step)  # inside a bar, not after the last
    out = np.zeros(n, np.int8)
    bars = _bars(market).select("ts", "o", "h", "l", "c")
    for side, is_long, close_side in (("long", True, -1), ("short", False, 1)):
        pick = ok & (market.liq_long == is_long)
        volume = np.bincount(bar[pick], weights=market.liq_usd[pick], minlength=n)[:n]
        candles = bars.with_columns(volume=volume)
        found = detect_cascades(candles, None, CascadeParams(volume_mult=climax_mult, merge_h=1))
        hits = found.filter(pl.col("side") == side)["climax_ts"].dt.epoch("ns").to_numpy()
        out[np.isin(market.ts, hits)] = close_side
    return out


def liquidation_magnet(market: Market, params: LiquidationMagnetParams) -> Signals:
    """Signals of the liquidation magnet scalp on ``market`` (see the module doc).

    Raises:
        ValueError: bad parameters, or no open interest or no liquidation events in the market.
    """
    params.validate()
    _check_inputs(market)
    n = len(market.ts)
    trig = structure_triggers(market, params.swing_width)
    stop = stop_beyond(market.c, trig.extreme, trig.side, params.stop_buffer)
    heat = estimate_heatmap(
        _bars(market),
        HeatmapParams(
            params.leverages,
            params.weights,
            split="candle",
            grid_origin_px=1.0,
            turnover_half_life_h=None,  # the strategy's own frozen estimate (no turnover)
        ),
    )
    entry = np.zeros(n, np.int8)
    targets = np.full((n, 3), np.nan)
    for i in np.flatnonzero(trig.side).tolist():
        close = float(market.c[i])
        cl = _cluster(_levels_after(heat, i), close, params)
        if cl is None or (-1 if cl["side"] == "long" else 1) != trig.side[i]:
            continue
        side = int(trig.side[i])
        near, far = (cl["high_px"], cl["low_px"]) if side < 0 else (cl["low_px"], cl["high_px"])
        risk_px = close * stop[i]
        t1 = side * (near - close) / risk_px
        t2 = side * (far * (1.0 + side * params.beyond) - close) / risk_px
        if t1 > 0:
            entry[i] = side
            targets[i, :2] = (t1, t2)
    return Signals(
        entry,
        np.zeros(n, np.bool_),
        stop,
        targets,
        np.full(n, np.nan),
        np.where(entry != 0, params.size, 0.0),
        _climax_exits(market, params.climax_mult),
    )
