"""The engine's hot loops over the open positions, compiled with numba.

Each kernel does, in one pass, what the engine once did with several numpy passes (gathers of
the open positions' fields, masks, ``ufunc.at``), with the same floating-point operations in
the same order, so a seed's output is identical either way. ``tests/sim/test_kernels.py``
checks each kernel against the numpy expression it replaces (``*_reference`` below).

All take the position book's parallel arrays (indexed by position id) and ``open_idx``, the ids
of the open positions in ascending order; per-market arrays have one element per market.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

__all__ = [
    "crossed_positions",
    "crossed_reference",
    "liq_px_kernel",
    "liq_px_reference",
    "mark_kernel",
    "review_positions",
    "review_reference",
    "still_open",
    "thresholds_kernel",
    "thresholds_reference",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]


@njit(cache=True, nogil=True, error_model="numpy")
def thresholds_kernel(
    open_idx: I64, market: I64, side: I64, liq: F64, n_m: int
) -> tuple[F64, F64]:  # pragma: no cover - compiled
    """Per market, the highest long liquidation price (0 if none) and the lowest positive short
    one (inf if none)."""
    hi = np.zeros(n_m)
    lo = np.full(n_m, np.inf)
    for i in open_idx:
        m = market[i]
        px = liq[i]
        if side[i] > 0:
            if px > hi[m]:
                hi[m] = px
        elif px > 0.0 and px < lo[m]:
            lo[m] = px
    return hi, lo


def thresholds_reference(
    open_idx: I64, market: I64, side: I64, liq: F64, n_m: int
) -> tuple[F64, F64]:
    """:func:`thresholds_kernel` in numpy (the engine's former code)."""
    mk, px = market[open_idx], liq[open_idx]
    long_ = side[open_idx] > 0
    hi = np.zeros(n_m)
    lo = np.full(n_m, np.inf)
    np.maximum.at(hi, mk[long_], px[long_])
    sl = ~long_ & (px > 0)
    np.minimum.at(lo, mk[sl], px[sl])
    return hi, lo


@njit(cache=True, nogil=True, error_model="numpy")
def crossed_positions(
    open_idx: I64, market: I64, side: I64, liq: F64, mark: F64, hit: B
) -> I64:  # pragma: no cover - compiled
    """Open positions in a ``hit`` market whose positive liquidation price the mark reached (a
    long's at or above the mark, a short's at or below), in ``open_idx`` order."""
    out = np.empty(open_idx.size, np.int64)
    k = 0
    for i in open_idx:
        m = market[i]
        px = liq[i]
        if not hit[m] or px <= 0.0:
            continue
        if (px >= mark[m]) if side[i] > 0 else (px <= mark[m]):
            out[k] = i
            k += 1
    return out[:k]


def crossed_reference(open_idx: I64, market: I64, side: I64, liq: F64, mark: F64, hit: B) -> I64:
    """:func:`crossed_positions` in numpy (the engine's former code)."""
    mk, px = market[open_idx], liq[open_idx]
    long_ = side[open_idx] > 0
    crossed = np.where(long_, px >= mark[mk], px <= mark[mk]) & (px > 0) & hit[mk]
    return np.asarray(open_idx[crossed])


@njit(cache=True, nogil=True, error_model="numpy")
def review_positions(
    open_idx: I64,
    market: I64,
    side: I64,
    tp: F64,
    entry: F64,
    leverage: F64,
    mid: F64,
    stop_roe: float,
) -> I64:  # pragma: no cover - compiled
    """Open positions whose take-profit price ``mid`` reached, or whose return on margin is at
    or below ``-stop_roe``, in ``open_idx`` order."""
    out = np.empty(open_idx.size, np.int64)
    k = 0
    for i in open_idx:
        px = mid[market[i]]
        s = side[i]
        take = tp[i] <= px if s > 0 else tp[i] >= px
        roe = s * (px / entry[i] - 1.0) * leverage[i]
        if take or roe <= -stop_roe:
            out[k] = i
            k += 1
    return out[:k]


def review_reference(
    open_idx: I64,
    market: I64,
    side: I64,
    tp: F64,
    entry: F64,
    leverage: F64,
    mid: F64,
    stop_roe: float,
) -> I64:
    """:func:`review_positions` in numpy (the engine's former code)."""
    s = side[open_idx]
    px = mid[market[open_idx]]
    take = np.where(s > 0, tp[open_idx] <= px, tp[open_idx] >= px)
    roe = s * (px / entry[open_idx] - 1.0) * leverage[open_idx]
    return np.asarray(open_idx[take | (roe <= -stop_roe)])


@njit(cache=True, nogil=True, error_model="numpy")
def still_open(open_idx: I64, alive: B) -> I64:  # pragma: no cover - compiled
    """The ids of ``open_idx`` still ``alive``, in order (``open_idx[alive[open_idx]]``)."""
    out = np.empty(open_idx.size, np.int64)
    k = 0
    for i in open_idx:
        if alive[i]:
            out[k] = i
            k += 1
    return out[:k]


@njit(cache=True, nogil=True, error_model="numpy")
def mark_kernel(
    index_px: F64, last_px: F64, premium_ema: F64, last_rate: F64, time_left_frac: F64
) -> F64:  # pragma: no cover - compiled
    """:func:`perpscope.sim.market.mark_price`, element by element with the same operations."""
    out = np.empty(index_px.size)
    for m in range(index_px.size):
        a = index_px[m] * (1.0 + last_rate[m] * time_left_frac[m])
        b = index_px[m] * (1.0 + premium_ema[m])
        c = last_px[m]
        lo = a if a < b else b  # np.minimum / np.maximum (no NaN here)
        hi = b if a < b else a
        mid = hi if hi < c else c
        out[m] = mid if mid > lo else lo
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def liq_px_kernel(
    side: I64,
    entry_px: F64,
    qty: F64,
    leverage: F64,
    cums: F64,
    mmrs: F64,
    lo: F64,
    hi: F64,
) -> tuple[F64, B]:  # pragma: no cover - compiled
    """Per position, the candidate liquidation price of each tier (``(e + cum - s q p) /
    (q mmr - s q)`` with the isolated margin ``e = q p / leverage``) whose notional ``q x px``
    lies in the tier's bounds ``[lo, hi]``, the one nearest entry (the earlier tier of equals).

    Returns the prices and, per position, whether no tier was consistent (``bad``: the caller
    solves those one by one; the price returned for them is tier 0's candidate, as numpy's
    ``argmin`` of all-inf distances picks).
    """
    n, k = side.size, cums.size
    out = np.empty(n)
    bad = np.zeros(n, np.bool_)
    for i in range(n):
        s = float(side[i])
        q, ep = qty[i], entry_px[i]
        e = q * ep / leverage[i]
        best, best_d, first = -1, np.inf, 0.0
        for j in range(k):
            px = (e + cums[j] - s * q * ep) / (q * mmrs[j] - s * q)
            if j == 0:
                first = px
            amount = q * px
            if px > 0.0 and np.isfinite(px) and amount >= lo[j] and amount <= hi[j]:
                d = abs(px - ep)
                if d < best_d:
                    best, best_d, out[i] = j, d, px
        if best < 0:
            out[i] = first
            bad[i] = True
    return out, bad


def liq_px_reference(
    side: I64,
    entry_px: F64,
    qty: F64,
    leverage: F64,
    cums: F64,
    mmrs: F64,
    lo: F64,
    hi: F64,
) -> tuple[F64, B]:
    """:func:`liq_px_kernel` in numpy (the former ``liquidation_px_many`` body)."""
    s = side.astype(float)[:, None]
    q, ep = qty[:, None], entry_px[:, None]
    e = q * ep / leverage[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        px = (e + cums - s * q * ep) / (q * mmrs - s * q)
    amount = q * px
    ok = (px > 0) & np.isfinite(px) & (amount >= lo) & (amount <= hi)
    dist = np.where(ok, np.abs(px - ep), np.inf)
    best = np.argmin(dist, axis=1)
    rows = np.arange(side.size)
    return np.asarray(px[rows, best]), np.asarray(~ok[rows, best])
