"""A frame's rows are stored only when every row is valid, on every venue's live stream.

Bybit's ``publicTrade`` and ``allLiquidation`` frames carry several rows; a frame with one
malformed row must report none of them (the parser used to report the rows before the bad one)
and be logged once as a malformed frame. The frames here are written by hand in Bybit's
documented v5 format (``tests/fakews/frames.py`` makes the replayed session the same way); the
expected totals are the session's own truth, summed independently of the collector.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perpscope.errors import DataContractError
from perpscope.store.lake import Lake
from perpscope.venues.bybit_ws import BybitFeed
from perpscope.venues.okx_ws import OkxFeed
from tests.collect.test_stream import BTC, _expected_minutes, _ms, _run
from tests.collect.test_stream_okx_deribit import OKX_BTC, _Sink
from tests.fakews.frames import bybit_session
from tests.fakews.server import FakeWsServer, Script

_TS = 1_793_620_830_100


def _frame(topic: str, rows: list[dict[str, object]]) -> str:
    return json.dumps({"topic": f"{topic}.BTCUSDT", "type": "snapshot", "ts": _TS, "data": rows})


def test_a_bybit_trade_frame_with_one_malformed_row_reports_none_of_its_rows() -> None:
    feed = BybitFeed(BTC)
    sink = _Sink()
    good = {"T": _TS, "s": "BTCUSDT", "S": "Buy", "v": "0.5", "p": "68000", "i": "t-1"}
    rows = [good, {**good, "i": "t-2"}, {**good, "v": "abc", "i": "t-3"}]
    with pytest.raises(DataContractError, match=r"^bybit ws: field v is 'abc', not a number$"):
        feed.parse(_frame("publicTrade", rows), sink)
    assert sink.trades == []  # the two good rows before the bad one were not reported either
    # the same frame without its bad row reports both rows, taker side from S (Buy: bought)
    assert feed.parse(_frame("publicTrade", rows[:2]), sink) == 2
    assert sink.trades == [("BTC-USDT-PERP", _TS, 0.5, True, None, "t-1"),
                           ("BTC-USDT-PERP", _TS, 0.5, True, None, "t-2")]  # fmt: skip


def test_a_bybit_liquidation_frame_with_one_malformed_row_reports_none_of_its_rows() -> None:
    feed = BybitFeed(BTC)
    sink = _Sink()
    good = {"T": _TS, "s": "BTCUSDT", "S": "Buy", "v": "0.5", "p": "68000"}
    bad_side = [good, {**good, "S": "Hold"}]
    with pytest.raises(DataContractError, match="allLiquidation side 'Hold' is not Buy or Sell"):
        feed.parse(_frame("allLiquidation", bad_side), sink)
    missing_price = [good, {k: v for k, v in good.items() if k != "p"}]
    with pytest.raises(DataContractError, match="allLiquidation frame lacks field 'p'"):
        feed.parse(_frame("allLiquidation", missing_price), sink)
    bad_time = [good, {**good, "T": "soon"}]
    with pytest.raises(DataContractError, match="time 'soon' is not epoch milliseconds"):
        feed.parse(_frame("allLiquidation", bad_time), sink)
    assert sink.liqs == []
    # Buy is a liquidated long (Bybit's S names the position); 0.5 BTC at 68000
    assert feed.parse(_frame("allLiquidation", [good]), sink) == 1
    assert [liq[3:] for liq in sink.liqs] == [("long", 68000.0, 0.5)]


def test_an_okx_funding_frame_with_one_malformed_row_reports_no_tick() -> None:
    feed = OkxFeed(OKX_BTC)
    sink = _Sink()
    row = {"instId": "BTC-USDT-SWAP", "fundingRate": "0.0001", "fundingTime": "1793635200000",
           "nextFundingTime": "1793664000000", "ts": "1793620830000"}  # fmt: skip
    frame = {"arg": {"channel": "funding-rate", "instId": "BTC-USDT-SWAP"},
             "data": [row, {**row, "ts": "-1"}]}  # fmt: skip
    with pytest.raises(DataContractError, match="time '-1' is not epoch milliseconds"):
        feed.parse(json.dumps(frame), sink)
    assert sink.ticks == []
    frame["data"] = [row]
    assert feed.parse(json.dumps(frame), sink) == 1
    # interval: (1793664000000 - 1793635200000) ms = 28,800,000 ms = 8 h
    assert sink.ticks == [("BTC-USDT-PERP", 1793620830000, 0.0001, 1793635200000, None, None,
                           8.0)]  # fmt: skip


def test_a_bybit_stream_stores_none_of_a_broken_frames_rows_and_logs_it_once(
    tmp_path: Path,
) -> None:
    session = bybit_session(240)
    expected = _expected_minutes(session)
    minute = sorted(expected)[0]  # a minute that is stored whole
    ts = minute + 30_000
    at = next(i for i, t in enumerate(session.times) if t * 1000 >= ts)
    # a good row first (1000 BTC bought: it would show in that minute's volume), then a bad one
    trade = {"T": ts, "s": "BTCUSDT", "S": "Buy", "v": "1000.000", "p": "68000.0", "i": "x-1"}
    liq = {"T": ts + 1, "s": "BTCUSDT", "S": "Sell", "v": "77.000", "p": "68000.0"}
    broken = {
        at: _frame("publicTrade", [trade, {**trade, "i": "x-2", "v": "NaN"}]),
        at + 1: _frame("allLiquidation", [liq, {**liq, "S": "Hold"}]),
    }
    lake = Lake(tmp_path / "store")
    logs: list[str] = []
    script = Script(session.times, session.frames, malformed_at=broken, subscribe=True)
    with FakeWsServer(script) as server:
        report = _run(BybitFeed(BTC), lake, server, session, logs)
    bad = [m for m in logs if "malformed frame skipped" in m]
    assert report.malformed == 2
    assert bad == [
        "bybit stream: malformed frame skipped: bybit ws: field v is 'NaN', not a finite number",
        "bybit stream: malformed frame skipped: bybit ws: allLiquidation side 'Hold' is not Buy "
        "or Sell",
    ]
    liqs = lake.read("liquidations")
    assert liqs.height == len(session.liquidations)
    assert ts + 1 not in _ms(liqs)
    assert 77.0 not in liqs["qty_base"].to_list()
    taker = lake.read("taker_volume").sort("ts")
    assert _ms(taker) == list(expected)
    # summed from the session's own trades: the broken frame's good row added nothing
    assert taker["buy_volume_base"].to_list() == pytest.approx([b for b, _ in expected.values()])
    assert taker["sell_volume_base"].to_list() == pytest.approx([s for _, s in expected.values()])


def test_a_malformed_ticker_delta_is_not_merged_into_the_next_ticks() -> None:
    bybit = BybitFeed(BTC)
    sink = _Sink()
    snapshot = {
        "topic": "tickers.BTCUSDT",
        "type": "snapshot",
        "ts": 10,
        "data": {
            "symbol": "BTCUSDT",
            "markPrice": "68000",
            "indexPrice": "67990",
            "fundingRate": "0.0001",
            "nextFundingTime": "1793635200000",
            "fundingIntervalHour": "8",
        },
    }
    bad = {
        "topic": "tickers.BTCUSDT",
        "type": "delta",
        "ts": 11,
        "data": {"symbol": "BTCUSDT", "markPrice": "abc"},
    }
    good = {"topic": "tickers.BTCUSDT", "type": "delta", "ts": 12,
            "data": {"symbol": "BTCUSDT", "indexPrice": "67995"}}  # fmt: skip
    assert bybit.parse(json.dumps(snapshot), sink) == 1
    with pytest.raises(DataContractError, match="field markPrice is 'abc', not a number"):
        bybit.parse(json.dumps(bad), sink)
    assert bybit.parse(json.dumps(good), sink) == 1
    # the mark price is still the snapshot's: the bad delta left nothing behind
    assert sink.ticks[-1] == ("BTC-USDT-PERP", 12, 0.0001, 1793635200000, 68000.0, 67995.0, 8.0)
    okx = OkxFeed(OKX_BTC)
    rate = {"instId": "BTC-USDT-SWAP", "fundingRate": "0.0002", "fundingTime": "1793635200000",
            "nextFundingTime": "1793664000000", "ts": "1793620830000"}  # fmt: skip
    okx.parse(json.dumps({"arg": {"channel": "funding-rate"}, "data": [rate]}), sink)
    broken = [{**rate, "fundingRate": "0.0009"}, {**rate, "fundingRate": "x"}]
    with pytest.raises(DataContractError, match="field fundingRate is 'x', not a number"):
        okx.parse(json.dumps({"arg": {"channel": "funding-rate"}, "data": broken}), sink)
    mark = {"instId": "BTC-USDT-SWAP", "markPx": "68001", "ts": "1793620831000"}
    assert okx.parse(json.dumps({"arg": {"channel": "mark-price"}, "data": [mark]}), sink) == 1
    # neither row of the broken frame was merged: the rate is the first frame's 0.0002
    assert sink.ticks[-1] == ("BTC-USDT-PERP", 1793620831000, 0.0002, 1793635200000, 68001.0,
                              None, 8.0)  # fmt: skip
