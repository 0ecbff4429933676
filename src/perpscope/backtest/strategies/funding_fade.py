"""Funding-rate fade, first version: the playbook's basic entry rule.

When funding (normalised to 8 hours with each settlement's stored interval) has been beyond
``+threshold`` for ``min_periods`` consecutive settlements, longs are crowded: go short; beyond
``-threshold``: go long. The stop is ``stop_frac`` of the entry price (1R) and the targets are R
multiples (scale-out and breakeven are engine rules). The position is closed at the next open
once funding has normalised (``|rate| < exit_below``). The playbook's structural confirmations
(support/resistance, volume profile, reversal patterns, the multi-venue condition) are not part
of this version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from perpscope.backtest.types import Market, Signals

__all__ = ["FundingFadeParams", "funding_fade", "known_settlement"]


@dataclass(frozen=True, slots=True)
class FundingFadeParams:
    """Parameters of :func:`funding_fade` (fractions, not percent).

    Attributes:
        threshold: |funding| per 8h that counts as extreme (0.0005 = 0.05%).
        min_periods: consecutive extreme settlements (same sign) required (3 = 24h at 8h).
        stop_frac: stop distance as a fraction of the entry price (1R).
        targets_r: T1, T2, T3 in R (the playbook's worked example: 1, 2.6, 5.8).
        exit_below: close once |funding| per 8h falls below this (None: never on funding).
    """

    threshold: float = 0.0005
    min_periods: int = 3
    stop_frac: float = 0.02
    targets_r: tuple[float, float, float] = (1.0, 2.6, 5.8)
    exit_below: float | None = 0.0001

    def validate(self) -> None:
        """Raises ValueError naming the first bad parameter."""
        if not (math.isfinite(self.threshold) and self.threshold > 0):
            raise ValueError("threshold must be a positive fraction per 8h (0.0005 = 0.05%)")
        if self.min_periods < 1:
            raise ValueError("min_periods must be at least 1")
        if not 0 < self.stop_frac < 1:
            raise ValueError("stop_frac must be a fraction in (0, 1)")
        t = self.targets_r
        if len(t) != 3 or not all(x > 0 for x in t) or list(t) != sorted(t):
            raise ValueError("targets_r must be three increasing positive R multiples")
        if self.exit_below is not None and not self.exit_below >= 0:
            raise ValueError("exit_below must be a non-negative fraction")


def known_settlement(market: Market) -> npt.NDArray[np.int64]:
    """Index of the last settlement known at each bar's close (-1 before the first).

    A settlement at T is known at a bar's close if T is strictly before the close (the close of
    bar i is the open of bar i+1), so a settlement exactly at a bar's open is first used at that
    bar's close.
    """
    n = len(market.ts)
    if n == 0:
        return np.zeros(0, np.int64)
    step = market.ts[-1] - market.ts[-2] if n > 1 else 1
    close_ts = np.r_[market.ts[1:], market.ts[-1] + step]
    return np.asarray(np.searchsorted(market.funding_ts, close_ts, side="left") - 1, np.int64)


def funding_fade(market: Market, params: FundingFadeParams) -> Signals:
    """Signals of the funding fade on ``market`` (see the module docstring)."""
    params.validate()
    n = len(market.ts)
    rate8 = market.funding_rate * (8.0 / market.funding_interval_h)
    # length of the run of same-signed extreme settlements ending at each settlement
    run = np.zeros(len(rate8), np.int64)
    for k in range(len(rate8)):
        if abs(rate8[k]) >= params.threshold:
            same = k > 0 and np.sign(rate8[k]) == np.sign(rate8[k - 1])
            run[k] = run[k - 1] + 1 if same else 1
    idx = known_settlement(market)
    known = idx >= 0
    safe = np.clip(idx, 0, None)
    rate = np.where(known, rate8[safe], np.nan) if len(rate8) else np.full(n, np.nan)
    streak = np.where(known, run[safe], 0) if len(rate8) else np.zeros(n, np.int64)
    entry = np.where(streak >= params.min_periods, -np.sign(np.nan_to_num(rate)), 0.0)
    if params.exit_below is None:
        exit_ = np.zeros(n, np.bool_)
    else:
        exit_ = known & (np.abs(np.nan_to_num(rate)) < params.exit_below)
    return Signals(
        entry.astype(np.int8),
        np.asarray(exit_, np.bool_),
        np.full(n, params.stop_frac),
        np.tile(np.array(params.targets_r, np.float64), (n, 1)),
        np.full(n, np.nan),
    )
