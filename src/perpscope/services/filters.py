"""What the market commands read: ids, time windows and thresholds as the trader types them.

Conventions (shared by every analytics command and documented in ``docs/methodology.md``):

- ``--venue`` and ``--asset`` are repeatable and comma-separated (``--asset BTC,ETH`` keeps both).
- ``--since`` is inclusive, ``--until`` exclusive. Each takes an ISO 8601 date or time (naive
  means UTC) or a relative form: ``90m``, ``24h``, ``7d``, ``2w`` (that long before the data's
  latest timestamp), ``now`` (the latest timestamp), ``today`` and ``yesterday`` (the day of the
  latest timestamp and the day before). Relative forms count back from the **latest timestamp in
  the table the command reads**, not from the wall clock, so ``--since 7d`` means "the last seven
  days of data" on a live store, a historical store and the demo alike. A date (``2024-01-05``,
  ``today``, ``yesterday``) covers the whole day in both options: ``--since D`` starts at D's
  midnight, ``--until D`` ends at the next midnight.
- Rate and change thresholds are **percent**: ``--threshold 0.05`` and ``--threshold 0.05%`` both
  mean 0.05% (a fraction of 0.0005). Fractions appear only in JSON output and in the store.

Nothing here reads a clock or the store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from perpscope.domain.symbols import parse_instrument, parse_venue
from perpscope.errors import UsageError

__all__ = [
    "TIMEFRAMES",
    "MarketQuery",
    "TimeBound",
    "Timeframe",
    "check_timeframe",
    "parse_percent",
    "parse_time",
    "split_ids",
]


class Timeframe(StrEnum):
    """Bar and ratio periods perpscope knows (the venues' kline intervals)."""

    M1 = "1m"
    M3 = "3m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    H2 = "2h"
    H4 = "4h"
    H6 = "6h"
    H8 = "8h"
    H12 = "12h"
    D1 = "1d"
    D3 = "3d"
    W1 = "1w"


TIMEFRAMES: tuple[str, ...] = tuple(t.value for t in Timeframe)
"""The values of :class:`Timeframe`, in order."""

_REL_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(m|min|h|d|w)$")
_UNIT_H = {"m": 1 / 60, "min": 1 / 60, "h": 1.0, "d": 24.0, "w": 168.0}
_DAY_WORDS = {"today": 0, "yesterday": 1}


@dataclass(frozen=True, slots=True)
class TimeBound:
    """A ``--since``/``--until`` value: an absolute UTC time, or relative to the data's latest.

    Exactly one of ``at``, ``back`` and ``day`` is set (``day`` is a whole day: an ISO date or
    ``today``/``yesterday`` counted back from the latest day). ``end`` makes a day bound its
    following midnight (how ``--until`` reads a date).
    """

    text: str
    at: datetime | None = None
    back: timedelta | None = None
    day: date | None = None
    days_back: int | None = None
    end: bool = False

    @property
    def relative(self) -> bool:
        """True when the bound needs the data's latest timestamp to resolve."""
        return self.back is not None or self.days_back is not None

    def resolve(self, latest: datetime | None) -> datetime | None:
        """The bound as an aware UTC time; relative bounds count back from ``latest``.

        Returns ``None`` for a relative bound when there is no data (``latest`` is ``None``).
        """
        if self.at is not None:
            return self.at
        if self.back is not None:
            return None if latest is None else latest - self.back
        day = self.day
        if self.days_back is not None:
            if latest is None:
                return None
            day = latest.astimezone(UTC).date() - timedelta(days=self.days_back)
        assert day is not None
        start = datetime.combine(day, time(0), tzinfo=UTC)
        return start + timedelta(days=1) if self.end else start


def parse_time(text: str, option: str = "--since") -> TimeBound:
    """Parse a ``--since``/``--until`` value (see the module docstring for the forms).

    Raises:
        UsageError: the text is none of the forms; the message lists them.
    """
    raw = text.strip()
    low = raw.lower()
    end = option == "--until"
    if low == "now":
        return TimeBound(raw, back=timedelta(0))
    if low in _DAY_WORDS:
        return TimeBound(raw, days_back=_DAY_WORDS[low], end=end)
    m = _REL_RE.match(low)
    if m:
        return TimeBound(raw, back=timedelta(hours=float(m.group(1)) * _UNIT_H[m.group(2)]))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        try:
            return TimeBound(raw, day=date.fromisoformat(raw), end=end)
        except ValueError:
            pass
    else:
        try:
            when = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            pass
        else:
            utc = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
            return TimeBound(raw, at=utc)
    raise UsageError(
        f"bad {option} {text!r}: use an ISO date or time (2024-01-05, 2024-01-05T08:00Z) or a "
        "relative form (90m, 24h, 7d, 2w, today, yesterday, now; counted back from the data's "
        "latest timestamp)"
    )


def parse_percent(text: str | float, option: str) -> float:
    """A percent as the trader types it (``0.05`` or ``0.05%``) as a fraction (0.0005).

    Raises:
        UsageError: not a finite non-negative number.
    """
    raw = str(text).strip()
    number = raw[:-1].strip() if raw.endswith("%") else raw
    try:
        value = float(number)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise UsageError(
            f"bad {option} {text!r}: give a percent, e.g. 0.05 or 0.05% (both mean 0.05%)"
        )
    return value / 100.0


def split_ids(values: list[str] | tuple[str, ...] | None) -> list[str]:
    """Repeated and comma-separated option values as one list, in order, without repeats."""
    out: list[str] = []
    for value in values or []:
        for part in value.split(","):
            item = part.strip()
            if item and item not in out:
                out.append(item)
    return out


def check_timeframe(value: str, option: str = "--timeframe") -> str:
    """``value`` if it is one of :data:`TIMEFRAMES`, else a ``UsageError`` listing them."""
    if value not in TIMEFRAMES:
        raise UsageError(f"bad {option} {value!r}: choose one of {', '.join(TIMEFRAMES)}")
    return value


@dataclass(frozen=True, slots=True)
class MarketQuery:
    """Which series to read: venues, one instrument or some assets, and a time window (UTC).

    Build it with :meth:`make`, which validates the ids and raises ``UsageError``. ``since`` and
    ``until`` may be relative :class:`TimeBound` values until the service resolves them against
    the data's latest timestamp (:meth:`resolved`).
    """

    venues: tuple[str, ...] = ()
    instrument: str | None = None
    assets: tuple[str, ...] = ()
    since: datetime | TimeBound | None = None
    until: datetime | TimeBound | None = None

    @classmethod
    def make(
        cls,
        venues: list[str] | None = None,
        instrument: str | None = None,
        assets: list[str] | str | None = None,
        since: datetime | TimeBound | str | None = None,
        until: datetime | TimeBound | str | None = None,
    ) -> MarketQuery:
        """Validate and normalise the filters (repeated or comma-separated ids are split)."""
        asset_list = split_ids([assets] if isinstance(assets, str) else assets)
        if instrument is not None and asset_list:
            raise UsageError("give --instrument or --asset, not both")
        try:
            vs = tuple(parse_venue(v.lower()) for v in split_ids(venues))
            inst = str(parse_instrument(instrument.upper())) if instrument else None
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        for a in asset_list:
            if not a.isalnum():
                raise UsageError(f"bad --asset {a!r}: use an asset like BTC or ETH")
        bounds: list[datetime | TimeBound | None] = []
        for value, option in ((since, "--since"), (until, "--until")):
            if isinstance(value, str):
                value = parse_time(value, option)
            if isinstance(value, TimeBound) and not value.relative:
                value = value.resolve(None)
            if isinstance(value, datetime) and value.tzinfo is None:
                raise UsageError(f"{option} must carry a time zone (use ...Z for UTC)")
            bounds.append(value)
        q = cls(vs, inst, tuple(a.upper() for a in asset_list), bounds[0], bounds[1])
        lo, hi = q.since, q.until
        if isinstance(lo, datetime) and isinstance(hi, datetime) and hi <= lo:
            raise UsageError(f"--until ({hi:%Y-%m-%d %H:%M}Z) must be after --since")
        return q

    @property
    def asset(self) -> str | None:
        """The one asset when exactly one is asked for (else ``None``)."""
        return self.assets[0] if len(self.assets) == 1 else None

    @property
    def relative(self) -> bool:
        """True when a bound counts back from the data's latest timestamp."""
        return any(isinstance(b, TimeBound) and b.relative for b in (self.since, self.until))

    def resolved(self, latest: datetime | None) -> MarketQuery:
        """This query with both bounds as aware UTC datetimes (relative ones from ``latest``).

        Raises:
            UsageError: the resolved window is empty (``--until`` not after ``--since``).
        """
        lo = self.since.resolve(latest) if isinstance(self.since, TimeBound) else self.since
        hi = self.until.resolve(latest) if isinstance(self.until, TimeBound) else self.until
        if lo is not None and hi is not None and hi <= lo:
            raise UsageError(
                f"--until ({hi:%Y-%m-%d %H:%M}Z) must be after --since ({lo:%Y-%m-%d %H:%M}Z)"
            )
        return replace(self, since=lo, until=hi)

    @property
    def since_ts(self) -> datetime | None:
        """``since`` once resolved."""
        assert not isinstance(self.since, TimeBound), "resolve the query first"
        return self.since

    @property
    def until_ts(self) -> datetime | None:
        """``until`` once resolved."""
        assert not isinstance(self.until, TimeBound), "resolve the query first"
        return self.until
