"""Collection use-cases shared by the front ends: backfill, snapshot, gap report.

Each function validates its inputs (a bad venue, instrument, stream or date is a
:class:`~perpscope.errors.UsageError`), opens the venue client, runs the collector and returns
plain records for rendering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from perpscope.collect.backfill import BackfillJob, Progress, StreamResult, backfill
from perpscope.collect.cursor import read_cursor
from perpscope.collect.gaps import GAP_TABLES, find_gaps
from perpscope.collect.retry import RetryPolicy
from perpscope.collect.snapshot import SnapshotResult, take_snapshot
from perpscope.collect.tiers import take_tiers
from perpscope.domain.symbols import Instrument, parse_instrument
from perpscope.errors import PerpscopeError, UsageError
from perpscope.store.lake import Lake
from perpscope.venues.base import RatePool, parse_stream
from perpscope.venues.registry import COLLECTABLE, open_venue

__all__ = [
    "DEFAULT_SNAPSHOT_INSTRUMENTS",
    "capability_rows",
    "gaps",
    "parse_day",
    "result_rows",
    "resume_points",
    "run_backfill",
    "run_snapshots",
    "run_snapshot",
    "run_tiers",
]

DEFAULT_SNAPSHOT_INSTRUMENTS: tuple[str, ...] = ("BTC-USDT-PERP", "ETH-USDT-PERP")


def parse_day(text: str | None, option: str) -> datetime | None:
    """Parse ``YYYY-MM-DD`` or an ISO 8601 time (UTC unless it names a zone)."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option} {text!r}: use YYYY-MM-DD or an ISO 8601 time") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _instruments(texts: Sequence[str]) -> list[Instrument]:
    out = []
    for t in texts:
        try:
            out.append(parse_instrument(t))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return out


