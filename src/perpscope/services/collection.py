"""Collection use-cases shared by the front ends: backfill, snapshot, gap report.

Each function validates its inputs (a bad venue, instrument, stream or date is a
:class:`~perpscope.errors.UsageError`), opens the venue client, runs the collector and returns
plain records for rendering.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import UTC, date, datetime
from typing import Any, cast

import polars as pl

from perpscope.collect.archive import ArchiveReport, backfill_archive
from perpscope.collect.backfill import BackfillJob, Progress, StreamResult, backfill
from perpscope.collect.cursor import read_cursor
from perpscope.collect.gaps import GAP_TABLES, find_gaps
from perpscope.collect.insurance import take_insurance
from perpscope.collect.options import OptionsResult, OptionsVenue, collect_options
from perpscope.collect.retry import RetryPolicy
from perpscope.collect.snapshot import SnapshotResult, take_snapshot
from perpscope.collect.stream import StreamOptions, StreamReport, collect_stream
from perpscope.collect.tiers import take_tiers
from perpscope.domain.symbols import Instrument, parse_instrument
from perpscope.errors import PerpscopeError, UsageError
from perpscope.store.lake import Lake
from perpscope.venues.base import RatePool, parse_stream
from perpscope.venues.registry import (
    COLLECTABLE,
    OPTIONS_VENUES,
    open_feeds,
    open_trade_history,
    open_venue,
)

__all__ = [
    "DEFAULT_SNAPSHOT_INSTRUMENTS",
    "capability_rows",
    "gaps",
    "parse_day",
    "result_rows",
    "resume_points",
    "run_backfill",
    "run_insurance",
    "run_options",
    "run_snapshots",
    "run_snapshot",
    "run_archive",
    "run_stream",
    "run_tiers",
    "stream_row",
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


def run_stream(
    lake: Lake,
    venue: str,
    instruments: Sequence[str],
    *,
    duration_s: float | None = None,
    ws_url: str | None = None,
    api_url: str | None = None,
    tick_every_s: float = 60.0,
    log: Callable[[str], None] = lambda _m: None,
    options: StreamOptions | None = None,
) -> list[StreamReport]:
    """Collect the live feeds of ``instruments`` on ``venue`` for ``duration_s`` seconds: one
    connection for the perpetuals and one for the spot pairs, concurrently; one report each.

    Where the venue serves past trades by time (Binance, OKX, Deribit), gaps in the trade stream are
    filled from its REST API (``api_url`` replaces its hosts).

    Raises:
        UsageError: an unknown venue or instrument, no instrument, or a bad duration.
    """
    if not instruments:
        raise UsageError("give at least one --instrument")
    if duration_s is not None and not (math.isfinite(duration_s) and duration_s > 0):
        raise UsageError(f"--duration {duration_s}: give a positive number of seconds")
    if not (math.isfinite(tick_every_s) and tick_every_s > 0):
        raise UsageError(f"--tick-every {tick_every_s}: give a positive number of seconds")
    if ws_url is not None and not ws_url.startswith(("ws://", "wss://")):
        raise UsageError(f"--ws-url {ws_url!r}: give a ws:// or wss:// URL")
    feeds = open_feeds(venue, tuple(_instruments(instruments)))
    opts = options or StreamOptions()
    opts = replace(opts, duration_s=duration_s, tick_every_s=tick_every_s)
    lake.init()
    history = open_trade_history(venue, api_url=api_url)
    by_id = {str(i): i for feed in feeds for i in feed.instruments}

    async def run() -> list[StreamReport]:
        fetch = None
        if history is not None:
            rest = history

            async def fetch(inst: str, start: int, end: int) -> list[tuple[int, int, float, bool]]:
                return await rest.fetch_trades(by_id[inst], start, end)

        try:
            return list(
                await asyncio.gather(
                    *(
                        collect_stream(
                            feed, lake, opts, base_url=ws_url, log=log, fetch_trades=fetch
                        )  # fmt: skip
                        for feed in feeds
                    )
                )
            )
        finally:
            if history is not None:
                await history.close()

    return asyncio.run(run())


def run_archive(
    lake: Lake,
    instrument: str,
    *,
    since: datetime | None,
    until: datetime | None = None,
    datasets: Sequence[str] = (),
    timeframe: str = "1h",
    base_url: str | None = None,
    log: Callable[[str], None] = lambda _m: None,
    today: date | None = None,
) -> ArchiveReport:
    """Backfill ``instrument`` from Binance's public archive (every dataset when none is named).

    Raises:
        UsageError: a bad instrument, dataset, timeframe, URL or date range.
    """
    from perpscope.venues.binance import CAPABILITIES
    from perpscope.venues.binance_archive import DATASETS

    if since is None:
        raise UsageError("give --since (YYYY-MM-DD): the archive goes back years")
    if timeframe not in CAPABILITIES.timeframes:
        raise UsageError(
            f"--timeframe {timeframe!r}: use one of {', '.join(CAPABILITIES.timeframes)}"
        )
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise UsageError(f"--base-url {base_url!r}: give an http:// or https:// URL")
    end = (until or datetime.now(UTC)).date()
    if until is not None and until < since:
        raise UsageError("--until is before --since")
    inst = _instruments([instrument])[0]
    lake.init()
    return asyncio.run(
        backfill_archive(
            lake,
            inst,
            tuple(datasets) or DATASETS,
            since.date(),
            end,
            timeframe=timeframe,
            base_url=base_url,
            log=log,
            today=today,
        )  # fmt: skip
    )


def stream_row(report: StreamReport) -> dict[str, Any]:
    """A stream report as one flat record for rendering (gaps as text)."""
    row = asdict(report)
    row["instruments"] = ", ".join(report.instruments)
    row["gaps"] = [
        f"{g.instrument} {g.start:%Y-%m-%dT%H:%M:%S}Z..{g.end:%H:%M:%S}Z: {g.reason}"
        for g in report.gaps
    ]
    row["last_event"] = (
        datetime.fromtimestamp(report.last_event_ms / 1000, UTC) if report.last_event_ms else None
    )
    del row["last_event_ms"]
    return row


def run_options(
    lake: Lake,
    venue: str,
    underlyings: Sequence[str] = ("BTC", "ETH"),
    *,
    hours: float = 24.0,
    until: datetime | None = None,
    api_url: str | None = None,
    policy: RetryPolicy | None = None,
    pace: bool = True,
    rate_limit_ms: float | None = None,
) -> OptionsResult:
    """Collect and store option chains (now), option trades and DVOL of the last ``hours``
    before ``until`` (default: now) for each underlying (``collect options``).

    Raises:
        UsageError: the venue has no option chains, an unknown underlying, or ``hours`` <= 0.
    """
    if venue not in OPTIONS_VENUES:
        raise UsageError(
            f"option chains are collected from {', '.join(OPTIONS_VENUES)}, not {venue!r}"
        )
    if hours <= 0:
        raise UsageError(f"--hours must be positive, got {hours:g}")
    names = [u.strip().upper() for u in underlyings]
    if not names:
        raise UsageError("give at least one --underlying")
    end = until or datetime.now(UTC)
    end_ms = int(end.timestamp() * 1000)
    start_ms = end_ms - int(hours * 3_600_000)
    client = cast(OptionsVenue, open_venue(venue, api_url=api_url, rate_limit_ms=rate_limit_ms))
    lake.init()
    return asyncio.run(
        collect_options(client, lake, names, start_ms, end_ms, policy=policy, pace=pace)
    )


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


def run_insurance(
    lake: Lake,
    venue: str,
    coin: str | None = None,
    *,
    api_url: str | None = None,
    policy: RetryPolicy | None = None,
    pace: bool = True,
    rate_limit_ms: float | None = None,
) -> dict[str, Any]:
    """Read and store ``venue``'s insurance pools (of ``coin``, or all): the venue, the update
    time of the figures, ``level`` ``pool`` (balances are per pool, not per instrument), the rows
    written and one record per pool (coin, symbols, shared, balance, value_usd)."""
    name = coin.strip().upper() if coin is not None else None
    if name is not None and not name.isalnum():
        raise UsageError(f"--coin must be a coin name like USDT, got {coin!r}")
    client = open_venue(venue, api_url=api_url, rate_limit_ms=rate_limit_ms)
    res = asyncio.run(take_insurance(client, lake, name, policy=policy, pace=pace))
    pools = res.pools.select(
        "coin", "symbols", "shared", pl.col("balance_coin").alias("balance"), "value_usd"
    )
    return {"venue": res.venue, "ts": res.ts, "level": "pool", "rows_written": res.rows_written,
            "pools": pools.to_dicts()}  # fmt: skip


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
