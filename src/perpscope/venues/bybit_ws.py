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
  interval on every frame.
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

from perpscope.domain.symbols import Instrument
from perpscope.errors import DataContractError
from perpscope.venues.bybit_parse import venue_symbol
from perpscope.venues.ws import FrameSink, WsEndpoint, event_id, num, rewrite_ws_url

__all__ = ["BYBIT_SPOT_WS_URL", "BYBIT_WS_URL", "BybitFeed"]

BYBIT_WS_URL: Final = "wss://stream.bybit.com/v5/public/linear"
BYBIT_SPOT_WS_URL: Final = "wss://stream.bybit.com/v5/public/spot"
_WHERE: Final = "bybit ws"


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
        try:
            doc = orjson.loads(frame)
        except (ValueError, TypeError) as exc:
            raise DataContractError(f"{_WHERE}: frame is not JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise DataContractError(f"{_WHERE}: frame is a {type(doc).__name__}, not an object")
        topic = doc.get("topic")
        if topic is None:  # op replies: subscribe acks, pongs
            if doc.get("success") is False:
                raise DataContractError(f"{_WHERE}: venue refused: {doc.get('ret_msg')!r}")
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
            raise DataContractError(f"{_WHERE}: {kind} frame lacks field {exc}") from None
        return 0

    def _instrument(self, symbol: Any, kind: str) -> str:
        try:
            return self._canonical[symbol]
        except KeyError:
            raise DataContractError(
                f"{_WHERE}: {kind} frame for symbol {symbol!r}, which was not subscribed"
            ) from None

    @staticmethod
    def _rows(data: Any, kind: str) -> list[dict[str, Any]]:
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DataContractError(f"{_WHERE}: {kind} data is not a list of objects")
        return data

    @staticmethod
    def _ms(value: Any, kind: str) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
        raise DataContractError(f"{_WHERE}: {kind} time {value!r} is not epoch milliseconds")

    def _trades(self, symbol: str, data: Any, sink: FrameSink) -> int:
        inst = self._instrument(symbol, "publicTrade")
        rows = self._rows(data, "publicTrade")
        for r in rows:
            side = r["S"]
            if side not in ("Buy", "Sell"):
                raise DataContractError(f"{_WHERE}: publicTrade side {side!r} is not Buy or Sell")
            sink.trade(
                inst,
                self._ms(r["T"], "publicTrade"),
                num(r["v"], "v", _WHERE),
                side == "Buy",
                None,
                str(r["i"]),
            )
        return len(rows)

    def _liquidations(self, symbol: str, data: Any, sink: FrameSink) -> int:
        inst = self._instrument(symbol, "allLiquidation")
        rows = self._rows(data, "allLiquidation")
        for r in rows:
            side = {"Buy": "long", "Sell": "short"}.get(r["S"])
            if side is None:
                raise DataContractError(
                    f"{_WHERE}: allLiquidation side {r['S']!r} is not Buy or Sell"
                )
            ts = self._ms(r["T"], "allLiquidation")
            eid = event_id(r.get("s", symbol), ts, r["S"], r["v"], r["p"])
            sink.liquidation(
                inst, ts, eid, side, num(r["p"], "p", _WHERE), num(r["v"], "v", _WHERE)
            )
        return len(rows)

    def _ticker(self, symbol: str, doc: dict[str, Any], sink: FrameSink) -> int:
        inst = self._instrument(symbol, "tickers")
        data = doc["data"]
        if not isinstance(data, dict):
            raise DataContractError(f"{_WHERE}: tickers data is not an object")
        if doc.get("type") == "snapshot" or symbol not in self._tickers:
            state = self._tickers[symbol] = dict(data)
        else:
            state = self._tickers[symbol]
            state.update(data)

        def opt(key: str) -> float | None:
            value = state.get(key)
            return None if value in (None, "") else num(value, key, _WHERE)

        nxt = state.get("nextFundingTime")
        sink.tick(
            inst,
            self._ms(doc["ts"], "tickers"),
            opt("fundingRate"),
            self._ms(nxt, "tickers") or None if nxt not in (None, "") else None,
            opt("markPrice"),
            opt("indexPrice"),
            opt("fundingIntervalHour"),
        )
        return 1
