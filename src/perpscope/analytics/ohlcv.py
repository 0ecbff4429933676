"""Candle helpers: timeframe arithmetic and resampling to a coarser timeframe."""

from __future__ import annotations

from typing import Final

import polars as pl

from perpscope.analytics._rolling import require_columns

__all__ = ["resample_ohlcv", "timeframe_minutes"]

_UNIT_MINUTES: Final = {"m": 1, "h": 60, "d": 1440, "w": 10080}


def timeframe_minutes(timeframe: str) -> int:
    """Minutes in a timeframe like ``15m``, ``1h``, ``4h``, ``1d`` or ``1w``.

    Raises:
        ValueError: not a positive count followed by m, h, d or w.
    """
    count, unit = timeframe[:-1], timeframe[-1:]
    if unit not in _UNIT_MINUTES or not count.isdigit() or int(count) <= 0:
        raise ValueError(f"bad timeframe {timeframe!r}: use e.g. 15m, 1h, 4h, 1d")
    return int(count) * _UNIT_MINUTES[unit]


def resample_ohlcv(candles: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """Candles aggregated to ``timeframe`` bars aligned on UTC multiples of it (weeks on Mondays).

    Open is the first bar's open, high the max, low the min, close the last close, volume the sum.
    A coarse bar is kept only when all its fine bars are present (a partial first or last bar,
    or one with a gap, would misstate the range), so the fine timeframe is inferred from the
    smallest spacing of each series.

    Args:
        candles: ``venue instrument ts o h l c volume`` of one finer timeframe.
        timeframe: the target timeframe.

    Returns:
        The same columns at ``timeframe``, sorted by series and ts.
    """
    require_columns(
        candles, ("venue", "instrument", "ts", "o", "h", "l", "c", "volume"), "resample_ohlcv"
    )
    minutes = timeframe_minutes(timeframe)
    every = f"{minutes // 10080}w" if minutes % 10080 == 0 else f"{minutes}m"
    frame = candles.sort("venue", "instrument", "ts")
    step = frame.group_by("venue", "instrument").agg(
        (pl.col("ts").diff().min().dt.total_minutes()).alias("_step")
    )
    out = (
        frame.group_by_dynamic("ts", every=every, group_by=["venue", "instrument"])
        .agg(
            pl.col("o").first(),
            pl.col("h").max(),
            pl.col("l").min(),
            pl.col("c").last(),
            pl.col("volume").sum(),
            pl.len().alias("_n"),
        )
        .join(step, on=["venue", "instrument"])
    )
    full = pl.col("_n") * pl.col("_step") == minutes
    return out.filter(full).drop("_n", "_step").sort("venue", "instrument", "ts")