def run_backfill(
    lake: Lake,
    venue: str,
    instruments: Sequence[str],
    streams: Sequence[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    restart: bool = False,
    api_url: str | None = None,
    progress: Progress | None = None,
    policy: RetryPolicy | None = None,
    pace: bool = True,
    limits: Sequence[RatePool] = (),
    rate_limit_ms: float | None = None,
    timeout_ms: int = 10_000,
) -> list[StreamResult]:
    """Backfill every (instrument, stream) pair of ``venue`` concurrently.

    ``limits`` replace the venue's rate-limit pools of the same name (a server with a smaller
    budget, such as the tests' fake exchange).

    Raises:
        UsageError: an unknown venue, instrument or stream, or no instrument or stream given.
    """
    if not instruments or not streams:
        raise UsageError("give at least one --instrument and one --stream")
    end = until or datetime.now(UTC)
    parsed_streams = [parse_stream(s) for s in streams]
    jobs = [
        BackfillJob(inst, stream, since, end, restart)
        for inst in _instruments(instruments)
        for stream in parsed_streams
    ]
    client = open_venue(venue, api_url=api_url, rate_limit_ms=rate_limit_ms, timeout_ms=timeout_ms)
    lake.init()
    return asyncio.run(
        backfill(client, lake, jobs, policy=policy, pace=pace, limits=limits, progress=progress)
    )


def resume_points(
    lake: Lake, venue: str, instruments: Sequence[str], streams: Sequence[str]
) -> list[tuple[str, datetime | None]]:
    """Where a rerun of each (instrument, stream) continues: its stored cursor, if any.

    Used after an interrupted backfill; reads only committed cursors.
    """
    out = []
    for inst in instruments:
        for stream in streams:
            cursor = read_cursor(lake, venue, inst, stream) if lake.exists() else None
            out.append((f"{inst} {stream}", cursor))
    return out


def run_snapshot(
    lake: Lake,
    venue: str,
    instruments: Sequence[str] = DEFAULT_SNAPSHOT_INSTRUMENTS,
    *,
    api_url: str | None = None,
    policy: RetryPolicy | None = None,
    pace: bool = True,
    rate_limit_ms: float | None = None,
) -> SnapshotResult:
    """Take and store one all-symbol snapshot of ``venue`` (OI for ``instruments``)."""
    insts = tuple(_instruments(instruments))
    client = open_venue(venue, api_url=api_url, rate_limit_ms=rate_limit_ms)
    lake.init()
    return asyncio.run(take_snapshot(client, lake, insts, policy=policy, pace=pace))


def run_snapshots(
    lake: Lake,
    venues: Sequence[str] = COLLECTABLE,
    instruments: Sequence[str] = DEFAULT_SNAPSHOT_INSTRUMENTS,
    *,
    api_url: str | None = None,
    policy: RetryPolicy | None = None,
    pace: bool = True,
    rate_limit_ms: float | None = None,
) -> tuple[list[SnapshotResult], dict[str, str]]:
    """One snapshot of each of ``venues``, one venue after the other, each paced by its own
    rate-limit pools (``collect snapshot --venue all``).

    Instruments a venue does not collect (an inverse perp on a linear-only venue) are left out
    of that venue's OI read. A venue that fails does not stop the others.

    Returns:
        The results of the venues that succeeded, and the error of each venue that failed.
    """
    insts = tuple(_instruments(instruments))
    lake.init()
    results: list[SnapshotResult] = []
    errors: dict[str, str] = {}
    for vid in venues:
        client = open_venue(vid, api_url=api_url, rate_limit_ms=rate_limit_ms)
        try:
            results.append(
                asyncio.run(take_snapshot(client, lake, insts, policy=policy, pace=pace))
            )
        except UsageError:
            raise
        except PerpscopeError as exc:
            errors[vid] = str(exc)
    return results, errors


def run_tiers(
    lake: Lake,
    venue: str,
    instruments: Sequence[str],
    *,
    api_url: str | None = None,
    policy: RetryPolicy | None = None,
    pace: bool = True,
    rate_limit_ms: float | None = None,
) -> list[dict[str, Any]]:
    """Read and store the public leverage tiers of ``instruments`` on ``venue`` (one row per
    instrument: tiers read, their bound unit, rows written)."""
    if not instruments:
        raise UsageError("give at least one --instrument")
    insts = tuple(_instruments(instruments))
    client = open_venue(venue, api_url=api_url, rate_limit_ms=rate_limit_ms)
    results = asyncio.run(take_tiers(client, lake, insts, policy=policy, pace=pace))
    return [asdict(r) for r in results]


def gaps(
    lake: Lake, *, venue: str | None = None, instrument: str | None = None, table: str | None = None
) -> pl.DataFrame:
    """Holes in the stored series (see :func:`perpscope.collect.gaps.find_gaps`)."""
    if table is not None and table not in GAP_TABLES:
        raise UsageError(f"gaps are checked in {', '.join(GAP_TABLES)}, not {table!r}")
    return find_gaps(lake, venue=venue, instrument=instrument, table=table)


def result_rows(results: Sequence[StreamResult]) -> list[dict[str, Any]]:
    """Stream results as flat records for rendering (notes and errors included)."""
    rows = []
    for r in results:
        row = asdict(r)
        row["notes"] = len(r.notes)
        rows.append(row)
    return rows


def capability_rows(venue: str | None = None) -> list[dict[str, Any]]:
    """Per venue and stream family: page size, history depth and rate-limit pool."""
    rows = []
    for vid in [venue] if venue else COLLECTABLE:
        caps = open_venue(vid).capabilities
        pools = {p.name: p for p in caps.pools}
        for family, page in caps.page_size.items():
            pool = pools[caps.pool_for(family.removesuffix("_spot"))]
            depth = caps.history_days.get(family.removesuffix("_spot"))
            rows.append(
                {
                    "venue": vid,
                    "family": family,
                    "page_size": page,
                    "history": "since listing" if depth is None else f"{depth} days",
                    "pool": pool.name,
                    "pool_limit": f"{pool.limit} / {pool.window_s:g} s",
                }
            )
    return rows
