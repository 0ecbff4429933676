"""Liquidations: the ESTIMATED heatmap and map, its clusters, scoring, cascades and REALISED flows.

* :mod:`.estimator`: the heatmap estimator of anchors C.2 (numba kernel, Python reference).
* :mod:`.clusters`: clusters, the asymmetry read, proximity and the trade helper.
* :mod:`.scoring`: Spearman and cluster hit rate against ground truth, and the naive baseline.
* :mod:`.cascades`: the cascade detector on candles (and realised liquidations).
* :mod:`.realised`: realised liquidation flows by venue, side and window.
"""

from __future__ import annotations

from perpscope.analytics.liquidations.cascades import (
    CASCADE_COLUMNS,
    CascadeParams,
    detect_cascades,
)
from perpscope.analytics.liquidations.clusters import (
    CLUSTER_COLUMNS,
    Asymmetry,
    TradeCheck,
    asymmetry,
    find_clusters,
    nearest_cluster,
    rebin_map,
    trade_check,
)
from perpscope.analytics.liquidations.estimator import (
    ESTIMATED,
    HeatmapParams,
    LiquidationHeatmap,
    assemble_bars,
    estimate_heatmap,
    tier_factors,
    tiers_from_table,
)
from perpscope.analytics.liquidations.realised import REALISED, WINDOWS_H, realised_flows
from perpscope.analytics.liquidations.scoring import (
    NAIVE_LEVERAGES,
    MapScore,
    naive_map,
    score_map,
    spearman,
    truth_map,
)

__all__ = [
    "CASCADE_COLUMNS",
    "CLUSTER_COLUMNS",
    "ESTIMATED",
    "NAIVE_LEVERAGES",
    "REALISED",
    "WINDOWS_H",
    "Asymmetry",
    "CascadeParams",
    "HeatmapParams",
    "LiquidationHeatmap",
    "MapScore",
    "TradeCheck",
    "assemble_bars",
    "asymmetry",
    "detect_cascades",
    "estimate_heatmap",
    "find_clusters",
    "naive_map",
    "nearest_cluster",
    "realised_flows",
    "rebin_map",
    "score_map",
    "spearman",
    "tier_factors",
    "tiers_from_table",
    "trade_check",
    "truth_map",
]
