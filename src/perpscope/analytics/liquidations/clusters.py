"""Reading a liquidation map: clusters, the asymmetry read, proximity, and the trade helper.

A *map* is a frame ``price, long_usd, short_usd`` (notional whose liquidation price is in the bin;
long liquidations sit below the current price, short liquidations above), as
:meth:`LiquidationHeatmap.levels` returns. The playbook's three uses: clusters act as magnets
(price is drawn to sweep them), the denser side is the likelier sweep, and a stop or a liquidation
price inside a cluster is a poor place to be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

__all__ = [
    "CLUSTER_COLUMNS",
    "Asymmetry",
    "TradeCheck",
    "asymmetry",
    "find_clusters",
    "nearest_cluster",
    "rebin_map",
    "trade_check",
]

CLUSTER_COLUMNS: Final = (
    "price",
    "side",
    "notional_usd",
    "distance_pct",
    "density",
    "low_px",
    "high_px",
)
"""Columns of :func:`find_clusters`."""


def rebin_map(
    levels: pl.DataFrame, price: float, *, bin_pct: float = 0.005, window_pct: float = 0.2
) -> pl.DataFrame:
    """Sum a map into bins of ``bin_pct`` of ``price`` within ``+-window_pct`` of it.

    Bin ``k`` covers ``[price*(1 + k*bin_pct), price*(1 + (k+1)*bin_pct))`` for
    ``k = -K..K-1`` with ``K = round(window_pct / bin_pct)``; every bin appears, empty ones with 0.

    Returns:
        Columns ``k``, ``low_px``, ``high_px``, ``price`` (bin centre), ``long_usd``,
        ``short_usd``, ``total_usd``, sorted by price.
    """
    if price <= 0:
        raise ValueError("price must be positive")
    half = round(window_pct / bin_pct)
    ks = np.arange(-half, half)
    totals_l = np.zeros(ks.size)
    totals_s = np.zeros(ks.size)
    if levels.height:
        px = levels["price"].to_numpy()
        k = np.floor((px / price - 1.0) / bin_pct + 1e-9).astype(np.int64)
        inside = (k >= -half) & (k < half)
        idx = k[inside] + half
        np.add.at(totals_l, idx, levels["long_usd"].to_numpy()[inside])
        np.add.at(totals_s, idx, levels["short_usd"].to_numpy()[inside])
    low = price * (1.0 + ks * bin_pct)
    high = price * (1.0 + (ks + 1) * bin_pct)
    return pl.DataFrame(
        {
            "k": ks,
            "low_px": low,
            "high_px": high,
            "price": (low + high) / 2.0,
            "long_usd": totals_l,
            "short_usd": totals_s,
            "total_usd": totals_l + totals_s,
        }
    )


def _peaks(values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Indices of local maxima (>= left neighbour, > right neighbour, > 0)."""
    left = np.concatenate([[-np.inf], values[:-1]])
    right = np.concatenate([values[1:], [-np.inf]])
    return np.flatnonzero((values >= left) & (values > right) & (values > 0))


def find_clusters(
    levels: pl.DataFrame,
    price: float,
    *,
    bin_pct: float = 0.005,
    window_pct: float = 0.2,
    top: int = 10,
) -> pl.DataFrame:
    """Density peaks of a map: where liquidation notional piles up near ``price``.

    The map is summed into ``bin_pct`` bins within ``+-window_pct`` of price; a cluster is a
    local maximum of the bins' notional together with its two neighbouring bins.

    Returns:
        Up to ``top`` clusters, densest first, with :data:`CLUSTER_COLUMNS`: ``price`` (the peak
        bin's centre), ``side`` (``long`` below price: long liquidations; ``short`` above),
        ``notional_usd`` (peak bin plus neighbours), ``distance_pct`` (signed, ``+1.5`` = 1.5%
        above price), ``density`` (peak bin notional / mean bin notional in the window) and the
        cluster's ``low_px``/``high_px``.
    """
    grid = rebin_map(levels, price, bin_pct=bin_pct, window_pct=window_pct)
    total = grid["total_usd"].to_numpy()
    mean = float(total.mean()) if total.size else 0.0
    rows = []
    for i in _peaks(total).tolist():
        lo, hi = max(i - 1, 0), min(i + 1, total.size - 1)
        centre = float(grid["price"][i])
        rows.append(
            {
                "price": centre,
                "side": "long" if centre < price else "short",
                "notional_usd": float(total[lo : hi + 1].sum()),
                "distance_pct": (centre / price - 1.0) * 100.0,
                "density": float(total[i]) / mean if mean > 0 else 0.0,
                "low_px": float(grid["low_px"][lo]),
                "high_px": float(grid["high_px"][hi]),
                "_peak": float(total[i]),
            }
        )
    schema = {
        "price": pl.Float64,
        "side": pl.String,
        "notional_usd": pl.Float64,
        "distance_pct": pl.Float64,
        "density": pl.Float64,
        "low_px": pl.Float64,
        "high_px": pl.Float64,
        "_peak": pl.Float64,
    }
    frame = pl.DataFrame(rows, schema=schema)
    return frame.sort("_peak", descending=True).head(top).drop("_peak")


