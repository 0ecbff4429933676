"""The backtest kernel: one path-dependent pass over the bars, compiled with numba.

Rules (the plain-Python oracle in :mod:`perpscope.backtest.reference` implements the same ones;
``docs/backtest.md`` states them for users):

* A strategy decides at each bar's close; orders fill on the **next bar**: market entries at its
  open (adverse slippage, taker fee), limit entries at the limit (maker fee) when the bar reaches
  it, or at the open when the open is already through the limit (taker, no slippage). An entry is
  taken only when flat. The exit signal and the time stop close at the next open (taker).
* Size: ``qty = equity * risk_frac * size / (fill * stop_frac)``, capped at
  ``equity * leverage / fill`` (``size`` is the signal's size multiple of that bar, 1 by default;
  0 places no order).
* Inside each bar, in this order: liquidation on the mark price (isolated margin; the liquidation
  price comes from :mod:`perpscope.risk`) unless the stop lies before it; the stop (fills at the
  stop, or at the open on a gap, with slippage); the targets T1..T3 (limit fills, maker fee),
  scaling out 40/30/30 by default. **Conservative rule:** when the stop and a target are both
  touched in one bar, the stop is taken first and the target is not (the trade records
  ``stop_first``). After T1 the stop moves to the entry price from the next bar on.
* **Funding:** every settlement is a cash flow ``-side * qty * price * rate`` at its own
  timestamp (negative = paid; a long pays a positive rate). A settlement exactly at a bar's open
  is paid by the position held into that open (before the open's fills: an exit at that open
  pays it, an entry at that open does not); a settlement strictly inside a bar is paid by the
  position open after the open's fills (intra-bar exits count as after it). The price is the
  mark open for a settlement at the open, the mark close for one inside the bar.
* The exit signal closes any position; the side-specific exit (``exit_side``) only a position of
  that side.
* A position still open at the last bar is closed at its close (taker, slippage).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit, prange

from perpscope.backtest.types import (
    TRADE_COLUMNS,
    BacktestRun,
    EngineConfig,
    Market,
    Signals,
    liquidation_ratios,
)

__all__ = ["run_backtest", "sweep"]

_NCOL = len(TRADE_COLUMNS)
R_STOP, R_BE, R_TARGET, R_SIGNAL, R_TIME, R_LIQ, R_END = 0, 1, 2, 3, 4, 5, 6
_EPS = 1e-12


@njit(cache=True)
def _kernel(  # type: ignore[no-untyped-def]
    ts, o, h, l, c, mo, mh, ml, mc, cascade,  # noqa: E741
    fts, frate,
    entry, exit_sig, stop_frac, targets_r, entry_limit, size, exit_side,
    equity0, risk_frac, leverage, liq_long, liq_short, taker, maker, slip, cslip,
    so0, so1, so2, breakeven, time_stop,
):  # fmt: skip
    n = ts.shape[0]
    nf = fts.shape[0]
    trades = np.empty((n + 1, 14))
    equity = np.empty(n)
    ntr = 0
    cash = equity0
    so = np.array([so0, so1, so2])
    # position state
    side = 0
    q_init = 0.0
    q_open = 0.0
    e_px = 0.0
    e_bar = 0
    stop_px = 0.0
    risk_usd = 0.0
    liq_px = 0.0
    t_px = np.full(3, np.nan)
    t_done = np.zeros(3, np.bool_)
    be_pending = False
    be_active = False
    gross = 0.0
    fund = 0.0
    fees = 0.0
    x_val = 0.0
    x_qty = 0.0
    reason = 0
    stop_first = 0.0
    # orders decided at the previous close
    p_side = 0
    p_stop = 0.0
    p_size = 1.0
    p_lim = np.nan
    p_t = np.full(3, np.nan)
    p_exit = False
    p_reason = 0
    fp = 0
    if n > 0:
        while fp < nf and fts[fp] < ts[0]:
            fp += 1
    for i in range(n):
        s_i = slip + (cslip if cascade[i] else 0.0)
        if i + 1 < n:
            next_ts = ts[i + 1]
        elif n > 1:
            next_ts = ts[i] + (ts[i] - ts[i - 1])
        else:
            next_ts = ts[i] + 1
        close_now = False
        # 1. settlements at the open, paid by the position held into it
        while fp < nf and fts[fp] == ts[i]:
            if side != 0:
                cf = -side * q_open * mo[i] * frate[fp]
                cash += cf
                fund += cf
            fp += 1
        # 2. fills at the open
        if side != 0 and p_exit:
            px = o[i] * (1.0 - side * s_i)
            fee = -taker * q_open * px
            pnl = side * q_open * (px - e_px)
            cash += pnl + fee
            gross += pnl
            fees += fee
            x_val += q_open * px
            x_qty += q_open
            q_open = 0.0
            reason = p_reason
            close_now = True
        if close_now:
            trades[ntr, 0] = e_bar
            trades[ntr, 1] = i
            trades[ntr, 2] = side
            trades[ntr, 3] = e_px
            trades[ntr, 4] = x_val / x_qty
            trades[ntr, 5] = q_init
            trades[ntr, 6] = gross
            trades[ntr, 7] = fund
            trades[ntr, 8] = fees
            trades[ntr, 9] = gross + fund + fees
            trades[ntr, 10] = risk_usd
            trades[ntr, 11] = (gross + fund + fees) / risk_usd
            trades[ntr, 12] = reason
            trades[ntr, 13] = stop_first
            ntr += 1
            side = 0
            close_now = False
        p_exit = False
        if side == 0 and p_side != 0:
            fill = np.nan
            fee_rate = taker
            if math.isnan(p_lim):
                fill = o[i] * (1.0 + p_side * s_i)
            elif p_side * (p_lim - o[i]) >= 0.0:
                fill = o[i]
            elif (p_side > 0 and l[i] <= p_lim) or (p_side < 0 and h[i] >= p_lim):
                fill = p_lim
                fee_rate = maker
            if not math.isnan(fill) and cash > 0.0:
                dist = fill * p_stop
                qty = cash * risk_frac * p_size / dist
                cap = cash * leverage / fill
                if qty > cap:
                    qty = cap
                side = p_side
                q_init = qty
                q_open = qty
                e_px = fill
                e_bar = i
                stop_px = fill - side * dist
                risk_usd = qty * dist
                liq_px = fill * (liq_long if side > 0 else liq_short)
                for k in range(3):
                    t_px[k] = fill + side * p_t[k] * dist
                    t_done[k] = False
                be_pending = False
                be_active = False
                gross = 0.0
                fund = 0.0
                fee = -fee_rate * qty * fill
                fees = fee
                cash += fee
                x_val = 0.0
                x_qty = 0.0
                stop_first = 0.0
        p_side = 0
        # 3. settlements inside the bar, paid by the position open after the open's fills
        while fp < nf and fts[fp] < next_ts:
            if side != 0:
                cf = -side * q_open * mc[i] * frate[fp]
                cash += cf
                fund += cf
            fp += 1
        # 4. liquidation, stop, targets inside the bar
        if side != 0:
            if side > 0:
                liq_hit = ml[i] <= liq_px
                stop_hit = l[i] <= stop_px
            else:
                liq_hit = mh[i] >= liq_px
                stop_hit = h[i] >= stop_px
            if liq_hit and (
                (not stop_hit) or side * (stop_px - liq_px) <= 0.0 or side * (mo[i] - liq_px) <= 0.0
            ):
                px = liq_px
                fee = -taker * q_open * px
                pnl = side * q_open * (px - e_px)
                cash += pnl + fee
                gross += pnl
                fees += fee
                x_val += q_open * px
                x_qty += q_open
                q_open = 0.0
                reason = R_LIQ
                close_now = True
            elif stop_hit:
                for k in range(3):
                    if (not t_done[k] and not math.isnan(t_px[k])) and (
                        (side > 0 and h[i] >= t_px[k]) or (side < 0 and l[i] <= t_px[k])
                    ):
                        stop_first = 1.0
                base = stop_px if side * (o[i] - stop_px) > 0.0 else o[i]
                px = base * (1.0 - side * s_i)
                fee = -taker * q_open * px
                pnl = side * q_open * (px - e_px)
                cash += pnl + fee
                gross += pnl
                fees += fee
                x_val += q_open * px
                x_qty += q_open
                q_open = 0.0
                reason = R_BE if be_active else R_STOP
                close_now = True
            else:
                for k in range(3):
                    if t_done[k] or math.isnan(t_px[k]) or q_open <= 0.0:
                        continue
                    if (side > 0 and h[i] >= t_px[k]) or (side < 0 and l[i] <= t_px[k]):
                        px = o[i] if side * (o[i] - t_px[k]) >= 0.0 else t_px[k]
                        q = so[k] * q_init
                        if k == 2 or q > q_open:
                            q = q_open
                        fee = -maker * q * px
                        pnl = side * q * (px - e_px)
                        cash += pnl + fee
                        gross += pnl
                        fees += fee
                        x_val += q * px
                        x_qty += q
                        q_open -= q
                        t_done[k] = True
                        if k == 0 and breakeven:
                            be_pending = True
                    else:
                        break
                if q_open <= q_init * _EPS:
                    q_open = 0.0
                    reason = R_TARGET
                    close_now = True
        # 5. the close
        if side != 0 and not close_now and i == n - 1:
            px = c[i] * (1.0 - side * s_i)
            fee = -taker * q_open * px
            pnl = side * q_open * (px - e_px)
            cash += pnl + fee
            gross += pnl
            fees += fee
            x_val += q_open * px
            x_qty += q_open
            q_open = 0.0
            reason = R_END
            close_now = True
        if close_now:
            trades[ntr, 0] = e_bar
            trades[ntr, 1] = i
            trades[ntr, 2] = side
            trades[ntr, 3] = e_px
            trades[ntr, 4] = x_val / x_qty
            trades[ntr, 5] = q_init
            trades[ntr, 6] = gross
            trades[ntr, 7] = fund
            trades[ntr, 8] = fees
            trades[ntr, 9] = gross + fund + fees
            trades[ntr, 10] = risk_usd
            trades[ntr, 11] = (gross + fund + fees) / risk_usd
            trades[ntr, 12] = reason
            trades[ntr, 13] = stop_first
            ntr += 1
            side = 0
        if side != 0:
            if be_pending:
                stop_px = e_px
                be_pending = False
                be_active = True
            if exit_sig[i] or exit_side[i] == side:
                p_exit = True
                p_reason = R_SIGNAL
            elif time_stop > 0 and i - e_bar + 1 >= time_stop:
                p_exit = True
                p_reason = R_TIME
            equity[i] = cash + side * q_open * (c[i] - e_px)
        else:
            equity[i] = cash
            sf = stop_frac[i]
            if i + 1 < n and entry[i] != 0 and sf > 0.0 and sf < 1.0 and size[i] > 0.0:
                p_side = entry[i]
                p_stop = sf
                p_size = size[i]
                p_lim = entry_limit[i]
                for k in range(3):
                    p_t[k] = targets_r[i, k]
    return trades[:ntr], equity, cash


def run_backtest(market: Market, signals: Signals, config: EngineConfig) -> BacktestRun:
    """Run one backtest with the numba kernel (rules in the module docstring).

    Raises:
        ValueError: inconsistent inputs (see the ``validate`` methods).
    """
    market.validate()
    signals.validate(len(market.ts))
    config.validate()
    liq_long, liq_short = liquidation_ratios(config)
    trades, equity, cash = _kernel(
        market.ts, market.o, market.h, market.l, market.c,
        market.mark_o, market.mark_h, market.mark_l, market.mark_c, market.cascade,
        market.funding_ts, market.funding_rate,
        np.asarray(signals.entry, np.int8), np.asarray(signals.exit, np.bool_),
        np.asarray(signals.stop_frac, np.float64),
        np.ascontiguousarray(signals.targets_r, np.float64),
        np.asarray(signals.entry_limit, np.float64), signals.sizes(), signals.exit_sides(),
        float(config.initial_equity), float(config.risk_frac), float(config.leverage),
        liq_long, liq_short, float(config.taker_fee), float(config.maker_fee),
        float(config.slippage), float(config.cascade_slippage),
        float(config.scale_out[0]), float(config.scale_out[1]), float(config.scale_out[2]),
        bool(config.breakeven_after_t1), int(config.time_stop_bars),
    )  # fmt: skip
    return BacktestRun(trades, equity, market.ts, config.initial_equity, float(cash))


@njit(cache=True, parallel=True)
def _sweep(  # type: ignore[no-untyped-def]
    ts, o, h, l, c, mo, mh, ml, mc, cascade,  # noqa: E741
    fts, frate, entries, exits, sig_idx, stops, targets,
    equity0, risk_frac, leverage, liq_long, liq_short, taker, maker, slip, cslip,
    so0, so1, so2, breakeven, time_stop,
):  # fmt: skip
    m = sig_idx.shape[0]
    n = ts.shape[0]
    final = np.zeros(m)
    count = np.zeros(m, np.int64)
    for j in prange(m):
        stop = np.full(n, stops[j])
        tgt = np.empty((n, 3))
        for i in range(n):
            tgt[i, 0] = targets[j, 0]
            tgt[i, 1] = targets[j, 1]
            tgt[i, 2] = targets[j, 2]
        trades, _, cash = _kernel(
            ts, o, h, l, c, mo, mh, ml, mc, cascade, fts, frate,
            entries[sig_idx[j]], exits[sig_idx[j]], stop, tgt, np.full(n, np.nan), np.ones(n),
            np.zeros(n, np.int8),
            equity0, risk_frac, leverage, liq_long, liq_short, taker, maker, slip, cslip,
            so0, so1, so2, breakeven, time_stop,
        )  # fmt: skip
        final[j] = cash
        count[j] = trades.shape[0]
    return final, count


def sweep(
    market: Market,
    entries: npt.NDArray[np.int8],
    exits: npt.NDArray[np.bool_],
    signal_index: npt.NDArray[np.int64],
    stop_frac: npt.NDArray[np.float64],
    targets_r: npt.NDArray[np.float64],
    config: EngineConfig,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Final equity and trade count of many parameter combinations, in parallel.

    Combination ``j`` uses the entry/exit rows ``entries[signal_index[j]]``,
    ``exits[signal_index[j]]``, a constant stop ``stop_frac[j]`` and targets ``targets_r[j]``
    (shape (m, 3)); each runs the same kernel as :func:`run_backtest` (market entries).
    """
    market.validate()
    config.validate()
    liq_long, liq_short = liquidation_ratios(config)
    final, count = _sweep(
        market.ts, market.o, market.h, market.l, market.c,
        market.mark_o, market.mark_h, market.mark_l, market.mark_c, market.cascade,
        market.funding_ts, market.funding_rate,
        np.ascontiguousarray(entries, np.int8), np.ascontiguousarray(exits, np.bool_),
        np.asarray(signal_index, np.int64), np.asarray(stop_frac, np.float64),
        np.ascontiguousarray(targets_r, np.float64),
        float(config.initial_equity), float(config.risk_frac), float(config.leverage),
        liq_long, liq_short, float(config.taker_fee), float(config.maker_fee),
        float(config.slippage), float(config.cascade_slippage),
        float(config.scale_out[0]), float(config.scale_out[1]), float(config.scale_out[2]),
        bool(config.breakeven_after_t1), int(config.time_stop_bars),
    )  # fmt: skip
    return final, count
