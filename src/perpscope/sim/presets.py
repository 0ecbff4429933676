"""Named scenarios: agent parameters for the playbook's scenarios 1-6 and the basis trade.

- ``default``: a mixed market; trends, crowding and cascades arise from the agents alone. Over
  the leveraged traders sit position traders (12% of openers, at 2x, holding about three
  weeks): the slow money that steadies OI. The fast traders size their leverage to each
  asset's swings (``lev_vol_ref`` 0.8: a drawn 10x is 8x on BTC, 6x on ETH, 5x on SOL), the
  crowd overtrades the very largest news into a wick that scalpers take back within minutes
  (``spike``), and the maker's own quoting noise is a little wider (two venues' funding
  differs more often). Issue #11's calibration; the scenario presets keep the base crowd of
  leveraged traders only, on which their scenarios were tuned.
- ``long-squeeze`` (playbook scenario 1): traders pile into leveraged longs, so funding turns
  extreme positive and OI builds while price grinds up (``drift_day``: the value traders
  share the crowd's conviction, +0.5% a day); three quarters into the run a large spot seller
  pushes the mark down into the long liquidation prices, and the forced selling cascades.
- ``short-squeeze`` (scenario 2): the mirror image, a crowded short squeezed by a large spot buyer.
- ``vacuum`` (scenario 5): the leveraged market retreats: from a fifth of the run to three
  quarters the opening rate falls to 0.35 times its level, so OI declines to its lows as
  positions close and are not replaced; news is about half the default's and calmer (a
  low-volatility market) and the maker leans its quotes on inventory less, so funding stays at
  the interest-rate print; the map thins as the positions go. Leverage is low (5x and 10x): no
  liquidation fuel. From three quarters traders come back (OI rebuilds); no shock.
- ``healthy-trend`` (scenario 3): the value drifts up through the build-up while ever more
  traders open, leaning mildly long: price, OI and volume rise together; the perp holds a small
  premium (``mm_premium`` 0.02%) and the maker leans its quotes on its inventory little, so
  funding is mildly positive (near +0.015% per 8h, the playbook's 0.01-0.03%) and not crowded;
  at three quarters a modest seller makes a pullback that finds no cascade.
- ``exhaustion`` (scenario 4, with the OI divergence): price grinds up while fewer and fewer
  traders open, the last of them nearly all long: OI falls, funding rises; at three quarters a
  spot seller starts the reversal.
- ``pre-event-build`` (scenario 6): a quiet market waits for a known catalyst (news about a
  seventh of the default's, so price holds a range); a wave of leveraged openers on both sides
  from 60% of the run to the event lifts OI and stacks liquidation prices both sides of price;
  the perp holds a small premium (``mm_premium`` 0.055%; the maker leans its quotes on its
  inventory little), so funding is moderate and steady, near +0.03% per 8h; option makers
  price the catalyst's move (4%) into the expiries after it, so the front of the IV term
  structure stands above the back; at three quarters the catalyst (a large spot order)
  cascades one side.
- ``basis-bull`` (the basis trade's market): the perp holds a premium to spot, so funding is
  positive at nearly every settlement; at three quarters the premium goes and funding with it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from perpscope.sim.params import MarketParams, Shock

__all__ = ["PRESETS", "SCENARIOS"]

_DEFAULT = MarketParams()
"""The base crowd the scenario presets are built on: leveraged traders only."""

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
    "default": replace(
        _DEFAULT,
        patient_share=0.12,
        lev_vol_ref=0.8,
        spike=1.3,
        quote_noise=0.0003,
    ),
    "long-squeeze": replace(_CROWDED, drift_day=0.005),
    "short-squeeze": replace(
        _CROWDED, long_bias=-0.3, shocks=(Shock(at_frac=0.75, usd_per_step=1.5e7, steps=12),)
    ),
    "vacuum": replace(
        _DEFAULT,
        build_frac=0.75,
        open_ramp=0.35,
        ramp_from=0.2,
        news_vol=0.0008,
        vol_slow=0.3,
        vol_max=2.0,
        mm_skew=0.02,
        quote_noise=0.0001,
        leverage_weights=(0.85, 0.15, 0.0, 0.0, 0.0, 0.0, 0.0),
    ),
    "healthy-trend": replace(
        _DEFAULT,
        build_frac=0.75,
        drift_day=0.015,
        open_ramp=2.5,
        long_bias=0.03,
        mm_skew=0.006,
        mm_premium=0.0002,
        sentiment_mom=0.1,
        sentiment_vol=0.1,
        shocks=(Shock(at_frac=0.75, usd_per_step=-4.0e6, steps=6),),
    ),
    "exhaustion": replace(
        _DEFAULT,
        drift_day=0.012,
        open_ramp=0.2,
        ramp_from=0.3,
        bias_ramp=0.45,
        funding_exit=0.01,
        sentiment_vol=0.1,
        shocks=(Shock(at_frac=0.75, usd_per_step=-1.2e7, steps=12),),
    ),
    "pre-event-build": replace(
        _DEFAULT,
        news_vol=0.0002,
        vol_max=2.0,
        open_ramp=4.0,
        ramp_from=0.6,
        leverage_weights=(0.25, 0.3, 0.2, 0.1, 0.1, 0.03, 0.02),
        sentiment_vol=0.05,
        mm_premium=0.00055,
        mm_skew=0.003,
        quote_noise=0.0001,
        catalyst_vol=0.04,
        shocks=(Shock(at_frac=0.75, usd_per_step=-3.0e7, steps=6),),
    ),
    "basis-bull": replace(
        _DEFAULT,
        build_frac=0.75,
        mm_premium=0.0008,
        mm_skew=0.02,
        funding_exit=0.01,
        drift_day=0.005,
        long_bias=0.05,
    ),
}
"""Scenario name -> agent parameters."""

SCENARIOS: Final[tuple[str, ...]] = tuple(PRESETS)
"""The scenario names, ``default`` first."""
