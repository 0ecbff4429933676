"""perpscope's simulated market: an agent-based perpetual market on venues ``sim1``-``sim3``.

:func:`run_simulation` takes a :class:`SimConfig` and returns a :class:`SimResult` whose frames
match the store tables (candles, funding, OI, long/short, taker volume, liquidations) plus the
ground truth no venue publishes, ``sim_positions``. See ``docs/simulator.md``. The venue
adapter :mod:`perpscope.venues.sim` re-exports the public names.
"""

from perpscope.sim.config import ASSETS, SIM_FUNDING_INTERVAL_H, MarketParams, SimConfig
from perpscope.sim.presets import PRESETS, SCENARIOS
from perpscope.sim.run import SimResult, run_simulation

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
