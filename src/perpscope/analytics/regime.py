"""Market regime: ATR, ADX with the directional indicators, realised volatility, and the label.

Playbook (lines 138-139): "Market regime detection is essential for knowing when to activate and
deactivate the strategy." "During trending regimes (identified by [...] a simple ADX > 30 filter),
reduce the fade size by 50% or skip it entirely. During ranging regimes, the fade operates at full
capacity. During volatile/choppy regimes, use tighter stops (1x ATR instead of 2x) and faster
profit-taking."

ATR and ADX are Wilder's, computed exactly as TA-Lib computes them (same seeds, same recursion), so
the first ATR is at bar ``n`` and the first ADX at bar ``2n - 1``; earlier bars are null. The
recursions are path-dependent, so they run in a compiled loop per series
(:mod:`perpscope.analytics._chart_kernels`).

Labels (each bar, from data up to that bar only):

- ``trending``: ADX > ``adx_trend`` (30).
- ``volatile``: not trending, and the realised volatility over ``rv_window`` bars is at least
  ``rv_ratio_choppy`` (1.3) times its mean over the trailing ``rv_lookback`` bars (which needs a
  quarter of the lookback filled first): a market that moves much more than usual without
  direction ("volatile/choppy").
- ``ranging``: neither.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl

from perpscope.analytics._chart_kernels import (
    adx_kernel,
    atr_kernel,
    log_return_std,
    series_bounds,
    sort_with_bounds,
    trailing_mean,
)
from perpscope.analytics._rolling import require_columns
from perpscope.analytics.ohlcv import timeframe_minutes

__all__ = [
    "REGIMES",
    "RegimeParams",
    "atr",
    "adx",
    "bars_per_year",
    "regime",
]

REGIMES: Final = ("trending", "ranging", "volatile")

_SERIES: Final = ["venue", "instrument"]


@dataclass(frozen=True, slots=True)
class RegimeParams:
    """Parameters of :func:`regime`; the defaults are the playbook's where it gives one.

    Attributes:
        period: ATR and ADX period (Wilder's 14).
        adx_trend: ADX above which the market is trending (playbook: "ADX > 30").
        rv_window: bars of log returns in the realised volatility.
        rv_lookback: bars of the volatility's trailing mean.
        rv_ratio_choppy: volatility / its trailing mean at or above which a non-trending market
            is volatile.
        trend_size: size multiple in a trend (playbook: "reduce the fade size by 50%"; 0 = skip).
        stop_atr: stop distance in ATRs normally (playbook: "2x").
        stop_atr_choppy: stop distance in ATRs in a volatile market (playbook: "1x ATR").
    """

    period: int = 14
    adx_trend: float = 30.0
    rv_window: int = 24
    rv_lookback: int = 720
    rv_ratio_choppy: float = 1.3
    trend_size: float = 0.5
    stop_atr: float = 2.0
    stop_atr_choppy: float = 1.0

    def __post_init__(self) -> None:
        if self.period < 2 or self.rv_window < 2 or self.rv_lookback < self.rv_window:
            raise ValueError("period and rv_window must be >= 2 and rv_lookback >= rv_window")
        if not (math.isfinite(self.rv_ratio_choppy) and self.rv_ratio_choppy > 0):
            raise ValueError("rv_ratio_choppy must be a positive number")
        if not 0.0 <= self.trend_size <= 1.0:
            raise ValueError("trend_size must be in [0, 1]")
        for name in ("adx_trend", "stop_atr", "stop_atr_choppy"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number")


def bars_per_year(timeframe: str) -> float:
    """How many bars of ``timeframe`` (``15m``, ``1h``, ``4h``, ``1d``, ``1w``) make a year."""
    return 525_600.0 / timeframe_minutes(timeframe)


def _arrays(candles: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    bounds = series_bounds(candles, _SERIES)
    h = candles["h"].cast(pl.Float64).to_numpy()
    low = candles["l"].cast(pl.Float64).to_numpy()
    c = candles["c"].cast(pl.Float64).to_numpy()
    return h, low, c, bounds


def atr(candles: pl.DataFrame, period: int = 14) -> pl.Series:
    """Wilder's average true range per row (TA-Lib's ATR), null for the first ``period`` bars.

    Args:
        candles: ``venue instrument ts h l c``, sorted by venue, instrument, ts.
        period: the smoothing period.
    """
    require_columns(candles, ("venue", "instrument", "ts", "h", "l", "c"), "atr")
    h, low, c, bounds = _arrays(candles)
    return pl.Series("atr", atr_kernel(h, low, c, bounds, period), nan_to_null=True)


def adx(candles: pl.DataFrame, period: int = 14) -> pl.DataFrame:
    """Wilder's ADX with +DI and -DI per row (TA-Lib's ADX, PLUS_DI, MINUS_DI).

    Returns:
        A frame of ``adx plus_di minus_di`` aligned with ``candles``; ADX is null for the first
        ``2 x period - 1`` bars of each series and the DIs for the first ``period``.
    """
    require_columns(candles, ("venue", "instrument", "ts", "h", "l", "c"), "adx")
    h, low, c, bounds = _arrays(candles)
    out, plus, minus = adx_kernel(h, low, c, bounds, period)
    return pl.DataFrame(
        {
            "adx": pl.Series(out, nan_to_null=True),
            "plus_di": pl.Series(plus, nan_to_null=True),
            "minus_di": pl.Series(minus, nan_to_null=True),
        }
    )


def regime(
    candles: pl.DataFrame, timeframe: str = "1h", params: RegimeParams | None = None
) -> pl.DataFrame:
    """ATR, ADX, realised volatility and the regime label per bar, with the playbook's rules.

    Args:
        candles: ``venue instrument ts h l c`` (one timeframe), any order.
        timeframe: the bars' timeframe, to annualise the volatility.
        params: thresholds and windows (:class:`RegimeParams`).

    Returns:
        ``venue instrument ts close_px atr atr_pct adx plus_di minus_di rv_annual rv_ratio regime
        size_mult stop_atr`` sorted by series and ts. ``atr_pct`` is ATR / close (a fraction),
        ``rv_annual`` the annualised standard deviation of log returns over ``rv_window`` bars,
        ``rv_ratio`` it over its trailing mean, ``size_mult`` the fade's size multiple and
        ``stop_atr`` its stop distance in ATRs. Rows in the warm-up (before ADX, or before the
        volatility percentile exists for a market that is not trending) have a null regime.
    """
    p = params or RegimeParams()
    require_columns(candles, ("venue", "instrument", "ts", "h", "l", "c"), "regime")
    frame, bounds = sort_with_bounds(candles.select(*_SERIES, "ts", "h", "l", "c"), _SERIES)
    h, low, c = (frame[name].cast(pl.Float64).to_numpy() for name in ("h", "l", "c"))
    adx_, plus, minus = adx_kernel(h, low, c, bounds, p.period)
    atr_ = atr_kernel(h, low, c, bounds, p.period)
    rv = log_return_std(c, bounds, p.rv_window) * math.sqrt(bars_per_year(timeframe))
    rv_mean = trailing_mean(rv, bounds, p.rv_lookback, max(p.rv_window, p.rv_lookback // 4))
    with np.errstate(divide="ignore", invalid="ignore"):
        rv_ratio = rv / rv_mean
    # The label as an index into REGIMES (3 = null): trending beats volatile; NaN compares false.
    code = np.where(
        adx_ > p.adx_trend,
        0,
        np.where(np.isnan(rv_ratio), 3, np.where(rv_ratio >= p.rv_ratio_choppy, 2, 1)),
    )
    code[np.isnan(adx_)] = 3
    size_mult = np.array([p.trend_size, 1.0, 1.0, np.nan])[code]
    stop_atr = np.array([p.stop_atr, p.stop_atr, p.stop_atr_choppy, np.nan])[code]

    def column(name: str, values: np.ndarray) -> pl.Series:
        return pl.Series(name, values, nan_to_null=True)

    return frame.select(*_SERIES, "ts", pl.col("c").alias("close_px")).with_columns(
        column("atr", atr_),
        column("atr_pct", atr_ / c),
        column("adx", adx_),
        column("plus_di", plus),
        column("minus_di", minus),
        column("rv_annual", rv),
        column("rv_ratio", rv_ratio),
        pl.Series("regime", [*REGIMES, None], dtype=pl.String).gather(code),
        column("size_mult", size_mult),
        column("stop_atr", stop_atr),
    )
