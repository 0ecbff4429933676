"""The funding-rate fade on real funding (../shared/data): a short in January 2021, whose funding
criteria are re-checked here in plain Python from the raw files.

The supervik files write ``Date`` in UTC+3 without a zone (gate: UTC); see PROVENANCE.md.
"""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from perpscope.signals import MarketData
from perpscope.signals.setups import funding_fade
from tests.conftest import require_shared

pytestmark = pytest.mark.shared_data

SHIFT_H = {"binance": 3, "bybit": 3, "htx": 3, "kucoin": 3, "mexc": 3, "gate": 0}
START = {"binance": "2020", "gate": "2020"}
AT = datetime(2021, 1, 8, 22, tzinfo=UTC)


def _raw(venue: str) -> list[tuple[datetime, float]]:
    path = require_shared(
        f"funding/supervik_BTC-USDT_{venue}_{START.get(venue, '2021')}-01-01_2024-01-01"
        "_funding_history.csv.gz"
    )
    with gzip.open(path, "rt") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for r in rows:
        ts = datetime.fromisoformat(r["Date"]).replace(tzinfo=UTC) - timedelta(hours=SHIFT_H[venue])
        if AT - timedelta(days=40) <= ts <= AT:
            out.append((ts, float(r["Funding Rate"])))
    return sorted(out)


def test_btc_fade_short_on_8_january_2021() -> None:
    raw = {v: _raw(v) for v in SHIFT_H}
    # plain Python: venues whose last three settlements up to AT were all >= +0.05%
    hot = [v for v, rs in raw.items() if len(rs) >= 3 and all(r >= 0.0005 for _, r in rs[-3:])]
    assert len(hot) >= 2
    funding = pl.DataFrame(
        [(v, "BTC-USDT-PERP", ts, r, 8.0) for v, rs in raw.items() for ts, r in rs],
        schema=["venue", "instrument", "ts", "rate", "interval_h"],
        orient="row",
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    candles_path = require_shared("candles/zxcy_binance_spot_BTCUSDT_1h_2020-2023.csv.gz")
    c = (
        pl.read_csv(candles_path)
        .select(
            pl.lit("binance").alias("venue"),
            pl.lit("BTC-USDT").alias("instrument"),
            pl.from_epoch("timestamp", time_unit="ms").dt.replace_time_zone("UTC")
            .dt.cast_time_unit("us").alias("ts"),
            pl.col("open").alias("o"), pl.col("high").alias("h"), pl.col("low").alias("l"),
            pl.col("close").alias("c"), "volume",
        )
        .filter(pl.col("ts") > AT - timedelta(days=46))
    )  # fmt: skip
    signals = funding_fade(MarketData("BTC", funding=funding, candles=c), AT)
    assert [s.direction for s in signals] == ["short"]
    ev = {e.name: e.value for e in signals[0].evidence}
    assert ev["venues extreme for 24h+"] == len(hot)
