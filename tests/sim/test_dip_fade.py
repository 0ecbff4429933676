"""The opportunistic traders' hot fade is a damped pull (docs/simulator.md, the climax bar)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from perpscope.sim import SimConfig, run_simulation
from perpscope.sim.params import MarketParams
from perpscope.sim.presets import PRESETS


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_a_fade_beyond_the_whole_excess_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="dip_max"):
        MarketParams(dip_max=bad)


def test_a_saturated_fade_on_one_venue_stays_bounded() -> None:
    # dip_boost 100 puts the fade at its cap (all of the excess beyond a 0.2% threshold, every
    # step) as soon as the feed has any heat. The old rule traded a USD amount split across
    # venues: on one venue its per-step gain was dip_boost x heat, each step's fade overshooting
    # the last; on this run it overflowed the price within the 10 days (checked by hand on the
    # old rule). Capped at the whole excess, the fade can only bring the index back toward the
    # threshold, never beyond it.
    params = replace(PRESETS["default"], dip_boost=100.0, dip_threshold=0.002)
    cfg = SimConfig(seed=7, days=10, assets=("BTC",), venues=("sim1",), options=False)
    c = run_simulation(cfg, params).tables["ohlcv"].filter(kind="index").sort("ts")["c"].to_numpy()
    assert c.size == 10 * 24
    assert np.isfinite(c).all()
    r = np.abs(np.diff(np.log(c)))
    # normal hourly moves are about 0.5%; a runaway fade would print moves of many percent
    assert r.max() < 0.05, r.max()
    assert c.max() / c.min() < 1.3
