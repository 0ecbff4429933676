"""Cascade acceptance over several seeds: each squeeze preset's cascade is found within 3 h of
its shock, on the right side, and the vacuum preset has none.

Each run (14 days of BTC on sim1) is written to a store and read back through
:func:`perpscope.services.liquidations.cascades_report`, the code path of ``perpscope
cascades``. Seed 7 is the benchmark's run; 1, 2 and 3 were fixed before looking at their
output.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from perpscope.services.liquidations import cascades_report
from perpscope.store.lake import Lake
from perpscope.venues.sim import PRESETS, SimConfig, run_simulation

SEEDS = (1, 2, 3, 7)
DAYS = 14
SCENARIOS = ("long-squeeze", "short-squeeze", "vacuum")


def _shock_ts(cfg: SimConfig) -> datetime:
    """When the preset's shock starts: ``at_frac`` of the run after its start."""
    start = cfg.end - timedelta(days=cfg.days)
    return start + timedelta(days=cfg.days * PRESETS[cfg.scenario].shocks[0].at_frac)


@pytest.fixture(scope="module")
def stores(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[tuple[str, int], tuple[Path, SimConfig]]:
    """One store per (scenario, seed) holding the run's candles and liquidations."""
    out = {}
    for scenario in SCENARIOS:
        for seed in SEEDS:
            cfg = SimConfig(
                seed=seed,
                days=DAYS,
                scenario=scenario,
                assets=("BTC",),
                venues=("sim1",),
                options=False,
            )
            tables = run_simulation(cfg).tables
            root = tmp_path_factory.mktemp(f"{scenario}-{seed}")
            lake = Lake(root)
            lake.init(demo=True)
            for name in ("ohlcv", "liquidations"):
                lake.ingest(name, tables[name])
            out[(scenario, seed)] = (root, cfg)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
@pytest.mark.parametrize(
    ("scenario", "side"), [("long-squeeze", "long"), ("short-squeeze", "short")]
)
def test_each_squeeze_cascade_climaxes_within_3h_of_the_shock_on_every_seed(
    stores: dict[tuple[str, int], tuple[Path, SimConfig]], scenario: str, side: str, seed: int
) -> None:
    root, cfg = stores[(scenario, seed)]
    found = cascades_report(Lake(root), "sim1", "BTC-USDT-PERP")
    shock = _shock_ts(cfg)
    near = found.filter((pl.col("climax_ts") - shock).abs() <= timedelta(hours=3))
    assert near["side"].to_list() == [side], found.select("climax_ts", "side", "move_pct")
    assert near["liquidated_usd"][0] > 0  # REALISED liquidations of the simulated venue


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
def test_the_vacuum_preset_has_no_cascade_on_any_seed(
    stores: dict[tuple[str, int], tuple[Path, SimConfig]], seed: int
) -> None:
    root, _ = stores[("vacuum", seed)]
    found = cascades_report(Lake(root), "sim1", "BTC-USDT-PERP")
    assert found.is_empty(), found.select("climax_ts", "side", "move_pct")
