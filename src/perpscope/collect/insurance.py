"""Insurance funds as venues publish them: read the pools and store them.

A venue module that publishes its insurance fund offers ``fetch_insurance(coin)`` returning
``insurance_pool`` rows (Bybit: one row per pool, a pool being a coin and the contracts that
share it). The read is one request through the venue's ``insurance`` pool (its IP pool on
Bybit) and one idempotent store commit: the key holds the venue's update time, so reading again
before the venue updates its figures stores nothing new.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from perpscope.collect.retry import PoolGates, RetryPolicy, call_with_retry
from perpscope.errors import UsageError
from perpscope.store.lake import Lake
from perpscope.venues.base import Venue

__all__ = ["INSURANCE_VENUES", "InsuranceResult", "take_insurance"]

INSURANCE_VENUES = ("bybit",)
"""Venues whose insurance fund perpscope collects."""


@dataclass(frozen=True, slots=True)
class InsuranceResult:
    """One read of a venue's insurance pools."""

    venue: str
    ts: datetime | None  # the venue's update time of the figures (None: no pool answered)
    pools: pl.DataFrame  # the insurance_pool rows read
    rows_written: int  # of them, the ones not stored before


async def take_insurance(
    venue: Venue,
    lake: Lake,
    coin: str | None = None,
    *,
    policy: RetryPolicy | None = None,
    pace: bool = True,
    seed: int | None = None,
) -> InsuranceResult:
    """Read and store ``venue``'s insurance pools (of ``coin``, or all); closes the client.

    Raises:
        UsageError: the venue publishes no insurance fund perpscope can read.
        PerpscopeError: the pools could not be read (nothing is stored).
    """
    fetch: Callable[[str | None], Awaitable[pl.DataFrame]] | None = getattr(
        venue, "fetch_insurance", None
    )
    if fetch is None:
        await venue.close()
        raise UsageError(
            f"no insurance-fund collector for venue {venue.id!r}; collectable: "
            f"{', '.join(INSURANCE_VENUES)}"
        )
    caps = venue.capabilities
    try:
        frame = await call_with_retry(
            lambda: fetch(coin),
            pool=caps.pool_for("insurance"),
            gates=PoolGates(caps, pace=pace),
            cost=caps.cost_of("insurance"),
            policy=policy or RetryPolicy(),
            rng=random.Random(seed),
        )
    finally:
        await venue.close()
    written = 0
    if frame.height:
        stored = await asyncio.to_thread(lake.ingest, "insurance_pool", frame)
        written = stored.rows_written
    ts = frame["ts"].max() if frame.height else None
    assert ts is None or isinstance(ts, datetime)
    return InsuranceResult(venue.id, ts, frame, written)
