"""Statistics: trade statistics by hand; Sharpe, Sortino and drawdown against empyrical."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perpscope.backtest.engine import run_backtest
from perpscope.backtest.stats import backtest_stats, period_returns
from perpscope.backtest.types import TRADE_COLUMNS, BacktestRun
from tests.backtest._markets import random_case


def _run(pnls: list[float], risk: float, equity: list[float]) -> BacktestRun:
    rows = []
    for k, p in enumerate(pnls):
        row = dict.fromkeys(TRADE_COLUMNS, 0.0)
        row.update(
            entry_bar=2 * k, exit_bar=2 * k + 1, pnl_usd=p, risk_usd=risk, r_multiple=p / risk,
            funding_usd=-1.0, fees_usd=-0.5,
        )  # fmt: skip
        rows.append([row[c] for c in TRADE_COLUMNS])
    eq = np.array(equity)
    return BacktestRun(np.array(rows), eq, np.arange(len(eq), dtype=np.int64), 1000.0, eq[-1])


def test_trade_statistics_by_hand() -> None:
    """Trades +200, -100, +50, -100 with 100 USD risk: R = 2, -1, 0.5, -1.

    win rate 2/4; avg win (2 + 0.5)/2 = 1.25R; avg loss -1R; expectancy 0.5/4 = 0.125R;
    profit factor 250 / 200 = 1.25; exposure: 4 trades x 2 bars over 8 bars = 1.
    Equity over 8 one-hour bars: 1000, 1200, 1200, 1100, 1100, 1150, 1150, 1050.
    Drawdown: peak 1200, trough 1050 -> 1050/1200 - 1 = -12.5%; bars 3..7 are below the peak (5 h).
    """
    eq = [1000, 1200, 1200, 1100, 1100, 1150, 1150, 1050]
    s = backtest_stats(_run([200, -100, 50, -100], 100.0, eq), bar_hours=1.0)
    assert s["trades"] == 4
    assert s["win_rate"] == 0.5
    assert s["avg_win_r"] == pytest.approx(1.25)
    assert s["avg_loss_r"] == pytest.approx(-1.0)
    assert s["expectancy_r"] == pytest.approx(0.125)
    assert s["profit_factor"] == pytest.approx(1.25)
    assert s["exposure"] == pytest.approx(1.0)
    assert s["max_drawdown"] == pytest.approx(-0.125)
    assert s["max_drawdown_duration_h"] == pytest.approx(5.0)  # bars 3..7 are below 1200
    assert s["funding_usd"] == -4.0
    assert s["fees_usd"] == -2.0
    assert s["avg_trade_duration_h"] == 2.0
    years = 8 / (365.25 * 24)
    assert s["cagr"] == pytest.approx(1.05 ** (1 / years) - 1)


def test_no_losses_and_no_trades_give_none_not_infinity() -> None:
    s = backtest_stats(_run([10.0], 100.0, [1000, 1010]), bar_hours=4.0)
    assert s["profit_factor"] is None
    assert s["avg_loss_r"] is None
    empty = BacktestRun(np.zeros((0, 14)), np.full(5, 1000.0), np.arange(5), 1000.0, 1000.0)
    s = backtest_stats(empty, bar_hours=1.0)
    assert s["trades"] == 0
    assert s["win_rate"] is None
    assert s["sharpe"] is None


@pytest.mark.parametrize("seed", [3, 11, 29])
def test_sharpe_sortino_drawdown_match_empyrical(seed: int) -> None:
    """empyrical-reloaded computes the same ratios from the same period returns."""
    empyrical = pytest.importorskip("empyrical")
    m, sig, cfg = random_case(seed, 400)
    run = run_backtest(m, sig, cfg)
    assert len(run.trades) > 3
    for bar_hours in (1.0, 4.0):
        s = backtest_stats(run, bar_hours)
        rets = period_returns(run)
        ann = 365.25 * 24 / bar_hours
        assert s["sharpe"] == pytest.approx(empyrical.sharpe_ratio(rets, annualization=ann))
        assert s["sortino"] == pytest.approx(empyrical.sortino_ratio(rets, annualization=ann))
        assert s["max_drawdown"] == pytest.approx(empyrical.max_drawdown(rets))
        assert math.isfinite(s["cagr"])
