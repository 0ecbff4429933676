"""Backfill history streams page by page, one idempotent store commit per page, resumable.

A backfill of one (instrument, stream) pages forward from its start with the venue's largest
page size. Each page is written as one ``Lake.ingest`` commit, then the stream's cursor (the last
event stored) is appended to ``collect_cursor``. A restarted backfill resumes after its cursor.
Several streams run concurrently on one venue client; a stream that fails (a permanent venue
error, a contract violation, or a transient error that outlived its retries) stops alone with
one message, leaving every page it committed before and nothing of the failing page.

The cursor only says how far forward a stream has paged: a page the venue answered with rows
missing (a hole: consecutive rows further apart than the series' step) is behind it. So every
run ends by looking for holes of the stream inside the range it covers, and fetches each hole
again; a hole still there afterwards ends the stream with status ``holes`` and a message naming
it, and the next run tries it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import polars as pl

from perpscope.collect.cursor import read_cursor, write_cursor
from perpscope.collect.gaps import find_gaps, series_of
from perpscope.collect.retry import PoolGates, RetryPolicy, call_with_retry
from perpscope.domain.symbols import Instrument
from perpscope.errors import PerpscopeError, UsageError
from perpscope.store.lake import Lake
from perpscope.venues.base import HistoryPage, RatePool, Stream, Venue

__all__ = ["BackfillJob", "Progress", "StreamResult", "backfill", "backfill_stream"]

_MS = timedelta(milliseconds=1)
_EDGE = timedelta(minutes=1)
"""How far inside a venue's history window a stream starts: the window's edge moves with the
venue's clock while the first request waits for its slot, and a request past the edge is
refused (Binance ``-1130`` on ``futures/data/*``)."""


@dataclass(frozen=True, slots=True)
class BackfillJob:
    """One stream of one instrument to backfill between ``since`` and ``until``.

    ``since`` ``None`` means as far back as the venue keeps (since listing, or its history depth).
    """

    instrument: Instrument
    stream: Stream
    since: datetime | None
    until: datetime
    restart: bool = False

    @property
    def key(self) -> str:
        """``BTC-USDT-PERP funding``."""
        return f"{self.instrument} {self.stream.name}"


@dataclass
class StreamResult:
    """What a backfill of one stream did."""

    instrument: str
    stream: str
    status: str = "ok"
    pages: int = 0
    rows_in: int = 0
    rows_written: int = 0
    start: datetime | None = None
    resumed_from: datetime | None = None
    last_ts: datetime | None = None
    holes: int = 0
    holes_refilled: int = 0
    retries: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)


class Progress(Protocol):
    """Receives progress of each stream (the CLI draws bars from it)."""

    def started(self, key: str, start: datetime, end: datetime) -> None:
        """A stream starts at ``start`` and ends at ``end``."""

    def advanced(self, key: str, upto: datetime, rows_written: int) -> None:
        """A page up to ``upto`` was stored."""

    def finished(self, key: str, result: StreamResult) -> None:
        """A stream ended (``result.status`` says how)."""


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _first(job: BackfillJob, venue: Venue) -> datetime:
    """The earliest event the job covers: ``since``, within the venue's history depth."""
    depth = venue.capabilities.history_days.get(job.stream.family)
    earliest = job.until - timedelta(days=depth) + _EDGE if depth is not None else None
    start = job.since or earliest or datetime.fromtimestamp(0, UTC)
    if earliest is not None and start < earliest:
        start = earliest  # the venue keeps nothing older, and refuses to be asked
    return start


def _start(job: BackfillJob, venue: Venue, cursor: datetime | None) -> datetime:
    start = _first(job, venue)
    if cursor is not None and not job.restart:
        start = max(start, cursor + _MS)
    return start


async def _page_through(
    venue: Venue,
    lake: Lake,
    job: BackfillJob,
    start_ms: int,
    end_ms: int,
    prev_ts: datetime | None,
    fetch: Callable[[Callable[[], Awaitable[HistoryPage]]], Awaitable[HistoryPage]],
    result: StreamResult,
    on_page: Callable[[datetime], Awaitable[None]] | None = None,
) -> None:
    """Page forward from ``start_ms`` to ``end_ms``, one store commit per page."""
    while start_ms < end_ms:
        page = await fetch(
            lambda s=start_ms, p=prev_ts: venue.fetch_history(  # type: ignore[misc]
                job.instrument, job.stream, s, end_ms, p
            )
        )
        result.pages += 1
        result.rows_in += page.raw_rows
        if page.frame.height and page.last_ts is not None:
            stored = await asyncio.to_thread(lake.ingest, job.stream.table, page.frame)
            result.rows_written += stored.rows_written
            prev_ts = page.last_ts
            if on_page is not None:
                await on_page(page.last_ts)
        nxt = page.next_start_ms
        if nxt is None:
            nxt = _ms(page.last_ts) + 1 if page.last_ts is not None else end_ms
        if page.done or nxt <= start_ms:
            break
        start_ms = nxt


async def backfill_stream(
    venue: Venue,
    lake: Lake,
    job: BackfillJob,
    *,
    gates: PoolGates,
    policy: RetryPolicy,
    progress: Progress | None = None,
    rng: random.Random | None = None,
) -> StreamResult:
    """Backfill one stream; never raises perpscope errors (they end up in the result)."""
    result = StreamResult(str(job.instrument), job.stream.name)
    inst = str(job.instrument)
    pool = venue.capabilities.pool_for(job.stream.family)
    cost = venue.capabilities.cost_of(job.stream.family)

    def retried(exc: Exception, wait_s: float) -> None:
        result.retries += 1
        result.notes.append(f"retry after {wait_s:.2f}s: {exc}")

    async def fetch(call: Callable[[], Awaitable[HistoryPage]]) -> HistoryPage:
        return await call_with_retry(
            call, pool=pool, gates=gates, policy=policy, cost=cost, rng=rng, on_retry=retried
        )

    async def advanced(last_ts: datetime) -> None:
        await asyncio.to_thread(write_cursor, lake, venue.id, inst, job.stream.name, last_ts)
        result.last_ts = last_ts
        if progress:
            progress.advanced(job.key, last_ts, result.rows_written)

    try:
        if job.since is not None and job.since >= job.until:
            raise UsageError(f"{job.key}: --since {job.since:%Y-%m-%d} is not before --until")
        cursor = await asyncio.to_thread(read_cursor, lake, venue.id, inst, job.stream.name)
        start = _start(job, venue, cursor)
        result.start = start
        result.resumed_from = cursor if cursor is not None and not job.restart else None
        prev_ts = None if job.restart else cursor
        if progress:
            progress.started(job.key, start, job.until)
        await _page_through(
            venue, lake, job, _ms(start), _ms(job.until), prev_ts, fetch, result, advanced
        )
        await _refill_holes(venue, lake, job, fetch, result)
    except PerpscopeError as exc:
        result.status = "failed"
        result.error = f"{job.key}: {exc}"
        resume_at = result.last_ts or result.resumed_from
        if resume_at is not None:  # keep the resume point, with the error as its note
            with contextlib.suppress(PerpscopeError):  # the stream has failed already
                await asyncio.to_thread(
                    write_cursor, lake, venue.id, inst, job.stream.name, resume_at, result.error
                )
    if progress:
        progress.finished(job.key, result)
    return result


async def _holes(venue: Venue, lake: Lake, job: BackfillJob) -> pl.DataFrame:
    """Holes of the job's series that lie inside the range the job covers.

    A hole reaching outside it (rows stored by a run over another range) is not this job's to
    fill: it is left to ``collect gaps``.
    """
    found = await asyncio.to_thread(
        find_gaps, lake, venue=venue.id, instrument=str(job.instrument), table=job.stream.table
    )
    return found.filter(
        (pl.col("series") == series_of(job.stream))
        & (pl.col("gap_start") >= _first(job, venue))
        & (pl.col("gap_end") <= job.until)
    )


async def _refill_holes(
    venue: Venue,
    lake: Lake,
    job: BackfillJob,
    fetch: Callable[[Callable[[], Awaitable[HistoryPage]]], Awaitable[HistoryPage]],
    result: StreamResult,
) -> None:
    """Fetch every hole of the job's range again; report the holes that are still there."""
    holes = await _holes(venue, lake, job)
    if holes.height == 0:
        return
    for hole in holes.iter_rows(named=True):
        start = _ms(hole["gap_start"]) + 1
        await _page_through(
            venue, lake, job, start, _ms(hole["gap_end"]), hole["gap_start"], fetch, result
        )
    left = await _holes(venue, lake, job)
    result.holes = left.height
    result.holes_refilled = holes.height - left.height
    if left.height:
        result.status = "holes"
        shown = "; ".join(
            f"{h['gap_start']:%Y-%m-%d %H:%M} to {h['gap_end']:%Y-%m-%d %H:%M} "
            f"({h['missing']} rows missing)"
            for h in left.head(3).iter_rows(named=True)
        )
        more = f" and {left.height - 3} more" if left.height > 3 else ""
        result.error = (
            f"{job.key}: {left.height} hole(s) the venue did not fill: {shown}{more}; "
            "a rerun fetches them again"
        )


async def backfill(
    venue: Venue,
    lake: Lake,
    jobs: Sequence[BackfillJob],
    *,
    policy: RetryPolicy | None = None,
    pace: bool = True,
    limits: Sequence[RatePool] = (),
    progress: Progress | None = None,
    seed: int | None = None,
) -> list[StreamResult]:
    """Run ``jobs`` concurrently on one venue client, then close it.

    Args:
        venue: the venue (its client is closed at the end).
        lake: the store.
        jobs: streams to backfill.
        policy: retry policy (default :class:`RetryPolicy`).
        pace: space requests to stay under the venue's pools.
        limits: pools that replace the venue's pools of the same name (a smaller budget).
        progress: progress receiver.
        seed: seed of the backoff jitter (for reproducible tests).
    """
    gates = PoolGates(venue.capabilities, pace=pace, limits=tuple(limits))
    rng = random.Random(seed)
    try:
        return list(
            await asyncio.gather(
                *[
                    backfill_stream(
                        venue, lake, job, gates=gates, policy=policy or RetryPolicy(),
                        progress=progress, rng=rng,
                    )
                    for job in jobs
                ]
            )
        )  # fmt: skip
    finally:
        await venue.close()
