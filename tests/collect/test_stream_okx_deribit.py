"""OKX and Deribit live streams against the fake WebSocket server (127.0.0.1).

Expected totals come from the generated sessions' own truth (``tests/fakews/frames.py``: every
liquidation with its side as the documented fields state it, every trade converted to base coin
with the documented contract size or price) and per-minute taker volume summed by a plain loop
(:func:`minute_sums`), independently of the collector. The golden-frame tests below use frames
written by hand from the venues' documented formats; each expected side is worked out in a
comment from the documented meaning of the fields.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import polars as pl
import pytest

from perpscope.collect.retry import RetryPolicy
from perpscope.collect.stream import StreamOptions, StreamReport, StreamState, collect_stream
from perpscope.domain.symbols import parse_instrument
from perpscope.errors import DataContractError
from perpscope.store.lake import Lake
from perpscope.venues.deribit_ws import DeribitFeed
from perpscope.venues.okx_ws import OkxFeed
from perpscope.venues.ws import StreamFeed, SubscriptionRefused, TradeHistory
from tests.collect.test_stream import _expected_minutes, _ms, _run, _until_last
from tests.fakews.frames import Session, deribit_session, okx_session
from tests.fakews.server import FakeWsServer, Script, load_recording

OKX_BTC = (parse_instrument("BTC-USDT-PERP"),)
DERIBIT_BTC = (parse_instrument("BTC-USD-PERP"),)


async def _collect_with_rest(
    feed: StreamFeed, lake: Lake, server: FakeWsServer, session: Session, rest: TradeHistory
) -> StreamReport:
    """Collect ``feed`` with gaps filled from ``rest`` (closed at the end)."""

    async def fetch(inst: str, start: int, end: int) -> list[tuple[int, int, float, bool]]:
        return await rest.fetch_trades(feed.instruments[0], start, end)

    options = StreamOptions(
        duration_s=120.0, flush_s=0.2, stop_when=_until_last(session),
        policy=RetryPolicy(attempts=5, base_s=0.01, cap_s=0.05),
    )  # fmt: skip
    try:
        return await collect_stream(feed, lake, options, base_url=server.url, fetch_trades=fetch)
    finally:
        await rest.close()


class _Sink:
    """Records what a parser reports (a plain list per callback)."""

    def __init__(self) -> None:
        self.liqs: list[tuple[str, int, str, str, float, float]] = []
        self.trades: list[tuple[str, int, float, bool, int | None, str | int]] = []
        self.ticks: list[tuple[object, ...]] = []

    def liquidation(self, *a: object) -> None:
        self.liqs.append(a)  # type: ignore[arg-type]

    def trade(self, *a: object) -> None:
        self.trades.append(a)  # type: ignore[arg-type]

    def tick(self, *a: object) -> None:
        self.ticks.append(a)


# ---------------------------------------------------------------------------------- OKX


def test_okx_replay_stores_every_liquidation_once_across_a_forced_reconnect(
    tmp_path: Path,
) -> None:
    session = okx_session(600)
    cut = len(session.frames) // 2
    # 600 s at 600x; the connection is dropped halfway and the server resends 150 frames
    script = Script(session.times, session.frames, speed=600.0, disconnect_at=(cut,),
                    rewind=150, subscribe=True, protocol="okx")  # fmt: skip
    lake = Lake(tmp_path / "store")
    logs: list[str] = []
    with FakeWsServer(script) as server:
        report = _run(OkxFeed(OKX_BTC), lake, server, session, logs)
        assert server.log.connections == 2
        assert server.log.subscribes[0] == [
            {"channel": "instruments", "instType": "SWAP"},
            {"channel": "liquidation-orders", "instType": "SWAP"},
            {"channel": "trades", "instId": "BTC-USDT-SWAP"},
            {"channel": "funding-rate", "instId": "BTC-USDT-SWAP"},
            {"channel": "mark-price", "instId": "BTC-USDT-SWAP"},
        ]
    assert report.reconnects == 1
    assert report.error is None
    assert report.duplicate_liquidations >= 1  # the rewound frames held liquidations again ...
    liq = lake.read("liquidations").sort("ts", "event_id")
    truth = sorted(session.liquidations, key=lambda r: r[1])
    assert liq.height == len(truth) > 100  # ... stored once; ETH's (not followed) not at all
    assert set(liq["instrument"]) == {"BTC-USDT-PERP"}
    assert liq["event_id"].n_unique() == liq.height
    by_ts = {(t, round(q, 6)): (s, p) for _, t, s, p, q in truth}
    got = {(t, round(q, 6)): (s, p) for t, q, s, p in zip(
        _ms(liq), liq["qty_base"], liq["side"], liq["px"], strict=True)}  # fmt: skip
    assert got == by_ts  # sides from posSide, sizes = contracts x 0.01 BTC
    assert report.gaps == []  # the replayed trades overlapped: nothing was lost
    taker = lake.read("taker_volume").sort("ts")
    expected = _expected_minutes(session)
    assert _ms(taker) == list(expected)
    assert taker["buy_volume_base"].to_list() == pytest.approx([b for b, _ in expected.values()])
    assert taker["sell_volume_base"].to_list() == pytest.approx([s for _, s in expected.values()])
    ticks = lake.read("funding_snapshot").sort("ts")
    assert ticks.height == 11  # one per minute touched (12:00:30 .. 12:10:29)
    assert ticks["rate"].to_list() == [0.0001] * 11
    assert ticks["interval_h"].to_list() == [8.0] * 11  # nextFundingTime - fundingTime
    # the first tick of each minute is a funding-rate frame: its mark is the previous frame's
    assert ticks["mark_px"].null_count() == 1  # only the very first, before any mark-price


def test_okx_lost_frames_at_a_reconnect_are_a_recorded_gap(tmp_path: Path) -> None:
    session = okx_session(240)
    cut = len(session.frames) // 2
    keep = [i for i in range(len(session.frames)) if not cut <= i < cut + 30]
    script = Script([session.times[i] for i in keep], [session.frames[i] for i in keep],
                    speed=240.0, disconnect_at=(cut,), subscribe=True,
                    protocol="okx")  # fmt: skip
    lake = Lake(tmp_path / "store")
    with FakeWsServer(script) as server:
        report = _run(OkxFeed(OKX_BTC), lake, server, session, [])
    assert len(report.gaps) == 1
    assert report.gaps[0].reason.startswith("reconnect (the venue's trade ids are not ordered")
    notes = lake.read("collect_cursor").filter(pl.col("stream") == "ws:trades")["note"]
    assert notes[0].startswith("gap ")


def test_okx_text_pings_are_sent_and_pongs_are_not_malformed(tmp_path: Path) -> None:
    session = okx_session(60)
    script = Script(session.times, session.frames, speed=20.0, subscribe=True, protocol="okx")
    feed = OkxFeed(OKX_BTC)
    original = feed.endpoint

    def fast_ping(base_url: str | None):  # type: ignore[no-untyped-def]
        ep = original(base_url)
        assert ep.ping == "ping"
        assert ep.ping_every_s < 30  # OKX drops a connection idle for 30 s
        return type(ep)(ep.url, ep.subscribe, ep.ping, 0.5)

    feed.endpoint = fast_ping  # type: ignore[method-assign]
    with FakeWsServer(script) as server:
        report = _run(feed, Lake(tmp_path / "s"), server, session, [])
        assert server.log.pings >= 2
    assert report.malformed == 0


def test_okx_refused_subscription_stops_the_stream_with_one_error(tmp_path: Path) -> None:
    session = okx_session(30)
    msg = 'Invalid request: {"channel":"trades","instId":"NOPE-USDT-SWAP"}'
    script = Script(session.times, session.frames, subscribe=True, protocol="okx", refuse=msg)
    logs: list[str] = []
    lake = Lake(tmp_path / "s")
    with FakeWsServer(script) as server:
        report = _run(OkxFeed(OKX_BTC), lake, server, session, logs)
        assert server.log.connections == 1  # a refusal is not retried
    assert report.error == f"okx ws: venue refused the subscription: code 60018: {msg}"
    assert report.reconnects == 0
    assert logs == []  # the caller prints the error, once
    assert not lake.exists() or not lake.has_table("liquidations")


def test_okx_golden_frames_map_sides_and_sizes() -> None:
    """Frames written by hand from OKX's v5 docs (liquidation-orders, trades, instruments)."""
    feed = OkxFeed((parse_instrument("BTC-USDT-PERP"), parse_instrument("BTC-USD-PERP")))
    sink = _Sink()
    liq = {"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [
        {"instId": "BTC-USDT-SWAP", "instType": "SWAP", "details": [
            # posSide long, order side sell: a LONG was liquidated
            {"side": "sell", "posSide": "long", "bkPx": "60000", "sz": "250", "bkLoss": "0",
             "ts": "1793620830100"},
            # net mode: posSide "net", the buy order closes a SHORT
            {"side": "buy", "posSide": "net", "bkPx": "60100", "sz": "10", "bkLoss": "0",
             "ts": "1793620830200"}]},
        {"instId": "BTC-USD-SWAP", "instType": "SWAP", "details": [
            {"side": "buy", "posSide": "short", "bkPx": "50000", "sz": "30", "bkLoss": "0",
             "ts": "1793620830300"}]}]}  # fmt: skip
    # before the instruments list, sizes are unknown: the events are held, not guessed
    assert feed.parse(json.dumps(liq), sink) == 0
    assert sink.liqs == []
    instruments = {
        "arg": {"channel": "instruments", "instType": "SWAP"},
        "data": [
            {"instId": "BTC-USDT-SWAP", "ctVal": "0.01", "ctMult": "1", "ctType": "linear"},
            {"instId": "BTC-USD-SWAP", "ctVal": "100", "ctMult": "1", "ctType": "inverse"},
        ],
    }
    assert feed.parse(json.dumps(instruments), sink) == 3
    assert [(i, t, s, p, q) for i, t, _e, s, p, q in sink.liqs] == [
        ("BTC-USDT-PERP", 1793620830100, "long", 60000.0, pytest.approx(2.5)),  # 250 x 0.01
        ("BTC-USDT-PERP", 1793620830200, "short", 60100.0, pytest.approx(0.1)),  # 10 x 0.01
        ("BTC-USD-PERP", 1793620830300, "short", 50000.0, pytest.approx(0.06)),  # 30x100/50000
    ]
    trades = {"arg": {"channel": "trades", "instId": "BTC-USDT-SWAP"}, "data": [
        {"instId": "BTC-USDT-SWAP", "tradeId": "42", "px": "60000", "sz": "3", "side": "sell",
         "ts": "1793620830400", "count": "2"}]}  # fmt: skip
    assert feed.parse(json.dumps(trades), sink) == 1
    # side is the taker's: a sell; 3 contracts of 0.01 BTC
    assert sink.trades == [("BTC-USDT-PERP", 1793620830400, pytest.approx(0.03), False, None,
                            "BTC-USDT-SWAP:42")]  # fmt: skip
    assert feed.parse("pong", sink) == 0
    ack = {"event": "subscribe", "arg": {"channel": "trades", "instId": "BTC-USDT-SWAP"}}
    assert feed.parse(json.dumps(ack), sink) == 0
    with pytest.raises(SubscriptionRefused, match="code 60012: Invalid request"):
        feed.parse('{"event":"error","code":"60012","msg":"Invalid request"}', sink)
    with pytest.raises(DataContractError, match="trades side 'hold' is not buy or sell"):
        feed.parse(json.dumps(trades).replace('"sell"', '"hold"'), sink)


