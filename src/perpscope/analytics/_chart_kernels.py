"""Compiled loops of the chart-reading rules: Wilder's ATR and ADX, and the structure walk.

These recursions are path-dependent (each bar's value or state depends on the previous one), which
polars cannot express as column operations; each kernel walks every series in time order. Their
plain-Python references live in the tests (``tests/analytics/chart_reference.py``), which check the
kernels equal to them, and ATR/ADX are checked against TA-Lib.

Every kernel takes the series boundaries as ``bounds`` (``bounds[k]`` is the first row of series
``k`` and ``bounds[-1]`` the number of rows) and treats the series independently.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl
from numba import njit

__all__ = [
    "BREAK_BOS",
    "BREAK_CHOCH",
    "adx_kernel",
    "atr_kernel",
    "cluster_kernel",
    "positions",
    "run_cumsum",
    "series_bounds",
    "trailing_mean",
    "structure_kernel",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I8 = npt.NDArray[np.int8]

BREAK_BOS: Final = 1
"""``break_kind`` of a break of structure (a break in the direction of the trend)."""
BREAK_CHOCH: Final = 2
"""``break_kind`` of a change of character (the first break against the trend)."""

_ZERO: Final = 1e-8  # TA-Lib's TA_IS_ZERO tolerance


def series_bounds(frame: pl.DataFrame, keys: list[str]) -> I64:
    """Row boundaries of the runs of equal ``keys`` in a frame sorted by them (plus the length)."""
    n = frame.height
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    ids = frame.select(pl.struct(keys).rle_id().alias("_id"))["_id"].to_numpy()
    starts = np.flatnonzero(np.diff(ids)) + 1
    return np.concatenate(([0], starts, [n])).astype(np.int64)


def positions(bounds: I64) -> I64:
    """Each row's position inside its series (0 at the series' first row)."""
    n = int(bounds[-1])
    starts = np.repeat(bounds[:-1], np.diff(bounds))
    return np.arange(n, dtype=np.int64) - starts


def run_cumsum(values: F64, run_start: npt.NDArray[np.bool_]) -> F64:
    """Running sums of ``values`` that restart at every row where ``run_start`` is true."""
    total = np.cumsum(values)
    first = np.flatnonzero(run_start)
    before = np.concatenate(([0.0], total))[first]  # the global sum before each run
    offset = np.repeat(before, np.diff(np.concatenate((first, [values.size]))))
    return np.asarray(total - offset, dtype=np.float64)


@njit(cache=True, nogil=True)
def trailing_mean(values: F64, bounds: I64, window: int, min_count: int) -> F64:  # pragma: no cover
    """Mean of the non-NaN values among each row's last ``window`` rows of its series.

    NaN where fewer than ``min_count`` values are present. One pass with a running sum.
    """
    out = np.full(values.shape[0], np.nan)
    for k in range(bounds.shape[0] - 1):
        s, e = bounds[k], bounds[k + 1]
        total = 0.0
        count = 0
        for i in range(s, e):
            x = values[i]
            if not np.isnan(x):
                total += x
                count += 1
            j = i - window
            if j >= s and not np.isnan(values[j]):
                total -= values[j]
                count -= 1
            if count >= min_count and count > 0:
                out[i] = total / count
    return out


@njit(cache=True, nogil=True)
def _true_range(h: float, low: float, prev_c: float) -> float:  # pragma: no cover - compiled
    tr = h - low
    up = abs(h - prev_c)
    down = abs(low - prev_c)
    if up > tr:
        tr = up
    if down > tr:
        tr = down
    return tr


@njit(cache=True, nogil=True)
def atr_kernel(h: F64, low: F64, c: F64, bounds: I64, period: int) -> F64:  # pragma: no cover
    """Wilder's ATR as TA-Lib: the mean of the first ``period`` true ranges at bar ``period``."""
    out = np.full(h.shape[0], np.nan)
    for k in range(bounds.shape[0] - 1):
        s, e = bounds[k], bounds[k + 1]
        if e - s <= period:
            continue
        acc = 0.0
        for i in range(s + 1, s + period + 1):
            acc += _true_range(h[i], low[i], c[i - 1])
        prev = acc / period
        out[s + period] = prev
        for i in range(s + period + 1, e):
            prev = (prev * (period - 1) + _true_range(h[i], low[i], c[i - 1])) / period
            out[i] = prev
    return out


