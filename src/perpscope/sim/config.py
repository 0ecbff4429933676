"""What the simulator runs: the typed configuration of a run.

:class:`SimConfig` is what a caller chooses (seed, length, assets, venues, scenario, whether the
liquidation engine runs). The constants live in :mod:`perpscope.sim.constants` and the agents'
behaviour in :mod:`perpscope.sim.params`; both are re-exported here for existing imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from perpscope.sim.constants import (
    ASSET_SCALE,
    ASSETS,
    CLAMP_8H,
    INTEREST_8H,
    LEVERAGE_CHOICES,
    SIM_FUNDING_INTERVAL_H,
    STEP_MINUTES,
    STEPS_PER_HOUR,
)
from perpscope.sim.params import MarketParams, Shock
from perpscope.sim.presets import PRESETS

__all__ = [
    "ASSETS",
    "ASSET_SCALE",
    "INTEREST_8H",
    "CLAMP_8H",
    "LEVERAGE_CHOICES",
    "SIM_FUNDING_INTERVAL_H",
    "STEPS_PER_HOUR",
    "STEP_MINUTES",
    "MarketParams",
    "Shock",
    "SimConfig",
]


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate.

    Attributes:
        seed: random seed; the same seed gives identical tables.
        days: length of the run.
        end: end time (UTC); the run covers ``[end - days, end)``.
        assets: assets to simulate (keys of :data:`ASSETS`).
        venues: venues to simulate (keys of :data:`SIM_FUNDING_INTERVAL_H`).
        scenario: a preset name (:data:`~perpscope.sim.presets.SCENARIOS`: ``default``,
            ``long-squeeze``, ``short-squeeze``, ``vacuum``, ``healthy-trend``, ``exhaustion``,
            ``pre-event-build``, ``basis-bull``).
        liquidations: run the liquidation engine (off only for counterfactual studies).
        options: run the options market on BTC and ETH (``perpscope.sim.options``).
    """

    seed: int = 7
    days: int = 30
    end: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    assets: tuple[str, ...] = tuple(ASSETS)
    venues: tuple[str, ...] = tuple(SIM_FUNDING_INTERVAL_H)
    scenario: str = "default"
    liquidations: bool = True
    options: bool = True

    def __post_init__(self) -> None:
        if self.days < 1 or self.days > 3650:
            raise ValueError("days must be between 1 and 3650")
        if self.end.tzinfo is None:
            raise ValueError("end must be timezone-aware")
        unknown = [a for a in self.assets if a not in ASSETS] + [
            v for v in self.venues if v not in SIM_FUNDING_INTERVAL_H
        ]
        if unknown:
            raise ValueError(f"the simulator does not know {', '.join(unknown)}")
        if not self.assets or not self.venues:
            raise ValueError("simulate at least one asset and one venue")
        if self.scenario not in PRESETS:
            raise ValueError(f"unknown scenario {self.scenario!r}; scenarios: {', '.join(PRESETS)}")
