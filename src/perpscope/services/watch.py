"""``perpscope watch``: collect, recompute the market state, evaluate the alert rules, notify.

One loop serves a live market and the simulator alike. A *feed* yields ticks; each tick carries
the time, the rows collected since the previous tick (already in the store for a live venue;
written by the loop for the simulator) and each venue's collection error. The loop keeps the
last :data:`~perpscope.alerts.metrics.WINDOW` of rows in memory (loaded from the store at
start), computes :func:`~perpscope.alerts.metrics.market_state`, lets the
:class:`~perpscope.alerts.engine.AlertEngine` pick the events, stores each event in
``alert_events`` before handing it to the notification thread, and records deliveries as they
are confirmed. Events already in the store are never sent again, and events still undelivered
at start are delivered first.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from perpscope.alerts.engine import AlertEngine, AlertEvent
from perpscope.alerts.metrics import WINDOW, liq_clusters, market_state, with_liq_distance
from perpscope.alerts.notify import (
    Dispatcher,
    apprise_sender,
    channel_id,
    notify_urls,
    validate_urls,
)
from perpscope.domain.alert_rules import SCENARIO, SETUP, AlertsConfig, Rule
from perpscope.errors import PerpscopeError, UsageError
from perpscope.store.lake import Lake

__all__ = [
    "LiveFeed",
    "SimFeed",
    "Tick",
    "WatchSummary",
    "alert_history",
    "event_body",
    "open_dispatcher",
    "run_watch",
]

STATE_TABLES = ("funding_snapshot", "open_interest")
LIQ_LOOKBACK = timedelta(days=14)
"""Hourly candles and OI the liquidation map is estimated from."""


@dataclass(frozen=True, slots=True)
class Tick:
    """One step of a feed.

    Attributes:
        now: the tick's time (UTC): data up to it is known.
        rows: table -> rows collected since the previous tick (store-shaped).
        errors: venue -> why its collection failed this tick (absent: it worked).
        stored: the rows are already in the store (a live collector wrote them).
    """

    now: datetime
    rows: Mapping[str, pl.DataFrame]
    errors: Mapping[str, str] = field(default_factory=dict)
    stored: bool = False


@dataclass
class WatchSummary:
    """What a watch run did."""

    ticks: int = 0
    first: datetime | None = None
    last: datetime | None = None
    rows_written: int = 0
    events: int = 0
    resent: int = 0
    delivered: int = 0
    undelivered: int = 0
    pending: int = 0
    channels: tuple[str, ...] = ()
    outages: dict[str, int] = field(default_factory=dict)
    stopped: bool = False
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------ feeds


class SimFeed:
    """The simulator as a live market: its tables revealed hour by hour.

    Args:
        config: the simulated run.
        speed: simulated seconds per real second (0: as fast as possible).
        sleep: how to wait (``stop.wait``, so a stop request interrupts it).
    """

    def __init__(self, config: Any, speed: float, sleep: Callable[[float], object]) -> None:
        from perpscope.sim import run_simulation

        self.config = config
        tables = run_simulation(config).tables
        self.tables = {k: v for k, v in tables.items() if not k.startswith("sim_")}  # truth
        self.speed = speed
        self.sleep = sleep

    def ticks(self) -> Iterator[Tick]:
        import numpy as np

        ordered = {}
        for name, frame in self.tables.items():
            known_at = pl.col("ts") + timedelta(hours=1) if name == "ohlcv" else pl.col("ts")
            f = frame.with_columns(_known=known_at).sort("_known")  # a bar is known once closed
            ordered[name] = (f.drop("_known"), f["_known"].dt.epoch("us").to_numpy())
        start = self.config.end - timedelta(days=self.config.days)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        prev = np.iinfo(np.int64).min
        now = start + timedelta(hours=1)
        while now <= self.config.end:
            t = (now - epoch) // timedelta(microseconds=1)
            rows = {}
            for name, (frame, known) in ordered.items():
                a, b = np.searchsorted(known, [prev, t], side="right")
                if b > a:
                    rows[name] = frame.slice(int(a), int(b - a))
            yield Tick(now, rows)
            prev, now = t, now + timedelta(hours=1)
            if self.speed > 0:
                self.sleep(3600.0 / self.speed)


class LiveFeed:
    """Snapshots of real venues (or a mirror at ``api_url``) every ``every_s`` seconds.

    A venue that fails is reported in the tick's ``errors`` and the others go on.
    """

    def __init__(
        self,
        lake: Lake,
        venues: Sequence[str],
        instruments: Sequence[str],
        *,
        every_s: float,
        sleep: Callable[[float], object],
        api_url: str | None = None,
        pace: bool = True,
        policy: Any = None,
        rate_limit_ms: float | None = None,
    ) -> None:
        from perpscope.domain.symbols import parse_instrument

        try:
            self.instruments = tuple(parse_instrument(i) for i in instruments)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        self.lake, self.venues, self.every_s = lake, tuple(venues), every_s
        self.sleep, self.api_url, self.pace = sleep, api_url, pace
        self.policy, self.rate_limit_ms = policy, rate_limit_ms

    def _snapshot(self, venue: str) -> None:
        from perpscope.collect.snapshot import take_snapshot
        from perpscope.venues.registry import open_venue

        client = open_venue(venue, api_url=self.api_url, rate_limit_ms=self.rate_limit_ms)
        asyncio.run(
            take_snapshot(client, self.lake, self.instruments, policy=self.policy, pace=self.pace)
        )

    def ticks(self) -> Iterator[Tick]:
        first = True
        while True:
            if not first:
                self.sleep(self.every_s)
            first = False
            started = datetime.now(UTC)
            errors = {}
            for venue in self.venues:
                try:
                    self._snapshot(venue)
                except UsageError:
                    raise
                except PerpscopeError as exc:
                    errors[venue] = str(exc)
            rows = {
                t: _read_since(self.lake, t, started - timedelta(seconds=1)) for t in STATE_TABLES
            }
            yield Tick(datetime.now(UTC), rows, errors, stored=True)


def _read_since(lake: Lake, table: str, since: datetime) -> pl.DataFrame:
    if not lake.has_table(table):
        from perpscope.domain.schema import table_spec

        return pl.DataFrame(schema=table_spec(table).polars_schema)
    return lake.read(table, where=pl.col("ts") > since)


# ------------------------------------------------------------------------------- the store


def _events_frame(events: Sequence[AlertEvent], channels: Sequence[str]) -> pl.DataFrame:
    fired = datetime.now(UTC)
    return pl.DataFrame(
        {
            "rule": [e.rule for e in events],
            "venue": [e.venue for e in events],
            "instrument": [e.instrument for e in events],
            "ts": [e.ts for e in events],
            "asset": [e.asset for e in events],
            "severity": [e.severity for e in events],
            "message": [e.message for e in events],
            "value": [e.value for e in events],
            "evidence_json": [e.evidence_json() for e in events],
            "notify_to": [",".join(channels)] * len(events),
            "delivered_to": [""] * len(events),
            "fired_at": [fired] * len(events),
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC"), "fired_at": pl.Datetime("us", "UTC")},
    )


def _stored_events(lake: Lake) -> pl.DataFrame:
    if not lake.has_table("alert_events"):
        from perpscope.domain.schema import table_spec

        return pl.DataFrame(schema=table_spec("alert_events").polars_schema)
    return lake.read("alert_events")


def _split(text: str | None) -> set[str]:
    return {c for c in (text or "").split(",") if c}


def event_body(row: Mapping[str, Any]) -> tuple[str, str]:
    """The notification's title and body of a stored event row."""
    ts = row["ts"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    title = f"perpscope {row['severity']}: {row['rule']} {row['venue']} {row['instrument']}"
    body = "\n".join(
        [
            row["message"],
            f"rule: {row['rule']}",
            f"market: {row['venue']} {row['instrument']}",
            f"time: {ts}",
            f"evidence: {row['evidence_json']}",
        ]
    )
    return title, body


class _Deliveries:
    """Delivery state of stored events: what is pending, recorded back as it is confirmed."""

    def __init__(self, lake: Lake, dispatcher: Dispatcher | None) -> None:
        self.lake, self.dispatcher = lake, dispatcher
        self.rows: dict[Any, dict[str, Any]] = {}

    def submit(self, row: dict[str, Any]) -> None:
        key = (row["rule"], row["venue"], row["instrument"], row["ts"])
        self.rows[key] = row
        if self.dispatcher is None:
            return
        missing = _split(row["notify_to"]) - _split(row["delivered_to"])
        title, body = event_body(row)
        self.dispatcher.submit(key, title, body, missing)

    def record(self) -> tuple[int, list[str]]:
        """Write confirmed deliveries to the store; returns how many and the failures' notes."""
        if self.dispatcher is None:
            return 0, []
        done, failed = self.dispatcher.results()
        changed = {}
        for key, channel in done:
            row = self.rows[key]
            row["delivered_to"] = ",".join(sorted(_split(row["delivered_to"]) | {channel}))
            changed[key] = row
        if changed:
            frame = pl.DataFrame(list(changed.values()), schema=_stored_events(self.lake).schema)
            self.lake.ingest("alert_events", frame, replace=True)
        notes = [
            f"delivery to {channel} failed (attempt {n}); retrying" for _, channel, n in failed
        ]
        return len(done), notes


# -------------------------------------------------------------------------------- the loop


def open_dispatcher(
    alerts: AlertsConfig, environ: Mapping[str, str]
) -> tuple[Dispatcher | None, tuple[str, ...]]:
    """The notification thread for the configured channels (None without channels).

    Raises:
        ConfigError: a URL apprise cannot use (exit 2, before anything runs).
    """
    urls = notify_urls(alerts.notify, environ)
    validate_urls(urls)
    channels = tuple(channel_id(u) for u in urls)
    if not urls:
        return None, ()
    return Dispatcher(channels, apprise_sender(urls)), channels


class _Window:
    """The last :data:`WINDOW` (or ``keep``) of each table's rows, kept as a list of parts."""

    def __init__(self, keep: Mapping[str, timedelta]) -> None:
        self.keep = dict(keep)
        self.parts: dict[str, list[pl.DataFrame]] = {}

    def add(self, table: str, rows: pl.DataFrame, now: datetime) -> None:
        if table not in self.keep or rows.is_empty():
            return
        parts = self.parts.setdefault(table, [])
        parts.append(rows)
        if len(parts) > 48:  # trim now and then: whole parts older than the window go
            cut = now - self.keep[table]
            frame = pl.concat(parts, how="diagonal_relaxed")
            self.parts[table] = [frame.filter(pl.col("ts") > cut)]

    def get(self, table: str) -> pl.DataFrame:
        from perpscope.domain.schema import table_spec

        parts = self.parts.get(table)
        if not parts:
            return pl.DataFrame(schema=table_spec(table).polars_schema)
        frame = pl.concat(parts, how="diagonal_relaxed") if len(parts) > 1 else parts[0]
        self.parts[table] = [frame]
        return frame


class _SignalRules:
    """``scenario_change`` and ``new_setup``: the signals engine on the stored data.

    The classifier and the setups read the store as of the tick (point in time), so the loop
    stores the simulator's rows before each check.
    """

    def __init__(self, lake: Lake, engine: AlertEngine, stored: pl.DataFrame) -> None:
        by_name = {r.name: r for r in engine.rules}
        self.lake, self.engine = lake, engine
        self.scenario, self.setup = by_name.get(SCENARIO), by_name.get(SETUP)
        self.last: dict[str, str] = {}  # asset -> its latest scenario (a restart reads the store)
        for row in stored.filter(pl.col("rule") == SCENARIO).sort("ts").iter_rows(named=True):
            self.last[row["instrument"]] = json.loads(row["evidence_json"] or "{}").get("scenario")
        self.notes: set[str] = set()

    @property
    def on(self) -> bool:
        return self.scenario is not None or self.setup is not None

    def evaluate(self, now: datetime, assets: Sequence[str]) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        if self.scenario is not None:
            events += self._scenarios(self.scenario, now, assets)
        if self.setup is not None:
            events += self._setups(self.setup, now, assets)
        return events

    def _scenarios(self, rule: Rule, now: datetime, assets: Sequence[str]) -> list[AlertEvent]:
        from perpscope.services.signals import scenario_report

        changed: dict[tuple[str, str], datetime] = {}
        found = {}
        for asset in assets:
            try:
                r = scenario_report(self.lake, asset, now)
            except PerpscopeError as exc:
                self.notes.add(f"{SCENARIO}: {asset}: {exc}")
                continue
            before = self.last.get(asset)
            if r.scenario not in ("none", before) and r.confidence >= rule.value:
                changed[("all", asset)] = r.ts
                found[asset] = (r, before)
        events = []
        # A change is an event, not a state: two changes in a row both fire (no edge rule), the
        # cooldown still applies, and ``last`` moves only when one fires, so it is always the
        # scenario last announced, which is what a restart reads back from the store.
        for (venue, asset), ts in changed.items():
            if not self.engine.admit(rule, (rule.name, venue, asset), ts):
                continue
            r, before = found[asset]
            self.last[asset] = r.scenario
            evidence: dict[str, Any] = {
                "scenario": r.scenario,
                "previous": before,
                "confidence": r.confidence,
                "threshold": rule.value,
            }
            evidence.update({e.name: e.to_json()["value"] for e in r.evidence})
            message = (
                f"{asset} scenario now {r.scenario} ({r.confidence:.0%} confidence), "
                f"was {before or 'not read yet'}"
            )
            events.append(
                AlertEvent(
                    SCENARIO,
                    rule.severity,
                    asset,
                    "all",
                    asset,
                    r.ts,
                    r.confidence,
                    message,
                    evidence,
                )
            )
        return events

    def _setups(self, rule: Rule, now: datetime, assets: Sequence[str]) -> list[AlertEvent]:
        from perpscope.formats import fmt_price
        from perpscope.services.signals import run_signals

        try:
            found = run_signals(self.lake, list(assets), now)
        except PerpscopeError as exc:
            self.notes.add(f"{SETUP}: {exc}")
            return []
        live = {}
        for sig in found:
            if sig.stage in ("entry", "exit") and sig.strength >= rule.value:
                live[(sig.venue, f"{sig.asset}:{sig.setup}:{sig.direction}")] = sig
        events = []
        for key in self.engine.edges(rule, {k: v.ts for k, v in live.items()}):
            sig = live[key]
            px = [fmt_price(x) for x in sig.targets_px]
            zone = (
                f"entry {fmt_price(sig.entry_low_px)}-{fmt_price(sig.entry_high_px)}"
                if sig.entry_low_px is not None and sig.entry_high_px is not None
                else ""
            )
            stop = (
                f"stop {fmt_price(sig.invalidation_px)}" if sig.invalidation_px is not None else ""
            )
            parts = [p for p in (zone, stop, f"targets {', '.join(px)}" if px else "") if p]
            message = (
                f"{sig.asset} {sig.setup} {sig.direction} at {sig.stage} "
                f"(strength {sig.strength:.0%})" + (": " + ", ".join(parts) if parts else "")
            )
            evidence: dict[str, Any] = {
                "setup": sig.setup,
                "direction": sig.direction,
                "stage": sig.stage,
                "strength": sig.strength,
                "threshold": rule.value,
            }
            evidence.update({e.name: e.to_json()["value"] for e in sig.evidence})
            events.append(
                AlertEvent(
                    SETUP,
                    rule.severity,
                    sig.asset,
                    key[0],
                    key[1],
                    sig.ts,
                    sig.strength,
                    message,
                    evidence,
                )
            )
        return events


def run_watch(
    lake: Lake,
    alerts: AlertsConfig,
    feed: SimFeed | LiveFeed,
    *,
    environ: Mapping[str, str],
    stop: threading.Event,
    on_event: Callable[[AlertEvent], None] = lambda e: None,
    on_note: Callable[[str], None] = lambda s: None,
    on_tick: Callable[[WatchSummary, pl.DataFrame], None] = lambda s, st: None,
    flush_every: int = 24,
    events_every: int = 1,
    liq_every: int = 24,
    signals_every: int = 4,
    drain_s: float = 10.0,
    max_ticks: int | None = None,
) -> WatchSummary:
    """Run ``feed`` through collection, the market state, the rules and the notifications.

    Args:
        lake: the store.
        alerts: rules and channels (``PERPSCOPE_NOTIFY`` from ``environ`` adds channels).
        feed: where ticks come from.
        stop: set it (a signal handler does) to end after the current tick.
        on_event: called with each new event (the console line).
        on_note: called with operational notes (delivery failures).
        on_tick: called after each tick with the summary so far and the market state.
        flush_every: ticks between store commits of the simulator's rows.
        events_every: ticks between commits of new events (each event is stored before it is
            sent; more than 1 only when nobody waits on the clock, as with ``--speed 0``).
        liq_every: ticks between refreshes of the liquidation-cluster distances.
        signals_every: ticks between checks of ``scenario_change`` and ``new_setup`` (when on).
        drain_s: at the end, how long to wait for pending deliveries.
        max_ticks: stop after this many ticks (None: when the feed ends or on ``stop``).
    """
    dispatcher, channels = open_dispatcher(alerts, environ)
    summary = WatchSummary(channels=channels)
    lake.init()
    stored = _stored_events(lake)
    last = (
        stored.group_by("rule", "venue", "instrument").agg(pl.col("ts").max()).iter_rows()
        if stored.height
        else []
    )
    engine = AlertEngine(alerts.rules, {(r, v, i): ts for r, v, i, ts in last})
    deliveries = _Deliveries(lake, dispatcher)
    for row in stored.iter_rows(named=True):  # undelivered from an earlier run go first
        if (_split(row["notify_to"]) & set(channels)) - _split(row["delivered_to"]):
            deliveries.submit(row)
            summary.resent += 1
    liq_on = any(r.metric == "liq_cluster_distance" for r in engine.rules)
    signal_rules = _SignalRules(lake, engine, stored)
    window = _Window(
        {
            "funding_snapshot": WINDOW,
            "open_interest": LIQ_LOOKBACK if liq_on else WINDOW,
            "ohlcv": LIQ_LOOKBACK,
        }
    )
    unstored: dict[str, list[pl.DataFrame]] = {}
    fired: list[AlertEvent] = []
    liq = previous = None
    try:
        for tick in feed.ticks():
            summary.ticks += 1
            summary.first = summary.first or tick.now
            summary.last = tick.now
            if summary.ticks == 1 and isinstance(feed, LiveFeed):
                for t in STATE_TABLES:  # the history a restart needs
                    window.add(t, _read_since(lake, t, tick.now - WINDOW), tick.now)
            for table, rows in tick.rows.items():
                if table == "ohlcv":
                    window.add(table, rows.filter(pl.col("kind") == "trade"), tick.now)
                else:
                    window.add(table, rows, tick.now)
                if not tick.stored:
                    unstored.setdefault(table, []).append(rows)
            if not tick.stored and summary.ticks % flush_every == 0:
                summary.rows_written += _flush(lake, unstored)
            for venue, error in tick.errors.items():
                summary.outages[venue] = summary.outages.get(venue, 0) + 1
                if (e := engine.collection(venue, tick.now, error)) is not None:
                    fired.append(e)
            for venue in getattr(feed, "venues", ()):
                if venue not in tick.errors:
                    engine.collection(venue, tick.now, None)
            state = previous = market_state(
                window.get("funding_snapshot"), window.get("open_interest"), tick.now, previous
            )
            if liq_on and (liq is None or summary.ticks % liq_every == 0):
                liq = liq_clusters(window.get("ohlcv"), window.get("open_interest"), tick.now)
            if liq is not None:
                state = with_liq_distance(state, liq)
            fired += engine.evaluate(state)
            if signal_rules.on and summary.ticks % signals_every == 0:
                if not tick.stored:  # the signals engine reads the store
                    summary.rows_written += _flush(lake, unstored)
                assets = sorted(
                    {i.split("-")[0] for i in window.get("funding_snapshot")["instrument"]}
                )
                fired += signal_rules.evaluate(tick.now, assets)
            if fired and summary.ticks % events_every == 0:
                summary.events += _fire(lake, fired, channels, deliveries, on_event)
                fired = []
            n, notes = deliveries.record()
            summary.delivered += n
            for note in notes:
                on_note(note)
            summary.pending = dispatcher.pending() if dispatcher is not None else 0
            on_tick(summary, state)
            if stop.is_set():
                summary.stopped = True
                break
            if max_ticks is not None and summary.ticks >= max_ticks:
                break
    finally:
        summary.rows_written += _flush(lake, unstored)
        if fired:
            summary.events += _fire(lake, fired, channels, deliveries, on_event)
        if dispatcher is not None:
            dispatcher.drain(drain_s)
            n, _ = deliveries.record()
            summary.delivered += n
            summary.undelivered = dispatcher.pending()
            dispatcher.close()
    if liq_on and liq is None:
        summary.notes.append("liq_proximity: no hourly candles and OI to estimate a map from")
    summary.notes += sorted(signal_rules.notes)
    return summary


def _fire(
    lake: Lake,
    events: Sequence[AlertEvent],
    channels: Sequence[str],
    deliveries: _Deliveries,
    on_event: Callable[[AlertEvent], None],
) -> int:
    """Store ``events`` (one commit), then show and hand each new one to the notifier."""
    frame = _events_frame(events, channels)
    written = lake.ingest("alert_events", frame).rows_written
    for row, event in zip(frame.iter_rows(named=True), events, strict=True):
        on_event(event)
        deliveries.submit(row)
    return written


def _flush(lake: Lake, unstored: dict[str, list[pl.DataFrame]]) -> int:
    """Store the collected rows (one idempotent commit per table)."""
    written = 0
    for table, parts in unstored.items():
        if parts:
            written += lake.ingest(table, pl.concat(parts, how="diagonal_relaxed")).rows_written
    unstored.clear()
    return written


def alert_history(
    lake: Lake, *, since: datetime | None = None, rule: str | None = None
) -> list[dict[str, Any]]:
    """Stored events, newest first: ``rule asset venue instrument ts severity message value
    delivered delivered_to evidence``."""
    frame = _stored_events(lake)
    if since is not None:
        frame = frame.filter(pl.col("ts") >= since)
    if rule is not None:
        frame = frame.filter(pl.col("rule") == rule)
    out = []
    for row in frame.sort("ts", "rule", descending=[True, False]).iter_rows(named=True):
        value = row["value"]
        out.append(
            {
                "rule": row["rule"],
                "asset": row["asset"],
                "venue": row["venue"],
                "instrument": row["instrument"],
                "ts": row["ts"],
                "severity": row["severity"],
                "message": row["message"],
                "value": value if value is None or math.isfinite(value) else None,
                "delivered": _split(row["notify_to"]) <= _split(row["delivered_to"]),
                "delivered_to": sorted(_split(row["delivered_to"])),
                "evidence": json.loads(row["evidence_json"] or "{}"),
            }
        )
    return out


def wall_sleep(stop: threading.Event) -> Callable[[float], object]:
    """A sleep that a stop request interrupts."""
    return lambda s: stop.wait(max(0.0, s))
