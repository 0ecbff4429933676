"""Regime, structure and volume-profile rules on hand-built candles with hand-computed answers.

The compiled structure walk is also checked bar for bar against the plain-Python reference in
``chart_reference.py`` (written from the rules' text), and ATR/ADX against TA-Lib.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.analytics.chart_reference import reference_structure

from perpscope.analytics.ohlcv import resample_ohlcv, timeframe_minutes
from perpscope.analytics.regime import RegimeParams, adx, atr, bars_per_year, regime
from perpscope.analytics.structure import (
    StructureParams,
    ltf_confirmation,
    structure,
    structure_events,
    zones,
)
from perpscope.analytics.volume_profile import anchored_vwap, session_vwap, volume_profile

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def bars(
    hlc: list[tuple[float, float, float]],
    volume: list[float] | None = None,
    *,
    step_h: float = 1.0,
    instrument: str = "BTC-USDT-PERP",
) -> pl.DataFrame:
    n = len(hlc)
    hlc = [(float(h), float(lo), float(c)) for h, lo, c in hlc]
    return pl.DataFrame(
        {
            "venue": ["binance"] * n,
            "instrument": [instrument] * n,
            "ts": [T0 + timedelta(hours=step_h * i) for i in range(n)],
            "o": [c for _, _, c in hlc],
            "h": [h for h, _, _ in hlc],
            "l": [lo for _, lo, _ in hlc],
            "c": [c for _, _, c in hlc],
            "volume": [float(x) for x in volume] if volume is not None else [100.0] * n,
        },
        schema_overrides={"volume": pl.Float64},
    )


def fired(frame: pl.DataFrame, column: str) -> dict[int, tuple[object, ...]]:
    rows = frame.with_row_index("i").filter(pl.col(column) != 0)
    return {r["i"]: r for r in rows.iter_rows(named=True)}


# ------------------------------------------------------------------------- the playbook's cases


def test_playbook_sfp_tap_of_47350_over_the_47200_high_closes_back_below() -> None:
    # A swing high at 47,200 (width 2), then a bar that taps 47,350 and closes at 47,150.
    candles = bars(
        [
            (46_800, 46_500, 46_700),
            (46_950, 46_600, 46_900),
            (47_200, 46_800, 47_000),  # the prior high
            (47_000, 46_700, 46_800),
            (46_900, 46_600, 46_700),  # confirms it (two bars later)
            (47_350, 46_900, 47_150),  # the tap above and the close back below
        ]
    )
    out = structure(candles, StructureParams(width=2))
    assert out["new_swing_high"].to_list()[4] == 47_200
    sfp = fired(out, "sfp")
    assert list(sfp) == [5]
    assert sfp[5]["sfp"] == -1
    assert sfp[5]["sfp_level"] == 47_200
    assert fired(out, "brk") == {}  # the close stayed below the high: no break up


def test_sfp_needs_the_close_back_below_every_level_the_wick_took() -> None:
    candles = bars(
        [
            (46_800, 46_500, 46_700),
            (46_950, 46_600, 46_900),
            (47_200, 46_800, 47_000),
            (47_000, 46_700, 46_800),
            (46_900, 46_600, 46_700),
            (47_350, 46_900, 47_250),  # closes above 47,200: a break, not a failure
        ]
    )
    out = structure(candles, StructureParams(width=2))
    assert fired(out, "sfp") == {}
    assert fired(out, "brk")[5]["brk_level"] == 47_200


def _eth_spring(spring_volume: float, reclaim_at: int) -> pl.DataFrame:
    # 24 quiet bars around 2,700 with volume 100, a swing low at 2,620 at bar 10 (width 2), a
    # sweep to 2,600 at bar 24 closing at 2,610, then closes back at 2,650 from ``reclaim_at``.
    hlc = [(2_720.0, 2_680.0, 2_700.0)] * 24
    hlc[10] = (2_690.0, 2_620.0, 2_660.0)
    hlc[24:] = [(2_640.0, 2_600.0, 2_610.0)]
    volume = [100.0] * 24 + [spring_volume]
    for _k in range(25, reclaim_at):
        hlc.append((2_630.0, 2_605.0, 2_615.0))
        volume.append(100.0)
    hlc.append((2_660.0, 2_610.0, 2_650.0))
    volume.append(150.0)
    return bars(hlc, volume)


def test_playbook_spring_below_2620_reclaimed_at_2650_with_4_2x_volume() -> None:
    out = structure(_eth_spring(420.0, reclaim_at=25), StructureParams(width=2))
    spring = fired(out, "spring")
    assert list(spring) == [25]
    row = spring[25]
    assert row["spring"] == 1
    assert row["spring_level"] == 2_620
    assert row["spring_extreme"] == 2_600
    # 420 / mean of the 20 bars before the sweep bar (all 100) = 4.2
    assert row["spring_vol_mult"] == pytest.approx(4.2)
    events = structure_events(out).filter(pl.col("event") == "spring")
    assert events.select("direction", "level").row(0) == ("long", 2_620.0)


def test_spring_needs_the_volume_multiple() -> None:
    out = structure(_eth_spring(190.0, reclaim_at=25), StructureParams(width=2))  # 1.9x
    assert fired(out, "spring") == {}


def test_spring_reclaim_must_come_within_reclaim_bars() -> None:
    in_time = structure(_eth_spring(420.0, reclaim_at=27), StructureParams(width=2))
    assert list(fired(in_time, "spring")) == [27]  # three bars after the sweep: in time
    late = structure(_eth_spring(420.0, reclaim_at=28), StructureParams(width=2))
    assert fired(late, "spring") == {}  # four bars: the sweep was accepted


def test_breaks_of_structure_and_change_of_character() -> None:
    # Width 1. Worked by hand: swing high 12 (bar 1, confirmed at 2), swing low 7 (bar 2, at 3);
    # bar 4 closes 13 > 12: the first break, with no prior direction, is a BOS up; swing high
    # 13.5 (bar 4, at 5); bar 6 closes 6.8 < 7: against the up move, a CHoCH down; swing low 6
    # (bar 7, at 8); bar 9 closes 5.5 < 6: with the down move, a BOS down; swing high 9 (bar 8,
    # confirmed at 9).
    candles = bars(
        [
            (10, 8, 9),
            (12, 9, 11),
            (11, 7, 8),
            (11, 8, 10),
            (13.5, 9, 13),
            (13, 10, 11),
            (12, 6.5, 6.8),
            (8, 6, 7),
            (9, 6.8, 8.5),
            (8, 5, 5.5),
        ]
    )
    out = structure(candles, StructureParams(width=1))
    highs = {i: v for i, v in enumerate(out["new_swing_high"].to_list()) if v is not None}
    lows = {i: v for i, v in enumerate(out["new_swing_low"].to_list()) if v is not None}
    assert highs == {2: 12, 5: 13.5, 9: 9}
    assert lows == {3: 7, 8: 6}
    brk = {i: (r["brk"], r["brk_kind"], r["brk_level"]) for i, r in fired(out, "brk").items()}
    assert brk == {4: (1, "bos", 12), 6: (-1, "choch", 7), 9: (-1, "bos", 6)}
    assert fired(out, "sfp") == {}
    assert fired(out, "spring") == {}  # volumes are flat: no climax


def test_a_level_older_than_max_age_is_not_swept() -> None:
    hlc = [(100.0, 98.0, 99.0), (105.0, 99.0, 101.0), (101.0, 98.0, 100.0)]
    hlc += [(101.0, 99.0, 100.0)] * 8 + [(106.0, 100.0, 102.0)]  # taps 105 at bar 11
    fresh = structure(bars(hlc), StructureParams(width=1, max_age=20))
    assert fired(fresh, "sfp")[11]["sfp_level"] == 105
    stale = structure(bars(hlc), StructureParams(width=1, max_age=9))  # 11 - 1 > 9
    assert fired(stale, "sfp") == {}


# ------------------------------------------------------------------------- kernel vs reference


@st.composite
def random_walks(draw: st.DrawFn) -> tuple[list[float], list[float], list[float], list[float]]:
    n = draw(st.integers(min_value=1, max_value=160))
    steps = draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    wicks = draw(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=n, max_size=n))
    spikes = draw(st.lists(st.sampled_from([1.0, 1.0, 1.0, 3.0, 6.0]), min_size=n, max_size=n))
    close = [float(x) for x in np.cumsum(steps) + 100.0]
    high = [c + up for c, (up, _) in zip(close, wicks, strict=True)]
    low = [c - down for c, (_, down) in zip(close, wicks, strict=True)]
    volume = [100.0 * s for s in spikes]
    return high, low, close, volume


@given(
    walk=random_walks(),
    width=st.integers(1, 4),
    max_age=st.integers(5, 60),
    reclaim=st.integers(0, 4),
    vol_mult=st.sampled_from([1.0, 2.0, 3.5]),
)
def test_compiled_walk_equals_the_reference(
    walk: tuple[list[float], list[float], list[float], list[float]],
    width: int,
    max_age: int,
    reclaim: int,
    vol_mult: float,
) -> None:
    h, low, c, v = walk
    params = StructureParams(width=width, max_age=max_age, reclaim_bars=reclaim, vol_mult=vol_mult)
    out = structure(bars(list(zip(h, low, c, strict=True)), v), params)
    ref = reference_structure(
        h,
        low,
        c,
        v,
        width=width,
        max_age=max_age,
        reclaim_bars=reclaim,
        vol_mult=vol_mult,
        vol_window=params.vol_window,
    )

    def present(col: str) -> dict[int, float]:
        return {i: x for i, x in enumerate(out[col].to_list()) if x is not None}

    assert present("new_swing_high") == ref.new_high
    assert present("new_swing_low") == ref.new_low
    assert {i: (r["sfp"], r["sfp_level"]) for i, r in fired(out, "sfp").items()} == ref.sfp
    got_brk = {i: (r["brk"], r["brk_kind"], r["brk_level"]) for i, r in fired(out, "brk").items()}
    assert got_brk == ref.brk
    got_spring = {
        i: (r["spring"], r["spring_level"], r["spring_extreme"], r["spring_vol_mult"])
        for i, r in fired(out, "spring").items()
    }
    assert got_spring.keys() == ref.spring.keys()
    for i, (sign, level, extreme, ratio) in ref.spring.items():
        assert got_spring[i][:3] == (sign, level, extreme)
        assert got_spring[i][3] == pytest.approx(ratio, rel=1e-12)


@given(walk=random_walks(), cut=st.integers(1, 160))
def test_structure_uses_no_future_bars(
    walk: tuple[list[float], list[float], list[float], list[float]], cut: int
) -> None:
    h, low, c, v = walk
    full = structure(bars(list(zip(h, low, c, strict=True)), v), StructureParams(width=2))
    k = min(cut, len(c))
    part = structure(
        bars(list(zip(h[:k], low[:k], c[:k], strict=True)), v[:k]), StructureParams(width=2)
    )
    assert part.equals(full.head(k))


# ------------------------------------------------------------------------------ zones, LTF


def _swing_frame(prices: list[float], last_close: float) -> pl.DataFrame:
    n = len(prices) + 1
    return pl.DataFrame(
        {
            "venue": ["binance"] * n,
            "instrument": ["BTC-USDT-PERP"] * n,
            "ts": [T0 + timedelta(hours=i) for i in range(n)],
            "c": [last_close] * n,
            "new_swing_high": [*prices, None],
            "new_swing_low": [None] * n,
        },
        schema_overrides={"new_swing_high": pl.Float64, "new_swing_low": pl.Float64},
    )


def test_zones_are_at_most_the_tolerance_wide_and_classified_against_the_close() -> None:
    # 100, 100.3, 100.45 fit within 0.5% of 100 (100.5); 100.6 starts a zone, 100.9 is within
    # 0.5% of 100.6 (101.103); 105 stands alone and has too few touches.
    frame = _swing_frame([100.45, 105.0, 100.0, 100.9, 100.3, 100.6], last_close=100.55)
    out = zones(frame, tolerance=0.005, min_touches=2)
    got = out.select("low_px", "high_px", "touches", "kind").rows()
    assert got == [(100.0, 100.45, 3, "support"), (100.6, 100.9, 2, "resistance")]
    assert out["distance_pct"].to_list() == pytest.approx([100.45 / 100.55 - 1, 100.6 / 100.55 - 1])


def test_ltf_confirmation_takes_the_first_event_in_the_setups_direction_in_time() -> None:
    setups = pl.DataFrame(
        {
            "venue": ["binance", "binance"],
            "instrument": ["BTC-USDT-PERP", "BTC-USDT-PERP"],
            "ts": [T0, T0 + timedelta(hours=100)],
            "direction": ["long", "long"],
        }
    )
    events = pl.DataFrame(
        {
            "venue": ["binance"] * 5,
            "instrument": ["BTC-USDT-PERP"] * 5,
            "ts": [
                T0,  # at the setup's own time: not after it
                T0 + timedelta(hours=1),  # the wrong direction
                T0 + timedelta(hours=2),  # the confirmation
                T0 + timedelta(hours=3),
                T0 + timedelta(hours=113),  # 13 h after the second setup: too late
            ],
            "event": ["bos", "choch", "choch", "sfp", "bos"],
            "direction": ["long", "short", "long", "long", "long"],
            "level": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    out = ltf_confirmation(setups, events, within_h=12)
    assert out["confirm_ts"].to_list() == [T0 + timedelta(hours=2), None]
    assert out["confirm_event"].to_list() == ["choch", None]
    edge = ltf_confirmation(setups.head(1), events.slice(2, 1), within_h=2)
    assert edge["confirm_ts"].to_list() == [T0 + timedelta(hours=2)]  # exactly at the edge


# ----------------------------------------------------------------------- volume profile, VWAP


def test_volume_profile_poc_value_area_and_nodes_by_hand() -> None:
    # Bins of 2 over [0, 10]. A bar over the whole range puts 20 in each bin; a bar on [4, 5]
    # puts its 50 in bin [4, 6); a flat bar at 9 puts its 10 in [8, 10]:
    # volumes 20, 20, 70, 20, 30 (total 160). POC = bin [4, 6), centre 5. Value area 70% = 112:
    # 70; tie 20 vs 20 goes up -> 90; 30 above vs 20 below -> 120 >= 112: [4, 10].
    candles = pl.DataFrame({"h": [10.0, 5.0, 9.0], "l": [0.0, 4.0, 9.0], "volume": [100.0, 50, 10]})
    prof = volume_profile(candles, bins=5, smooth=1, hvn_ratio=1.5, lvn_ratio=0.7)
    assert prof.volume.tolist() == pytest.approx([20, 20, 70, 20, 30])
    assert prof.poc_px == 5.0
    assert (prof.value_low_px, prof.value_high_px) == (4.0, 10.0)
    assert prof.hvn_px == (5.0,)  # 70 >= 1.5 x mean 32, a local peak
    assert prof.lvn_px == (3.0, 7.0)  # 20 <= 0.7 x 32 = 22.4, local troughs inside the range
    table = prof.to_frame()
    assert table.filter(pl.col("node") == "poc")["mid_px"].to_list() == [5.0]
    assert table["in_value_area"].to_list() == [False, False, True, True, True]


def test_volume_profile_nodes_ignore_last_bit_differences() -> None:
    # Flat bars put their whole volume in one bin (bins of 2 over [0, 10], as above): 30, 10,
    # 10, 30, 40 (mean 24, a trough needs <= 0.7 x 24 = 16.8). With bins 1 and 2 exactly level,
    # the trough is the floor's last bin before the rise (bin 2, centre 5: <= its left, < its
    # right); bin 1 is not (not < its right). Bin 2 one ulp above bin 1 (as a different numpy
    # summation order can leave it) must read the same, where the exact rule would move the
    # node to bin 1 (10 < 10 + 1 ulp) and drop bin 2 (10 + 1 ulp > 10).
    def lvn(third: float) -> tuple[float, ...]:
        candles = pl.DataFrame(
            {"h": [0.0, 10.0, 3.0, 5.0, 7.0], "l": [0.0, 10.0, 3.0, 5.0, 7.0],
             "volume": [30.0, 40.0, 10.0, third, 30.0]}
        )  # fmt: skip
        prof = volume_profile(candles, bins=5, smooth=1, hvn_ratio=1.5, lvn_ratio=0.7)
        assert prof.volume.tolist() == [30.0, 10.0, third, 30.0, 40.0]
        return prof.lvn_px

    assert lvn(10.0) == (5.0,)
    assert lvn(float(np.nextafter(10.0, 20.0))) == (5.0,)
    assert lvn(float(np.nextafter(10.0, 0.0))) == (5.0,)
    assert lvn(11.0) == (3.0,)  # a real difference: bin 1 is the trough


def test_volume_profile_refuses_bars_without_volume() -> None:
    with pytest.raises(ValueError, match="volume"):
        volume_profile(pl.DataFrame({"h": [1.0], "l": [0.5], "volume": [0.0]}))


def test_session_vwap_restarts_each_utc_day_and_anchored_vwap_starts_at_its_anchor() -> None:
    # Typical prices (h + l + c) / 3: 100, 103, 110 (next day), volumes 1, 3, 2.
    candles = bars([(101, 99, 100), (104, 102, 103), (111, 109, 110)], [1.0, 3.0, 2.0], step_h=12)
    got = session_vwap(candles)["vwap"].to_list()
    assert got == pytest.approx([100.0, (100 * 1 + 103 * 3) / 4, 110.0])
    anchored = anchored_vwap(candles, T0 + timedelta(hours=12))
    assert anchored["vwap"].to_list() == pytest.approx([103.0, (103 * 3 + 110 * 2) / 5])


# ------------------------------------------------------------------------- resample, regime


def test_resample_to_4h_keeps_only_complete_bars() -> None:
    hlc = [(10 + i, 5 - i * 0.1, 8 + i) for i in range(10)]  # 10 hourly bars from 00:00
    candles = bars(hlc, [float(i) for i in range(10)])
    out = resample_ohlcv(candles, "4h")
    assert out["ts"].to_list() == [T0, T0 + timedelta(hours=4)]  # 08:00-09:00 is partial
    first = out.row(0, named=True)
    assert (first["o"], first["h"], first["l"], first["c"], first["volume"]) == (
        8,
        13,
        pytest.approx(4.7),
        11,
        6.0,
    )
    assert timeframe_minutes("4h") == 240
    assert bars_per_year("1h") == 8760


def test_atr_by_hand_with_wilder_smoothing() -> None:
    # TR: bar1 = max(12-9, |12-10|, |9-10|) = 3; bar2 = max(11-8, |11-11|, |8-11|) = 3;
    # bar3 = max(15-12, |15-9|, |12-9|) = 6. Period 2: ATR2 = 3, ATR3 = (3 x 1 + 6) / 2 = 4.5.
    candles = bars([(11, 9, 10), (12, 9, 11), (11, 8, 9), (15, 12, 14)])
    assert atr(candles, period=2).to_list() == [None, None, 3.0, 4.5]


def test_atr_and_adx_equal_talib_on_the_real_eth_candles(shared_data) -> None:  # type: ignore[no-untyped-def]
    talib = pytest.importorskip("talib", reason="TA-Lib is the independent check (dev extra)")
    raw = pl.read_csv(shared_data / "candles" / "tjf_binance_perp_ETHUSDT_1h_2020-2026.csv.gz")
    candles = raw.select(
        pl.lit("binance").alias("venue"),
        pl.lit("ETH-USDT-PERP").alias("instrument"),
        pl.from_epoch("timestamp", time_unit="ms").dt.replace_time_zone("UTC").alias("ts"),
        pl.col("high").alias("h"),
        pl.col("low").alias("l"),
        pl.col("close").alias("c"),
    )
    h, low, c = (candles[k].to_numpy() for k in ("h", "l", "c"))
    ours = atr(candles).to_numpy()
    ref = talib.ATR(h, low, c, 14)
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    assert np.nanmax(np.abs(ours - ref) / ref) < 1e-9
    d = adx(candles)
    for ours_col, ref_col in (
        (d["adx"], talib.ADX(h, low, c, 14)),
        (d["plus_di"], talib.PLUS_DI(h, low, c, 14)),
        (d["minus_di"], talib.MINUS_DI(h, low, c, 14)),
    ):
        got = ours_col.to_numpy()
        assert np.array_equal(np.isnan(got), np.isnan(ref_col))
        assert np.nanmax(np.abs(got - ref_col)) < 1e-9


def _regime_series() -> pl.DataFrame:
    # 200 bars of a steady rise (trend), 200 of a calm flat market, 100 choppy bars (+-2%).
    rng = np.random.default_rng(7)
    close = list(100.0 * 1.004 ** np.arange(200))
    calm = close[-1] * (1 + 0.0005 * rng.standard_normal(200))
    close += list(calm)
    base = close[-1]
    close += [base * (1.02 if i % 2 else 0.98) for i in range(100)]
    hlc = [(x * 1.001, x * 0.999, x) for x in close]
    return bars(hlc)


def test_regime_labels_trend_range_and_chop_with_the_playbooks_rules() -> None:
    params = RegimeParams(rv_window=10, rv_lookback=200, rv_ratio_choppy=1.3)
    out = regime(_regime_series(), "1h", params)
    labels = out["regime"].to_list()
    assert labels[150] == "trending"  # steady rise: ADX far above 30
    assert labels[390] == "ranging"
    assert labels[460] == "volatile"  # no direction, volatility at the top of its range
    by_label = (
        out.filter(pl.col("regime").is_not_null())
        .group_by("regime")
        .agg(pl.col("size_mult").unique(), pl.col("stop_atr").unique())
    )
    rules = {r["regime"]: (r["size_mult"], r["stop_atr"]) for r in by_label.iter_rows(named=True)}
    assert rules == {
        "trending": ([0.5], [2.0]),
        "ranging": ([1.0], [2.0]),
        "volatile": ([1.0], [1.0]),
    }
    # the thresholds hold row by row
    trending = out.filter(pl.col("regime") == "trending")
    assert (trending["adx"] > 30).all()
    volatile = out.filter(pl.col("regime") == "volatile")
    assert (volatile["adx"] <= 30).all()
    assert (volatile["rv_ratio"] >= 1.3).all()


def test_regime_annualises_volatility_from_the_timeframe() -> None:
    out = regime(_regime_series(), "4h", RegimeParams(rv_window=10, rv_lookback=200))
    hourly = regime(_regime_series(), "1h", RegimeParams(rv_window=10, rv_lookback=200))
    both = pl.DataFrame({"h": hourly["rv_annual"], "f": out["rv_annual"]}).filter(pl.col("f") > 0)
    assert both.height > 300  # the steady trend has constant returns (zero volatility)
    assert (both["h"] / both["f"]).to_list() == pytest.approx([math.sqrt(4.0)] * both.height)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="timeframe"):
        timeframe_minutes("0m")
    with pytest.raises(ValueError, match="rv_ratio_choppy"):
        RegimeParams(rv_ratio_choppy=0)
    with pytest.raises(ValueError, match="width"):
        StructureParams(width=0)


# ------------------------------------------------------------------- array helpers vs polars


@given(
    lengths=st.lists(st.integers(1, 30), min_size=1, max_size=5),
    window=st.integers(1, 12),
    min_share=st.floats(0.01, 1.0),
    data=st.data(),
)
def test_trailing_mean_and_run_vwap_equal_polars_per_series(
    lengths: list[int], window: int, min_share: float, data: st.DataObject
) -> None:
    from perpscope.analytics._chart_kernels import positions, run_vwap, trailing_mean

    n = sum(lengths)
    min_count = max(1, round(min_share * window))  # polars wants min_samples <= window
    values = data.draw(st.lists(st.one_of(st.none(), st.floats(-1e3, 1e3)), min_size=n, max_size=n))
    sid = np.repeat(np.arange(len(lengths)), lengths)
    bounds = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    arr = np.array([np.nan if x is None else x for x in values])
    frame = pl.DataFrame({"sid": sid, "x": pl.Series(values, dtype=pl.Float64)})
    expected = frame.select(pl.col("x").rolling_mean(window, min_samples=min_count).over("sid"))[
        "x"
    ]
    got = trailing_mean(arr, bounds, window, min_count)
    assert np.array_equal(np.isnan(got), expected.is_null().to_numpy())
    assert got[~np.isnan(got)] == pytest.approx(
        expected.drop_nulls().to_numpy(), rel=1e-9, abs=1e-9
    )
    # VWAP restarting per series: polars' cumulative sums of price x volume and of volume.
    px = np.abs(np.nan_to_num(arr)) + 1.0
    vol = np.where(np.arange(n) % 3 == 0, 0.0, np.abs(np.nan_to_num(arr)))
    sums = pl.DataFrame({"sid": sid, "pv": px * vol, "v": vol}).select(
        (pl.col("pv").cum_sum() / pl.col("v").cum_sum()).over("sid").alias("vwap")
    )["vwap"]
    vwap = run_vwap(px, px, px, vol, positions(bounds) == 0)
    assert np.array_equal(np.isnan(vwap), sums.is_nan().to_numpy())
    assert vwap[~np.isnan(vwap)] == pytest.approx(sums.drop_nans().to_numpy(), rel=1e-9)


@given(
    lengths=st.lists(st.integers(1, 80), min_size=1, max_size=4),
    window=st.integers(2, 12),
    data=st.data(),
)
def test_log_return_std_equals_polars_rolling_std_per_series(
    lengths: list[int], window: int, data: st.DataObject
) -> None:
    from perpscope.analytics._chart_kernels import log_return_std

    n = sum(lengths)
    # Prices as a walk with constant stretches (zero volatility must come out as 0).
    steps = data.draw(
        st.lists(st.sampled_from([0.0, 0.0, 0.01, -0.01, 0.03, -0.002]), min_size=n, max_size=n)
    )
    c = 100.0 * np.exp(np.cumsum(steps))
    sid = np.repeat(np.arange(len(lengths)), lengths)
    bounds = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    expected = (
        pl.DataFrame({"sid": sid, "c": c})
        .select(pl.col("c").log().diff().over("sid").rolling_std(window).over("sid"))["c"]
        .fill_null(np.nan)
        .to_numpy()
    )
    got = log_return_std(c, bounds, window)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert got[~np.isnan(got)] == pytest.approx(expected[~np.isnan(expected)], abs=1e-12)


@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["X", "Y", "Z"]), st.integers(0, 6)),
        min_size=0,
        max_size=25,
        unique=True,
    )
)
def test_sort_with_bounds_sorts_exactly_when_needed(rows: list[tuple[str, str, int]]) -> None:
    from perpscope.analytics._chart_kernels import series_bounds, sort_with_bounds

    frame = pl.DataFrame(rows, schema=["venue", "instrument", "ts"], orient="row")
    got, bounds = sort_with_bounds(frame, ["venue", "instrument"])
    expected = frame.sort("venue", "instrument", "ts")
    assert got.equals(expected)
    assert np.array_equal(bounds, series_bounds(expected, ["venue", "instrument"]))
    # Already sorted: the same frame comes back, not a copy.
    again, _ = sort_with_bounds(expected, ["venue", "instrument"])
    assert again is expected


def test_docs_frequency_table_is_recomputed_from_the_real_btc_file(shared_data) -> None:  # type: ignore[no-untyped-def]
    import importlib.util
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location(
        "chart_rule_frequencies", repo / "tools" / "chart_rule_frequencies.py"
    )
    assert spec is not None
    assert spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    path = shared_data / "candles" / "zxcy_binance_spot_BTCUSDT_1h_2020-2023.csv.gz"
    table = tool.render(tool.frequencies(tool.load(path)))
    doc = (repo / "docs" / "chart-reading.md").read_text(encoding="utf-8")
    published = doc.split(tool.BEGIN, 1)[1].split(tool.END, 1)[0].strip()
    assert published == table


@pytest.mark.parametrize("last_bars", [1, 40, 150, 1000])
def test_zones_of_the_last_bars_equal_zones_of_those_bars_cut_out_first(last_bars: int) -> None:
    """``last_bars`` keeps each series' last N rows (all of a shorter series): the same zones
    as zones() on a frame cut to those rows by polars beforehand. Three random walks of 120,
    300 and 500 hourly bars."""
    rng = np.random.default_rng(5)
    parts = []
    for k, n in enumerate((120, 300, 500)):
        c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        o = np.r_[c[0], c[:-1]]
        wick = np.abs(rng.normal(0, 0.004, n)) * c
        ts = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=i) for i in range(n)]
        parts.append(pl.DataFrame({"venue": "v", "instrument": f"S{k}-USDT-PERP", "ts": ts, "o": o,
                                   "h": np.maximum(o, c) + wick, "l": np.minimum(o, c) - wick,
                                   "c": c, "volume": 1.0}))  # fmt: skip
    frame = structure(pl.concat(parts))
    cut = frame.filter(
        pl.int_range(pl.len()).over("venue", "instrument").cast(pl.Int64)
        >= pl.len().over("venue", "instrument").cast(pl.Int64) - last_bars
    )
    got = zones(frame, last_bars=last_bars)
    assert got.equals(zones(cut))
    if last_bars == 1000:
        assert got.equals(zones(frame))


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", None]), st.sampled_from(["X", "Y", None])),
        max_size=40,
    )
)
def test_series_bounds_are_where_any_key_changes(rows: list[tuple[str | None, str | None]]) -> None:
    """The runs of equal (venue, instrument), nulls equal to nulls, against itertools.groupby."""
    import itertools

    from perpscope.analytics._chart_kernels import series_bounds

    frame = pl.DataFrame(rows, schema={"venue": pl.String, "instrument": pl.String}, orient="row")
    sizes = [len(list(g)) for _, g in itertools.groupby(rows)]
    expected = np.concatenate(([0], np.cumsum(sizes))) if rows else np.zeros(1)
    assert series_bounds(frame, ["venue", "instrument"]).tolist() == expected.tolist()
