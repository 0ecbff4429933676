"""What every venue module provides: a small Protocol, a frozen Capabilities record, streams.

A venue module owns which raw endpoints to call (through ccxt's async client and its implicit
API methods), its pagination, and the parsers that turn raw payloads into store rows. Everything a
generic collector must know about a venue's quirks is data in :class:`Capabilities`; generic code
never names a venue.

Streams are named by a small grammar shared by every venue::

    funding                          realised funding settlements      -> table funding
    ohlcv:<kind>:<timeframe>         kind = trade | mark | index | premium  -> table ohlcv
    oi:<period>                      open-interest history             -> table open_interest
    long_short:<kind>:<period>       kind = global_account | top_account | top_position
    taker:<period>                   taker buy/sell volume             -> table taker_volume

``ccxt`` errors are mapped here, once, onto perpscope's error tree (transient, rate limit,
permanent); a response that breaks its documented shape raises
:class:`~perpscope.errors.DataContractError` from the venue's parser.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Final, Protocol
from urllib.parse import urlsplit, urlunsplit

import ccxt.async_support as ccxt  # type: ignore[import-untyped]
import polars as pl

from perpscope.domain.symbols import Instrument
from perpscope.errors import (
    PermanentVenueError,
    RateLimitError,
    TransientVenueError,
    UsageError,
    VenueBannedError,
    VenueError,
)

__all__ = [
    "OHLCV_KINDS",
    "LONG_SHORT_KINDS",
    "Capabilities",
    "HistoryPage",
    "RatePool",
    "Snapshot",
    "Stream",
    "Venue",
    "map_ccxt_error",
    "parse_stream",
    "period_ms",
    "last_response_header",
    "record_response_headers",
    "rewrite_base_urls",
]

OHLCV_KINDS: Final = ("trade", "mark", "index", "premium")
LONG_SHORT_KINDS: Final = ("global_account", "top_account", "top_position")
_PERIOD_UNITS: Final = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def period_ms(period: str) -> int:
    """Length of a timeframe or period such as ``5m``, ``1h``, ``1d`` in milliseconds.

    Raises:
        UsageError: ``period`` is not a number followed by m, h, d or w.
    """
    unit = period[-1:]
    count = period[:-1]
    if unit not in _PERIOD_UNITS or not count.isdigit() or int(count) <= 0:
        raise UsageError(f"bad period {period!r}: use a number and m, h, d or w, e.g. 5m or 1h")
    return int(count) * _PERIOD_UNITS[unit]


@dataclass(frozen=True, slots=True)
class Stream:
    """One collectable history stream, parsed from its name (see the module docstring)."""

    name: str
    family: str
    table: str
    kind: str | None = None
    period: str | None = None

    @property
    def period_ms(self) -> int | None:
        """Length of the stream's period or timeframe in ms (``None`` for funding)."""
        return period_ms(self.period) if self.period else None


def parse_stream(name: str) -> Stream:
    """Parse a stream name such as ``funding``, ``ohlcv:mark:1h`` or ``oi:5m``.

    Raises:
        UsageError: naming the grammar when ``name`` is not a stream.
    """
    parts = name.split(":")
    grammar = (
        "streams: funding, ohlcv:<trade|mark|index|premium>:<tf>, oi:<period>, "
        "long_short:<global_account|top_account|top_position>:<period>, taker:<period>"
    )
    family = parts[0]
    if family == "funding" and len(parts) == 1:
        return Stream(name, family, "funding")
    if family == "ohlcv" and len(parts) == 3 and parts[1] in OHLCV_KINDS:
        period_ms(parts[2])
        return Stream(name, family, "ohlcv", parts[1], parts[2])
    if family == "oi" and len(parts) == 2:
        period_ms(parts[1])
        return Stream(name, family, "open_interest", None, parts[1])
    if family == "long_short" and len(parts) == 3 and parts[1] in LONG_SHORT_KINDS:
        period_ms(parts[2])
        return Stream(name, family, "long_short", parts[1], parts[2])
    if family == "taker" and len(parts) == 2:
        period_ms(parts[1])
        return Stream(name, family, "taker_volume", None, parts[1])
    raise UsageError(f"unknown stream {name!r}; {grammar}")


@dataclass(frozen=True, slots=True)
class RatePool:
    """A venue rate-limit pool: ``limit`` requests (or weight) per ``window_s`` seconds."""

    name: str
    limit: int
    window_s: float
    doc: str = ""

    @property
    def min_spacing_s(self) -> float:
        """The even spacing between requests that keeps under the limit."""
        return self.window_s / self.limit


