"""Shared simulator runs: ONE 90-day default run for the whole session, short preset runs."""

from __future__ import annotations

import polars as pl
import pytest

from perpscope.sim import SimConfig, run_simulation

PRESET_DAYS = 14


@pytest.fixture(scope="session")
def default_run() -> dict[str, pl.DataFrame]:
    """The 90-day, 3-venue, 3-asset default run (the benchmark's run), seed 7."""
    return run_simulation(SimConfig(seed=7, days=90)).tables


@pytest.fixture(scope="session")
def preset_runs() -> dict[str, dict[str, pl.DataFrame]]:
    """Each scenario (and the default for comparison) over 14 days, seed 7."""
    return {
        name: run_simulation(SimConfig(seed=7, days=PRESET_DAYS, scenario=name)).tables
        for name in ("default", "long-squeeze", "short-squeeze", "vacuum")
    }
