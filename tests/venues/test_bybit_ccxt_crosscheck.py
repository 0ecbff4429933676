"""Our Bybit parsers against ccxt's unified parsers, as an independent second implementation.

The fake exchange serves each payload verbatim: the real recorded responses of the shared data
(``samples/venues/bybit.json``: klines, open interest, tickers) and the hand-made ones of
``tests/fixtures/bybit`` (funding history, account ratio). perpscope's venue reads it through its
raw implicit-API call and our parser; ccxt's unified method (``fetch_ohlcv``,
``fetch_funding_rates``, ``fetch_open_interest_history``, ...) reads the very same payload through
the real ccxt client. Every value both sides expose must agree. Where ccxt cannot be run (the
inverse market is not on the fake), the fixture's own recorded ``ccxtParsed`` is the reference.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from perpscope.domain.symbols import parse_instrument
from perpscope.venues import bybit_parse as yp
from perpscope.venues.base import parse_stream
from perpscope.venues.bybit import BybitVenue
from tests.conftest import require_shared
from tests.fakex.server import FakeBinance

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "bybit"
BTC = parse_instrument("BTC-USDT-PERP")


def load(name: str) -> Any:
    return json.loads((FIX / name).read_text())


def sample(method: str, index: int = 0) -> dict[str, Any]:
    """One recorded example of the shared Bybit fixture file."""
    data = json.loads(require_shared("samples/venues/bybit.json").read_text())
    example: dict[str, Any] = data["methods"][method][index]
    return example


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def run(fake: FakeBinance, body: Callable[[BybitVenue], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        venue = BybitVenue(api_url=fake.url, rate_limit_ms=1)
        try:
            await venue.client.load_markets()  # linear instruments, served by the fake
            return await body(venue)
        finally:
            await venue.close()

    return asyncio.run(main())


def test_real_klines_newest_first_agree_with_ccxt(fake_binance: FakeBinance) -> None:
    ex = sample("fetchOHLCV")
    fake_binance.serve("/v5/market/kline", ex["httpResponse"])
    first = int(ex["httpResponse"]["result"]["list"][-1][0])  # the oldest bar (newest first)

    async def both(v: BybitVenue) -> tuple[pl.DataFrame, list[list[Any]]]:
        stream = parse_stream("ohlcv:trade:1h")
        ours = await v.fetch_history(BTC, stream, first, first + 3 * 3_600_000, None)
        theirs = await v.client.fetch_ohlcv("BTC/USDT:USDT", "1h", first, 3)
        return ours.frame, theirs

    ours, theirs = run(fake_binance, both)
    assert ours.height == len(theirs) == 3
    assert ours["ts"].is_sorted()  # Bybit sends newest first; we store oldest first
    for row, t in zip(ours.iter_rows(named=True), theirs, strict=True):
        assert [ms(row["ts"]), row["o"], row["h"], row["l"], row["c"], row["volume"]] == t
    # the quote turnover ccxt drops is kept: the raw oldest bar's 7th field
    assert ours["quote_volume"][0] == float(ex["httpResponse"]["result"]["list"][-1][6])
    assert ours["taker_buy_volume"].null_count() == 3  # Bybit publishes none
    assert [list(map(float, t)) for t in theirs] == [list(map(float, c)) for c in ex["ccxtParsed"]]


def test_mark_klines_have_no_volume_and_agree_with_ccxt(fake_binance: FakeBinance) -> None:
    raw = sample("fetchOHLCV")["httpResponse"]
    five = [bar[:5] for bar in raw["result"]["list"]]  # mark klines: [start, o, h, l, c]
    fake_binance.serve(
        "/v5/market/mark-price-kline", {**raw, "result": {**raw["result"], "list": five}}
    )
    first = int(five[-1][0])

    async def both(v: BybitVenue) -> tuple[pl.DataFrame, list[list[Any]]]:
        stream = parse_stream("ohlcv:mark:1h")
        ours = await v.fetch_history(BTC, stream, first, first + 3 * 3_600_000, None)
        theirs = await v.client.fetch_ohlcv("BTC/USDT:USDT", "1h", first, 3, {"price": "mark"})
        return ours.frame, theirs

    ours, theirs = run(fake_binance, both)
    assert ours.height == len(theirs) == 3
    for row, t in zip(ours.iter_rows(named=True), theirs, strict=True):
        assert [ms(row["ts"]), row["o"], row["h"], row["l"], row["c"]] == t[:5]
        assert row["volume"] is None


def test_funding_history_agrees_with_ccxt(fake_binance: FakeBinance) -> None:
    payload = load("v5_market_funding_history.json")
    fake_binance.serve("/v5/market/funding/history", payload)
    start = 1_767_124_800_000

    async def both(v: BybitVenue) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
        ours = await v.fetch_history(BTC, parse_stream("funding"), start, start + 86_400_000, None)
        theirs = await v.client.fetch_funding_rate_history("BTC/USDT:USDT", start, 200)
        return ours.frame, theirs

    ours, theirs = run(fake_binance, both)
    assert ours.height == len(theirs) == 4
    assert [ms(t) for t in ours["ts"]] == [t["timestamp"] for t in theirs]
    assert ours["rate"].to_list() == [t["fundingRate"] for t in theirs]
    # intervals from the gaps between settlements (the fixture: 4 h, then 8 h, 8 h); the
    # first row has no predecessor and takes its follower's
    gaps = ours["ts"].diff().dt.total_hours().to_list()[1:]
    assert gaps == [4, 8, 8]
    assert ours["interval_h"].to_list() == [4.0, 4.0, 8.0, 8.0]


def test_open_interest_history_agrees_with_ccxt(fake_binance: FakeBinance) -> None:
    ex = sample("fetchOpenInterest", 0)
    fake_binance.serve("/v5/market/open-interest", ex["httpResponse"])
    t = int(ex["httpResponse"]["result"]["list"][0]["timestamp"])

    async def both(v: BybitVenue) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
        ours = await v.fetch_history(BTC, parse_stream("oi:1h"), t, t + 3_600_000, None)
        theirs = await v.client.fetch_open_interest_history("BTC/USDT:USDT", "1h", t, 1)
        return ours.frame, theirs

    ours, theirs = run(fake_binance, both)
    assert ours.height == len(theirs) == 1
    row = ours.row(0, named=True)
    assert ms(row["ts"]) == theirs[0]["timestamp"]
    assert row["oi_unit"] == "base"
    assert (
        row["oi_base"] == theirs[0]["openInterestAmount"] == ex["ccxtParsed"]["openInterestAmount"]
    )
    assert row["oi_usd"] is None  # the history carries no price


def test_inverse_open_interest_is_usd_as_ccxt_reads_it() -> None:
    ex = sample("fetchOpenInterest", 1)
    rows = yp.result_list(ex["httpResponse"], "v5/market/open-interest")
    frame = yp.parse_open_interest(rows, "BTC-USD-PERP", "hist_1h", inverse=True)
    row = frame.row(0, named=True)
    assert row["oi_unit"] == "usd"
    assert row["oi_usd"] == ex["ccxtParsed"]["openInterestValue"] == 1_536_179_414.0
    assert row["oi_base"] is None


def test_account_ratio_agrees_with_ccxt(fake_binance: FakeBinance) -> None:
    payload = load("v5_market_account_ratio.json")
    fake_binance.serve("/v5/market/account-ratio", payload)
    start = 1_767_214_800_000

    async def both(v: BybitVenue) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
        stream = parse_stream("long_short:global_account:1h")
        ours = await v.fetch_history(BTC, stream, start, start + 3 * 3_600_000, None)
        theirs = await v.client.fetch_long_short_ratio_history("BTC/USDT:USDT", "1h", start, 3)
        return ours.frame, theirs

    ours, theirs = run(fake_binance, both)
    theirs = sorted(theirs, key=lambda r: r["timestamp"])
    assert ours.height == len(theirs) == 3
    assert [ms(t) for t in ours["ts"]] == [t["timestamp"] for t in theirs]
    for mine, t in zip(ours["long_short_ratio"], theirs, strict=True):
        assert mine == pytest.approx(t["longShortRatio"], rel=1e-12)
    assert ours["long_frac"].to_list() == [0.4987, 0.61, 0.5523]


@pytest.mark.parametrize("method", ["fetchFundingRates", "fetchFundingRate", "fetchTicker"])
def test_real_tickers_snapshot_agrees_with_ccxt(fake_binance: FakeBinance, method: str) -> None:
    ex = sample(method)
    fake_binance.serve("/v5/market/tickers", ex["httpResponse"])
    raw = ex["httpResponse"]["result"]["list"][0]

    async def both(v: BybitVenue) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
        snap = await v.fetch_snapshot(())
        theirs = await v.client.fetch_funding_rates(["BTC/USDT:USDT"])
        return dict(snap.frames), theirs["BTC/USDT:USDT"]

    frames, theirs = run(fake_binance, both)
    funding = frames["funding_snapshot"].row(0, named=True)
    assert funding["instrument"] == "BTC-USDT-PERP"
    assert funding["rate"] == theirs["fundingRate"] == float(raw["fundingRate"])
    assert funding["mark_px"] == theirs["markPrice"]
    assert funding["index_px"] == theirs["indexPrice"]
    assert ms(funding["next_funding_ts"]) == theirs["fundingTimestamp"]
    assert funding["interval_h"] == 8.0  # from the fake's instruments-info (480 minutes)
    assert ms(funding["ts"]) == int(str(ex["httpResponse"]["time"]))
    oi = frames["open_interest"].row(0, named=True)
    assert oi["oi_base"] == float(raw["openInterest"])
    assert oi["oi_usd"] == float(raw["openInterestValue"])
    # one-sided USD = base x mark, to the cent Bybit rounds openInterestValue to
    assert oi["oi_base"] * funding["mark_px"] == pytest.approx(oi["oi_usd"], rel=2e-4)


def test_instruments_read_funding_interval_in_minutes(fake_binance: FakeBinance) -> None:
    async def both(v: BybitVenue) -> tuple[pl.DataFrame, dict[str, Any]]:
        return await v.fetch_instruments(), v.client.markets

    ours, markets = run(fake_binance, both)
    by_id = {r["venue_symbol"]: r for r in ours.iter_rows(named=True)}
    assert by_id["XYZUSDT"]["funding_interval_h"] == 4.0  # 240 minutes
    assert by_id["BTCUSDT"]["funding_interval_h"] == 8.0  # 480 minutes
    for sym, row in by_id.items():
        m = markets[f"{row['base']}/USDT:USDT"]
        assert m["id"] == sym
        assert m["precision"]["price"] == row["tick_size_px"]
        assert m["precision"]["amount"] == row["lot_size"]
        assert m["linear"]
        assert m["swap"]
