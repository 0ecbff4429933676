"""``perpscope alerts test``: a rule evaluated on the store's latest data, without firing it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from perpscope.alerts.engine import evidence_columns, format_value, matches
from perpscope.alerts.metrics import WINDOW, liq_clusters, market_state, with_liq_distance
from perpscope.alerts.notify import apprise_sender, channel_id, notify_urls, validate_urls
from perpscope.domain.alert_rules import METRICS, OUTAGE, AlertsConfig, Rule
from perpscope.services._market_read import require_store
from perpscope.store.lake import Lake

__all__ = ["check_rule"]


def _recent(lake: Lake, table: str, span: timedelta) -> pl.DataFrame:
    from perpscope.domain.schema import table_spec

    if not lake.has_table(table):
        return pl.DataFrame(schema=table_spec(table).polars_schema)
    last = lake.read(table, columns=["ts"])["ts"].max()
    if not isinstance(last, datetime):
        return pl.DataFrame(schema=table_spec(table).polars_schema)
    return lake.read(table, where=pl.col("ts") > last - span)


def check_rule(
    lake: Lake,
    rule: Rule,
    alerts: AlertsConfig,
    environ: Mapping[str, str],
    *,
    send: bool = False,
) -> dict[str, Any]:
    """Which markets meet ``rule`` at the latest stored snapshot (``as_of``), with the values;
    with ``send``, a test message goes to every channel and the answers are reported."""
    require_store(lake)
    notes: list[str] = []
    rows: list[dict[str, Any]] = []
    funding = _recent(lake, "funding_snapshot", WINDOW)
    top = funding["ts"].max()
    as_of = top if isinstance(top, datetime) else None
    if rule.name == OUTAGE:
        notes.append("venue_outage fires from 'perpscope watch' when a venue's collection fails")
    elif as_of is None:
        notes.append("no funding snapshots stored: collect some ('perpscope collect snapshot')")
    else:
        oi = _recent(lake, "open_interest", timedelta(days=14))
        state = market_state(funding, oi, as_of)
        if rule.metric == "liq_cluster_distance":
            candles = _recent(lake, "ohlcv", timedelta(days=14)).filter(
                (pl.col("kind") == "trade") & (pl.col("timeframe") == "1h")
            )
            liq = liq_clusters(candles, oi, as_of)
            if liq.is_empty():
                notes.append("no dense ESTIMATED liquidation cluster (needs 1h candles and OI)")
            state = with_liq_distance(state, liq)
        hits = matches(rule, state)
        rows = [
            {
                "market": f"{row['venue']} {row['instrument']}",
                "time": row["ts"],
                rule.metric: format_value(rule.metric, row[rule.metric]),
            }
            for row in hits.select(evidence_columns(rule, hits.columns)).iter_rows(named=True)
        ]
        level = METRICS[rule.metric].level
        n = state.filter(pl.col("level") == level).height
        notes.append(f"{len(rows)} of {n} markets meet {rule.metric} {rule.op} "
                     f"{format_value(rule.metric, rule.value)}")  # fmt: skip
        if not rule.enabled:
            notes.append(f"{rule.name} is disabled in the configuration")
    if send:
        urls = notify_urls(alerts.notify, environ)
        validate_urls(urls)
        sender = apprise_sender(urls)
        for url in urls:
            c = channel_id(url)
            ok = sender(c, f"perpscope test: {rule.name}", f"Test message for rule {rule.name}.")
            notes.append(f"test message to {c}: {'delivered' if ok else 'FAILED'}")
        if not urls:
            notes.append("no channels configured ([alerts] notify or PERPSCOPE_NOTIFY)")
    return {"rule": rule.name, "as_of": as_of, "markets": rows, "notes": notes}
