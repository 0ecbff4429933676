"""The fault matrix: each injected fault recovers (transient) or stops only its stream with one
clear message and nothing partial (permanent, contract violation), while a concurrent stream
completes. Faults are injected by the fake Binance; the real ccxt client meets them."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from perpscope.collect.backfill import StreamResult
from perpscope.collect.retry import PoolGates, RetryPolicy
from perpscope.errors import DataContractError
from perpscope.services.collection import gaps, run_backfill, run_snapshot
from perpscope.store.lake import Lake
from perpscope.venues.binance import CAPABILITIES
from tests.fakex.market import END_MS, funding_times
from tests.fakex.server import FakeBinance, Fault

END = datetime.fromtimestamp(END_MS / 1000, UTC)
FAST = RetryPolicy(attempts=3, base_s=0.01, cap_s=0.05)
BTC_ROWS = len(funding_times("BTCUSDT"))  # 2,193 settlements, pages of 1,000
ETH_ROWS = len(funding_times("ETHUSDT"))


def two_streams(lake: Lake, fake: FakeBinance, timeout_ms: int = 10_000) -> dict[str, StreamResult]:
    """BTC and ETH funding concurrently (the same rate-limit pool)."""
    results = run_backfill(
        lake, "binance", ["BTC-USDT-PERP", "ETH-USDT-PERP"], ["funding"], until=END,
        api_url=fake.url, policy=FAST, pace=False, rate_limit_ms=1, timeout_ms=timeout_ms,
    )  # fmt: skip
    return {r.instrument: r for r in results}


def stored(lake: Lake, instrument: str) -> int:
    return lake.read("funding").filter(pl.col("instrument") == instrument).height


@pytest.mark.parametrize(
    ("fault", "retries"),
    [
        (Fault("fundingRate", "500", times=2, skip=1), 2),
        (Fault("fundingRate", "503", times=1, skip=2), 1),
        (Fault("fundingRate", "502", times=1), 1),
        (Fault("fundingRate", "timeout", times=1, skip=1, delay_s=4.0), 1),
        (Fault("fundingRate", "429", times=1, skip=1, retry_after_s=0.3), 1),
        (Fault("fundingRate", "418", times=1, skip=1, retry_after_s=0.3), 1),
    ],
    ids=["500x2", "503", "502", "timeout", "429", "418"],
)
def test_transient_faults_recover(
    tmp_path: Path, fake_binance: FakeBinance, fault: Fault, retries: int
) -> None:
    fake_binance.inject(fault)
    lake = Lake(tmp_path / "store")
    res = two_streams(lake, fake_binance, timeout_ms=1500 if fault.kind == "timeout" else 10_000)
    assert {r.status for r in res.values()} == {"ok"}
    assert sum(r.retries for r in res.values()) == retries
    assert stored(lake, "BTC-USDT-PERP") == BTC_ROWS
    assert stored(lake, "ETH-USDT-PERP") == ETH_ROWS
    assert (
        lake.read("funding").select(pl.struct("instrument", "ts").is_duplicated().any()).item()
        is False
    )


@pytest.mark.parametrize("kind", ["429", "418"])
def test_rate_limit_honours_retry_after_and_pauses_the_pool(
    tmp_path: Path, fake_binance: FakeBinance, kind: str
) -> None:
    fake_binance.inject(
        Fault("fundingRate", kind, times=1, skip=1, retry_after_s=2.0, symbol="BTCUSDT")
    )
    lake = Lake(tmp_path / "store")
    two_streams(lake, fake_binance)
    calls = fake_binance.requests("fundingRate")
    refused = next(c for c in calls if c.status == int(kind))
    btc_after = [c for c in calls if c.params["symbol"] == "BTCUSDT" and c.at > refused.at]
    assert btc_after
    assert min(c.at for c in btc_after) >= refused.at + 2.0  # Retry-After honoured
    # the other stream of the pool pauses too: an ETH request already in flight may land just
    # after the refusal; none is sent later until Retry-After has passed
    eth_later = [c for c in calls if c.params["symbol"] == "ETHUSDT" and c.at > refused.at + 0.5]
    assert all(c.at >= refused.at + 2.0 for c in eth_later)


def test_a_paused_pool_holds_its_requests_and_no_other_pool() -> None:
    async def scenario() -> tuple[PoolGates, float, float]:
        gates = PoolGates(CAPABILITIES, pace=False)
        start = time.monotonic()
        gates.pause("funding", 0.3)
        await gates.acquire("funding")  # held until the pause ends
        return gates, start, time.monotonic()

    gates, start, done = asyncio.run(scenario())
    assert done - start >= 0.3
    assert gates.paused_until("funding") > 0
    assert gates.paused_until("weight") == gates.paused_until("futures_data") == 0.0


def test_ban_pauses_every_pool_of_the_venue() -> None:
    async def scenario() -> tuple[PoolGates, float, float]:
        gates = PoolGates(CAPABILITIES, pace=False)
        start = time.monotonic()
        gates.pause("funding", 0.3, every_pool=True)
        await gates.acquire("weight")  # another pool waits too
        return gates, start, time.monotonic()

    gates, start, done = asyncio.run(scenario())
    assert done - start >= 0.3
    until = {p.name: gates.paused_until(p.name) for p in CAPABILITIES.pools}
    assert len(set(until.values())) == 1
    assert min(until.values()) > 0


def test_retry_after_longer_than_allowed_stops_the_stream(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    fake_binance.inject(Fault("fundingRate", "418", times=1, retry_after_s=7200, symbol="BTCUSDT"))
    lake = Lake(tmp_path / "store")
    res = two_streams(lake, fake_binance)
    failed = [r for r in res.values() if r.status == "failed"]
    assert len(failed) == 1
    assert "HTTP 418" in (failed[0].error or "")
    assert "7200" in (failed[0].error or "")


def test_transient_errors_past_the_retry_budget_stop_the_stream(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    fake_binance.inject(
        Fault("fundingRate", "503", times=4, skip=1, symbol="BTCUSDT")
    )  # 1 try + 3 retries
    lake = Lake(tmp_path / "store")
    res = two_streams(lake, fake_binance)
    failed, ok = res["BTC-USDT-PERP"], res["ETH-USDT-PERP"]
    assert failed.status == "failed"
    assert ok.status == "ok"
    assert "fapi/v1/fundingRate" in (failed.error or "")
    assert "ExchangeNotAvailable" in (failed.error or "")
    assert stored(lake, "ETH-USDT-PERP") == ETH_ROWS
    # the failed stream kept the one page it had committed
    assert stored(lake, "BTC-USDT-PERP") == 1000


@pytest.mark.parametrize(
    ("fault", "needle"),
    [
        (Fault("fundingRate", "truncated", skip=1, symbol="BTCUSDT"), "expected a JSON list"),
        (
            Fault("fundingRate", "rename", skip=1, field=("fundingRate", "rate"), symbol="BTCUSDT"),
            "no field 'fundingRate'",
        ),
        (
            Fault("fundingRate", "enum", skip=1, field=("fundingRate", "HIGH"), symbol="BTCUSDT"),
            "non-number 'HIGH'",
        ),
    ],
    ids=["truncated", "renamed-field", "bad-value"],
)
def test_contract_violations_stop_one_stream_and_write_nothing_partial(
    tmp_path: Path, fake_binance: FakeBinance, fault: Fault, needle: str
) -> None:
    fake_binance.inject(fault)
    lake = Lake(tmp_path / "store")
    res = two_streams(lake, fake_binance)
    failed, ok = res["BTC-USDT-PERP"], res["ETH-USDT-PERP"]
    assert failed.status == "failed"
    assert ok.status == "ok"
    assert needle in (failed.error or "")
    assert "\n" not in (failed.error or "")  # one line
    assert failed.retries == 0  # contract violations: no retry
    # exactly the first page of the failed stream is stored: not one row of the bad page
    assert stored(lake, "BTC-USDT-PERP") == 1000
    assert stored(lake, "ETH-USDT-PERP") == ETH_ROWS
    # the cursor still points after the first page, and carries the error
    cursors = lake.read("collect_cursor").filter(pl.col("instrument") == "BTC-USDT-PERP")
    last = cursors.sort("ts").row(-1, named=True)
    btc = lake.read("funding").filter(pl.col("instrument") == "BTC-USDT-PERP")
    assert last["cursor_ts"] == btc["ts"].max()
    assert needle in last["note"]


def test_unknown_enum_in_instruments_fails_the_snapshot_and_stores_nothing(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    fake_binance.inject(Fault("/fapi/v1/exchangeInfo", "enum", field=("contractType", "WEIRD")))
    lake = Lake(tmp_path / "store")
    with pytest.raises(DataContractError, match="unknown contractType 'WEIRD'"):
        run_snapshot(lake, "binance", ["BTC-USDT-PERP"], api_url=fake_binance.url,
                     policy=FAST, pace=False, rate_limit_ms=1)  # fmt: skip
    assert lake.tables() == []


def test_missing_page_is_reported_as_a_hole(tmp_path: Path, fake_binance: FakeBinance) -> None:
    fake_binance.inject(Fault("fundingRate", "missing_page", skip=1, symbol="BTCUSDT"))
    lake = Lake(tmp_path / "store")
    res = two_streams(lake, fake_binance)
    assert {r.status for r in res.values()} == {"ok"}
    holes = gaps(lake, table="funding")
    assert holes.height == 1
    hole = holes.row(0, named=True)
    assert hole["missing"] == 1000  # one page of settlements never arrived
    assert sum(r.holes for r in res.values()) == 1
    # the hole spans 1,001 settlement intervals of 8 h
    assert (hole["gap_end"] - hole["gap_start"]).total_seconds() == 1001 * 8 * 3600


def test_ban_without_retry_after_is_not_retried(tmp_path: Path, fake_binance: FakeBinance) -> None:
    fake_binance.inject(Fault("fundingRate", "418", retry_after_s=-1, symbol="BTCUSDT"))
    lake = Lake(tmp_path / "store")
    res = two_streams(lake, fake_binance)
    assert res["BTC-USDT-PERP"].status == "failed"
    assert "HTTP 418" in (res["BTC-USDT-PERP"].error or "")
    assert "no Retry-After" in (res["BTC-USDT-PERP"].error or "")
    assert len(fake_binance.requests("fundingRate")) == 1 + 3  # BTC's one try, ETH's 3 pages