def test_okx_malformed_frames_are_counted_and_leave_no_partial_rows(tmp_path: Path) -> None:
    session = okx_session(60)
    broken = {
        20: "",  # half of the next frame: truncated JSON
        40: '{"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":'
        '"BTC-USDT-SWAP","tradeId":"1","px":"1","side":"buy","ts":"1793620831000"}]}',
        60: '{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":'
        '"BTC-USDT-SWAP","details":[{"side":"sell","posSide":"long","bkPx":"-5","sz":"1",'
        '"ts":"1793620831000"}]}]}',
    }
    lake = Lake(tmp_path / "store")
    logs: list[str] = []
    script = Script(session.times, session.frames, malformed_at=broken, subscribe=True,
                    protocol="okx")  # fmt: skip
    with FakeWsServer(script) as server:
        report = _run(OkxFeed(OKX_BTC), lake, server, session, logs)
    assert report.malformed == 3
    bad = [m for m in logs if "malformed frame skipped" in m]
    assert len(bad) == 3
    assert "lacks field 'sz'" in bad[1]
    assert "bkPx '-5' is not positive" in bad[2]
    liq = lake.read("liquidations")
    assert liq.height == len(session.liquidations)  # none of the broken frame's
    assert (liq["px"] > 0).all()


def test_okx_real_recorded_spot_trades_replay_and_parse(tmp_path: Path, shared_data: Path) -> None:
    # a real cryptofeed recording of OKX's v5 public socket (2022-05-13): the BTC-USDT spot
    # trade frames, replayed unchanged to a spot feed; the expected volume is summed by a plain
    # loop over the frames' own fields
    times, frames = load_recording(shared_data / "samples/cryptofeed_recordings/OKX.ws.1.0.gz",
                                   contains='"channel":"trades","instId":"BTC-USDT"}')  # fmt: skip
    frames_with_data = [f for f in frames if '"data"' in f]
    times = [t for t, f in zip(times, frames, strict=True) if '"data"' in f]
    assert len(frames_with_data) >= 5
    rows = [r for f in frames_with_data for r in json.loads(f)["data"]]
    feed = OkxFeed((parse_instrument("BTC-USDT"),), spot=True)
    sink = _Sink()
    for f in frames_with_data:
        feed.parse(f, sink)
    assert len(sink.trades) == len(rows)
    assert sum(q for _i, _t, q, *_ in sink.trades) == pytest.approx(
        sum(float(r["sz"]) for r in rows)
    )
    assert [b for *_x, b, _id, _k in sink.trades] == [r["side"] == "buy" for r in rows]
    # the fake acknowledges the feed's subscribe as OKX does (one event frame per channel)
    with FakeWsServer(Script(times, frames_with_data, protocol="okx")) as server:
        report = asyncio.run(
            collect_stream(
                feed, Lake(tmp_path / "s"),
                StreamOptions(duration_s=60.0, stop_when=lambda r: r.events >= len(rows)),
                base_url=server.url,
            )
        )  # fmt: skip
    assert report.trades == len(rows)
    assert report.malformed == 0


