"""The sample guard of the long/short extremes at its boundary: 9, 10 and 11 values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from perpscope.analytics.longshort import long_short_extremes

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _rising(n: int) -> pl.DataFrame:
    # n hourly ratios 1.0, 1.1, ...: the latest is always the window's highest (percentile 1.0).
    return pl.DataFrame(
        {
            "venue": "binance",
            "instrument": "BTC-USDT-PERP",
            "kind": "global_account",
            "period": "1h",
            "ts": [T0 + timedelta(hours=i) for i in range(n)],
            "long_short_ratio": [1.0 + 0.1 * i for i in range(n)],
        }
    )


@pytest.mark.parametrize(("n", "label"), [(9, None), (10, "crowded_long"), (11, "crowded_long")])
def test_an_extreme_needs_ten_values_in_the_window(n: int, label: str | None) -> None:
    last = long_short_extremes(_rising(n)).row(-1, named=True)
    assert (last["ls_samples"], last["ls_percentile"]) == (n, 1.0)
    assert last["extreme"] == label


def test_falling_ratios_reach_crowded_short_only_from_ten_values() -> None:
    # With n values the lowest percentile is 1/n: 1/10 = 0.1 is the first to reach <= 10%.
    falling = _rising(10).with_columns(pl.col("long_short_ratio").reverse())
    out = long_short_extremes(falling)
    assert out["ls_percentile"][-1] == pytest.approx(0.1)
    assert out["extreme"].to_list() == [None] * 9 + ["crowded_short"]
