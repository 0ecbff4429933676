"""Real data (../shared/data): funding extremes and the Binance-Bybit spread, cross-checked.

The supervik files write ``Date`` in UTC+3 without a zone; 3 hours are subtracted here. Each
figure of docs/methodology.md is recomputed and checked against an independent plain-Python or
numpy computation written in this file.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from tests.conftest import require_shared

from perpscope.analytics.funding_series import (
    cross_venue_spread_history,
    extremes_per_year,
    funding_extremes,
)

pytestmark = pytest.mark.shared_data


def _load(asset: str, venue: str) -> pl.DataFrame:
    start = "2020" if venue == "binance" else "2021"
    path = require_shared(
        f"funding/supervik_{asset}-USDT_{venue}_{start}-01-01_2024-01-01_funding_history.csv.gz"
    )
    raw = pl.read_csv(path)
    return raw.select(
        pl.lit(venue).alias("venue"),
        pl.lit(f"{asset}-USDT-PERP").alias("instrument"),
        (
            pl.col("Date").str.to_datetime(time_unit="us").dt.replace_time_zone("UTC")
            - timedelta(hours=3)
        ).alias("ts"),
        pl.col("Funding Rate").cast(pl.Float64).alias("rate"),
        pl.lit(8.0).alias("interval_h"),
    )


def _plain_python_episodes(
    frame: pl.DataFrame, threshold: float = 0.0005
) -> Counter[tuple[int, str]]:
    """Runs of >= 3 consecutive 8h settlements beyond the threshold, by start year and side."""
    counts: Counter[tuple[int, str]] = Counter()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    run: list[datetime] = []
    side = 0
    prev: datetime | None = None
    for ts, rate in sorted(zip(frame["ts"].to_list(), frame["rate"].to_list(), strict=True)):
        period = epoch + timedelta(hours=8 * ((ts - epoch) // timedelta(hours=8)))
        s = 1 if rate >= threshold else -1 if rate <= -threshold else 0
        contiguous = prev is not None and period - prev == timedelta(hours=8)
        if s != 0 and s == side and contiguous:
            run.append(period)
        else:
            if side != 0 and len(run) >= 3:
                counts[(run[0].year, "positive" if side > 0 else "negative")] += 1
            run, side = ([period] if s != 0 else []), s
        prev = period
    if side != 0 and len(run) >= 3:
        counts[(run[0].year, "positive" if side > 0 else "negative")] += 1
    return counts


@pytest.mark.parametrize("asset", ["BTC", "ETH"])
def test_binance_extremes_per_year_match_a_plain_python_count(asset: str) -> None:
    frame = _load(asset, "binance")
    assert frame.height == 4383
    ours = extremes_per_year(funding_extremes(frame, min_venues=1))
    expected = _plain_python_episodes(frame)
    assert {(r["year"], r["side"]): r["episodes"] for r in ours.iter_rows(named=True)} == dict(
        expected
    )


def test_binance_extremes_per_year_figures_in_the_docs() -> None:
    counts = {}
    for asset in ("BTC", "ETH"):
        per_year = extremes_per_year(funding_extremes(_load(asset, "binance"), min_venues=1))
        for r in per_year.iter_rows(named=True):
            counts[(asset, r["year"], r["side"])] = r["episodes"]
    # docs/methodology.md, "Real-data figures".
    assert counts == {
        ("BTC", 2020, "negative"): 1,
        ("BTC", 2020, "positive"): 9,
        ("BTC", 2021, "positive"): 16,
        ("ETH", 2020, "positive"): 18,
        ("ETH", 2021, "positive"): 24,
        ("ETH", 2022, "negative"): 2,
    }


def test_binance_bybit_spread_matches_numpy_on_aligned_settlements() -> None:
    for asset, corr_all in (("BTC", 0.72), ("ETH", None)):
        binance, bybit = _load(asset, "binance"), _load(asset, "bybit")
        spread = cross_venue_spread_history(pl.concat([binance, bybit]), "binance", "bybit")
        assert spread.height == 3285
        # Independent: join the raw settlements on the minute with numpy arrays.
        a = binance.with_columns(pl.col("ts").dt.truncate("1m")).sort("ts")
        b = bybit.with_columns(pl.col("ts").dt.truncate("1m")).sort("ts")
        both = a.join(b, on="ts", suffix="_b")
        diff = both["rate"].to_numpy() - both["rate_b"].to_numpy()
        np.testing.assert_allclose(np.sort(spread["spread_8h"].to_numpy()), np.sort(diff))
        if corr_all is not None:
            # PROVENANCE.md: Binance and Bybit BTC correlate at 0.72 over 3,285 settlements.
            r = np.corrcoef(both["rate"].to_numpy(), both["rate_b"].to_numpy())[0, 1]
            assert r == pytest.approx(corr_all, abs=0.005)
        by_year = spread.group_by(pl.col("period").dt.year().alias("y")).agg(
            (pl.col("spread_8h").abs() >= 0.0003 - 1e-12).mean().alias("alert")
        )
        assert by_year.height == 3


def test_spread_figures_in_the_docs() -> None:
    # docs/methodology.md, "Binance minus Bybit funding spread": share of 8h periods at or above
    # the 0.03% alert and the correlation of the two venues, per year (numpy on the history).
    expected = {
        ("BTC", 2021): (0.2776, 0.674),
        ("BTC", 2022): (0.0219, 0.415),
        ("ETH", 2022): (0.0082, 0.831),
        ("ETH", 2023): (0.0055, 0.720),
    }
    for asset in ("BTC", "ETH"):
        frame = pl.concat([_load(asset, "binance"), _load(asset, "bybit")])
        spread = cross_venue_spread_history(frame, "binance", "bybit")
        for (a, year), (share, corr) in expected.items():
            if a != asset:
                continue
            part = spread.filter(pl.col("period").dt.year() == year)
            s = part["spread_8h"].to_numpy()
            assert np.mean(np.abs(s) >= 0.0003 - 1e-12) == pytest.approx(share, abs=5e-4)
            r = np.corrcoef(part["rate_8h_a"].to_numpy(), part["rate_8h_b"].to_numpy())[0, 1]
            assert r == pytest.approx(corr, abs=5e-4)
