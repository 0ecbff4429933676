"""Live collection from a venue's WebSocket: liquidations, 1-minute taker volume, funding ticks.

One connection per run; a reader task puts raw frames on a BOUNDED queue (when the consumer falls
behind, the reader stops reading and TCP pushes back on the venue: a burst is absorbed without loss
and memory stays bounded by the queue), and a consumer parses them into :class:`StreamState` and
commits in batches (every ``flush_s`` seconds or ``flush_rows`` rows, one atomic idempotent commit
per table).

What is stored, and when:

- ``liquidations``: every event once. Its id is stable (the venue's, or a hash of its fields), so
  an event seen again after a reconnect is skipped in memory and, across runs, by the store's key.
  A sampled venue (Binance sends one liquidation per symbol per second) stores its flag as the
  note of the stream's cursor row (``ws:liquidations``); reports carry ``lower_bound``.
- ``taker_volume`` (period ``1m``): trades are summed per minute in the stream; a minute is stored
  when the first trade of a later minute arrives, and only if the feed covered all of it. The first
  minute of a run (joined midway), the last (still open) and any minute a gap touches are not
  stored, so a stored minute is never a partial sum.
- ``funding_snapshot``: the first mark-price/funding tick of every ``tick_every_s`` slot.

Gaps: a venue with consecutive trade ids (Binance aggregate trades) proves a reconnect lost nothing
(the first id after it follows the last, or repeats it) or names the ids lost; on other venues each
reconnect is a gap unless the replayed trades overlap. Each gap is written to ``collect_cursor``
(stream ``ws:trades``, note ``gap ...``) and listed in the report.

Reconnects back off exponentially with jitter (:class:`~perpscope.collect.retry.RetryPolicy`); a
connection that delivered frames resets the count. Silence longer than ``silence_s`` (no frame,
not even a venue ping) closes the connection and reconnects; pings are answered by aiohttp, and the
venue's application-level ping (Bybit) is sent on its schedule. A frame that is not JSON or breaks
the venue's shape is logged on one line, counted and skipped; the stream goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
import polars as pl

from perpscope.collect.cursor import write_cursor
from perpscope.collect.retry import RetryPolicy
from perpscope.domain.schema import EARLIEST_TS, FUTURE_SLACK, LATEST_SCHEDULE_TS
from perpscope.errors import DataContractError, PerpscopeError, TransientVenueError
from perpscope.store.lake import Lake
from perpscope.venues.ws import StreamFeed, SubscriptionRefused, WsEndpoint

__all__ = ["Gap", "StreamOptions", "StreamReport", "StreamState", "collect_stream"]

_EARLIEST_MS: Final = int(EARLIEST_TS.timestamp() * 1000)
_LATEST_SCHEDULE_MS: Final = int(LATEST_SCHEDULE_TS.timestamp() * 1000)
_SLACK_MS: Final = int(FUTURE_SLACK.total_seconds() * 1000)
_MINUTE_MS: Final = 60_000
_RECENT_CAP: Final = 200_000  # ids remembered for de-duplication (bounded memory)


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """How a live collection runs.

    Attributes:
        duration_s: stop after this many seconds (``None``: until cancelled).
        flush_s: commit buffered rows at least this often (seconds).
        flush_rows: ... or as soon as this many rows are buffered.
        silence_s: reconnect after this long without any frame.
        queue_frames: frames held between reader and consumer (the memory bound).
        tick_every_s: store one funding tick per instrument per slot of this length.
        max_frames: stop after this many frames (replays in tests and benchmarks).
        policy: reconnect backoff; more than ``policy.attempts`` failed connects in a row stop.
        seed: seed of the backoff jitter.
        stop_when: stop as soon as this holds for the report (replays: "the last event came").
    """

    duration_s: float | None = None
    flush_s: float = 2.0
    flush_rows: int = 5_000
    silence_s: float = 30.0
    queue_frames: int = 10_000
    tick_every_s: float = 60.0
    max_frames: int | None = None
    policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=8, cap_s=30.0))
    seed: int | None = None
    stop_when: Callable[[StreamReport], bool] | None = None


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch of an instrument's trades the stream may have missed."""

    instrument: str
    start: datetime
    end: datetime
    reason: str


