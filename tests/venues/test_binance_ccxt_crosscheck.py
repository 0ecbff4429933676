"""Our Binance parsers against ccxt's unified parsers, as an independent second implementation.

The fake exchange serves each hand-made fixture; perpscope's venue reads it through its raw
implicit-API call and our parser, and ccxt's unified method (``fetch_funding_rate_history``,
``fetch_ohlcv``, ``fetch_funding_rates``, ...) reads the very same payload through the real ccxt
client. Every value both sides expose must agree. The real ``premiumIndex`` file is compared
through ccxt's ``parse_funding_rate``.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from perpscope.domain.symbols import parse_instrument
from perpscope.venues import binance_parse as bp
from perpscope.venues.base import parse_stream
from perpscope.venues.binance import BinanceVenue
from tests.conftest import require_shared
from tests.fakex.server import FakeBinance

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "binance"
FAR_END = 4_000_000_000_000  # year 2096: every fixture row lies before it


def load(name: str) -> Any:
    return json.loads((FIX / name).read_text())


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def run(fake: FakeBinance, body: Callable[[BinanceVenue], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        venue = BinanceVenue(api_url=fake.url, rate_limit_ms=1)
        try:
            await venue.client.load_markets()  # served by the fake, as ccxt asks for it
            return await body(venue)
        finally:
            await venue.close()

    return asyncio.run(main())


def test_funding_history_agrees_with_ccxt(fake_binance: FakeBinance) -> None:
    fake_binance.serve("/fapi/v1/fundingRate", load("fapi_v1_fundingRate.json"))

    async def both(v: BinanceVenue) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
        ours = await v.fetch_history(
            parse_instrument("XYZ-USDT-PERP"), parse_stream("funding"), 0, FAR_END, None
        )
        theirs = await v.client.fetch_funding_rate_history("XYZ/USDT:USDT", since=0, limit=1000)
        return ours.frame, theirs

    ours, theirs = run(fake_binance, both)
    assert ours.height == len(theirs) == 4
    assert ours["rate"].to_list() == [t["fundingRate"] for t in theirs]
    # ccxt keeps Binance's millisecond jitter; we snap to the minute (at most 30 s apart)
    for ts, t in zip(ours["ts"], theirs, strict=True):
        assert abs(ms(ts) - t["timestamp"]) < 30_000
        assert ms(ts) % 60_000 == 0


@pytest.mark.parametrize(
    ("kind", "fixture", "price"),
    [
        ("trade", "fapi_v1_klines.json", None),
        ("mark", "fapi_v1_markPriceKlines.json", "mark"),
        ("index", "fapi_v1_indexPriceKlines.json", "index"),
        ("premium", "fapi_v1_premiumIndexKlines.json", "premiumIndex"),
    ],
)
def test_perp_klines_agree_with_ccxt(
    fake_binance: FakeBinance, kind: str, fixture: str, price: str | None
) -> None:
    path = "/fapi/v1/" + fixture.removeprefix("fapi_v1_").removesuffix(".json")
    fake_binance.serve(path, load(fixture))

    async def both(v: BinanceVenue) -> tuple[pl.DataFrame, list[list[Any]]]:
        stream = parse_stream(f"ohlcv:{kind}:1h")
        ours = await v.fetch_history(parse_instrument("BTC-USDT-PERP"), stream, 0, FAR_END, None)
        params = {"price": price} if price else {}
        theirs = await v.client.fetch_ohlcv("BTC/USDT:USDT", "1h", 0, 1500, params)
        return ours.frame, theirs

    ours, theirs = run(fake_binance, both)
    assert ours.height == len(theirs) == len(load(fixture))
    for row, t in zip(ours.iter_rows(named=True), theirs, strict=True):
        assert [ms(row["ts"]), row["o"], row["h"], row["l"], row["c"]] == t[:5]
        if kind == "trade":
            assert row["volume"] == t[5]
        else:
            assert row["volume"] is None  # we store null where Binance sends "0"
            assert t[5] == 0


def test_spot_klines_agree_with_ccxt(fake_binance: FakeBinance) -> None:
    fake_binance.serve("/api/v3/klines", load("api_v3_klines.json"))

    async def both(v: BinanceVenue) -> tuple[pl.DataFrame, list[list[Any]]]:
        stream = parse_stream("ohlcv:trade:1h")
        ours = await v.fetch_history(parse_instrument("BTC-USDT"), stream, 0, FAR_END, None)
        return ours.frame, await v.client.fetch_ohlcv("BTC/USDT", "1h", 0, 1000)

    ours, theirs = run(fake_binance, both)
    assert ours.height == len(theirs) == 1
    row = ours.row(0, named=True)
    assert [ms(row["ts"]), row["o"], row["h"], row["l"], row["c"], row["volume"]] == theirs[0]


def test_premium_index_snapshot_agrees_with_ccxt(fake_binance: FakeBinance) -> None:
    fake_binance.serve("/fapi/v1/premiumIndex", load("fapi_v1_premiumIndex.json"))

    async def both(v: BinanceVenue) -> tuple[pl.DataFrame, dict[str, Any]]:
        snap = await v.fetch_snapshot(())
        theirs = await v.client.fetch_funding_rates()
        return snap.frames["funding_snapshot"], theirs

    ours, theirs = run(fake_binance, both)
    by_symbol = {"BTC-USDT-PERP": "BTC/USDT:USDT", "XYZ-USDT-PERP": "XYZ/USDT:USDT"}
    for row in ours.iter_rows(named=True):
        if row["instrument"] not in by_symbol:
            continue  # ccxt's fetch_funding_rates keeps perpetuals only
        t = theirs[by_symbol[row["instrument"]]]
        assert (row["mark_px"], row["index_px"], row["rate"]) == (
            t["markPrice"], t["indexPrice"], t["fundingRate"],
        )  # fmt: skip
        assert ms(row["ts"]) == t["timestamp"]
        assert ms(row["next_funding_ts"]) == t["fundingTimestamp"]
    assert ours.filter(pl.col("instrument").is_in(list(by_symbol))).height == 2


def test_open_interest_and_ratios_agree_with_ccxt(fake_binance: FakeBinance) -> None:
    fake_binance.serve("/fapi/v1/openInterest", load("fapi_v1_openInterest.json"))
    fake_binance.serve("/futures/data/openInterestHist", load("futures_data_openInterestHist.json"))
    fake_binance.serve(
        "/futures/data/globalLongShortAccountRatio",
        load("futures_data_globalLongShortAccountRatio.json"),
    )
    btc = parse_instrument("BTC-USDT-PERP")
    end = 1767225600001

    async def both(v: BinanceVenue) -> dict[str, Any]:
        return {
            "snap": (await v.fetch_snapshot((btc,))).frames["open_interest"],
            "hist": (await v.fetch_history(btc, parse_stream("oi:5m"), end - 500, end, None)).frame,
            "ls": (
                await v.fetch_history(
                    btc, parse_stream("long_short:global_account:5m"), end - 500, end, None
                )
            ).frame,
            "c_snap": await v.client.fetch_open_interest("BTC/USDT:USDT"),
            "c_hist": await v.client.fetch_open_interest_history("BTC/USDT:USDT", "5m"),
            "c_ls": await v.client.fetch_long_short_ratio_history("BTC/USDT:USDT", "5m"),
        }

    got = run(fake_binance, both)
    snap = got["snap"].row(0, named=True)
    assert snap["oi_base"] == got["c_snap"]["openInterestAmount"]
    assert ms(snap["ts"]) == got["c_snap"]["timestamp"]
    assert got["hist"]["oi_base"].to_list() == [c["openInterestAmount"] for c in got["c_hist"]]
    assert got["hist"]["oi_usd"].to_list() == [c["openInterestValue"] for c in got["c_hist"]]
    assert [ms(t) for t in got["hist"]["ts"]] == [c["timestamp"] for c in got["c_hist"]]
    assert got["ls"]["long_short_ratio"].to_list() == [c["longShortRatio"] for c in got["c_ls"]]


def test_instruments_agree_with_ccxt_markets(fake_binance: FakeBinance) -> None:
    async def both(v: BinanceVenue) -> tuple[pl.DataFrame, dict[str, Any]]:
        return await v.fetch_instruments(), v.client.markets

    ours, markets = run(fake_binance, both)
    by_id = {m["id"]: m for m in markets.values() if m["contract"]}
    for row in ours.iter_rows(named=True):
        m = by_id[row["venue_symbol"]]
        assert (row["base"], row["quote"], row["settle"]) == (m["base"], m["quote"], m["settle"])
        assert row["contract_size"] == m["contractSize"]
        assert row["tick_size_px"] == m["precision"]["price"]
        assert row["lot_size"] == m["precision"]["amount"]
        assert (row["kind"] == "perp") == (m["type"] == "swap")


@pytest.mark.shared_data
def test_real_premium_index_agrees_with_ccxt() -> None:
    path = require_shared("samples/binance_rest_real/fapi_v1_premiumIndex_all_2025-06-17.json.gz")
    payload = json.loads(gzip.decompress(path.read_bytes()))
    ours, unmapped = bp.parse_premium_index(payload, bp.canonical_from_symbol, {})
    client = BinanceVenue().client  # parsing only: no request is made
    theirs = {r["symbol"]: client.parse_funding_rate(r) for r in payload}
    symbol_of = {bp.canonical_from_symbol(s): s for s in theirs}
    assert ours.height == len(payload) - len(unmapped)
    for row in ours.iter_rows(named=True):
        t = theirs[symbol_of[row["instrument"]]]
        assert (row["mark_px"], row["index_px"], row["rate"]) == (
            t["markPrice"], t["indexPrice"], t["fundingRate"],
        ), row["instrument"]  # fmt: skip
        assert ms(row["ts"]) == t["timestamp"]
        next_ts = row["next_funding_ts"]
        assert (ms(next_ts) if next_ts else 0) == (t["fundingTimestamp"] or 0)
    asyncio.run(client.close())


def test_funding_interval_agrees_with_ccxt(fake_binance: FakeBinance) -> None:
    async def both(v: BinanceVenue) -> tuple[pl.DataFrame, dict[str, Any]]:
        return await v.fetch_instruments(), await v.client.fetch_funding_intervals()

    ours, theirs = run(fake_binance, both)
    xyz = ours.filter(pl.col("venue_symbol") == "XYZUSDT")["funding_interval_h"].item()
    assert theirs["XYZ/USDT:USDT"]["interval"] == f"{xyz:g}h" == "4h"


@pytest.mark.parametrize(
    ("kind", "fixture"),
    [
        ("top_account", "futures_data_topLongShortAccountRatio.json"),
        ("top_position", "futures_data_topLongShortPositionRatio.json"),
    ],
)
def test_top_trader_ratios_agree_with_ccxts_parser(kind: str, fixture: str) -> None:
    # ccxt's unified fetch reads only the global ratio; its parser applies to all three payloads
    payload = load(fixture)
    ours = bp.parse_long_short(payload, "BTC-USDT-PERP", kind, "5m")
    client = BinanceVenue().client  # parsing only: no request is made
    theirs = [client.parse_long_short_ratio(r) for r in payload]
    asyncio.run(client.close())
    assert ours["long_short_ratio"].to_list() == [t["longShortRatio"] for t in theirs]
    assert [ms(t) for t in ours["ts"]] == [t["timestamp"] for t in theirs]
