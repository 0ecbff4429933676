"""The venues perpscope can collect from, by id."""

from __future__ import annotations

from perpscope.errors import UsageError
from perpscope.venues.base import Capabilities, Venue
from perpscope.venues.binance import BinanceVenue
from perpscope.venues.bybit import BybitVenue
from perpscope.venues.okx import OkxVenue

__all__ = ["COLLECTABLE", "capabilities", "open_venue"]

COLLECTABLE: tuple[str, ...] = ("binance", "bybit", "okx")
"""Venues with a collector (Deribit follows)."""


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
    if venue == "okx":
        return OkxVenue(api_url=api_url, timeout_ms=timeout_ms, rate_limit_ms=rate_limit_ms)
    raise UsageError(f"no collector for venue {venue!r} yet; collectable: {', '.join(COLLECTABLE)}")
