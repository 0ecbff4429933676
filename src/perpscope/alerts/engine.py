"""Rule evaluation: which markets' conditions became true, minus cooldowns and repeats.

:class:`AlertEngine` keeps, per rule and market (venue and instrument), whether the condition
held at the previous evaluation and when the rule last fired. A rule fires for a market when
its condition holds now and did not at the previous evaluation, unless it fired for that market
less than its cooldown before (or at a later time: a replay of a period already alerted on
sends nothing). Started with the last firings from the store, a restarted service does not
re-fire what it already sent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from perpscope.domain.alert_rules import METRICS, OPS, OUTAGE, Rule
from perpscope.formats import fmt_change, fmt_price, fmt_rate, fmt_time, fmt_usd

__all__ = [
    "AlertEngine",
    "AlertEvent",
    "EVIDENCE",
    "evidence_columns",
    "format_value",
    "matches",
]

Key = tuple[str, str, str]  # rule, venue, instrument
_MARKET = ("asset", "venue", "instrument", "ts")

EVIDENCE: dict[str, tuple[str, ...]] = {
    "funding_8h": ("funding_8h", "price"),
    "oi_change_24h_total": ("oi_usd_total", "oi_usd_total_24h_ago", "oi_change_24h_total"),
    "divergence_hours": ("divergence_since", "price_change_24h", "oi_change_24h", "price"),
    "liq_cluster_distance": (
        "price",
        "liq_cluster_px",
        "liq_cluster_side",
        "liq_cluster_usd",
        "liq_cluster_distance",
    ),
    "funding_spread_8h": ("funding_hi_venue", "funding_hi", "funding_lo_venue", "funding_lo"),
}
"""The state columns stored as each metric's evidence (any other metric: itself and price)."""


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One firing of a rule.

    Attributes:
        rule: the rule's name.
        severity: ``info``, ``warning`` or ``critical``.
        asset: the asset (``*`` for a venue outage).
        venue: the venue, or ``all`` for an asset-level metric.
        instrument: the instrument, the asset for an asset-level metric, ``*`` for an outage.
        ts: the time of the data that met the condition (UTC).
        value: the metric's value.
        message: what fired, in words.
        evidence: the inputs and the threshold, as plain values.
    """

    rule: str
    severity: str
    asset: str
    venue: str
    instrument: str
    ts: datetime
    value: float
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, datetime]:
        """The event's identity in the store: rule, venue, instrument, time."""
        return (self.rule, self.venue, self.instrument, self.ts)

    def evidence_json(self) -> str:
        """The evidence as JSON (times as ISO 8601)."""
        return json.dumps(dict(self.evidence), default=_iso, sort_keys=True)


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def format_value(metric: str, value: float) -> str:
    """A metric's value as a trader reads it (``+0.0500%``, ``+10.0%``, ``$4.42M``, ``52h``)."""
    unit = METRICS[metric].unit if metric in METRICS else ""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    match unit:
        case "rate":
            return fmt_rate(value)
        case "change":
            return fmt_change(value)
        case "usd":
            return fmt_usd(value)
        case "price":
            return fmt_price(value)
        case "hours":
            return f"{value:.0f}h"
    return f"{value:.4g}"


