"""Plain-Python reference implementation of the engine's rules: the test oracle.

Written for clarity, not speed: a :class:`_Position` object, one method per event. It must agree
with :func:`perpscope.backtest.engine.run_backtest` trade for trade (the tests check it on random
markets and strategies and on real data). The rules are in the engine's module docstring.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from perpscope.backtest.types import (
    EXIT_REASONS,
    TRADE_COLUMNS,
    BacktestRun,
    EngineConfig,
    Market,
    Signals,
    liquidation_ratios,
)

__all__ = ["run_reference"]


@dataclass
class _Position:
    side: int
    qty_initial: float
    entry_px: float
    entry_bar: int
    stop_px: float
    risk_usd: float
    liq_px: float
    targets: list[float]
    qty: float = 0.0
    filled_targets: set[int] = field(default_factory=set)
    breakeven_next_bar: bool = False
    at_breakeven: bool = False
    gross: float = 0.0
    funding: float = 0.0
    fees: float = 0.0
    exit_value: float = 0.0
    exit_qty: float = 0.0
    stop_first: bool = False


class _Account:
    def __init__(self, market: Market, signals: Signals, config: EngineConfig) -> None:
        self.m = market
        self.s = signals
        self.cfg = config
        self.liq = liquidation_ratios(config)
        self.cash = config.initial_equity
        self.pos: _Position | None = None
        self.trades: list[list[float]] = []

    def slip(self, i: int) -> float:
        return self.cfg.slippage + (self.cfg.cascade_slippage if self.m.cascade[i] else 0.0)

    def pay_funding(self, rate: float, price: float) -> None:
        p = self.pos
        if p is None:
            return
        flow = -p.side * p.qty * price * rate
        self.cash += flow
        p.funding += flow

    def fill_exit(self, qty: float, price: float, fee_rate: float) -> None:
        p = self.pos
        assert p is not None
        fee = -fee_rate * qty * price
        pnl = p.side * qty * (price - p.entry_px)
        self.cash += pnl + fee
        p.gross += pnl
        p.fees += fee
        p.exit_value += qty * price
        p.exit_qty += qty
        p.qty -= qty

    def close_all(self, price: float, fee_rate: float) -> None:
        p = self.pos
        assert p is not None
        self.fill_exit(p.qty, price, fee_rate)
        p.qty = 0.0

    def record(self, bar: int, reason: str) -> None:
        p = self.pos
        assert p is not None
        pnl = p.gross + p.funding + p.fees
        row = {
            "entry_bar": p.entry_bar,
            "exit_bar": bar,
            "side": p.side,
            "entry_px": p.entry_px,
            "exit_px": p.exit_value / p.exit_qty,
            "qty": p.qty_initial,
            "gross_pnl": p.gross,
            "funding_usd": p.funding,
            "fees_usd": p.fees,
            "pnl_usd": pnl,
            "risk_usd": p.risk_usd,
            "r_multiple": pnl / p.risk_usd,
            "exit_reason": EXIT_REASONS.index(reason),
            "stop_first": 1.0 if p.stop_first else 0.0,
        }
        self.trades.append([float(row[k]) for k in TRADE_COLUMNS])
        self.pos = None

    def open(self, i: int, order: tuple[int, float, float, list[float], float]) -> None:
        side, stop_frac, limit, targets_r, size = order
        o, lo, hi = self.m.o[i], self.m.l[i], self.m.h[i]
        if math.isnan(limit):
            fill, fee_rate = o * (1.0 + side * self.slip(i)), self.cfg.taker_fee
        elif side * (limit - o) >= 0.0:  # the open is already through the limit
            fill, fee_rate = o, self.cfg.taker_fee
        elif (side > 0 and lo <= limit) or (side < 0 and hi >= limit):
            fill, fee_rate = limit, self.cfg.maker_fee
        else:
            return  # the limit was not reached: the order lapses
        if self.cash <= 0.0:
            return
        dist = fill * stop_frac
        qty = min(
            self.cash * self.cfg.risk_frac * size / dist, self.cash * self.cfg.leverage / fill
        )
        liq_ratio = self.liq[0] if side > 0 else self.liq[1]
        self.pos = _Position(
            side=side,
            qty_initial=qty,
            entry_px=fill,
            entry_bar=i,
            stop_px=fill - side * dist,
            risk_usd=qty * dist,
            liq_px=fill * liq_ratio,
            targets=[fill + side * r * dist for r in targets_r],
            qty=qty,
        )
        fee = -fee_rate * qty * fill
        self.pos.fees = fee
        self.cash += fee

    def intrabar(self, i: int) -> str | None:
        """Liquidation, stop, targets; the reason if the position is now closed."""
        p = self.pos
        assert p is not None
        m = self.m
        if p.side > 0:
            liq_hit, stop_hit = m.mark_l[i] <= p.liq_px, m.l[i] <= p.stop_px
        else:
            liq_hit, stop_hit = m.mark_h[i] >= p.liq_px, m.h[i] >= p.stop_px
        stop_before_liq = p.side * (p.stop_px - p.liq_px) > 0.0
        opened_beyond_liq = p.side * (m.mark_o[i] - p.liq_px) <= 0.0
        if liq_hit and (not stop_hit or not stop_before_liq or opened_beyond_liq):
            self.close_all(p.liq_px, self.cfg.taker_fee)
            return "liquidation"
        touched = [
            k
            for k, t in enumerate(p.targets)
            if k not in p.filled_targets
            and not math.isnan(t)
            and ((p.side > 0 and m.h[i] >= t) or (p.side < 0 and m.l[i] <= t))
        ]
        if stop_hit:
            p.stop_first = p.stop_first or bool(touched)
            gapped = p.side * (m.o[i] - p.stop_px) <= 0.0
            base = m.o[i] if gapped else p.stop_px
            self.close_all(base * (1.0 - p.side * self.slip(i)), self.cfg.taker_fee)
            return "breakeven" if p.at_breakeven else "stop"
        for k in range(3):
            t = p.targets[k]
            if k in p.filled_targets or math.isnan(t) or p.qty <= 0.0:
                continue
            if k not in touched:
                break
            price = m.o[i] if p.side * (m.o[i] - t) >= 0.0 else t
            qty = self.cfg.scale_out[k] * p.qty_initial
            if k == 2 or qty > p.qty:
                qty = p.qty
            self.fill_exit(qty, price, self.cfg.maker_fee)
            p.filled_targets.add(k)
            if k == 0 and self.cfg.breakeven_after_t1:
                p.breakeven_next_bar = True
        if p.qty <= p.qty_initial * 1e-12:
            p.qty = 0.0
            return "target"
        return None


def run_reference(market: Market, signals: Signals, config: EngineConfig) -> BacktestRun:
    """The same backtest as :func:`perpscope.backtest.engine.run_backtest`, in plain Python."""
    market.validate()
    signals.validate(len(market.ts))
    config.validate()
    acc = _Account(market, signals, config)
    n = len(market.ts)
    ts = [int(t) for t in market.ts]
    settlements = deque(
        (int(t), float(r))
        for t, r in zip(market.funding_ts, market.funding_rate, strict=True)
        if n and int(t) >= ts[0]
    )
    equity = np.zeros(n)
    order: tuple[int, float, float, list[float], float] | None = None
    sizes = signals.sizes()
    exit_sides = signals.exit_sides()
    exit_order: str | None = None
    for i in range(n):
        bar_end = ts[i + 1] if i + 1 < n else (ts[i] + (ts[i] - ts[i - 1]) if n > 1 else ts[i] + 1)
        at_open: list[float] = []
        inside: list[float] = []
        while settlements and settlements[0][0] < bar_end:
            t, r = settlements.popleft()
            (at_open if t == ts[i] else inside).append(r)
        for rate in at_open:
            acc.pay_funding(rate, float(market.mark_o[i]))
        if acc.pos is not None and exit_order is not None:
            acc.close_all(market.o[i] * (1.0 - acc.pos.side * acc.slip(i)), config.taker_fee)
            acc.record(i, exit_order)
        exit_order = None
        if acc.pos is None and order is not None:
            acc.open(i, order)
        order = None
        for rate in inside:
            acc.pay_funding(rate, float(market.mark_c[i]))
        if acc.pos is not None:
            reason = acc.intrabar(i)
            if reason is None and i == n - 1:
                acc.close_all(market.c[i] * (1.0 - acc.pos.side * acc.slip(i)), config.taker_fee)
                reason = "end"
            if reason is not None:
                acc.record(i, reason)
        p = acc.pos
        if p is not None:
            if p.breakeven_next_bar:
                p.stop_px, p.breakeven_next_bar, p.at_breakeven = p.entry_px, False, True
            if signals.exit[i] or exit_sides[i] == p.side:
                exit_order = "signal"
            elif config.time_stop_bars > 0 and i - p.entry_bar + 1 >= config.time_stop_bars:
                exit_order = "time"
            equity[i] = acc.cash + p.side * p.qty * (market.c[i] - p.entry_px)
        else:
            equity[i] = acc.cash
            sf = float(signals.stop_frac[i])
            if i + 1 < n and signals.entry[i] != 0 and 0.0 < sf < 1.0 and sizes[i] > 0.0:
                order = (
                    int(signals.entry[i]),
                    sf,
                    float(signals.entry_limit[i]),
                    [float(x) for x in signals.targets_r[i]],
                    float(sizes[i]),
                )
    trades = np.array(acc.trades, dtype=np.float64).reshape(len(acc.trades), len(TRADE_COLUMNS))
    return BacktestRun(trades, equity, market.ts, config.initial_equity, acc.cash)