@dataclass
class StreamReport:
    """What one live collection did."""

    venue: str
    instruments: list[str]
    frames: int = 0
    events: int = 0
    malformed: int = 0
    connects: int = 0
    reconnects: int = 0
    liquidations_seen: int = 0
    liquidations_written: int = 0
    duplicate_liquidations: int = 0
    duplicate_trades: int = 0
    trades: int = 0
    taker_minutes_written: int = 0
    partial_minutes_dropped: int = 0
    late_trades: int = 0
    ticks_written: int = 0
    commits: int = 0
    max_queue: int = 0
    last_event_ms: int = 0
    gaps_filled: int = 0
    """Gaps whose minutes were summed from the venue's REST trades instead."""
    minutes_from_rest: int = 0
    lower_bound: bool = False
    gaps: list[Gap] = field(default_factory=list)
    error: str | None = None


@dataclass(slots=True)
class _Series:
    """Per-instrument state of the trade aggregation and tick sampling."""

    bucket: int | None = None
    buy: float = 0.0
    sell: float = 0.0
    covered_since: int | None = None
    last_ts: int | None = None
    last_id: int | None = None
    fresh: bool = True
    recent: dict[str | int, None] = field(default_factory=dict)
    tick_slot: int | None = None


class StreamState:
    """The in-stream aggregation (a :class:`~perpscope.venues.ws.FrameSink`) and its buffers.

    Rows wait in plain lists until :meth:`take` hands them to a commit.
    """

    def __init__(
        self,
        venue: str,
        report: StreamReport,
        *,
        tick_every_s: float = 60.0,
        log: Callable[[str], None] = lambda _m: None,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        trade_ids: str = "aggregate trade ids",
    ) -> None:
        self.venue = venue
        self._ids_name = trade_ids
        self.report = report
        self.log = log
        self._tick_ms = max(1, int(tick_every_s * 1000))
        self._now_ms = now_ms
        self._latest_ok = now_ms() + _SLACK_MS
        self._series: dict[str, _Series] = {}
        self._liq_seen: dict[str, None] = {}
        self.liquidations: list[tuple[str, int, str, str, float, float]] = []
        self.taker: list[tuple[str, int, float, float]] = []
        self.ticks: list[tuple[str, int, Any, Any, Any, Any, Any]] = []
        self.new_gaps: list[Gap] = []
        self.last_liquidation: dict[str, int] = {}
        self.repairs: list[tuple[str, int, int]] = []
        """(instrument, first minute, last minute) a gap kept from being stored."""

    # ------------------------------------------------------------------------------ FrameSink

    def _s(self, instrument: str) -> _Series:
        s = self._series.get(instrument)
        if s is None:
            s = self._series[instrument] = _Series()
        return s

    def _bad(self, what: str) -> None:
        self.report.malformed += 1
        self.log(f"{self.venue} stream: event skipped: {what}")

    def _ts_ok(self, ts: int) -> bool:
        if _EARLIEST_MS <= ts <= self._latest_ok:
            return True
        self._latest_ok = self._now_ms() + _SLACK_MS  # the clock moved on: look again
        return _EARLIEST_MS <= ts <= self._latest_ok

    def liquidation(
        self, instrument: str, ts_ms: int, event_id: str, side: str, px: float, qty_base: float
    ) -> None:
        """Buffer a liquidation unless its id was seen already."""
        if event_id in self._liq_seen:
            self.report.duplicate_liquidations += 1
            return
        if not self._ts_ok(ts_ms) or not px > 0 or not qty_base >= 0:
            self._bad(f"liquidation {instrument} at {ts_ms} with price {px} and size {qty_base}")
            return
        self._liq_seen[event_id] = None
        if len(self._liq_seen) > _RECENT_CAP:
            del self._liq_seen[next(iter(self._liq_seen))]
        self.liquidations.append((instrument, ts_ms, event_id, side, px, qty_base))
        if ts_ms > self.last_liquidation.get(instrument, 0):
            self.last_liquidation[instrument] = ts_ms
        self.report.liquidations_seen += 1
        if ts_ms > self.report.last_event_ms:
            self.report.last_event_ms = ts_ms

    def trade(
        self,
        instrument: str,
        ts_ms: int,
        qty_base: float,
        taker_buy: bool,
        trade_id: int | None,
        dedupe_key: str | int,
    ) -> None:
        """Add a trade to its minute; skip replays; detect gaps."""
        s = self._s(instrument)
        if trade_id is not None:
            last = s.last_id
            if last is not None and trade_id <= last:
                s.fresh = False  # a replayed trade: the reconnect overlapped, nothing was lost
                self.report.duplicate_trades += 1
                return
            if last is not None and trade_id > last + 1:
                self._gap(s, instrument, ts_ms, f"{self._ids_name} {last + 1}-{trade_id - 1} "
                          "missing")  # fmt: skip
            elif last is None:
                s.covered_since = ts_ms
            s.last_id = trade_id
            s.fresh = False
        else:
            if dedupe_key in s.recent:
                s.fresh = False
                self.report.duplicate_trades += 1
                return
            if s.fresh:
                if s.last_ts is None:
                    s.covered_since = ts_ms
                else:
                    self._gap(s, instrument, ts_ms, "reconnect (the venue's trade ids are not "
                              "ordered, so trades in between may be missing)")  # fmt: skip
                s.fresh = False
            s.recent[dedupe_key] = None
            if len(s.recent) > _RECENT_CAP:
                del s.recent[next(iter(s.recent))]
        if not self._ts_ok(ts_ms) or not qty_base >= 0:
            self._bad(f"trade {instrument} at {ts_ms} with size {qty_base}")
            return
        self.report.trades += 1
        bucket = ts_ms - ts_ms % _MINUTE_MS
        if s.bucket is None:
            s.bucket = bucket
        elif bucket > s.bucket:
            self._close(s, instrument)
            s.bucket, s.buy, s.sell = bucket, 0.0, 0.0
        elif bucket < s.bucket:
            self.report.late_trades += 1  # its minute is closed already
            return
        if taker_buy:
            s.buy += qty_base
        else:
            s.sell += qty_base
        if s.last_ts is None or ts_ms > s.last_ts:
            s.last_ts = ts_ms
            if ts_ms > self.report.last_event_ms:
                self.report.last_event_ms = ts_ms

    def tick(
        self,
        instrument: str,
        ts_ms: int,
        rate: float | None,
        next_funding_ms: int | None,
        mark_px: float | None,
        index_px: float | None,
        interval_h: float | None,
    ) -> None:
        """Buffer the first tick of each ``tick_every_s`` slot."""
        s = self._s(instrument)
        if ts_ms > self.report.last_event_ms:
            self.report.last_event_ms = ts_ms
        slot = ts_ms // self._tick_ms
        if s.tick_slot is not None and slot <= s.tick_slot:
            return
        if not self._ts_ok(ts_ms):
            self._bad(f"tick {instrument} at {ts_ms}")
            return
        s.tick_slot = slot
        self.ticks.append(
            (
                instrument,
                ts_ms,
                rate,
                next_funding_ms if next_funding_ms and next_funding_ms <= _LATEST_SCHEDULE_MS
                else None,
                mark_px if mark_px is not None and mark_px > 0 else None,
                index_px if index_px is not None and index_px > 0 else None,
                interval_h if interval_h is not None and 1 <= interval_h <= 24 else None,
            )
        )  # fmt: skip

    # ------------------------------------------------------------------------------ lifecycle

    def on_connect(self) -> None:
        """A new connection: the next trade of each instrument decides whether there was a gap."""
        for s in self._series.values():
            s.fresh = True

    def _gap(self, s: _Series, instrument: str, ts_ms: int, reason: str) -> None:
        start = s.last_ts if s.last_ts is not None else ts_ms
        first = s.bucket if s.bucket is not None else start - start % _MINUTE_MS
        self.repairs.append((instrument, first, ts_ms - ts_ms % _MINUTE_MS))
        gap = Gap(instrument, _dt(start), _dt(ts_ms), reason)
        self.report.gaps.append(gap)
        self.new_gaps.append(gap)
        s.covered_since = ts_ms
        self.log(f"{self.venue} stream: gap in {instrument} trades {gap.start:%H:%M:%S.%f}"
                 f"..{gap.end:%H:%M:%S.%f}: {reason}")  # fmt: skip

    def _close(self, s: _Series, instrument: str) -> None:
        assert s.bucket is not None
        if s.covered_since is not None and s.bucket >= s.covered_since:
            self.taker.append((instrument, s.bucket, s.buy, s.sell))
        else:
            self.report.partial_minutes_dropped += 1

    def open_minutes(self) -> int:
        """Minutes still being summed (not stored when the run ends)."""
        return sum(1 for s in self._series.values() if s.bucket is not None)

    @property
    def pending(self) -> int:
        """Rows waiting for a commit."""
        return len(self.liquidations) + len(self.taker) + len(self.ticks)

    def take(self) -> dict[str, pl.DataFrame]:
        """Hand the buffered rows over as one frame per table, emptying the buffers."""
        out: dict[str, pl.DataFrame] = {}
        venue = pl.lit(self.venue).alias("venue")
        if self.liquidations:
            liqs, self.liquidations = self.liquidations, []
            cols: list[tuple[Any, ...]] = list(zip(*liqs, strict=True))
            out["liquidations"] = pl.DataFrame(
                {"instrument": cols[0], "ts": cols[1], "event_id": cols[2], "side": cols[3],
                 "px": cols[4], "qty_base": cols[5]},
                schema={"instrument": pl.String, "ts": pl.Int64, "event_id": pl.String,
                        "side": pl.String, "px": pl.Float64, "qty_base": pl.Float64},
            ).select(venue, "instrument", _utc("ts"), "event_id", "side", "px", "qty_base",
                     (pl.col("px") * pl.col("qty_base")).alias("notional_usd"))  # fmt: skip
        if self.taker:
            minutes, self.taker = self.taker, []
            cols = list(zip(*minutes, strict=True))
            out["taker_volume"] = pl.DataFrame(
                {"instrument": cols[0], "ts": cols[1], "buy": cols[2], "sell": cols[3]},
                schema={"instrument": pl.String, "ts": pl.Int64, "buy": pl.Float64,
                        "sell": pl.Float64},
            ).select(
                venue, "instrument", pl.lit("1m").alias("period"), _utc("ts"),
                pl.col("buy").alias("buy_volume_base"), pl.col("sell").alias("sell_volume_base"),
                pl.when(pl.col("sell") > 0).then(pl.col("buy") / pl.col("sell"))
                .otherwise(None).alias("buy_sell_ratio"),
            )  # fmt: skip
        if self.ticks:
            ticks, self.ticks = self.ticks, []
            cols = list(zip(*ticks, strict=True))
            out["funding_snapshot"] = pl.DataFrame(
                {"instrument": cols[0], "ts": cols[1], "rate": cols[2], "next": cols[3],
                 "mark_px": cols[4], "index_px": cols[5], "interval_h": cols[6]},
                schema={"instrument": pl.String, "ts": pl.Int64, "rate": pl.Float64,
                        "next": pl.Int64, "mark_px": pl.Float64, "index_px": pl.Float64,
                        "interval_h": pl.Float64},
            ).select(venue, "instrument", _utc("ts"), "rate", "interval_h",
                     _utc("next").alias("next_funding_ts"), "mark_px", "index_px")  # fmt: skip
        return out