@njit(cache=True, nogil=True)
def adx_kernel(
    h: F64, low: F64, c: F64, bounds: I64, period: int
) -> tuple[F64, F64, F64]:  # pragma: no cover - compiled
    """Wilder's ADX, +DI and -DI as TA-Lib computes them (ADX from bar ``2 period - 1``)."""
    n = h.shape[0]
    adx = np.full(n, np.nan)
    plus_di = np.full(n, np.nan)
    minus_di = np.full(n, np.nan)
    for k in range(bounds.shape[0] - 1):
        s, e = bounds[k], bounds[k + 1]
        if e - s < 2 * period:
            continue
        p_dm = 0.0
        m_dm = 0.0
        tr = 0.0
        for i in range(s + 1, s + period):  # the first period - 1 moves are summed
            diff_p = h[i] - h[i - 1]
            diff_m = low[i - 1] - low[i]
            if diff_m > 0 and diff_p < diff_m:
                m_dm += diff_m
            elif diff_p > 0 and diff_p > diff_m:
                p_dm += diff_p
            tr += _true_range(h[i], low[i], c[i - 1])
        sum_dx = 0.0
        prev_adx = 0.0
        for i in range(s + period, e):  # then Wilder-smoothed
            diff_p = h[i] - h[i - 1]
            diff_m = low[i - 1] - low[i]
            p_dm -= p_dm / period
            m_dm -= m_dm / period
            if diff_m > 0 and diff_p < diff_m:
                m_dm += diff_m
            elif diff_p > 0 and diff_p > diff_m:
                p_dm += diff_p
            tr = tr - tr / period + _true_range(h[i], low[i], c[i - 1])
            dx = np.nan
            if not (-_ZERO < tr < _ZERO):
                pdi = 100.0 * p_dm / tr
                mdi = 100.0 * m_dm / tr
                plus_di[i] = pdi
                minus_di[i] = mdi
                total = pdi + mdi
                if not (-_ZERO < total < _ZERO):
                    dx = 100.0 * abs(mdi - pdi) / total
            else:
                plus_di[i] = 0.0
                minus_di[i] = 0.0
            j = i - s - period  # 0 .. : the first ``period`` DX values seed the ADX
            if j < period:
                if not np.isnan(dx):
                    sum_dx += dx
                if j == period - 1:
                    prev_adx = sum_dx / period
                    adx[i] = prev_adx
            else:
                if not np.isnan(dx):
                    prev_adx = (prev_adx * (period - 1) + dx) / period
                adx[i] = prev_adx
    return adx, plus_di, minus_di


@njit(cache=True, nogil=True)
def cluster_kernel(px: F64, bounds: I64, tolerance: float) -> I64:  # pragma: no cover - compiled
    """Zone ids of ascending prices per series: a zone spans at most ``tolerance`` of its floor."""
    out = np.zeros(px.shape[0], dtype=np.int64)
    zone = -1
    for k in range(bounds.shape[0] - 1):
        floor = -np.inf
        for i in range(bounds[k], bounds[k + 1]):
            if not px[i] <= floor * (1.0 + tolerance):
                zone += 1
                floor = px[i]
            out[i] = zone
    return out


_CAP: Final = 64  # active swing levels kept per side (the oldest is dropped beyond it)