@dataclass(frozen=True, slots=True)
class Capabilities:
    """A venue's quirks, as data. Generic collection code reads only this record."""

    venue: str
    page_size: Mapping[str, int]
    """Largest page per stream family (``funding``, ``ohlcv``, ``ohlcv_spot``, ``oi`` ...)."""
    history_days: Mapping[str, int | None]
    """How far back each stream family reaches (``None`` = since listing)."""
    periods: tuple[str, ...]
    """Periods offered by the statistics endpoints (OI history, ratios, taker volume)."""
    timeframes: tuple[str, ...]
    """Kline timeframes."""
    funding_interval_source: str
    """Where the funding interval of a settlement comes from."""
    default_funding_interval_h: float
    oi_unit: str
    """Unit of the venue's open interest: ``contracts`` | ``base`` | ``usd``."""
    liquidation_side: str
    """What the side of a liquidation event means on this venue."""
    pools: tuple[RatePool, ...]
    stream_pools: Mapping[str, str]
    """Pool name per stream family (and ``instruments`` / ``snapshot``)."""
    ban_pauses_venue: bool = True
    """A ban (HTTP 418) pauses every pool of the venue, not just the one that was hit."""
    page_weight: Mapping[str, float] = field(default_factory=dict)
    """What one full page request of a stream family costs in its pool (1 when not listed)."""
    used_weight_header: str | None = None
    """Response header with the weight already used in the venue's weight pool, if it sends one."""
    weight_pool: str | None = None
    """The pool ``used_weight_header`` reports on."""
    families: tuple[str, ...] = field(default=("funding", "ohlcv", "oi", "long_short", "taker"))
    """Stream families the venue serves."""
    ban_status: int = 418
    """HTTP status with which the venue answers a banned IP (Binance 418, Bybit 403)."""
    liquidation_feed_sampled: str | None = None
    """Why the venue's realised-liquidation feed undercounts (``None``: every event is sent);
    totals of a sampled feed are a lower bound."""

    def pool_for(self, family: str) -> str:
        """The rate-limit pool a stream family draws from."""
        return self.stream_pools.get(family, self.pools[0].name)

    def cost_of(self, family: str) -> float:
        """The weight one page request of ``family`` draws from its pool."""
        return float(self.page_weight.get(family, 1.0))


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of history, parsed into store rows.

    Attributes:
        frame: rows in the schema of the stream's table, sorted by ``ts``.
        raw_rows: rows the venue returned (before dropping still-open bars).
        last_ts: event time of the last row stored, the next cursor (``None`` when empty).
        done: the venue has no rows after this page (up to the requested end).
        next_start_ms: where the next page starts, when the venue paginates by window.
    """

    frame: pl.DataFrame
    raw_rows: int
    last_ts: datetime | None
    done: bool
    next_start_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An all-symbol snapshot: frames per store table, and venue symbols that were not mapped."""

    frames: Mapping[str, pl.DataFrame]
    unmapped: tuple[str, ...] = ()


class Venue(Protocol):
    """What a venue module offers to the collector."""

    @property
    def id(self) -> str:
        """The venue id (``binance``)."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """The venue's quirks."""
        ...

    async def fetch_instruments(self) -> pl.DataFrame:
        """The venue's instruments, as rows of the ``instruments`` table."""
        ...

    async def fetch_history(
        self,
        instrument: Instrument,
        stream: Stream,
        start_ms: int,
        end_ms: int,
        prev_ts: datetime | None,
    ) -> HistoryPage:
        """One page of ``stream`` from ``start_ms`` (inclusive) up to ``end_ms`` (exclusive).

        ``prev_ts`` is the last event already stored before ``start_ms`` (for rows whose values
        depend on their predecessor, such as a funding row's interval).
        """
        ...

    async def fetch_snapshot(self, instruments: tuple[Instrument, ...]) -> Snapshot:
        """One snapshot of funding and prices of all symbols, and OI of ``instruments``."""
        ...

    async def close(self) -> None:
        """Release the HTTP session."""
        ...


# ------------------------------------------------------------------------------ ccxt plumbing

_LAST_RESPONSE: contextvars.ContextVar[tuple[int, Mapping[str, str]] | None] = (
    contextvars.ContextVar("perpscope_last_response", default=None)
)


def record_response_headers(client: ccxt.Exchange) -> None:
    """Make ``client`` remember each response's headers in the calling task's context.

    ccxt raises its rate-limit errors without the ``Retry-After`` header; this hook keeps the
    headers of the latest response of the current asyncio task, where :func:`map_ccxt_error`
    reads them. It wraps ccxt's own ``on_rest_response`` hook and changes nothing else.
    """
    original = client.on_rest_response

    def hook(
        code: int,
        reason: str,
        url: str,
        method: str,
        response_headers: Mapping[str, str],
        response_body: str,
        request_headers: Any,
        request_body: Any,
    ) -> Any:
        _LAST_RESPONSE.set((code, response_headers))
        return original(
            code,
            reason,
            url,
            method,
            response_headers,
            response_body,
            request_headers,
            request_body,
        )

    client.on_rest_response = hook


def last_response_header(name: str) -> str | None:
    """Header ``name`` (any case) of the latest response seen by the calling asyncio task."""
    last = _LAST_RESPONSE.get()
    if last is None:
        return None
    for key, value in last[1].items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None


