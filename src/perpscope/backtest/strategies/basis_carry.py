"""Basis carry: long spot, short the perpetual, collect funding (delta-neutral, both legs).

The playbook's rules: enter "when the 7-day average exceeds +0.03%"; capital "$100,000 spot,
$20,000 short margin [at 5x], $10,000 buffer margin"; "close both legs when: (a) funding drops
below +0.01% [...], (b) funding turns negative [...], or (c) your margin is approaching warning
levels due to mark price fluctuation".

Simulated (a plain loop over the bars, not the directional engine):

* **Decision at a bar's close, fills at the next open**, like the engine. Enter when flat and the
  mean of the 8h-normalised settlements known at the close over the last ``avg_days`` (the data
  must reach back that far) exceeds ``entry_avg`` and the latest print is at least
  ``exit_below``. Exit when the latest known print falls below ``exit_below`` (rules a and b), or
  when the price has risen so far that the short leg's loss has used ``margin_warning`` of its
  margin plus buffer (rule c: ``close >= entry x (1 + margin_warning x (1/leverage + buffer))``).
* **Capital**: the whole equity is deployed: notional ``N = equity / (1 + 1/leverage + buffer)``
  (spot bought with ``N``, ``N / leverage`` margin and ``buffer x N`` more on the perp side), so
  the returns are on all the capital the trade ties up.
* **Both legs trade at the same price**: the data has one price series per asset (BTC: spot
  candles; ETH: perp candles), so the basis (perp minus spot) is not observed and its changes are
  zero; the legs' price PnL cancels exactly. Funding is the only income.
* **Funding**: each settlement while the position is open pays the short
  ``+qty x price x rate`` (the engine's timing: at a bar's open, by the position held into it,
  priced at the open; inside a bar, at the close).
* **Costs**: each fill of each leg pays ``slippage``; the spot leg ``spot_fee``, the perp leg the
  configured taker fee; four fills per round trip.
* **Liquidation**: should the bar's high reach the short's liquidation price (isolated, wallet =
  margin + buffer; ``entry x (1 + 1/leverage + buffer) / (1 + mmr)``) before rule (c) has closed
  it, both legs close there and the maintenance margin ``mmr x N`` is lost.

Each round trip is one trade row (side -1, the perp leg's size); ``risk_usd`` is the equity
deployed, so ``r_multiple`` is the trade's return on capital.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from perpscope.backtest.types import TRADE_COLUMNS, BacktestRun, EngineConfig, Market

__all__ = ["BasisCarryParams", "basis_carry"]

_R = {"stop": 0, "signal": 3, "liquidation": 5, "end": 6}
_DAY_NS = 86_400_000_000_000


@dataclass(frozen=True, slots=True)
class BasisCarryParams:
    """Parameters of :func:`basis_carry` (fractions per 8h; see the module doc).

    Attributes:
        entry_avg: the average funding over ``avg_days`` above which to enter (0.0003 = 0.03%).
        avg_days: the averaging window, days.
        exit_below: close once the latest print is below this (0.0001 = 0.01%).
        buffer: margin kept beyond ``notional / leverage``, a fraction of the notional.
        margin_warning: share of margin + buffer the short's loss may use before closing.
        spot_fee: the spot leg's fee per fill.
    """

    entry_avg: float = 0.0003
    avg_days: float = 7.0
    exit_below: float = 0.0001
    buffer: float = 0.10
    margin_warning: float = 0.5
    spot_fee: float = 0.001

    def validate(self) -> None:
        """Raises ValueError naming the first bad parameter."""
        for name in ("entry_avg", "exit_below"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite fraction per 8h")
        if not (math.isfinite(self.avg_days) and self.avg_days > 0):
            raise ValueError("avg_days must be a positive number of days")
        if not (math.isfinite(self.buffer) and 0 <= self.buffer < 10):
            raise ValueError("buffer must be a fraction of the notional in [0, 10)")
        if not (math.isfinite(self.margin_warning) and 0 < self.margin_warning <= 1):
            raise ValueError("margin_warning must be a fraction in (0, 1]")
        if not (math.isfinite(self.spot_fee) and 0 <= self.spot_fee < 0.5):
            raise ValueError("spot_fee must be a fraction in [0, 0.5)")


def _rolling_known_mean(
    bar_close: np.ndarray, fts: np.ndarray, rate8: np.ndarray, window_ns: int
) -> np.ndarray:
    """Mean of the settlements with ``close - window <= t < close`` at each close (NaN if none or
    if the data does not reach back a whole window)."""
    csum = np.r_[0.0, np.cumsum(rate8)]
    hi = np.searchsorted(fts, bar_close, side="left")
    lo = np.searchsorted(fts, bar_close - window_ns, side="left")
    count = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (csum[hi] - csum[lo]) / count
    out = np.where(count > 0, mean, np.nan)
    if len(fts):
        out[bar_close - window_ns < fts[0]] = np.nan  # the data does not reach back a window
    return np.asarray(out, np.float64)


def basis_carry(market: Market, params: BasisCarryParams, config: EngineConfig) -> BacktestRun:
    """Simulate the basis carry on ``market`` (see the module doc).

    Raises:
        ValueError: bad parameters or configuration, or inconsistent market arrays.
    """
    params.validate()
    config.validate()
    market.validate()
    n = len(market.ts)
    ts, o, h, c = market.ts, market.o, market.h, market.c
    mo, mc = market.mark_o, market.mark_c
    fts, frate = market.funding_ts, market.funding_rate
    rate8 = frate * (8.0 / market.funding_interval_h)
    step = int(ts[-1] - ts[-2]) if n > 1 else 1
    close_ts = np.r_[ts[1:], ts[-1] + step] if n else ts
    known = np.searchsorted(fts, close_ts, side="left") - 1
    latest = np.full(n, np.nan)
    avg = np.full(n, np.nan)
    if len(fts):
        latest = np.where(known >= 0, rate8[np.clip(known, 0, None)], np.nan)
        avg = _rolling_known_mean(close_ts, fts, rate8, int(params.avg_days * _DAY_NS))
    lev = config.leverage
    per_side = params.spot_fee + config.taker_fee + 2 * config.slippage  # both legs, one fill each
    margin_frac = 1.0 / lev + params.buffer
    warn_up = params.margin_warning * margin_frac
    liq_up = (1.0 + margin_frac) / (1.0 + config.mmr) - 1.0

    cash = config.initial_equity
    equity = np.empty(n)
    trades: list[list[float]] = []
    qty = 0.0
    e_px = 0.0
    e_bar = 0
    fund = fees = gross = deployed = 0.0
    pending_entry = False
    pending_exit: str | None = None
    fp = int(np.searchsorted(fts, ts[0], side="left")) if n else 0

    def close_trade(i: int, px: float, reason: str, penalty: float) -> None:
        nonlocal cash, qty, fees, gross
        fee = -per_side * qty * px
        cash += fee - penalty
        fees += fee
        gross -= penalty
        pnl = gross + fund + fees
        row = {
            "entry_bar": e_bar, "exit_bar": i, "side": -1.0, "entry_px": e_px, "exit_px": px,
            "qty": qty, "gross_pnl": gross, "funding_usd": fund, "fees_usd": fees,
            "pnl_usd": pnl, "risk_usd": deployed, "r_multiple": pnl / deployed,
            "exit_reason": _R[reason], "stop_first": 0.0,
        }  # fmt: skip
        trades.append([float(row[k]) for k in TRADE_COLUMNS])
        qty = 0.0

    for i in range(n):
        next_ts = close_ts[i]
        while fp < len(fts) and fts[fp] == ts[i]:  # settlements at the open
            if qty > 0:
                cf = qty * mo[i] * frate[fp]
                cash += cf
                fund += cf
            fp += 1
        if qty > 0 and pending_exit is not None:
            close_trade(i, o[i], pending_exit, 0.0)
        pending_exit = None
        if qty == 0 and pending_entry and cash > 0:
            deployed = cash
            e_px, e_bar = o[i], i
            qty = cash / (1.0 + margin_frac) / e_px
            fees = -per_side * qty * e_px
            cash += fees
            fund = gross = 0.0
        pending_entry = False
        while fp < len(fts) and fts[fp] < next_ts:  # settlements inside the bar
            if qty > 0:
                cf = qty * mc[i] * frate[fp]
                cash += cf
                fund += cf
            fp += 1
        if qty > 0 and h[i] >= e_px * (1.0 + liq_up):
            close_trade(i, e_px * (1.0 + liq_up), "liquidation", config.mmr * qty * e_px)
        elif qty > 0 and i == n - 1:
            close_trade(i, c[i], "end", 0.0)
        if qty > 0:
            if latest[i] < params.exit_below:
                pending_exit = "signal"
            elif c[i] >= e_px * (1.0 + warn_up):
                pending_exit = "stop"
        elif i + 1 < n and avg[i] > params.entry_avg and latest[i] >= params.exit_below:
            pending_entry = True
        equity[i] = cash
    matrix = np.array(trades, np.float64).reshape(len(trades), len(TRADE_COLUMNS))
    return BacktestRun(matrix, equity, ts, config.initial_equity, float(cash))
