"""Frame checks every live-stream parser shares, and the rule that a frame is reported whole.

Each ``*_ws`` module makes one :class:`WsWire` with its venue's wording (``"okx ws"``) and keeps
only what is venue-specific: its endpoint, its envelope, its channels, its sides and units. A frame
that breaks its documented shape raises :class:`~perpscope.errors.DataContractError`
``"<venue> ws: <what>"``.

A frame's events are stored only when every row of the frame is valid: a parser reports a
multi-row frame into a :class:`FrameEvents` and hands it to the collector's sink once the last row
has been checked (:meth:`FrameEvents.report`), so one malformed row skips the whole frame, logged
once, with none of its rows stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from perpscope.errors import DataContractError
from perpscope.venues.ws import FrameSink, num

__all__ = ["FrameEvents", "WsWire"]


@dataclass(frozen=True, slots=True)
class WsWire:
    """One venue's frame checks, worded as the venue's frames are (error texts are built only
    when a check fails: the checks run on every frame).

    Attributes:
        where: the prefix of every error message (``"bybit ws"``).
        unknown: what an error about an unsubscribed symbol calls the frame, between the channel
            and the symbol (``"frame for symbol"``: ``tickers frame for symbol 'X'``).
        time: what the venue's time field is called in an error (``"time"``, ``"timestamp"``).
        digit_times: whether a time may come as a string of digits (else integers only).
    """

    where: str
    unknown: str
    time: str = "time"
    digit_times: bool = True

    def fail(self, what: str) -> DataContractError:
        """The error of a frame that breaks its documented shape."""
        return DataContractError(f"{self.where}: {what}")

    def load(self, frame: str | bytes) -> dict[str, Any]:
        """The frame's JSON object."""
        try:
            doc = orjson.loads(frame)
        except (ValueError, TypeError) as exc:
            raise self.fail(f"frame is not JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise self.fail(f"frame is a {type(doc).__name__}, not an object")
        return doc

    def rows(self, data: Any, kind: object, part: str = "data") -> list[dict[str, Any]]:
        """``data`` checked to be a list of objects (the ``part`` of a ``kind`` frame)."""
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise self.fail(f"{kind} {part} is not a list of objects")
        return data

    def instrument(self, canonical: Mapping[str, str], key: Any, kind: str) -> str:
        """The canonical id of venue symbol ``key`` (of a ``kind`` frame)."""
        try:
            return canonical[key]
        except (KeyError, TypeError):
            raise self.fail(f"{kind} {self.unknown} {key!r}, which was not subscribed") from None

    def ms(self, value: Any, kind: str) -> int:
        """Epoch milliseconds (of a ``kind`` frame): an integer (not a boolean) or, where the
        venue sends them so, a string of digits."""
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if self.digit_times and isinstance(value, str) and value.isdigit():
            return int(value)
        raise self.fail(f"{kind} {self.time} {value!r} is not epoch milliseconds")

    def num(self, value: Any, name: str) -> float:
        """A finite number sent as a number or a string (:func:`~perpscope.venues.ws.num`)."""
        return num(value, name, self.where)

    def price(self, row: Mapping[str, Any], key: str, what: str) -> float:
        """Field ``key`` of ``row`` as a positive number; ``what`` names the row in the error
        (``"trades"``)."""
        value = row[key]
        px = num(value, key, self.where)
        if not px > 0:
            raise self.fail(f"{what} {key} {value!r} is not positive")
        return px

    def opt(self, row: Mapping[str, Any], key: str) -> float | None:
        """Field ``key`` of ``row`` as a number, or ``None`` when absent, null or ``""``."""
        value = row.get(key)
        return None if value is None or value == "" else num(value, key, self.where)


class FrameEvents:
    """A frame's events, held until every row of the frame has been checked (a
    :class:`~perpscope.venues.ws.FrameSink`); :meth:`report` hands them on: trades first, then
    liquidations, then ticks, each in the order received."""

    __slots__ = ("liquidations", "ticks", "trades")

    def __init__(self) -> None:
        self.liquidations: list[tuple[str, int, str, str, float, float]] = []
        self.trades: list[tuple[str, int, float, bool, int | None, str | int]] = []
        self.ticks: list[
            tuple[str, int, float | None, int | None, float | None, float | None, float | None]
        ] = []

    def liquidation(
        self, instrument: str, ts_ms: int, event_id: str, side: str, px: float, qty_base: float
    ) -> None:
        """Hold one liquidation."""
        self.liquidations.append((instrument, ts_ms, event_id, side, px, qty_base))

    def trade(
        self,
        instrument: str,
        ts_ms: int,
        qty_base: float,
        taker_buy: bool,
        trade_id: int | None,
        dedupe_key: str | int,
    ) -> None:
        """Hold one trade."""
        self.trades.append((instrument, ts_ms, qty_base, taker_buy, trade_id, dedupe_key))

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
        """Hold one mark-price / funding observation."""
        self.ticks.append((instrument, ts_ms, rate, next_funding_ms, mark_px, index_px, interval_h))

    def report(self, sink: FrameSink) -> int:
        """Hand every held event to ``sink``; returns how many there were."""
        for t in self.trades:
            sink.trade(*t)
        for liq in self.liquidations:
            sink.liquidation(*liq)
        for tick in self.ticks:
            sink.tick(*tick)
        return len(self.trades) + len(self.liquidations) + len(self.ticks)
