"""Alert rules: the playbook's five built-ins, venue outages and custom thresholds, as data.

A rule watches one metric of :func:`perpscope.alerts.metrics.market_state` (or a venue's
collection, for ``venue_outage``) and fires when its condition **becomes** true for a market:
a market whose condition held at the previous evaluation does not fire again until the condition
has been false once, and a market never fires the same rule twice within the rule's cooldown.

The ``[alerts]`` table of the configuration holds ``notify`` (apprise URLs) and ``rules``:
``[alerts.rules.NAME]`` tables. A built-in's table changes its settings (``enabled``,
``value``, ``cooldown``, ``assets``, ``venues``, ``severity``); any other name is a custom rule
and needs ``metric``, ``op`` and ``value``. ``docs/alerts.md`` documents every key.

This module imports only the standard library: the configuration is checked at start-up.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "BUILTINS",
    "METRICS",
    "OPS",
    "OUTAGE",
    "SCENARIO",
    "SETUP",
    "SIGNAL_RULES",
    "AlertsConfig",
    "Metric",
    "Rule",
    "parse_alerts",
    "parse_duration",
]


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric rules can watch.

    Attributes:
        name: column of the market state.
        level: ``instrument`` (one value per venue and perpetual) or ``asset`` (one value per
            asset over its venues; the event's venue is ``all``).
        unit: how values print: ``rate`` (``+0.0500%``), ``change`` (``+10.0%``), ``usd``,
            ``price``, ``hours``, ``ratio``.
        doc: what it is.
    """

    name: str
    level: str
    unit: str
    doc: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("funding_8h", "instrument", "rate", "latest funding rate, normalised to 8 hours"),
        Metric("price", "instrument", "price", "latest mark price"),
        Metric("price_change_24h", "instrument", "change", "mark price change over 24 hours"),
        Metric("oi_usd", "instrument", "usd", "latest open interest, USD notional"),
        Metric("oi_change_24h", "instrument", "change", "open-interest change over 24 hours"),
        Metric(
            "divergence_hours",
            "instrument",
            "hours",
            "hours for which the 24h OI change and the 24h price change have had opposite signs",
        ),
        Metric(
            "liq_cluster_distance",
            "instrument",
            "change",
            "distance from the price to the nearest dense liquidation cluster (either side)",
        ),
        Metric("oi_usd_total", "asset", "usd", "open interest summed over the asset's venues"),
        Metric(
            "oi_change_24h_total",
            "asset",
            "change",
            "24-hour change of the open interest summed over the asset's venues",
        ),
        Metric(
            "funding_spread_8h",
            "asset",
            "rate",
            "highest minus lowest 8h funding among the asset's venues (two or more)",
        ),
    )
}

OPS: dict[str, Callable[[Any, float], Any]] = {
    # on numbers or polars expressions alike
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "abs>": lambda x, v: abs(x) > v,
    "abs>=": lambda x, v: abs(x) >= v,
}
SEVERITIES = ("info", "warning", "critical")
OUTAGE = "venue_outage"
SCENARIO = "scenario_change"
SETUP = "new_setup"
SIGNAL_RULES = (SCENARIO, SETUP)
"""Rules on the signals engine's readings, off by default (each check reads the store)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule.

    Attributes:
        name: the rule's name (the key of its config table).
        metric: the watched metric (:data:`METRICS`), or ``collection`` for the outage rule.
        op: the comparison (:data:`OPS`).
        value: the threshold, in the metric's own unit (fractions, hours, USD).
        cooldown_s: a market does not fire this rule again within this many seconds.
        assets: only these assets (all when empty).
        venues: only these venues (all when empty).
        severity: ``info``, ``warning`` or ``critical``.
        enabled: off rules are listed but not evaluated.
        builtin: one of the playbook's (or the outage) rules.
        doc: what the rule is for.
    """

    name: str
    metric: str
    op: str
    value: float
    cooldown_s: float
    assets: tuple[str, ...] = ()
    venues: tuple[str, ...] = ()
    severity: str = "warning"
    enabled: bool = True
    builtin: bool = False
    doc: str = ""


