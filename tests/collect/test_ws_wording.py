"""Each venue's frame errors, worded as before the checks were shared (``venues/_ws_common.py``):
every expected text here was read off the per-venue parsers as they were before the refactor,
and the tests pass on both."""

from __future__ import annotations

import json
import re

import pytest

from perpscope.domain.symbols import parse_instrument
from perpscope.errors import DataContractError
from perpscope.venues.binance_ws import BinanceFeed
from perpscope.venues.bybit_ws import BybitFeed
from perpscope.venues.deribit_ws import DeribitFeed
from perpscope.venues.okx_ws import OkxFeed
from perpscope.venues.ws import StreamFeed
from tests.collect.test_stream_okx_deribit import _Sink

_PERP = (parse_instrument("BTC-USDT-PERP"),)
_INVERSE = (parse_instrument("BTC-USD-PERP"),)
_TS = 1_793_620_830_000


def _okx_trade(**row: object) -> str:
    base = {"instId": "BTC-USDT-SWAP", "tradeId": "1", "px": "60000", "sz": "1", "side": "buy",
            "ts": str(_TS)}  # fmt: skip
    return json.dumps({"arg": {"channel": "trades"}, "data": [{**base, **row}]})


def _deribit_trade(name: str = "BTC-PERPETUAL", **row: object) -> str:
    base = {"trade_seq": 1, "timestamp": _TS, "price": 50000.0, "amount": 10.0,
            "direction": "buy"}  # fmt: skip
    params = {"channel": f"trades.{name}.100ms", "data": [{**base, **row}]}
    return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": params})


def _bybit_trade(symbol: str = "BTCUSDT", **row: object) -> str:
    base = {"T": _TS, "s": symbol, "S": "Buy", "v": "1", "p": "60000", "i": "a"}
    return json.dumps({"topic": f"publicTrade.{symbol}", "data": [{**base, **row}]})


_CASES = [
    (BinanceFeed(_PERP), '{"data":{"e":"aggTrade","s":"ETHUSDT","a":1,"T":1,"q":"1","m":true}}',
     "binance ws: aggTrade event for symbol 'ETHUSDT', which was not subscribed"),
    (BinanceFeed(_PERP), "[1]", "binance ws: frame is a list, not an object"),
    (BybitFeed(_PERP), _bybit_trade("ETHUSDT"),
     "bybit ws: publicTrade frame for symbol 'ETHUSDT', which was not subscribed"),
    (BybitFeed(_PERP), _bybit_trade(T="1.5"),
     "bybit ws: publicTrade time '1.5' is not epoch milliseconds"),
    (BybitFeed(_PERP), '{"topic":"publicTrade.BTCUSDT","data":{}}',
     "bybit ws: publicTrade data is not a list of objects"),
    (OkxFeed(_PERP), _okx_trade(instId="ETH-USDT-SWAP"),
     "okx ws: trades row for 'ETH-USDT-SWAP', which was not subscribed"),
    (OkxFeed(_PERP), _okx_trade(ts=True), "okx ws: trades time True is not epoch milliseconds"),
    (OkxFeed(_PERP), _okx_trade(px="0"), "okx ws: trades px '0' is not positive"),
    (OkxFeed(_PERP), '{"arg":{"channel":"liquidation-orders"},"data":[{"instId":'
     '"BTC-USDT-SWAP","details":{}}]}',
     "okx ws: liquidation-orders details is not a list of objects"),
    (DeribitFeed(_INVERSE), _deribit_trade("ETH-PERPETUAL"),
     "deribit ws: trades notification for 'ETH-PERPETUAL', which was not subscribed"),
    # Deribit sends integers: a string of digits is refused, unlike Bybit and OKX
    (DeribitFeed(_INVERSE), _deribit_trade(timestamp=str(_TS)),
     f"deribit ws: trades timestamp '{_TS}' is not epoch milliseconds"),
    (DeribitFeed(_INVERSE), _deribit_trade(price=-1),
     "deribit ws: trades price -1 is not positive"),
    (DeribitFeed(_INVERSE), _deribit_trade(amount="x"),
     "deribit ws: field amount is 'x', not a number"),
]  # fmt: skip


@pytest.mark.parametrize(("feed", "frame", "message"), _CASES)
def test_a_malformed_frame_is_one_error_worded_as_before(
    feed: StreamFeed, frame: str, message: str
) -> None:
    sink = _Sink()
    with pytest.raises(DataContractError, match=f"^{re.escape(message)}$"):
        feed.parse(frame, sink)
    assert (sink.trades, sink.liqs, sink.ticks) == ([], [], [])
