"""Deribit live feed over JSON-RPC: ``trades.{instrument}.100ms`` and ``ticker.{instrument}.100ms``.

One connection to ``/ws/api/v2``. After connecting the client sends ``public/set_heartbeat``
(interval 30 s) and ``public/subscribe`` (``{"channels": [...]}``); the answer to the subscribe
lists the channels subscribed, and an ``error`` answer (``{"code", "message"}``) or a channel
missing from the list is a refusal (the stream stops with that message). With heartbeats set,
Deribit sends ``{"method": "heartbeat", "params": {"type": "test_request"}}`` and closes the
connection unless the client answers with ``public/test``: :meth:`DeribitFeed.answer` does, as
soon as the frame arrives. Notifications are ``{"method": "subscription", "params": {"channel",
"data"}}``.

- ``trades``: a list of ``{trade_seq, trade_id, timestamp, price, amount, direction,
  liquidation?}``; ``direction`` is the TAKER's side. ``trade_seq`` numbers an instrument's trades
  consecutively, so a skipped number is a gap and a repeated one a replay. ``amount`` is in USD
  for the inverse perpetuals (``BTC-PERPETUAL``: base = amount / price) and in base coin for the
  linear ones (``BTC_USDC-PERPETUAL``). The ``.100ms`` channels batch every trade (the ``.raw``
  ones need an authorised connection).
- Liquidations are not a channel of their own: a trade with ``liquidation`` ``"M"`` had its maker
  liquidated, ``"T"`` its taker, ``"MT"`` both. The liquidated position is the one the trade
  closed: a taker who sold (or a maker who sold, the taker having bought) was LONG. ``"MT"`` is
  two liquidations of the trade's size, one long and one short. Ids: ``trade_id`` and the role.
- ``ticker``: ``{timestamp, mark_price, index_price, current_funding}``; ``current_funding`` is
  the rate accruing now, quoted per 8 h (Deribit funds continuously: no settlement time).
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

from perpscope.domain.symbols import Instrument, InstrumentKind
from perpscope.venues._ws_common import FrameEvents, WsWire
from perpscope.venues.deribit_parse import venue_symbol
from perpscope.venues.ws import FrameSink, SubscriptionRefused, WsEndpoint, event_id, rewrite_ws_url

__all__ = ["DERIBIT_WS_URL", "DeribitFeed"]

DERIBIT_WS_URL: Final = "wss://www.deribit.com/ws/api/v2"
_W: Final = WsWire("deribit ws", "notification for", "timestamp", digit_times=False)
_HEARTBEAT_ID: Final = 1
_SUBSCRIBE_ID: Final = 2
_TEST_ID: Final = 3
_HEARTBEAT_S: Final = 30
_TEST: Final = json.dumps({"jsonrpc": "2.0", "id": _TEST_ID, "method": "public/test",
                           "params": {}}, separators=(",", ":"))  # fmt: skip


class DeribitFeed:
    """The live feed of some Deribit perpetuals (inverse BTC-USD-PERP, linear BTC-USDC-PERP)."""

    venue = "deribit"
    sampled: str | None = None
    trade_ids = "trade_seq numbers"

    def __init__(self, instruments: tuple[Instrument, ...]) -> None:
        bad = [str(i) for i in instruments if i.kind is not InstrumentKind.PERP]
        if bad:
            raise ValueError(f"Deribit live feeds follow perpetuals only, not {', '.join(bad)}")
        self._instruments = instruments
        self._canonical = {venue_symbol(i): str(i) for i in instruments}
        self._inverse = {venue_symbol(i): i.quote == "USD" for i in instruments}
        self._channels = tuple(
            f"{kind}.{name}.100ms" for name in self._canonical for kind in ("trades", "ticker")
        )

    @property
    def instruments(self) -> tuple[Instrument, ...]:
        """The instruments the feed follows."""
        return self._instruments

    def endpoint(self, base_url: str | None) -> WsEndpoint:
        """The API endpoint, the heartbeat and subscribe requests, and the heartbeat answer."""
        heartbeat = {"jsonrpc": "2.0", "id": _HEARTBEAT_ID, "method": "public/set_heartbeat",
                     "params": {"interval": _HEARTBEAT_S}}  # fmt: skip
        subscribe = {"jsonrpc": "2.0", "id": _SUBSCRIBE_ID, "method": "public/subscribe",
                     "params": {"channels": list(self._channels)}}  # fmt: skip
        frames = tuple(json.dumps(f, separators=(",", ":")) for f in (heartbeat, subscribe))
        return WsEndpoint(rewrite_ws_url(DERIBIT_WS_URL, base_url), frames, None, 20.0,
                          answer=self.answer)  # fmt: skip

    @staticmethod
    def answer(frame: str | bytes) -> str | None:
        """``public/test`` for a heartbeat ``test_request``, else nothing (cheap on data)."""
        text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
        if "test_request" not in text or '"heartbeat"' not in text:
            return None
        try:
            doc = orjson.loads(text)
        except ValueError:
            return None
        params = doc.get("params") if isinstance(doc, dict) else None
        if (
            doc.get("method") == "heartbeat"
            and isinstance(params, dict)
            and (params.get("type") == "test_request")
        ):
            return _TEST
        return None

    def parse(self, frame: str | bytes, sink: FrameSink) -> int:
        """Parse one frame (see the module docstring)."""
        doc = _W.load(frame)
        method = doc.get("method")
        if method is None:  # an answer to one of our requests
            return self._answer(doc)
        if method == "heartbeat":
            return 0
        if method != "subscription":
            return 0
        params = doc.get("params")
        if not isinstance(params, dict):
            raise _W.fail("subscription params is not an object")
        channel = str(params.get("channel"))
        kind, _, rest = channel.partition(".")
        name = rest.rpartition(".")[0]
        try:
            if kind == "trades":
                return self._trades(name, params["data"], sink)
            if kind == "ticker":
                return self._ticker(name, params["data"], sink)
        except KeyError as exc:
            raise _W.fail(f"{kind} data lacks field {exc}") from None
        return 0

    def _answer(self, doc: dict[str, Any]) -> int:
        error = doc.get("error")
        if error is not None:
            detail = error if not isinstance(error, dict) else (
                f"code {error.get('code')}: {error.get('message')}"
            )  # fmt: skip
            if doc.get("id") in (_SUBSCRIBE_ID, _HEARTBEAT_ID):
                raise SubscriptionRefused(f"{_W.where}: venue refused the subscription: {detail}")
            raise _W.fail(f"venue error: {detail}")
        if doc.get("id") == _SUBSCRIBE_ID:
            result = doc.get("result")
            got = set(result) if isinstance(result, list) else set()
            missing = [c for c in self._channels if c not in got]
            if missing:
                raise SubscriptionRefused(f"{_W.where}: venue refused the subscription of "
                                          f"{', '.join(missing)}")  # fmt: skip
        return 0

    def _trades(self, name: str, data: Any, sink: FrameSink) -> int:
        inst = _W.instrument(self._canonical, name, "trades")
        rows = _W.rows(data, "trades")
        inverse = self._inverse[name]
        events = FrameEvents()
        for r in rows:
            direction = r["direction"]
            if direction not in ("buy", "sell"):
                raise _W.fail(f"trades direction {direction!r} is not buy or sell")
            seq = r["trade_seq"]
            if type(seq) is not int:
                raise _W.fail(f"trades trade_seq {seq!r} is not an integer")
            ts = _W.ms(r["timestamp"], "trades")
            px = _W.price(r, "price", "trades")
            amount = _W.num(r["amount"], "amount")
            qty = amount / px if inverse else amount
            flag = r.get("liquidation")
            if flag not in (None, "M", "T", "MT"):
                raise _W.fail(f"trades liquidation {flag!r} is not M, T or MT")
            events.trade(inst, ts, qty, direction == "buy", seq, seq)
            for role in flag or "":
                # the role's own side: the taker's is `direction`, the maker's the opposite
                sold = (direction == "sell") == (role == "T")
                eid = event_id(name, r.get("trade_id"), seq, role)
                events.liquidation(inst, ts, eid, "long" if sold else "short", px, qty)
        return events.report(sink)

    def _ticker(self, name: str, data: Any, sink: FrameSink) -> int:
        inst = _W.instrument(self._canonical, name, "ticker")
        if not isinstance(data, dict):
            raise _W.fail("ticker data is not an object")

        def opt(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else _W.num(value, key)

        sink.tick(inst, _W.ms(data["timestamp"], "ticker"), opt("current_funding"), None,
                  opt("mark_price"), opt("index_price"), 8.0)  # fmt: skip
        return 1
