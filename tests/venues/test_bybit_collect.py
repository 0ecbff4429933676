"""Bybit through the real collector on the fake exchange: pagination over whole histories, the
funding interval of each settlement, and Bybit's IP limit (600 requests / 5 s, 403 + ban)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from perpscope.collect.retry import RetryPolicy
from perpscope.services.collection import run_backfill, run_snapshot
from perpscope.store.lake import Lake
from perpscope.venues.base import RatePool
from tests.fakex import bybit as fb
from tests.fakex.market import END_MS, HOUR_MS, XYZ_SWITCH_MS, funding_times
from tests.fakex.server import FakeBinance, Fault, Request

UNTIL = datetime.fromtimestamp(END_MS / 1000, UTC)
POLICY = RetryPolicy(attempts=2, base_s=0.01)


def bybit_log(fake: FakeBinance) -> list[Request]:
    """The fake's log of Bybit requests (paths under ``/v5/``), in arrival order."""
    return [r for r in fake.requests() if r.path.startswith("/v5/")]


def utc_ms(frame: pl.DataFrame) -> list[int]:
    return frame["ts"].dt.epoch("ms").to_list()


def test_funding_since_listing_with_the_interval_change(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(
        lake, "bybit", ["XYZ-USDT-PERP"], ["funding"], until=UNTIL, api_url=fake_binance.url,
        policy=POLICY, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert res.status == "ok", res.error
    frame = lake.read("funding").sort("ts")
    assert utc_ms(frame) == funding_times("XYZUSDT")  # every settlement, once
    # 8 h settlements up to the switch, 4 h after it (the gap to the previous row)
    old = frame.filter(pl.col("ts").dt.epoch("ms") <= XYZ_SWITCH_MS)
    new = frame.filter(pl.col("ts").dt.epoch("ms") > XYZ_SWITCH_MS)
    assert set(old["interval_h"]) == {8.0}
    assert set(new["interval_h"]) == {4.0}
    # the window is 200 settlements of the current 4 h interval: no page is ever full here
    windows = len(fake_binance.requests("/v5/market/funding/history"))
    span_h = (END_MS - funding_times("XYZUSDT")[0]) / HOUR_MS
    assert windows == -(-span_h // (200 * 4))


def test_a_window_holding_more_than_a_page_is_paged_backwards(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    # the instruments claim 8 h for XYZUSDT: a 1,600 h window then holds up to 400 of its
    # 4 h settlements, twice a page; the venue must page back with endTime inside the window
    rows = fb.instrument_rows()
    for r in rows:
        r["fundingInterval"] = 480
    fake_binance.serve(
        "/v5/market/instruments-info",
        fb.envelope({"category": "linear", "list": rows, "nextPageCursor": ""}),
    )
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(
        lake, "bybit", ["XYZ-USDT-PERP"], ["funding"], until=UNTIL, api_url=fake_binance.url,
        policy=POLICY, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert res.status == "ok", res.error
    frame = lake.read("funding").sort("ts")
    assert utc_ms(frame) == funding_times("XYZUSDT")
    asked = fake_binance.requests("/v5/market/funding/history")
    backwards = [
        r for r in asked if int(r.params["endTime"]) + 1 - int(r.params["startTime"])
        < 200 * 8 * HOUR_MS and int(r.params["endTime"]) + 1 < END_MS
    ]  # fmt: skip
    assert backwards  # at least one request ended before its window's end


def test_an_unpaced_overrun_is_banned_with_403_and_not_retried(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    fake_binance.set_budget("bybit_ip", 5, 60.0)
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(
        lake, "bybit", ["BTC-USDT-PERP"], ["oi:5m"], since=UNTIL - timedelta(days=10),
        until=UNTIL, api_url=fake_binance.url, policy=POLICY, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert res.status == "failed"
    assert "IP banned (HTTP 403)" in (res.error or "")
    assert res.retries == 0  # a ban of unknown length is never retried blindly
    statuses = [r.status for r in bybit_log(fake_binance)]
    assert statuses == [200] * 5 + [403]  # nothing was sent after the ban
    # the pages before the ban are stored, and the run can resume from them
    assert lake.read("open_interest").height == 4 * 200


def test_a_paced_run_stays_under_the_limit(tmp_path: Path, fake_binance: FakeBinance) -> None:
    # the fake allows 21 requests a second; the collector paces at 20 (the instruments read
    # inside the first page is the one request the gates do not see)
    fake_binance.set_budget("bybit_ip", 21, 1.0)
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(
        lake, "bybit", ["BTC-USDT-PERP"], ["oi:5m"], since=UNTIL - timedelta(days=20),
        until=UNTIL, api_url=fake_binance.url, policy=POLICY, pace=True, rate_limit_ms=1,
        limits=(RatePool("ip", 20, 1.0),),
    )  # fmt: skip
    assert res.status == "ok", res.error
    log = bybit_log(fake_binance)
    assert len(log) > 21  # more than one window's worth was sent
    assert {r.status for r in log} == {200}
    assert lake.read("open_interest").height == 20 * 288


def test_snapshot_is_two_requests_for_every_symbol(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    res = run_snapshot(
        lake, "bybit", ["BTC-USDT-PERP", "ETH-USDT-PERP"], api_url=fake_binance.url,
        policy=POLICY, rate_limit_ms=1,
    )  # fmt: skip
    assert [r.path for r in bybit_log(fake_binance)] == [
        "/v5/market/instruments-info",
        "/v5/market/tickers",
    ]
    oi = lake.read("open_interest").sort("instrument")
    assert oi["instrument"].to_list() == ["BTC-USDT-PERP", "ETH-USDT-PERP", "XYZ-USDT-PERP"]
    # the fake's OI at END in base coin, and its USD value at the fake's price (hand-computed:
    # 50,000 + (hours since listing mod 89) x 7.25; BTC and ETH were listed 17,544 h before END,
    # 17,544 mod 89 = 11 -> 50,079.75 coins; x 40,000 USD)
    btc = oi.row(0, named=True)
    assert btc["oi_base"] == 50_079.75
    assert btc["oi_usd"] == 50_079.75 * 40_000
    funding = lake.read("funding_snapshot").sort("instrument")
    assert funding["interval_h"].to_list() == [8.0, 8.0, 4.0]
    assert res is not None


def test_faults_on_bybit_paths(tmp_path: Path, fake_binance: FakeBinance) -> None:
    # a 503 and Bybit's in-body per-endpoint limit (retCode 10006, HTTP 200) are retried; the
    # stream completes with every row once
    for kind in ("503", "10006"):
        fake_binance.inject(Fault("/v5/market/open-interest", kind, skip=1))
    lake = Lake(tmp_path / "store")
    policy = RetryPolicy(attempts=4, base_s=0.01, default_retry_after_s=0.01)
    [res] = run_backfill(
        lake, "bybit", ["BTC-USDT-PERP"], ["oi:1h"], since=UNTIL - timedelta(days=20),
        until=UNTIL, api_url=fake_binance.url, policy=policy, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert res.status == "ok", res.error
    assert res.retries == 2
    frame = lake.read("open_interest").sort("ts")
    assert frame.height == 20 * 24
    assert utc_ms(frame) == list(range(END_MS - 20 * 24 * HOUR_MS, END_MS, HOUR_MS))


@pytest.mark.parametrize(
    ("fault", "needle"),
    [
        (Fault("/v5/market/funding/history", "rename", field=("fundingRate", "rate")),
         "no field 'fundingRate'"),
        (Fault("/v5/market/funding/history", "truncated"), "expected a v5 envelope"),
    ],
    ids=["renamed-field", "truncated"],
)  # fmt: skip
def test_a_broken_payload_fails_the_stream_naming_it(
    tmp_path: Path, fake_binance: FakeBinance, fault: Fault, needle: str
) -> None:
    fake_binance.inject(fault)
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(
        lake, "bybit", ["BTC-USDT-PERP"], ["funding"], since=UNTIL - timedelta(days=3),
        until=UNTIL, api_url=fake_binance.url, policy=POLICY, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert res.status == "failed"
    assert "v5/market/funding/history" in (res.error or "")
    assert needle in (res.error or "")
    assert res.retries == 0
    assert not lake.has_table("funding")
