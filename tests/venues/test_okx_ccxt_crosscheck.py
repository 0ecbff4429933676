"""Our OKX parsers against ccxt's unified parsers, as an independent second implementation.

The fake exchange serves each payload verbatim: the real recorded responses of the shared data
(``samples/venues/okx.json``: open interest, candles) and the hand-made ones of
``tests/fixtures/okx`` (funding history and current funding, OI history, long/short ratio,
position tiers). perpscope's venue reads it through its raw implicit-API call and our parser;
ccxt's unified method (``fetch_ohlcv``, ``fetch_funding_rate_history``, ``fetch_funding_rates``,
``fetch_open_interest(_history)``, ``fetch_long_short_ratio_history``,
``fetch_market_leverage_tiers``) reads the very same payload through the real ccxt client. Every
value both sides expose must agree (ccxt's quirks are named where we differ on purpose).
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
from perpscope.venues.base import parse_stream
from perpscope.venues.okx import OkxVenue
from tests.conftest import require_shared
from tests.fakex.server import FakeBinance

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "okx"
BTC = parse_instrument("BTC-USDT-PERP")
HOUR = 3_600_000


def load(name: str) -> Any:
    return json.loads((FIX / name).read_text())


def sample(method: str, index: int = 0) -> dict[str, Any]:
    """One recorded example of the shared OKX fixture file."""
    data = json.loads(require_shared("samples/venues/okx.json").read_text())
    example: dict[str, Any] = data["methods"][method][index]
    return example


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def run(fake: FakeBinance, body: Callable[[OkxVenue], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        venue = OkxVenue(api_url=fake.url, rate_limit_ms=1)
        try:
            await venue.client.load_markets()  # the swaps, served by the fake
            return await body(venue)
        finally:
            await venue.close()

    return asyncio.run(main())


@pytest.mark.parametrize("kind", ["trade", "mark", "index"])
def test_real_candles_newest_first_agree_with_ccxt(fake_binance: FakeBinance, kind: str) -> None:
    # the recorded answer is spot BTC-USDT's; its layout is the swap's, so it stands in for the
    # swap's candle history (for mark/index the first five fields and the confirm flag)
    ex = sample("fetchOHLCV")
    raw = ex["httpResponse"]
    if kind != "trade":
        raw = {**raw, "data": [[*bar[:5], bar[8]] for bar in raw["data"]]}
    path = {"trade": "history-candles", "mark": "history-mark-price-candles",
            "index": "history-index-candles"}[kind]  # fmt: skip
    fake_binance.serve(f"/api/v5/market/{path}", raw)
    first = int(raw["data"][-1][0])  # the oldest bar (newest first)

    async def both(v: OkxVenue) -> tuple[pl.DataFrame, list[list[Any]]]:
        stream = parse_stream(f"ohlcv:{kind}:1h")
        ours = await v.fetch_history(BTC, stream, first, first + 3 * HOUR, None)
        params = {} if kind == "trade" else {"price": kind}
        theirs = await v.client.fetch_ohlcv("BTC/USDT:USDT", "1h", first, 3, params)
        return ours.frame, theirs

    ours, theirs = run(fake_binance, both)
    assert ours.height == len(theirs) == 3
    assert ours["ts"].is_sorted()  # OKX sends newest first; we store oldest first
    for row, t in zip(ours.iter_rows(named=True), theirs, strict=True):
        assert [ms(row["ts"]), row["o"], row["h"], row["l"], row["c"]] == t[:5]
        if kind == "trade":
            assert row["volume"] == t[5]  # both read field 6 (volCcy) of a swap's bar
        else:
            assert row["volume"] is None
    # and the prices are the recorded ones ccxt parsed when the fixture was made
    assert [t[:5] for t in theirs] == [c[:5] for c in ex["ccxtParsed"]]
    asked = fake_binance.requests(path)[-2]  # ours, before ccxt's
    assert asked.params["before"] == str(first - 1)  # exclusive bounds around the window
    assert asked.params["after"] == str(first + 3 * HOUR)


def test_real_open_interest_agrees_with_ccxt(fake_binance: FakeBinance) -> None:
    ex = sample("fetchOpenInterest")
    fake_binance.serve("/api/v5/public/open-interest", ex["httpResponse"])

    async def both(v: OkxVenue) -> tuple[pl.DataFrame, dict[str, Any]]:
        snap = await v.fetch_snapshot(())
        theirs = await v.client.fetch_open_interest("BTC/USDT:USDT")
        return snap.frames["open_interest"], theirs

    oi, theirs = run(fake_binance, both)
    row = oi.row(0, named=True)
    assert oi.height == 1
    assert row["instrument"] == "BTC-USDT-PERP"
    assert row["oi_value"] == theirs["openInterestAmount"]  # contracts
    assert row["oi_base"] == theirs["baseVolume"]  # oiCcy
    assert row["oi_usd"] == theirs["openInterestValue"]
    assert ms(row["ts"]) == theirs["timestamp"] == ex["ccxtParsed"]["timestamp"]


def test_funding_history_agrees_with_ccxt_on_the_realised_rate(fake_binance: FakeBinance) -> None:
    fake_binance.serve(
        "/api/v5/public/funding-rate-history", load("public_funding_rate_history.json")
    )
    start = 1_767_124_800_000

    async def both(v: OkxVenue) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
        ours = await v.fetch_history(BTC, parse_stream("funding"), start, start + 86_400_000, None)
        theirs = await v.client.fetch_funding_rate_history("BTC/USDT:USDT", start, 100)
        return ours.frame, theirs

    ours, theirs = run(fake_binance, both)
    assert ours.height == len(theirs) == 4
    assert [ms(t) for t in ours["ts"]] == [t["timestamp"] for t in theirs]
    # both take realizedRate, which differs from fundingRate in this fixture
    assert ours["rate"].to_list() == [t["fundingRate"] for t in theirs]
    assert ours["rate"].to_list() != [float(t["info"]["fundingRate"]) for t in theirs]
    assert ours["interval_h"].to_list() == [4.0, 4.0, 8.0, 8.0]


def test_current_funding_agrees_with_ccxt(fake_binance: FakeBinance) -> None:
    payload = load("public_funding_rate.json")
    fake_binance.serve("/api/v5/public/funding-rate", payload)

    async def both(v: OkxVenue) -> tuple[pl.DataFrame, dict[str, Any]]:
        snap = await v.fetch_snapshot(())
        theirs = await v.client.fetch_funding_rates(["BTC/USDT:USDT", "ETH/USDT:USDT"])
        return snap.frames["funding_snapshot"], theirs

    ours, theirs = run(fake_binance, both)
    assert ours["instrument"].to_list() == ["BTC-USDT-PERP", "ETH-USDT-PERP"]
    for row in ours.iter_rows(named=True):
        t = theirs[f"{row['instrument'].split('-')[0]}/USDT:USDT"]
        assert row["rate"] == t["fundingRate"]
        assert row["predicted_rate"] == t["nextFundingRate"]
        assert ms(row["next_funding_ts"]) == t["fundingTimestamp"]
        assert f"{row['interval_h']:g}h" == t["interval"] == "8h"
    assert ours["mark_px"].to_list() == [40_000.0, 2_000.0]  # the fake's mark-price answer


def test_open_interest_history_agrees_with_ccxt(fake_binance: FakeBinance) -> None:
    payload = load("rubik_open_interest_history.json")
    fake_binance.serve("/api/v5/rubik/stat/contracts/open-interest-history", payload)
    start = 1_767_214_800_000

    async def both(v: OkxVenue) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
        ours = await v.fetch_history(BTC, parse_stream("oi:1h"), start, start + 3 * HOUR, None)
        theirs = await v.client.fetch_open_interest_history("BTC/USDT:USDT", "1h", start, 3)
        return ours.frame, sorted(theirs, key=lambda r: r["timestamp"])

    ours, theirs = run(fake_binance, both)
    assert ours.height == len(theirs) == 3
    for row, t in zip(ours.iter_rows(named=True), theirs, strict=True):
        assert ms(row["ts"]) == t["timestamp"]
        assert row["oi_value"] == t["openInterestAmount"]  # contracts
        assert row["oi_base"] == t["baseVolume"]
        assert row["oi_usd"] == t["openInterestValue"]


def test_long_short_ratio_agrees_with_ccxt(fake_binance: FakeBinance) -> None:
    payload = load("rubik_long_short.json")
    fake_binance.serve("/api/v5/rubik/stat/contracts/long-short-account-ratio-contract", payload)
    start = 1_767_214_800_000

    async def both(v: OkxVenue) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
        stream = parse_stream("long_short:global_account:1h")
        ours = await v.fetch_history(BTC, stream, start, start + 3 * HOUR, None)
        theirs = await v.client.fetch_long_short_ratio_history("BTC/USDT:USDT", "1h", start, 3)
        return ours.frame, sorted(theirs, key=lambda r: r["timestamp"])

    ours, theirs = run(fake_binance, both)
    assert ours.height == len(theirs) == 3
    assert [ms(t) for t in ours["ts"]] == [t["timestamp"] for t in theirs]
    assert ours["long_short_ratio"].to_list() == [t["longShortRatio"] for t in theirs]


def test_position_tiers_agree_with_ccxt_times_the_contract_size(fake_binance: FakeBinance) -> None:
    fake_binance.serve("/api/v5/public/position-tiers", load("public_position_tiers.json"))

    async def both(v: OkxVenue) -> tuple[pl.DataFrame, list[dict[str, Any]], float]:
        ours = await v.fetch_tiers(BTC)
        theirs = await v.client.fetch_market_leverage_tiers("BTC/USDT:USDT")
        return ours, theirs, v.client.market("BTC/USDT:USDT")["contractSize"]

    ours, theirs, size = run(fake_binance, both)
    assert size == 0.01  # the fake's BTC-USDT-SWAP
    assert ours["tier"].to_list() == [t["tier"] for t in theirs]
    # ccxt passes OKX's contract counts through as "notional"; we state them in coin
    assert ours["notional_floor_usd"].to_list() == [t["minNotional"] * size for t in theirs]
    assert ours["notional_cap_usd"].to_list() == [t["maxNotional"] * size for t in theirs]
    assert set(ours["bound_unit"]) == {"base"}
    assert ours["mmr"].to_list() == [t["maintenanceMarginRate"] for t in theirs]
    assert ours["max_leverage"].to_list() == [t["maxLeverage"] for t in theirs]


def test_instruments_agree_with_ccxt_markets(fake_binance: FakeBinance) -> None:
    async def both(v: OkxVenue) -> tuple[pl.DataFrame, dict[str, Any]]:
        return await v.fetch_instruments(), v.client.markets

    ours, markets = run(fake_binance, both)
    assert ours.height == 3
    for row in ours.iter_rows(named=True):
        m = markets[f"{row['base']}/USDT:USDT"]
        assert m["id"] == row["venue_symbol"]
        assert m["contractSize"] == row["contract_size"]  # ctMult is 1 on the fake
        assert m["precision"]["price"] == row["tick_size_px"]
        assert m["precision"]["amount"] == row["lot_size"]
        assert m["swap"]
        assert m["linear"]
