"""The estimator's path-dependent loop: a numba kernel and the plain-Python reference it is tested
against (anchors C.2 steps 1-7 on a geometric price grid).

Both take the same plain arrays, one element per bar ``t``:

* ``entry``: price at which the bar's new notional opens; ``new_long``/``new_short``: USD notional
  opened on each side; ``keep``: ``OI_t / OI_{t-1}`` when OI fell (else 1); ``high``/``low``: the
  bar's mark high and low.
* per leverage tier ``k``: ``long_factor``/``short_factor`` (liquidation price / entry price, 0 for
  a tier that is never liquidated) and ``weight`` (shares summing to 1).

On each bar, in this order: (1) long levels whose bin centre is at or above the low and short levels
at or below the high are consumed (removed); (2) if OI fell by more than the consumed share of the
standing notional explains (or at all, without ``net_of_consumed``), every standing level is
scaled so the total falls as OI did; (3) every level decays by ``decay``; (4) the new notional is
added at ``entry * factor_k`` with weight ``w_k``.
Bin ``b`` covers ``[p0 * g**b, p0 * g**(b+1))`` with ``g = exp(dlog)``; its centre is
``p0 * exp((b + 0.5) * dlog)``. Levels that fall outside the grid are dropped.

The kernel keeps one global scale factor per layer instead of touching every bin when OI falls or
levels decay, and pointers to the outermost standing bins, so a bar costs O(tiers + consumed bins);
the reference does the same arithmetic bin by bin.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = ["heatmap_kernel", "heatmap_reference"]

F64 = npt.NDArray[np.float64]
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

_RENORM = 1e-150


@njit(cache=True, nogil=True)
def heatmap_kernel(
    entry: F64,
    new_long: F64,
    new_short: F64,
    keep: F64,
    high: F64,
    low: F64,
    long_factor: F64,
    short_factor: F64,
    weight: F64,
    centers: F64,
    p0: float,
    dlog: float,
    decay: float,
    snap_every: int,
    net_of_consumed: bool,
    ref_px: F64,
    half_w: int,
) -> tuple[F64, F64, F32, F32, I64, F64, F64]:  # pragma: no cover - compiled
    """Run the estimator over all bars (see the module docstring).

    Returns:
        ``(long_map, short_map, heat_long, heat_short, heat_start, consumed_long,
        consumed_short)``: the standing notional per bin after the last bar; the snapshots after
        every ``snap_every``-th bar (row ``(t + 1) // snap_every - 1``), each covering the
        ``2 * half_w`` bins from ``heat_start[row]`` (``half_w`` bins either side of the bin of
        ``ref_px[t]``; the whole grid from 0 when ``half_w`` is 0); the notional consumed on
        each bar.
    """
    n = entry.shape[0]
    nb = centers.shape[0]
    n_snaps = n // snap_every
    width = nb if half_w <= 0 else 2 * half_w
    heat_long = np.zeros((n_snaps, width), dtype=np.float32)
    heat_short = np.zeros((n_snaps, width), dtype=np.float32)
    heat_start = np.zeros(n_snaps, dtype=np.int64)
    consumed_long = np.zeros(n)
    consumed_short = np.zeros(n)
    raw_l = np.zeros(nb)
    raw_s = np.zeros(nb)
    scale = 1.0
    sum_l = 0.0  # sums of the raw values; standing notional = sum * scale
    sum_s = 0.0
    hi_l = -1  # highest bin that may hold a long level
    lo_s = nb  # lowest bin that may hold a short level
    lo_l = nb  # lowest long bin ever filled (snapshots copy from here)
    hi_s = -1
    n_k = weight.shape[0]
    for t in range(n):
        before = (sum_l + sum_s) * scale
        # (1) consumption by this bar's range
        cl = 0.0
        b = hi_l
        while b >= 0 and centers[b] >= low[t]:
            cl += float(raw_l[b])
            raw_l[b] = 0.0
            b -= 1
        hi_l = b
        cs = 0.0
        b = lo_s
        while b < nb and centers[b] <= high[t]:
            cs += float(raw_s[b])
            raw_s[b] = 0.0
            b += 1
        lo_s = b
        sum_l = sum_l - cl if sum_l > cl else 0.0
        sum_s = sum_s - cs if sum_s > cs else 0.0
        consumed_long[t] = cl * scale
        consumed_short[t] = cs * scale
        # (2) closures when OI fell by more than the consumption explains
        if keep[t] < 1.0 and before > 0.0:
            left = 1.0
            if net_of_consumed:
                left = (before - consumed_long[t] - consumed_short[t]) / before
            if left > 0.0 and keep[t] < left:
                scale *= keep[t] / left
        # (3) decay
        scale *= decay
        if scale < _RENORM:
            for j in range(nb):
                raw_l[j] *= scale
                raw_s[j] *= scale
            sum_l *= scale
            sum_s *= scale
            scale = 1.0
        # (4) new notional
        for k in range(n_k):
            w = weight[k]
            if new_long[t] > 0.0 and long_factor[k] > 0.0 and w > 0.0:
                j = int(math.floor(math.log(entry[t] * long_factor[k] / p0) / dlog))
                if 0 <= j < nb:
                    v = new_long[t] * w / scale
                    raw_l[j] += v
                    sum_l += v
                    hi_l = max(hi_l, j)
                    lo_l = min(lo_l, j)
            if new_short[t] > 0.0 and short_factor[k] > 0.0 and w > 0.0:
                j = int(math.floor(math.log(entry[t] * short_factor[k] / p0) / dlog))
                if 0 <= j < nb:
                    v = new_short[t] * w / scale
                    raw_s[j] += v
                    sum_s += v
                    lo_s = min(lo_s, j)
                    hi_s = max(hi_s, j)
        if (t + 1) % snap_every == 0:
            row = (t + 1) // snap_every - 1
            start = 0
            if half_w > 0:
                start = int(math.floor(math.log(ref_px[t] / p0) / dlog)) - half_w
            heat_start[row] = start
            for j in range(max(lo_l, start), min(hi_l + 1, start + width)):
                heat_long[row, j - start] = raw_l[j] * scale
            for j in range(max(lo_s, start), min(hi_s + 1, start + width)):
                heat_short[row, j - start] = raw_s[j] * scale
    return (
        raw_l * scale,
        raw_s * scale,
        heat_long,
        heat_short,
        heat_start,
        consumed_long,
        consumed_short,
    )


def heatmap_reference(
    entry: F64,
    new_long: F64,
    new_short: F64,
    keep: F64,
    high: F64,
    low: F64,
    long_factor: F64,
    short_factor: F64,
    weight: F64,
    centers: F64,
    p0: float,
    dlog: float,
    decay: float,
    snap_every: int,
    net_of_consumed: bool,
    ref_px: F64,
    half_w: int,
) -> tuple[F64, F64, F32, F32, I64, F64, F64]:
    """The same algorithm as :func:`heatmap_kernel`, written as plainly as possible in Python.

    Every bin is visited on every bar (no scale factor, no pointers); this is the test oracle and
    the peer of ``bench/heatmap.py``.
    """
    n, nb = len(entry), len(centers)
    cen = [float(c) for c in centers]
    longs = [0.0] * nb
    shorts = [0.0] * nb
    width = nb if half_w <= 0 else 2 * half_w
    snaps_l: list[list[float]] = []
    snaps_s: list[list[float]] = []
    starts: list[int] = []
    cons_l = [0.0] * n
    cons_s = [0.0] * n
    for t in range(n):
        lo, hi = float(low[t]), float(high[t])
        before = sum(longs) + sum(shorts)
        for b in range(nb):
            if longs[b] > 0.0 and cen[b] >= lo:
                cons_l[t] += longs[b]
                longs[b] = 0.0
            if shorts[b] > 0.0 and cen[b] <= hi:
                cons_s[t] += shorts[b]
                shorts[b] = 0.0
        factor = 1.0
        k_t = float(keep[t])
        if k_t < 1.0 and before > 0.0:
            left = (before - cons_l[t] - cons_s[t]) / before if net_of_consumed else 1.0
            if left > 0.0 and k_t < left:
                factor = k_t / left
        factor *= decay
        for b in range(nb):
            longs[b] *= factor
            shorts[b] *= factor
        px = float(entry[t])
        for f_l, f_s, w in zip(long_factor, short_factor, weight, strict=True):
            if new_long[t] > 0.0 and f_l > 0.0 and w > 0.0:
                b = math.floor(math.log(px * float(f_l) / p0) / dlog)
                if 0 <= b < nb:
                    longs[b] += float(new_long[t]) * float(w)
            if new_short[t] > 0.0 and f_s > 0.0 and w > 0.0:
                b = math.floor(math.log(px * float(f_s) / p0) / dlog)
                if 0 <= b < nb:
                    shorts[b] += float(new_short[t]) * float(w)
        if (t + 1) % snap_every == 0:
            start = 0
            if half_w > 0:
                start = math.floor(math.log(float(ref_px[t]) / p0) / dlog) - half_w
            cols = range(start, start + width)
            snaps_l.append([longs[j] if 0 <= j < nb else 0.0 for j in cols])
            snaps_s.append([shorts[j] if 0 <= j < nb else 0.0 for j in cols])
            starts.append(start)
    shape = (len(snaps_l), width)
    return (
        np.array(longs),
        np.array(shorts),
        np.array(snaps_l, dtype=np.float32).reshape(shape),
        np.array(snaps_s, dtype=np.float32).reshape(shape),
        np.array(starts, dtype=np.int64),
        np.array(cons_l),
        np.array(cons_s),
    )
