"""``scenario_change`` and ``new_setup`` in ``perpscope watch --sim``: each event is what the
signals engine reads from the store at the event's time (checked after the run, through the
signals service, not the alert code), and a second run fires nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import polars as pl
import pytest

from perpscope.domain.alert_rules import parse_alerts
from perpscope.services.signals import scenario_report
from perpscope.services.watch import SimFeed, alert_history, run_watch
from perpscope.sim import SimConfig
from perpscope.store.lake import Lake

pytestmark = pytest.mark.slow

ONLY_SIGNALS = {
    "rules": {
        "scenario_change": {"enabled": True},
        "new_setup": {"enabled": True},
        **{r: {"enabled": False} for r in ("funding_extreme", "oi_surge", "oi_divergence",
                                            "liq_proximity", "funding_spread")},
    }
}  # fmt: skip


def watch(lake: Lake) -> int:
    feed = SimFeed(SimConfig(seed=11, days=6, scenario="long-squeeze"), 0, lambda s: None)
    summary = run_watch(lake, parse_alerts(ONLY_SIGNALS), feed, environ={},
                        stop=threading.Event(), flush_every=168, events_every=24,
                        signals_every=8)  # fmt: skip
    return summary.events


def test_scenario_and_setup_alerts_match_the_signals_engine(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "store")
    assert watch(lake) > 0
    events = alert_history(lake)
    scen = [e for e in events if e["rule"] == "scenario_change"]
    setups = [e for e in events if e["rule"] == "new_setup"]
    assert scen
    assert setups
    for e in scen:
        reading = scenario_report(lake, e["asset"], e["ts"])
        assert reading.scenario == e["evidence"]["scenario"] != e["evidence"]["previous"]
        assert reading.scenario != "none"
        assert reading.confidence == pytest.approx(e["value"])
    journal = lake.read("signals")
    for e in setups:
        asset, setup, direction = e["instrument"].split(":")
        rows = journal.filter(
            (pl.col("signal") == setup)
            & (pl.col("ts") == e["ts"])
            & (pl.col("direction") == direction)
        )
        assert rows.height >= 1, e
        assert e["evidence"]["stage"] in ("entry", "exit")
    assert watch(lake) == 0  # a rerun on the same store fires nothing
    assert len(alert_history(lake)) == len(events)
