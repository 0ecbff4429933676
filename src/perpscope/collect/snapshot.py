"""All-symbol snapshots: current funding, mark/index prices, instruments and open interest.

Open-interest and ratio history is kept for 30 days only on Binance (research/anchors.md D.5), so
the way to build OI history going forward is to take snapshots on a schedule. One snapshot is a
handful of requests (instruments, the all-symbol funding endpoint, OI per followed instrument),
each table stored in one idempotent commit.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from perpscope.collect.retry import PoolGates, RetryPolicy, call_with_retry
from perpscope.domain.symbols import Instrument
from perpscope.store.lake import Lake
from perpscope.venues.base import Venue

__all__ = ["SnapshotResult", "take_snapshot"]


@dataclass
class SnapshotResult:
    """Rows read and written per table, and venue symbols that have no canonical id."""

    venue: str
    rows_in: dict[str, int] = field(default_factory=dict)
    rows_written: dict[str, int] = field(default_factory=dict)
    unmapped: tuple[str, ...] = ()


async def take_snapshot(
    venue: Venue,
    lake: Lake,
    instruments: tuple[Instrument, ...],
    *,
    policy: RetryPolicy | None = None,
    pace: bool = True,
    seed: int | None = None,
) -> SnapshotResult:
    """Take one snapshot of ``venue`` and store it; closes the venue's client.

    Raises:
        PerpscopeError: the snapshot could not be taken (nothing of it is stored then).
    """
    gates = PoolGates(venue.capabilities, pace=pace)
    try:
        snap = await call_with_retry(
            lambda: venue.fetch_snapshot(instruments),
            pool=venue.capabilities.pool_for("snapshot"),
            gates=gates,
            cost=venue.capabilities.cost_of("snapshot"),
            policy=policy or RetryPolicy(),
            rng=random.Random(seed),
        )
    finally:
        await venue.close()
    result = SnapshotResult(venue.id, unmapped=snap.unmapped)
    for table, frame in snap.frames.items():
        stored = await asyncio.to_thread(lake.ingest, table, frame)
        result.rows_in[table] = frame.height
        result.rows_written[table] = stored.rows_written
    return result
