"""Volume profile (point of control, value area, high- and low-volume nodes) and VWAP.

Playbook: "Volume profile shows a high volume node nearby (fair value anchor)" (line 80), "a low
volume node above (no structural support for higher prices)" (line 87), "OI divergence reversals
tend to retrace to the volume-weighted fair value — the point of control" (line 189), and the
fade's "second target at the mean VWAP level" (line 126).

Rules:

- **Profile**: the window's price range is cut into ``bins`` equal bins; each bar's volume is
  spread uniformly over its high-low range (a bar with high = low puts it all in one bin), so a
  bin gets the bar's volume times the share of the bar's range it covers.
- **Point of control (POC)**: the bin with the most volume (the lowest such bin on a tie).
- **Value area**: from the POC, add the neighbouring bin (above or below) with more volume, one
  bin at a time (above on a tie), until the area holds ``value_area`` (70%) of the volume.
- **High-volume node (HVN)**: a bin that is a local maximum of the profile smoothed over
  ``smooth`` bins and holds at least ``hvn_ratio`` (1.5) times the mean bin volume. **Low-volume
  node (LVN)**: a local minimum of the smoothed profile inside the window's range with at most
  ``lvn_ratio`` (0.5) times the mean.
- **Session VWAP**: sum(typical price x volume) / sum(volume) from each UTC day's first bar;
  **anchored VWAP**: the same from a chosen bar on. Typical price = (h + l + c) / 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from perpscope.analytics._chart_kernels import (
    positions,
    run_vwap,
    series_bounds,
    sort_with_bounds,
)
from perpscope.analytics._rolling import require_columns, sort_series

_SERIES: Final = ["venue", "instrument"]
_VWAP_COLUMNS: Final = ("venue", "instrument", "ts", "h", "l", "c", "volume")

__all__ = [
    "Profile",
    "anchored_vwap",
    "session_vwap",
    "volume_profile",
]


@dataclass(frozen=True, slots=True)
class Profile:
    """A volume profile over one window of one series.

    Attributes:
        edges: the ``bins + 1`` bin edges, ascending.
        volume: volume per bin.
        poc_px: the point of control (the centre of its bin).
        value_low_px: the value area's lower edge.
        value_high_px: the value area's upper edge.
        hvn_px: the centres of the high-volume nodes, ascending.
        lvn_px: the centres of the low-volume nodes, ascending.
    """

    edges: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]
    poc_px: float
    value_low_px: float
    value_high_px: float
    hvn_px: tuple[float, ...]
    lvn_px: tuple[float, ...]

    @property
    def centres(self) -> npt.NDArray[np.float64]:
        """The centre price of each bin."""
        return (self.edges[:-1] + self.edges[1:]) / 2.0

    def to_frame(self) -> pl.DataFrame:
        """``low_px high_px mid_px volume node`` per bin, ``node`` = poc, hvn, lvn or null."""
        mids = self.centres
        node = np.full(mids.shape[0], None, dtype=object)
        for px in self.lvn_px:
            node[int(np.argmin(np.abs(mids - px)))] = "lvn"
        for px in self.hvn_px:
            node[int(np.argmin(np.abs(mids - px)))] = "hvn"
        node[int(np.argmin(np.abs(mids - self.poc_px)))] = "poc"
        return pl.DataFrame(
            {
                "low_px": self.edges[:-1],
                "high_px": self.edges[1:],
                "mid_px": mids,
                "volume": self.volume,
                "node": pl.Series(node.tolist(), dtype=pl.String),
                "in_value_area": (mids >= self.value_low_px) & (mids <= self.value_high_px),
            }
        )


def _spread(
    h: npt.NDArray[np.float64],
    low: npt.NDArray[np.float64],
    v: npt.NDArray[np.float64],
    edges: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Each bar's volume spread uniformly over its range: the exact overlap of range and bin."""
    lo_e = edges[:-1][None, :]
    hi_e = edges[1:][None, :]
    rng = (h - low)[:, None]
    overlap = np.clip(np.minimum(hi_e, h[:, None]) - np.maximum(lo_e, low[:, None]), 0.0, None)
    share = np.divide(overlap, rng, out=np.zeros_like(overlap), where=rng > 0)
    # a bar with no range puts all its volume in the bin that holds its price
    flat = np.flatnonzero(rng[:, 0] <= 0)
    if flat.size:
        idx = np.clip(np.searchsorted(edges, h[flat], side="right") - 1, 0, edges.size - 2)
        share[flat, :] = 0.0
        share[flat, idx] = 1.0
    return np.asarray((share * v[:, None]).sum(axis=0), dtype=np.float64)