# ---------------------------------------------------------------------------------- Deribit


def test_deribit_replay_stores_every_liquidation_once_and_answers_heartbeats(
    tmp_path: Path,
) -> None:
    session = deribit_session(600)
    cut = len(session.frames) // 2
    script = Script(session.times, session.frames, speed=600.0, disconnect_at=(cut,),
                    rewind=150, subscribe=True, protocol="deribit")  # fmt: skip
    lake = Lake(tmp_path / "store")
    with FakeWsServer(script) as server:
        report = _run(DeribitFeed(DERIBIT_BTC), lake, server, session, [])
        assert server.log.connections == 2
        assert server.log.subscribes[0] == ["trades.BTC-PERPETUAL.100ms",
                                            "ticker.BTC-PERPETUAL.100ms"]  # fmt: skip
        assert server.log.test_requests >= 4
        # every test_request got its public/test (the last may be in flight at the stop)
        assert server.log.tests >= server.log.test_requests - 1
    assert report.error is None
    assert report.reconnects == 1
    assert report.duplicate_liquidations >= 1
    liq = lake.read("liquidations")
    truth = session.liquidations
    assert liq.height == len(truth) > 50
    got = sorted(zip(_ms(liq), liq["side"], liq["px"], [round(q, 9) for q in liq["qty_base"]],
                     strict=True))  # fmt: skip
    assert got == sorted((t, s, p, round(q, 9)) for _, t, s, p, q in truth)
    assert report.gaps == []  # trade_seq proves the reconnect lost nothing
    taker = lake.read("taker_volume").sort("ts")
    expected = _expected_minutes(session)
    assert _ms(taker) == list(expected)
    assert taker["buy_volume_base"].to_list() == pytest.approx([b for b, _ in expected.values()])
    assert taker["sell_volume_base"].to_list() == pytest.approx([s for _, s in expected.values()])
    ticks = lake.read("funding_snapshot")
    assert ticks.height == 11
    assert ticks["rate"].to_list() == [0.00002] * 11
    assert ticks["interval_h"].to_list() == [8.0] * 11


