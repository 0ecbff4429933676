"""``funding table``: prediction, next settlement, z-score, percentile and the data's age."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from perpscope.analytics.funding_series import funding_statistics, latest_funding_statistics
from perpscope.services.filters import MarketQuery
from perpscope.services.funding_table import funding_table_report
from perpscope.store.lake import Lake

T0 = datetime(2023, 12, 30, tzinfo=UTC)
RATES = [0.0001, 0.0001, 0.0002, 0.0001, 0.0004]  # binance 8h, at 00, 08, 16, 24, 32h


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "store")
    lake.init()
    lake.ingest(
        "funding",
        pl.DataFrame(
            {
                "venue": ["binance"] * 5 + ["bybit"],
                "instrument": "BTC-USDT-PERP",
                "ts": [T0 + timedelta(hours=8 * i) for i in range(5)] + [T0],
                "rate": [*RATES, 0.00005],
                "interval_h": [8.0] * 5 + [4.0],
            }
        ),
    )
    lake.ingest(
        "funding_snapshot",
        pl.DataFrame(
            {
                "venue": ["binance", "binance"],
                "instrument": "BTC-USDT-PERP",
                "ts": [T0 + timedelta(hours=33), T0 + timedelta(hours=35)],
                "rate": [0.0003, 0.0003],
                "predicted_rate": [0.0002, 0.00025],
                "interval_h": [8.0, 8.0],
                "next_funding_ts": [T0 + timedelta(hours=40)] * 2,
            }
        ),
    )
    return lake


def test_latest_rows_carry_prediction_next_settlement_zscore_and_percentile(lake: Lake) -> None:
    now = T0 + timedelta(hours=36)
    table = funding_table_report(lake, MarketQuery.make(), now=now)
    b = table.venues.filter(pl.col("venue") == "binance").row(0, named=True)
    # Latest snapshot (35h): predicted 0.025% per 8h, next settlement at 40h -> 5h after it.
    assert b["predicted_rate"] == pytest.approx(0.00025)
    assert b["predicted_rate_8h"] == pytest.approx(0.00025)
    assert b["next_funding_ts"] == T0 + timedelta(hours=40)
    assert b["next_funding_in_h"] == pytest.approx(5.0)
    # z-score of the 32h settlement over the trailing 7 days = all five rates, by the statistics
    # module (sample std); percentile = share of the five <= 0.0004 = 1.0.
    z = (RATES[-1] - statistics.mean(RATES)) / statistics.stdev(RATES)
    assert b["zscore"] == pytest.approx(z)
    assert b["percentile"] == 1.0
    # 36h - 32h = 4h old: fresh.
    assert b["age_h"] == pytest.approx(4.0)
    assert (b["stale"], table.stale, table.stale_note) == (False, False, None)
    y = table.venues.filter(pl.col("venue") == "bybit").row(0, named=True)
    # bybit has no snapshot: no prediction; one settlement: no z-score; 36h old: stale row.
    assert (y["predicted_rate"], y["next_funding_ts"], y["zscore"]) == (None, None, None)
    assert (y["age_h"], y["stale"]) == (pytest.approx(36.0), True)


def test_old_data_says_how_old_the_latest_settlement_is(lake: Lake) -> None:
    # The data ends 2023-12-31 08:00; on 2026-12-03 08:00 that is 1068 days.
    now = datetime(2026, 12, 3, 8, tzinfo=UTC)
    table = funding_table_report(lake, MarketQuery.make(), now=now)
    assert table.stale
    assert table.age_h == pytest.approx(1068 * 24)
    assert table.stale_note == "stale: the latest settlement is 2023-12-31 08:00Z, 1068 days ago"


def test_latest_statistics_equal_the_last_row_of_the_full_computation() -> None:
    # Independent engines: polars' rolling rank (latest_funding_statistics) against the numba
    # Fenwick-tree kernel (funding_statistics), on two random series with different intervals
    # and a gap.
    rng = np.random.default_rng(5)
    ts8 = [T0 + timedelta(hours=8 * i) for i in range(200)]
    ts1 = [T0 + timedelta(hours=i) for i in range(900) if not 300 <= i < 340]
    frame = pl.DataFrame(
        {
            "venue": ["binance"] * len(ts8) + ["bybit"] * len(ts1),
            "instrument": "BTC-USDT-PERP",
            "ts": ts8 + ts1,
            "rate": np.round(rng.normal(1e-4, 2e-4, len(ts8) + len(ts1)), 6),
            "interval_h": [8.0] * len(ts8) + [1.0] * len(ts1),
        }
    )
    fast = latest_funding_statistics(frame).sort("venue")
    full = funding_statistics(frame).sort("ts").group_by("venue", "instrument").last().sort("venue")
    assert fast["ts"].to_list() == full["ts"].to_list()
    np.testing.assert_allclose(fast["zscore"].to_numpy(), full["zscore"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(fast["percentile"].to_numpy(), full["percentile"].to_numpy())
