"""The demo: build a simulated store and read the first section of the morning brief from it.

Where it goes (:func:`demo_target`): into the store the other commands read by default, so that
``perpscope demo`` then ``perpscope funding table`` works with no ``--store``, unless that store
holds the user's own data; then ``demo`` beside it. The demo store is marked as a demo store and
rebuilt from scratch on every run. A directory that is not empty and not marked as a demo store,
or a demo store into which real (non-simulator) data has been imported, is never deleted.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from perpscope.analytics.funding import CrossVenueFunding, cross_venue_funding, latest_funding
from perpscope.domain.schema import TABLES
from perpscope.domain.symbols import SIM_VENUES
from perpscope.errors import StoreError, UsageError
from perpscope.sim import SCENARIOS, SimConfig, run_simulation
from perpscope.store.lake import Lake

__all__ = ["DemoResult", "build_demo", "demo_store_path", "demo_target", "funding_overview"]

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


def _is_free_or_demo(path: Path) -> bool:
    if not path.exists():
        return True
    if not path.is_dir():
        return False
    return not any(path.iterdir()) or bool(Lake(path).marker().get("demo"))


def demo_target(configured: Path) -> Path:
    """Where ``perpscope demo`` builds when no ``--store`` is given to it.

    The store the other commands read by default (``configured``) when it does not exist yet, is
    an empty directory or is already the demo store; otherwise (it holds the user's own data)
    :func:`demo_store_path` beside it, so the demo never lands on real data.
    """
    return configured if _is_free_or_demo(configured) else demo_store_path(configured)


def _real_venues(lake: Lake) -> list[str]:
    """Venues other than the simulator's found in a store's tables (imported real data)."""
    found: set[str] = set()
    for name in lake.tables():
        if "venue" in TABLES[name].column_names:
            found |= set(lake.read(name, columns=["venue"])["venue"].unique().to_list())
    return sorted(found - set(SIM_VENUES))


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
    real = _real_venues(Lake(path)) if any(path.iterdir()) else []
    if real:
        raise StoreError(
            f"refusing to rebuild the demo store {path}: it now holds data of {', '.join(real)} "
            "(imported or collected there); choose another --store for the demo"
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
