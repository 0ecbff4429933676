"""Named scenarios: agent parameters for the playbook's scenarios 1, 2 and 5.

- ``default``: a mixed market; trends, crowding and cascades arise from the agents alone.
- ``long-squeeze`` (playbook scenario 1): traders pile into leveraged longs, so funding turns
  extreme positive and OI builds while price grinds up (``build_drift``: the value traders
  share the crowd's conviction, +0.5% a day); three quarters into the run a large spot seller
  pushes the mark down into the long liquidation prices, and the forced selling cascades.
- ``short-squeeze`` (scenario 2): the mirror image, a crowded short squeezed by a large spot buyer.
- ``vacuum`` (scenario 5): few, low-leverage traders; low OI, neutral funding, no liquidation fuel.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from perpscope.sim.params import MarketParams, Shock

__all__ = ["PRESETS", "SCENARIOS"]

_DEFAULT = MarketParams()

_CROWDED = replace(
    _DEFAULT,
    open_rate=4.0,
    burn_in_share=0.1,
    news_vol=0.0005,
    vol_slow=0.3,
    vol_fast=0.4,
    vol_max=2.0,
    mm_skew=0.02,
    long_bias=0.3,
    mix=(0.3, 0.1, 0.6),
    leverage_weights=(0.15, 0.3, 0.25, 0.15, 0.1, 0.03, 0.02),
    hold_mean_h=96.0,
    funding_exit=0.02,
    dip_threshold=0.01,
    shocks=(Shock(at_frac=0.75, usd_per_step=-1.5e7, steps=12),),
)

PRESETS: Final[dict[str, MarketParams]] = {
    "default": _DEFAULT,
    "long-squeeze": replace(_CROWDED, build_drift=0.005),
    "short-squeeze": replace(
        _CROWDED, long_bias=-0.3, shocks=(Shock(at_frac=0.75, usd_per_step=1.5e7, steps=12),)
    ),
    "vacuum": replace(
        _DEFAULT,
        open_rate=0.15,
        noise_usd=5.0e4,
        mm_skew=0.02,
        quote_noise=0.00003,
        mm_recentre=0.95,
        news_vol=0.0008,
        vol_slow=0.3,
        vol_max=2.0,
        mix=(0.1, 0.3, 0.6),
        leverage_weights=(0.85, 0.15, 0.0, 0.0, 0.0, 0.0, 0.0),
        hold_mean_h=12.0,
    ),
}
"""Scenario name -> agent parameters."""

SCENARIOS: Final[tuple[str, ...]] = tuple(PRESETS)
"""The scenario names, ``default`` first."""
