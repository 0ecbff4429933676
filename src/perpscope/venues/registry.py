"""The venues perpscope can collect from, by id."""

from __future__ import annotations

from perpscope.domain.symbols import Instrument, InstrumentKind
from perpscope.errors import UsageError
from perpscope.venues.base import Capabilities, Venue
from perpscope.venues.binance import BinanceVenue
from perpscope.venues.bybit import BybitVenue
from perpscope.venues.deribit import DeribitVenue
from perpscope.venues.okx import OkxVenue
from perpscope.venues.ws import StreamFeed, TradeHistory

__all__ = [
    "COLLECTABLE",
    "OPTIONS_VENUES",
    "STREAMABLE",
    "capabilities",
    "open_feeds",
    "open_trade_history",
    "open_venue",
]

COLLECTABLE: tuple[str, ...] = ("binance", "bybit", "okx", "deribit")
"""Venues with a collector."""
OPTIONS_VENUES: tuple[str, ...] = ("deribit",)
"""Venues whose option chains, option trades and volatility index are collected."""

STREAMABLE: tuple[str, ...] = ("binance", "bybit", "okx", "deribit")
"""Venues with a live WebSocket feed (``collect stream``)."""


def capabilities(venue: str) -> Capabilities | None:
    """The quirks record of a venue with a collector (``None`` for other venues)."""
    if venue == "binance":
        from perpscope.venues.binance import CAPABILITIES

        return CAPABILITIES
    return None


def open_venue(
    venue: str,
    *,
    api_url: str | None = None,
    timeout_ms: int = 10_000,
    rate_limit_ms: float | None = None,
) -> Venue:
    """A venue client by id (no connection is opened yet).

    Args:
        venue: venue id.
        api_url: replace the venue's hosts by this base URL (a mirror or a local fake).
        timeout_ms: per-request timeout.
        rate_limit_ms: ccxt's spacing of cost-1 requests (the venue's default when None).

    Raises:
        UsageError: the venue has no collector.
    """
    if venue == "binance":
        return BinanceVenue(api_url=api_url, timeout_ms=timeout_ms, rate_limit_ms=rate_limit_ms)
    if venue == "bybit":
        return BybitVenue(api_url=api_url, timeout_ms=timeout_ms, rate_limit_ms=rate_limit_ms)
    if venue == "deribit":
        return DeribitVenue(api_url=api_url, timeout_ms=timeout_ms, rate_limit_ms=rate_limit_ms)
    if venue == "okx":
        return OkxVenue(api_url=api_url, timeout_ms=timeout_ms, rate_limit_ms=rate_limit_ms)
    raise UsageError(f"no collector for venue {venue!r} yet; collectable: {', '.join(COLLECTABLE)}")


def open_feeds(venue: str, instruments: tuple[Instrument, ...]) -> list[StreamFeed]:
    """The live WebSocket feeds of ``instruments`` on ``venue``: one for its perpetuals
    (liquidations, trades, ticks) and one for its spot pairs (trades), as given.

    Raises:
        UsageError: the venue has no live feed, or an instrument is a future or an option.
    """
    bad = [str(i) for i in instruments if i.kind not in (InstrumentKind.PERP, InstrumentKind.SPOT)]
    if bad:
        raise UsageError(f"live streams follow perpetuals and spot pairs, not {', '.join(bad)}")
    if venue not in STREAMABLE:
        raise UsageError(
            f"no live stream for venue {venue!r} yet; streamable: {', '.join(STREAMABLE)}"
        )
    perps = tuple(i for i in instruments if i.kind is InstrumentKind.PERP)
    spots = tuple(i for i in instruments if i.kind is InstrumentKind.SPOT)
    if venue == "deribit" and spots:
        raise UsageError(
            f"deribit live streams follow perpetuals only, not {', '.join(map(str, spots))}"
        )
    feeds: list[StreamFeed] = []
    for group, spot in ((perps, False), (spots, True)):
        if not group:
            continue
        if venue == "binance":
            from perpscope.venues.binance_ws import BinanceFeed

            feeds.append(BinanceFeed(group, spot=spot))
        elif venue == "okx":
            from perpscope.venues.okx_ws import OkxFeed

            feeds.append(OkxFeed(group, spot=spot))
        elif venue == "deribit":
            from perpscope.venues.deribit_ws import DeribitFeed

            feeds.append(DeribitFeed(group))
        else:
            from perpscope.venues.bybit_ws import BybitFeed

            feeds.append(BybitFeed(group, spot=spot))
    return feeds


def open_trade_history(venue: str, *, api_url: str | None = None) -> TradeHistory | None:
    """The venue's REST trades by time, where it serves them (Binance ``aggTrades``, Deribit
    ``get_last_trades_by_instrument_and_time``, OKX ``history-trades``); ``None`` for a venue
    that serves only recent trades (Bybit)."""
    if venue == "binance":
        return BinanceVenue(api_url=api_url)
    if venue == "deribit":
        from perpscope.venues.deribit_trades import DeribitTradeHistory

        return DeribitTradeHistory(api_url=api_url)
    if venue == "okx":
        from perpscope.venues.okx_trades import OkxTradeHistory

        return OkxTradeHistory(api_url=api_url)
    return None