def _utc(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.Datetime("ms", "UTC")).cast(pl.Datetime("us", "UTC"))


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


# ---------------------------------------------------------------------------------- the run

_CONNECTED: Final = object()
_TABLE_COUNTER: Final = {
    "liquidations": "liquidations_written",
    "taker_volume": "taker_minutes_written",
    "funding_snapshot": "ticks_written",
}


TradeFetcher = Callable[[str, int, int], Awaitable[list[tuple[int, int, float, bool]]]]
"""Trades of an instrument from the venue's REST API: ``(id, ms, qty, taker bought)`` with
``start <= ms < end``."""


async def _fill_gaps(
    state: StreamState,
    lake: Lake,
    feed: StreamFeed,
    fetch: TradeFetcher,
    log: Callable[[str], None],
    *,
    final: bool = False,
) -> None:
    """Sum the minutes a gap kept from being stored from REST trades, once they have ended.

    Runs when the stream has moved past a gap's last minute (at the end of a run: the minutes
    that have ended by then). The rows join the next commit; a failed fetch leaves the gap as it
    is (recorded, its minutes missing).
    """
    report = state.report
    pending = []
    for inst, first, last in state.repairs:
        ended = report.last_event_ms - report.last_event_ms % _MINUTE_MS  # minutes before ended
        if last + _MINUTE_MS > ended:
            if not final:
                pending.append((inst, first, last))
                continue
            last = ended - _MINUTE_MS
            if last < first:
                continue
        try:
            trades = await fetch(inst, first, last + _MINUTE_MS)
        except PerpscopeError as exc:
            log(f"{feed.venue} stream: gap in {inst} trades not filled from REST: {exc}")
            continue
        sums: dict[int, list[float]] = {}
        for _id, ts, qty, buy in trades:
            pair = sums.setdefault(ts - ts % _MINUTE_MS, [0.0, 0.0])
            pair[0 if buy else 1] += qty
        state.taker += [(inst, m, b, s) for m, (b, s) in sorted(sums.items())]
        report.gaps_filled += 1
        report.minutes_from_rest += len(sums)
        note = (f"gap filled from REST: {len(trades)} trades, minutes {_dt(first):%H:%M}.."
                f"{_dt(last):%H:%M}Z")  # fmt: skip
        await asyncio.to_thread(
            write_cursor, lake, feed.venue, inst, "ws:trades", _dt(last + _MINUTE_MS - 1), note
        )
        log(f"{feed.venue} stream: {inst} {note}")
    state.repairs = pending


