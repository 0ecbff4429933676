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
    "run_vwap",
    "log_return_std",
    "series_bounds",
    "sort_with_bounds",
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
    # a run of equal keys starts wherever any key's own run starts (one run-length pass per key,
    # cheaper on strings than comparing each row with the previous one)
    starts = np.zeros(0, dtype=np.int64)
    for key in keys:
        lengths = frame[key].rle().struct.field("len").to_numpy()
        starts = np.union1d(starts, np.cumsum(lengths[:-1], dtype=np.int64))
    return np.concatenate(([0], starts, [n])).astype(np.int64)


def sort_with_bounds(frame: pl.DataFrame, keys: list[str]) -> tuple[pl.DataFrame, I64]:
    """``frame`` sorted by ``keys`` then ``ts`` (as is, no copy, when it already is) and its
    :func:`series_bounds`.

    The check costs one pass over the keys (the runs of equal keys, needed for the bounds
    anyway) and one over ``ts``: ``ts`` must rise strictly inside each run, and the keys must
    rise strictly from one run to the next (compared on the runs' first rows only), which is
    what sorted by ``keys`` then ``ts`` with no duplicate means.
    """
    bounds = series_bounds(frame, keys)
    if frame.height < 2:
        return frame, bounds
    ts = frame["ts"]
    if ts.null_count() == 0:
        t = ts.to_physical().to_numpy()
        rising = t[1:] > t[:-1]
        rising[bounds[1:-1] - 1] = True  # a new run: its order is the keys' (below)
        if rising.all():
            firsts = frame.select(keys)[bounds[:-1]]
            ordered: pl.Expr = pl.lit(False)
            for key in reversed(keys):
                k, prev = pl.col(key), pl.col(key).shift()
                ordered = (k > prev) | ((k == prev) & ordered)
            if firsts.height < 2 or firsts.select(ordered.slice(1).all()).item():
                return frame, bounds
    frame = frame.sort(*keys, "ts")
    return frame, series_bounds(frame, keys)


def positions(bounds: I64) -> I64:
    """Each row's position inside its series (0 at the series' first row)."""
    n = int(bounds[-1])
    starts = np.repeat(bounds[:-1], np.diff(bounds))
    return np.arange(n, dtype=np.int64) - starts


@njit(cache=True, nogil=True)
def run_vwap(
    h: F64, low: F64, c: F64, vol: F64, run_start: npt.NDArray[np.bool_]
) -> F64:  # pragma: no cover
    """Volume-weighted average of the typical price ``(h + l + c) / 3`` from the start of each run.

    A run starts at every row where ``run_start`` is true (and at row 0); NaN until the run has
    volume.
    """
    n = h.shape[0]
    out = np.full(n, np.nan)
    pv = 0.0
    cum = 0.0
    for i in range(n):
        if run_start[i] or i == 0:
            pv = 0.0
            cum = 0.0
        pv += (h[i] + low[i] + c[i]) / 3.0 * vol[i]
        cum += vol[i]
        if cum > 0:
            out[i] = pv / cum
    return out


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
def _window_moments(r: F64, i: int, window: int) -> tuple[float, float, float]:  # pragma: no cover
    """Mean, sum of squared deviations and sum of squares of ``r[i - window + 1 : i + 1]``."""
    total = 0.0
    sq = 0.0
    for j in range(i - window + 1, i + 1):
        total += r[j]
        sq += r[j] * r[j]
    mean = total / window
    m2 = 0.0
    for j in range(i - window + 1, i + 1):
        d = r[j] - mean
        m2 += d * d
    return mean, m2, sq


@njit(cache=True, nogil=True)
def log_return_std(c: F64, bounds: I64, window: int) -> F64:  # pragma: no cover - compiled
    """Sample standard deviation (ddof 1) of each row's last ``window`` log returns, per series.

    The return at row ``i`` is ``log c[i] - log c[i-1]`` inside a series (its first row has
    none), so the first value of a series is at its row ``window``; earlier rows are NaN.

    The window's mean and sum of squared deviations slide by Welford's update, whose rounding
    error is about the machine epsilon times the window's sum of squares per step. So the
    moments are recomputed exactly (two passes) every ``window`` rows, and at every row where
    the squared deviations fall under a thousandth of the largest sum of squares seen since the
    last exact pass (a near-constant return, or calm after a burst, where that error would
    show): the result stays within about 1e-11 (relative) of the two-pass value, and a
    constant return gives exactly 0.
    """
    n = c.shape[0]
    out = np.full(n, np.nan)
    r = np.empty(n)
    for k in range(bounds.shape[0] - 1):
        s, e = bounds[k], bounds[k + 1]
        prev = np.log(c[s]) if e > s else 0.0
        for i in range(s + 1, e):
            cur = np.log(c[i])
            r[i] = cur - prev
            prev = cur
        mean = 0.0
        m2 = 0.0
        scale = 0.0  # the largest sum of squares of a window since the last exact pass
        sq = 0.0
        for i in range(s + window, e):
            if (i - s) % window == 0:
                mean, m2, sq = _window_moments(r, i, window)
                scale = sq
            else:
                new, old = r[i], r[i - window]
                step = new - old
                new_mean = mean + step / window
                m2 += step * (new - new_mean + old - mean)
                mean = new_mean
                sq += new * new - old * old
                scale = max(scale, sq)
                if m2 < 1e-3 * scale:
                    mean, m2, sq = _window_moments(r, i, window)
                    scale = sq
            out[i] = np.sqrt(max(m2, 0.0) / (window - 1))
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
def _track(  # pragma: no cover - compiled
    act_lvl: F64, act_born: I64, n_act: I64, side: int, near: F64, oldest: I64, none: int
) -> None:
    """Recompute ``side``'s nearest active level and oldest birth (``none`` when it has none)."""
    near[side] = np.inf if side == 0 else -np.inf
    oldest[side] = none
    for q in range(n_act[side]):
        if side == 0:
            near[0] = min(near[0], act_lvl[0, q])
        else:
            near[1] = max(near[1], act_lvl[1, q])
        oldest[side] = min(oldest[side], act_born[side, q])


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
    # Per side, the active level nearest the price (lowest high, highest low) and the oldest
    # birth: a bar that reaches no level and finds none too old skips both scans.
    near = np.zeros(2)
    oldest = np.zeros(2, dtype=np.int64)
    for k in range(bounds.shape[0] - 1):
        s, e = bounds[k], bounds[k + 1]
        n_act[:] = 0
        n_sw[:] = 0
        near[0], near[1] = np.inf, -np.inf
        oldest[:] = e
        last_broken[:] = True
        trend = 0
        for t in range(s, e):
            hi_min, hi_max, lo_min, lo_max = np.inf, -np.inf, np.inf, -np.inf
            for side in range(2):
                # 1. forget old levels and sweeps not reclaimed in time (they were accepted)
                q = n_act[side] if t - oldest[side] <= max_age else 0
                changed = q == 0
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
                reach = h[t] > near[0] if side == 0 else low[t] < near[1]
                q = 0 if reach else n_act[side]
                changed = changed or reach
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
                if changed:
                    _track(act_lvl, act_born, n_act, side, near, oldest, e)
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
                _track(act_lvl, act_born, n_act, side, near, oldest, e)
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
