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
    tmp_path: Path, fake_binance: FakeBinance, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # When the client learned of the refusal: the real pause runs, its start is recorded on
    # the clock the fake stamps arrivals with (time.monotonic, same process).
    pauses: list[tuple[str, float, float]] = []
    real_pause = PoolGates.pause

    def recorded(self: PoolGates, pool: str, seconds: float, *, every_pool: bool = False) -> None:
        pauses.append((pool, time.monotonic(), seconds))
        real_pause(self, pool, seconds, every_pool=every_pool)

    monkeypatch.setattr(PoolGates, "pause", recorded)
    fake_binance.inject(
        Fault("fundingRate", kind, times=1, skip=1, retry_after_s=2.0, symbol="BTCUSDT")
    )
    lake = Lake(tmp_path / "store")
    res = two_streams(lake, fake_binance)
    assert {r.status for r in res.values()} == {"ok"}
    calls = fake_binance.requests("fundingRate")
    # the fake marks every request that arrives before the refusal's Retry-After has run out
    [refused] = [i for i, c in enumerate(calls) if c.status == int(kind)]
    after = calls[refused + 1 :]
    btc_after = [c for c in after if c.params["symbol"] == "BTCUSDT"]
    assert btc_after  # BTC asked again ...
    assert not any(c.early for c in btc_after)  # ... only once Retry-After had passed
    # The other stream of the pool pauses too. Requests ETH sent before the client read the
    # refusal may still arrive early (how many depends on scheduling); from the moment the
    # pause is registered ETH sends nothing until it ends, so at most the one request it had
    # in flight then arrives inside the pause.
    [(pool, start, seconds)] = pauses
    assert seconds == 2.0
    eth_in_pause = [
        c for c in after if c.params["symbol"] == "ETHUSDT" and start <= c.at < start + seconds
    ]
    assert len(eth_in_pause) <= 1


