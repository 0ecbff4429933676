"""Triple confluence: a funding extreme, an OI divergence and a structural trigger, all at once.

The playbook: "This setup requires all three layers to align: Funding extreme: At least +-0.05%
sustained for 24+ hours; OI divergence: OI declining while price makes new extremes [...] When
all three align, you have a high-conviction reversal trade". Its worked example shorts BTC after
funding "above +0.06% for two consecutive days", "OI [...] declining for three days despite price
making new highs [...] a divergence ratio of 0.6", and a one-hour swing failure pattern: "Short
entry at $72,400 (below the SFP close). Stop at $73,400 (above the SFP high) [...] T1 at $71,400
(1R). T2 at $69,500 (2.9R). T3 at $67,000 (5.4R)."

At each bar's close, with only what is known then:

* **funding**: the latest known settlement and the ones before it are beyond
  ``+-funding_threshold`` (8h-normalised) with the same sign for at least ``min_extreme_h`` hours
  (settlements x their interval: three 8h settlements are 24h); positive funding (crowded longs)
  points short, negative long;
* **OI divergence** in the same direction on this bar or one of the bars of the last
  ``divergence_within_h`` hours: the oi-divergence strategy's rule
  (:func:`~perpscope.backtest.strategies.oi_divergence.divergence_sides`) with its
  ``lookback_h``, ``min_move`` and ``min_ratio``;
* **structural trigger** on this bar in the same direction: a swing failure or a break of
  structure / change of character of :func:`perpscope.analytics.structure.structure` with
  swings of ``swing_width`` bars.

Entry at the next bar's open (the engine enters only when flat: a later trigger while the
funding and the divergence still hold is a new entry after a stopped-out trade). The stop is
``stop_buffer`` beyond the trigger bar's extreme (its high for a short: "above the SFP high"),
measured from the signal bar's close; the targets are the example's 1R, 2.9R and 5.4R.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from perpscope.backtest.strategies._common import (
    bars_in,
    known_funding,
    recent_side,
    require_oi,
    stop_beyond,
    structure_triggers,
)
from perpscope.backtest.strategies.oi_divergence import divergence_sides
from perpscope.backtest.types import Market, Signals

__all__ = ["TripleConfluenceParams", "funding_direction", "triple_confluence"]

I8 = npt.NDArray[np.int8]


@dataclass(frozen=True, slots=True)
class TripleConfluenceParams:
    """Parameters of :func:`triple_confluence` (see the module doc).

    Attributes:
        funding_threshold: the extreme, per 8h (0.0005 = the playbook's 0.05%).
        min_extreme_h: hours the extreme must have lasted (the playbook's 24).
        lookback_h: the OI divergence's window, hours (oi-divergence's 120 = 5 days).
        min_move: the least |price change| over that window (0.03 = 3%).
        min_ratio: the least OI decline over the price move (the playbook's 0.5).
        divergence_within_h: the divergence counts for this many hours after its last bar.
        swing_width: bars on each side of a swing (analytics.structure's default 3).
        stop_buffer: the stop's distance beyond the trigger bar's extreme, a fraction of price.
        targets_r: T1, T2, T3 in R (the worked example's 1, 2.9, 5.4).
    """

    funding_threshold: float = 0.0005
    min_extreme_h: float = 24.0
    lookback_h: float = 120.0
    min_move: float = 0.03
    min_ratio: float = 0.5
    divergence_within_h: float = 24.0
    swing_width: int = 3
    stop_buffer: float = 0.001
    targets_r: tuple[float, float, float] = (1.0, 2.9, 5.4)

    def validate(self) -> None:
        """Raises ValueError naming the first bad parameter."""
        if not (math.isfinite(self.funding_threshold) and self.funding_threshold > 0):
            raise ValueError("funding_threshold must be a positive rate per 8h")
        for name in ("min_extreme_h", "lookback_h", "divergence_within_h"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of hours")
        if not (math.isfinite(self.min_move) and 0 <= self.min_move < 1):
            raise ValueError("min_move must be a fraction in [0, 1)")
        if not (math.isfinite(self.min_ratio) and self.min_ratio >= 0):
            raise ValueError("min_ratio must be >= 0")
        if self.swing_width < 1:
            raise ValueError("swing_width must be at least 1 bar")
        if not (math.isfinite(self.stop_buffer) and 0 <= self.stop_buffer < 0.5):
            raise ValueError("stop_buffer must be a fraction in [0, 0.5)")
        t = self.targets_r
        if len(t) != 3 or not all(x > 0 for x in t) or list(t) != sorted(t):
            raise ValueError("targets_r must be three increasing positive R multiples")


def funding_direction(market: Market, threshold: float, min_hours: float) -> I8:
    """-1 (short) while a positive extreme has lasted ``min_hours``, +1 for a negative one."""
    known = known_funding(
        market.ts, market.funding_ts, market.funding_rate, market.funding_interval_h, threshold
    )
    if len(market.funding_ts) == 0:
        return np.zeros(len(market.ts), np.int8)
    interval = market.funding_interval_h[np.clip(known.index, 0, None)]
    lasting = (known.index >= 0) & (known.streak * interval >= min_hours)
    return np.where(lasting, -np.sign(np.nan_to_num(known.rate8)), 0).astype(np.int8)


def triple_confluence(market: Market, params: TripleConfluenceParams) -> Signals:
    """Signals of the triple confluence on ``market`` (see the module doc).

    Raises:
        ValueError: bad parameters, or no open interest in the market.
    """
    params.validate()
    require_oi(market, "triple-confluence")
    n = len(market.ts)
    funding = funding_direction(market, params.funding_threshold, params.min_extreme_h)
    div = divergence_sides(market, params.lookback_h, params.min_move, params.min_ratio)
    within = bars_in(market, params.divergence_within_h)
    trig = structure_triggers(market, params.swing_width)
    side = np.zeros(n, np.int8)
    for want in (-1, 1):
        ok = (funding == want) & (trig.side == want) & recent_side(div, want, within)
        side[ok] = want
    return Signals(
        side,
        np.zeros(n, np.bool_),
        stop_beyond(market.c, trig.extreme, side, params.stop_buffer),
        np.tile(np.array(params.targets_r, np.float64), (n, 1)),
        np.full(n, np.nan),
    )