def volume_profile(
    candles: pl.DataFrame,
    bins: int = 50,
    value_area: float = 0.70,
    hvn_ratio: float = 1.5,
    lvn_ratio: float = 0.5,
    smooth: int = 3,
) -> Profile:
    """The volume profile of one series over all the given bars (see the module's rules).

    Args:
        candles: ``h l volume`` of one series over the window (filter it before).
        bins: number of price bins.
        value_area: share of volume in the value area (0.70).
        hvn_ratio: a high-volume node holds at least this multiple of the mean bin volume.
        lvn_ratio: a low-volume node holds at most this multiple of the mean bin volume.
        smooth: bins of the centred moving average the nodes are found on (1 = none).

    Raises:
        ValueError: empty input, no volume, or parameters out of range.
    """
    require_columns(candles, ("h", "l", "volume"), "volume_profile")
    if bins < 3 or not 0 < value_area <= 1 or smooth < 1 or not hvn_ratio > lvn_ratio >= 0:
        raise ValueError("bins >= 3, 0 < value_area <= 1, smooth >= 1, hvn_ratio > lvn_ratio >= 0")
    h = candles["h"].cast(pl.Float64).to_numpy()
    low = candles["l"].cast(pl.Float64).to_numpy()
    v = candles["volume"].cast(pl.Float64).fill_null(0.0).to_numpy()
    if h.size == 0 or not v.sum() > 0:
        raise ValueError("volume_profile needs bars with volume")
    top, bottom = float(h.max()), float(low.min())
    if top <= bottom:
        top = bottom * (1 + 1e-9) + 1e-12
    edges = np.linspace(bottom, top, bins + 1)
    vol = _spread(h, low, v, edges)
    mids = (edges[:-1] + edges[1:]) / 2.0
    poc = int(np.argmax(vol))
    lo_i = hi_i = poc
    inside = vol[poc]
    target = value_area * vol.sum()
    while inside < target - 1e-12 * vol.sum() and (lo_i > 0 or hi_i < bins - 1):
        up = vol[hi_i + 1] if hi_i < bins - 1 else -1.0
        down = vol[lo_i - 1] if lo_i > 0 else -1.0
        if up >= down:
            hi_i += 1
            inside += up
        else:
            lo_i -= 1
            inside += down
    kernel = np.ones(smooth) / smooth
    smoothed = np.convolve(vol, kernel, mode="same") if smooth > 1 else vol
    mean = vol.mean()
    # Neighbours within a billionth of the largest bin are level: the smoothing's last bits
    # depend on how numpy sums (they changed between numpy releases), and a flat stretch must
    # not read as a node on one machine and not on another.
    tie = 1e-9 * float(np.abs(smoothed).max(initial=0.0))
    hvn, lvn = [], []
    for i in range(1, bins - 1):
        left, mid, right = smoothed[i - 1], smoothed[i], smoothed[i + 1]
        if mid >= left - tie and mid > right + tie and mid >= hvn_ratio * mean:
            hvn.append(float(mids[i]))
        if mid <= left + tie and mid < right - tie and mid <= lvn_ratio * mean:
            lvn.append(float(mids[i]))
    return Profile(
        edges=edges,
        volume=vol,
        poc_px=float(mids[poc]),
        value_low_px=float(edges[lo_i]),
        value_high_px=float(edges[hi_i + 1]),
        hvn_px=tuple(hvn),
        lvn_px=tuple(lvn),
    )


def _vwap(frame: pl.DataFrame, run_start: npt.NDArray[np.bool_]) -> pl.DataFrame:
    """``venue instrument ts vwap`` of a sorted frame, restarting wherever ``run_start``."""
    h, low, c = (frame[k].cast(pl.Float64).to_numpy() for k in ("h", "l", "c"))
    vol = frame["volume"].cast(pl.Float64).fill_null(0.0).to_numpy()
    vwap = run_vwap(h, low, c, vol, run_start)
    return frame.select("venue", "instrument", "ts").with_columns(
        pl.Series("vwap", vwap, nan_to_null=True)
    )


def session_vwap(candles: pl.DataFrame) -> pl.DataFrame:
    """VWAP from each UTC day's first bar, per series.

    Args:
        candles: ``venue instrument ts h l c volume``.

    Returns:
        ``venue instrument ts vwap`` sorted by series and ts (null until the session has volume).
    """
    require_columns(candles, _VWAP_COLUMNS, "session_vwap")
    frame, bounds = sort_with_bounds(candles.select(_VWAP_COLUMNS), _SERIES)
    day = frame["ts"].dt.epoch("d").to_numpy()
    new_day = np.concatenate(([True], day[1:] != day[:-1]))
    return _vwap(frame, new_day | (positions(bounds) == 0))


def anchored_vwap(candles: pl.DataFrame, anchor: datetime) -> pl.DataFrame:
    """VWAP from the first bar at or after ``anchor`` on, per series (rows before are dropped).

    Returns:
        ``venue instrument ts vwap`` sorted by series and ts.
    """
    require_columns(candles, _VWAP_COLUMNS, "anchored_vwap")
    frame = sort_series(candles.select(_VWAP_COLUMNS).filter(pl.col("ts") >= anchor), _SERIES)
    return _vwap(frame, positions(series_bounds(frame, _SERIES)) == 0)
