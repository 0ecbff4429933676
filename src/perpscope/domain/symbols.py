"""Canonical instrument and venue ids.

Every instrument perpscope stores is named by one grammar, whatever venue it came from:

=====================  ==============================  ==========================
kind                   canonical id                    notes
=====================  ==============================  ==========================
spot                   ``BTC-USDT``                    base-quote
linear perpetual       ``BTC-USDT-PERP``               margined in the quote
inverse perpetual      ``BTC-USD-PERP``                quote ``USD``: coin-margined
dated future           ``BTC-USD-26DEC26``             expiry as DDMONYY
option                 ``BTC-USD-26DEC26-100000-C``    strike, then ``C`` or ``P``
=====================  ==============================  ==========================

A perpetual or future quoted in ``USD`` is inverse (coin-margined); any other quote is linear.
Venue ids are lowercase words (``binance``, ``sim1``); each venue module owns its two-way map
between these ids and the venue's own symbols.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum

__all__ = [
    "COLLECTION_VENUES",
    "Instrument",
    "InstrumentKind",
    "OptionRight",
    "SIM_VENUES",
    "format_expiry",
    "is_valid_venue",
    "parse_expiry",
    "parse_instrument",
    "parse_venue",
]

SIM_VENUES: tuple[str, ...] = ("sim1", "sim2", "sim3")
"""The simulator's venues."""

COLLECTION_VENUES: tuple[str, ...] = ("binance", "bybit", "okx", "deribit", *SIM_VENUES)
"""Venues perpscope collects from itself; imports accept any valid venue id."""

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_ASSET = r"[A-Z0-9]{1,20}"
_ASSET_RE = re.compile(rf"^{_ASSET}$")
_EXPIRY_RE = re.compile(r"^(\d{1,2})([A-Z]{3})(\d{2})$")
_STRIKE_RE = re.compile(r"^(?:0|[1-9]\d*)(?:\.\d*[1-9])?$")
_VENUE_RE = re.compile(r"^[a-z][a-z0-9]{0,31}$")


class InstrumentKind(StrEnum):
    """What kind of contract an instrument is."""

    SPOT = "spot"
    PERP = "perp"
    FUTURE = "future"
    OPTION = "option"


class OptionRight(StrEnum):
    """Call or put."""

    CALL = "C"
    PUT = "P"


@dataclass(frozen=True, slots=True)
class Instrument:
    """A parsed canonical instrument id.

    Use :func:`parse_instrument` to build one from text and ``str(instrument)`` to get the id back;
    the two round-trip exactly.
    """

    base: str
    quote: str
    kind: InstrumentKind
    expiry: date | None = None
    strike: Decimal | None = None
    right: OptionRight | None = None

    def __post_init__(self) -> None:
        for asset in (self.base, self.quote):
            if not _ASSET_RE.match(asset):
                raise ValueError(f"asset {asset!r} must be 1-20 upper-case letters or digits")
        dated = self.kind in (InstrumentKind.FUTURE, InstrumentKind.OPTION)
        if dated != (self.expiry is not None):
            raise ValueError(f"{self.kind} instruments {'need' if dated else 'take no'} expiry")
        is_option = self.kind is InstrumentKind.OPTION
        if is_option != (self.strike is not None and self.right is not None):
            raise ValueError("options need a strike and a right; other kinds take neither")
        if self.strike is not None and (not self.strike.is_finite() or self.strike <= 0):
            raise ValueError(f"strike must be a positive number, got {self.strike}")

    @property
    def is_inverse(self) -> bool:
        """True for coin-margined derivatives (quoted in ``USD``)."""
        return self.kind is not InstrumentKind.SPOT and self.quote == "USD"

    @property
    def is_derivative(self) -> bool:
        """True for perpetuals, futures and options."""
        return self.kind is not InstrumentKind.SPOT

    @property
    def underlying(self) -> str:
        """The spot pair this instrument refers to, e.g. ``BTC-USDT``."""
        return f"{self.base}-{self.quote}"

    def __str__(self) -> str:
        head = f"{self.base}-{self.quote}"
        if self.kind is InstrumentKind.SPOT:
            return head
        if self.kind is InstrumentKind.PERP:
            return f"{head}-PERP"
        assert self.expiry is not None  # guaranteed by __post_init__
        dated = f"{head}-{format_expiry(self.expiry)}"
        if self.kind is InstrumentKind.FUTURE:
            return dated
        assert self.strike is not None
        assert self.right is not None
        return f"{dated}-{_format_strike(self.strike)}-{self.right.value}"


