"""The numba engine and the plain-Python reference agree trade for trade.

On random markets and strategies (hypothesis drives the seed and the length; the market builder
makes gaps, ties on a price grid, mark offsets, crashes, settlements at and between bar opens) and
on the real BTC 1h candles with the real Binance funding of 2020-2023.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpscope.backtest.engine import run_backtest
from perpscope.backtest.reference import run_reference
from perpscope.backtest.types import TRADE_COLUMNS, BacktestRun
from tests.backtest._markets import random_case

_DISCRETE = [TRADE_COLUMNS.index(c) for c in ("entry_bar", "exit_bar", "side", "exit_reason")]


@pytest.fixture(autouse=True, scope="module")
def _compiled() -> None:
    """Load (or compile) the kernel before any example runs, outside hypothesis' timing."""
    m, s, cfg = random_case(1, 20)
    run_backtest(m, s, cfg)


def assert_same(a: BacktestRun, b: BacktestRun) -> None:
    assert a.trades.shape == b.trades.shape
    np.testing.assert_array_equal(a.trades[:, _DISCRETE], b.trades[:, _DISCRETE])
    np.testing.assert_allclose(a.trades, b.trades, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(a.equity, b.equity, rtol=1e-10, atol=1e-9)
    assert np.isclose(a.final_equity, b.final_equity, rtol=1e-12)


def test_agree_on_one_longer_case() -> None:
    m, s, cfg = random_case(7, 300)
    a, b = run_backtest(m, s, cfg), run_reference(m, s, cfg)
    assert len(a.trades) > 5
    assert_same(a, b)


@settings(max_examples=300)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 160))
def test_engine_matches_reference_on_random_cases(seed: int, n: int) -> None:
    m, s, cfg = random_case(seed, n)
    a, b = run_backtest(m, s, cfg), run_reference(m, s, cfg)
    assert_same(a, b)
    # every cash flow belongs to a trade: initial equity + the trades' net PnL = final equity
    assert np.isclose(
        cfg.initial_equity + a.column("pnl_usd").sum(), a.final_equity, rtol=1e-9, atol=1e-6
    )


def test_random_cases_cover_every_exit_reason() -> None:
    """The generator is not vacuous: over a few seeds every exit path is taken."""
    seen: set[int] = set()
    stop_first = 0
    for seed in range(40):
        m, s, cfg = random_case(seed, 200)
        run = run_backtest(m, s, cfg)
        seen |= set(run.column("exit_reason").astype(int).tolist())
        stop_first += int(run.column("stop_first").sum())
    assert seen == set(range(7))
    assert stop_first > 0


def test_sweep_matches_single_runs() -> None:
    """Each combination of the parallel sweep equals its own run_backtest."""
    from perpscope.backtest.engine import sweep
    from perpscope.backtest.types import Signals

    m, s, cfg = random_case(13, 500)
    n = len(m.ts)
    entries = np.stack([s.entry, np.roll(s.entry, 7)])
    exits = np.stack([s.exit, np.roll(s.exit, 3)])
    idx = np.array([0, 1, 1, 0])
    stops = np.array([0.01, 0.03, 0.05, 0.2])
    targets = np.array([[1.0, 2.0, 3.0], [np.nan, np.nan, 2.0], [0.5, 1.0, 4.0], [1, 2, 3.0]])
    final, count = sweep(m, entries, exits, idx, stops, targets, cfg)
    for j in range(4):
        sig = Signals(
            entries[idx[j]], exits[idx[j]], np.full(n, stops[j]),
            np.tile(targets[j], (n, 1)), np.full(n, np.nan),
        )  # fmt: skip
        one = run_backtest(m, sig, cfg)
        assert final[j] == one.final_equity
        assert count[j] == len(one.trades)
