"""Pieces the strategies share: what funding is known at each bar's close, and the regime."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from perpscope.analytics.regime import RegimeParams, regime
from perpscope.analytics.structure import StructureParams, structure
from perpscope.backtest.types import Market

__all__ = [
    "KnownFunding",
    "RegimeArrays",
    "StructureTriggers",
    "known_funding",
    "known_index",
    "bars_in",
    "recent_side",
    "regime_arrays",
    "require_oi",
    "stop_beyond",
    "structure_triggers",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


def known_index(bar_ts: I64, event_ts: I64) -> I64:
    """Index of the last event known at each bar's close (-1 before the first).

    An event at T is known at a bar's close if T is strictly before the close (the close of bar i
    is the open of bar i+1; the last bar's close is one bar step after its open), so an event
    exactly at a bar's open is first used at that bar's close.
    """
    n = len(bar_ts)
    if n == 0:
        return np.zeros(0, np.int64)
    step = bar_ts[-1] - bar_ts[-2] if n > 1 else 1
    close_ts = np.r_[bar_ts[1:], bar_ts[-1] + step]
    return np.asarray(np.searchsorted(event_ts, close_ts, side="left") - 1, np.int64)


def extreme_runs(rate8: F64, threshold: float) -> I64:
    """Length of the run of same-signed settlements with ``|rate| >= threshold`` ending at each."""
    run = np.zeros(len(rate8), np.int64)
    for k in range(len(rate8)):
        if abs(rate8[k]) >= threshold:
            same = k > 0 and run[k - 1] > 0 and np.sign(rate8[k]) == np.sign(rate8[k - 1])
            run[k] = run[k - 1] + 1 if same else 1
    return run


@dataclass(frozen=True, slots=True)
class KnownFunding:
    """One venue's funding as known at each bar's close.

    Attributes:
        rate8: the latest known rate normalised to 8 hours (NaN before the first settlement).
        streak: the latest known run of extreme same-signed settlements (0 if none).
        index: the index of that settlement (-1 before the first).
    """

    rate8: F64
    streak: I64
    index: I64


def known_funding(
    bar_ts: I64, fts: I64, rate: F64, interval_h: F64, threshold: float
) -> KnownFunding:
    """The latest known 8h-normalised rate and extreme streak at each bar's close."""
    n = len(bar_ts)
    rate8 = np.asarray(rate, np.float64) * (8.0 / np.asarray(interval_h, np.float64))
    if len(rate8) == 0:
        return KnownFunding(np.full(n, np.nan), np.zeros(n, np.int64), np.full(n, -1, np.int64))
    runs = extreme_runs(rate8, threshold)
    idx = known_index(bar_ts, fts)
    known = idx >= 0
    safe = np.clip(idx, 0, None)
    return KnownFunding(
        np.where(known, rate8[safe], np.nan),
        np.where(known, runs[safe], 0).astype(np.int64),
        idx,
    )


@dataclass(frozen=True, slots=True)
class RegimeArrays:
    """The regime of each bar (analytics.regime on the market's bars, known at the close).

    Attributes:
        atr_frac: Wilder's ATR over the close (NaN in the warm-up).
        adx: Wilder's ADX (NaN in the warm-up).
        trending: ADX above the trend threshold.
        choppy: labelled ``volatile`` (not trending, realised volatility well above its mean).
    """

    atr_frac: F64
    adx: F64
    trending: npt.NDArray[np.bool_]
    choppy: npt.NDArray[np.bool_]


def _bar_frame(market: Market) -> pl.DataFrame:
    """The market's bars as one ``venue instrument ts h l c`` series for the analytics."""
    return pl.DataFrame(
        {
            "venue": pl.Series(["-"] * len(market.ts), dtype=pl.String),
            "instrument": pl.Series(["-"] * len(market.ts), dtype=pl.String),
            "ts": pl.Series(market.ts).cast(pl.Datetime("ns", "UTC")),
            "h": market.h,
            "l": market.l,
            "c": market.c,
        }
    )


