"""Constants of the simulated market: assets, venues, time step, funding formula, leverages.

Shared by the configuration, the agents' parameters and the engine; imports nothing of ours.
"""

from __future__ import annotations

__all__ = [
    "ASSETS",
    "ASSET_SCALE",
    "ASSET_VOL",
    "INTEREST_8H",
    "CAP_8H",
    "CLAMP_8H",
    "LEVERAGE_CHOICES",
    "SIM_FUNDING_INTERVAL_H",
    "STEPS_PER_HOUR",
    "STEP_MINUTES",
]

ASSETS: dict[str, float] = {"BTC": 60_000.0, "ETH": 3_000.0, "SOL": 150.0}
"""Simulated assets and their starting prices (USD)."""

ASSET_SCALE: dict[str, float] = {"BTC": 1.0, "ETH": 0.6, "SOL": 0.3}
"""Size of each asset's market relative to BTC: depth, flows and position sizes scale with it."""

ASSET_VOL: dict[str, float] = {"BTC": 1.0, "ETH": 1.25, "SOL": 1.6}
"""Volatility of each asset's news relative to BTC's."""

SIM_FUNDING_INTERVAL_H: dict[str, float] = {"sim1": 8.0, "sim2": 8.0, "sim3": 4.0}
"""Funding interval of each simulated venue."""

STEP_MINUTES = 5
"""Length of one simulation step."""
STEPS_PER_HOUR = 60 // STEP_MINUTES

INTEREST_8H = 0.0001
"""The playbook's interest rate component: 0.01% per 8h (scaled to the venue's interval)."""
CLAMP_8H = 0.0005
"""The clamp of (interest - premium): +-0.05% per 8h (scaled to the venue's interval)."""
CAP_8H = 0.003
"""The venue's cap on the funding rate: +-0.3% per 8h (scaled to the venue's interval)."""

LEVERAGE_CHOICES: tuple[float, ...] = (5.0, 10.0, 20.0, 25.0, 50.0, 75.0, 100.0)
"""Leverages traders pick from (weights in :attr:`MarketParams.leverage_weights`)."""