def test_deribit_lost_trades_are_named_by_trade_seq(tmp_path: Path) -> None:
    session = deribit_session(240)
    cut = 300
    lost = range(cut, cut + 20)
    seqs = [r["trade_seq"] for i in lost if "trades." in session.frames[i]
            for r in json.loads(session.frames[i])["params"]["data"]]  # fmt: skip
    keep = [i for i in range(len(session.frames)) if i not in lost]
    # replayed at 240x (one second), so the frames before the cut are read before it: an
    # aborted connection loses what was still in flight, as a real one does
    script = Script([session.times[i] for i in keep], [session.frames[i] for i in keep],
                    speed=240.0, disconnect_at=(cut,), subscribe=True,
                    protocol="deribit")  # fmt: skip
    lake = Lake(tmp_path / "store")
    with FakeWsServer(script) as server:
        report = _run(DeribitFeed(DERIBIT_BTC), lake, server, session, [])
    assert len(report.gaps) == 1
    assert report.gaps[0].reason == f"trade_seq numbers {seqs[0]}-{seqs[-1]} missing"


def test_deribit_refused_subscription_stops_the_stream_with_one_error(tmp_path: Path) -> None:
    session = deribit_session(30)
    script = Script(session.times, session.frames, subscribe=True, protocol="deribit",
                    refuse="invalid_params")  # fmt: skip
    with FakeWsServer(script) as server:
        report = _run(DeribitFeed(DERIBIT_BTC), Lake(tmp_path / "s"), server, session, [])
        assert server.log.connections == 1
    assert report.error == ("deribit ws: venue refused the subscription: code 10001: "
                            "invalid_params")  # fmt: skip