@dataclass(frozen=True, slots=True)
class Asymmetry:
    """Long liquidations below vs short liquidations above price, within a window.

    ``read`` is the playbook's: more notional below means a downside sweep of the longs is the
    likelier move, and the reverse; within 10% of each other it is balanced.
    """

    window_pct: float
    long_below_usd: float
    short_above_usd: float
    ratio: float | None
    read: str


def asymmetry(levels: pl.DataFrame, price: float, *, window_pct: float = 0.1) -> Asymmetry:
    """The asymmetry read of a map within ``+-window_pct`` of ``price``."""
    if levels.height:
        rel = levels["price"].to_numpy() / price - 1.0
        inside = np.abs(rel) <= window_pct
        below = float(levels["long_usd"].to_numpy()[inside & (rel < 0)].sum())
        above = float(levels["short_usd"].to_numpy()[inside & (rel > 0)].sum())
    else:
        below = above = 0.0
    ratio = below / above if above > 0 else None
    if below == above == 0:
        read = "no estimated liquidations in the window"
    elif ratio is not None and 1 / 1.1 <= ratio <= 1.1:
        read = "balanced: no side is clearly denser"
    elif below > above:
        read = "more long liquidations below: a downside sweep is the likelier move"
    else:
        read = "more short liquidations above: an upside squeeze is the likelier move"
    return Asymmetry(window_pct, below, above, ratio, read)


def nearest_cluster(
    clusters: pl.DataFrame, *, within_pct: float = 2.0, min_density: float = 2.0
) -> dict[str, object] | None:
    """Proximity (an alert input): the nearest cluster with ``density >= min_density`` whose
    price is within ``within_pct`` percent of the current price, or ``None``."""
    near = clusters.filter(
        (pl.col("distance_pct").abs() <= within_pct) & (pl.col("density") >= min_density)
    )
    if near.is_empty():
        return None
    return near.sort(pl.col("distance_pct").abs()).row(0, named=True)


@dataclass(frozen=True, slots=True)
class TradeCheck:
    """The trade helper's answer for one planned trade.

    Attributes:
        between: clusters whose price lies between entry and target (nearest entry first): the
            fuel the move must pass through, and where it may stall or accelerate.
        own_liq_in_cluster: the cluster holding the trader's own liquidation price, if any
            (a liquidation price inside a cluster gets swept with the crowd's).
    """

    between: pl.DataFrame
    own_liq_in_cluster: dict[str, object] | None


def trade_check(
    clusters: pl.DataFrame, *, entry_px: float, target_px: float, own_liq_px: float | None = None
) -> TradeCheck:
    """Clusters between ``entry_px`` and ``target_px``, and whether ``own_liq_px`` is in one."""
    lo, hi = min(entry_px, target_px), max(entry_px, target_px)
    between = clusters.filter((pl.col("price") >= lo) & (pl.col("price") <= hi)).sort(
        (pl.col("price") - entry_px).abs()
    )
    inside = None
    if own_liq_px is not None:
        hit = clusters.filter((pl.col("low_px") <= own_liq_px) & (pl.col("high_px") >= own_liq_px))
        inside = None if hit.is_empty() else hit.row(0, named=True)
    return TradeCheck(between, inside)
