"""Scoring an estimated liquidation map against ground truth (the simulator's positions).

The truth map bins every open position at its true liquidation price; both maps are summed into
0.5% bins within +-20% of price, then compared by Spearman rank correlation of the bins' notional
and by the top-5 cluster hit rate. The naive baseline puts all OI at the current price, half long
and half short, evenly over 5/10/20/25/50/100x at ``price x (1 -+ 1/L)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from perpscope.analytics.liquidations.clusters import find_clusters, rebin_map

__all__ = [
    "NAIVE_LEVERAGES",
    "MapScore",
    "naive_map",
    "open_positions",
    "score_map",
    "spearman",
    "truth_map",
]

NAIVE_LEVERAGES: Final = (5.0, 10.0, 20.0, 25.0, 50.0, 100.0)
"""Leverages of the naive baseline (the issue's definition)."""


def _average_ranks(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Ranks 1..n, ties sharing the mean of their ranks."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size)
    sx = x[order]
    i = 0
    while i < x.size:
        j = i
        while j + 1 < x.size and sx[j + 1] == sx[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Spearman rank correlation (Pearson correlation of average ranks); NaN if a side is flat."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if x.shape != y.shape or x.size < 2:
        raise ValueError("spearman needs two arrays of the same length >= 2")
    rx, ry = _average_ranks(x), _average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = float(np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / den) if den > 0 else float("nan")


def open_positions(positions: pl.DataFrame, at: datetime) -> pl.DataFrame:
    """The trader positions open at ``at``: each position's latest event at or before it is an
    ``open`` or ``change`` with a liquidation price and notional (the market maker's inventory
    has no liquidation price and is left out). One row per position, its latest event."""
    return (
        positions.filter(pl.col("ts") <= at)
        .sort("ts")
        .group_by("position_id", maintain_order=True)
        .last()
        .filter(
            pl.col("event").is_in(["open", "change"])
            & pl.col("liquidation_px").is_not_null()
            & (pl.col("notional_usd") > 0)
        )
    )


def truth_map(positions: pl.DataFrame, at: datetime) -> pl.DataFrame:
    """Ground truth: every position open at ``at`` at its true liquidation price.

    Args:
        positions: ``sim_positions`` rows of one venue and instrument (``position_id``,
            ``event``, ``ts``, ``side``, ``notional_usd``, ``liquidation_px``).
        at: the time of the map; each position's latest event at or before it decides whether
            it is open (positions without a liquidation price, the market maker's, are left out).

    Returns:
        A map frame ``price, long_usd, short_usd`` (one row per position).
    """
    return open_positions(positions, at).select(
        price=pl.col("liquidation_px"),
        long_usd=pl.when(pl.col("side") == "long").then(pl.col("notional_usd")).otherwise(0.0),
        short_usd=pl.when(pl.col("side") == "short").then(pl.col("notional_usd")).otherwise(0.0),
    )


def naive_map(oi_usd: float, price: float) -> pl.DataFrame:
    """The naive baseline: ``oi_usd`` half long, half short, evenly over :data:`NAIVE_LEVERAGES`
    at ``price x (1 - 1/L)`` (longs) and ``price x (1 + 1/L)`` (shorts)."""
    share = oi_usd / 2.0 / len(NAIVE_LEVERAGES)
    lev = np.asarray(NAIVE_LEVERAGES)
    return pl.DataFrame(
        {
            "price": np.concatenate([price * (1 - 1 / lev), price * (1 + 1 / lev)]),
            "long_usd": np.concatenate([np.full(lev.size, share), np.zeros(lev.size)]),
            "short_usd": np.concatenate([np.zeros(lev.size), np.full(lev.size, share)]),
        }
    )


@dataclass(frozen=True, slots=True)
class MapScore:
    """How well an estimated map matches the truth near ``price``.

    ``spearman``: rank correlation of notional over the bins; ``hit_rate``: share of the
    estimate's top clusters within one bin of one of the truth's top clusters.
    """

    spearman: float
    hit_rate: float
    clusters: int


def score_map(
    estimate: pl.DataFrame,
    truth: pl.DataFrame,
    price: float,
    *,
    bin_pct: float = 0.005,
    window_pct: float = 0.2,
    top: int = 5,
) -> MapScore:
    """Score ``estimate`` against ``truth`` (both map frames) around ``price``."""
    est = rebin_map(estimate, price, bin_pct=bin_pct, window_pct=window_pct)
    tru = rebin_map(truth, price, bin_pct=bin_pct, window_pct=window_pct)
    rho = spearman(est["total_usd"].to_numpy(), tru["total_usd"].to_numpy())
    ce = find_clusters(estimate, price, bin_pct=bin_pct, window_pct=window_pct, top=top)
    ct = find_clusters(truth, price, bin_pct=bin_pct, window_pct=window_pct, top=top)
    if ce.is_empty():
        return MapScore(rho, 0.0, 0)
    tol = bin_pct * price * 1.0001
    truth_px = ct["price"].to_numpy()
    hits = sum(
        1 for p in ce["price"].to_list() if truth_px.size and np.abs(truth_px - p).min() <= tol
    )
    return MapScore(rho, hits / ce.height, ce.height)
