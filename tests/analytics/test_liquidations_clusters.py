"""Reading a liquidation map (clusters, asymmetry, proximity, trade helper) and scoring it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from perpscope.analytics.liquidations import (
    asymmetry,
    find_clusters,
    naive_map,
    nearest_cluster,
    rebin_map,
    score_map,
    spearman,
    trade_check,
    truth_map,
)

PRICE = 100.0
# Long liquidations at 97.2 (big) and 94.1 (small) below; shorts at 101.3 above.
MAP = pl.DataFrame(
    {
        "price": [97.2, 97.3, 94.1, 101.3, 150.0],
        "long_usd": [600.0, 200.0, 100.0, 0.0, 0.0],
        "short_usd": [0.0, 0.0, 0.0, 300.0, 999.0],
    }
)


def test_rebin_map_sums_into_half_percent_bins_around_price() -> None:
    grid = rebin_map(MAP, PRICE)
    assert grid.height == 80  # +-20% in 0.5% bins
    k = {r["k"]: r for r in grid.filter(pl.col("total_usd") > 0).iter_rows(named=True)}
    # 97.2 and 97.3 are -2.8% and -2.7%: bin k = floor(-2.8 / 0.5) = -6 for both
    assert k[-6]["long_usd"] == 800.0
    assert k[-12]["long_usd"] == 100.0  # -5.9% -> -12
    assert k[2]["short_usd"] == 300.0  # +1.3% -> 2
    assert grid["total_usd"].sum() == 1200.0  # 150 is outside the window


def test_clusters_are_density_peaks_with_side_distance_and_density() -> None:
    clusters = find_clusters(MAP, PRICE)
    assert clusters["price"].to_list() == pytest.approx([97.25, 101.25, 94.25])
    top = clusters.row(0, named=True)
    assert top["side"] == "long"
    assert top["notional_usd"] == 800.0
    assert top["distance_pct"] == pytest.approx(-2.75)
    assert top["density"] == pytest.approx(800.0 / (1200.0 / 80))  # peak bin / mean bin
    assert clusters.row(1, named=True)["side"] == "short"


def test_asymmetry_reads_the_denser_side_as_the_likelier_sweep() -> None:
    a = asymmetry(MAP, PRICE, window_pct=0.1)
    assert (a.long_below_usd, a.short_above_usd) == (900.0, 300.0)
    assert a.ratio == pytest.approx(3.0)
    assert "downside" in a.read
    # the mirror image around the price: shorts dense above
    flipped = MAP.select(
        price=2 * PRICE - pl.col("price"), long_usd="short_usd", short_usd="long_usd"
    )
    assert "upside" in asymmetry(flipped, PRICE).read


def test_nearest_dense_cluster_within_a_distance() -> None:
    clusters = find_clusters(MAP, PRICE)
    near = nearest_cluster(clusters, within_pct=2.0, min_density=2.0)
    assert near is not None
    assert near["price"] == pytest.approx(101.25)
    assert nearest_cluster(clusters, within_pct=1.0) is None


def test_trade_helper_lists_clusters_on_the_way_and_flags_a_liq_price_inside_one() -> None:
    clusters = find_clusters(MAP, PRICE)
    short_trade = trade_check(clusters, entry_px=100.0, target_px=93.0, own_liq_px=101.4)
    assert short_trade.between["price"].to_list() == pytest.approx([97.25, 94.25])
    assert short_trade.own_liq_in_cluster is not None
    assert short_trade.own_liq_in_cluster["side"] == "short"
    safe = trade_check(clusters, entry_px=100.0, target_px=103.0, own_liq_px=110.0)
    assert safe.own_liq_in_cluster is None


def test_spearman_matches_hand_values_and_handles_ties() -> None:
    # No ties: 1 - 6*sum(d^2)/(n(n^2-1)) = 1 - 6*2/24 = 0.5
    assert spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    # Ties: ranks of [0, 0, 1, 2] are [1.5, 1.5, 3, 4]; of [0, 1, 1, 5] are [1, 2.5, 2.5, 4];
    # Pearson of the centred ranks [-1,-1,.5,1.5] and [-1.5,0,0,1.5] = 3.75/sqrt(4.5*4.5)
    assert spearman([0, 0, 1, 2], [0, 1, 1, 5]) == pytest.approx(3.75 / 4.5)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_truth_map_takes_each_position_latest_state() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [
        (t0, 1, "open", "long", 1000.0, 90.0),
        (t0, 2, "open", "short", 500.0, 110.0),
        (t0 + timedelta(hours=2), 2, "liquidated", "short", 0.0, 110.0),
        (t0 + timedelta(hours=1), 3, "open", "long", 700.0, 95.0),
        (t0 + timedelta(hours=1), 4, "open", "long", 300.0, None),  # market maker: no liq px
    ]
    positions = pl.DataFrame(
        rows,
        schema=["ts", "position_id", "event", "side", "notional_usd", "liquidation_px"],
        orient="row",
    )
    at_1h = truth_map(positions, t0 + timedelta(hours=1))
    assert sorted(at_1h.rows()) == [(90.0, 1000.0, 0.0), (95.0, 700.0, 0.0), (110.0, 0.0, 500.0)]
    at_3h = truth_map(positions, t0 + timedelta(hours=3))
    assert sorted(at_3h["price"].to_list()) == [90.0, 95.0]


def test_naive_map_spreads_oi_over_six_leverages_on_both_sides() -> None:
    m = naive_map(1200.0, 100.0)
    assert sorted(m["price"].to_list()) == pytest.approx(
        [80, 90, 95, 96, 98, 99, 101, 102, 104, 105, 110, 120]
    )
    assert m["long_usd"].sum() == m["short_usd"].sum() == 600.0


def test_a_map_scores_perfectly_against_itself_and_worse_against_the_naive_one() -> None:
    truth = MAP.head(4)
    same = score_map(truth, truth, PRICE)
    assert same.spearman == pytest.approx(1.0)
    assert same.hit_rate == 1.0
    naive = score_map(naive_map(1200.0, PRICE), truth, PRICE)
    assert naive.spearman < 0.5