def test_deribit_golden_frames_map_liquidation_flags_to_sides() -> None:
    """Frames written by hand from Deribit's ``trades.{instrument}.{interval}`` docs: ``direction``
    is the taker's side; ``liquidation`` names who was liquidated (M maker, T taker, MT both)."""
    feed = DeribitFeed((parse_instrument("BTC-USD-PERP"), parse_instrument("ETH-USDC-PERP")))
    sink = _Sink()

    def note(name: str, rows: list[dict[str, object]]) -> str:
        return json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {
            "channel": f"trades.{name}.100ms", "data": rows}})  # fmt: skip

    rows = [
        # taker sold and the TAKER was liquidated: the seller was long -> long
        {"trade_seq": 10, "trade_id": "A", "timestamp": 1793620830000, "price": 50000.0,
         "amount": 1000.0, "direction": "sell", "liquidation": "T"},
        # taker sold, the MAKER (the buyer) was liquidated: a buyer closing is short -> short
        {"trade_seq": 11, "trade_id": "B", "timestamp": 1793620830001, "price": 50000.0,
         "amount": 500.0, "direction": "sell", "liquidation": "M"},
        # taker bought, maker liquidated: the maker sold, was long -> long
        {"trade_seq": 12, "trade_id": "C", "timestamp": 1793620830002, "price": 40000.0,
         "amount": 2000.0, "direction": "buy", "liquidation": "M"},
        # both: one long and one short
        {"trade_seq": 13, "trade_id": "D", "timestamp": 1793620830003, "price": 40000.0,
         "amount": 400.0, "direction": "buy", "liquidation": "MT"},
        {"trade_seq": 14, "trade_id": "E", "timestamp": 1793620830004, "price": 40000.0,
         "amount": 40.0, "direction": "buy"},
    ]  # fmt: skip
    assert feed.parse(note("BTC-PERPETUAL", rows), sink) == 5 + 5
    # inverse: amount is USD, base = amount / price (1000 / 50000 = 0.02 BTC)
    assert [(s, p, q) for _i, _t, _e, s, p, q in sink.liqs] == [
        ("long", 50000.0, pytest.approx(0.02)),
        ("short", 50000.0, pytest.approx(0.01)),
        ("long", 40000.0, pytest.approx(0.05)),
        ("long", 40000.0, pytest.approx(0.01)),  # MT, the maker (seller)
        ("short", 40000.0, pytest.approx(0.01)),  # MT, the taker (buyer)
    ]
    assert len({e for _i, _t, e, *_ in sink.liqs}) == 5
    assert [(b, i) for _n, _t, _q, b, i, _k in sink.trades] == [
        (False, 10),
        (False, 11),
        (True, 12),
        (True, 13),
        (True, 14),
    ]
    # linear USDC perpetual: amount is in the coin already
    sink.trades.clear()
    feed.parse(
        note(
            "ETH_USDC-PERPETUAL",
            [
                {
                    "trade_seq": 1,
                    "trade_id": "X",
                    "timestamp": 1793620830000,
                    "price": 3000.0,
                    "amount": 1.5,
                    "direction": "buy",
                }
            ],
        ),
        sink,
    )
    assert sink.trades[0][:4] == ("ETH-USDC-PERP", 1793620830000, 1.5, True)
    with pytest.raises(DataContractError, match="liquidation 'X' is not M, T or MT"):
        feed.parse(note("BTC-PERPETUAL", [{**rows[0], "liquidation": "X"}]), sink)
    assert DeribitFeed.answer('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":'
                              '"test_request"}}') == (
        '{"jsonrpc":"2.0","id":3,"method":"public/test","params":{}}')  # fmt: skip
    assert DeribitFeed.answer('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":'
                              '"heartbeat"}}') is None  # fmt: skip


