"""Golden tests for the open-interest readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perpscope.analytics.oi import (
    QUADRANTS,
    market_oi_divergence,
    oi_changes,
    oi_divergence,
    oi_percentile,
    price_oi_quadrant,
    venue_oi_share,
)

T0 = datetime(2025, 10, 1, tzinfo=UTC)


def _oi(
    values: list[float],
    *,
    step_h: float = 1.0,
    venue: str = "binance",
    instrument: str = "BTC-USDT-PERP",
    close: list[float] | None = None,
) -> pl.DataFrame:
    data: dict[str, object] = {
        "venue": [venue] * len(values),
        "instrument": [instrument] * len(values),
        "ts": [T0 + timedelta(hours=step_h * i) for i in range(len(values))],
        "oi_usd": values,
    }
    if close is not None:
        data["close_px"] = close
    return pl.DataFrame(data)


def test_oi_changes_24h_change_ratio_wave_spike_and_alert() -> None:
    # Daily OI ($M): flat at 100 for 7 days, then 101, then 112 (+10.9% in the last day).
    values = [100.0] * 8 + [101.0, 112.0]
    out = oi_changes(_oi([v * 1e6 for v in values], step_h=24.0))
    last = out.row(-1, named=True)
    assert last["oi_change_24h"] == pytest.approx(112 / 101 - 1)
    # 7-day mean of the daily changes at the last row: rows 3..9 -> (0*5 + 0.01 + 0.10891) / 7.
    expected_avg = (0.01 + (112 / 101 - 1)) / 7
    assert last["roc_avg_7d"] == pytest.approx(expected_avg)
    assert last["roc_ratio"] == pytest.approx((112 / 101 - 1) / expected_avg)
    assert last["wave"] is True
    assert last["alert_24h"] is True
    # 4h lag has no observation within 2h on a daily grid -> null, never a stale value.
    assert out["oi_change_4h"].null_count() == len(values)


def test_oi_changes_flat_week_gives_null_ratio_and_no_wave() -> None:
    out = oi_changes(_oi([100.0] * 10, step_h=24.0))
    assert out["roc_ratio"].null_count() == 10
    assert not out["wave"].any()


def test_oi_intraday_spike_at_ten_percent_in_four_hours() -> None:
    out = oi_changes(_oi([v * 1e6 for v in (100.0, 101.0, 103.0, 106.0, 110.0, 111.0)]))
    # 4h change at h4: 110 / 100 - 1 = 10% (a spike); at h5: 111 / 101 - 1 = 9.9% (not).
    assert out["oi_change_4h"][4] == pytest.approx(0.10)
    assert out["spike"].to_list() == [False, False, False, False, True, False]


def test_price_oi_quadrants_match_the_playbook_table() -> None:
    frame = pl.DataFrame(
        {"p": [1.0, 1.0, -1.0, -1.0, 0.0, None], "o": [1.0, -1.0, 1.0, -1.0, 1.0, 1.0]}
    )
    out = frame.select(price_oi_quadrant(pl.col("p"), pl.col("o")).alias("q"))["q"].to_list()
    assert out == [
        "new_longs",
        "short_covering",
        "new_shorts",
        "long_capitulation",
        "undefined",
        "undefined",
    ]


@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_quadrant_classification_is_total(pairs: list[tuple[float | None, float | None]]) -> None:
    frame = pl.DataFrame(
        {"p": [a for a, _ in pairs], "o": [b for _, b in pairs]},
        schema={"p": pl.Float64, "o": pl.Float64},
    )
    labels = frame.select(price_oi_quadrant(pl.col("p"), pl.col("o")).alias("q"))["q"]
    assert labels.null_count() == 0
    assert set(labels.to_list()) <= set(QUADRANTS)


def _sol() -> pl.DataFrame:
    # SOL, playbook: price 145 -> 168 over the window while OI 4.2B -> 3.7B, declining all along.
    n = 73  # hourly, 72h window
    close = list(np.linspace(145.0, 168.0, n))
    oi = list(np.linspace(4.2e9, 3.7e9, n))
    return _oi(oi, close=close, instrument="SOL-USDT-PERP")


def test_oi_divergence_reproduces_the_sol_ratio() -> None:
    out = oi_divergence(_sol())
    last = out.row(-1, named=True)
    # (0.5 / 4.2) / (23 / 145) = 0.7505; the playbook rounds it to 12% / 16% = 0.75.
    assert last["divergence_ratio"] == pytest.approx((0.5 / 4.2) / (23 / 145))
    assert last["divergence_ratio"] == pytest.approx(0.75, abs=0.001)
    assert (last["sustained"], last["significant"], last["quadrant"]) == (
        True,
        True,
        "short_covering",
    )
    assert (last["oi_divergence"], last["oi_divergence_grade"]) == ("bearish", "moderate")


def test_oi_divergence_guards_reject_a_small_or_interrupted_decline() -> None:
    sol = _sol()
    # OI falls only 5% -> not significant.
    small = sol.with_columns(pl.Series("oi_usd", list(np.linspace(4.2e9, 3.99e9, 73))))
    assert oi_divergence(small)["oi_divergence"][-1] is None
    # OI pops above its start in the middle -> not sustained.
    bumped = sol.with_columns(
        pl.when(pl.int_range(pl.len()) == 30)
        .then(4.3e9)
        .otherwise(pl.col("oi_usd"))
        .alias("oi_usd")
    )
    assert oi_divergence(bumped)["oi_divergence"][-1] is None


def test_oi_divergence_bullish_mirror_and_market_wide() -> None:
    n = 73
    btc = _oi(list(np.linspace(22e9, 17.5e9, n)), close=list(np.linspace(52000, 44800, n)))
    eth = _oi(
        list(np.linspace(10e9, 8e9, n)),
        close=list(np.linspace(3000, 2700, n)),
        instrument="ETH-USDT-PERP",
    )
    out = oi_divergence(pl.concat([btc, eth]))
    btc_last = out.filter(pl.col("instrument") == "BTC-USDT-PERP").row(-1, named=True)
    # BTC: OI -20.45%, price -13.85% -> ratio 1.48 (strong), bullish.
    assert btc_last["divergence_ratio"] == pytest.approx((4.5 / 22) / (7200 / 52000))
    assert (btc_last["oi_divergence"], btc_last["oi_divergence_grade"]) == ("bullish", "strong")
    market = market_oi_divergence(out)
    assert market.row(-1, named=True)["market_wide"] == "bullish"
    assert market.row(-1, named=True)["bullish_assets"] == "BTC,ETH"


def test_venue_share_concentration_and_migration() -> None:
    frame = pl.concat(
        [
            _oi([40.0, 30.0], step_h=168.0, venue="binance"),
            _oi([22.0, 30.0], step_h=168.0, venue="bybit"),
            _oi([38.0, 40.0], step_h=168.0, venue="okx"),
        ]
    )
    out = venue_oi_share(frame)
    last = out.filter(pl.col("period") == T0 + timedelta(hours=168))
    assert last["share"].to_list() == pytest.approx([0.3, 0.3, 0.4])
    assert last["hhi"][0] == pytest.approx(0.09 + 0.09 + 0.16)
    assert last["top_venue"][0] == "okx"
    # Bybit 22% -> 30% of OI; binance -25%, bybit +36% -> migration.
    assert last["share_change"].to_list() == pytest.approx([-0.1, 0.08, 0.02])
    # HHI then: 0.4^2 + 0.22^2 + 0.38^2 = 0.3528; now 0.34 -> concentration fell by 0.0128.
    assert last["hhi_change"][0] == pytest.approx(0.34 - 0.3528)
    assert last["migration"].all()


def test_oi_percentile_over_thirty_days() -> None:
    out = oi_percentile(_oi([5.0, 3.0, 4.0, 9.0], step_h=24.0))
    # day 2: values <= 4 among {5, 3, 4} -> 2 of 3.
    assert out["oi_percentile"].to_list() == pytest.approx([1.0, 0.5, 2 / 3, 1.0])


def test_oi_changes_cross_checked_against_duckdb_asof_join_and_window() -> None:
    # Independent computation in SQL: DuckDB's ASOF JOIN for the 24h-earlier value and a RANGE
    # window for the 7-day mean, on hourly data with random holes.
    rng = np.random.default_rng(3)
    hours_kept = np.sort(rng.choice(24 * 40, size=24 * 30, replace=False))
    frame = pl.DataFrame(
        {
            "venue": "binance",
            "instrument": "BTC-USDT-PERP",
            "ts": [T0 + timedelta(hours=int(h)) for h in hours_kept],
            "oi_usd": 1e9 * np.exp(np.cumsum(rng.normal(0, 0.01, hours_kept.size))),
        }
    )
    ours = oi_changes(frame)
    con = duckdb.connect()
    con.register("o", frame.to_arrow())
    ref = pl.from_arrow(
        con.sql(
            """
            WITH c AS (
              SELECT a.ts, a.oi_usd / b.oi_usd - 1 AS ch
              FROM o a ASOF LEFT JOIN o b ON b.ts <= a.ts - INTERVAL 24 HOURS
            ), c2 AS (
              SELECT c.ts, CASE WHEN b.ts >= c.ts - INTERVAL 26 HOURS THEN c.ch END AS ch
              FROM c ASOF LEFT JOIN o b ON b.ts <= c.ts - INTERVAL 24 HOURS
            )
            SELECT ts, ch, avg(ch) OVER (ORDER BY ts RANGE BETWEEN INTERVAL 167 HOURS PRECEDING
                                          AND CURRENT ROW) AS m
            FROM c2 ORDER BY ts
            """
        ).to_arrow_table()
    )
    assert isinstance(ref, pl.DataFrame)
    np.testing.assert_allclose(
        ours["oi_change_24h"].fill_null(np.nan).to_numpy(), ref["ch"].fill_null(np.nan).to_numpy()
    )
    # On whole hours (t - 168h, t] and [t - 167h, t] hold the same rows.
    np.testing.assert_allclose(
        ours["roc_avg_7d"].fill_null(np.nan).to_numpy(), ref["m"].fill_null(np.nan).to_numpy()
    )


def test_oi_changes_with_price_add_the_24h_quadrant() -> None:
    # Daily bars: price 100 -> 90 (-10%) while OI 100 -> 120 (+20%): new shorts.
    out = oi_changes(_oi([100.0, 120.0], step_h=24.0, close=[100.0, 90.0]))
    assert out["price_change_24h"][1] == pytest.approx(-0.10)
    assert out["quadrant"].cast(pl.String).to_list() == ["undefined", "new_shorts"]
