"""The simulator venues ``sim1``, ``sim2`` and ``sim3``: an agent-based perpetual market.

:func:`run_simulation` takes a :class:`SimConfig` and returns a :class:`SimResult` whose frames
match the store tables (candles, funding, OI, long/short, taker volume, liquidations) plus the
ground truth no venue publishes, ``sim_positions``. See ``docs/simulator.md``.
"""

from perpscope.venues.sim.config import ASSETS, SIM_FUNDING_INTERVAL_H, MarketParams, SimConfig
from perpscope.venues.sim.presets import PRESETS, SCENARIOS
from perpscope.venues.sim.run import SimResult, run_simulation

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
