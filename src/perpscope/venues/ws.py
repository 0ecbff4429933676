"""What every venue's live WebSocket feed provides: where to connect, what to send, how to parse.

A venue's stream module turns one raw text frame into calls on a :class:`FrameSink`; it keeps no
state between frames except what the venue's protocol needs (Bybit's ticker deltas). The generic
collector (:mod:`perpscope.collect.stream`) owns connection, reconnects, aggregation and commits,
and never names a venue.

Every callback gets the canonical instrument id and the event time in epoch milliseconds:

- ``liquidation``: ``side`` is the LIQUIDATED POSITION's side (``long`` | ``short``), whatever the
  venue's own convention; ``event_id`` is stable (the same event parses to the same id on every
  connection), so a replayed or repeated event is stored once;
- ``trade``: ``taker_buy`` is True when the taker bought; ``trade_id`` orders a venue's trades when
  its ids are consecutive integers (Binance aggregate trades), else ``None`` (gaps are then known
  only from reconnects); ``dedupe_key`` identifies the trade for the de-duplication of replays;
- ``tick``: the current funding rate, next settlement and mark/index price (any may be ``None``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from perpscope.domain.symbols import Instrument
from perpscope.errors import DataContractError, PermanentVenueError

__all__ = [
    "FrameSink",
    "StreamFeed",
    "SubscriptionRefused",
    "TradeHistory",
    "WsEndpoint",
    "event_id",
    "num",
    "rewrite_ws_url",
]


class SubscriptionRefused(PermanentVenueError):
    """The venue refused a subscription (an unknown instrument or channel): the stream stops with
    this message, since reconnecting would be refused again."""


class FrameSink(Protocol):
    """What a venue parser reports each event of a frame to."""

    def liquidation(
        self,
        instrument: str,
        ts_ms: int,
        event_id: str,
        side: str,
        px: float,
        qty_base: float,
    ) -> None:
        """One liquidation (``side`` = the liquidated position's side)."""
        ...

    def trade(
        self,
        instrument: str,
        ts_ms: int,
        qty_base: float,
        taker_buy: bool,
        trade_id: int | None,
        dedupe_key: str | int,
    ) -> None:
        """One trade (or one aggregate trade)."""
        ...

    def tick(
        self,
        instrument: str,
        ts_ms: int,
        rate: float | None,
        next_funding_ms: int | None,
        mark_px: float | None,
        index_px: float | None,
        interval_h: float | None,
    ) -> None:
        """One mark-price / funding observation."""
        ...


@dataclass(frozen=True, slots=True)
class WsEndpoint:
    """Where to connect and what to send once connected.

    Attributes:
        url: the full WebSocket URL.
        subscribe: text frames to send after connecting (empty when the URL names the streams).
        ping: an application-level ping to send every ``ping_every_s`` (``None``: the venue pings).
        ping_every_s: interval of ``ping``.
        answer: called with every received frame before it is queued; the text it returns is
            sent back at once (Deribit's heartbeat ``test_request`` wants a ``public/test``).
    """

    url: str
    subscribe: tuple[str, ...] = ()
    ping: str | None = None
    ping_every_s: float = 20.0
    answer: Callable[[str | bytes], str | None] | None = None


class StreamFeed(Protocol):
    """A venue's live feed: its endpoint and its frame parser."""

    venue: str
    sampled: str | None
    """Why the venue's liquidation feed undercounts (``None``: every event is sent)."""

    @property
    def instruments(self) -> tuple[Instrument, ...]:
        """The instruments the feed follows."""
        ...

    def endpoint(self, base_url: str | None) -> WsEndpoint:
        """Where to connect for liquidations, trades and ticks of the feed's instruments
        (``base_url`` replaces the venue's scheme and host: a mirror or a local test server)."""
        ...

    def parse(self, frame: str | bytes, sink: FrameSink) -> int:
        """Parse one frame, reporting its events to ``sink``; returns how many it held.

        Control frames (subscription acks, pongs) hold no events and return 0.

        Raises:
            DataContractError: the frame is not JSON or breaks the venue's documented shape.
            SubscriptionRefused: the frame is the venue's refusal of a subscription.
        """
        ...


class TradeHistory(Protocol):
    """A venue's REST trades by time, used to fill a gap of the live trade stream."""

    async def fetch_trades(
        self, instrument: Instrument, start_ms: int, end_ms: int
    ) -> list[tuple[int, int, float, bool]]:
        """Trades with ``start_ms <= ms < end_ms`` as ``(id, ms, qty, taker bought)``."""
        ...

    async def close(self) -> None:
        """Release the HTTP session."""
        ...


_HEX: Final = 16


def event_id(*fields: Any) -> str:
    """A stable id from an event's fields (16 hex digits of BLAKE2b over their text)."""
    text = "|".join(str(f) for f in fields)
    return hashlib.blake2b(text.encode(), digest_size=_HEX // 2).hexdigest()


def num(value: Any, name: str, where: str) -> float:
    """A venue number (sent as a string or a number) as a float.

    Raises:
        DataContractError: naming the field when the value is not a finite number.
    """
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise DataContractError(f"{where}: field {name} is {value!r}, not a number") from None
    if out != out or out in (float("inf"), float("-inf")):
        raise DataContractError(f"{where}: field {name} is {value!r}, not a finite number")
    return out


def rewrite_ws_url(url: str, base_url: str | None) -> str:
    """``url`` with its scheme and host replaced by ``base_url`` (path and query kept)."""
    if not base_url:
        return url
    scheme_end = url.index("://") + 3
    path_start = url.find("/", scheme_end)
    rest = url[path_start:] if path_start >= 0 else ""
    return base_url.rstrip("/") + rest
