"""The live watch against the fake exchange on 127.0.0.1 (Binance and Bybit formats): a venue
that fails mid-run raises one outage alert and the other venue's collection goes on."""

from __future__ import annotations

import threading
from pathlib import Path

import polars as pl

from perpscope.collect.retry import RetryPolicy
from perpscope.domain.alert_rules import AlertsConfig
from perpscope.services.watch import LiveFeed, alert_history, run_watch
from perpscope.store.lake import Lake
from tests.fakex.server import FakeBinance, Fault

FAST = RetryPolicy(attempts=1, base_s=0.01, cap_s=0.01)


def test_a_venue_failing_mid_run_raises_one_outage_and_the_other_goes_on(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    feed = LiveFeed(
        lake, ["binance", "bybit"], ["BTC-USDT-PERP"], every_s=0.0, sleep=lambda s: None,
        api_url=fake_binance.url, pace=False, policy=FAST, rate_limit_ms=1,
    )  # fmt: skip
    lines: list[str] = []

    def on_event(e: object) -> None:
        lines.append(str(getattr(e, "message", "")))

    # Bybit answers the first snapshot, then its tickers endpoint fails with 503s
    fake_binance.inject(Fault("/v5/market/tickers", "503", times=1000, skip=1))
    summary = run_watch(
        lake, AlertsConfig(), feed, environ={}, stop=threading.Event(), on_event=on_event,
        max_ticks=3,
    )  # fmt: skip
    assert summary.ticks == 3
    assert summary.outages == {"bybit": 2}
    outages = [e for e in alert_history(lake) if e["rule"] == "venue_outage"]
    assert len(outages) == 1  # failing twice in a row is one outage
    assert outages[0]["venue"] == "bybit"
    assert outages[0]["evidence"]["failures"] == 1
    assert "bybit collection failed" in outages[0]["message"]
    assert any("bybit collection failed" in line for line in lines)
    snaps = lake.read("funding_snapshot")
    per_venue = snaps.group_by("venue").agg(pl.col("ts").n_unique()).sort("venue").rows()
    # Binance was collected on all three ticks; Bybit only before it failed
    assert dict(per_venue)["bybit"] == 1
    assert dict(per_venue)["binance"] >= 1
    binance_requests = [r for r in fake_binance.requests() if not r.path.startswith("/v5/")]
    premium = [r for r in binance_requests if r.path.endswith("premiumIndex")]
    assert len(premium) == 3