def test_deribit_subscribe_answer_missing_a_channel_is_a_refusal() -> None:
    feed = DeribitFeed(DERIBIT_BTC)
    state = StreamState("deribit", StreamReport("deribit", ["BTC-USD-PERP"]))
    with pytest.raises(SubscriptionRefused, match="refused the subscription of "
                       "ticker.BTC-PERPETUAL.100ms"):  # fmt: skip
        feed.parse('{"jsonrpc":"2.0","id":2,"result":["trades.BTC-PERPETUAL.100ms"]}', state)
    assert feed.parse('{"jsonrpc":"2.0","id":2,"result":["trades.BTC-PERPETUAL.100ms",'
                      '"ticker.BTC-PERPETUAL.100ms"]}', state) == 0  # fmt: skip


def test_a_frame_with_one_bad_row_reports_none_of_its_rows() -> None:
    okx = OkxFeed(OKX_BTC)
    sink = _Sink()
    size = {"instId": "BTC-USDT-SWAP", "ctVal": "0.01", "ctMult": "1", "ctType": "linear"}
    sizes = {"arg": {"channel": "instruments", "instType": "SWAP"}, "data": [size]}
    okx.parse(json.dumps(sizes), sink)
    good = {"side": "sell", "posSide": "long", "bkPx": "60000", "sz": "5", "ts": "1793620830100"}
    frame = {"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": [
        {"instId": "BTC-USDT-SWAP", "details": [good, {**good, "bkPx": "abc"}]}]}  # fmt: skip
    with pytest.raises(DataContractError, match="field bkPx is 'abc', not a number"):
        okx.parse(json.dumps(frame), sink)
    assert sink.liqs == []  # the good first row was not reported either
    deribit = DeribitFeed(DERIBIT_BTC)
    row = {"trade_seq": 1, "trade_id": "A", "timestamp": 1793620830000, "price": 50000.0,
           "amount": 10.0, "direction": "sell", "liquidation": "T"}  # fmt: skip
    rows = [row, {**row, "trade_seq": "2"}]
    note = {"jsonrpc": "2.0", "method": "subscription",
            "params": {"channel": "trades.BTC-PERPETUAL.100ms", "data": rows}}  # fmt: skip
    with pytest.raises(DataContractError, match="trade_seq '2' is not an integer"):
        deribit.parse(json.dumps(note), sink)
    assert sink.trades == []
    assert sink.liqs == []


