"""OKX through the real collector on the fake exchange: funding history only as deep as OKX
keeps it (90 days), backwards paging inside a window, OKX's per-endpoint limits (HTTP 429,
code 50011, no ban), faults, the four-request snapshot and the position tiers in the store."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from perpscope.analytics.liquidations.estimator import tiers_from_table
from perpscope.collect.retry import RetryPolicy
from perpscope.domain.schema import table_spec
from perpscope.domain.symbols import parse_instrument
from perpscope.errors import DataContractError
from perpscope.services.collection import run_backfill, run_snapshot
from perpscope.store.integrity import check_table
from perpscope.store.lake import Lake
from perpscope.venues.base import RatePool
from perpscope.venues.okx import OkxVenue
from perpscope.venues.units import normalise_oi
from tests.conftest import json_data
from tests.fakex import okx as fo
from tests.fakex.market import DAY_MS, END_MS, HOUR_MS, FakeMarket, funding_times
from tests.fakex.server import FakeBinance, Fault, Request

UNTIL = datetime.fromtimestamp(END_MS / 1000, UTC)
POLICY = RetryPolicy(attempts=2, base_s=0.01)
OI_PATH = "/api/v5/rubik/stat/contracts/open-interest-history"


def okx_log(fake: FakeBinance, suffix: str = "") -> list[Request]:
    """The fake's log of OKX requests (paths under ``/api/v5/``), in arrival order."""
    return [r for r in fake.requests(suffix) if r.path.startswith("/api/v5/")]


def utc_ms(frame: pl.DataFrame) -> list[int]:
    return frame["ts"].dt.epoch("ms").to_list()


