"""Bybit v5 linear live feed: ``allLiquidation``, ``publicTrade`` and ``tickers``.

One connection to ``/v5/public/linear``; topics are subscribed with ``{"op": "subscribe"}`` and the
client must send ``{"op": "ping"}`` every 20 seconds or the venue drops it.

- ``allLiquidation.<symbol>``: ``S`` is the side of the LIQUIDATED POSITION (``Buy`` = a long was
  liquidated), size ``v`` in base units, price ``p``; every liquidation is sent (no sampling).
  There is no event id: :func:`~perpscope.venues.ws.event_id` hashes symbol, time, side, size and
  price (two liquidations equal in all of these within one millisecond are stored once).
- ``publicTrade.<symbol>``: ``S`` is the TAKER's side, size ``v`` in base units, trade id ``i`` (a
  UUID, not ordered: gaps are known only from reconnects).
- ``tickers.<symbol>``: a snapshot, then deltas holding only changed fields; the feed keeps the
  merged state per symbol and reports mark/index price, funding rate, next settlement and
  interval on every frame (a malformed delta is skipped and not merged).

A frame's rows are reported only when every one of them is valid: one malformed row skips the
whole frame (:class:`~perpscope.venues._ws_common.FrameEvents`).
"""

from __future__ import annotations

import json
from typing import Any, Final

from perpscope.domain.symbols import Instrument
from perpscope.venues._ws_common import FrameEvents, WsWire
from perpscope.venues.bybit_parse import venue_symbol
from perpscope.venues.ws import FrameSink, WsEndpoint, event_id, rewrite_ws_url

__all__ = ["BYBIT_SPOT_WS_URL", "BYBIT_WS_URL", "BybitFeed"]

BYBIT_WS_URL: Final = "wss://stream.bybit.com/v5/public/linear"
BYBIT_SPOT_WS_URL: Final = "wss://stream.bybit.com/v5/public/spot"
_W: Final = WsWire("bybit ws", "frame for symbol")


class BybitFeed:
    """The live feed of some Bybit linear perpetuals, or (``spot=True``) the trades of some spot
    pairs (``/v5/public/spot``, ``publicTrade`` only, same shape)."""

    venue = "bybit"
    sampled: str | None = None

    def __init__(self, instruments: tuple[Instrument, ...], *, spot: bool = False) -> None:
        self._instruments = instruments
        self._spot = spot
        self._canonical = {
            (f"{i.base}{i.quote}" if spot else venue_symbol(i)): str(i) for i in instruments
        }
        self._tickers: dict[str, dict[str, Any]] = {}

    @property
    def instruments(self) -> tuple[Instrument, ...]:
        """The instruments the feed follows."""
        return self._instruments

    def endpoint(self, base_url: str | None) -> WsEndpoint:
        """The linear public endpoint, one subscribe frame and the 20-second ping."""
        kinds = ("publicTrade",) if self._spot else ("allLiquidation", "publicTrade", "tickers")
        topics = [f"{kind}.{symbol}" for symbol in self._canonical for kind in kinds]
        sub = json.dumps({"op": "subscribe", "args": topics})
        url = BYBIT_SPOT_WS_URL if self._spot else BYBIT_WS_URL
        return WsEndpoint(rewrite_ws_url(url, base_url), (sub,), json.dumps({"op": "ping"}), 20.0)

    def parse(self, frame: str | bytes, sink: FrameSink) -> int:
        """Parse one frame (see the module docstring)."""
        doc = _W.load(frame)
        topic = doc.get("topic")
        if topic is None:  # op replies: subscribe acks, pongs
            if doc.get("success") is False:
                raise _W.fail(f"venue refused: {doc.get('ret_msg')!r}")
            return 0
        kind, _, symbol = str(topic).partition(".")
        try:
            if kind == "publicTrade":
                return self._trades(symbol, doc["data"], sink)
            if kind == "allLiquidation":
                return self._liquidations(symbol, doc["data"], sink)
            if kind == "tickers":
                return self._ticker(symbol, doc, sink)
        except KeyError as exc:
            raise _W.fail(f"{kind} frame lacks field {exc}") from None
        return 0

    def _trades(self, symbol: str, data: Any, sink: FrameSink) -> int:
        inst = _W.instrument(self._canonical, symbol, "publicTrade")
        events = FrameEvents()
        for r in _W.rows(data, "publicTrade"):
            side = r["S"]
            if side not in ("Buy", "Sell"):
                raise _W.fail(f"publicTrade side {side!r} is not Buy or Sell")
            ts = _W.ms(r["T"], "publicTrade")
            events.trade(inst, ts, _W.num(r["v"], "v"), side == "Buy", None, str(r["i"]))
        return events.report(sink)

    def _liquidations(self, symbol: str, data: Any, sink: FrameSink) -> int:
        inst = _W.instrument(self._canonical, symbol, "allLiquidation")
        events = FrameEvents()
        for r in _W.rows(data, "allLiquidation"):
            side = {"Buy": "long", "Sell": "short"}.get(r["S"])
            if side is None:
                raise _W.fail(f"allLiquidation side {r['S']!r} is not Buy or Sell")
            ts = _W.ms(r["T"], "allLiquidation")
            eid = event_id(r.get("s", symbol), ts, r["S"], r["v"], r["p"])
            events.liquidation(inst, ts, eid, side, _W.num(r["p"], "p"), _W.num(r["v"], "v"))
        return events.report(sink)

    def _ticker(self, symbol: str, doc: dict[str, Any], sink: FrameSink) -> int:
        inst = _W.instrument(self._canonical, symbol, "tickers")
        data = doc["data"]
        if not isinstance(data, dict):
            raise _W.fail("tickers data is not an object")
        merged = self._tickers.get(symbol)
        if doc.get("type") == "snapshot" or merged is None:
            state = dict(data)
        else:
            state = {**merged, **data}
        nxt = state.get("nextFundingTime")
        sink.tick(
            inst,
            _W.ms(doc["ts"], "tickers"),
            _W.opt(state, "fundingRate"),
            _W.ms(nxt, "tickers") or None if nxt not in (None, "") else None,
            _W.opt(state, "markPrice"),
            _W.opt(state, "indexPrice"),
            _W.opt(state, "fundingIntervalHour"),
        )
        self._tickers[symbol] = state  # kept only once valid: a bad delta leaves no trace
        return 1
