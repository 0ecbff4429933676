"""Golden tests for basis, CVD and long/short readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest

from perpscope.analytics.basis import (
    basis_trade_carry,
    basis_trade_income,
    dated_basis,
    perp_basis,
    premium,
)
from perpscope.analytics.cvd import (
    cumulative_volume_delta,
    cvd_price_divergence,
    delta_from_candles,
    delta_from_taker_volume,
    delta_from_trades,
)
from perpscope.analytics.longshort import long_short_compare, long_short_extremes

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _h(i: float) -> datetime:
    return T0 + timedelta(hours=i)


def test_premium_reproduces_the_playbook_entry_basis() -> None:
    # Spot 65,000 and perp 65,020: 20 / 65,000 = 0.0307692%.
    assert premium(65_020.0, 65_000.0) == pytest.approx(20 / 65_000)


def test_perp_basis_to_spot_and_index_annualised() -> None:
    frame = pl.DataFrame(
        {
            "ts": [T0, _h(1)],
            "perp_px": [101.0, 99.0],
            "spot_px": [100.0, None],
            "index_px": [100.5, 100.0],
        }
    )
    out = perp_basis(frame)
    assert out["premium_spot"].to_list()[0] == pytest.approx(0.01)
    assert out["premium_spot"][1] is None
    assert out["premium_index"].to_list() == pytest.approx([101 / 100.5 - 1, -0.01])
    # 1% per 8h, annualised like funding: 0.01 x 1095.
    assert out["premium_spot_annualized"][0] == pytest.approx(10.95)


def test_dated_basis_annualised_over_time_to_expiry() -> None:
    frame = pl.DataFrame(
        {
            "ts": [T0, T0],
            "expiry_ts": [T0 + timedelta(days=73), T0],
            "future_px": [102.0, 101.0],
            "spot_px": [100.0, 100.0],
        }
    )
    out = dated_basis(frame)
    # 2% over 73 days = 2% x 365 / 73 = 10% a year; expired row -> null.
    assert out["basis_annualized"][0] == pytest.approx(0.10)
    assert out["basis_annualized"][1] is None


def test_basis_trade_income_and_carry_reproduce_the_playbook() -> None:
    # $100,000 short at +0.05%: $50 per period, $150 per day, $1,050 per week.
    assert basis_trade_income(100_000, 0.0005, 8) == pytest.approx(50.0)
    assert basis_trade_income(100_000, 0.0005, 24) == pytest.approx(150.0)
    assert basis_trade_income(100_000, 0.0005, 168) == pytest.approx(1050.0)
    rates = [0.0005, 0.0005, 0.0005, 0.00005]
    frame = pl.DataFrame(
        {
            "venue": "binance",
            "instrument": "BTC-USDT-PERP",
            "ts": [_h(8 * i) for i in range(4)],
            "rate": rates,
            "interval_h": 8.0,
        }
    )
    out = basis_trade_carry(frame)
    # 0.05% per 8h = 0.15% per day and 4.5% per 30 days.
    assert out["carry_daily"][2] == pytest.approx(0.0015)
    assert out["carry_30d"][2] == pytest.approx(0.045)
    assert out["status"].to_list() == ["favorable", "favorable", "favorable", "exit"]


def test_delta_and_cvd_from_candles_perp_and_spot_apart() -> None:
    ohlcv = pl.DataFrame(
        {
            "venue": "binance",
            "instrument": ["BTC-USDT-PERP"] * 3 + ["BTC-USDT"] * 3,
            "ts": [T0, _h(1), _h(2)] * 2,
            "volume": [10.0, 8.0, 6.0, 4.0, 4.0, 4.0],
            "taker_buy_volume": [7.0, 2.0, None, 1.0, 3.0, 2.0],
            "c": [1.0, 2.0, 3.0, 1.0, 2.0, 3.0],
        }
    )
    out = cumulative_volume_delta(delta_from_candles(ohlcv))
    perp = out.filter(pl.col("market") == "perp")
    spot = out.filter(pl.col("market") == "spot")
    # perp: 2*7-10 = 4, 2*2-8 = -4, null -> 0 => 4, 0, 0. spot: -2, 2, 0 => -2, 0, 0.
    assert perp["cvd_base"].to_list() == [4.0, 0.0, 0.0]
    assert spot["cvd_base"].to_list() == [-2.0, 0.0, 0.0]


def test_delta_from_taker_volume_and_trades_agree_on_the_same_flow() -> None:
    trades = pl.DataFrame(
        {
            "venue": "bybit",
            "instrument": "ETH-USDT-PERP",
            "ts": [T0, T0 + timedelta(minutes=5), _h(1) + timedelta(minutes=1)],
            "side": ["buy", "sell", "buy"],
            "qty_base": [3.0, 1.0, 2.0],
        }
    )
    from_trades = delta_from_trades(trades)
    taker = pl.DataFrame(
        {
            "venue": "bybit",
            "instrument": "ETH-USDT-PERP",
            "ts": [T0, _h(1)],
            "buy_volume_base": [3.0, 2.0],
            "sell_volume_base": [1.0, 0.0],
        }
    )
    from_taker = delta_from_taker_volume(taker)
    assert from_trades["delta_base"].to_list() == [2.0, 2.0]
    assert from_taker["delta_base"].to_list() == from_trades["delta_base"].to_list()
    with pytest.raises(ValueError, match="side"):
        delta_from_trades(trades.with_columns(pl.lit("long").alias("side")))


def test_cvd_price_divergence_bearish_lower_cvd_at_higher_high() -> None:
    # High at h10 with CVD 50; higher high at h40 with CVD 30.
    n = 48
    close = [100.0 + i for i in range(11)] + [105.0] * 29 + [120.0] + [110.0] * 7
    cvd = [5.0 * i for i in range(11)] + [20.0] * 29 + [30.0] + [30.0] * 7
    frame = pl.DataFrame(
        {
            "venue": "binance",
            "instrument": "BTC-USDT-PERP",
            "ts": [_h(i) for i in range(n)],
            "close_px": close,
            "cvd_base": cvd,
        }
    )
    out = cvd_price_divergence(frame)
    row = out.row(40, named=True)
    assert row["cdiv_prior_ts"] == _h(10)
    assert row["cdiv_prior_value"] == 50.0
    assert row["cdiv_divergence"] == "bearish"
    assert out["cdiv_divergence"].drop_nulls().to_list() == ["bearish"]


def test_cvd_price_divergence_bullish_mirror() -> None:
    n = 48
    close = [200.0 - i for i in range(11)] + [195.0] * 29 + [180.0] + [190.0] * 7
    cvd = [-5.0 * i for i in range(11)] + [-20.0] * 29 + [-30.0] + [-30.0] * 7
    frame = pl.DataFrame(
        {
            "venue": "binance",
            "instrument": "BTC-USDT-PERP",
            "ts": [_h(i) for i in range(n)],
            "close_px": close,
            "cvd_base": cvd,
        }
    )
    assert cvd_price_divergence(frame)["cdiv_divergence"][40] == "bullish"


def test_long_short_compare_labels_the_disagreement() -> None:
    frame = pl.DataFrame(
        {
            "venue": "binance",
            "instrument": "BTC-USDT-PERP",
            "kind": [
                "global_account",
                "top_position",
                "global_account",
                "top_position",
                "global_account",
            ],
            "period": "1h",
            "ts": [T0, T0, _h(1), _h(1), _h(2)],
            "long_short_ratio": [2.5, 0.8, 0.9, 1.3, 1.1],
        }
    )
    out = long_short_compare(frame)
    assert out["lean"].to_list() == ["crowd_long_top_short", "crowd_short_top_long", None]
    assert out["top_minus_global"].to_list()[:2] == pytest.approx([-1.7, 0.4])
    assert out["top_account"].null_count() == 3


def test_long_short_extremes_by_percentile_cross_checked_with_numpy() -> None:
    rng = np.random.default_rng(11)
    ratios = rng.lognormal(0.3, 0.2, 200)
    frame = pl.DataFrame(
        {
            "venue": "binance",
            "instrument": "BTC-USDT-PERP",
            "kind": "global_account",
            "period": "1h",
            "ts": [_h(i) for i in range(200)],
            "long_short_ratio": ratios,
        }
    )
    out = long_short_extremes(frame, window_h=48)
    # Independent: for each i, the share of ratios[max(0, i-47): i+1] <= ratios[i], with numpy.
    expected = [float(np.mean(ratios[max(0, i - 47) : i + 1] <= ratios[i])) for i in range(200)]
    np.testing.assert_allclose(out["ls_percentile"].to_numpy(), expected)
    labels = out["extreme"].to_list()
    # the first nine rows hold fewer than 10 values in their window: no label (the guard)
    assert labels[:9] == [None] * 9
    assert all(
        (lab == "crowded_long") == (p >= 0.9)
        for lab, p in zip(labels[9:], expected[9:], strict=True)
    )
    assert all(
        (lab == "crowded_short") == (p <= 0.1)
        for lab, p in zip(labels[9:], expected[9:], strict=True)
    )


def test_cvd_price_divergence_never_reaches_into_another_series() -> None:
    n = 48
    close = [100.0 + i for i in range(11)] + [105.0] * 29 + [120.0] + [110.0] * 7
    cvd = [5.0 * i for i in range(11)] + [20.0] * 29 + [30.0] * 8
    a = pl.DataFrame(
        {
            "venue": "aaa",
            "instrument": "BTC-USDT-PERP",
            "ts": [_h(i) for i in range(n)],
            "close_px": close,
            "cvd_base": cvd,
        }
    )
    # Series "bbb" holds only bars 30..47: its high at h40 has no prior high of its own.
    b = a.slice(30).with_columns(pl.lit("bbb").alias("venue"))
    out = cvd_price_divergence(pl.concat([a, b]))
    assert out.filter(pl.col("venue") == "aaa")["cdiv_divergence"][40] == "bearish"
    assert out.filter(pl.col("venue") == "bbb")["cdiv_divergence"].null_count() == 18
    assert out.filter(pl.col("venue") == "bbb")["cdiv_prior_ts"].null_count() == 18


def test_basis_carry_cross_checked_against_duckdb_and_python_dates() -> None:
    # Independent: the 7-day mean by a DuckDB RANGE window (whole hours, so (t-168h, t] equals
    # [t-167h, t]); the futures annualisation by Python datetime arithmetic.
    rng = np.random.default_rng(9)
    hours = np.sort(rng.choice(24 * 30, size=200, replace=False))
    frame = pl.DataFrame(
        {
            "venue": "bybit",
            "instrument": "BTC-USDT-PERP",
            "ts": [_h(int(h)) for h in hours],
            "rate": rng.normal(0.0001, 0.0002, 200),
            "interval_h": 8.0,
        }
    )
    ours = basis_trade_carry(frame)
    con = duckdb.connect()
    con.register("f", frame.to_arrow())
    ref = con.sql(
        """SELECT avg(rate) OVER (ORDER BY ts RANGE BETWEEN INTERVAL 167 HOURS PRECEDING
                                  AND CURRENT ROW) AS m FROM f ORDER BY ts"""
    ).fetchall()
    np.testing.assert_allclose(ours["mean_rate_8h"].to_numpy(), [r[0] for r in ref], rtol=1e-12)
    np.testing.assert_allclose(ours["carry_annualized"].to_numpy(), [r[0] * 1095 for r in ref])

    expiry = datetime(2025, 6, 27, 8, tzinfo=UTC)
    fut = pl.DataFrame(
        {"ts": [T0], "expiry_ts": [expiry], "future_px": [104.0], "spot_px": [100.0]}
    )
    h = (expiry - T0).total_seconds() / 3600
    assert dated_basis(fut)["basis_annualized"][0] == pytest.approx(0.04 * 8760 / h)
