"""Deribit through the real collector on the fake exchange: hourly funding since listing, the
cross-venue 8 h basis, Deribit's credit pool (429 + JSON-RPC 10028), faults, DVOL paging."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from perpscope.analytics.funding import cross_venue_funding, latest_funding
from perpscope.collect.retry import RetryPolicy
from perpscope.services.collection import run_backfill, run_snapshot
from perpscope.store.lake import Lake
from perpscope.venues.deribit import DeribitVenue
from tests.fakex import deribit as fd
from tests.fakex.market import END_MS, HOUR_MS
from tests.fakex.server import FakeBinance, Fault, Request

UNTIL = datetime.fromtimestamp(END_MS / 1000, UTC)
POLICY = RetryPolicy(attempts=3, base_s=0.01, cap_s=0.05, default_retry_after_s=0.2)


def deribit_log(fake: FakeBinance, suffix: str = "") -> list[Request]:
    return [r for r in fake.requests(suffix) if r.path.startswith(fd.PREFIX)]


def hourly_rate(k: int) -> float:
    """The fake's interest_1h of hour ``k`` after listing, recomputed here by hand."""
    return 0.0000125 + 0.00000625 * (((k * 7) % 11) - 5) / 5


def test_funding_since_listing_is_every_hour_once_in_pages_of_744(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(
        lake, "deribit", ["BTC-USD-PERP"], ["funding"], until=UNTIL, api_url=fake_binance.url,
        policy=POLICY, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert res.status == "ok", res.error
    frame = lake.read("funding").sort("ts")
    listing = fd.PERP_LISTING_MS["BTC-PERPETUAL"]
    hours = (END_MS - listing) // HOUR_MS - 1  # rows at listing + 1 h ... END - 1 h
    assert frame.height == hours == 2207
    assert frame["ts"].dt.epoch("ms").to_list() == [listing + k * HOUR_MS
                                                    for k in range(1, hours + 1)]  # fmt: skip
    assert frame["rate"].to_list() == pytest.approx([hourly_rate(k) for k in range(1, hours + 1)])
    assert set(frame["interval_h"]) == {1.0}
    # windows of 744 hours from the listing hour: ceil(2,208 / 744) = 3 requests
    asked = deribit_log(fake_binance, "get_funding_rate_history")
    assert len(asked) == 3
    assert all(int(r.params["end_timestamp"]) - int(r.params["start_timestamp"]) <= 744 * HOUR_MS
               for r in asked)  # fmt: skip
    # a rerun resumes after the stored cursor and writes nothing
    [again] = run_backfill(
        lake, "deribit", ["BTC-USD-PERP"], ["funding"], until=UNTIL, api_url=fake_binance.url,
        policy=POLICY, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert again.status == "ok"
    assert again.rows_written == 0


def test_hourly_deribit_funding_compares_on_the_8h_basis(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    since = datetime(2025, 12, 30, tzinfo=UTC)
    for venue, inst in (("deribit", "BTC-USD-PERP"), ("binance", "BTC-USDT-PERP")):
        [res] = run_backfill(
            lake, venue, [inst], ["funding"], since=since, until=UNTIL, api_url=fake_binance.url,
            policy=POLICY, pace=False, rate_limit_ms=1,
        )  # fmt: skip
        assert res.status == "ok", res.error
    table = cross_venue_funding(latest_funding(lake.read("funding")))
    venues = {r["venue"]: r for r in table.venues.iter_rows(named=True)}
    last_k = (END_MS - HOUR_MS - fd.PERP_LISTING_MS["BTC-PERPETUAL"]) // HOUR_MS
    hour = hourly_rate(last_k)  # the last hour before END
    assert venues["deribit"]["interval_h"] == 1.0
    assert venues["deribit"]["rate_8h"] == pytest.approx(8 * hour, rel=1e-9)
    assert venues["deribit"]["annualized"] == pytest.approx(hour * 8760, rel=1e-9)
    assert venues["binance"]["interval_h"] == 8.0
    assert table.assets.filter(pl.col("asset") == "BTC")["n_venues"].item() == 2


def test_an_unpaced_run_overruns_the_credits_and_recovers_from_10028(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    fake_binance.deribit_credits.shrink(1_000.0, 2_000.0)  # 2 requests, then 4 a second
    lake = Lake(tmp_path / "store")
    results = run_backfill(
        lake, "deribit", ["BTC-USD-PERP", "ETH-USD-PERP"], ["funding"], until=UNTIL,
        api_url=fake_binance.url, policy=RetryPolicy(attempts=8, default_retry_after_s=0.3),
        pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert [r.status for r in results] == ["ok", "ok"], [r.error for r in results]
    refused = [r for r in deribit_log(fake_binance) if r.status == 429]
    assert refused  # the pool is real: the unpaced run ran dry
    assert sum(r.retries for r in results) >= len(refused) > 0
    assert lake.read("funding").height == 2207 + (
        (END_MS - fd.PERP_LISTING_MS["ETH-PERPETUAL"]) // HOUR_MS - 1
    )


def test_a_paced_run_keeps_inside_the_credits(tmp_path: Path, fake_binance: FakeBinance) -> None:
    # no burst to spare (two requests), refilled at Deribit's 20 requests a second: pacing at
    # 80% of that never finds the pool empty
    fake_binance.deribit_credits.shrink(1_000.0, 10_000.0)
    lake = Lake(tmp_path / "store")
    results = run_backfill(
        lake, "deribit", ["BTC-USD-PERP", "ETH-USD-PERP"], ["funding"], until=UNTIL,
        api_url=fake_binance.url, policy=POLICY, pace=True,
    )  # fmt: skip
    assert [r.status for r in results] == ["ok", "ok"]
    statuses = [r.status for r in deribit_log(fake_binance)]
    assert len(statuses) >= 6
    assert set(statuses) == {200}


def test_the_overrun_answer_is_deribits_jsonrpc_error(fake_binance: FakeBinance) -> None:
    import urllib.request

    fake_binance.deribit_credits.shrink(500.0, 1.0)  # one request, then dry for minutes
    url = f"{fake_binance.url}{fd.PREFIX}get_instruments?currency=BTC&kind=future"
    with urllib.request.urlopen(url) as first:
        assert first.status == 200
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url)
    assert err.value.code == 429
    body = json.loads(err.value.read())
    assert body["error"] == {"message": "too_many_requests", "code": 10028}
    assert err.value.headers.get("Retry-After") is None


@pytest.mark.parametrize(
    "fault",
    [
        Fault("get_funding_rate_history", "500", times=2, skip=1),
        Fault("get_funding_rate_history", "timeout", times=1, skip=1, delay_s=2.0),
        Fault("get_funding_rate_history", "10028", times=2, skip=1),
    ],
    ids=["500x2", "timeout", "10028x2"],
)
def test_transient_faults_recover(tmp_path: Path, fake_binance: FakeBinance, fault: Fault) -> None:
    fake_binance.inject(fault)
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(
        lake, "deribit", ["BTC-USD-PERP"], ["funding"], until=UNTIL, api_url=fake_binance.url,
        policy=POLICY, pace=False, rate_limit_ms=1, timeout_ms=1000,
    )  # fmt: skip
    assert res.status == "ok", res.error
    assert res.retries >= 1
    assert lake.read("funding").height == 2207  # every hour once, nothing lost or doubled


@pytest.mark.parametrize(
    ("fault", "named"),
    [
        (Fault("get_funding_rate_history", "rename", times=5, field=("interest_1h", "x")),
         "'interest_1h'"),
        (Fault("get_funding_rate_history", "truncated", times=5), "JSON-RPC"),
    ],
    ids=["rename", "truncated"],
)  # fmt: skip
def test_a_broken_payload_fails_the_stream_naming_it_and_stores_nothing(
    tmp_path: Path, fake_binance: FakeBinance, fault: Fault, named: str
) -> None:
    fake_binance.inject(fault)
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(
        lake, "deribit", ["BTC-USD-PERP"], ["funding"], until=UNTIL, api_url=fake_binance.url,
        policy=POLICY, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert res.status == "failed"
    assert res.retries == 0
    assert "get_funding_rate_history" in (res.error or "")
    assert named in (res.error or "")
    assert not lake.has_table("funding")


def test_an_unknown_perpetual_fails_without_retries(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(
        lake, "deribit", ["QQQ-USD-PERP"], ["funding"], until=UNTIL, api_url=fake_binance.url,
        policy=POLICY, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert res.status == "failed"
    assert res.retries == 0
    assert "QQQ" in (res.error or "")
    assert not lake.has_table("funding")


def test_snapshot_is_four_requests_for_every_future(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    result = run_snapshot(lake, "deribit", (), api_url=fake_binance.url, pace=False)
    assert len(deribit_log(fake_binance)) == 4
    assert result.rows_written == {"instruments": 4, "funding_snapshot": 2, "open_interest": 4}
    oi = lake.read("open_interest").sort("instrument")
    # BTC-PERPETUAL: 500,000,000 USD at mark 40,000.5 (hand: 5e8 / 40,000.5)
    btc = oi.filter(pl.col("instrument") == "BTC-USD-PERP").row(0, named=True)
    assert btc["oi_usd"] == 500_000_000.0
    assert btc["oi_base"] == pytest.approx(12_499.84375195, rel=1e-9)
    inst = (
        lake.read("instruments").filter(pl.col("instrument") == "BTC-USD-PERP").row(0, named=True)
    )
    assert inst["contract_size"] == 10.0  # 10 USD a contract
    eth = lake.read("instruments").filter(pl.col("instrument") == "ETH-USD-PERP").row(0, named=True)
    assert eth["contract_size"] == 1.0  # 1 USD a contract


def test_dvol_pages_backwards_through_the_continuation(fake_binance: FakeBinance) -> None:
    start = END_MS - 90 * 24 * HOUR_MS

    async def read() -> pl.DataFrame:
        venue = DeribitVenue(api_url=fake_binance.url, rate_limit_ms=1)
        try:
            return await venue.fetch_dvol("BTC", start, END_MS, "1h")
        finally:
            await venue.close()

    frame = asyncio.run(read())
    assert frame.height == 90 * 24  # every hour of the window once
    assert frame["ts"].dt.epoch("ms").to_list() == list(range(start, END_MS, HOUR_MS))
    asked = deribit_log(fake_binance, "get_volatility_index_data")
    assert len(asked) == 3  # 2,160 candles in pages of 1,000, newest first
    assert int(asked[1].params["end_timestamp"]) < int(asked[0].params["end_timestamp"])
    # DVOL points / 100: the fake's value at the bar's open and close, by hand
    first = frame.row(0, named=True)
    k = (start - fd.DVOL_START_MS) // HOUR_MS
    assert first["o"] == pytest.approx((45.0 + (k % 40) * 0.25) / 100)
    assert first["c"] == pytest.approx((45.0 + ((k + 1) % 40) * 0.25) / 100)


def test_collect_venues_lists_deribits_pages_and_credit_pool() -> None:
    from perpscope.services.collection import capability_rows

    rows = {r["family"]: r for r in capability_rows("deribit")}
    assert rows["funding"]["page_size"] == 744  # 31 days of hourly rows
    assert rows["ohlcv"]["page_size"] == 5000
    assert rows["option_trades"]["page_size"] == 1000
    assert rows["dvol"]["page_size"] == 1000
    assert {r["pool"] for r in rows.values()} == {"credits"}
    assert rows["funding"]["pool_limit"] == "20 / 1 s"  # 10,000 credits/s at 500 a request


def test_trade_klines_since_listing_in_pages_of_5000(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(
        lake, "deribit", ["ETH-USD-PERP"], ["ohlcv:trade:5m"], until=UNTIL,
        api_url=fake_binance.url, policy=POLICY, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert res.status == "ok", res.error
    frame = lake.read("ohlcv").sort("ts")
    listing = fd.PERP_LISTING_MS["ETH-PERPETUAL"]
    step = 300_000
    bars = (END_MS - listing) // step  # every bar from the listing up to END, once
    assert frame.height == bars == 17_568
    assert frame["ts"].dt.epoch("ms").to_list() == list(range(listing, END_MS, step))
    assert len(deribit_log(fake_binance, "get_tradingview_chart_data")) == -(-bars // 5000)
    # bar k by hand: 2,000 x (1 + ((k mod 200) - 100) / 2,000), volume 10 + k mod 37 ETH
    k = 1234
    row = frame.row(k, named=True)
    px = 2_000 * (1 + ((k % 200) - 100) / 2000)
    assert row["o"] == pytest.approx(px, abs=0.005)
    assert row["c"] == pytest.approx(px + 1, abs=0.005)
    assert row["volume"] == 10 + k % 37
    assert row["quote_volume"] == pytest.approx((10 + k % 37) * px, abs=0.01)
    assert frame["taker_buy_volume"].null_count() == frame.height
