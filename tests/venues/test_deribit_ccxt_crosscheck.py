"""Our Deribit parsers against ccxt's unified parsers, as an independent second implementation.

The fake exchange serves Deribit's JSON-RPC payloads; perpscope's venue reads them through its
raw implicit-API calls and our parsers, ccxt's unified methods (``load_markets``,
``fetch_funding_rate_history``, ``fetch_option_chain``, ``fetch_open_interest``,
``fetch_trades``) read the very same payloads through the real ccxt client. Every value both
sides expose must agree. (The shared recorded Deribit responses hold only spot examples; the one
with a parser here is checked in ``test_deribit_parse.py``; the chart-data example is served
verbatim below.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import polars as pl
import pytest

from perpscope.domain.symbols import parse_instrument
from perpscope.venues.base import parse_stream
from perpscope.venues.deribit import DeribitVenue
from tests.conftest import require_shared
from tests.fakex import deribit as fd
from tests.fakex.market import END_MS, HOUR_MS
from tests.fakex.server import FakeBinance


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def run(fake: FakeBinance, body: Callable[[DeribitVenue], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        venue = DeribitVenue(api_url=fake.url, rate_limit_ms=1)
        try:
            await venue.client.load_markets()  # every instrument, served by the fake
            return await body(venue)
        finally:
            await venue.close()

    return asyncio.run(main())


def test_instruments_agree_with_ccxt_markets(fake_binance: FakeBinance) -> None:
    async def both(v: DeribitVenue) -> tuple[pl.DataFrame, dict[str, Any]]:
        futures, _ = await v.instruments("BTC", "future")
        options, _ = await v.instruments("BTC", "option")
        return pl.concat([futures, options]), v.client.markets_by_id

    ours, by_id = run(fake_binance, both)
    assert ours.height == 2 + 12
    for row in ours.iter_rows(named=True):
        [m] = by_id[row["venue_symbol"]]
        assert m["contractSize"] == row["contract_size"]
        assert m["precision"]["price"] == row["tick_size_px"]
        assert m["inverse"] is True  # quoted in USD, settled in BTC
        assert m["swap"] == (row["kind"] == "perp")
        assert m["option"] == (row["kind"] == "option")
        if row["expiry_ts"] is not None:
            assert m["expiry"] == ms(row["expiry_ts"])
        if row["kind"] == "option":
            assert m["strike"] == float(row["instrument"].split("-")[3])
            assert m["optionType"] == {"C": "call", "P": "put"}[row["instrument"][-1]]


def test_funding_history_agrees_with_ccxt_which_reads_the_trailing_8h(
    fake_binance: FakeBinance,
) -> None:
    start = END_MS - 48 * HOUR_MS

    async def both(v: DeribitVenue) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
        page = await v.fetch_history(
            parse_instrument("BTC-USD-PERP"), parse_stream("funding"), start, END_MS, None
        )
        theirs = await v.client.fetch_funding_rate_history("BTC/USD:BTC", start, 48)
        return page.frame, theirs

    ours, theirs = run(fake_binance, both)
    assert ours.height == len(theirs) == 48  # hourly rows in [start, END): start .. END - 1 h
    assert [ms(t) for t in ours["ts"]] == [t["timestamp"] for t in theirs]
    # ccxt's "8h" rate of each hourly row is interest_8h, the trailing 8 hours: the sum of our
    # hourly rows over the same 8 hours
    trailing = ours["rate"].rolling_sum(8).to_list()
    for mine, t in zip(trailing[7:], theirs[7:], strict=True):
        assert mine == pytest.approx(t["fundingRate"], rel=1e-9)
    assert [t["interval"] for t in theirs][:1] == ["8h"]
    assert set(ours["interval_h"]) == {1.0}


def test_option_chain_agrees_with_ccxt(fake_binance: FakeBinance) -> None:
    async def both(v: DeribitVenue) -> tuple[pl.DataFrame, dict[str, Any]]:
        chain = await v.fetch_option_chain("ETH")
        return chain["options_snapshot"], await v.client.fetch_option_chain("ETH")

    ours, theirs = run(fake_binance, both)
    assert ours.height == len(theirs) == 12
    for row in ours.iter_rows(named=True):
        t = theirs[f"ETH/USD:ETH-{row['expiry_ts']:%y%m%d}-{int(row['strike_px'])}-"
                   f"{row['option_type']}"]  # fmt: skip
        assert row["open_interest_contracts"] == t["openInterest"]
        assert row["mark_price"] == t["markPrice"]
        assert row["underlying_px"] == t["underlyingPrice"]
        assert row["volume_contracts"] == t["baseVolume"]
        assert row["volume_usd"] == t["quoteVolume"]
        assert row["ask_price"] == t["askPrice"]
        # ccxt keeps Deribit's 0 for "no bid"; perpscope stores no quote as null
        assert row["bid_price"] == (t["bidPrice"] or None)


def test_open_interest_in_usd_agrees_with_ccxt(fake_binance: FakeBinance) -> None:
    async def both(v: DeribitVenue) -> tuple[pl.DataFrame, dict[str, Any]]:
        snap = await v.fetch_snapshot(())
        return snap.frames["open_interest"], await v.client.fetch_open_interest("BTC/USD:BTC")

    oi, theirs = run(fake_binance, both)
    row = oi.filter(pl.col("instrument") == "BTC-USD-PERP").row(0, named=True)
    assert row["oi_usd"] == theirs["openInterestValue"] == fd.OI_USD["BTC-PERPETUAL"]
    assert theirs["openInterestAmount"] is None  # ccxt leaves the coin amount to the reader
    assert ms(row["ts"]) == theirs["timestamp"]
    assert row["oi_base"] == pytest.approx(fd.OI_USD["BTC-PERPETUAL"] / 40_000.5, rel=1e-12)


def test_option_trades_agree_with_ccxt(fake_binance: FakeBinance) -> None:
    start = fd.TRADES_START_MS
    name = "BTC-9JAN26-35000-C"

    async def both(v: DeribitVenue) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
        ours = await v.fetch_option_trades("BTC", start, start + 24 * HOUR_MS)
        theirs = await v.client.fetch_trades("BTC/USD:BTC-260109-35000-C", start, 1000,
                                             {"until": start + 24 * HOUR_MS - 1})  # fmt: skip
        return ours, theirs

    ours, theirs = run(fake_binance, both)
    mine = ours.filter(pl.col("instrument") == "BTC-USD-9JAN26-35000-C")
    assert mine.height == len(theirs) > 0
    by_id = {t["id"]: t for t in theirs}
    for row in mine.iter_rows(named=True):
        t = by_id[row["trade_id"]]
        assert ms(row["ts"]) == t["timestamp"]
        assert row["price"] == t["price"]
        assert row["qty_contracts"] == t["amount"]
        assert row["side"] == t["side"]
        assert t["info"]["instrument_name"] == name
        assert row["block"] == ("block_trade_id" in t["info"])
        assert row["liquidation"] == t["info"].get("liquidation")


def test_real_recorded_chart_data_agrees_with_ccxt(fake_binance: FakeBinance) -> None:
    """The real recorded ``get_tradingview_chart_data`` answer (shared data, a BTC_USDT 1 h bar),
    served verbatim: our kline parser and ccxt's ``fetch_ohlcv`` read the same bar."""
    data = json.loads(require_shared("samples/venues/deribit.json").read_text())
    ex = data["methods"]["fetchOHLCV"][0]
    fake_binance.serve(f"{fd.PREFIX}get_tradingview_chart_data", ex["httpResponse"])
    t = ex["httpResponse"]["result"]["ticks"][0]

    async def both(v: DeribitVenue) -> tuple[pl.DataFrame, list[list[Any]]]:
        page = await v.fetch_history(
            parse_instrument("BTC-USD-PERP"), parse_stream("ohlcv:trade:1h"), t, t + HOUR_MS, None
        )
        return page.frame, await v.client.fetch_ohlcv("BTC/USD:BTC", "1h", t, 1)

    ours, theirs = run(fake_binance, both)
    assert ours.height == len(theirs) == 1
    row = ours.row(0, named=True)
    bar = [ms(row["ts"]), row["o"], row["h"], row["l"], row["c"], row["volume"]]
    assert bar == theirs[0] == ex["ccxtParsed"][0]
    assert row["quote_volume"] == ex["httpResponse"]["result"]["cost"][0]  # ccxt drops the cost
    assert row["taker_buy_volume"] is None
