"""OKX v5 public live feed: ``liquidation-orders``, ``trades``, ``funding-rate``, ``mark-price``.

One connection to ``/ws/v5/public`` (no login); channels are subscribed with ``{"op":
"subscribe", "args": [{"channel": ..., "instId" | "instType": ...}]}``, each acknowledged by
``{"event": "subscribe", "arg": ...}`` or refused by ``{"event": "error", "code", "msg"}`` (the
stream then stops with that message: a refused channel stays refused). OKX closes a connection
that sent nothing for 30 seconds: the client sends the text ``ping`` every 20 seconds and OKX
answers ``pong``. Data frames are ``{"arg": {"channel", ...}, "data": [...]}``.

- ``instruments`` (``instType`` SWAP): the full swap list on subscribing, then changes. Swap
  sizes are in CONTRACTS; a contract is ``ctVal x ctMult`` of ``ctValCcy`` (base coin for a linear
  swap, USD for an inverse one), so the feed needs this list before it can state a size in base
  coin. Events of a swap that arrive before its contract size are held (bounded) and reported
  once it is known.
- ``liquidation-orders`` (``instType`` SWAP, every swap: others are ignored): rows ``{instId,
  details: [{side, posSide, bkPx, sz, bkLoss, ts}]}``. ``side`` is the side of the liquidation
  ORDER and ``posSide`` the side of the liquidated POSITION (``long`` | ``short``); in net mode
  ``posSide`` is ``net`` and the order side decides (a ``sell`` closes a long). Price: the
  bankruptcy price ``bkPx``. There is no event id: :func:`~perpscope.venues.ws.event_id` hashes
  instId, time, sides, price and size.
- ``trades``: ``{instId, tradeId, px, sz, side, ts, count}``; ``side`` is the TAKER's side. OKX
  aggregates the fills of one taker order at one price into one row (``count`` fills), so trade
  ids are not consecutive row to row: a reconnect is a gap unless replayed rows overlap.
- ``funding-rate``: ``{instId, fundingRate, fundingTime (the settlement of that rate),
  nextFundingTime, ts}``; the interval is ``nextFundingTime - fundingTime``. ``mark-price``:
  ``{instId, markPx, ts}``. The feed merges both per swap and reports a tick on each.

Spot pairs (``spot=True``) follow ``trades`` only; their sizes are in base coin already.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Any, Final

from perpscope.domain.symbols import Instrument
from perpscope.venues._ws_common import FrameEvents, WsWire
from perpscope.venues.okx_parse import inst_id
from perpscope.venues.ws import FrameSink, SubscriptionRefused, WsEndpoint, event_id, rewrite_ws_url

__all__ = ["OKX_WS_URL", "OkxFeed"]

OKX_WS_URL: Final = "wss://ws.okx.com:8443/ws/v5/public"
_W: Final = WsWire("okx ws", "row for")
_HELD_CAP: Final = 100_000
_HOUR_MS: Final = 3_600_000


class OkxFeed:
    """The live feed of some OKX perpetual swaps, or (``spot=True``) the trades of spot pairs."""

    venue = "okx"
    sampled: str | None = None
    trade_ids = "trade ids"

    def __init__(self, instruments: tuple[Instrument, ...], *, spot: bool = False) -> None:
        self._instruments = instruments
        self._spot = spot
        self._canonical = {
            (f"{i.base}-{i.quote}" if spot else inst_id(i)): str(i) for i in instruments
        }
        self._size: dict[str, tuple[float, bool]] = (
            {s: (1.0, False) for s in self._canonical} if spot else {}
        )
        """instId -> (base-or-USD per contract, inverse)."""
        self._held: list[tuple[str, Callable[[FrameSink], None]]] = []
        self._ticks: dict[str, dict[str, Any]] = {}

    @property
    def instruments(self) -> tuple[Instrument, ...]:
        """The instruments the feed follows."""
        return self._instruments

    def endpoint(self, base_url: str | None) -> WsEndpoint:
        """The public endpoint, one subscribe frame and the 20-second text ping."""
        args: list[dict[str, str]] = []
        if not self._spot:
            args += [{"channel": "instruments", "instType": "SWAP"},
                     {"channel": "liquidation-orders", "instType": "SWAP"}]  # fmt: skip
        for symbol in self._canonical:
            args.append({"channel": "trades", "instId": symbol})
            if not self._spot:
                args += [{"channel": "funding-rate", "instId": symbol},
                         {"channel": "mark-price", "instId": symbol}]  # fmt: skip
        sub = json.dumps({"op": "subscribe", "args": args}, separators=(",", ":"))
        return WsEndpoint(rewrite_ws_url(OKX_WS_URL, base_url), (sub,), "ping", 20.0)

    def parse(self, frame: str | bytes, sink: FrameSink) -> int:
        """Parse one frame (see the module docstring)."""
        if frame in ("pong", b"pong"):
            return 0
        doc = _W.load(frame)
        event = doc.get("event")
        if event is not None:
            if event == "error":
                raise SubscriptionRefused(
                    f"{_W.where}: venue refused the subscription: code {doc.get('code')}: "
                    f"{doc.get('msg')}"
                )
            return 0  # subscribe acks, notices
        arg = doc.get("arg")
        if not isinstance(arg, dict):
            raise _W.fail("frame has neither 'event' nor an 'arg' object")
        channel = arg.get("channel")
        data = _W.rows(doc.get("data"), channel)
        try:
            if channel == "trades":
                return self._trades(data, sink)
            if channel == "liquidation-orders":
                return self._liquidations(data, sink)
            if channel in ("funding-rate", "mark-price"):
                return self._tick(data, sink)
            if channel == "instruments":
                return self._sizes(data, sink)
        except KeyError as exc:
            raise _W.fail(f"{channel} row lacks field {exc}") from None
        return 0

    # ------------------------------------------------------------------------------ helpers

    def _base(self, symbol: str, contracts: float, px: float) -> float:
        per, inverse = self._size[symbol]
        return contracts * per / px if inverse else contracts * per

    def _emit(self, symbol: str, call: Callable[[FrameSink], None], sink: FrameSink) -> int:
        """Report ``call`` now, or hold it until the swap's contract size is known."""
        if symbol in self._size:
            call(sink)
            return 1
        if len(self._held) >= _HELD_CAP:
            raise _W.fail(
                f"no contract size of {symbol} after {_HELD_CAP} events (the instruments channel "
                "sent no row for it)"
            )
        self._held.append((symbol, call))
        return 0

    def _emit_all(
        self, calls: list[tuple[str, Callable[[FrameSink], None]]], sink: FrameSink
    ) -> int:
        """Report a frame's events once all of them have been checked (no partial frames)."""
        return sum(self._emit(symbol, call, sink) for symbol, call in calls)

    # ------------------------------------------------------------------------------ channels

    def _sizes(self, rows: list[dict[str, Any]], sink: FrameSink) -> int:
        for r in rows:
            symbol = r["instId"]
            if symbol not in self._canonical:
                continue
            ct_type = r.get("ctType")
            if ct_type not in ("linear", "inverse"):
                raise _W.fail(
                    f"instruments ctType {ct_type!r} of {symbol} is not linear or inverse"
                )
            per = _W.num(r["ctVal"], "ctVal") * _W.num(r.get("ctMult", 1), "ctMult")
            if not per > 0:
                raise _W.fail(f"instruments ctVal of {symbol} is {per}")
            self._size[symbol] = (per, ct_type == "inverse")
        if not self._held:
            return 0
        held, self._held = self._held, []
        done = 0
        for symbol, call in held:
            done += self._emit(symbol, call, sink)
        return done

    def _trades(self, rows: list[dict[str, Any]], sink: FrameSink) -> int:
        calls: list[tuple[str, Callable[[FrameSink], None]]] = []
        for r in rows:
            symbol = r["instId"]
            inst = _W.instrument(self._canonical, symbol, "trades")
            side = r["side"]
            if side not in ("buy", "sell"):
                raise _W.fail(f"trades side {side!r} is not buy or sell")
            ts = _W.ms(r["ts"], "trades")
            px = _W.price(r, "px", "trades")
            sz = _W.num(r["sz"], "sz")
            key = f"{symbol}:{r['tradeId']}"
            calls.append((symbol, partial(self._trade, symbol, inst, ts, px, sz, side, key)))
        return self._emit_all(calls, sink)

    def _trade(
        self, symbol: str, inst: str, ts: int, px: float, sz: float, side: str, key: str,
        sink: FrameSink,
    ) -> None:  # fmt: skip
        sink.trade(inst, ts, self._base(symbol, sz, px), side == "buy", None, key)

    def _liquidations(self, rows: list[dict[str, Any]], sink: FrameSink) -> int:
        calls: list[tuple[str, Callable[[FrameSink], None]]] = []
        for r in rows:
            symbol = r["instId"]
            inst = self._canonical.get(symbol)
            if inst is None:
                continue  # the channel carries every swap; we follow some
            for d in _W.rows(r["details"], "liquidation-orders", "details"):
                pos, order = d.get("posSide"), d["side"]
                if pos in ("long", "short"):
                    side = pos
                elif order in ("sell", "buy"):
                    side = "long" if order == "sell" else "short"
                else:
                    raise _W.fail(f"liquidation-orders posSide {pos!r} and side {order!r} name "
                                  "no position side")  # fmt: skip
                ts = _W.ms(d["ts"], "liquidation-orders")
                px = _W.price(d, "bkPx", "liquidation-orders")
                sz = _W.num(d["sz"], "sz")
                eid = event_id(symbol, ts, order, pos, d["bkPx"], d["sz"])
                call = partial(self._liquidation, symbol, inst, ts, eid, side, px, sz)
                calls.append((symbol, call))
        return self._emit_all(calls, sink)

    def _liquidation(
        self, symbol: str, inst: str, ts: int, eid: str, side: str, px: float, sz: float,
        sink: FrameSink,
    ) -> None:  # fmt: skip
        sink.liquidation(inst, ts, eid, side, px, self._base(symbol, sz, px))

    def _tick(self, rows: list[dict[str, Any]], sink: FrameSink) -> int:
        events = FrameEvents()
        merged: dict[str, dict[str, Any]] = {}
        for r in rows:
            symbol = r["instId"]
            inst = _W.instrument(self._canonical, symbol, "funding-rate/mark-price")
            state = merged[symbol] if symbol in merged else dict(self._ticks.get(symbol, {}))
            state.update({k: v for k, v in r.items() if v not in (None, "")})
            merged[symbol] = state
            settle, after = state.get("fundingTime"), state.get("nextFundingTime")
            settle_ms = _W.ms(settle, "funding-rate") if settle is not None else None
            after_ms = _W.ms(after, "funding-rate") if after is not None else None
            interval = (after_ms - settle_ms) / _HOUR_MS if settle_ms and after_ms else None
            events.tick(inst, _W.ms(r["ts"], "funding-rate/mark-price"),
                        _W.opt(state, "fundingRate"), settle_ms, _W.opt(state, "markPx"), None,
                        interval)  # fmt: skip
        self._ticks.update(merged)  # kept only once every row is valid
        return events.report(sink)
