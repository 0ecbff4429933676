"""Benchmark: every alert rule for 500 instruments x 3 venues, per tick of ``perpscope watch``.

Synthetic data (seeded): for 500 assets on 3 venues, 96 hours of hourly funding snapshots and
open interest (the window a tick reads) and three liquidation clusters per series (the map is
refreshed on its own schedule, so a tick only measures the distance to it). One tick = the
market state (every instrument and asset metric), the distance to the clusters, and all the
built-in rules plus three custom threshold rules through the engine. Ticks move the clock one
hour with the next hour's rows, as the service does. Target: under 100 ms per tick.

The peer is the obvious way to write part of a tick: a Python loop over the 1,500 series that
computes only their 24h OI and price changes (a lower bound for such a loop doing every metric);
the tick's OI changes are checked against it. The first tick reads the whole 96h window (the
divergence runs' history) and is reported on its own line; later ticks carry the runs on.

    python bench/alerts.py
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from perpscope.alerts.engine import AlertEngine
from perpscope.alerts.metrics import WINDOW, market_state, with_liq_distance
from perpscope.domain.alert_rules import parse_alerts

ASSETS, VENUES, HOURS, TICKS = 500, ("v1", "v2", "v3"), 96 + 24, 24
T0 = datetime(2026, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)


def _frames(rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    n = ASSETS * len(VENUES)
    ts = np.array([(T0 + k * H).replace(tzinfo=None) for k in range(HOURS)], "datetime64[us]")
    venue = np.repeat(np.array(VENUES * ASSETS), HOURS)
    names = [f"A{a:03d}-USDT-PERP" for a in range(ASSETS) for _ in VENUES]
    inst = np.repeat(np.array(names), HOURS)
    price = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, HOURS)), axis=1)).ravel()
    oi = 1e7 * np.exp(np.cumsum(rng.normal(0, 0.02, (n, HOURS)), axis=1)).ravel()
    rate = rng.normal(1e-4, 2.5e-4, n * HOURS)
    common = {"venue": venue, "instrument": inst, "ts": np.tile(ts, n)}
    funding = pl.DataFrame(
        {**common, "rate": rate, "interval_h": 8.0, "mark_px": price}
    ).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    o = pl.DataFrame({**common, "oi_usd": oi}).with_columns(
        pl.col("ts").dt.replace_time_zone("UTC")
    )
    last = funding.group_by("venue", "instrument").agg(pl.col("mark_px").last())
    clusters = pl.concat(
        [
            last.select(
                "venue",
                "instrument",
                liq_cluster_px=pl.col("mark_px") * (1 + k),
                liq_cluster_usd=pl.lit(5e6),
            )
            for k in (-0.05, -0.015, 0.03)
        ]
    )
    return funding, o, clusters


def _peer(funding: pl.DataFrame, oi: pl.DataFrame, now: datetime) -> dict[tuple[str, str], float]:
    """Per series, in plain Python: the 24h OI change at ``now`` (the check value)."""
    out = {}
    f = funding.filter((pl.col("ts") <= now) & (pl.col("ts") > now - WINDOW))
    o = oi.filter((pl.col("ts") <= now) & (pl.col("ts") > now - WINDOW))
    by = o.partition_by("venue", "instrument", as_dict=True)
    for key, fr in f.partition_by("venue", "instrument", as_dict=True).items():
        ts, oo = by[key]["ts"].to_list(), by[key]["oi_usd"].to_list()
        px = fr["mark_px"].to_list()
        i = len(ts) - 1
        j = ts.index(ts[i] - timedelta(hours=24))
        _ = (px[i] / px[j] - 1, [r * 8 / 8 for r in fr["rate"].to_list()][-1])
        out[(str(key[0]), str(key[1]))] = oo[i] / oo[j] - 1
    return out


def main() -> None:
    rng = np.random.default_rng(7)
    funding, oi, clusters = _frames(rng)
    alerts = parse_alerts(
        {
            "rules": {
                "hot_funding": {"metric": "funding_8h", "op": ">", "value": 0.0008},
                "oi_drop": {"metric": "oi_change_24h", "op": "<", "value": -0.08},
                "price_pump": {"metric": "price_change_24h", "op": ">", "value": 0.1},
            }
        }
    )
    engine = AlertEngine(alerts.rules)
    start = T0 + (HOURS - TICKS - 1) * H
    t = time.perf_counter()
    previous = market_state(funding, oi, start)  # the first tick reads the whole window
    engine.evaluate(with_liq_distance(previous, clusters))
    first_ms = (time.perf_counter() - t) * 1000
    times, events, peer_times = [], 0, []
    state = None
    for k in range(TICKS):
        now = start + (k + 1) * H
        t = time.perf_counter()
        previous = market_state(funding, oi, now, previous)
        state = with_liq_distance(previous, clusters)
        events += len(engine.evaluate(state))
        times.append(time.perf_counter() - t)
        if k < 3:
            t = time.perf_counter()
            peer = _peer(funding, oi, now)
            peer_times.append(time.perf_counter() - t)
            got = state.filter(pl.col("level") == "instrument").select(
                "venue", "instrument", "oi_change_24h"
            )
            for v, i, x in got.iter_rows():
                assert abs(peer[(v, i)] - x) < 1e-12, (v, i)
    assert state is not None
    ms = statistics.median(times) * 1000
    peer_ms = statistics.median(peer_times) * 1000
    print(f"markets: {ASSETS} assets x {len(VENUES)} venues, {HOURS}h of hourly rows")
    print(f"rules: {len(alerts.rules)} ({', '.join(r.name for r in alerts.rules)})")
    print(f"per tick: median {ms:.1f} ms, max {max(times) * 1000:.1f} ms over {TICKS} ticks; "
          f"{events} events")  # fmt: skip
    print(f"first tick (reads the whole {WINDOW.total_seconds() / 3600:.0f}h window): "
          f"{first_ms:.0f} ms")  # fmt: skip
    print(f"peer (python loop over series): {peer_ms:.1f} ms per tick")
    print(
        json.dumps(
            {
                "bench": "alerts",
                "instruments": ASSETS * len(VENUES),
                "rules": len(alerts.rules),
                "tick_ms_median": round(ms, 2),
                "tick_ms_max": round(max(times) * 1000, 2),
                "first_tick_ms": round(first_ms, 1),
                "peer_ms": round(peer_ms, 2),
                "speedup": round(peer_ms / ms, 2),
                "target_ms": 100,
                "target_met": ms < 100,
                "events": events,
            }
        )
    )


if __name__ == "__main__":
    main()
