"""Plain-Python reference of the structure rules, written from the rules' text, not the kernel.

It keeps the active levels as lists of small dicts and recomputes the fractal test with ``max``
over slices; the compiled walk in ``perpscope.analytics._chart_kernels`` must give the same
events bar for bar. It handles one series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Level:
    price: float
    born: int
    swept_at: int = -1
    extreme: float = 0.0
    peak_vol: float = 0.0
    base_vol: float = 0.0


@dataclass
class Events:
    new_high: dict[int, float] = field(default_factory=dict)
    new_low: dict[int, float] = field(default_factory=dict)
    sfp: dict[int, tuple[int, float]] = field(default_factory=dict)
    brk: dict[int, tuple[int, str, float]] = field(default_factory=dict)
    spring: dict[int, tuple[int, float, float, float]] = field(default_factory=dict)


def reference_structure(
    h: list[float],
    low: list[float],
    c: list[float],
    v: list[float],
    *,
    width: int,
    max_age: int,
    reclaim_bars: int,
    vol_mult: float,
    vol_window: int,
) -> Events:
    """Every rule of ``perpscope.analytics.structure`` on one series, bar by bar."""
    n = len(h)
    out = Events()
    active: dict[str, list[Level]] = {"high": [], "low": []}
    swept: dict[str, list[Level]] = {"high": [], "low": []}
    last: dict[str, float | None] = {"high": None, "low": None}
    broken = {"high": True, "low": True}
    trend = 0

    def vol_avg(t: int) -> float:
        if t < vol_window:
            return math.nan
        return sum(v[t - vol_window : t]) / vol_window

    for t in range(n):
        for side in ("high", "low"):
            active[side] = [lv for lv in active[side] if t - lv.born <= max_age]
            swept[side] = [lv for lv in swept[side] if t - lv.swept_at <= reclaim_bars]
        taken_hi = [lv for lv in active["high"] if h[t] > lv.price]
        taken_lo = [lv for lv in active["low"] if low[t] < lv.price]
        for side, taken, extreme in (("high", taken_hi, h[t]), ("low", taken_lo, low[t])):
            for lv in taken:
                active[side].remove(lv)
                lv.swept_at, lv.extreme, lv.peak_vol, lv.base_vol = t, extreme, v[t], vol_avg(t)
                swept[side].append(lv)
        if taken_hi and c[t] < min(lv.price for lv in taken_hi):
            out.sfp[t] = (-1, max(lv.price for lv in taken_hi))
        elif taken_lo and c[t] > max(lv.price for lv in taken_lo):
            out.sfp[t] = (1, min(lv.price for lv in taken_lo))
        best: tuple[int, float, float, float] | None = None
        for side in ("high", "low"):
            for lv in list(swept[side]):
                lv.extreme = max(lv.extreme, h[t]) if side == "high" else min(lv.extreme, low[t])
                lv.peak_vol = max(lv.peak_vol, v[t])
                back = c[t] < lv.price if side == "high" else c[t] > lv.price
                if not back:
                    continue
                swept[side].remove(lv)
                ratio = lv.peak_vol / lv.base_vol if lv.base_vol > 0 else math.nan
                sign = -1 if side == "high" else 1
                better = best is None or ratio > best[3]
                if best is not None and ratio == best[3] and best[0] == sign:
                    # a tie on the same side goes to the more extreme level
                    better = lv.price > best[1] if side == "high" else lv.price < best[1]
                if ratio >= vol_mult and better:
                    best = (-1 if side == "high" else 1, lv.price, lv.extreme, ratio)
        if best is not None:
            out.spring[t] = best
        hi_level, lo_level = last["high"], last["low"]
        if not broken["high"] and hi_level is not None and c[t] > hi_level:
            out.brk[t] = (1, "choch" if trend == -1 else "bos", hi_level)
            broken["high"], trend = True, 1
        elif not broken["low"] and lo_level is not None and c[t] < lo_level:
            out.brk[t] = (-1, "choch" if trend == 1 else "bos", lo_level)
            broken["low"], trend = True, -1
        i = t - width
        if i - width >= 0:
            left_h, right_h = h[i - width : i], h[i + 1 : t + 1]
            left_l, right_l = low[i - width : i], low[i + 1 : t + 1]
            if h[i] > max(left_h) and h[i] > max(right_h):
                out.new_high[t] = h[i]
                last["high"], broken["high"] = h[i], False
                active["high"].append(Level(h[i], i))
            if low[i] < min(left_l) and low[i] < min(right_l):
                out.new_low[t] = low[i]
                last["low"], broken["low"] = low[i], False
                active["low"].append(Level(low[i], i))
    return out
