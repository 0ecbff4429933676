"""A store for the liquidation tests: one simulated squeeze plus hand-built Binance liquidations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from perpscope.store.lake import Lake
from perpscope.venues.sim import SimConfig, run_simulation

SIM = SimConfig(seed=7, days=14, scenario="long-squeeze", assets=("BTC",), venues=("sim1",))
SHOCK = SIM.end - timedelta(days=SIM.days * 0.25)  # the preset's shock, 3/4 into the run
BINANCE_T = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)


def binance_liquidations() -> pl.DataFrame:
    """Three Binance events in the last hour of the run and one a day earlier."""
    ts = [BINANCE_T, BINANCE_T + timedelta(minutes=30), BINANCE_T, BINANCE_T - timedelta(days=1)]
    return pl.DataFrame(
        {
            "venue": ["binance"] * 4,
            "instrument": ["BTC-USDT-PERP"] * 4,
            "ts": ts,
            "event_id": ["a", "b", "c", "d"],
            "side": ["long", "long", "short", "long"],
            "px": [60_000.0, 59_900.0, 60_100.0, 61_000.0],
            "qty_base": [1.0, 2.0, 0.5, 9.0],
            "notional_usd": [60_000.0, 119_800.0, 30_050.0, 549_000.0],
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))


def build_store(root: Path) -> dict[str, pl.DataFrame]:
    """Write the simulated tables and the Binance events to a store at ``root``."""
    tables = run_simulation(SIM).tables
    lake = Lake(root)
    lake.init(demo=True)
    for name, frame in tables.items():
        lake.ingest(name, frame)
    lake.ingest("liquidations", binance_liquidations())
    return tables
