"""Option-chain collection: one chain snapshot per underlying, the option trades and the
volatility index of a recent window, stored together.

Every request goes through the venue's rate-limit pool (pacing, retries of transient errors and
rate limits, as for every collection). Everything is fetched before anything is stored, and each
table is then written in one idempotent commit: a collection that fails stores nothing of
itself, and a rerun over the same window writes no duplicate (trades are keyed by their id,
chains by their snapshot time, candles by their open time).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

import polars as pl

from perpscope.collect.retry import PoolGates, RetryPolicy, call_with_retry
from perpscope.store.lake import Lake
from perpscope.venues.base import Capabilities

__all__ = ["OptionsResult", "OptionsVenue", "collect_options"]

T = TypeVar("T")

# the order the tables are written in: instruments first, so every stored chain row names a
# listed instrument
_TABLES = ("instruments", "options_snapshot", "option_trades", "vol_index")


class OptionsVenue(Protocol):
    """What a venue with option chains offers (Deribit)."""

    @property
    def id(self) -> str:
        """The venue id."""
        ...

    @property
    def capabilities(self) -> Capabilities:
        """The venue's quirks (its rate-limit pools)."""
        ...

    async def fetch_option_chain(self, currency: str) -> dict[str, pl.DataFrame]:
        """``instruments`` and ``options_snapshot`` frames of one underlying."""
        ...

    async def fetch_option_trades(self, currency: str, start_ms: int, end_ms: int) -> pl.DataFrame:
        """``option_trades`` rows of one underlying in ``[start_ms, end_ms)``."""
        ...

    async def fetch_dvol(
        self, currency: str, start_ms: int, end_ms: int, timeframe: str = "1h"
    ) -> pl.DataFrame:
        """``vol_index`` candles of one underlying opening in ``[start_ms, end_ms)``."""
        ...

    async def close(self) -> None:
        """Release the HTTP session."""
        ...


@dataclass
class OptionsResult:
    """Rows read and written per table, and the snapshot time of each underlying's chain."""

    venue: str
    rows_in: dict[str, int] = field(default_factory=dict)
    rows_written: dict[str, int] = field(default_factory=dict)
    chains: dict[str, str] = field(default_factory=dict)


async def collect_options(
    venue: OptionsVenue,
    lake: Lake,
    underlyings: Sequence[str],
    start_ms: int,
    end_ms: int,
    *,
    dvol_timeframe: str = "1h",
    policy: RetryPolicy | None = None,
    pace: bool = True,
    seed: int | None = None,
) -> OptionsResult:
    """Collect and store chains, trades in ``[start_ms, end_ms)`` and DVOL; closes the venue.

    Raises:
        PerpscopeError: a request failed past its retries or a payload broke its contract
            (nothing of this collection is stored then).
    """
    caps = venue.capabilities
    gates = PoolGates(caps, pace=pace)
    rng = random.Random(seed)
    pool = caps.pool_for("options")

    async def call(fn: Callable[[], Awaitable[T]]) -> T:
        return await call_with_retry(
            fn, pool=pool, gates=gates, policy=policy or RetryPolicy(), rng=rng
        )

    frames: dict[str, list[pl.DataFrame]] = {t: [] for t in _TABLES}
    result = OptionsResult(venue.id)
    try:
        for cur in underlyings:
            chain = await call(lambda c=cur: venue.fetch_option_chain(c))  # type: ignore[misc]
            for table, frame in chain.items():
                frames[table].append(frame)
            snap = chain["options_snapshot"]
            last = snap["ts"].max() if snap.height else None
            if isinstance(last, datetime):
                result.chains[cur] = f"{last:%Y-%m-%dT%H:%M:%S}Z"
            frames["option_trades"].append(
                await call(lambda c=cur: venue.fetch_option_trades(c, start_ms, end_ms))  # type: ignore[misc]
            )
            frames["vol_index"].append(
                await call(
                    lambda c=cur: venue.fetch_dvol(c, start_ms, end_ms, dvol_timeframe)  # type: ignore[misc]
                )
            )
    finally:
        await venue.close()
    for table in _TABLES:
        parts = [f for f in frames[table] if f.height]
        if not parts:
            result.rows_in[table] = result.rows_written[table] = 0
            continue
        frame = pl.concat(parts, how="vertical_relaxed")
        stored = await asyncio.to_thread(lake.ingest, table, frame)
        result.rows_in[table] = frame.height
        result.rows_written[table] = stored.rows_written
    return result