class VirtualTime:
    """A clock that only moves when the code under test sleeps; records each sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_paused_pool_holds_its_requests_and_no_other_pool() -> None:
    t = VirtualTime()
    gates = PoolGates(CAPABILITIES, pace=False, clock=t.clock, sleep=t.sleep)
    gates.pause("funding", 30.0)

    asyncio.run(gates.acquire("weight"))  # another pool: no wait
    assert t.slept == []
    asyncio.run(gates.acquire("funding"))  # held until the pause ends, exactly

    assert sum(t.slept) == pytest.approx(30.0)
    assert gates.paused_until("funding") == 1030.0
    assert gates.paused_until("weight") == gates.paused_until("futures_data") == 0.0


def test_ban_pauses_every_pool_of_the_venue() -> None:
    t = VirtualTime()
    gates = PoolGates(CAPABILITIES, pace=False, clock=t.clock, sleep=t.sleep)
    gates.pause("funding", 30.0, every_pool=True)

    asyncio.run(gates.acquire("weight"))  # another pool waits too

    assert sum(t.slept) == pytest.approx(30.0)
    until = {p.name: gates.paused_until(p.name) for p in CAPABILITIES.pools}
    assert set(until.values()) == {1030.0}


def test_pacing_spaces_requests_by_weight_at_eighty_percent_of_the_limit() -> None:
    # by hand: Binance's weight pool is 2,400 a minute; paced at 80% that is 1,920 a minute, so
    # a kline page of weight 10 takes 60 x 10 / 1,920 = 0.3125 s, and funding history (500
    # requests per 5 minutes, one each) 300 / 400 = 0.75 s
    t = VirtualTime()
    gates = PoolGates(CAPABILITIES, pace=True, clock=t.clock, sleep=t.sleep)

    async def three(pool: str, cost: float) -> None:
        for _ in range(3):
            await gates.acquire(pool, cost)

    asyncio.run(three("weight", 10.0))
    assert t.slept == pytest.approx([0.3125, 0.3125])
    t.slept.clear()
    asyncio.run(three("funding", 1.0))
    assert t.slept == pytest.approx([0.75, 0.75])


def test_used_weight_near_the_limit_pauses_the_weight_pool_for_a_window() -> None:
    t = VirtualTime()
    gates = PoolGates(CAPABILITIES, pace=True, clock=t.clock, sleep=t.sleep)
    assert gates.observe_used(2390.0, 10.0) is False  # exactly fits
    assert gates.paused_until("weight") == 0.0
    assert gates.observe_used(2391.0, 10.0) is True  # would overrun: wait a whole minute
    assert gates.paused_until("weight") == 1060.0
    assert gates.paused_until("funding") == 0.0


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


def test_a_missing_page_is_fetched_again_in_the_same_run(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    fake_binance.inject(Fault("fundingRate", "missing_page", skip=1, symbol="BTCUSDT"))
    lake = Lake(tmp_path / "store")
    res = two_streams(lake, fake_binance)
    result = res["BTC-USDT-PERP"]
    assert {r.status for r in res.values()} == {"ok"}
    assert (result.holes, result.holes_refilled) == (0, 1)
    assert stored(lake, "BTC-USDT-PERP") == BTC_ROWS
    assert gaps(lake, table="funding").height == 0
    # pages: 1 (settlements 0-999), 2 (shifted: 2000-2192, short, so the last), then the refill
    # asks for exactly the hole: after settlement 999 as stored, up to settlement 2,000 (the
    # first after the hole), which gives 1,000 rows and one empty look after them
    calls = fake_binance.requests("fundingRate")
    btc = [c for c in calls if c.params["symbol"] == "BTCUSDT"]
    assert len(btc) == 4
    times = funding_times("BTCUSDT")
    assert int(btc[2].params["startTime"]) == times[999] + 1
    assert int(btc[2].params["endTime"]) == times[2000] - 1


def test_a_hole_left_fails_the_stream_by_name_and_a_plain_rerun_fills_it(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    # the page goes missing, and again when it is asked for a second time
    fake_binance.inject(Fault("fundingRate", "missing_page", times=2, skip=1, symbol="BTCUSDT"))
    lake = Lake(tmp_path / "store")
    res = two_streams(lake, fake_binance)
    btc, eth = res["BTC-USDT-PERP"], res["ETH-USDT-PERP"]
    assert eth.status == "ok"
    assert btc.status == "holes"
    assert btc.holes == 1
    assert "BTC-USDT-PERP funding: 1 hole(s)" in (btc.error or "")
    assert "1000 rows missing" in (btc.error or "")
    assert stored(lake, "BTC-USDT-PERP") == BTC_ROWS - 1000

    again = two_streams(lake, fake_binance)  # no --restart

    assert {r.status for r in again.values()} == {"ok"}
    assert again["BTC-USDT-PERP"].holes_refilled == 1
    assert stored(lake, "BTC-USDT-PERP") == BTC_ROWS
    assert gaps(lake, table="funding").height == 0
    # the refilled rows equal an uninterrupted run's, interval included
    reference = Lake(tmp_path / "reference")
    two_streams(reference, fake_binance)
    ours = lake.read("funding").sort("instrument", "ts")
    assert ours.equals(reference.read("funding").sort("instrument", "ts"))


def test_ban_without_retry_after_is_not_retried(tmp_path: Path, fake_binance: FakeBinance) -> None:
    fake_binance.inject(Fault("fundingRate", "418", retry_after_s=-1, symbol="BTCUSDT"))
    lake = Lake(tmp_path / "store")
    res = two_streams(lake, fake_binance)
    assert res["BTC-USDT-PERP"].status == "failed"
    assert "HTTP 418" in (res["BTC-USDT-PERP"].error or "")
    assert "no Retry-After" in (res["BTC-USDT-PERP"].error or "")
    assert len(fake_binance.requests("fundingRate")) == 1 + 3  # BTC's one try, ETH's 3 pages