def _message(rule: Rule, row: Mapping[str, Any]) -> str:
    """The event's one-line text."""
    where = f"{row['venue']} {row['instrument']}"
    x = row[rule.metric]
    limit = format_value(rule.metric, rule.value)
    match rule.metric:
        case "funding_8h" if rule.builtin:
            return f"{where} funding {fmt_rate(x)} per 8h, beyond +-{fmt_rate(rule.value)[1:]}"
        case "oi_change_24h_total" if rule.builtin:
            return (
                f"{row['asset']} open interest {fmt_change(x)} in 24h "
                f"({fmt_usd(row['oi_usd_total'])}, was {fmt_usd(row['oi_usd_total_24h_ago'])}), "
                f"above {limit}"
            )
        case "divergence_hours" if rule.builtin:
            return (
                f"{where}: OI {fmt_change(row['oi_change_24h'])} vs price "
                f"{fmt_change(row['price_change_24h'])} over 24h, opposite for {x:.0f}h "
                f"(since {fmt_time(row['divergence_since'])})"
            )
        case "liq_cluster_distance" if rule.builtin:
            return (
                f"{where} at {fmt_price(row['price'])} is {x * 100:.2f}% from a dense "
                f"{row['liq_cluster_side']}-liquidation cluster at "
                f"{fmt_price(row['liq_cluster_px'])} ({fmt_usd(row['liq_cluster_usd'])}, "
                "ESTIMATED)"
            )
        case "funding_spread_8h" if rule.builtin:
            return (
                f"{row['asset']} funding spread {fmt_rate(x)} per 8h: "
                f"{row['funding_hi_venue']} {fmt_rate(row['funding_hi'])} vs "
                f"{row['funding_lo_venue']} {fmt_rate(row['funding_lo'])}"
            )
    return f"{where} {rule.metric} {format_value(rule.metric, x)} {rule.op} {limit}"


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def matches(rule: Rule, state: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``state`` (a market state) that meet ``rule``'s condition now."""
    metric = METRICS[rule.metric]
    if rule.metric not in state.columns:
        return state.clear()
    # rounded to 12 decimals: a value on the threshold is on it, whatever the float noise of the
    # arithmetic behind it (0.0004 - 0.0001 is 0.00030000000000000003)
    x = pl.col(rule.metric).round(12)
    cond = OPS[rule.op](x, rule.value)
    keep = (pl.col("level") == metric.level) & x.is_not_null() & x.is_finite() & cond
    if rule.assets:
        keep &= pl.col("asset").is_in(rule.assets)
    if rule.venues and metric.level == "instrument":
        keep &= pl.col("venue").is_in(rule.venues)
    return state.filter(keep)


def evidence_columns(rule: Rule, columns: Sequence[str]) -> list[str]:
    """The state columns an event of ``rule`` carries: its market, time, value and evidence."""
    wanted = (
        "asset",
        "venue",
        "instrument",
        "ts",
        rule.metric,
        *EVIDENCE.get(rule.metric, ("price",)),
    )
    return [c for c in dict.fromkeys(wanted) if c in columns]


class AlertEngine:
    """Edge detection and cooldowns over successive market states.

    Args:
        rules: the rules (disabled ones are skipped).
        last_fired: when each (rule, venue, instrument) last fired, from the store.
    """

    def __init__(
        self, rules: Iterable[Rule], last_fired: Mapping[Key, datetime] | None = None
    ) -> None:
        self.rules = tuple(r for r in rules if r.enabled)
        self.last_fired: dict[Key, datetime] = dict(last_fired or {})
        self.active: dict[str, set[Key]] = {r.name: set() for r in self.rules}
        self.failures: dict[str, int] = {}

    def admit(self, rule: Rule, key: Key, ts: datetime) -> bool:
        """True (and remembered) unless ``key`` fired within the cooldown before ``ts``."""
        last = self.last_fired.get(key)
        if last is not None and ts < last + timedelta(seconds=rule.cooldown_s):
            return False
        self.last_fired[key] = ts
        return True

    def evaluate(self, state: pl.DataFrame) -> list[AlertEvent]:
        """The events of ``state`` (a :func:`~perpscope.alerts.metrics.market_state` frame)."""
        events = []
        for rule in self.rules:
            if rule.metric not in METRICS:
                continue
            hits = matches(rule, state)
            now_active: set[Key] = set()
            cols = evidence_columns(rule, hits.columns)
            for row in hits.select(cols).iter_rows(named=True):
                key = (rule.name, row["venue"], row["instrument"])
                now_active.add(key)
                if key in self.active[rule.name] or not self.admit(rule, key, row["ts"]):
                    continue
                evidence = {c: _plain(row[c]) for c in cols if c not in _MARKET}
                evidence.update(threshold=rule.value, op=rule.op)
                events.append(
                    AlertEvent(
                        rule.name,
                        rule.severity,
                        row["asset"],
                        row["venue"],
                        row["instrument"],
                        row["ts"],
                        float(row[rule.metric]),
                        _message(rule, row),
                        evidence,
                    )  # fmt: skip
                )
            self.active[rule.name] = now_active
        return events

    def edges(
        self, rule: Rule, present: Mapping[tuple[str, str], datetime]
    ) -> list[tuple[str, str]]:
        """The markets (venue, instrument) of ``present`` that fire ``rule`` now: absent at the
        previous call, and out of their cooldown at their time."""
        keys = {(rule.name, v, i) for v, i in present}
        was = self.active.setdefault(rule.name, set())
        new = [
            (v, i)
            for (v, i), ts in present.items()
            if (rule.name, v, i) not in was and self.admit(rule, (rule.name, v, i), ts)
        ]
        self.active[rule.name] = keys
        return new

    def collection(self, venue: str, ts: datetime, error: str | None) -> AlertEvent | None:
        """Record one collection attempt of ``venue``; the outage event when it is due.

        The outage rule fires after ``value`` failed attempts in a row (1 by default), once per
        outage and cooldown; a success re-arms it.
        """
        rule = next((r for r in self.rules if r.name == OUTAGE), None)
        if error is None:
            self.failures[venue] = 0
            if rule is not None:
                self.active[OUTAGE].discard((OUTAGE, venue, "*"))
            return None
        n = self.failures[venue] = self.failures.get(venue, 0) + 1
        if rule is None or n < rule.value:
            return None
        key = (OUTAGE, venue, "*")
        if key in self.active[OUTAGE] or not self.admit(rule, key, ts):
            return None
        self.active[OUTAGE].add(key)
        message = f"{venue} collection failed ({n} in a row): {error}"
        evidence = {"failures": n, "error": error, "threshold": rule.value}
        return AlertEvent(OUTAGE, rule.severity, "*", venue, "*", ts, float(n), message, evidence)