@njit(cache=True, nogil=True)
def structure_kernel(  # noqa: PLR0912, PLR0915 - one walk, one state machine
    h: F64,
    low: F64,
    c: F64,
    v: F64,
    vol_avg: F64,
    bounds: I64,
    width: int,
    max_age: int,
    reclaim_bars: int,
    vol_mult: float,
) -> tuple[F64, F64, I8, F64, I8, I8, F64, I8, F64, F64, F64]:  # pragma: no cover - compiled
    """Walk every series once: swings, swing failures, breaks of structure, springs and UTADs.

    Returns per-bar arrays: ``new_swing_high``, ``new_swing_low`` (the level of the swing confirmed
    at this bar, i.e. ``width`` bars after it, else NaN); ``sfp`` (+1 bullish, -1 bearish, 0) and
    ``sfp_level``; ``brk`` (+1 up, -1 down, 0), ``brk_kind`` (1 BOS, 2 CHoCH) and ``brk_level``;
    ``spring`` (+1 spring, -1 UTAD, 0), ``spring_level``, ``spring_extreme`` (the sweep's low or
    high) and ``spring_vol_mult``.

    Side 0 holds swing highs, side 1 swing lows. Each side keeps two compact lists: the active
    levels (not yet traded through) and the swept ones awaiting a reclaim; a removal moves the
    list's last entry into the gap, so no rule may depend on list order (none does).
    """
    n = h.shape[0]
    new_hi = np.full(n, np.nan)
    new_lo = np.full(n, np.nan)
    sfp = np.zeros(n, dtype=np.int8)
    sfp_level = np.full(n, np.nan)
    brk = np.zeros(n, dtype=np.int8)
    brk_kind = np.zeros(n, dtype=np.int8)
    brk_level = np.full(n, np.nan)
    spring = np.zeros(n, dtype=np.int8)
    spring_level = np.full(n, np.nan)
    spring_extreme = np.full(n, np.nan)
    spring_vm = np.full(n, np.nan)
    act_lvl = np.zeros((2, _CAP))
    act_born = np.zeros((2, _CAP), dtype=np.int64)
    sw_lvl = np.zeros((2, _CAP))
    sw_at = np.zeros((2, _CAP), dtype=np.int64)
    sw_ext = np.zeros((2, _CAP))
    sw_peak = np.zeros((2, _CAP))
    sw_base = np.zeros((2, _CAP))
    n_act = np.zeros(2, dtype=np.int64)
    n_sw = np.zeros(2, dtype=np.int64)
    last_level = np.zeros(2)
    last_broken = np.zeros(2, dtype=np.bool_)
    for k in range(bounds.shape[0] - 1):
        s, e = bounds[k], bounds[k + 1]
        n_act[:] = 0
        n_sw[:] = 0
        last_broken[:] = True
        trend = 0
        for t in range(s, e):
            hi_min, hi_max, lo_min, lo_max = np.inf, -np.inf, np.inf, -np.inf
            for side in range(2):
                # 1. forget old levels and sweeps not reclaimed in time (they were accepted)
                q = 0
                while q < n_act[side]:
                    if t - act_born[side, q] > max_age:
                        last = n_act[side] - 1
                        act_lvl[side, q] = act_lvl[side, last]
                        act_born[side, q] = act_born[side, last]
                        n_act[side] = last
                    else:
                        q += 1
                q = 0
                while q < n_sw[side]:
                    if t - sw_at[side, q] > reclaim_bars:
                        last = n_sw[side] - 1
                        sw_lvl[side, q] = sw_lvl[side, last]
                        sw_at[side, q] = sw_at[side, last]
                        sw_ext[side, q] = sw_ext[side, last]
                        sw_peak[side, q] = sw_peak[side, last]
                        sw_base[side, q] = sw_base[side, last]
                        n_sw[side] = last
                    else:
                        q += 1
                # 2. sweeps of active levels by this bar's wick move them to the swept list
                q = 0
                while q < n_act[side]:
                    price = act_lvl[side, q]
                    taken = h[t] > price if side == 0 else low[t] < price
                    if not taken:
                        q += 1
                        continue
                    if side == 0:
                        hi_min, hi_max = min(hi_min, price), max(hi_max, price)
                    else:
                        lo_min, lo_max = min(lo_min, price), max(lo_max, price)
                    if n_sw[side] < _CAP:
                        j = n_sw[side]
                        sw_lvl[side, j] = price
                        sw_at[side, j] = t
                        sw_ext[side, j] = h[t] if side == 0 else low[t]
                        sw_peak[side, j] = v[t]
                        sw_base[side, j] = vol_avg[t]
                        n_sw[side] = j + 1
                    last = n_act[side] - 1
                    act_lvl[side, q] = act_lvl[side, last]
                    act_born[side, q] = act_born[side, last]
                    n_act[side] = last
            # 3. swing failure: the wick took levels, the close is back beyond all of them
            if hi_max > -np.inf and c[t] < hi_min:
                sfp[t] = -1
                sfp_level[t] = hi_max
            elif lo_min < np.inf and c[t] > lo_max:
                sfp[t] = 1
                sfp_level[t] = lo_min
            # 4. springs / UTADs: a swept level reclaimed by a close within reclaim_bars
            best_vm = -1.0
            for side in range(2):
                q = 0
                while q < n_sw[side]:
                    if side == 0:
                        sw_ext[0, q] = max(sw_ext[0, q], h[t])
                    else:
                        sw_ext[1, q] = min(sw_ext[1, q], low[t])
                    sw_peak[side, q] = max(sw_peak[side, q], v[t])
                    price = sw_lvl[side, q]
                    back = c[t] < price if side == 0 else c[t] > price
                    if not back:
                        q += 1
                        continue
                    base = sw_base[side, q]
                    vm = sw_peak[side, q] / base if base > 0 else np.nan
                    # the largest volume multiple wins; on a tie, the more extreme level
                    tie = vm == best_vm and spring[t] == (-1 if side == 0 else 1)
                    if tie:
                        tie = price > spring_level[t] if side == 0 else price < spring_level[t]
                    if vm >= vol_mult and (vm > best_vm or tie):
                        best_vm = vm
                        spring[t] = -1 if side == 0 else 1
                        spring_level[t] = price
                        spring_extreme[t] = sw_ext[side, q]
                        spring_vm[t] = vm
                    last = n_sw[side] - 1
                    sw_lvl[side, q] = sw_lvl[side, last]
                    sw_at[side, q] = sw_at[side, last]
                    sw_ext[side, q] = sw_ext[side, last]
                    sw_peak[side, q] = sw_peak[side, last]
                    sw_base[side, q] = sw_base[side, last]
                    n_sw[side] = last
            # 5. breaks of structure against the latest confirmed swing on each side
            if not last_broken[0] and c[t] > last_level[0]:
                brk[t] = 1
                brk_kind[t] = 2 if trend == -1 else 1
                brk_level[t] = last_level[0]
                last_broken[0] = True
                trend = 1
            elif not last_broken[1] and c[t] < last_level[1]:
                brk[t] = -1
                brk_kind[t] = 2 if trend == 1 else 1
                brk_level[t] = last_level[1]
                last_broken[1] = True
                trend = -1
            # 6. the swing ``width`` bars back is confirmed now (strictly beyond both neighbours)
            i = t - width
            if i - width < s:
                continue
            is_hi = True
            is_lo = True
            for j in range(i - width, i + width + 1):
                if j != i:
                    is_hi = is_hi and h[j] < h[i]
                    is_lo = is_lo and low[j] > low[i]
            for side in range(2):
                if (side == 0 and not is_hi) or (side == 1 and not is_lo):
                    continue
                price = h[i] if side == 0 else low[i]
                if side == 0:
                    new_hi[t] = price
                else:
                    new_lo[t] = price
                last_level[side] = price
                last_broken[side] = False
                slot = n_act[side]
                if slot == _CAP:  # full: the oldest active level makes room
                    slot = 0
                    for q in range(1, _CAP):
                        if act_born[side, q] < act_born[side, slot]:
                            slot = q
                else:
                    n_act[side] = slot + 1
                act_lvl[side, slot] = price
                act_born[side, slot] = i
    return (
        new_hi,
        new_lo,
        sfp,
        sfp_level,
        brk,
        brk_kind,
        brk_level,
        spring,
        spring_level,
        spring_extreme,
        spring_vm,
    )
