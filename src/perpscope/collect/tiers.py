"""Leverage (maintenance-margin) tiers: read a venue's public tier table and store it.

A venue module that publishes tiers offers ``fetch_tiers(instrument)`` returning
``leverage_tiers`` rows with their ``bound_unit`` (OKX: coin for linear swaps, USD for inverse
ones; Bybit: USDT position value). Each instrument's table is one request (or a few cursor
pages) through the venue's ``tiers`` pool and one idempotent store commit.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import polars as pl

from perpscope.collect.retry import PoolGates, RetryPolicy, call_with_retry
from perpscope.domain.symbols import Instrument
from perpscope.errors import UsageError
from perpscope.store.lake import Lake
from perpscope.venues.base import Venue

__all__ = ["TiersResult", "take_tiers"]


@dataclass(frozen=True, slots=True)
class TiersResult:
    """One instrument's tier table as read and stored."""

    venue: str
    instrument: str
    tiers: int
    bound_unit: str
    rows_written: int


async def take_tiers(
    venue: Venue,
    lake: Lake,
    instruments: tuple[Instrument, ...],
    *,
    policy: RetryPolicy | None = None,
    pace: bool = True,
    seed: int | None = None,
) -> list[TiersResult]:
    """Read and store the tier table of each of ``instruments``; closes the venue's client.

    Raises:
        UsageError: the venue publishes no tiers perpscope can read.
        PerpscopeError: a table could not be read (the ones before it are stored).
    """
    fetch: Callable[[Instrument], Awaitable[pl.DataFrame]] | None = getattr(
        venue, "fetch_tiers", None
    )
    if fetch is None:
        await venue.close()
        raise UsageError(
            f"no tier collector for venue {venue.id!r} yet; collectable: binance, bybit, okx"
        )
    caps = venue.capabilities
    gates = PoolGates(caps, pace=pace)
    rng = random.Random(seed)
    out = []
    try:
        for inst in instruments:
            frame = await call_with_retry(
                lambda i=inst: fetch(i),  # type: ignore[misc]
                pool=caps.pool_for("tiers"),
                gates=gates,
                cost=caps.cost_of("tiers"),
                policy=policy or RetryPolicy(),
                rng=rng,
            )
            stored = await asyncio.to_thread(lake.ingest, "leverage_tiers", frame)
            unit = ",".join(sorted(set(frame["bound_unit"].drop_nulls()))) or "usd"
            out.append(TiersResult(venue.id, str(inst), frame.height, unit, stored.rows_written))
    finally:
        await venue.close()
    return out
