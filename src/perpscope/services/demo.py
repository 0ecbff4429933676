"""The demo: build a simulated store and read the first section of the morning brief from it.

The demo store is separate from the user's own (by default ``demo`` beside it), marked as a demo
store, and rebuilt from scratch on every run. A directory that is not empty and not marked as a
demo store is never deleted.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from perpscope.analytics.funding import CrossVenueFunding, cross_venue_funding, latest_funding
from perpscope.errors import StoreError, UsageError
from perpscope.sim import SCENARIOS, SimConfig, run_simulation
from perpscope.store.lake import Lake

__all__ = ["DemoResult", "build_demo", "demo_store_path", "funding_overview"]

Step = Callable[[str, int, int], None]
"""Progress callback: (what, done, total)."""


@dataclass(frozen=True, slots=True)
class DemoResult:
    """The demo store and what was written to it."""

    store: Path
    rows: dict[str, int]
    seed: int
    days: int
    scenario: str = "default"


def demo_store_path(user_store: Path) -> Path:
    """Where the demo store lives when not given: ``demo`` beside the user's store.

    A store directory called ``store`` (the default) gets a sibling ``demo``; any other name gets
    ``<name>-demo``, so the demo never lands inside or on top of real data.
    """
    name = "demo" if user_store.name == "store" else f"{user_store.name}-demo"
    return user_store.parent / name


def _wipe(path: Path) -> None:
    if not path.exists():
        return
    if not path.is_dir():
        raise StoreError(f"cannot build the demo at {path}: it is a file")
    if any(path.iterdir()) and not Lake(path).marker().get("demo"):
        raise StoreError(
            f"refusing to rebuild {path} as the demo store: it is not empty and not a demo store "
            "(choose another --store)"
        )
    try:
        shutil.rmtree(path)
    except OSError as exc:
        raise StoreError(f"cannot clear the demo store {path}: {exc.strerror or exc}") from None


def build_demo(
    path: Path,
    *,
    seed: int,
    days: int = 30,
    scenario: str = "default",
    step: Step | None = None,
) -> DemoResult:
    """Rebuild the demo store at ``path`` from a simulator run of ``days`` days.

    Args:
        path: the demo store directory (wiped first if it is a demo store).
        seed: simulator seed.
        days: days to simulate.
        scenario: a simulator preset (see :data:`perpscope.sim.SCENARIOS`).
        step: progress callback.

    Raises:
        UsageError: an unknown scenario.
        StoreError: ``path`` is not a demo store or cannot be written.
    """
    if scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {scenario!r}; choose one of: {', '.join(SCENARIOS)}")
    _wipe(path)
    lake = Lake(path)
    lake.init(demo=True)
    if step:
        step("simulating sim1..sim3", 0, 1)
    sim = run_simulation(SimConfig(seed=seed, days=days, scenario=scenario))
    rows: dict[str, int] = {}
    total = len(sim.tables)
    for done, (name, frame) in enumerate(sim.tables.items(), start=1):
        if step:
            step(f"writing {name}", done - 1, total)
        rows[name] = lake.ingest(name, frame).rows_written
    if step:
        step("done", total, total)
    return DemoResult(path, rows, seed, days, scenario)


def funding_overview(lake: Lake) -> CrossVenueFunding:
    """The brief's cross-venue funding section from what the store holds.

    The latest settlement per venue and perpetual, weighted across venues by the latest
    open interest in USD (from any source, latest row per venue and instrument).
    """
    funding = lake.read("funding")
    if funding.is_empty():
        raise StoreError(f"the store at {lake.root} has no funding data yet")
    latest = latest_funding(funding)
    oi = lake.read("open_interest", columns=["venue", "instrument", "ts", "oi_usd"])
    weights = (
        oi.drop_nulls("oi_usd")
        .sort("ts")
        .group_by(["venue", "instrument"])
        .agg(pl.col("oi_usd").last())
    )
    return cross_venue_funding(latest, weights if weights.height else None)
