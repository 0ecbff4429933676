"""Funding-rate fade: the playbook's entry criteria and exits, parameters as data.

Entry (decided at a bar's close with the funding known then):

* funding normalised to 8 hours (each settlement's stored interval) has been beyond
  ``+threshold`` for ``min_periods`` consecutive settlements: longs are crowded, go **short**;
  beyond ``-threshold``: go **long** ("3+ consecutive prints beyond the threshold");
* only while that streak is fresh: entries are allowed while the streak has at most
  ``min_periods + entry_window - 1`` prints (``entry_window=1``: one setup per streak; 0: any time
  the streak holds, so a stopped-out fade re-enters at the next bar);
* ``two_venue``: the other venue's latest known print (``Market.other_funding``) must also be
  beyond the threshold on the same side, for ``confirm_periods`` prints in a row ("across at
  least two major exchanges"); without the other venue's data there is no entry.

Stop and targets, as the playbook's "1-2x ATR" and "first target at 1R, second at the mean VWAP
level, final target at the opposite funding extreme" (scale-out 40/30/30 and breakeven after T1
are engine rules):

* the stop is ``stop_atr`` ATRs (Wilder's, ``atr_period``) from the entry: 1R; or a fixed
  ``stop_frac`` of the price when set;
* T1 and T2 are ``targets_r[0]`` and ``targets_r[1]`` (1R and 2.6R, the worked example's; the VWAP
  is not modelled: 2.6R stands in for it);
* ``final_target="funding"``: the last tranche has no price target and closes at the next open
  once funding reaches the opposite extreme (``-final_exit_rate`` for a short, ``+`` for a long);
  ``final_target="r"``: it is a price target at ``targets_r[2]``.
* ``exit_below`` (off by default): close once ``|funding|`` falls below it.

Regime overlay (:func:`perpscope.analytics.regime.regime` on the same bars, ADX threshold
``adx_trend``):

* ``regime_filter="half"``: half size when ADX > ``adx_trend`` (trending); ``"skip"``: no entry
  then; ``"off"``: no filter;
* ``choppy_rules``: in a ``volatile`` regime (not trending, realised volatility at least 1.3x its
  trailing mean) the stop is ``stop_atr_choppy`` ATRs and the targets are ``choppy_targets_r``
  with the final one a price target ("tighter stops (1x ATR instead of 2x) and faster
  profit-taking").

Confirmations (off by default, as when the defaults were frozen):

* ``structure``: "Price action shows a bearish reversal pattern or UTAD-like structure" and
  "Locate structural confirmation [...] a swing failure pattern [...] The SFP is the structural
  trigger": entry only on a bar with a swing failure or a break of structure in the fade's
  direction, the stop ``stop_buffer`` beyond that bar's extreme ("placed above the SFP high
  with a small buffer");
* ``oi_confirm``: the OI divergence of ``oi-divergence`` in the same direction within
  ``oi_within_h`` hours (needs stored open interest).

Not modelled: support/resistance zones and volume-profile nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from perpscope.analytics.regime import RegimeParams
from perpscope.backtest.strategies._common import (
    bar_timeframe,
    bars_in,
    known_funding,
    known_index,
    recent_side,
    regime_arrays,
    require_oi,
    stop_beyond,
    structure_triggers,
)
from perpscope.backtest.strategies.oi_divergence import divergence_sides
from perpscope.backtest.types import Market, Signals

__all__ = ["FundingFadeParams", "funding_fade", "known_settlement"]

REGIME_FILTERS = ("off", "half", "skip")
FINAL_TARGETS = ("funding", "r")


@dataclass(frozen=True, slots=True)
class FundingFadeParams:
    """Parameters of :func:`funding_fade` (fractions, not percent; see the module doc).

    Attributes:
        threshold: |funding| per 8h that counts as extreme (0.0005 = 0.05%).
        min_periods: consecutive extreme settlements (same sign) required (3 = 24h at 8h).
        entry_window: settlements after the streak forms during which an entry may start
            (1: once per streak; 0: whenever the streak holds).
        two_venue: require the other venue's funding to agree.
        confirm_periods: consecutive extreme prints required on the other venue.
        stop_atr: stop distance in ATRs (1R).
        atr_period: ATR and ADX period (Wilder's 14).
        stop_frac: a fixed stop distance as a fraction of the price instead of ATRs (None: ATR).
        targets_r: T1, T2, T3 in R (T3 used only with ``final_target="r"``).
        final_target: ``funding`` (close the rest at the opposite funding extreme) or ``r``.
        final_exit_rate: |funding| per 8h on the opposite side that ends the trade.
        exit_below: close once |funding| per 8h falls below this (None: never).
        regime_filter: ``off``, ``half`` (half size when trending) or ``skip`` (no entry then).
        adx_trend: ADX above which the market is trending.
        choppy_rules: tighter stop and faster targets in a volatile regime.
        stop_atr_choppy: stop distance in ATRs in a volatile regime.
        choppy_targets_r: T1, T2, T3 in R in a volatile regime (all price targets).
        structure: enter only on a bar with a structural trigger in the fade's direction (a
            swing failure or a break of structure of ``swing_width``-bar swings), the stop
            ``stop_buffer`` beyond that bar's extreme instead of ATRs.
        swing_width: bars on each side of a swing (with ``structure``).
        stop_buffer: the structural stop's buffer beyond the trigger bar's extreme (a fraction).
        oi_confirm: enter only when the OI divergence of ``oi-divergence`` (its default window,
            move and ratio) points the same way on this bar or within ``oi_within_h`` hours
            before it; needs open interest (``--oi-market``).
        oi_within_h: how recent the OI divergence must be.
    """

    threshold: float = 0.0005
    min_periods: int = 3
    entry_window: int = 1
    two_venue: bool = False
    confirm_periods: int = 1
    stop_atr: float = 2.0
    atr_period: int = 14
    stop_frac: float | None = None
    targets_r: tuple[float, float, float] = (1.0, 2.6, 5.8)
    final_target: str = "funding"
    final_exit_rate: float = 0.0005
    exit_below: float | None = None
    regime_filter: str = "off"
    adx_trend: float = 30.0
    choppy_rules: bool = False
    stop_atr_choppy: float = 1.0
    choppy_targets_r: tuple[float, float, float] = (1.0, 1.5, 2.0)
    structure: bool = False
    swing_width: int = 3
    stop_buffer: float = 0.001
    oi_confirm: bool = False
    oi_within_h: float = 24.0

    def validate(self) -> None:
        """Raises ValueError naming the first bad parameter."""
        if not (math.isfinite(self.threshold) and self.threshold > 0):
            raise ValueError("threshold must be a positive fraction per 8h (0.0005 = 0.05%)")
        if self.min_periods < 1:
            raise ValueError("min_periods must be at least 1")
        if self.entry_window < 0:
            raise ValueError("entry_window must be >= 0 (0 = whenever the streak holds)")
        if self.confirm_periods < 1:
            raise ValueError("confirm_periods must be at least 1")
        for name in ("stop_atr", "stop_atr_choppy", "adx_trend"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive number")
        if self.atr_period < 2:
            raise ValueError("atr_period must be at least 2")
        if self.stop_frac is not None and not 0 < self.stop_frac < 1:
            raise ValueError("stop_frac must be a fraction in (0, 1)")
        for name in ("targets_r", "choppy_targets_r"):
            t = getattr(self, name)
            if len(t) != 3 or not all(x > 0 for x in t) or list(t) != sorted(t):
                raise ValueError(f"{name} must be three increasing positive R multiples")
        if self.final_target not in FINAL_TARGETS:
            raise ValueError(f"final_target must be one of {', '.join(FINAL_TARGETS)}")
        if not (math.isfinite(self.final_exit_rate) and self.final_exit_rate >= 0):
            raise ValueError("final_exit_rate must be a non-negative fraction per 8h")
        if self.exit_below is not None and not self.exit_below >= 0:
            raise ValueError("exit_below must be a non-negative fraction")
        if self.swing_width < 1:
            raise ValueError("swing_width must be at least 1 bar")
        if not (math.isfinite(self.stop_buffer) and 0 <= self.stop_buffer < 0.1):
            raise ValueError("stop_buffer must be a fraction in [0, 0.1)")
        if not (math.isfinite(self.oi_within_h) and self.oi_within_h > 0):
            raise ValueError("oi_within_h must be a positive number of hours")
        if self.regime_filter not in REGIME_FILTERS:
            raise ValueError(f"regime_filter must be one of {', '.join(REGIME_FILTERS)}")


def known_settlement(market: Market) -> np.ndarray:
    """Index of the last settlement known at each bar's close (-1 before the first)."""
    return known_index(market.ts, market.funding_ts)


