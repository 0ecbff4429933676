"""OI divergence reversal: price makes a new extreme while open interest falls.

The playbook: "Price is making new highs, but OI is declining [...] the rally is being fueled by
short covering, not by fresh bullish conviction" (bearish); "Price is making new lows, but OI is
declining [...] The sell-off is capitulation" (bullish). "If price rises X% while OI falls Y%,
the divergence ratio is Y/X [...] divergence ratios above 0.5 [...] have produced reversal signals
with a win rate above 60%. Ratios above 1.0 [...] above 70%."

At each bar's close, over the last ``lookback_h`` hours:

* price change ``X = close / close[lookback ago] - 1`` and OI change ``Y`` between the latest OI
  observation known at the close and the one known ``lookback_h`` earlier (an observation at T is
  known from the first bar that closes after T; store the OI at the *start* of its period, e.g.
  a daily file's ``oi_open``, so that it is not used before it existed);
* **short** when the close is the highest close of the window, ``X >= min_move`` and
  ``-Y / X >= min_ratio`` (OI fell by at least that share of the rise);
* **long** when the close is the lowest close of the window, ``X <= -min_move`` and
  ``-Y / -X >= min_ratio`` (OI fell while price fell: capitulation).

Only the first bar of a divergence triggers (``fresh_only``), so a stopped-out trade is not
re-entered while the same divergence lasts. The stop is ``stop_atr`` ATRs (1R); the targets are
``targets_r`` (the playbook's "retrace to the point of control" is not modelled); the engine's
``--time-stop-bars`` bounds the holding time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from perpscope.analytics.regime import RegimeParams
from perpscope.backtest.strategies._common import (
    bar_timeframe,
    known_index,
    regime_arrays,
    require_oi,
)
from perpscope.backtest.types import Market, Signals

__all__ = ["OIDivergenceParams", "divergence_sides", "oi_divergence"]


@dataclass(frozen=True, slots=True)
class OIDivergenceParams:
    """Parameters of :func:`oi_divergence` (see the module doc).

    Attributes:
        lookback_h: the window of the price and OI changes, hours (120 = the playbook's 5 days).
        min_move: the least |price change| over the window (0.03 = 3%).
        min_ratio: the least OI decline over the price move (0.5: the playbook's threshold).
        fresh_only: trigger only on the first bar of a divergence.
        stop_atr: stop distance in ATRs (Wilder's 14).
        targets_r: T1, T2, T3 in R.
    """

    lookback_h: float = 120.0
    min_move: float = 0.03
    min_ratio: float = 0.5
    fresh_only: bool = True
    stop_atr: float = 2.0
    targets_r: tuple[float, float, float] = (1.0, 2.0, 3.0)

    def validate(self) -> None:
        """Raises ValueError naming the first bad parameter."""
        if not (math.isfinite(self.lookback_h) and self.lookback_h > 0):
            raise ValueError("lookback_h must be a positive number of hours")
        if not (math.isfinite(self.min_move) and 0 <= self.min_move < 1):
            raise ValueError("min_move must be a fraction in [0, 1)")
        if not (math.isfinite(self.min_ratio) and self.min_ratio >= 0):
            raise ValueError("min_ratio must be >= 0")
        if not (math.isfinite(self.stop_atr) and self.stop_atr > 0):
            raise ValueError("stop_atr must be a positive number")
        t = self.targets_r
        if len(t) != 3 or not all(x > 0 for x in t) or list(t) != sorted(t):
            raise ValueError("targets_r must be three increasing positive R multiples")


def divergence_sides(
    market: Market, lookback_h: float, min_move: float, min_ratio: float
) -> npt.NDArray[np.int8]:
    """The divergence at each bar's close (see the module doc): -1 bearish (a new high while OI
    fell), +1 bullish (a new low while OI fell), 0 none; every bar of it, not only the first.

    Raises:
        ValueError: no open interest in the market.
    """
    if market.oi_ts is None or market.oi is None or len(market.oi_ts) == 0:
        raise ValueError("no open interest in the market")
    n = len(market.ts)
    step_ns = int(np.median(np.diff(market.ts))) if n > 1 else 3_600_000_000_000
    w = max(1, round(lookback_h * 3_600e9 / step_ns))
    c = market.c
    oi_idx = known_index(market.ts, market.oi_ts)
    oi_now = np.where(oi_idx >= 0, market.oi[np.clip(oi_idx, 0, None)], np.nan)
    price_chg = np.full(n, np.nan)
    oi_chg = np.full(n, np.nan)
    hi = np.zeros(n, np.bool_)
    lo = np.zeros(n, np.bool_)
    if n > w:
        price_chg[w:] = c[w:] / c[:-w] - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            oi_chg[w:] = oi_now[w:] / oi_now[:-w] - 1.0
        view = np.lib.stride_tricks.sliding_window_view(c, w + 1)
        hi[w:] = c[w:] >= view.max(axis=1)
        lo[w:] = c[w:] <= view.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = -oi_chg / np.abs(price_chg)
    falling_oi = oi_chg < 0
    strong = (np.abs(price_chg) >= min_move) & falling_oi & (ratio >= min_ratio)
    side = np.where(
        strong & hi & (price_chg > 0), -1, np.where(strong & lo & (price_chg < 0), 1, 0)
    )
    return side.astype(np.int8)


def oi_divergence(market: Market, params: OIDivergenceParams) -> Signals:
    """Signals of the OI divergence reversal on ``market`` (see the module doc).

    Raises:
        ValueError: bad parameters, or no open interest in the market.
    """
    params.validate()
    require_oi(market, "oi-divergence")
    n = len(market.ts)
    side = divergence_sides(market, params.lookback_h, params.min_move, params.min_ratio)
    if params.fresh_only:
        prev = np.r_[0, side[:-1]]
        side = np.where(side != prev, side, 0)
    reg = regime_arrays(market, RegimeParams(), bar_timeframe(market))
    exit_ = np.zeros(n, np.bool_)
    return Signals(
        side.astype(np.int8),
        exit_,
        params.stop_atr * reg.atr_frac,
        np.tile(np.array(params.targets_r, np.float64), (n, 1)),
        np.full(n, np.nan),
    )