def test_a_deribit_gap_is_filled_from_rest_trades(tmp_path: Path) -> None:
    from perpscope.venues.deribit_trades import DeribitTradeHistory

    session = deribit_session(240)
    cut = 300  # as above: 20 frames (~40 trades, some liquidations) lost at a dropped connection
    keep = [i for i in range(len(session.frames)) if not cut <= i < cut + 20]
    # the fake's REST pages hold 50 trades, so a gap's minutes take several pages
    script = Script([session.times[i] for i in keep], [session.frames[i] for i in keep],
                    speed=240.0, disconnect_at=(cut,), subscribe=True, protocol="deribit",
                    deribit_trades=session.agg_trades, deribit_page=50)  # fmt: skip
    lake = Lake(tmp_path / "store")
    with FakeWsServer(script) as server:
        rest = DeribitTradeHistory(api_url=server.http_url)
        report = asyncio.run(
            _collect_with_rest(DeribitFeed(DERIBIT_BTC), lake, server, session, rest)
        )
        asked = [q for q in server.log.rest if "instrument_name" in q]
        assert len(asked) >= 2  # paged
        assert all(q["instrument_name"] == "BTC-PERPETUAL" for q in asked)
    assert len(report.gaps) == 1
    assert report.gaps_filled == 1
    # every whole minute is stored, the gap's summed from REST: equal to the hand-summed truth
    taker = lake.read("taker_volume").sort("ts")
    expected = _expected_minutes(session)
    assert _ms(taker) == list(expected)
    assert taker["buy_volume_base"].to_list() == pytest.approx([b for b, _ in expected.values()])
    assert taker["sell_volume_base"].to_list() == pytest.approx([s for _, s in expected.values()])


def test_an_okx_reconnect_gap_is_filled_from_rest_trades(tmp_path: Path) -> None:
    from perpscope.venues.okx_trades import OkxTradeHistory

    session = okx_session(240)
    cut = len(session.frames) // 2
    keep = [i for i in range(len(session.frames)) if not cut <= i < cut + 30]
    # REST pages of 40 trades (OKX: up to 100), newest first, so the fill pages backwards
    script = Script([session.times[i] for i in keep], [session.frames[i] for i in keep],
                    speed=240.0, disconnect_at=(cut,), subscribe=True, protocol="okx",
                    okx_trades=session.agg_trades)  # fmt: skip
    lake = Lake(tmp_path / "store")
    with FakeWsServer(script) as server:
        rest = OkxTradeHistory(api_url=server.http_url, page=40)
        report = asyncio.run(_collect_with_rest(OkxFeed(OKX_BTC), lake, server, session, rest))
        pages = [q for q in server.log.rest if q.get("type") == "2"]
        assert len(pages) >= 2  # paged backwards by timestamp
        assert all(q["instId"] == "BTC-USDT-SWAP" for q in pages)
    assert len(report.gaps) == 1
    assert report.gaps_filled == 1
    # every whole minute stored; the gap's summed from REST trades (contracts x 0.01 BTC) equal
    # the hand-summed truth
    taker = lake.read("taker_volume").sort("ts")
    expected = _expected_minutes(session)
    assert _ms(taker) == list(expected)
    assert taker["buy_volume_base"].to_list() == pytest.approx([b for b, _ in expected.values()])
    assert taker["sell_volume_base"].to_list() == pytest.approx([s for _, s in expected.values()])
