"""The simulator venues ``sim1``, ``sim2`` and ``sim3``: the embedded default when offline.

The interface is :func:`run_simulation` taking a :class:`SimConfig` and returning a
:class:`SimResult` whose frames match the store tables. v0 is statistical; the agent-based
simulator replaces it behind the same interface.
"""

from perpscope.venues.sim.v0 import (
    ASSETS,
    SIM_FUNDING_INTERVAL_H,
    SimConfig,
    SimResult,
    run_simulation,
)

__all__ = ["ASSETS", "SIM_FUNDING_INTERVAL_H", "SimConfig", "SimResult", "run_simulation"]