H = 3600.0
BUILTINS: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule(
            "funding_extreme",
            "funding_8h",
            "abs>=",
            0.0005,
            24 * H,
            builtin=True,
            doc="a venue's funding crosses +-0.05% per 8h (playbook: funding threshold)",
        ),
        Rule(
            "oi_surge",
            "oi_change_24h_total",
            ">",
            0.10,
            24 * H,
            builtin=True,
            doc="aggregate OI up more than 10% in 24h (playbook: OI spike)",
        ),
        Rule(
            "oi_divergence",
            "divergence_hours",
            ">",
            48.0,
            24 * H,
            builtin=True,
            doc="24h OI direction against 24h price direction for more than 48h",
        ),
        Rule(
            "liq_proximity",
            "liq_cluster_distance",
            "<=",
            0.02,
            8 * H,
            builtin=True,
            doc="price within 2% of a dense liquidation cluster",
        ),
        Rule(
            "funding_spread",
            "funding_spread_8h",
            ">",
            0.0003,
            24 * H,
            builtin=True,
            doc="funding differs by more than 0.03% per 8h between two venues",
        ),
        Rule(
            OUTAGE,
            "collection",
            ">=",
            1.0,
            1 * H,
            severity="critical",
            builtin=True,
            doc="a venue's collection failed (the other venues go on)",
        ),
        Rule(
            SCENARIO,
            "scenario",
            ">=",
            0.0,
            4 * H,
            severity="info",
            enabled=False,
            builtin=True,
            doc="an asset's scenario reading changes to one of the six (value: least confidence)",
        ),
        Rule(
            SETUP,
            "setup",
            ">=",
            0.0,
            24 * H,
            severity="info",
            enabled=False,
            builtin=True,
            doc="a setup reaches its entry stage, or the basis trade its exit (value: least "
            "strength)",
        ),
    )
}


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """The ``[alerts]`` table.

    Attributes:
        notify: apprise URLs from the file (``PERPSCOPE_NOTIFY`` adds more at start-up).
        rules: every rule, built-ins first, by name.
    """

    notify: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = tuple(BUILTINS.values())

    def rule(self, name: str) -> Rule:
        """The rule called ``name``. Raises KeyError."""
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(name)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float:
    """Seconds of ``"30m"``, ``"4h"``, ``"1d"``, ``"90s"`` or a number of seconds.

    Raises:
        ValueError: not a non-negative duration.
    """
    if isinstance(value, bool):
        raise ValueError("must be a duration like '4h' or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _SECONDS[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration like '30m', '4h' or '1d'")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("must be a non-negative duration")
    return seconds


def _names(value: Any, key: str, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{key}: must be a list of {what}")
    return tuple(v.strip() for v in value)


def _threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"value must be a number, not {value!r}")
    if not math.isfinite(value):
        raise ValueError("value must be a finite number")
    return float(value)


def _settings(name: str, table: Mapping[str, Any], base: Rule | None) -> Rule:
    """The rule ``name`` from its config table (over the built-in ``base`` when there is one)."""
    allowed = {"enabled", "value", "cooldown", "assets", "venues", "severity"}
    if base is None:
        allowed |= {"metric", "op"}
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (keys: {', '.join(sorted(allowed))})")
    if base is None:
        for key in ("metric", "op", "value"):
            if key not in table:
                raise ValueError(f"a custom rule needs {key!r} (metric, op, value)")
        metric = table["metric"]
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r} (metrics: {', '.join(METRICS)})")
        if table["op"] not in OPS:
            raise ValueError(f"unknown op {table['op']!r} (ops: {' '.join(OPS)})")
        base = Rule(name, metric, table["op"], 0.0, 4 * H, doc=f"custom: {metric} {table['op']}")
    rule = base
    if "enabled" in table:
        if not isinstance(table["enabled"], bool):
            raise ValueError("enabled must be true or false")
        rule = replace(rule, enabled=table["enabled"])
    if "value" in table:
        rule = replace(rule, value=_threshold(table["value"]))
        if rule.op.startswith("abs") and rule.value < 0:
            raise ValueError(f"value must be >= 0 with op {rule.op!r}")
    if "cooldown" in table:
        rule = replace(rule, cooldown_s=parse_duration(table["cooldown"]))
    if "assets" in table:
        rule = replace(
            rule, assets=tuple(a.upper() for a in _names(table["assets"], "assets", "assets"))
        )
    if "venues" in table:
        rule = replace(
            rule, venues=tuple(v.lower() for v in _names(table["venues"], "venues", "venues"))
        )
    if "severity" in table:
        if table["severity"] not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
        rule = replace(rule, severity=table["severity"])
    return rule


_RULE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def parse_alerts(data: Any) -> AlertsConfig:
    """The :class:`AlertsConfig` of an ``[alerts]`` table.

    Raises:
        ValueError: naming the key (``rules.NAME.value``) and the reason.
    """
    if not isinstance(data, Mapping):
        raise ValueError("[alerts] must be a table")
    unknown = sorted(set(data) - {"notify", "rules"})
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key (keys: notify, rules)")
    notify: tuple[str, ...] = ()
    if "notify" in data:
        notify = _names(data["notify"], "notify", "apprise URLs")
    tables = data.get("rules", {})
    if not isinstance(tables, Mapping):
        raise ValueError("rules: must be a table of [alerts.rules.NAME] tables")
    rules = dict(BUILTINS)
    for name, table in tables.items():
        where = f"rules.{name}"
        if not _RULE_NAME.match(name):
            raise ValueError(f"{where}: a rule name is a letter then letters, digits, _ or -")
        if not isinstance(table, Mapping):
            raise ValueError(f"{where}: must be a table")
        try:
            rules[name] = _settings(name, table, BUILTINS.get(name))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return AlertsConfig(notify, tuple(rules.values()))
