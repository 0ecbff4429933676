"""Request pacing against the fake Binance's request-weight budget, and the venue's own errors.

The fake keeps Binance's budgets (``tests/fakex/server.py``): documented weights per endpoint, a
rolling window, ``X-MBX-USED-WEIGHT-1m`` on every answer, 429 on overrun, 418 on a repeated
overrun. These tests shrink the weight budget to 80 per 4 s so that overrunning it takes a
handful of requests, give the client the same budget, and judge by the fake's request log: a
paced backfill must never be refused. Expected weights are Binance's documented ones (klines by
``limit``: a 1,500-row page weighs 10), not read back from the code.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from perpscope.collect.retry import RetryPolicy
from perpscope.services.collection import run_backfill
from perpscope.store.lake import Lake
from perpscope.venues.base import RatePool
from tests.fakex.market import END_MS, HOUR_MS, STATS_START_MS
from tests.fakex.server import WEIGHT_HEADER, FakeBinance

END = datetime.fromtimestamp(END_MS / 1000, UTC)
FAST = RetryPolicy(attempts=3, base_s=0.01, cap_s=0.05)
BUDGET = 80.0  # weight per window: eight full kline pages
WINDOW_S = 4.0
KLINE_STREAMS = [f"ohlcv:{k}:1h" for k in ("trade", "mark", "index", "premium")]
INSTRUMENTS = ["BTC-USDT-PERP", "ETH-USDT-PERP", "XYZ-USDT-PERP"]


def get(url: str) -> tuple[int, dict[str, str], object]:
    """One GET to the fake: status, headers, JSON body."""
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - 127.0.0.1 only
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def refused(fake: FakeBinance) -> list[int]:
    return [r.status for r in fake.requests() if r.status in (418, 429)]


def small_budget(fake: FakeBinance) -> tuple[RatePool, ...]:
    fake.set_budget("weight", BUDGET, WINDOW_S)
    fake.ban_s = 5.0
    return (RatePool("weight", int(BUDGET), WINDOW_S),)


def twelve_kline_streams(lake: Lake, fake: FakeBinance, limits: tuple[RatePool, ...]) -> list:
    """3 instruments x 4 kline kinds, 1,000 hourly bars each: one page of weight 10 per stream,
    120 weight in all, more than the 80 the budget allows in one window."""
    return run_backfill(
        lake, "binance", INSTRUMENTS, KLINE_STREAMS, since=END - timedelta(hours=1000), until=END,
        api_url=fake.url, policy=FAST, pace=True, limits=limits, rate_limit_ms=1,
    )  # fmt: skip


def test_fake_charges_binance_weights_and_refuses_an_overrun(fake_binance: FakeBinance) -> None:
    fake_binance.set_budget("weight", 25, 60.0)
    fake_binance.ban_s = 30.0
    url = fake_binance.url
    kline = f"{url}/fapi/v1/klines?symbol=BTCUSDT&interval=1h&limit="

    # klines weigh by limit: 1 below 100 rows, 2 below 500, 5 up to 1,000, 10 above
    used = []
    for limit in (99, 100, 499, 500):
        status, headers, _ = get(kline + str(limit))
        assert status == 200
        used.append(float(headers[WEIGHT_HEADER]))
    assert used == [1, 1 + 2, 3 + 2, 5 + 5]
    # funding history weighs nothing in the IP budget (it has its own 500 / 5 min)
    status, headers, _ = get(f"{url}/fapi/v1/fundingRate?symbol=BTCUSDT&limit=1000")
    assert (status, float(headers[WEIGHT_HEADER])) == (200, 10)
    status, headers, _ = get(kline + "1500")
    assert (status, float(headers[WEIGHT_HEADER])) == (200, 20)

    # 20 + 10 > 25: refused with Retry-After, and charged nothing
    status, headers, body = get(kline + "1500")
    assert status == 429
    assert body == {"code": -1003, "msg": "Too many requests."}
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert float(headers[WEIGHT_HEADER]) == 20
    # asking again inside Retry-After is a repeated overrun: an IP ban, even for a light call
    status, headers, _ = get(f"{url}/fapi/v1/time")
    assert status == 418
    assert int(headers["Retry-After"]) == 30
    status, _, _ = get(f"{url}/fapi/v1/exchangeInfo")
    assert status == 418  # every request during the ban
    assert [r.status for r in fake_binance.requests()][-3:] == [429, 418, 418]


def test_paced_backfill_never_overruns_the_weight_budget(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    # The test that catches "pacing set to zero" in collect/retry.py: unpaced, the twelve
    # streams send 120 weight at once into a budget of 80 and the fake answers 429, then 418.
    limits = small_budget(fake_binance)
    lake = Lake(tmp_path / "store")

    results = twelve_kline_streams(lake, fake_binance, limits)

    assert refused(fake_binance) == []
    assert [r.status for r in results] == ["ok"] * 12
    assert sum(r.retries for r in results) == 0
    klines = [r for r in fake_binance.requests() if "Klines" in r.path or "klines" in r.path]
    assert len(klines) == 12
    assert {r.params["limit"] for r in klines} == {"1500"}  # weight 10 each
    assert lake.read("ohlcv").height == 12 * 1000


def test_client_reads_the_used_weight_header_and_waits_for_other_clients(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    # Another client on the same IP has used 70 of the 80: after our first page (80 of 80),
    # pacing alone would send the next 10 into a full budget. The used-weight header says so.
    limits = small_budget(fake_binance)
    fake_binance.spend("weight", 70)
    lake = Lake(tmp_path / "store")

    results = twelve_kline_streams(lake, fake_binance, limits)

    assert refused(fake_binance) == []
    assert [r.status for r in results] == ["ok"] * 12
    assert lake.read("ohlcv").height == 12 * 1000


def test_unknown_symbol_is_a_permanent_error_with_binance_code(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    status, _, body = get(f"{fake_binance.url}/fapi/v1/klines?symbol=NOPEUSDT&interval=1h")
    assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
    fake_binance.log.clear()
    lake = Lake(tmp_path / "store")

    [res] = run_backfill(
        lake, "binance", ["NOPE-USDT-PERP"], ["ohlcv:trade:1h"], until=END,
        api_url=fake_binance.url, policy=FAST, pace=False, rate_limit_ms=1,
    )  # fmt: skip

    assert res.status == "failed"
    assert res.retries == 0  # permanent: not retried
    assert "NOPE-USDT-PERP ohlcv:trade:1h" in (res.error or "")
    assert "BadSymbol" in (res.error or "")
    assert "Invalid symbol" in (res.error or "")
    assert len(fake_binance.requests("/fapi/v1/klines")) == 1
    assert not lake.has_table("ohlcv")


def test_statistics_older_than_thirty_days_are_refused_by_the_fake(
    fake_binance: FakeBinance,
) -> None:
    base = f"{fake_binance.url}/futures/data/openInterestHist?symbol=BTCUSDT&period=1h"
    status, _, body = get(f"{base}&startTime={STATS_START_MS - HOUR_MS}")
    assert status == 400
    assert body == {"code": -1130, "msg": "Data sent for paramter 'startTime' is not valid."}
    status, _, rows = get(f"{base}&startTime={STATS_START_MS}&limit=2")
    assert status == 200
    assert [r["timestamp"] for r in rows] == [STATS_START_MS, STATS_START_MS + HOUR_MS]  # type: ignore[index]


@pytest.mark.parametrize("stream", ["oi:1h", "long_short:top_position:1h", "taker:1h"])
def test_statistics_asked_for_more_history_start_inside_the_window(
    tmp_path: Path, fake_binance: FakeBinance, stream: str
) -> None:
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(
        lake, "binance", ["BTC-USDT-PERP"], [stream], since=END - timedelta(days=90), until=END,
        api_url=fake_binance.url, policy=FAST, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert res.status == "ok", res.error
    calls = [r for r in fake_binance.requests() if r.path.startswith("/futures/data/")]
    assert {c.status for c in calls} == {200}
    # the first request starts one minute inside the venue's 30 days, not at --since
    assert int(calls[0].params["startTime"]) == STATS_START_MS + 60_000
    # so the hourly row exactly 30 days old is not asked for: 30 x 24 - 1 rows
    table = {"oi": "open_interest", "long_short": "long_short", "taker": "taker_volume"}
    stored = lake.read(table[stream.split(":")[0]])
    assert stored.height == res.rows_written == 30 * 24 - 1
    assert stored["ts"].min() == datetime.fromtimestamp((STATS_START_MS + HOUR_MS) / 1000, UTC)
    assert not stored.select(pl.col("ts").is_duplicated().any()).item()


def test_an_unpaced_stream_that_overruns_waits_out_retry_after_and_is_never_banned(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    # One stream, pacing off: the budget of 30 per 4 s holds three 10-weight pages, so the
    # fourth is refused with 429. Waiting out the fake's Retry-After must be enough: no request
    # arrives early (which the fake would answer with a 418 ban), and the stream completes.
    fake_binance.set_budget("weight", 30, WINDOW_S)
    lake = Lake(tmp_path / "store")

    [res] = run_backfill(
        lake, "binance", ["BTC-USDT-PERP"], ["ohlcv:trade:1h"],
        since=END - timedelta(hours=6 * 1500), until=END, api_url=fake_binance.url,
        policy=RetryPolicy(attempts=10, base_s=0.01, cap_s=0.05), pace=False, rate_limit_ms=1,
    )  # fmt: skip

    statuses = [r.status for r in fake_binance.requests()]
    assert 429 in statuses
    assert 418 not in statuses
    assert not any(r.early for r in fake_binance.requests())
    assert res.status == "ok"
    assert res.retries == statuses.count(429)
    assert lake.read("ohlcv").height == 6 * 1500