def regime_arrays(market: Market, params: RegimeParams, timeframe: str) -> RegimeArrays:
    """ATR, ADX and the labels of :func:`perpscope.analytics.regime.regime` on the market."""
    out = regime(_bar_frame(market).with_columns(ts=pl.Series(market.ts)), timeframe, params)
    label = out["regime"]
    adx = out["adx"].fill_null(np.nan).to_numpy().astype(np.float64)
    return RegimeArrays(
        out["atr_pct"].fill_null(np.nan).to_numpy().astype(np.float64),
        adx,
        (label == "trending").fill_null(False).to_numpy().astype(np.bool_),
        (label == "volatile").fill_null(False).to_numpy().astype(np.bool_),
    )


@dataclass(frozen=True, slots=True)
class StructureTriggers:
    """The structural trigger of each bar (analytics.structure on the market's bars).

    Attributes:
        side: +1 a bullish swing failure or break (BOS/CHoCH) closed on the bar, -1 a bearish
            one, 0 none (or a bullish and a bearish one on the same bar).
        extreme: the bar's low for a bullish trigger, its high for a bearish one (NaN without).
    """

    side: npt.NDArray[np.int8]
    extreme: F64


def structure_triggers(market: Market, width: int) -> StructureTriggers:
    """Swing failures and breaks of structure of :func:`perpscope.analytics.structure.structure`
    with swings of ``width`` bars, each known at its bar's close.

    Springs and UTADs need volume, which the backtest's market does not carry: the volume is
    constant here, so they never fire (a one-bar spring is a swing failure anyway).
    """
    frame = _bar_frame(market).with_columns(volume=pl.lit(1.0))
    out = structure(frame, StructureParams(width=width))
    sfp = out["sfp"].fill_null(0).to_numpy().astype(np.int8)
    brk = out["brk"].fill_null(0).to_numpy().astype(np.int8)
    side = np.where(brk == 0, sfp, np.where((sfp == 0) | (sfp == brk), brk, 0)).astype(np.int8)
    extreme = np.where(side > 0, market.l, np.where(side < 0, market.h, np.nan))
    return StructureTriggers(side, extreme)


def stop_beyond(close: F64, extreme: F64, side: npt.NDArray[np.int8], buffer: float) -> F64:
    """Stop distance as a fraction of the close: ``buffer`` (a fraction of price) beyond the
    trigger bar's extreme, above it for a short (-1), below it for a long (+1); NaN elsewhere."""
    stop_px = extreme * (1.0 - side * buffer)
    return np.asarray(np.where(side != 0, side * (close - stop_px) / close, np.nan), np.float64)


def bar_timeframe(market: Market) -> str:
    """The bars' timeframe as text (``1h``, ``4h``...), from the most common step."""
    if len(market.ts) < 2:
        return "1h"
    step = np.diff(market.ts)
    values, counts = np.unique(step, return_counts=True)
    minutes = int(values[np.argmax(counts)] // 60_000_000_000)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def require_oi(market: Market, strategy: str, why: str = "") -> None:
    """Raise ValueError (a usage error at the CLI) when ``market`` carries no open interest."""
    if market.oi_ts is None or market.oi is None or len(market.oi_ts) == 0:
        raise ValueError(f"{strategy} needs open interest{why} (load it with --oi-market)")


def bars_in(market: Market, hours: float) -> int:
    """How many of ``market``'s bars span ``hours`` (at least 1)."""
    n = len(market.ts)
    step_ns = int(np.median(np.diff(market.ts))) if n > 1 else 3_600_000_000_000
    return max(1, round(hours * 3_600e9 / step_ns))


def recent_side(
    side: npt.NDArray[np.int8], want: npt.NDArray[np.int8] | int, bars: int
) -> npt.NDArray[np.bool_]:
    """Whether ``side`` equalled ``want`` (non-zero; per bar or one value) on this bar or one of
    the ``bars - 1`` before it."""
    out = np.zeros(len(side), np.bool_)
    start = np.maximum(np.arange(1, len(side) + 1) - bars, 0)
    for w in (-1, 1):
        hits = np.r_[0, np.cumsum(side == w)]
        seen = hits[1:] - hits[start] > 0
        out |= seen & (np.asarray(want) == w)
    return out
