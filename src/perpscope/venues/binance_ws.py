"""Binance USDⓈ-M futures live feed: ``forceOrder``, ``aggTrade`` and ``markPrice@1s``.

One combined-stream connection (``/stream?streams=a/b/c``) carries every stream of the followed
symbols; each frame is ``{"stream": name, "data": event}``.

- ``forceOrder``: a liquidation ORDER; its side ``S`` is the order's side, so ``SELL`` closes (is
  the liquidation of) a LONG and ``BUY`` a short. Binance sends at most one per symbol per second
  (the latest), so totals are a lower bound. Price: the average fill price ``ap`` (the order price
  ``p`` when nothing filled yet); quantity: the filled quantity ``z`` (else ``q``). The event has
  no id: :func:`~perpscope.venues.ws.event_id` hashes symbol, trade time, side, prices and sizes.
- ``aggTrade``: ``m`` true means the buyer was the maker, so the TAKER SOLD; aggregate trade ids
  ``a`` are consecutive per symbol, so a skipped id is a gap and a repeated one a replay.
- ``markPriceUpdate``: mark ``p``, index ``i``, funding rate ``r``, next settlement ``T``.
"""

from __future__ import annotations

from typing import Any, Final

from perpscope.domain.symbols import Instrument
from perpscope.venues._ws_common import WsWire
from perpscope.venues.binance import CAPABILITIES
from perpscope.venues.binance_parse import venue_symbol
from perpscope.venues.ws import FrameSink, WsEndpoint, event_id, rewrite_ws_url

__all__ = ["BINANCE_SPOT_WS_URL", "BINANCE_WS_URL", "BinanceFeed"]

BINANCE_WS_URL: Final = "wss://fstream.binance.com"
BINANCE_SPOT_WS_URL: Final = "wss://stream.binance.com:9443"
_W: Final = WsWire("binance ws", "event for symbol")
_INF: Final = float("inf")


class BinanceFeed:
    """The live feed of some Binance USDⓈ-M perpetuals, or (``spot=True``) the aggregate trades
    of some spot pairs (spot has no liquidations or mark price: only ``aggTrade``, same shape)."""

    venue = "binance"

    def __init__(self, instruments: tuple[Instrument, ...], *, spot: bool = False) -> None:
        self._instruments = instruments
        self._spot = spot
        self._canonical = {venue_symbol(i): str(i) for i in instruments}
        self.sampled: str | None = None if spot else CAPABILITIES.liquidation_feed_sampled

    @property
    def instruments(self) -> tuple[Instrument, ...]:
        """The instruments the feed follows."""
        return self._instruments

    def endpoint(self, base_url: str | None) -> WsEndpoint:
        """The combined-stream URL of every followed symbol's streams."""
        names = []
        for symbol in self._canonical:
            s = symbol.lower()
            if self._spot:
                names.append(f"{s}@aggTrade")
            else:
                names += [f"{s}@forceOrder", f"{s}@aggTrade", f"{s}@markPrice@1s"]
        host = BINANCE_SPOT_WS_URL if self._spot else BINANCE_WS_URL
        url = f"{host}/stream?streams={'/'.join(names)}"
        return WsEndpoint(rewrite_ws_url(url, base_url))

    def parse(self, frame: str | bytes, sink: FrameSink) -> int:
        """Parse one combined-stream frame (see the module docstring)."""
        doc = _W.load(frame)
        data = doc.get("data", doc)
        if not isinstance(data, dict):
            raise _W.fail("frame data is not an object")
        kind = data.get("e")
        if kind is None:  # a subscription ack ({"result": null, "id": 1}) or an error
            if "code" in data and "msg" in data:
                raise _W.fail(f"venue error {data['code']}: {data['msg']}")
            return 0
        try:
            if kind == "aggTrade":
                return self._agg_trade(data, sink)
            if kind == "forceOrder":
                return self._force_order(data, sink)
            if kind == "markPriceUpdate":
                return self._mark_price(data, sink)
        except KeyError as exc:
            raise _W.fail(f"{kind} event lacks field {exc}") from None
        return 0  # another event type: not ours to store

    def _agg_trade(self, d: dict[str, Any], sink: FrameSink) -> int:
        inst = self._canonical.get(d["s"]) or _W.instrument(self._canonical, d["s"], "aggTrade")
        agg_id = d["a"]
        ts = d["T"]
        if type(agg_id) is not int or type(ts) is not int:
            raise _W.fail(f"aggTrade id {agg_id!r} or time {ts!r} is not an integer")
        try:
            qty = float(d["q"])
        except (TypeError, ValueError):
            qty = _W.num(d["q"], "q")  # raises, naming the field
        if qty != qty or qty == _INF:
            qty = _W.num(d["q"], "q")
        sink.trade(inst, ts, qty, not d["m"], agg_id, agg_id)
        return 1

    def _force_order(self, d: dict[str, Any], sink: FrameSink) -> int:
        o = d["o"]
        if not isinstance(o, dict):
            raise _W.fail("forceOrder field o is not an object")
        inst = _W.instrument(self._canonical, o["s"], "forceOrder")
        side = {"SELL": "long", "BUY": "short"}.get(o["S"])
        if side is None:
            raise _W.fail(f"forceOrder side {o['S']!r} is not BUY or SELL")
        ts = o["T"]
        if not isinstance(ts, int):
            raise _W.fail(f"forceOrder time {ts!r} is not an integer")
        avg = _W.num(o.get("ap", 0), "ap")
        px = avg if avg > 0 else _W.num(o["p"], "p")
        filled = _W.num(o.get("z", 0), "z")
        qty = filled if filled > 0 else _W.num(o["q"], "q")
        eid = event_id(o["s"], ts, o["S"], o["p"], o.get("ap"), o["q"], o.get("z"))
        sink.liquidation(inst, ts, eid, side, px, qty)
        return 1

    def _mark_price(self, d: dict[str, Any], sink: FrameSink) -> int:
        inst = _W.instrument(self._canonical, d["s"], "markPriceUpdate")
        ts = d["E"]
        if not isinstance(ts, int):
            raise _W.fail(f"markPriceUpdate time {ts!r} is not an integer")
        nxt = d.get("T")
        sink.tick(
            inst,
            ts,
            _W.opt(d, "r"),
            nxt if isinstance(nxt, int) and nxt > 0 else None,
            _W.num(d["p"], "p"),
            _W.opt(d, "i"),
            None,
        )
        return 1