def format_expiry(day: date) -> str:
    """Format an expiry date as ``26DEC26`` (day without padding, as Deribit writes it)."""
    if not 2000 <= day.year <= 2099:
        raise ValueError(f"expiry year {day.year} is outside 2000-2099")
    return f"{day.day}{_MONTHS[day.month - 1]}{day.year % 100:02d}"


def parse_expiry(text: str) -> date:
    """Parse an expiry like ``26DEC26`` or ``5JAN24`` into a date (years 2000-2099)."""
    m = _EXPIRY_RE.match(text)
    if not m or m.group(2) not in _MONTHS:
        raise ValueError(f"expiry {text!r} is not DDMONYY, e.g. 26DEC26")
    if m.group(1).startswith("0"):
        raise ValueError(f"expiry {text!r}: write the day without a leading zero")
    month = _MONTHS.index(m.group(2)) + 1
    try:
        return date(2000 + int(m.group(3)), month, int(m.group(1)))
    except ValueError as exc:
        raise ValueError(f"expiry {text!r} is not a calendar date") from exc


def _format_strike(strike: Decimal) -> str:
    text = format(strike.normalize(), "f")
    return text


def _parse_strike(text: str) -> Decimal:
    if not _STRIKE_RE.match(text):
        raise ValueError(f"strike {text!r} must be a plain positive number like 100000 or 2.5")
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid decimals
        raise ValueError(f"strike {text!r} is not a number") from exc


def parse_instrument(text: str) -> Instrument:
    """Parse a canonical instrument id.

    Raises:
        ValueError: with a message naming the expected grammar when ``text`` is not canonical.
    """
    parts = text.split("-")
    try:
        if len(parts) < 2:
            raise ValueError("too few parts")
        base, quote = parts[0], parts[1]
        rest = parts[2:]
        if not rest:
            return Instrument(base, quote, InstrumentKind.SPOT)
        if rest == ["PERP"]:
            return Instrument(base, quote, InstrumentKind.PERP)
        expiry = parse_expiry(rest[0])
        if len(rest) == 1:
            return Instrument(base, quote, InstrumentKind.FUTURE, expiry=expiry)
        if len(rest) == 3 and rest[2] in ("C", "P"):
            strike = _parse_strike(rest[1])
            if _format_strike(strike) != rest[1]:
                raise ValueError(f"strike {rest[1]!r} is not in its shortest form")
            return Instrument(
                base, quote, InstrumentKind.OPTION, expiry, strike, OptionRight(rest[2])
            )
        raise ValueError("unrecognised suffix")
    except ValueError as exc:
        raise ValueError(
            f"unknown instrument {text!r}: expected BTC-USDT, BTC-USDT-PERP, BTC-USD-PERP, "
            f"BTC-USD-26DEC26 or BTC-USD-26DEC26-100000-C ({exc})"
        ) from None


def is_valid_venue(text: str) -> bool:
    """True when ``text`` is a venue id: a lowercase word of letters and digits."""
    return bool(_VENUE_RE.match(text))


def parse_venue(text: str, *, known_only: bool = False) -> str:
    """Validate a venue id and return it.

    Args:
        text: the venue id.
        known_only: accept only the venues perpscope collects from (:data:`COLLECTION_VENUES`).
    """
    if not is_valid_venue(text):
        raise ValueError(
            f"bad venue id {text!r}: use a lowercase word of letters and digits, e.g. binance"
        )
    if known_only and text not in COLLECTION_VENUES:
        raise ValueError(f"unknown venue {text!r}: choose one of {', '.join(COLLECTION_VENUES)}")
    return text