async def _commit(state: StreamState, lake: Lake, feed: StreamFeed) -> None:
    """Commit the buffered rows (one atomic, idempotent commit per table) and new gaps."""
    report = state.report
    for table, frame in state.take().items():
        result = await asyncio.to_thread(lake.ingest, table, frame)
        setattr(report, _TABLE_COUNTER[table],
                getattr(report, _TABLE_COUNTER[table]) + result.rows_written)  # fmt: skip
        report.commits += 1
    gaps, state.new_gaps = state.new_gaps, []
    for gap in gaps:
        note = f"gap {gap.start:%Y-%m-%dT%H:%M:%S.%f}Z..{gap.end:%H:%M:%S.%f}Z: {gap.reason}"
        await asyncio.to_thread(
            write_cursor, lake, feed.venue, gap.instrument, "ws:trades", gap.end, note
        )


class _Pump:
    """Moves frames from a connection to the queue; ``last`` is when the latest one came."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.frames = 0
        self.error: str | None = None

    async def run(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        queue: asyncio.Queue[Any],
        report: StreamReport,
        answer: Callable[[str | bytes], str | None] | None = None,
    ) -> None:
        async for msg in ws:  # no per-frame timeout: silence is watched by _watch
            self.last = time.monotonic()
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                self.frames += 1
                if answer is not None:
                    reply = answer(msg.data)
                    if reply is not None:
                        await ws.send_str(reply)
                await queue.put(msg.data)
                if queue.qsize() > report.max_queue:
                    report.max_queue = queue.qsize()
            elif msg.type is aiohttp.WSMsgType.ERROR:
                self.error = f"connection error: {ws.exception()}"
                return


async def _watch(
    ws: aiohttp.ClientWebSocketResponse,
    ep: WsEndpoint,
    queue: asyncio.Queue[Any],
    options: StreamOptions,
    report: StreamReport,
    stop: asyncio.Event,
) -> tuple[str, bool]:
    """Pump frames until the connection ends, goes silent or ``stop``; sends the venue's pings.

    Returns why the connection ended and whether it delivered any frame.
    """
    pump = _Pump()
    task = asyncio.create_task(pump.run(ws, queue, report, ep.answer))
    next_ping = time.monotonic() + ep.ping_every_s
    step = max(0.01, min(options.silence_s, ep.ping_every_s) / 4)
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=step)
            now = time.monotonic()
            if task.done() or stop.is_set():
                break
            if queue.full():
                pump.last = now  # the consumer is behind: the venue is not silent, we are slow
            elif now - pump.last >= options.silence_s:
                return f"no frame for {options.silence_s:g} s", pump.frames > 0
            if ep.ping is not None and now >= next_ping and not ws.closed:
                await ws.send_str(ep.ping)
                next_ping = now + ep.ping_every_s
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.done() and not task.cancelled() and task.exception() is not None:
        return f"connection error: {task.exception()}", pump.frames > 0
    return pump.error or "closed by the venue", pump.frames > 0


async def _read(
    feed: StreamFeed,
    base_url: str | None,
    queue: asyncio.Queue[Any],
    options: StreamOptions,
    report: StreamReport,
    log: Callable[[str], None],
    stop: asyncio.Event,
) -> None:
    """Connect, subscribe and queue every frame; reconnect with backoff until ``stop``."""
    ep = feed.endpoint(base_url)
    rng = random.Random(options.seed)
    failures = 0
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            reason = "closed by the venue"
            try:
                async with session.ws_connect(
                    ep.url, autoping=True, max_msg_size=0,
                    timeout=aiohttp.ClientWSTimeout(ws_close=1.0),
                ) as ws:  # fmt: skip
                    for text in ep.subscribe:
                        await ws.send_str(text)
                    report.connects += 1
                    await queue.put(_CONNECTED)
                    reason, delivered = await _watch(ws, ep, queue, options, report, stop)
                    failures = 0 if delivered else failures + 1
            except (aiohttp.ClientError, OSError) as exc:
                failures += 1
                reason = f"cannot connect: {type(exc).__name__}: {str(exc)[:160]}"
            if stop.is_set():
                return
            if failures > options.policy.attempts:
                raise TransientVenueError(
                    f"{feed.venue} stream: gave up after {failures} failed connects: {reason}"
                )
            delay = options.policy.backoff_s(max(1, failures), rng)
            report.reconnects += 1
            log(f"{feed.venue} stream: {reason}; reconnecting in {delay:.2f} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)


async def collect_stream(
    feed: StreamFeed,
    lake: Lake,
    options: StreamOptions | None = None,
    *,
    base_url: str | None = None,
    log: Callable[[str], None] = lambda _m: None,
    fetch_trades: TradeFetcher | None = None,
) -> StreamReport:
    """Collect ``feed`` into ``lake`` until ``options.duration_s`` or ``max_frames`` is reached.

    Everything received before the stop is committed. With ``fetch_trades`` (a venue whose REST
    API serves past trades by time), the minutes a gap kept from being stored are summed from
    REST trades instead. A stream that cannot (re)connect after
    ``options.policy.attempts`` tries ends with ``report.error`` set (what was collected before
    is committed).
    """
    options = options or StreamOptions()
    report = StreamReport(feed.venue, [str(i) for i in feed.instruments])
    report.lower_bound = feed.sampled is not None
    state = StreamState(
        feed.venue, report, tick_every_s=options.tick_every_s, log=log,
        trade_ids=getattr(feed, "trade_ids", "aggregate trade ids"),
    )  # fmt: skip
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max(1, options.queue_frames))
    stop = asyncio.Event()
    reader = asyncio.create_task(_read(feed, base_url, queue, options, report, log, stop))
    deadline = None if options.duration_s is None else time.monotonic() + options.duration_s
    last_commit = time.monotonic()

    def handle(item: Any) -> None:
        if item is _CONNECTED:
            state.on_connect()
            return
        report.frames += 1
        try:
            report.events += feed.parse(item, state)
        except SubscriptionRefused as exc:
            if report.error is None:  # the stream stops; the caller reports it once
                report.error = str(exc)
        except DataContractError as exc:
            report.malformed += 1
            log(f"{feed.venue} stream: malformed frame skipped: {exc}")

    try:
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if options.max_frames is not None and report.frames >= options.max_frames:
                break
            if reader.done() or report.error is not None:
                break
            if options.stop_when is not None and options.stop_when(report):
                break
            if queue.empty():
                wait = options.flush_s - (now - last_commit)
                if deadline is not None:
                    wait = min(wait, deadline - now)
                with contextlib.suppress(TimeoutError):
                    handle(await asyncio.wait_for(queue.get(), max(0.0, min(wait, 0.25))))
            else:
                for _ in range(min(queue.qsize(), 1024)):
                    handle(queue.get_nowait())
                    if options.max_frames is not None and report.frames >= options.max_frames:
                        break
            if state.pending >= options.flush_rows or (
                time.monotonic() - last_commit >= options.flush_s
            ):
                if fetch_trades is not None and state.repairs:
                    await _fill_gaps(state, lake, feed, fetch_trades, log)
                await _commit(state, lake, feed)
                last_commit = time.monotonic()
    finally:
        stop.set()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await reader
            except TransientVenueError as exc:
                report.error = report.error or str(exc)
        while not queue.empty():  # frames already received are not lost
            handle(queue.get_nowait())
        report.partial_minutes_dropped += state.open_minutes()
        if fetch_trades is not None and state.repairs:
            await _fill_gaps(state, lake, feed, fetch_trades, log, final=True)
        await _commit(state, lake, feed)
        if feed.sampled is not None:  # the flag of a sampled feed, next to its rows
            for inst, last_ms in state.last_liquidation.items():
                await asyncio.to_thread(
                    write_cursor, lake, feed.venue, inst, "ws:liquidations", _dt(last_ms),
                    f"lower bound: {feed.sampled}",
                )  # fmt: skip
    return report
