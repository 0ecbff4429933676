"""The ESTIMATED liquidation heatmap: hand-built cases, the kernel against its Python reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from perpscope.analytics.liquidations import (
    HeatmapParams,
    assemble_bars,
    estimate_heatmap,
    tiers_from_table,
)
from perpscope.risk import Tier, check_tiers

T0 = datetime(2024, 1, 1, tzinfo=UTC)

# Binance-like tiers: 0.4% up to 50k, then 0.5% with cum = 50,000 x (0.5% - 0.4%) = 50.
TIERS = check_tiers(
    [Tier(1, 0.0, 50_000.0, 0.004, 0.0, 125.0), Tier(2, 50_000.0, 250_000.0, 0.005, 50.0, 100.0)]
)


def _bars(rows: list[dict[str, float]]) -> pl.DataFrame:
    """Hourly bars from dicts of o, h, l, c, oi_base (+ optional taker columns)."""
    return pl.DataFrame(
        [{"ts": T0 + timedelta(hours=i), **r} for i, r in enumerate(rows)]
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))


# One rising bar whose typical price (h + l + c) / 3 is exactly 50,000; OI goes 0 -> 1 BTC.
OPEN_BAR = {"o": 49_950.0, "h": 50_100.0, "l": 49_900.0, "c": 50_000.0, "oi_base": 1.0}
QUIET_BAR = {"o": 50_000.0, "h": 50_050.0, "l": 49_950.0, "c": 50_000.0, "oi_base": 1.0}
# Turnover off in the hand-built cases of the other steps (it is checked on its own below).
ONE_LONG_10X = HeatmapParams(
    leverages=(10.0,), weights=(1.0,), split="candle", turnover_half_life_h=None
)


def _only_level(levels: pl.DataFrame, column: str) -> tuple[float, float]:
    held = levels.filter(pl.col(column) > 0)
    assert held.height == 1
    return float(held["price"][0]), float(held[column][0])


def test_one_long_at_10x_from_50000_sits_at_the_formula_price() -> None:
    # By hand, Binance one-way isolated long, tier 1 (10,000 USD < 50,000): wallet = notional/10,
    # LP = (Q*EP - WB - cum) / (Q*(1 - MMR)) = EP*(1 - 1/10)/(1 - 0.004) = 45,000/0.996.
    expected = 45_000.0 / 0.996  # 45,180.72...
    hm = estimate_heatmap(_bars([OPEN_BAR]), ONE_LONG_10X, tiers=TIERS)
    price, usd = _only_level(hm.levels(), "long_usd")
    assert usd == pytest.approx(50_000.0)  # 1 BTC opened at 50,000
    assert abs(price / expected - 1) <= 0.0005 + 1e-12  # within half a 0.1% bin of the formula
    assert hm.short_usd.sum() == 0.0
    assert hm.label == "ESTIMATED"


def test_the_tier_of_the_representative_position_changes_the_level() -> None:
    # 100,000 USD is in tier 2: Q = 2 BTC, WB = 10,000, cum = 50, MMR 0.5%:
    # LP = (2*50,000 - 10,000 - 50) / (2 * 0.995) = 89,950 / 1.99.
    expected = 89_950.0 / 1.99
    params = HeatmapParams(
        leverages=(10.0,), weights=(1.0,), split="candle", position_usd=100_000.0
    )
    price, _ = _only_level(
        estimate_heatmap(_bars([OPEN_BAR]), params, tiers=TIERS).levels(), "long_usd"
    )
    assert abs(price / expected - 1) <= 0.0005 + 1e-12


def test_one_short_at_10x_sits_above_at_the_formula_price() -> None:
    # Short: LP = (Q*EP + WB + cum) / (Q*(1 + MMR)) = 50,000*1.1/1.004.
    falling = {**OPEN_BAR, "o": 50_050.0}
    hm = estimate_heatmap(_bars([falling]), ONE_LONG_10X, tiers=TIERS)
    price, usd = _only_level(hm.levels(), "short_usd")
    assert usd == pytest.approx(50_000.0)
    assert abs(price / (55_000.0 / 1.004) - 1) <= 0.0005 + 1e-12


def test_a_crossed_level_disappears_and_an_uncrossed_one_stays() -> None:
    near_miss = {**QUIET_BAR, "l": 45_400.0}  # above 45,180.72: the level stays
    crossed = {**QUIET_BAR, "l": 45_000.0}  # through it: consumed
    kept = estimate_heatmap(_bars([OPEN_BAR, near_miss]), ONE_LONG_10X, tiers=TIERS)
    assert kept.long_usd.sum() == pytest.approx(50_000.0)
    gone = estimate_heatmap(_bars([OPEN_BAR, near_miss, crossed]), ONE_LONG_10X, tiers=TIERS)
    assert gone.long_usd.sum() == 0.0
    assert gone.levels().is_empty()
    assert gone.consumed_long_usd.tolist() == pytest.approx([0.0, 0.0, 50_000.0])
    # the heatmap keeps the history: the level stood on the first two bars
    assert gone.heat_long.sum(axis=1).tolist() == pytest.approx([50_000.0, 50_000.0, 0.0])


def test_oi_falling_by_half_halves_every_level() -> None:
    params = HeatmapParams(split="neutral", turnover_half_life_h=None)  # ten levels
    before = estimate_heatmap(_bars([OPEN_BAR, QUIET_BAR]), params, tiers=TIERS)
    after = estimate_heatmap(
        _bars([OPEN_BAR, QUIET_BAR, {**QUIET_BAR, "oi_base": 0.5}]), params, tiers=TIERS
    )
    held = (before.long_usd > 0).sum() + (before.short_usd > 0).sum()
    assert held == 10
    np.testing.assert_allclose(after.long_usd, before.long_usd / 2, rtol=1e-12)
    np.testing.assert_allclose(after.short_usd, before.short_usd / 2, rtol=1e-12)


def test_a_fall_in_oi_explained_by_crossed_levels_removes_nothing_more() -> None:
    # 10x and 100x longs, half each; the 100x level (~49,700) is crossed while OI halves:
    # the liquidations explain the whole fall, so the 10x level keeps its 25,000.
    params = HeatmapParams(
        leverages=(10.0, 100.0), weights=(0.5, 0.5), split="candle", turnover_half_life_h=None
    )
    bars = _bars([OPEN_BAR, {**QUIET_BAR, "l": 49_000.0, "oi_base": 0.5}])
    net = estimate_heatmap(bars, params, tiers=TIERS)
    assert net.long_usd.sum() == pytest.approx(25_000.0)
    gross = estimate_heatmap(
        bars,
        HeatmapParams(
            leverages=(10.0, 100.0),
            weights=(0.5, 0.5),
            split="candle",
            net_of_consumed=False,
            turnover_half_life_h=None,
        ),
        tiers=TIERS,
    )
    assert gross.long_usd.sum() == pytest.approx(12_500.0)


def test_decay_halves_levels_every_half_life() -> None:
    params = HeatmapParams(
        leverages=(10.0,),
        weights=(1.0,),
        split="candle",
        half_life_bars=2,
        turnover_half_life_h=None,
    )
    hm = estimate_heatmap(_bars([OPEN_BAR, QUIET_BAR, QUIET_BAR]), params, tiers=TIERS)
    # decay applies before new notional is added: bar 0 adds 50,000, two more bars halve it
    assert hm.long_usd.sum() == pytest.approx(25_000.0)


def test_turnover_moves_half_the_notional_to_the_new_entry_each_half_life() -> None:
    # By hand, with a 1 h turnover half-life on hourly bars: bar 0 opens 1 BTC at 50,000
    # (50,000 USD of 10x longs at 45,000 / 0.996). Bar 1 (typical (52,100 + 51,900 + 52,000) / 3
    # = 52,000, OI unchanged, low above the level): half the standing notional closes (25,000
    # stays) and the half BTC that turned over reopens at 52,000 (26,000 USD at 46,800 / 0.996).
    params = HeatmapParams(
        leverages=(10.0,), weights=(1.0,), split="candle", turnover_half_life_h=1.0
    )
    later = {"o": 51_950.0, "h": 52_100.0, "l": 51_900.0, "c": 52_000.0, "oi_base": 1.0}
    hm = estimate_heatmap(_bars([OPEN_BAR, later]), params, tiers=TIERS)
    levels = hm.levels().filter(pl.col("long_usd") > 0).sort("price")
    assert levels["long_usd"].to_list() == pytest.approx([25_000.0, 26_000.0])
    for got, want in zip(levels["price"], (45_000.0 / 0.996, 46_800.0 / 0.996), strict=True):
        assert abs(got / want - 1) <= 0.0005 + 1e-12
    # OI then halves: each level halves (12,500 and 13,000), half of each turns over (6,250
    # and 6,500 stay) and the quarter BTC that turned over reopens at 52,000 (13,000 USD):
    # the total, 25,750, is half of 51,500, as OI fell by half.
    halved = estimate_heatmap(
        _bars([OPEN_BAR, later, {**later, "oi_base": 0.5}]), params, tiers=TIERS
    )
    lv = halved.levels().filter(pl.col("long_usd") > 0).sort("price")
    assert lv["long_usd"].to_list() == pytest.approx([6_250.0, 19_500.0])
    assert halved.long_usd.sum() == pytest.approx(51_500.0 / 2)


def test_taker_split_puts_the_taker_buy_share_on_the_long_side() -> None:
    bar = {**OPEN_BAR, "volume": 10.0, "taker_buy_volume": 7.0}
    hm = estimate_heatmap(_bars([bar]), HeatmapParams(), tiers=TIERS)
    assert hm.long_usd.sum() == pytest.approx(35_000.0)
    assert hm.short_usd.sum() == pytest.approx(15_000.0)


def test_missing_columns_for_the_chosen_split_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="taker_buy_volume"):
        estimate_heatmap(_bars([OPEN_BAR]), HeatmapParams(split="taker"), tiers=TIERS)
    with pytest.raises(ValueError, match="one weight per leverage"):
        HeatmapParams(leverages=(5.0, 10.0), weights=(1.0,))


def _random_bars(seed: int, n: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    c = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.concatenate([[30_000.0], c[:-1]])
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.008, n))
    lo = np.minimum(o, c) * (1 - rng.uniform(0, 0.008, n))
    oi = np.maximum(500 + np.cumsum(rng.normal(0, 25, n)), 1.0)
    return pl.DataFrame(
        {
            "ts": [T0 + timedelta(hours=i) for i in range(n)],
            "o": o,
            "h": h,
            "l": lo,
            "c": c,
            "oi_base": oi,
            "volume": np.ones(n),
            "taker_buy_volume": rng.uniform(0, 1, n),
            "mark_h": h * (1 - rng.uniform(0, 0.001, n)),
            "mark_l": lo * (1 + rng.uniform(0, 0.001, n)),
        }
    )


@pytest.mark.parametrize(
    ("seed", "params"),
    [
        (1, HeatmapParams()),
        (2, HeatmapParams(snap_every=5, half_life_bars=30.0)),
        (3, HeatmapParams(net_of_consumed=False, entry="ohlc4", heat_window_pct=None)),
        (6, HeatmapParams(bin_pct=0.0025, heat_window_pct=0.05)),
        (5, HeatmapParams(turnover_half_life_h=24.0, half_life_bars=100.0)),
        (4, HeatmapParams(split="candle", seed_initial=False, snap_every=7)),
    ],
)
def test_numba_kernel_equals_the_plain_python_reference(seed: int, params: HeatmapParams) -> None:
    bars = _random_bars(seed, 400)
    fast = estimate_heatmap(bars, params, tiers=TIERS)
    slow = estimate_heatmap(bars, params, tiers=TIERS, engine="python")
    assert fast.long_usd.sum() > 0
    assert fast.consumed_long_usd.sum() > 0
    scale = max(fast.long_usd.max(), fast.short_usd.max())
    for a, b in (
        (fast.long_usd, slow.long_usd),
        (fast.short_usd, slow.short_usd),
        (fast.consumed_long_usd, slow.consumed_long_usd),
        (fast.consumed_short_usd, slow.consumed_short_usd),
    ):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=scale * 1e-9)
    np.testing.assert_allclose(fast.heat_long, slow.heat_long, rtol=1e-5, atol=scale * 1e-6)
    np.testing.assert_allclose(fast.heat_short, slow.heat_short, rtol=1e-5, atol=scale * 1e-6)
    np.testing.assert_array_equal(fast.heat_start, slow.heat_start)
    width = fast.bin_px.size if params.heat_window_pct is None else fast.heat_long.shape[1]
    assert fast.heat_long.shape == (400 // params.snap_every, width)
    assert fast.snap_ts.len() == fast.heat_long.shape[0]


def test_heatmap_rows_keep_the_window_around_each_close_on_the_absolute_grid() -> None:
    bars = _random_bars(7, 200)
    windowed = estimate_heatmap(bars, HeatmapParams(heat_window_pct=0.05), tiers=TIERS)
    whole = estimate_heatmap(bars, HeatmapParams(heat_window_pct=None), tiers=TIERS)
    w_l, w_s = windowed.heat_rows()
    f_l, f_s = whole.heat_rows()
    closes = bars.sort("ts")["c"].to_numpy()
    near = np.abs(whole.bin_px[None, :] / closes[:, None] - 1) <= 0.048
    far = np.abs(whole.bin_px[None, :] / closes[:, None] - 1) >= 0.06
    np.testing.assert_array_equal(w_l[near], f_l[near])
    np.testing.assert_array_equal(w_s[near], f_s[near])
    assert f_l[far].sum() > 0  # the whole grid holds levels outside +-5% ...
    assert w_l[far].sum() == 0  # ... that the windowed rows leave out
    # the last row of the whole grid is the current map
    np.testing.assert_allclose(f_l[-1], whole.long_usd, rtol=1e-6)


def test_long_levels_stand_below_the_last_low_and_short_levels_above_the_last_high() -> None:
    # the last bar of this path opens nothing (its OI falls); with turnover it would reopen
    # notional at its entry, and a 100x level can sit inside the bar's own range
    bars = _random_bars(5, 300)
    hm = estimate_heatmap(bars, HeatmapParams(turnover_half_life_h=None), tiers=TIERS)
    assert hm.bin_px[hm.long_usd > 0].max() < bars["mark_l"][-1]
    assert hm.bin_px[hm.short_usd > 0].min() > bars["mark_h"][-1]


def test_assemble_bars_takes_oi_at_each_bar_end_and_the_mark_range() -> None:
    candles = _bars([OPEN_BAR, QUIET_BAR]).drop("oi_base")
    oi = pl.DataFrame(
        {"ts": [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)], "oi_base": [5.0, 6.0, 7.0]}
    )
    mark = candles.with_columns(h=pl.col("h") - 1, l=pl.col("l") + 1)
    bars = assemble_bars(candles, oi, mark=mark)
    assert bars["oi_base"].to_list() == [6.0, 7.0]  # bar 0 ends at T0 + 1h
    assert bars["mark_h"].to_list() == [50_099.0, 50_049.0]


def test_tiers_from_table_reads_the_latest_tier_table() -> None:
    rows = pl.DataFrame(
        {
            "ts": [T0, T0, T0 + timedelta(days=1)],
            "tier": [1, 2, 1],
            "notional_floor_usd": [0.0, 50_000.0, 0.0],
            "notional_cap_usd": [50_000.0, 250_000.0, 1e9],
            "mmr": [0.004, 0.005, 0.01],
            "maint_amount_usd": [0.0, 50.0, 0.0],
            "max_leverage": [125.0, 100.0, 50.0],
        }
    )
    assert tiers_from_table(rows) == (Tier(1, 0.0, 1e9, 0.01, 0.0, 50.0),)


def test_with_oi_only_rising_every_dollar_opened_is_standing_or_consumed() -> None:
    bars = _random_bars(8, 300).with_columns(oi_base=pl.int_range(1, 301).cast(pl.Float64) * 3.0)
    hm = estimate_heatmap(bars, HeatmapParams(turnover_half_life_h=None), tiers=TIERS)
    typical = ((bars["h"] + bars["l"] + bars["c"]) / 3).to_numpy()
    opened = float((3.0 * typical).sum())  # 3 BTC a bar (the first bar seeds 3 BTC too)
    kept = hm.long_usd.sum() + hm.short_usd.sum()
    gone = hm.consumed_long_usd.sum() + hm.consumed_short_usd.sum()
    assert gone > 0
    assert kept + gone == pytest.approx(opened, rel=1e-9)


def test_a_fixed_grid_origin_makes_each_row_independent_of_later_bars() -> None:
    """With grid_origin_px the bins sit on origin x 1.001^(k + 0.5): the map after bar 149 is
    the same whether or not the 150 later bars (which set a new low) are in the input. Without
    it the grid starts below the series' lowest price, so later lows move every bin."""
    bars = _random_bars(8, 300)
    bars = bars.with_columns(  # a crash late in the series: a new lowest price
        pl.when(pl.int_range(pl.len()) >= 200).then(pl.col(k) * 0.7).otherwise(pl.col(k))
        for k in ("o", "h", "l", "c", "mark_h", "mark_l")
    )
    fixed = HeatmapParams(grid_origin_px=1.0)
    whole = estimate_heatmap(bars, fixed, tiers=TIERS)
    head = estimate_heatmap(bars.head(150), fixed, tiers=TIERS)
    dlog = np.log1p(0.001)

    def lattice(bin_px: np.ndarray) -> np.ndarray:
        k = np.log(bin_px) / dlog - 0.5
        np.testing.assert_allclose(k, np.round(k), atol=1e-6)
        return np.round(k).astype(np.int64)

    k_whole, k_head = lattice(whole.bin_px), lattice(head.bin_px)
    start = int(k_head[0] - k_whole[0])
    assert start > 0  # the later crash extends the grid downwards
    rows = np.zeros(300, np.bool_)
    rows[149] = True
    w_l, w_s = whole.heat_rows(rows)
    h_l, h_s = head.heat_rows(rows[:150])
    assert h_l[0].sum() > 0
    scale = float(h_l.max())
    end = start + k_head.size
    np.testing.assert_allclose(w_l[0, start:end], h_l[0], rtol=1e-5, atol=scale * 1e-6)
    np.testing.assert_allclose(w_s[0, start:end], h_s[0], rtol=1e-5, atol=scale * 1e-6)
    # without an origin the two grids are offset by a fraction of a bin
    off = (
        np.log(
            estimate_heatmap(bars.head(150), HeatmapParams(), tiers=TIERS).bin_px[0]
            / estimate_heatmap(bars, HeatmapParams(), tiers=TIERS).bin_px[0]
        )
        / dlog
    )
    assert abs(off - round(off)) > 1e-3


def test_grid_origin_must_be_positive() -> None:
    with pytest.raises(ValueError, match="grid_origin_px"):
        HeatmapParams(grid_origin_px=0.0)
