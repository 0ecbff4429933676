"""The engine's hot loops over the open positions, compiled with numba.

Each kernel does, in one pass, what the engine once did with several numpy passes (gathers of
the open positions' fields, masks, ``ufunc.at``), with the same floating-point operations in
the same order, so a seed's output is identical either way. ``tests/sim/test_kernels.py``
checks each kernel against the numpy expression it replaces (``*_reference`` below).

All take the position book's parallel arrays (indexed by position id) and ``open_idx``, the ids
of the open positions in ascending order; per-market arrays have one element per market.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

from perpscope.sim.constants import CAP_8H, CLAMP_8H, INTEREST_8H

__all__ = [
    "add_orders",
    "add_orders_reference",
    "add_volume",
    "bar_close",
    "bar_close_reference",
    "bar_open",
    "bar_open_reference",
    "close_fills",
    "close_fills_reference",
    "close_orders",
    "close_reference",
    "crossed_positions",
    "crossed_reference",
    "draw_positions",
    "draw_reference",
    "drop_ids",
    "drop_ids_reference",
    "due_positions",
    "due_reference",
    "erfc",
    "erfc_reference",
    "feed_reference",
    "feed_response",
    "house_fold",
    "house_reference",
    "house_update",
    "liq_px_kernel",
    "liq_px_reference",
    "long_prob",
    "long_prob_reference",
    "long_share",
    "long_share_reference",
    "mark_hit",
    "mark_hit_reference",
    "mark_kernel",
    "open_fields",
    "open_fields_reference",
    "open_fills",
    "open_fills_reference",
    "open_move",
    "open_move_reference",
    "pay_funding",
    "pay_funding_reference",
    "premium_reference",
    "premium_update",
    "recentre",
    "recentre_reference",
    "requote_px",
    "requote_px_reference",
    "review_positions",
    "review_reference",
    "spot_orders",
    "spot_orders_reference",
    "spot_reference",
    "spot_update",
    "step_end",
    "step_end_reference",
    "step_moods",
    "step_moods_reference",
    "step_news",
    "step_news_reference",
    "still_open",
    "still_open_reference",
    "thresholds_kernel",
    "thresholds_reference",
    "track_levels",
    "track_reference",
    "volume_reference",
    "snap_back",
    "snap_back_reference",
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


def still_open_reference(open_idx: I64, alive: B) -> I64:
    """:func:`still_open` in numpy (the book's former code)."""
    return np.asarray(open_idx[alive[open_idx]])


@njit(cache=True, nogil=True, error_model="numpy")
def drop_ids(buf: I64, n: int, ids: I64) -> int:  # pragma: no cover - compiled
    """Remove the ids ``ids`` (any order; an id not there is ignored) from ``buf[:n]``, the
    ascending ids of the open positions, in place and in order; returns the new length.

    :func:`still_open` after ``alive[ids] = False`` when ``buf[:n]`` holds exactly the alive
    ids, but by binary search and shifting the blocks in between left, with no new array."""
    gone = np.sort(ids)
    pos = np.searchsorted(buf[:n], gone)
    w, prev = -1, -1  # where the next kept block goes; the last removed position
    for j in range(pos.size):
        p = pos[j]
        if p <= prev or p >= n or buf[p] != gone[j]:
            continue  # a repeated id, or one not open
        if w < 0:
            w = p
        else:
            for i in range(prev + 1, p):
                buf[w] = buf[i]
                w += 1
        prev = p
    if w < 0:
        return n
    for i in range(prev + 1, n):
        buf[w] = buf[i]
        w += 1
    return w


def drop_ids_reference(buf: I64, n: int, ids: I64) -> int:
    """:func:`drop_ids` in numpy."""
    kept = buf[:n][~np.isin(buf[:n], ids)]
    buf[: kept.size] = kept
    return int(kept.size)


@njit(cache=True, nogil=True, error_model="numpy")
def _mark_one(
    index_px: float, last_px: float, premium_ema: float, last_rate: float, time_left: float
) -> float:  # pragma: no cover - compiled
    """One market's mark price: the median of the funding-basis price, the premium-average
    price and the last price (``np.minimum`` / ``np.maximum`` order; no NaN here)."""
    a = index_px * (1.0 + last_rate * time_left)
    b = index_px * (1.0 + premium_ema)
    lo = a if a < b else b
    hi = b if a < b else a
    mid = hi if hi < last_px else last_px
    return mid if mid > lo else lo


@njit(cache=True, nogil=True, error_model="numpy")
def mark_kernel(
    index_px: F64, last_px: F64, premium_ema: F64, last_rate: F64, time_left_frac: F64
) -> F64:  # pragma: no cover - compiled
    """:func:`perpscope.sim.market.mark_price`, element by element with the same operations."""
    out = np.empty(index_px.size)
    for m in range(index_px.size):
        out[m] = _mark_one(index_px[m], last_px[m], premium_ema[m], last_rate[m], time_left_frac[m])
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


@njit(cache=True, nogil=True, error_model="numpy")
def open_fields(
    side: I64,
    entry_px: F64,
    qty: F64,
    leverage: F64,
    take_profit_roe: F64,
    caps: F64,
    max_lev: F64,
    cums: F64,
    mmrs: F64,
    lo: F64,
    hi: F64,
) -> tuple[F64, F64, B, F64]:  # pragma: no cover - compiled
    """New positions' leverage, liquidation price, ``bad`` flag and take-profit price, in one
    pass.

    The leverage is capped at ``max_lev`` of the tier whose cap (``caps``, searched from the
    left, the last tier open-ended) holds the notional ``qty x entry``; the liquidation price
    and ``bad`` are :func:`liq_px_kernel`'s at that leverage; the take-profit price is
    ``entry x (1 + side x take_profit_roe / leverage)`` (neither floored at 0 here).
    """
    n = side.size
    lev = np.empty(n)
    tp = np.empty(n)
    last = caps.size - 1
    for i in range(n):
        j = min(np.searchsorted(caps, qty[i] * entry_px[i], side="left"), last)
        cap = max_lev[j]
        lev[i] = leverage[i] if leverage[i] <= cap else cap
        tp[i] = entry_px[i] * (1.0 + float(side[i]) * take_profit_roe[i] / lev[i])
    liq, bad = liq_px_kernel(side, entry_px, qty, lev, cums, mmrs, lo, hi)
    return lev, liq, bad, tp


def open_fields_reference(
    side: I64,
    entry_px: F64,
    qty: F64,
    leverage: F64,
    take_profit_roe: F64,
    caps: F64,
    max_lev: F64,
    cums: F64,
    mmrs: F64,
    lo: F64,
    hi: F64,
) -> tuple[F64, F64, B, F64]:
    """:func:`open_fields` in numpy (the position book's former code)."""
    tier = np.minimum(np.searchsorted(caps, qty * entry_px, side="left"), caps.size - 1)
    lev = np.minimum(leverage, max_lev[tier])
    liq, bad = liq_px_reference(side, entry_px, qty, lev, cums, mmrs, lo, hi)
    return lev, liq, bad, np.asarray(entry_px * (1.0 + side * take_profit_roe / lev))


@njit(cache=True, nogil=True, error_model="numpy")
def due_positions(open_idx: I64, close_step: I64, t: int) -> I64:  # pragma: no cover - compiled
    """Open positions whose close is booked for step ``t``, in ``open_idx`` (ascending) order."""
    out = np.empty(open_idx.size, np.int64)
    k = 0
    for i in open_idx:
        if close_step[i] == t:
            out[k] = i
            k += 1
    return out[:k]


def due_reference(open_idx: I64, close_step: I64, t: int) -> I64:
    """:func:`due_positions` in numpy."""
    return np.asarray(open_idx[close_step[open_idx] == t])


@njit(cache=True, nogil=True, error_model="numpy")
def house_update(
    qty: F64, entry: F64, funding: F64, dq: F64, px: F64
) -> tuple[F64, F64, F64]:  # pragma: no cover - compiled
    """The market maker's inventory, average entry and funding after trading ``dq`` at ``px``.

    Per market: a position that grows averages its entry; one that shrinks keeps it; one that
    opens or flips side starts at ``px`` with no funding; one that goes flat has entry and
    funding 0 (a remainder under 1e-12 counts as flat).
    """
    n = qty.size
    q_out, e_out, f_out = np.empty(n), np.empty(n), np.empty(n)
    for m in range(n):
        q0 = qty[m]
        q1 = q0 + dq[m]
        if abs(q1) < 1e-12:
            q1 = 0.0
        flip = q0 == 0.0 or (q1 != 0.0 and np.sign(q1) != np.sign(q0))
        e, f = entry[m], funding[m]
        if flip:
            e = px[m] if q1 != 0.0 else 0.0
            f = 0.0
        elif q1 == 0.0:
            e, f = 0.0, 0.0
        elif abs(q1) > abs(q0):
            e = (abs(q0) * entry[m] + abs(dq[m]) * px[m]) / abs(q1)
        q_out[m], e_out[m], f_out[m] = q1, e, f
    return q_out, e_out, f_out


@njit(cache=True, nogil=True, error_model="numpy")
def house_fold(
    n_markets: int, market: I64, dq: F64, px: F64
) -> tuple[F64, F64, F64]:  # pragma: no cover - compiled
    """The market maker's inventory, average entry and funding after trades in this order.

    Starting flat on each of ``n_markets``, trade ``i`` (``dq[i]`` at ``px[i]`` on
    ``market[i]``) is applied by :func:`house_update`'s rule, one after the other, so the entry
    is always a price traded (or an average of them) and never ``cost / net`` of trades of both
    signs netted at once.
    """
    q, e, f = np.zeros(n_markets), np.zeros(n_markets), np.zeros(n_markets)
    for i in range(market.size):
        m = market[i]
        q1, e1, f1 = house_update(
            q[m : m + 1], e[m : m + 1], f[m : m + 1], dq[i : i + 1], px[i : i + 1]
        )
        q[m], e[m], f[m] = q1[0], e1[0], f1[0]
    return q, e, f


def house_reference(qty: F64, entry: F64, funding: F64, dq: F64, px: F64) -> tuple[F64, F64, F64]:
    """:func:`house_update` in numpy (the engine's former code)."""
    q0 = qty
    q1 = q0 + dq
    q1 = np.where(np.abs(q1) < 1e-12, 0.0, q1)
    flip = (q0 == 0.0) | ((q1 != 0.0) & (np.sign(q1) != np.sign(q0)))
    grow = ~flip & (np.abs(q1) > np.abs(q0))
    flat = ~flip & (q1 == 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        avg = (np.abs(q0) * entry + np.abs(dq) * px) / np.abs(q1)
    e = np.where(flip, np.where(q1 != 0.0, px, 0.0), np.where(grow, avg, entry))
    return q1, np.where(flat, 0.0, e), np.where(flip | flat, 0.0, funding)


@njit(cache=True, nogil=True, error_model="numpy")
def add_volume(buy: F64, sell: F64, market: I64, q: F64) -> None:  # pragma: no cover - compiled
    """Add each fill's base quantity ``q`` (signed: > 0 bought) to its market's ``buy`` or
    ``sell`` row, summed per market first in fill order (as ``np.bincount`` does)."""
    n = buy.size
    b, s = np.zeros(n), np.zeros(n)
    for j in range(q.size):
        m = market[j]
        b[m] += max(q[j], 0.0)
        s[m] += max(-q[j], 0.0)
    for m in range(n):
        buy[m] += b[m]
        sell[m] += s[m]


def volume_reference(buy: F64, sell: F64, market: I64, q: F64) -> None:
    """:func:`add_volume` in numpy (the engine's former code)."""
    buy += np.bincount(market, np.maximum(q, 0.0), minlength=buy.size)
    sell += np.bincount(market, np.maximum(-q, 0.0), minlength=buy.size)


@njit(cache=True, nogil=True, error_model="numpy")
def spot_update(
    spot: F64, usd: F64, depth: F64, arb_frac: float, n_v: int, volume: F64
) -> tuple[F64, F64]:  # pragma: no cover - compiled
    """Spot orders ``usd`` consume each venue's depth, then arbitrageurs trade ``arb_frac`` of
    each venue's gap to the asset's mean log price; their base volume is added to ``volume``.

    Markets are ``asset * n_v + venue``. Returns the new spot prices and each market's index
    (the mean of its asset's spot prices across venues).
    """
    n = spot.size
    log_spot = np.empty(n)
    for m in range(n):
        log_spot[m] = np.log(spot[m]) + usd[m] / depth[m]
    new = np.empty(n)
    index = np.empty(n)
    for a0 in range(0, n, n_v):
        mean = 0.0
        for m in range(a0, a0 + n_v):
            mean += log_spot[m]
        mean /= n_v
        px_sum = 0.0
        for m in range(a0, a0 + n_v):
            arb = arb_frac * (mean - log_spot[m])
            volume[m] += (abs(usd[m]) + abs(arb) * depth[m]) / spot[m]
            new[m] = np.exp(log_spot[m] + arb)
            px_sum += new[m]
        for m in range(a0, a0 + n_v):
            index[m] = px_sum / n_v
    return new, index


def spot_reference(
    spot: F64, usd: F64, depth: F64, arb_frac: float, n_v: int, volume: F64
) -> tuple[F64, F64]:
    """:func:`spot_update` in numpy (the engine's former code)."""
    log_spot = np.log(spot) + usd / depth
    grid = log_spot.reshape(-1, n_v)
    arb = arb_frac * (grid.mean(axis=1, keepdims=True) - grid)
    volume += (np.abs(usd) + np.abs(arb.ravel()) * depth) / spot
    new = np.exp((grid + arb).ravel())
    return new, np.repeat(new.reshape(-1, n_v).mean(axis=1), n_v)


@njit(cache=True, nogil=True, error_model="numpy")
def track_levels(
    hi: F64,
    lo: F64,
    mid: F64,
    index_px: F64,
    spot: F64,
    premium_ema: F64,
    last_rate: F64,
    time_left_frac: F64,
    perp_only: bool,
) -> None:  # pragma: no cover - compiled
    """Widen a bar's high ``hi`` and low ``lo`` (rows: perp, mark, index, spot; one column per
    market) with the prices now; the mark as :func:`mark_kernel` computes it. With
    ``perp_only`` only the perp row (the others have not moved)."""
    rows = 1 if perp_only else 4
    for m in range(mid.size):
        mark = _mark_one(index_px[m], mid[m], premium_ema[m], last_rate[m], time_left_frac[m])
        for r in range(rows):
            v = (mid[m], mark, index_px[m], spot[m])[r]
            if v > hi[r, m]:
                hi[r, m] = v
            if v < lo[r, m]:
                lo[r, m] = v


def track_reference(
    hi: F64,
    lo: F64,
    mid: F64,
    index_px: F64,
    spot: F64,
    premium_ema: F64,
    last_rate: F64,
    time_left_frac: F64,
    perp_only: bool,
) -> None:
    """:func:`track_levels` in numpy."""
    from perpscope.sim.market import mark_price

    levels = [mid]
    if not perp_only:
        levels += [
            mark_price(index_px, mid, premium_ema, last_rate, time_left_frac),
            index_px,
            spot,
        ]
    for r, v in enumerate(levels):
        np.maximum(hi[r], v, out=hi[r])
        np.minimum(lo[r], v, out=lo[r])


@njit(cache=True, nogil=True, error_model="numpy")
def premium_update(
    mid: F64,
    index_px: F64,
    premium_ema: F64,
    premium_sum: F64,
    premium_n: F64,
    interval_h: F64,
    premium_out: F64,
    accrual_out: F64,
) -> None:  # pragma: no cover - compiled
    """The step's premium ``mid / index - 1`` into ``premium_out``, its moving average
    (``premium_ema += 0.3 x (premium - premium_ema)``) and the interval's running sum and
    count, all in place; ``accrual_out`` the funding rate of the interval's average so far
    (:func:`perpscope.sim.market.funding_rate`, the same operations)."""
    for m in range(mid.size):
        prem = mid[m] / index_px[m] - 1.0
        premium_ema[m] += 0.3 * (prem - premium_ema[m])
        premium_sum[m] += prem
        premium_n[m] += 1.0
        premium_out[m] = prem
        mean = premium_sum[m] / premium_n[m]
        scale = interval_h[m] / 8.0
        clamp = CLAMP_8H * scale
        cap = CAP_8H * scale
        gap = min(max(INTEREST_8H * scale - mean, -clamp), clamp)
        accrual_out[m] = min(max(mean + gap, -cap), cap)


def premium_reference(
    mid: F64,
    index_px: F64,
    premium_ema: F64,
    premium_sum: F64,
    premium_n: F64,
    interval_h: F64,
    premium_out: F64,
    accrual_out: F64,
) -> None:
    """:func:`premium_update` in numpy (the engine's former code)."""
    from perpscope.sim.market import funding_rate

    prem = mid / index_px - 1.0
    premium_ema += 0.3 * (prem - premium_ema)
    premium_sum += prem
    premium_n += 1.0
    premium_out[:] = prem
    accrual_out[:] = funding_rate(premium_sum / premium_n, interval_h)


@njit(cache=True, nogil=True, error_model="numpy")
def feed_response(
    forced: F64,
    absorb_pending: F64,
    absorb_inv: F64,
    forced_recent: F64,
    scale: F64,
    index_px: F64,
    ema_fast: F64,
    depth: F64,
    n_v: int,
    prm: F64,
) -> tuple[F64, F64]:  # pragma: no cover - compiled
    """The liquidity providers' and opportunistic traders' answer to the step's forced orders.

    ``forced`` per market; ``absorb_pending``, ``absorb_inv``, ``forced_recent``, ``ema_fast``
    per asset (the first three updated in place); ``prm``: absorb share, absorb speed, unwind
    steps, feed memory, feed unit (USD), feed cap, dip threshold, dip boost, dip max. Returns the
    spot order per market (USD) and each market's ``hot`` share (see ``_Engine._respond``).
    """
    share, speed, unwind_steps, memory, unit = prm[0], prm[1], prm[2], prm[3], prm[4]
    cap, threshold, boost, most = prm[5], prm[6], prm[7], prm[8]
    spot_usd = np.empty(forced.size)
    hot = np.empty(forced.size)
    for a in range(absorb_pending.size):
        m0 = a * n_v
        total, total_abs = 0.0, 0.0
        for m in range(m0, m0 + n_v):
            total += forced[m]
            total_abs += abs(forced[m])
        absorb_pending[a] -= share * total
        order = speed * absorb_pending[a]
        absorb_pending[a] -= order
        unwind = absorb_inv[a] / unwind_steps
        absorb_inv[a] += order - unwind
        forced_recent[a] = memory * forced_recent[a] + total_abs / scale[m0]
        heat = min(forced_recent[a] / unit, cap)
        hot_a = min(max((heat - 1.0) / (cap - 1.0), 0.0), 1.0)
        jump = np.log(index_px[m0]) - ema_fast[a]
        excess = np.sign(jump) * max(abs(jump) - threshold, 0.0)
        fade = min(boost * heat, most) * excess
        for m in range(m0, m0 + n_v):
            spot_usd[m] = (order - unwind) / n_v - fade * depth[m]
            hot[m] = hot_a
    return spot_usd, hot


def feed_reference(
    forced: F64,
    absorb_pending: F64,
    absorb_inv: F64,
    forced_recent: F64,
    scale: F64,
    index_px: F64,
    ema_fast: F64,
    depth: F64,
    n_v: int,
    prm: F64,
) -> tuple[F64, F64]:
    """:func:`feed_response` in numpy (the engine's former code)."""
    share, speed, unwind_steps, memory, unit, cap, threshold, boost, most = prm
    n_a = absorb_pending.size
    asset_of = np.repeat(np.arange(n_a), n_v)
    absorb_pending -= share * forced.reshape(n_a, n_v).sum(axis=1)
    order = speed * absorb_pending
    absorb_pending -= order
    unwind = absorb_inv / unwind_steps
    absorb_inv += order - unwind
    spot_usd = np.repeat((order - unwind) / n_v, n_v)
    per_asset = np.abs(forced).reshape(n_a, n_v).sum(axis=1) / scale[::n_v]
    forced_recent[:] = memory * forced_recent + per_asset
    heat = np.minimum(forced_recent / unit, cap)
    hot = np.clip((heat - 1.0) / (cap - 1.0), 0.0, 1.0)[asset_of]
    jump = np.log(index_px[::n_v]) - ema_fast
    excess = np.sign(jump) * np.maximum(np.abs(jump) - threshold, 0.0)
    fade = np.minimum(boost * heat, most) * excess
    spot_usd -= fade[asset_of] * depth
    return spot_usd, hot


@njit(cache=True, nogil=True, error_model="numpy")
def draw_positions(
    u: F64,
    p_long: F64,
    scale: F64,
    mkts: I64,
    prm: F64,
    lev_choices: F64,
    lev_cum: F64,
    mix_cum: F64,
) -> tuple[I64, F64, F64, I64, I64, F64]:  # pragma: no cover - compiled
    """New positions' side, notional (USD), leverage, kind, holding steps and take-profit
    return on margin from uniform (columns 0, 2, 3, 4) and normal (1, 5) draws ``u``.

    ``prm``: log median size (USD), size sigma, size cap (USD), mean holding steps, the
    leverage the mean hold refers to, log median take-profit. ``scale`` per market.
    """
    log_med, sigma, cap, hold_steps, ref_lev, log_tp = (
        prm[0],
        prm[1],
        prm[2],
        prm[3],
        prm[4],
        prm[5],
    )
    n = u.shape[0]
    side = np.empty(n, np.int64)
    notional, lev, roe = np.empty(n), np.empty(n), np.empty(n)
    kinds, hold = np.empty(n, np.int64), np.empty(n, np.int64)
    for i in range(n):
        side[i] = 1 if u[i, 0] < p_long[i] else -1
        notional[i] = min(np.exp(log_med + sigma * u[i, 1]), cap) * scale[mkts[i]]
        lev[i] = lev_choices[np.searchsorted(lev_cum, u[i, 2], side="right")]
        kinds[i] = np.searchsorted(mix_cum, u[i, 3], side="right")
        # the more leverage, the shorter the trade
        hold_mean = hold_steps * (ref_lev / lev[i]) ** 0.75
        hold[i] = 1 + np.int64(-hold_mean * np.log1p(-u[i, 4]))
        roe[i] = np.exp(log_tp + 0.5 * u[i, 5])
    return side, notional, lev, kinds, hold, roe


def draw_reference(
    u: F64,
    p_long: F64,
    scale: F64,
    mkts: I64,
    prm: F64,
    lev_choices: F64,
    lev_cum: F64,
    mix_cum: F64,
) -> tuple[I64, F64, F64, I64, I64, F64]:
    """:func:`draw_positions` in numpy (the engine's former code)."""
    log_med, sigma, cap, hold_steps, ref_lev, log_tp = prm
    side = np.where(u[:, 0] < p_long, 1, -1)
    notional = np.minimum(np.exp(log_med + sigma * u[:, 1]), cap) * scale[mkts]
    lev = lev_choices[np.searchsorted(lev_cum, u[:, 2], side="right")]
    kinds = np.searchsorted(mix_cum, u[:, 3], side="right")
    hold_mean = hold_steps * (ref_lev / lev) ** 0.75
    hold = 1 + (-hold_mean * np.log1p(-u[:, 4])).astype(np.int64)
    roe = np.exp(log_tp + 0.5 * u[:, 5])
    return side, notional, lev, kinds, hold, roe


@njit(cache=True, nogil=True, error_model="numpy")
def close_orders(
    ids: I64, market: I64, side: I64, qty: F64, px: F64, n_m: int
) -> F64:  # pragma: no cover - compiled
    """Per market, the USD order that closes positions ``ids`` at ``px`` (a long sells)."""
    usd = np.zeros(n_m)
    for i in ids:
        m = market[i]
        usd[m] += -(side[i] * qty[i]) * px[m]
    return usd


def close_reference(ids: I64, market: I64, side: I64, qty: F64, px: F64, n_m: int) -> F64:
    """:func:`close_orders` in numpy (the engine's former code)."""
    mk = market[ids]
    q = -(side[ids] * qty[ids])
    return np.bincount(mk, q * px[mk], minlength=n_m).astype(float)


@njit(cache=True, nogil=True, error_model="numpy")
def spot_orders(
    spot: F64,
    index_px: F64,
    news: F64,
    fund: F64,
    activity: F64,
    mom: F64,
    ema_fast: F64,
    noise: F64,
    depth: F64,
    scale: F64,
    shock_usd: float,
    n_v: int,
    prm: F64,
) -> F64:  # pragma: no cover - compiled
    """The step's net spot order per market (USD): news, value, noise, trend and opportunistic
    traders and the scheduled shock (see ``_Engine._spot_orders``).

    ``news`` (as traded), ``fund``, ``activity``, ``mom``, ``ema_fast`` per asset; ``prm``:
    value speed, noise (USD), trend (USD), dip threshold, dip share, the preset's spot depth.
    """
    value_speed, noise_usd, trend_usd = prm[0], prm[1], prm[2]
    threshold, dip_frac, depth_ref = prm[3], prm[4], prm[5]
    out = np.empty(spot.size)
    for m in range(spot.size):
        a = m // n_v
        usd = news[a] * depth[m] / scale[m]
        usd += value_speed * (fund[a] - np.log(spot[m])) * depth[m] / scale[m]
        usd += activity[a] * noise_usd * noise[m]
        usd += trend_usd * mom[a]
        jump = np.log(index_px[a * n_v]) - ema_fast[a]
        excess = np.sign(jump) * max(abs(jump) - threshold, 0.0)
        usd -= dip_frac * excess * depth_ref
        usd += shock_usd / n_v
        out[m] = usd * scale[m]
    return out


def spot_orders_reference(
    spot: F64,
    index_px: F64,
    news: F64,
    fund: F64,
    activity: F64,
    mom: F64,
    ema_fast: F64,
    noise: F64,
    depth: F64,
    scale: F64,
    shock_usd: float,
    n_v: int,
    prm: F64,
) -> F64:
    """:func:`spot_orders` in numpy (the engine's former code)."""
    value_speed, noise_usd, trend_usd, threshold, dip_frac, depth_ref = prm
    a = np.arange(spot.size) // n_v
    usd = news[a] * depth / scale
    usd = usd + value_speed * (fund[a] - np.log(spot)) * depth / scale
    usd = usd + activity[a] * noise_usd * noise
    usd = usd + trend_usd * mom[a]
    jump = np.log(index_px[::n_v]) - ema_fast
    excess = np.sign(jump) * np.maximum(np.abs(jump) - threshold, 0.0)
    usd = usd - (dip_frac * excess * depth_ref)[a]
    usd = usd + shock_usd / n_v
    return np.asarray(usd * scale)


@njit(cache=True, nogil=True, error_model="numpy")
def snap_back(news: F64, traded: F64, speed: float) -> F64:  # pragma: no cover - compiled
    """Each step's news as traded once scalpers take back the news traders' overshoot.

    ``news`` and ``traded`` have shape ``(steps, assets)``; ``traded - news`` is each step's
    overshoot. The overshoot still pending before step ``t`` is ``pending``; in step ``t`` the
    scalpers trade back ``speed x pending`` and the step's own overshoot joins what is left, so
    every overshoot's price effect decays geometrically, ``(1 - speed) ** k`` after ``k`` steps.
    """
    out = np.empty_like(traded)
    pending = np.zeros(traded.shape[1])
    for t in range(traded.shape[0]):
        for a in range(traded.shape[1]):
            back = speed * pending[a]
            out[t, a] = traded[t, a] - back
            pending[a] = pending[a] - back + (traded[t, a] - news[t, a])
    return out


def snap_back_reference(news: F64, traded: F64, speed: float) -> F64:
    """:func:`snap_back` in numpy: the pending overshoot as a running geometric sum."""
    over = traded - news
    pending = np.zeros_like(over)  # pending[t]: what is pending before step t
    for t in range(1, over.shape[0]):
        pending[t] = pending[t - 1] - speed * pending[t - 1] + over[t - 1]
    return np.asarray(traded - speed * pending)


@njit(cache=True, nogil=True, error_model="numpy")
def erfc(x: F64) -> F64:  # pragma: no cover - compiled
    """The complementary error function of each element of a 1-d array: ``math.erfc``
    compiled (the same C library function, so the same bits as :func:`erfc_reference`) without
    a Python call per element. The options market's normal CDF (:mod:`perpscope.sim.options`)."""
    out = np.empty(x.size)
    for i in range(x.size):
        out[i] = math.erfc(x[i])
    return out


def erfc_reference(x: F64) -> F64:
    """What :func:`erfc` replaces: ``math.erfc`` applied one element at a time."""
    return np.asarray(np.frompyfunc(math.erfc, 1, 1)(x), dtype=np.float64)


@njit(cache=True, nogil=True, error_model="numpy")
def mark_hit(
    index_px: F64,
    last_px: F64,
    premium_ema: F64,
    last_rate: F64,
    time_left_frac: F64,
    thr_long: F64,
    thr_short: F64,
) -> tuple[F64, bool]:  # pragma: no cover - compiled
    """The mark price of every market (:func:`mark_kernel`) and whether it reached a market's
    liquidation threshold (``mark <= thr_long`` or ``mark >= thr_short``) anywhere."""
    mark = np.empty(index_px.size)
    hit = False
    for m in range(index_px.size):
        px = _mark_one(index_px[m], last_px[m], premium_ema[m], last_rate[m], time_left_frac[m])
        mark[m] = px
        if px <= thr_long[m] or px >= thr_short[m]:
            hit = True
    return mark, hit


def mark_hit_reference(
    index_px: F64,
    last_px: F64,
    premium_ema: F64,
    last_rate: F64,
    time_left_frac: F64,
    thr_long: F64,
    thr_short: F64,
) -> tuple[F64, bool]:
    """:func:`mark_hit` in numpy (the engine's former code)."""
    from perpscope.sim.market import mark_price

    mark = mark_price(index_px, last_px, premium_ema, last_rate, time_left_frac)
    return mark, bool(((mark <= thr_long) | (mark >= thr_short)).any())


@njit(cache=True, nogil=True, error_model="numpy")
def bar_open(
    ohlc: F64,
    t: int,
    hi: F64,
    lo: F64,
    mid: F64,
    index_px: F64,
    spot: F64,
    premium_ema: F64,
    last_rate: F64,
    time_left_frac: F64,
) -> None:  # pragma: no cover - compiled
    """Open step ``t``'s bar: the four prices now (perp, mark as :func:`mark_kernel`, index,
    spot) are the bar's open ``ohlc[4 r, t]`` and its high ``hi[r]`` and low ``lo[r]`` so far.

    ``ohlc`` has shape ``(16, steps, markets)``: rows ``4 r + j`` for price ``r`` and ``j`` in
    open, high, low, close."""
    for m in range(mid.size):
        mark = _mark_one(index_px[m], mid[m], premium_ema[m], last_rate[m], time_left_frac[m])
        for r in range(4):
            v = (mid[m], mark, index_px[m], spot[m])[r]
            ohlc[4 * r, t, m] = v
            hi[r, m] = v
            lo[r, m] = v


@njit(cache=True, nogil=True, error_model="numpy")
def bar_close(
    ohlc: F64,
    t: int,
    hi: F64,
    lo: F64,
    mid: F64,
    index_px: F64,
    spot: F64,
    premium_ema: F64,
    last_rate: F64,
    time_left_frac: F64,
) -> None:  # pragma: no cover - compiled
    """Close step ``t``'s bar: the four prices now are its close, ``hi`` and ``lo`` its high and
    low (rows of ``ohlc`` as in :func:`bar_open`)."""
    for m in range(mid.size):
        mark = _mark_one(index_px[m], mid[m], premium_ema[m], last_rate[m], time_left_frac[m])
        for r in range(4):
            ohlc[4 * r + 3, t, m] = (mid[m], mark, index_px[m], spot[m])[r]
            ohlc[4 * r + 1, t, m] = hi[r, m]
            ohlc[4 * r + 2, t, m] = lo[r, m]


def bar_open_reference(
    ohlc: F64,
    t: int,
    hi: F64,
    lo: F64,
    mid: F64,
    index_px: F64,
    spot: F64,
    premium_ema: F64,
    last_rate: F64,
    time_left_frac: F64,
) -> None:
    """:func:`bar_open` in numpy (the engine's former code)."""
    from perpscope.sim.market import mark_price

    mark = mark_price(index_px, mid, premium_ema, last_rate, time_left_frac)
    for r, v in enumerate((mid, mark, index_px, spot)):
        ohlc[4 * r, t] = v
        hi[r] = v
        lo[r] = v


def bar_close_reference(
    ohlc: F64,
    t: int,
    hi: F64,
    lo: F64,
    mid: F64,
    index_px: F64,
    spot: F64,
    premium_ema: F64,
    last_rate: F64,
    time_left_frac: F64,
) -> None:
    """:func:`bar_close` in numpy (the engine's former code)."""
    from perpscope.sim.market import mark_price

    mark = mark_price(index_px, mid, premium_ema, last_rate, time_left_frac)
    for r, v in enumerate((mid, mark, index_px, spot)):
        ohlc[4 * r + 3, t] = v
        ohlc[4 * r + 1, t] = hi[r]
        ohlc[4 * r + 2, t] = lo[r]


@njit(cache=True, nogil=True, error_model="numpy")
def close_fills(
    ids: I64, market: I64, side: I64, qty: F64, fill: F64, buy: F64, sell: F64, dq: F64
) -> F64:  # pragma: no cover - compiled
    """Positions ``ids`` close at their market's ``fill``: their base quantity
    ``-(side x qty)`` is added to the ``buy``/``sell`` volume (as :func:`add_volume`) and,
    summed per market in order (as ``np.bincount``), taken from the market maker's ``dq``.
    Returns each position's fill price."""
    n = buy.size
    b, s, net = np.zeros(n), np.zeros(n), np.zeros(n)
    px = np.empty(ids.size)
    for j in range(ids.size):
        i = ids[j]
        m = market[i]
        q = -(side[i] * qty[i])
        px[j] = fill[m]
        b[m] += max(q, 0.0)
        s[m] += max(-q, 0.0)
        net[m] += q
    for m in range(n):
        buy[m] += b[m]
        sell[m] += s[m]
        dq[m] -= net[m]
    return px


def close_fills_reference(
    ids: I64, market: I64, side: I64, qty: F64, fill: F64, buy: F64, sell: F64, dq: F64
) -> F64:
    """:func:`close_fills` in numpy (the engine's former code)."""
    mk = market[ids]
    q = -(side[ids] * qty[ids]).astype(float)
    volume_reference(buy, sell, mk, q)
    dq -= np.bincount(mk, q, minlength=dq.size)
    return np.asarray(fill[mk])


@njit(cache=True, nogil=True, error_model="numpy")
def open_fills(
    mkts: I64,
    side: I64,
    qty: F64,
    liq: F64,
    thr_long: F64,
    thr_short: F64,
    buy: F64,
    sell: F64,
    dq: F64,
) -> None:  # pragma: no cover - compiled
    """New positions (market ``mkts``, ``side``, ``qty``, liquidation price ``liq``) filled:
    each market's nearest liquidation thresholds widen to a new long's price (``thr_long``, the
    highest) and a new short's positive one (``thr_short``, the lowest); the base quantities
    ``side x qty`` go to the ``buy``/``sell`` volume (as :func:`add_volume`) and, summed per
    market in order, are taken from the market maker's ``dq``."""
    n = buy.size
    b, s, net = np.zeros(n), np.zeros(n), np.zeros(n)
    for j in range(mkts.size):
        m = mkts[j]
        px = liq[j]
        if side[j] > 0:
            if px > thr_long[m]:
                thr_long[m] = px
        elif px > 0.0 and px < thr_short[m]:
            thr_short[m] = px
        q = side[j] * qty[j]
        b[m] += max(q, 0.0)
        s[m] += max(-q, 0.0)
        net[m] += q
    for m in range(n):
        buy[m] += b[m]
        sell[m] += s[m]
        dq[m] -= net[m]


def open_fills_reference(
    mkts: I64,
    side: I64,
    qty: F64,
    liq: F64,
    thr_long: F64,
    thr_short: F64,
    buy: F64,
    sell: F64,
    dq: F64,
) -> None:
    """:func:`open_fills` in numpy (the engine's former code)."""
    lo = side > 0
    np.maximum.at(thr_long, mkts[lo], liq[lo])
    sl = ~lo & (liq > 0)
    np.minimum.at(thr_short, mkts[sl], liq[sl])
    q = side * qty
    volume_reference(buy, sell, mkts, np.asarray(q, float))
    dq -= np.bincount(mkts, q, minlength=dq.size)


@njit(cache=True, nogil=True, error_model="numpy")
def step_news(
    last_ret: F64,
    abs_ret_ema: F64,
    activity: F64,
    activity_now: float,
    fund: F64,
    news: F64,
    shock: float,
    drift: float,
    ema_fast: F64,
    ema_slow: F64,
) -> F64:  # pragma: no cover - compiled
    """The start of a step, per asset, in place: the running mean absolute return
    (``+= (|last_ret| - abs_ret_ema) / 2016``), the activity (``activity_now`` everywhere), the
    fundamental (``+= news + shock``, then ``+= drift`` unless ``drift`` is 0). Returns the
    trend signal's argument ``(ema_fast - ema_slow) / 0.01`` (its ``tanh`` is numpy's)."""
    out = np.empty(fund.size)
    for a in range(fund.size):
        abs_ret_ema[a] += (abs(last_ret[a]) - abs_ret_ema[a]) / 2016.0
        activity[a] = activity_now
        fund[a] += news[a] + shock
        if drift != 0.0:
            fund[a] += drift
        out[a] = (ema_fast[a] - ema_slow[a]) / 0.01
    return out


def step_news_reference(
    last_ret: F64,
    abs_ret_ema: F64,
    activity: F64,
    activity_now: float,
    fund: F64,
    news: F64,
    shock: float,
    drift: float,
    ema_fast: F64,
    ema_slow: F64,
) -> F64:
    """:func:`step_news` in numpy (the engine's former code)."""
    abs_ret_ema += (np.abs(last_ret) - abs_ret_ema) / 2016.0
    activity[:] = np.full(activity.size, activity_now)
    fund += news + shock
    if drift:
        fund += drift
    return np.asarray((ema_fast - ema_slow) / 0.01)


@njit(cache=True, nogil=True, error_model="numpy")
def step_moods(
    sentiment: F64,
    rho: float,
    mom_weight: float,
    mom: F64,
    kick: F64,
    quote_noise: F64,
    q_rho: float,
    quote_kick: F64,
    depth_mult: F64,
    refill: float,
) -> None:  # pragma: no cover - compiled
    """The step's persistent moods, in place: per asset the sentiment
    (``rho x sentiment + mom_weight x mom``, then ``+= kick``); per market the quoting noise
    (``q_rho x quote_noise + quote_kick``) and the book's depth refilling toward 1
    (``+= refill x (1 - depth_mult)``)."""
    for a in range(sentiment.size):
        sentiment[a] = rho * sentiment[a] + mom_weight * mom[a]
        sentiment[a] += kick[a]
    for m in range(quote_noise.size):
        quote_noise[m] = q_rho * quote_noise[m] + quote_kick[m]
        depth_mult[m] += refill * (1.0 - depth_mult[m])


def step_moods_reference(
    sentiment: F64,
    rho: float,
    mom_weight: float,
    mom: F64,
    kick: F64,
    quote_noise: F64,
    q_rho: float,
    quote_kick: F64,
    depth_mult: F64,
    refill: float,
) -> None:
    """:func:`step_moods` in numpy (the engine's former code)."""
    sentiment[:] = rho * sentiment + mom_weight * mom
    sentiment += kick
    quote_noise[:] = q_rho * quote_noise + quote_kick
    depth_mult += refill * (1.0 - depth_mult)


@njit(cache=True, nogil=True, error_model="numpy")
def step_end(
    log_idx: F64, log_idx0: F64, last_ret: F64, ema_fast: F64, ema_slow: F64, hour_ago: F64
) -> None:  # pragma: no cover - compiled
    """The end of a step, per asset, in place from the log index now ``log_idx`` and at the
    step's start ``log_idx0``: the step's return ``last_ret``, the fast (12 steps) and slow (288
    steps) moving averages, and ``hour_ago`` (the ring buffer's row for this step)."""
    for a in range(log_idx.size):
        x = log_idx[a]
        last_ret[a] = x - log_idx0[a]
        ema_fast[a] += (x - ema_fast[a]) / 12.0
        ema_slow[a] += (x - ema_slow[a]) / 288.0
        hour_ago[a] = x


def step_end_reference(
    log_idx: F64, log_idx0: F64, last_ret: F64, ema_fast: F64, ema_slow: F64, hour_ago: F64
) -> None:
    """:func:`step_end` in numpy (the engine's former code)."""
    last_ret[:] = log_idx - log_idx0
    ema_fast += (log_idx - ema_fast) / 12.0
    ema_slow += (log_idx - ema_slow) / 288.0
    hour_ago[:] = log_idx


@njit(cache=True, nogil=True, error_model="numpy")
def open_move(
    log_idx: F64, hour_ago: F64, abs_ret_ema: F64, sqrt_hour: float, oi_beta: float
) -> F64:  # pragma: no cover - compiled
    """Per asset, ``oi_beta x`` the last hour's log move in units of its normal size
    (``abs_ret_ema x sqrt_hour``), clipped to +-4: the exponent of the openers' rate (its
    ``exp`` is numpy's)."""
    out = np.empty(log_idx.size)
    for a in range(log_idx.size):
        move = (log_idx[a] - hour_ago[a]) / (abs_ret_ema[a] * sqrt_hour)
        out[a] = oi_beta * min(max(move, -4.0), 4.0)
    return out


def open_move_reference(
    log_idx: F64, hour_ago: F64, abs_ret_ema: F64, sqrt_hour: float, oi_beta: float
) -> F64:
    """:func:`open_move` in numpy (the engine's former code)."""
    r1h = log_idx - hour_ago
    return np.asarray(oi_beta * np.clip(r1h / (abs_ret_ema * sqrt_hour), -4.0, 4.0))


@njit(cache=True, nogil=True, error_model="numpy")
def long_share(sentiment: F64, asset_of: I64, mkts: I64, bias: float) -> F64:  # pragma: no cover
    """Per new position (in market ``mkts``), its asset's ``sentiment + bias``: the argument of
    the long share's ``tanh`` (numpy's)."""
    out = np.empty(mkts.size)
    for j in range(mkts.size):
        out[j] = sentiment[asset_of[mkts[j]]] + bias
    return out


def long_share_reference(sentiment: F64, asset_of: I64, mkts: I64, bias: float) -> F64:
    """:func:`long_share` in numpy (the engine's former code)."""
    return np.asarray(sentiment[asset_of[mkts]] + bias)


@njit(cache=True, nogil=True, error_model="numpy")
def long_prob(tanh_arg: F64, bias: float) -> F64:  # pragma: no cover - compiled
    """The probability that a new position is long: ``0.5 + 0.5 x tanh_arg + bias`` (with
    ``tanh_arg`` the tanh of :func:`long_share`), kept within [0.02, 0.98]."""
    out = np.empty(tanh_arg.size)
    for j in range(tanh_arg.size):
        out[j] = min(max(0.5 + 0.5 * tanh_arg[j] + bias, 0.02), 0.98)
    return out


def long_prob_reference(tanh_arg: F64, bias: float) -> F64:
    """:func:`long_prob` in numpy (the engine's former code)."""
    return np.asarray(np.clip(0.5 + 0.5 * tanh_arg + bias, 0.02, 0.98))


@njit(cache=True, nogil=True, error_model="numpy")
def add_orders(usd: F64, mkts: I64, side: I64, notional: F64) -> None:  # pragma: no cover
    """Add new positions' orders ``side x notional`` (USD) to their market's ``usd``, summed
    per market in order first (as ``np.bincount``)."""
    net = np.zeros(usd.size)
    for j in range(mkts.size):
        net[mkts[j]] += side[j] * notional[j]
    for m in range(usd.size):
        usd[m] += net[m]


def add_orders_reference(usd: F64, mkts: I64, side: I64, notional: F64) -> None:
    """:func:`add_orders` in numpy (the engine's former code)."""
    usd += np.bincount(mkts, side * notional, minlength=usd.size)


@njit(cache=True, nogil=True, error_model="numpy")
def requote_px(
    house_qty: F64,
    mid: F64,
    depth: F64,
    index_px: F64,
    quote_noise: F64,
    mm_skew: float,
    premium: float,
    add_premium: bool,
) -> F64:  # pragma: no cover - compiled
    """The market maker's fair quote per market, ``index x (1 + skew + quote_noise)``: the skew
    ``-mm_skew x house_qty x mid / depth`` within +-2%, plus ``premium`` if ``add_premium``
    (its ``log`` is numpy's)."""
    out = np.empty(mid.size)
    for m in range(mid.size):
        skew = min(max(-mm_skew * house_qty[m] * mid[m] / depth[m], -0.02), 0.02)
        if add_premium:
            skew = skew + premium
        out[m] = index_px[m] * (1.0 + skew + quote_noise[m])
    return out


def requote_px_reference(
    house_qty: F64,
    mid: F64,
    depth: F64,
    index_px: F64,
    quote_noise: F64,
    mm_skew: float,
    premium: float,
    add_premium: bool,
) -> F64:
    """:func:`requote_px` in numpy (the engine's former code)."""
    skew = np.clip(-mm_skew * house_qty * mid / depth, -0.02, 0.02)
    if add_premium:
        skew = skew + premium
    return np.asarray(index_px * (1.0 + skew + quote_noise))


@njit(cache=True, nogil=True, error_model="numpy")
def recentre(log_mid: F64, target: F64, speed: float) -> F64:  # pragma: no cover - compiled
    """The log mid moved ``speed`` of the way to the log quote ``target``:
    ``log_mid + speed x (target - log_mid)`` (its ``exp`` is numpy's)."""
    out = np.empty(log_mid.size)
    for m in range(log_mid.size):
        out[m] = log_mid[m] + speed * (target[m] - log_mid[m])
    return out


def recentre_reference(log_mid: F64, target: F64, speed: float) -> F64:
    """:func:`recentre` in numpy (the engine's former code)."""
    return np.asarray(log_mid + speed * (target - log_mid))


@njit(cache=True, nogil=True, error_model="numpy")
def pay_funding(
    open_idx: I64,
    market: I64,
    side: I64,
    qty: F64,
    funding: F64,
    on: B,
    mark: F64,
    rate: F64,
    interval_h: F64,
    funding_exit: float,
) -> tuple[I64, F64]:  # pragma: no cover - compiled
    """Funding settles on the markets ``on``: each open position there pays
    ``side x qty x mark x rate`` (added to its ``funding``). Returns those positions (in
    ``open_idx`` order) and the probability that each closes,
    ``funding_exit x (r8 - 1e-4) / 1e-3`` within [0, 0.5], ``r8`` the 8h-equivalent rate it
    paid, ``side x rate x 8 / interval_h``."""
    ids = np.empty(open_idx.size, np.int64)
    p_exit = np.empty(open_idx.size)
    k = 0
    for i in open_idx:
        m = market[i]
        if not on[m]:
            continue
        funding[i] += side[i] * qty[i] * mark[m] * rate[m]
        r8 = side[i] * rate[m] * 8.0 / interval_h[m]
        ids[k] = i
        p_exit[k] = min(max(funding_exit * (r8 - 1e-4) / 1e-3, 0.0), 0.5)
        k += 1
    return ids[:k], p_exit[:k]


def pay_funding_reference(
    open_idx: I64,
    market: I64,
    side: I64,
    qty: F64,
    funding: F64,
    on: B,
    mark: F64,
    rate: F64,
    interval_h: F64,
    funding_exit: float,
) -> tuple[I64, F64]:
    """:func:`pay_funding` in numpy (the engine's former code)."""
    ids = open_idx[on[market[open_idx]]]
    mk = market[ids]
    paid = side[ids] * qty[ids] * mark[mk] * rate[mk]
    funding[ids] += paid
    r8_paid = side[ids] * rate[mk] * 8.0 / interval_h[mk]
    return ids, np.asarray(np.clip(funding_exit * (r8_paid - 1e-4) / 1e-3, 0.0, 0.5))
