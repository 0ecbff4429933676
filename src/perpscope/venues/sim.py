"""The simulated venues ``sim1``, ``sim2`` and ``sim3``: a thin adapter over the simulator.

The market itself (agents, book, liquidation engine) lives in :mod:`perpscope.sim`; a venue
adapter only exposes what the rest of perpscope reads from a venue. Code that needs simulated
data imports it from here or from :mod:`perpscope.sim`, which are the same objects.
"""

from perpscope.sim import (
    ASSETS,
    PRESETS,
    SCENARIOS,
    SIM_FUNDING_INTERVAL_H,
    MarketParams,
    SimConfig,
    SimResult,
    run_simulation,
)

__all__ = [
    "ASSETS",
    "PRESETS",
    "SCENARIOS",
    "SIM_FUNDING_INTERVAL_H",
    "MarketParams",
    "SimConfig",
    "SimResult",
    "run_simulation",
]
