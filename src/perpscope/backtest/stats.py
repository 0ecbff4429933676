"""Statistics of one backtest: trade statistics in R, risk-adjusted returns, drawdown, costs.

Definitions (also in ``docs/backtest.md``):

* ``win_rate``: trades with ``pnl_usd > 0`` over all trades. ``avg_win_r`` / ``avg_loss_r``: the
  mean ``r_multiple`` of winners / of the other trades (a loss is negative). ``expectancy_r``: the
  mean ``r_multiple``. ``profit_factor``: gross net-PnL of winners over the absolute net-PnL of
  losers (``None`` when there is no loss).
* Period returns ``r_t = E_t / E_{t-1} - 1`` of the equity at each bar's close, with
  ``E_{-1}`` = the initial equity; one period = one bar. ``sharpe = mean(r) / std(r, ddof=1) *
  sqrt(P)`` and ``sortino = mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(P)`` with ``P`` periods per
  year of 365.25 days (crypto trades around the clock) and no risk-free rate.
* ``cagr = (E_final / E_0) ^ (1 / years) - 1`` with years = bars x bar length / 365.25 days.
* ``max_drawdown``: the most negative ``E_t / max(E_0..E_t) - 1`` (a negative fraction);
  ``max_drawdown_duration_h``: the longest time spent below a previous equity peak.
* ``exposure``: bars with a position open (entry bar to exit bar) over all bars.
* ``funding_usd`` / ``fees_usd``: signed sums over the trades (negative = paid).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from perpscope.backtest.types import EXIT_REASONS, BacktestRun

__all__ = ["HOURS_PER_YEAR", "backtest_stats", "period_returns"]

HOURS_PER_YEAR = 365.25 * 24.0


def period_returns(run: BacktestRun) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Per-bar simple returns of the equity curve (the first bar against the initial equity)."""
    eq = np.concatenate(([run.initial_equity], run.equity))
    return np.asarray(eq[1:] / eq[:-1] - 1.0, np.float64)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def backtest_stats(run: BacktestRun, bar_hours: float) -> dict[str, Any]:
    """Every statistic of ``run`` (bars ``bar_hours`` long) as one flat record.

    Ratios that are undefined (no trades, no losses, a flat curve) are ``None``.
    """
    n_bars = len(run.equity)
    pnl = run.column("pnl_usd")
    r = run.column("r_multiple")
    n = len(pnl)
    wins = pnl > 0
    gross_win = float(pnl[wins].sum())
    gross_loss = float(-pnl[~wins].sum())
    rets = period_returns(run)
    ppy = HOURS_PER_YEAR / bar_hours
    sharpe = sortino = math.nan
    if n_bars > 1:
        sd = float(np.std(rets, ddof=1))
        if sd > 0:
            sharpe = float(np.mean(rets)) / sd * math.sqrt(ppy)
        down = float(np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2)))
        if down > 0:
            sortino = float(np.mean(rets)) / down * math.sqrt(ppy)
    eq = np.concatenate(([run.initial_equity], run.equity))
    peak = np.maximum.accumulate(eq)
    dd = eq / peak - 1.0
    longest = current = 0
    for below in dd < 0:
        current = current + 1 if below else 0
        longest = max(longest, current)
    years = n_bars * bar_hours / HOURS_PER_YEAR
    ratio = run.final_equity / run.initial_equity
    cagr = ratio ** (1.0 / years) - 1.0 if years > 0 and ratio > 0 else math.nan
    held = run.column("exit_bar") - run.column("entry_bar") + 1
    reasons = run.column("exit_reason").astype(int)
    return {
        "trades": n,
        "win_rate": _finite(float(wins.mean())) if n else None,
        "avg_win_r": _finite(float(r[wins].mean())) if wins.any() else None,
        "avg_loss_r": _finite(float(r[~wins].mean())) if (~wins).any() else None,
        "expectancy_r": _finite(float(r.mean())) if n else None,
        "profit_factor": _finite(gross_win / gross_loss) if gross_loss > 0 else None,
        "sharpe": _finite(sharpe),
        "sortino": _finite(sortino),
        "period": f"{bar_hours:g}h bars, {ppy:,.1f} periods per year",
        "cagr": _finite(cagr),
        "max_drawdown": float(dd.min()) if n_bars else 0.0,
        "max_drawdown_duration_h": longest * bar_hours,
        "exposure": float(held.sum() / n_bars) if n_bars else 0.0,
        "avg_trade_duration_h": float(held.mean() * bar_hours) if n else None,
        "funding_usd": float(run.column("funding_usd").sum()),
        "fees_usd": float(run.column("fees_usd").sum()),
        "initial_equity": run.initial_equity,
        "final_equity": run.final_equity,
        "exits": {name: int((reasons == k).sum()) for k, name in enumerate(EXIT_REASONS)},
        "stop_first_bars": int(run.column("stop_first").sum()),
    }
