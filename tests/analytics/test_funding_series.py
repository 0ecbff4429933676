"""Golden tests for funding statistics, extremes, acceleration, divergence, carry and arbitrage."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpscope.analytics.funding import (
    funding_arbitrage,
    funding_carry,
    funding_payment,
    predicted_funding,
)
from perpscope.analytics.funding_series import (
    cross_venue_spread_history,
    extreme_persistence,
    extremes_per_year,
    funding_acceleration,
    funding_extremes,
    funding_price_divergence,
    funding_statistics,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _series(
    rates: list[float],
    *,
    venue: str = "binance",
    step_h: float = 8.0,
    start: datetime = T0,
    instrument: str = "BTC-USDT-PERP",
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "venue": [venue] * len(rates),
            "instrument": [instrument] * len(rates),
            "ts": [start + timedelta(hours=step_h * i) for i in range(len(rates))],
            "rate": rates,
            "interval_h": [step_h] * len(rates),
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )


def test_statistics_zscore_and_percentile_match_hand_computation() -> None:
    rates = [0.0001, 0.0002, 0.0003, 0.0001, 0.0005]
    out = funding_statistics(_series(rates), zscore_window_h=168, percentile_window_h=720)
    # All five 8h settlements sit inside one 7-day window; z of the last by the statistics module.
    expected_z = (0.0005 - statistics.mean(rates)) / statistics.stdev(rates)
    assert out["zscore"][-1] == pytest.approx(expected_z)
    # 0.0001 at index 3: values <= it in the window are 0.0001 and 0.0001 -> 2 of 4.
    assert out["percentile"][3] == pytest.approx(0.5)
    assert out["percentile"][-1] == pytest.approx(1.0)
    assert out["cum_rate"][-1] == pytest.approx(sum(rates))


def test_statistics_constant_series_give_null_zscore_never_nan() -> None:
    out = funding_statistics(_series([0.0001] * 30))
    assert out["zscore"].null_count() == 30
    assert not out["zscore"].is_nan().any()


@settings(max_examples=30)
@given(value=st.floats(-0.01, 0.01, allow_nan=False), n=st.integers(1, 40))
def test_constant_series_property_zscore_null_and_percentile_one(value: float, n: int) -> None:
    out = funding_statistics(_series([value] * n))
    assert out["zscore"].null_count() == n
    assert out["percentile"].to_list() == pytest.approx([1.0] * n)


def test_statistics_cross_checked_against_duckdb_window_functions() -> None:
    # Independent computation: DuckDB RANGE windows over the same hourly data. Polars' window is
    # (t - 168h, t]; on whole hours that equals DuckDB's [t - 167h, t].
    rng = np.random.default_rng(7)
    frame = _series(list(rng.normal(0.0001, 0.0002, 400)), step_h=1.0)
    ours = funding_statistics(frame, zscore_window_h=168, percentile_window_h=48, min_samples=2)
    con = duckdb.connect()
    con.register("f", frame.to_arrow())
    ref = pl.from_arrow(
        con.sql(
            """
            WITH w AS (
              SELECT ts, rate * 8 / interval_h AS r,
                avg(rate * 8 / interval_h) OVER win AS m,
                stddev_samp(rate * 8 / interval_h) OVER win AS s
              FROM f WINDOW win AS (ORDER BY ts RANGE BETWEEN INTERVAL 167 HOURS PRECEDING
                                    AND CURRENT ROW))
            SELECT w.ts, (w.r - w.m) / w.s AS z,
              (SELECT count(*) FROM w w2 WHERE w2.ts > w.ts - INTERVAL 48 HOURS AND w2.ts <= w.ts
                 AND w2.r <= w.r)::DOUBLE
              / (SELECT count(*) FROM w w2 WHERE w2.ts > w.ts - INTERVAL 48 HOURS AND w2.ts <= w.ts)
                AS p
            FROM w ORDER BY w.ts
            """
        ).to_arrow_table()
    )
    assert isinstance(ref, pl.DataFrame)
    np.testing.assert_allclose(ours["zscore"][1:].to_numpy(), ref["z"][1:].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(ours["percentile"].to_numpy(), ref["p"].to_numpy(), rtol=1e-12)


def test_extreme_persistence_counts_hours_and_breaks_on_sign_change_and_gap() -> None:
    frame = _series([0.0006, 0.0005, -0.0007, -0.0008, 0.0001, 0.0009])
    frame = frame.with_columns(  # make a 24h hole before the last settlement
        pl.when(pl.int_range(pl.len()) == 5)
        .then(pl.col("ts") + timedelta(hours=24))
        .otherwise(pl.col("ts"))
        .alias("ts")
    )
    out = extreme_persistence(frame)
    assert out["extreme_side"].to_list() == [1, 1, -1, -1, 0, 1]
    assert out["extreme_streak_h"].to_list() == [8.0, 16.0, 8.0, 16.0, 0.0, 8.0]


def _two_venues() -> pl.DataFrame:
    # binance 8h: 4 periods at >= 0.05%; bybit hourly: 0.0001/h = 0.08% per 8h for 3 periods.
    bin_ = _series([0.0006, 0.0007, 0.0005, 0.0009, 0.0001])
    byb = _series([0.0001] * 24 + [0.00001] * 16, venue="bybit", step_h=1.0)
    return pl.concat([bin_, byb])


def test_funding_extremes_two_venues_episode_graded_by_hand() -> None:
    out = funding_extremes(_two_venues())
    assert out.height == 1
    row = out.row(0, named=True)
    # Periods 0-2 have both venues extreme; period 3 only binance (N=2 fails) -> 3 periods = 24h.
    assert (row["side"], row["n_periods"], row["duration_h"]) == ("positive", 3, 24.0)
    assert row["start_ts"] == T0
    assert row["end_ts"] == T0 + timedelta(hours=24)
    assert row["venues"] == "binance,bybit"
    # Per-period mean of extreme venues: (6+8)/2, (7+8)/2, (5+8)/2 bp-hundredths -> 7, 7.5, 6.5.
    assert row["mean_rate_8h"] == pytest.approx(0.0007)
    assert row["peak_rate_8h"] == pytest.approx(0.00075)
    assert row["distance"] == pytest.approx(0.0007 / 0.0005)
    assert row["convergence"] == pytest.approx(1.0)
    # score = mean(clip(1.4-1), clip((24-24)/48), 1) = (0.4 + 0 + 1) / 3.
    assert row["score"] == pytest.approx(1.4 / 3)
    assert row["grade"] == "moderate"


def test_funding_extremes_single_venue_and_per_year_count() -> None:
    out = funding_extremes(_two_venues(), min_venues=1)
    # With N=1 binance alone keeps period 3 extreme: 4 periods.
    assert out["duration_h"].to_list() == [32.0]
    per_year = extremes_per_year(out)
    assert per_year.rows() == [("BTC", 2024, "positive", 1, 32.0, 32.0)]


def test_funding_extremes_negative_and_too_short_runs() -> None:
    frame = _series([-0.0006, -0.0006, 0.0, -0.0006, -0.0007, -0.0008, -0.0005])
    out = funding_extremes(frame, min_venues=1)
    # The first run (2 periods = 16h) is too short; the second lasts 4 periods.
    assert out.select("side", "n_periods").rows() == [("negative", 4)]
    assert out["mean_rate_8h"][0] == pytest.approx(-0.00065)


def test_acceleration_reproduces_playbook_strong_and_parabolic() -> None:
    strong = funding_acceleration(_series([0.0002, 0.0004, 0.0007]))
    # Playbook: +0.02% -> +0.04% -> +0.07% is strong acceleration (change 0.03%, rising 0.01%).
    assert strong["accel_level"].to_list() == ["none", "moderate", "strong"]
    assert strong["change_8h"][-1] == pytest.approx(0.0003)
    assert strong["accel_8h"][-1] == pytest.approx(0.0001)
    assert strong["accel_direction"].to_list() == [0, 1, 1]
    parabolic = funding_acceleration(_series([0.0003, 0.0006, 0.0010]))
    # +0.03% -> +0.06% -> +0.10%: growth 2.0x then 1.67x, both >= 1.5; changes 0.03%, 0.04%.
    assert parabolic["parabolic"].to_list() == [False, False, True]
    assert parabolic["accel_level"].to_list() == ["none", "strong", "strong"]
    not_parabolic = funding_acceleration(_series([0.0004, 0.0006, 0.0010]))
    # growth 1.5x then 1.67x is parabolic; 0.0004 -> 0.0005 -> 0.0010 (1.25x first) is not.
    assert not_parabolic["parabolic"][-1] is True
    assert funding_acceleration(_series([0.0004, 0.0005, 0.0010]))["parabolic"][-1] is False


def test_acceleration_toward_neutral_is_not_acceleration_and_mirror_counts() -> None:
    out = funding_acceleration(_series([-0.0010, -0.0006, -0.0009]))
    # -0.10 -> -0.06 normalises (none); -0.06 -> -0.09 is a strong fall.
    assert out["accel_level"].to_list() == ["none", "none", "strong"]
    assert out["accel_direction"][-1] == -1


def test_funding_price_divergence_bearish_at_lower_funding_mean() -> None:
    # Hourly bars over 3 days: a high at h10, a pullback, a higher high at h50. Funding (8h eq.)
    # is 0.0010 until h30, then 0.0000: the 7d mean at h50 is lower than at h10.
    n = 72
    close = [100.0 + i for i in range(11)] + [105.0] * 39 + [120.0] + [110.0] * 21
    rate = [0.0010 if i <= 30 else 0.0 for i in range(n)]
    frame = pl.DataFrame(
        {
            "venue": ["binance"] * n,
            "instrument": ["BTC-USDT-PERP"] * n,
            "ts": [T0 + timedelta(hours=i) for i in range(n)],
            "close_px": close,
            "rate_8h": rate,
        }
    )
    out = funding_price_divergence(frame)
    row = out.row(50, named=True)
    assert row["fdiv_new_high"] is True
    assert row["fdiv_prior_ts"] == T0 + timedelta(hours=10)
    # Means by hand: at h10, 11 values of 0.0010 -> 0.0010; at h50, 31 of 51 -> 0.0031 / 51.
    assert row["fdiv_prior_value"] == pytest.approx(0.0010)
    assert row["funding_mean_8h"] == pytest.approx(0.031 / 51)
    assert row["fdiv_divergence"] == "bearish"
    # Bars 1-10 are consecutive highs less than 24h apart: no prior high, no divergence.
    assert out["fdiv_divergence"][:50].null_count() == 50


def test_predicted_funding_formula_and_clamp() -> None:
    # premium 0.03%: 0.03% + clamp(0.01% - 0.03%) = 0.01% (the interest rate wins inside the band)
    assert predicted_funding(0.0003) == pytest.approx(0.0001)
    # premium 0.10%: clamp(-0.09%) = -0.05% -> 0.05%
    assert predicted_funding(0.0010) == pytest.approx(0.0005)
    out = pl.DataFrame({"p": [0.0003, 0.0010, -0.0010]}).select(predicted_funding(pl.col("p")))
    assert out["p"].to_list() == pytest.approx([0.0001, 0.0005, -0.0005])


def test_payment_and_carry_reproduce_playbook_figures() -> None:
    # $100,000 long at +0.05%: $50 per 8h and $1,050 over a week (21 settlements).
    assert funding_payment(100_000, 0.0005) == pytest.approx(50.0)
    assert funding_carry(100_000, 0.0005, 8.0, 168.0) == pytest.approx(1050.0)
    assert funding_carry(-100_000, 0.0005, 8.0, 24.0) == pytest.approx(-150.0)


def test_arbitrage_pairs_oriented_and_ranked() -> None:
    latest = pl.DataFrame(
        {
            "venue": ["binance", "bybit", "okx"],
            "instrument": ["BTC-USDT-PERP"] * 3,
            "ts": [T0] * 3,
            "rate": [0.0001, 0.00005, 0.0001],
            "interval_h": [8.0, 1.0, 4.0],
        }
    )
    out = funding_arbitrage(latest)
    # rate_8h: binance 0.0001, bybit 0.0004, okx 0.0002.
    assert out.select("short_venue", "long_venue").rows() == [
        ("bybit", "binance"),
        ("bybit", "okx"),
        ("okx", "binance"),
    ]
    assert out["spread_8h"].to_list() == pytest.approx([0.0003, 0.0002, 0.0001])
    assert out["carry_annualized"][0] == pytest.approx(0.0003 * 1095)
    assert out["alert"].to_list() == [True, False, False]


def test_cross_venue_spread_history_keeps_common_periods() -> None:
    frame = _two_venues()
    out = cross_venue_spread_history(frame, "binance", "bybit")
    assert out.height == 5
    assert out["spread_8h"].to_list() == pytest.approx(
        [-0.0002, -0.0001, -0.0003, 0.0009 - 0.00008, 0.0001 - 0.00008]
    )


def test_funding_price_divergence_bullish_mirror_at_lows() -> None:
    # A low at h10, a lower low at h50; funding (8h eq.) -0.0010 until h30, then 0.0 (less
    # negative): the 7d mean at h50 is higher than at h10 -> bullish.
    n = 72
    close = [200.0 - i for i in range(11)] + [195.0] * 39 + [180.0] + [190.0] * 21
    rate = [-0.0010 if i <= 30 else 0.0 for i in range(n)]
    frame = pl.DataFrame(
        {
            "venue": ["binance"] * n,
            "instrument": ["ETH-USDT-PERP"] * n,
            "ts": [T0 + timedelta(hours=i) for i in range(n)],
            "close_px": close,
            "rate_8h": rate,
        }
    )
    out = funding_price_divergence(frame)
    assert out["fdiv_divergence"].drop_nulls().to_list() == ["bullish"]
    assert out.row(50, named=True)["fdiv_prior_value"] == pytest.approx(-0.0010)
