"""Backfills against the fake Binance: request counts, resume, interval changes, klines.

Expected counts are computed from the fake market's own schedule (``tests/fakex/market.py``),
independently of the collector: e.g. BTCUSDT settles every 8 h from 2024-01-01 to 2026-01-01,
731 days x 3 = 2,193 settlements, which at 1,000 rows a page is ceil(2193 / 1000) = 3 requests.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from perpscope.analytics.funding import normalised_funding
from perpscope.collect.backfill import StreamResult
from perpscope.collect.retry import RetryPolicy
from perpscope.domain.schema import table_spec
from perpscope.services.collection import gaps, run_backfill
from perpscope.store.lake import Lake
from tests.fakex.market import END_MS, LISTING_MS, XYZ_SWITCH_MS, funding_rate, funding_times
from tests.fakex.server import FakeBinance

END = datetime.fromtimestamp(END_MS / 1000, UTC)
FAST = RetryPolicy(attempts=3, base_s=0.01, cap_s=0.05)


def collect(
    lake: Lake,
    fake: FakeBinance,
    instruments: list[str],
    streams: list[str],
    **kw: object,
) -> list[StreamResult]:
    return run_backfill(
        lake, "binance", instruments, streams, until=END, api_url=fake.url, policy=FAST,
        pace=False, rate_limit_ms=1, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def keys_unique(frame: pl.DataFrame, table: str) -> bool:
    return not frame.select(pl.struct(list(table_spec(table).key)).is_duplicated().any()).item()


def test_full_funding_backfill_uses_the_minimal_number_of_requests(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    [res] = collect(lake, fake_binance, ["BTC-USDT-PERP"], ["funding"])
    expected = len(funding_times("BTCUSDT"))
    assert expected == 731 * 3
    assert res.status == "ok"
    calls = fake_binance.requests("/fapi/v1/fundingRate")
    assert len(calls) == math.ceil(expected / 1000) == 3
    assert {c.params["limit"] for c in calls} == {"1000"}  # the largest page Binance allows
    stored = lake.read("funding")
    assert stored.height == res.rows_written == expected
    assert keys_unique(stored, "funding")
    # the stored rates are the market's, in order
    rates = stored.sort("ts")["rate"].to_list()
    assert rates == pytest.approx([funding_rate(i) for i in range(expected)])
    assert set(stored["interval_h"]) == {8.0}


def test_thirty_day_oi_history_uses_the_minimal_number_of_requests(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    [res] = collect(lake, fake_binance, ["BTC-USDT-PERP"], ["oi:5m"])
    # 30 days of 5-minute rows, less the one exactly 30 days old: the collector starts one
    # minute inside the venue's window (Binance refuses a startTime older than 30 days)
    rows = 30 * 24 * 12 - 1
    assert res.status == "ok"
    assert len(fake_binance.requests("/futures/data/openInterestHist")) == math.ceil(rows / 500)
    stored = lake.read("open_interest")
    assert stored.height == rows
    assert set(stored["source"]) == {"hist_5m"}
    assert keys_unique(stored, "open_interest")


def test_interval_change_is_stored_per_row_and_annualises_right(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    [res] = collect(lake, fake_binance, ["XYZ-USDT-PERP"], ["funding"])
    assert res.status == "ok"
    stored = lake.read("funding").sort("ts")
    switch = datetime.fromtimestamp(XYZ_SWITCH_MS / 1000, UTC)
    before = stored.filter(pl.col("ts") <= switch)
    after = stored.filter(pl.col("ts") > switch)
    assert set(before["interval_h"]) == {8.0}
    assert set(after["interval_h"]) == {4.0}
    assert stored.height == len(funding_times("XYZUSDT"))
    # the first 4-hourly settlement, 2025-09-01 12:00: index i in the market's schedule
    i = funding_times("XYZUSDT").index(XYZ_SWITCH_MS + 4 * 3_600_000)
    row = after.row(0, named=True)
    annual = row["rate"] * 8760 / row["interval_h"]
    # by hand: annualised = rate x 8760 / 4 (not / 8)
    assert annual == pytest.approx(funding_rate(i) * 2190)
    # and the analytics layer reads the stored interval the same way
    norm = normalised_funding(stored).filter(pl.col("ts") == row["ts"]).row(0, named=True)
    assert norm["annualized"] == pytest.approx(funding_rate(i) * 2190)
    assert norm["rate_8h"] == pytest.approx(funding_rate(i) * 2)


def test_rerun_resumes_from_the_cursor_and_writes_nothing_new(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    collect(lake, fake_binance, ["BTC-USDT-PERP"], ["funding"])
    first = lake.read("funding")
    before = len(fake_binance.requests("fundingRate"))
    [again] = collect(lake, fake_binance, ["BTC-USDT-PERP"], ["funding"])
    assert again.resumed_from == first["ts"].max()
    assert len(fake_binance.requests("fundingRate")) - before == 1  # one look past the cursor
    assert again.rows_written == 0
    assert lake.read("funding").height == first.height


@pytest.mark.parametrize("kind", ["trade", "mark", "index", "premium"])
def test_perp_klines_backfill_every_kind(
    tmp_path: Path, fake_binance: FakeBinance, kind: str
) -> None:
    lake = Lake(tmp_path / "store")
    [res] = collect(lake, fake_binance, ["ETH-USDT-PERP"], [f"ohlcv:{kind}:4h"])
    bars = (END_MS - LISTING_MS["ETHUSDT"]) // (4 * 3_600_000)  # 731 days x 6
    assert res.status == "ok"
    stored = lake.read("ohlcv")
    assert stored.height == bars == 4386
    assert len(fake_binance.requests()) == math.ceil(bars / 1500)
    assert set(stored["kind"]) == {kind}
    assert (stored["volume"].null_count() == 0) == (kind == "trade")
    assert keys_unique(stored, "ohlcv")


def test_spot_klines_for_basis(tmp_path: Path, fake_binance: FakeBinance) -> None:
    lake = Lake(tmp_path / "store")
    [res] = collect(lake, fake_binance, ["BTC-USDT"], ["ohlcv:trade:1d"])
    assert res.status == "ok"
    assert {r.path for r in fake_binance.requests()} == {"/api/v3/klines"}
    assert {r.params["limit"] for r in fake_binance.requests()} == {"1000"}
    assert lake.read("ohlcv").height == 731


def test_ratios_and_taker_volume_backfill(tmp_path: Path, fake_binance: FakeBinance) -> None:
    lake = Lake(tmp_path / "store")
    streams = [
        "long_short:global_account:1h",
        "long_short:top_account:1h",
        "long_short:top_position:1h",
        "taker:1h",
    ]
    results = collect(lake, fake_binance, ["BTC-USDT-PERP"], streams)
    assert [r.status for r in results] == ["ok"] * 4
    ls = lake.read("long_short")
    hourly = 30 * 24 - 1  # the row exactly 30 days old is outside the window asked for
    assert ls.height == 3 * hourly
    assert set(ls["kind"]) == {"global_account", "top_account", "top_position"}
    assert lake.read("taker_volume").height == hourly
    # 719 hourly rows fit in ceil(719 / 500) = 2 pages per stream
    assert len(fake_binance.requests("/futures/data/takerlongshortRatio")) == 2


def test_unsupported_pairs_are_usage_errors(tmp_path: Path, fake_binance: FakeBinance) -> None:
    lake = Lake(tmp_path / "store")
    results = collect(lake, fake_binance, ["BTC-USDT"], ["funding"])
    assert results[0].status == "failed"
    assert "only ohlcv:trade" in (results[0].error or "")
    assert fake_binance.requests() == []


def test_runs_over_separate_ranges_do_not_report_the_space_between_as_their_hole(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    # the space between two ranges collected by two runs is a hole of the series (collect gaps
    # lists it), but neither run was asked for it: both end "ok", and nothing is fetched for it
    first = datetime(2024, 7, 1, 0, 5, tzinfo=UTC)  # not on a settlement: gap_end is after it
    lake_b = Lake(tmp_path / "store")
    [early] = run_backfill(
        lake_b, "binance", ["ETH-USDT-PERP"], ["funding"], until=datetime(2024, 3, 1, tzinfo=UTC),
        api_url=fake_binance.url, policy=FAST, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    [late] = run_backfill(
        lake_b, "binance", ["ETH-USDT-PERP"], ["funding"], since=first, until=END, restart=True,
        api_url=fake_binance.url, policy=FAST, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert (early.status, late.status) == ("ok", "ok")
    assert (early.holes, late.holes, late.holes_refilled) == (0, 0, 0)
    # from 2024-02-29 16:00 (the last settlement before --until) to 2024-07-01 08:00 (the first
    # after --since): 8 h + 122 days (March to June) + 8 h = 2,944 h, 368 steps of 8 h, so 367
    # settlements missing between the two ranges
    [hole] = gaps(lake_b, table="funding").iter_rows(named=True)
    assert hole["missing"] == 367
