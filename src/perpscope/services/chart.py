"""Chart reading from the store: regime, price structure, volume profile and VWAP per series.

Each report reads the trade candles of the query's series at the asked timeframe; when the store
holds only a finer timeframe that divides it (1h for 4h), the candles are resampled first and the
report says so in its ``source_timeframe`` column.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import polars as pl

from perpscope.analytics.ohlcv import resample_ohlcv, timeframe_minutes
from perpscope.analytics.regime import RegimeParams, regime
from perpscope.analytics.structure import StructureParams, structure, structure_events, zones
from perpscope.analytics.volume_profile import session_vwap, volume_profile
from perpscope.errors import UsageError
from perpscope.services.markets import MarketQuery, _read
from perpscope.store.lake import Lake

__all__ = [
    "ProfileReport",
    "StructureReport",
    "load_candles",
    "profile_report",
    "regime_report",
    "structure_report",
]

_SERIES: Final = ["venue", "instrument"]


def _minutes(timeframe: str) -> int:
    try:
        return timeframe_minutes(timeframe)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def load_candles(lake: Lake, q: MarketQuery, timeframe: str, *, lookback_h: float) -> pl.DataFrame:
    """Trade candles of the query at ``timeframe`` (resampled from a finer stored timeframe).

    Returns:
        ``venue instrument ts o h l c volume source_timeframe`` sorted by series and ts.

    Raises:
        UsageError: no candles match, or none at a timeframe that makes ``timeframe``.
    """
    target = _minutes(timeframe)
    raw = _read(lake, "ohlcv", q, lookback_h=lookback_h)
    if raw.is_empty():
        raise UsageError("no candles in the store for these filters (import or collect them)")
    raw = raw.filter(pl.col("kind") == "trade")
    stored = sorted({str(t) for t in raw["timeframe"].unique()}, key=timeframe_minutes)
    usable = [t for t in stored if target % timeframe_minutes(t) == 0]
    if not usable:
        have = ", ".join(stored) or "none"
        raise UsageError(
            f"no trade candles that make {timeframe} bars for these filters (stored: {have})"
        )
    frames = []
    for _, part in raw.group_by(_SERIES):
        times = [t for t in usable if t in set(part["timeframe"].to_list())]
        if not times:
            continue
        source = times[-1]  # the coarsest stored timeframe that divides the target
        bars = part.filter(pl.col("timeframe") == source).select(
            *_SERIES, "ts", "o", "h", "l", "c", "volume"
        )
        if source != timeframe:
            bars = resample_ohlcv(bars, timeframe)
        frames.append(bars.with_columns(pl.lit(source).alias("source_timeframe")))
    if not frames:
        raise UsageError(f"no trade candles that make {timeframe} bars for these filters")
    return pl.concat(frames).sort(*_SERIES, "ts")


def _since(frame: pl.DataFrame, q: MarketQuery) -> pl.DataFrame:
    return frame if q.since is None else frame.filter(pl.col("ts") >= q.since)


def regime_report(
    lake: Lake,
    q: MarketQuery,
    *,
    timeframe: str = "1h",
    params: RegimeParams | None = None,
    tail: int = 1,
) -> pl.DataFrame:
    """The regime rows of each series (the last ``tail`` bars; 0 = all since ``q.since``)."""
    p = params or RegimeParams()
    bars_h = _minutes(timeframe) / 60.0
    warmup_h = bars_h * (p.rv_lookback + 4 * p.period)
    candles = load_candles(lake, q, timeframe, lookback_h=warmup_h)
    out = _since(regime(candles, timeframe, p), q)
    if tail:
        out = out.group_by(_SERIES, maintain_order=True).tail(tail)
    return out


@dataclass(frozen=True, slots=True)
class StructureReport:
    """Structure events, support/resistance zones and the last swings of each series."""

    events: pl.DataFrame
    zones: pl.DataFrame
    swings: pl.DataFrame


def structure_report(
    lake: Lake,
    q: MarketQuery,
    *,
    timeframe: str = "1h",
    params: StructureParams | None = None,
    tolerance: float = 0.005,
    events: int = 20,
    zone_window_bars: int = 500,
) -> StructureReport:
    """The last ``events`` structure events, the zones from the last ``zone_window_bars`` bars,
    and the latest confirmed swing high and low of each series."""
    p = params or StructureParams()
    bars_h = _minutes(timeframe) / 60.0
    candles = load_candles(lake, q, timeframe, lookback_h=bars_h * (p.max_age + p.vol_window))
    frame = structure(candles, p)
    shown = _since(frame, q)
    ev = structure_events(shown).group_by(_SERIES, maintain_order=True).tail(events)
    recent = frame.group_by(_SERIES, maintain_order=True).tail(zone_window_bars)
    swings = recent.group_by(_SERIES, maintain_order=True).agg(
        pl.col("c").last().alias("close_px"),
        pl.col("new_swing_high").drop_nulls().last().alias("swing_high_px"),
        pl.col("new_swing_low").drop_nulls().last().alias("swing_low_px"),
    )
    return StructureReport(ev, zones(recent, tolerance=tolerance), swings)


@dataclass(frozen=True, slots=True)
class ProfileReport:
    """Per series: the profile's summary (POC, value area, nodes, VWAP) and its bins."""

    summary: pl.DataFrame
    bins: pl.DataFrame


def profile_report(
    lake: Lake,
    q: MarketQuery,
    *,
    timeframe: str = "1h",
    window_h: float = 168.0,
    bins: int = 50,
    value_area: float = 0.70,
) -> ProfileReport:
    """The volume profile of each series over its last ``window_h`` hours, with session VWAP."""
    if not window_h > 0:
        raise UsageError("--window-h must be positive")
    candles = load_candles(lake, q, timeframe, lookback_h=window_h)
    rows, bin_frames = [], []
    for (venue, instrument), part in candles.group_by(_SERIES, maintain_order=True):
        end = part["ts"].max()
        assert isinstance(end, datetime)
        window = part.filter(pl.col("ts") > end - timedelta(hours=window_h))
        try:
            prof = volume_profile(window, bins=bins, value_area=value_area)
        except ValueError as exc:
            raise UsageError(f"{venue} {instrument}: {exc}") from None
        vwap = session_vwap(part)["vwap"].drop_nulls()
        rows.append(
            {
                "venue": venue,
                "instrument": instrument,
                "from_ts": window["ts"].min(),
                "to_ts": end,
                "close_px": window["c"][-1],
                "poc_px": prof.poc_px,
                "value_low_px": prof.value_low_px,
                "value_high_px": prof.value_high_px,
                "hvn_px": list(prof.hvn_px),
                "lvn_px": list(prof.lvn_px),
                "session_vwap_px": vwap[-1] if vwap.len() else None,
            }
        )
        bin_frames.append(
            prof.to_frame().select(
                pl.lit(venue).alias("venue"), pl.lit(instrument).alias("instrument"), pl.all()
            )
        )
    return ProfileReport(pl.DataFrame(rows), pl.concat(bin_frames))