def map_ccxt_error(exc: Exception, what: str, *, ban_status: int = 418) -> VenueError:
    """Map a ccxt exception onto perpscope's error tree (what the caller must do).

    Args:
        exc: the exception ccxt raised.
        what: the call, for the message (``binance GET fapi/v1/fundingRate``).
        ban_status: the HTTP status of the venue's IP ban (``Capabilities.ban_status``).
    """
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        last = _LAST_RESPONSE.get()
        code, headers = last if last is not None else (None, None)
        retry = _retry_after_s(headers)
        wait = "no Retry-After" if retry is None else f"Retry-After {retry:g}s"
        if code == ban_status:
            return VenueBannedError(f"{what}: IP banned (HTTP {code}), {wait}", retry_after_s=retry)
        return RateLimitError(f"{what}: rate-limited (HTTP {code or 429}), {wait}", retry)
    if isinstance(exc, ccxt.NetworkError):  # timeouts, 5xx, unavailable, disconnects
        return TransientVenueError(f"{what}: {type(exc).__name__}: {detail}")
    if isinstance(exc, ccxt.BaseError):
        return PermanentVenueError(f"{what}: {type(exc).__name__}: {detail}")
    return PermanentVenueError(f"{what}: {type(exc).__name__}: {detail}")


def rewrite_base_urls(urls: Any, base_url: str) -> Any:
    """Return ccxt's ``urls['api']`` structure with every host replaced by ``base_url``.

    Paths are kept, so ``https://fapi.binance.com/fapi/v1`` becomes ``<base_url>/fapi/v1``. Used
    to point the real client at a mirror or at the local fake exchange of the tests.
    """
    target = urlsplit(base_url)
    if isinstance(urls, str):
        parts = urlsplit(urls)
        prefix = target.path.rstrip("/")
        return urlunsplit((target.scheme, target.netloc, prefix + parts.path, parts.query, ""))
    if isinstance(urls, dict):
        return {k: rewrite_base_urls(v, base_url) for k, v in urls.items()}
    return urls


# ------------------------------------------------------------------------------ shared adapter code


def now_ms() -> int:
    """The wall clock in epoch milliseconds (the read time of a snapshot, the still-open bar)."""
    return int(time.time() * 1000)


def history_page(
    frame: pl.DataFrame, raw_rows: int, done: bool, next_start: int | None
) -> HistoryPage:
    """A :class:`HistoryPage` of ``frame`` (sorted by ``ts``), its cursor the last ``ts``."""
    last = frame["ts"].max() if frame.height else None
    assert last is None or isinstance(last, datetime)
    return HistoryPage(frame, raw_rows, last, done, next_start)


def in_window(start_ms: int, end_ms: int) -> pl.Expr:
    """Rows whose ``ts`` lies in ``[start_ms, end_ms)`` (epoch milliseconds)."""
    utc_ms = pl.Datetime("ms", "UTC")
    return (pl.col("ts") >= pl.lit(start_ms).cast(utc_ms)) & (
        pl.col("ts") < pl.lit(end_ms).cast(utc_ms)
    )


class CcxtVenue:
    """What every REST venue adapter shares: ccxt's async client of the venue, pointed at
    ``api_url`` when given and recording response headers, the venue's id and
    :class:`Capabilities`, and raw implicit-method calls with ccxt errors mapped once.

    A subclass names its venue (``venue_id``, also ccxt's exchange id), its ``caps`` and the
    market types ccxt should load (``market_types``), and sets its own state in ``_setup``.

    Args:
        api_url: replace every host of the venue by this base URL (a mirror, or the tests' fake).
        timeout_ms: per-request timeout.
        rate_limit_ms: ccxt's spacing of cost-1 requests (the venue's default when None).
    """

    venue_id: ClassVar[str]
    caps: ClassVar[Capabilities]
    market_types: ClassVar[tuple[str, ...] | None] = None

    def __init__(
        self,
        *,
        api_url: str | None = None,
        timeout_ms: int = 10_000,
        rate_limit_ms: float | None = None,
    ) -> None:
        config: dict[str, Any] = {"enableRateLimit": True, "timeout": timeout_ms}
        if self.market_types is not None:
            config["options"] = {"fetchMarkets": {"types": list(self.market_types)}}
        if rate_limit_ms is not None:
            config["rateLimit"] = rate_limit_ms
        self.client = getattr(ccxt, self.venue_id)(config)
        if api_url is not None:
            self.client.urls["api"] = rewrite_base_urls(self.client.urls["api"], api_url)
        record_response_headers(self.client)
        self._setup()

    def _setup(self) -> None:
        """Set the adapter's own state (called at the end of ``__init__``)."""

    @property
    def id(self) -> str:
        """The venue id (``bybit``)."""
        return self.venue_id

    @property
    def capabilities(self) -> Capabilities:
        """The venue's quirks."""
        return self.caps

    async def close(self) -> None:
        """Close ccxt's HTTP session."""
        await self.client.close()

    async def _call(self, method: str, path: str, params: dict[str, Any]) -> Any:
        """ccxt's implicit API ``method`` with ``params``; a ccxt error becomes perpscope's,
        naming ``<venue> GET <path>``."""
        try:
            return await getattr(self.client, method)(params)
        except ccxt.BaseError as exc:
            what = f"{self.venue_id} GET {path}"
            raise map_ccxt_error(exc, what, ban_status=self.caps.ban_status) from None
