"""The live-feed parsers on single frames in the venues' documented shapes.

The Binance forceOrder frame is Binance's documented example (also in the shared
``samples/doc_examples_NOT_REAL/binance/ws_liquidation_stream.json``); expected values are read off
the frame by hand.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from perpscope.domain.symbols import parse_instrument
from perpscope.errors import DataContractError
from perpscope.venues.binance_ws import BinanceFeed
from perpscope.venues.bybit_ws import BybitFeed
from perpscope.venues.ws import event_id, rewrite_ws_url

BTC = (parse_instrument("BTC-USDT-PERP"),)
BTC_SPOT = (parse_instrument("BTC-USDT"),)


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []

    def liquidation(self, *a: Any) -> None:
        self.events.append(("liquidation", a))

    def trade(self, *a: Any) -> None:
        self.events.append(("trade", a))

    def tick(self, *a: Any) -> None:
        self.events.append(("tick", a))


FORCE_ORDER = {
    "e": "forceOrder", "E": 1568014460893,
    "o": {"s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "0.014",
          "p": "9910.00000000", "ap": "9910.12345678", "X": "FILLED", "l": "0.014", "z": "0.014",
          "T": 1568014460893},
}  # fmt: skip


def test_binance_force_order_sell_is_a_long_liquidated_at_the_average_fill() -> None:
    sink = Sink()
    frame = json.dumps({"stream": "btcusdt@forceOrder", "data": FORCE_ORDER})
    assert BinanceFeed(BTC).parse(frame, sink) == 1
    kind, (inst, ts, eid, side, px, qty) = sink.events[0]
    assert (kind, inst, ts, side, px, qty) == (
        "liquidation",
        "BTC-USDT-PERP",
        1568014460893,
        "long",
        9910.12345678,
        0.014,
    )
    assert eid == event_id("BTCUSDT", 1568014460893, "SELL", "9910.00000000", "9910.12345678",
                           "0.014", "0.014")  # fmt: skip
    # the same event on another connection parses to the same id; a BUY is a short liquidated
    again = Sink()
    BinanceFeed(BTC).parse(frame, again)
    assert again.events[0][1][2] == eid
    buy = {**FORCE_ORDER, "o": {**FORCE_ORDER["o"], "S": "BUY", "ap": "0", "z": "0"}}  # type: ignore[dict-item]
    BinanceFeed(BTC).parse(json.dumps({"data": buy}), again)
    assert again.events[1][1][3:] == ("short", 9910.0, 0.014)  # nothing filled: order price, size


def test_binance_agg_trade_maker_buyer_is_a_taker_sell_and_mark_price_is_a_tick() -> None:
    sink = Sink()
    feed = BinanceFeed(BTC)
    feed.parse('{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":2,"s":"BTCUSDT","a":7,'
               '"p":"100.5","q":"0.25","f":1,"l":2,"T":1,"m":true}}', sink)  # fmt: skip
    feed.parse('{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,'
               '"s":"BTCUSDT","p":"11794.15","i":"11784.62","P":"11784.25","r":"0.00038167",'
               '"T":1562306400000}}', sink)  # fmt: skip
    assert sink.events == [
        ("trade", ("BTC-USDT-PERP", 1, 0.25, False, 7, 7)),
        ("tick", ("BTC-USDT-PERP", 1562305380000, 0.00038167, 1562306400000, 11794.15, 11784.62,
                  None)),
    ]  # fmt: skip
    assert feed.parse('{"result":null,"id":1}', sink) == 0  # a subscription ack
    with pytest.raises(DataContractError, match="ETHUSDT.*not subscribed"):
        feed.parse('{"data":{"e":"aggTrade","s":"ETHUSDT","a":1,"T":1,"q":"1","m":true}}', sink)
    with pytest.raises(DataContractError, match="frame is not JSON"):
        feed.parse("{", sink)


def test_bybit_buy_liquidation_is_a_long_and_ticker_deltas_merge() -> None:
    sink = Sink()
    feed = BybitFeed(BTC)
    feed.parse('{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1739502303000,"data":'
               '[{"T":1739502302929,"s":"BTCUSDT","S":"Buy","v":"0.5","p":"96000.5"},'
               '{"T":1739502302930,"s":"BTCUSDT","S":"Sell","v":"1","p":"96001"}]}',
               sink)  # fmt: skip
    assert [e[1][3] for e in sink.events] == ["long", "short"]
    assert sink.events[0][1][4:] == (96000.5, 0.5)
    feed.parse('{"topic":"tickers.BTCUSDT","type":"snapshot","ts":10,"data":{"symbol":"BTCUSDT",'
               '"markPrice":"17217.33","indexPrice":"17227.36","fundingRate":"-0.000212",'
               '"nextFundingTime":"1673280000000","fundingIntervalHour":"8"}}', sink)  # fmt: skip
    feed.parse('{"topic":"tickers.BTCUSDT","type":"delta","ts":11,"data":{"symbol":"BTCUSDT",'
               '"markPrice":"17218"}}', sink)  # fmt: skip
    assert sink.events[-1] == (
        "tick",
        ("BTC-USDT-PERP", 11, -0.000212, 1673280000000, 17218.0, 17227.36, 8.0),
    )
    assert feed.parse('{"success":true,"ret_msg":"pong","op":"ping"}', sink) == 0
    with pytest.raises(DataContractError, match="venue refused"):
        feed.parse('{"success":false,"ret_msg":"error:handler not found","op":"subscribe"}', sink)


def test_spot_feeds_connect_to_the_spot_hosts_and_follow_trades_only() -> None:
    binance = BinanceFeed(BTC_SPOT, spot=True).endpoint(None)
    assert binance.url == "wss://stream.binance.com:9443/stream?streams=btcusdt@aggTrade"
    assert BinanceFeed(BTC_SPOT, spot=True).sampled is None
    bybit = BybitFeed(BTC_SPOT, spot=True).endpoint("ws://127.0.0.1:9")
    assert bybit.url == "ws://127.0.0.1:9/v5/public/spot"
    assert json.loads(bybit.subscribe[0]) == {"op": "subscribe", "args": ["publicTrade.BTCUSDT"]}
    sink = Sink()
    BybitFeed(BTC_SPOT, spot=True).parse(
        '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":5,"data":[{"T":4,"s":"BTCUSDT",'
        '"S":"Sell","v":"0.002","p":"16578.5","L":"PlusTick","i":"abc","BT":false}]}', sink
    )  # fmt: skip
    assert sink.events == [("trade", ("BTC-USDT", 4, 0.002, False, None, "abc"))]
    assert rewrite_ws_url("wss://fstream.binance.com/stream?streams=a", "ws://h:1/") == (
        "ws://h:1/stream?streams=a"
    )