def funding_fade(market: Market, params: FundingFadeParams) -> Signals:
    """Signals of the funding fade on ``market`` (see the module docstring).

    Raises:
        ValueError: bad parameters, or ``two_venue`` without another venue's funding.
    """
    params.validate()
    n = len(market.ts)
    prim = known_funding(
        market.ts, market.funding_ts, market.funding_rate, market.funding_interval_h,
        params.threshold,
    )  # fmt: skip
    rate = np.nan_to_num(prim.rate8)
    side = -np.sign(rate)  # the fade's direction
    ok = prim.streak >= params.min_periods
    if params.entry_window > 0:
        ok &= prim.streak < params.min_periods + params.entry_window
    if params.two_venue:
        if not market.other_funding:
            raise ValueError("two_venue needs another venue's funding (none loaded)")
        for other in market.other_funding:
            conf = known_funding(
                market.ts, other.ts, other.rate, other.interval_h, params.threshold
            )
            agree = np.sign(np.nan_to_num(conf.rate8)) == np.sign(rate)
            ok &= agree & (conf.streak >= params.confirm_periods)
    want = side.astype(np.int8)
    if params.oi_confirm:
        require_oi(market, "funding-fade with oi_confirm")
        div = divergence_sides(market, 120.0, 0.03, 0.5)
        ok &= recent_side(div, want, bars_in(market, params.oi_within_h))
    trig = None
    if params.structure:
        trig = structure_triggers(market, params.swing_width)
        ok &= (trig.side == want) & (want != 0)
    entry = np.where(ok, side, 0.0).astype(np.int8)

    reg = regime_arrays(
        market,
        RegimeParams(period=params.atr_period, adx_trend=params.adx_trend),
        bar_timeframe(market),
    )
    choppy = reg.choppy if params.choppy_rules else np.zeros(n, np.bool_)
    if trig is not None:  # "placed above the SFP high with a small buffer"
        stop = stop_beyond(market.c, trig.extreme, entry, params.stop_buffer)
    elif params.stop_frac is not None:
        stop = np.full(n, params.stop_frac)
    else:
        k = np.where(choppy, params.stop_atr_choppy, params.stop_atr)
        stop = k * reg.atr_frac  # NaN in the ATR warm-up: no entry
    normal = np.array(params.targets_r, np.float64)
    if params.final_target == "funding":
        normal[2] = np.nan
    targets = np.where(choppy[:, None], np.array(params.choppy_targets_r), normal[None, :])
    size = np.ones(n)
    if params.regime_filter != "off":
        size[reg.trending] = 0.5 if params.regime_filter == "half" else 0.0

    known = prim.index >= 0
    exit_ = np.zeros(n, np.bool_)
    if params.exit_below is not None:
        exit_ = known & (np.abs(rate) < params.exit_below)
    exit_side = np.zeros(n, np.int8)
    if params.final_target == "funding":
        # opposite extreme: funding <= -x closes a short (entered on +), >= +x closes a long
        exit_side[known & (rate <= -params.final_exit_rate)] = -1
        exit_side[known & (rate >= params.final_exit_rate)] = 1
    return Signals(
        entry,
        exit_,
        np.asarray(stop, np.float64),
        np.ascontiguousarray(targets, np.float64),
        np.full(n, np.nan),
        size,
        exit_side,
    )