def test_funding_reaches_back_90_days_and_no_further(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(
        lake, "okx", ["XYZ-USDT-PERP"], ["funding"], until=UNTIL, api_url=fake_binance.url,
        policy=POLICY, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert res.status == "ok", res.error
    frame = lake.read("funding").sort("ts")
    # no --since: the collector starts at 90 days (plus its 1-minute edge) before --until
    earliest = END_MS - 90 * DAY_MS + 60_000
    assert utc_ms(frame) == [t for t in funding_times("XYZUSDT") if t >= earliest]
    assert frame.height == 90 * 6 - 1  # every 4 h settlement of 90 days, the first one excluded
    assert set(frame["interval_h"]) == {4.0}
    # 99 settlements of the current 4 h a window: 540 settlements -> 6 windows, none full
    assert len(okx_log(fake_binance, "funding-rate-history")) == 6
    assert len(okx_log(fake_binance, "public/funding-rate")) == 1  # the interval, read once


def test_a_window_holding_more_than_a_page_is_paged_backwards(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    # OKX claims 8 h for XYZ: a window of 99 x 8 h then holds 198 of its 4 h settlements,
    # twice a page; the venue must page back with `after` inside the window
    row = fo.funding_rate_row(FakeMarket(), "XYZUSDT")
    row["nextFundingTime"] = str(int(row["fundingTime"]) + 8 * HOUR_MS)
    fake_binance.serve("/api/v5/public/funding-rate", fo.ok([row]))
    lake = Lake(tmp_path / "store")
    since = UNTIL - timedelta(days=60)
    [res] = run_backfill(
        lake, "okx", ["XYZ-USDT-PERP"], ["funding"], since=since, until=UNTIL,
        api_url=fake_binance.url, policy=POLICY, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert res.status == "ok", res.error
    frame = lake.read("funding").sort("ts")
    lo = int(since.timestamp() * 1000)
    assert utc_ms(frame) == [t for t in funding_times("XYZUSDT") if t >= lo]
    assert set(frame["interval_h"]) == {4.0}  # from the gaps, whatever the answer claims
    asked = okx_log(fake_binance, "funding-rate-history")
    window = 99 * 8 * HOUR_MS
    inside = [r for r in asked if int(r.params["after"]) - int(r.params["before"]) - 1 < window
              and int(r.params["after"]) < END_MS]  # fmt: skip
    assert inside  # at least one request ended before its window's end


def test_an_overrun_is_a_429_of_that_endpoint_only(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    fake_binance.set_budget(f"okx:{OI_PATH}", 3, 60.0)
    lake = Lake(tmp_path / "store")
    policy = RetryPolicy(attempts=1, base_s=0.01, default_retry_after_s=0.05)
    [oi, funding] = run_backfill(
        lake, "okx", ["BTC-USDT-PERP"], ["oi:5m", "funding"], since=UNTIL - timedelta(days=10),
        until=UNTIL, api_url=fake_binance.url, policy=policy, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert oi.status == "failed"
    assert "rate-limited (HTTP 429), no Retry-After" in (oi.error or "")
    assert oi.retries == 1  # a 429 is retried (after the policy's pause), a ban would not be
    statuses = [r.status for r in okx_log(fake_binance, OI_PATH)]
    assert statuses == [200, 200, 200, 429, 429]
    assert lake.read("open_interest").height == 3 * 100  # the pages before the overrun
    # the other endpoints answered throughout: OKX's limits are per endpoint, with no ban
    assert funding.status == "ok", funding.error
    assert {r.status for r in okx_log(fake_binance) if r.path != OI_PATH} == {200}
    # the overrun as OKX answers it: HTTP 429, code 50011 in the body, no Retry-After
    url = f"{fake_binance.url}{OI_PATH}?instId=BTC-USDT-SWAP&period=5m"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 429
    assert json.loads(refused.value.read())["code"] == "50011"
    assert refused.value.headers.get("Retry-After") is None


def test_a_paced_run_stays_under_the_endpoint_limit(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    # the fake allows 6 OI-history requests a second; the collector paces that pool at 5
    fake_binance.set_budget(f"okx:{OI_PATH}", 6, 1.0)
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(
        lake, "okx", ["BTC-USDT-PERP"], ["oi:5m"], since=UNTIL - timedelta(days=5),
        until=UNTIL, api_url=fake_binance.url, policy=POLICY, pace=True, rate_limit_ms=1,
        limits=(RatePool("oi", 5, 1.0),),
    )  # fmt: skip
    assert res.status == "ok", res.error
    log = okx_log(fake_binance, OI_PATH)
    assert len(log) == 15  # 5 days of 5-minute rows, 100 a page
    assert {r.status for r in log} == {200}
    assert lake.read("open_interest").height == 5 * 288


def test_injected_50011_and_503_are_retried_and_the_stream_completes(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    for kind in ("503", "50011"):
        fake_binance.inject(Fault(OI_PATH, kind, skip=1))
    lake = Lake(tmp_path / "store")
    policy = RetryPolicy(attempts=4, base_s=0.01, default_retry_after_s=0.01)
    [res] = run_backfill(
        lake, "okx", ["BTC-USDT-PERP"], ["oi:1h"], since=UNTIL - timedelta(days=20),
        until=UNTIL, api_url=fake_binance.url, policy=policy, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert res.status == "ok", res.error
    assert res.retries == 2
    assert 429 in {r.status for r in okx_log(fake_binance, OI_PATH)}
    frame = lake.read("open_interest").sort("ts")
    assert utc_ms(frame) == list(range(END_MS - 20 * 24 * HOUR_MS, END_MS, HOUR_MS))


@pytest.mark.parametrize(
    ("fault", "needle"),
    [
        (Fault("/api/v5/public/funding-rate-history", "rename", field=("fundingTime", "ts")),
         "no field 'fundingTime'"),
        (Fault("/api/v5/public/funding-rate-history", "truncated"), "expected a v5 envelope"),
    ],
    ids=["renamed-field", "truncated"],
)  # fmt: skip
def test_a_broken_payload_fails_the_stream_naming_it(
    tmp_path: Path, fake_binance: FakeBinance, fault: Fault, needle: str
) -> None:
    fake_binance.inject(fault)
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(
        lake, "okx", ["BTC-USDT-PERP"], ["funding"], since=UNTIL - timedelta(days=3),
        until=UNTIL, api_url=fake_binance.url, policy=POLICY, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert res.status == "failed"
    assert "api/v5/public/funding-rate-history" in (res.error or "")
    assert needle in (res.error or "")
    assert res.retries == 0
    assert not lake.has_table("funding")


def test_a_premium_stream_or_a_daily_period_is_a_usage_error(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    res = run_backfill(
        lake, "okx", ["BTC-USDT-PERP"], ["ohlcv:premium:1h", "oi:1d"], since=UNTIL - timedelta(1),
        until=UNTIL, api_url=fake_binance.url, policy=POLICY, pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert [r.status for r in res] == ["failed", "failed"]
    assert "okx publishes no premium-index candles" in (res[0].error or "")
    assert "no period 1d; use 5m, 1h" in (res[1].error or "")
    assert okx_log(fake_binance, "candles") == []


def test_snapshot_is_four_requests_for_every_swap(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    res = run_snapshot(
        lake, "okx", ["BTC-USDT-PERP", "ETH-USDT-PERP"], api_url=fake_binance.url,
        policy=POLICY, rate_limit_ms=1,
    )  # fmt: skip
    assert res.unmapped == ()
    assert [(r.path, r.params) for r in okx_log(fake_binance)] == [
        ("/api/v5/public/instruments", {"instType": "SWAP"}),
        ("/api/v5/public/mark-price", {"instType": "SWAP"}),
        ("/api/v5/public/funding-rate", {"instId": "ANY"}),
        ("/api/v5/public/open-interest", {"instType": "SWAP"}),
    ]
    oi = lake.read("open_interest").sort("instrument")
    assert oi["instrument"].to_list() == ["BTC-USDT-PERP", "ETH-USDT-PERP", "XYZ-USDT-PERP"]
    assert set(oi["oi_unit"]) == {"contracts"}
    # hand-computed: the fake's OI at END is 50,079.75 BTC (test_bybit_collect.py says how);
    # at 0.01 BTC a contract that is 5,007,975 contracts; x 40,000 USD = 2,003,190,000 USD
    btc = oi.row(0, named=True)
    assert (btc["oi_value"], btc["oi_base"], btc["oi_usd"]) == (5_007_975.0, 50_079.75,
                                                                 2_003_190_000.0)  # fmt: skip
    # the contracts alone, with the contract size and the snapshot's mark, give the same
    listed = lake.read("instruments").select("instrument", "contract_size")
    marks = lake.read("funding_snapshot").select("instrument", pl.col("mark_px").alias("px"))
    again = normalise_oi(
        oi.drop("oi_base", "oi_usd").join(listed, on="instrument").join(marks, on="instrument")
        .with_columns(inverse=pl.lit(False))
    ).sort("instrument")  # fmt: skip
    assert again["oi_base"].to_list() == pytest.approx(oi["oi_base"].to_list(), rel=1e-12)
    assert again["oi_usd"].to_list() == pytest.approx(oi["oi_usd"].to_list(), rel=1e-12)
    funding = lake.read("funding_snapshot").sort("instrument")
    assert funding["interval_h"].to_list() == [8.0, 8.0, 4.0]
    listed_iv = lake.read("instruments").sort("instrument")["funding_interval_h"].to_list()
    assert listed_iv == [8.0, 8.0, 4.0]  # filled from the funding answer


def test_position_tiers_are_stored_with_their_bound_unit_beside_an_older_table(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    lake.init()
    # a table written before the bound_unit column existed (its nine older columns only)
    spec = table_spec("leverage_tiers")
    older = pa.schema([f for f in spec.schema if f.name != "bound_unit"])
    row = {"venue": ["binance"], "instrument": ["BTC-USDT-PERP"], "ts": [UNTIL], "tier": [1],
           "notional_floor_usd": [0.0], "notional_cap_usd": [50_000.0], "mmr": [0.004],
           "maint_amount_usd": [0.0], "max_leverage": [125.0]}  # fmt: skip
    table = pa.table(row, schema=older)
    write_deltalake(str(lake.table_path("leverage_tiers")), table, mode="append")
    assert check_table(lake, "leverage_tiers").ok  # a missing nullable column is no damage

    async def tiers() -> pl.DataFrame:
        venue = OkxVenue(api_url=fake_binance.url, rate_limit_ms=1)
        try:
            return await venue.fetch_tiers(parse_instrument("BTC-USDT-PERP"))
        finally:
            await venue.close()

    fetched = asyncio.run(tiers())
    with pytest.raises(
        DataContractError, match=re.escape("bound_unit lots is not usd | base | contracts")
    ):
        lake.ingest("leverage_tiers", fetched.with_columns(bound_unit=pl.lit("lots")))
    unitless = fetched.drop("bound_unit").with_columns(instrument=pl.lit("ETH-USDT-PERP"))
    assert lake.ingest("leverage_tiers", unitless).rows_written == 3  # null: USD, as before
    stored = lake.ingest("leverage_tiers", fetched)
    assert stored.rows_written == 3
    frame = lake.read("leverage_tiers").filter(pl.col("instrument") == "BTC-USDT-PERP")
    frame = frame.sort("venue", "tier")
    assert frame["bound_unit"].to_list() == [None, "base", "base", "base"]  # older row: null
    okx = frame.filter(pl.col("venue") == "okx")
    # the fake's tiers: 20,000 / 50,000 / 100,000 contracts of 0.01 BTC = 200 / 500 / 1,000 BTC
    assert okx["notional_cap_usd"].to_list() == [200.0, 500.0, 1000.0]
    assert check_table(lake, "leverage_tiers").ok
    # the liquidation estimator reads USD-notional tiers only: coin bounds are left out
    assert tiers_from_table(okx) == ()
    binance = frame.filter(pl.col("venue") == "binance")
    assert [t.cap for t in tiers_from_table(binance)] == [50_000.0]


def test_collect_tiers_command_stores_okx_tiers_and_refuses_other_venues(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    store = tmp_path / "store"
    base = [sys.executable, "-m", "perpscope", "--store", str(store), "collect", "tiers",
            "--instrument", "BTC-USDT-PERP", "--instrument", "XYZ-USDT-PERP",
            "--api-url", fake_binance.url, "--format", "json"]  # fmt: skip
    done = subprocess.run([*base, "--venue", "okx"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = json_data(done.stdout)
    assert [(r["instrument"], r["tiers"], r["bound_unit"], r["rows_written"]) for r in rows] == [
        ("BTC-USDT-PERP", 3, "base", 3), ("XYZ-USDT-PERP", 3, "base", 3),
    ]  # fmt: skip
    xyz = Lake(store).read("leverage_tiers").filter(pl.col("instrument") == "XYZ-USDT-PERP")
    # 20,000 contracts of 10 XYZ = 200,000 XYZ
    assert xyz.sort("tier")["notional_cap_usd"].to_list()[0] == 200_000.0
    assert [r.path for r in okx_log(fake_binance, "position-tiers")] == [
        "/api/v5/public/position-tiers"
    ] * 2
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPSCOPE_BINANCE_")}
    refused = subprocess.run(
        [*base, "--venue", "binance"], capture_output=True, text=True, timeout=120, env=env
    )
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()  # one line, no traceback
    assert "binance leverage brackets need an API key" in line
