"""Sweeps and walk-forward: each record equals its own direct backtest; the process pool and a
2-worker Dask LocalCluster give exactly the local serial results; folds and the selection are
checked by hand and by brute force."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from perpscope.backtest.engine import run_backtest
from perpscope.backtest.stats import backtest_stats
from perpscope.backtest.strategies.funding_fade import FundingFadeParams, funding_fade
from perpscope.backtest.sweep import (
    SweepMarket,
    check_dask_address,
    evaluate,
    fold_windows,
    grid_combos,
    random_combos,
    slice_market,
    sweep,
    walk_forward,
)
from perpscope.backtest.types import EngineConfig, Market, Signals
from tests.backtest._markets import HOUR_NS

CFG = EngineConfig(risk_frac=0.02)
GRID: dict[str, list[Any]] = {
    "threshold": [0.0003, 0.0005],
    "min_periods": [2, 3],
    "entry_window": [0, 1],
}


def synthetic(seed: int, n: int = 3000) -> SweepMarket:
    """1h random-walk bars and 8h funding that drifts in and out of extremes (AR(1))."""
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.008, n)))
    o = np.r_[100.0, c[:-1]]
    h = np.maximum(o, c) * (1 + rng.exponential(0.003, n))
    lo = np.minimum(o, c) * (1 - rng.exponential(0.003, n))
    ts = np.arange(n, dtype=np.int64) * HOUR_NS
    fts = np.arange(0, n, 8, dtype=np.int64) * HOUR_NS
    rate = np.empty(len(fts))
    x = 0.0
    for k in range(len(fts)):
        x = 0.9 * x + rng.normal(0, 0.00025)
        rate[k] = x
    m = Market.from_ohlc(ts, o, h, lo, c, fts, rate, np.full(len(fts), 8.0))
    return SweepMarket(f"sim:{seed}", m, 1.0)


@pytest.fixture(scope="module")
def markets() -> list[SweepMarket]:
    return [synthetic(1), synthetic(2)]


def test_grid_and_random_combinations() -> None:
    combos = grid_combos(GRID)
    assert len(combos) == 8
    assert combos[0] == {"threshold": 0.0003, "min_periods": 2, "entry_window": 0}
    assert combos[-1] == {"threshold": 0.0005, "min_periods": 3, "entry_window": 1}
    picked = random_combos(GRID, 3, seed=4)
    assert len(picked) == 3
    assert all(p in combos for p in picked)
    assert len({repr(p) for p in picked}) == 3  # distinct
    assert picked == random_combos(GRID, 3, seed=4)  # seeded
    assert random_combos(GRID, 50, seed=4) == combos  # more than the grid: the whole grid


def test_sweep_records_equal_their_own_backtests(markets: list[SweepMarket]) -> None:
    rows = sweep(markets, "funding-fade", grid_combos(GRID), CFG, objective="sharpe")
    assert len(rows) == 16
    assert any(r["trades"] > 10 for r in rows)  # not vacuous
    for row in rows:
        m = next(x for x in markets if x.name == row["market"])
        params = FundingFadeParams(**{k: row[k] for k in GRID})
        run = run_backtest(m.market, funding_fade(m.market, params), CFG)
        stats = backtest_stats(run, 1.0)
        assert row["trades"] == stats["trades"]
        assert row["final_equity"] == stats["final_equity"]
        assert row["sharpe"] == stats["sharpe"]
        assert row["total_return"] == pytest.approx(run.final_equity / 10_000 - 1, abs=1e-15)
    sharpes = [r["sharpe"] for r in rows if r["sharpe"] is not None]
    assert sharpes == sorted(sharpes, reverse=True)  # best first


def test_a_window_runs_on_its_bars_only(markets: list[SweepMarket]) -> None:
    """The window (1000, 2000) equals a backtest of those bars with the signals of the whole
    market (the strategy is causal: its signals on bars < 2000 do not read later bars)."""
    m = markets[0]
    combo = {"threshold": 0.0003, "min_periods": 2, "entry_window": 0}
    rec_full, rec_win = evaluate(
        m.market, 1.0, "funding-fade", combo, CFG, [(0, 3000), (1000, 2000)]
    )
    sig_part = funding_fade(slice_market(m.market, 0, 2000), FundingFadeParams(**combo))
    cut = slice(1000, 2000)
    sig = Signals(
        sig_part.entry[cut], sig_part.exit[cut], sig_part.stop_frac[cut], sig_part.targets_r[cut],
        sig_part.entry_limit[cut], sig_part.size[cut] if sig_part.size is not None else None,
        sig_part.exit_side[cut] if sig_part.exit_side is not None else None,
    )  # fmt: skip
    run = run_backtest(slice_market(m.market, 1000, 2000), sig, CFG)
    assert rec_win["trades"] == len(run.trades) > 0
    assert rec_win["final_equity"] == run.final_equity
    assert rec_full["trades"] > rec_win["trades"]


def test_fold_windows_by_hand() -> None:
    """100 bars, 4 folds, in-sample 3 segments: 7 segments of 14 bars; the last fold's
    out-of-sample runs to the end (bar 100)."""
    assert fold_windows(100, 4, 3, anchored=False) == [
        ((0, 42), (42, 56)),
        ((14, 56), (56, 70)),
        ((28, 70), (70, 84)),
        ((42, 84), (84, 100)),
    ]
    assert [w[0][0] for w in fold_windows(100, 4, 3, anchored=True)] == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="too few"):
        fold_windows(10, 4, 3, anchored=False)


def test_walk_forward_picks_the_best_in_sample_and_chains_out_of_sample(
    markets: list[SweepMarket],
) -> None:
    m = markets[0]
    combos = grid_combos(GRID)
    wf = walk_forward(m, "funding-fade", combos, CFG, folds=3, is_ratio=2, min_trades=3)
    assert all(f["chosen"] is not None for f in wf["folds"])
    wins = fold_windows(3000, 3, 2, anchored=False)
    growth = 1.0
    for fold, (is_w, oos_w) in zip(wf["folds"], wins, strict=True):
        # brute force: every combination's in-sample Sharpe, the best with >= 3 trades
        scored = []
        for c in combos:
            rec = evaluate(m.market, 1.0, "funding-fade", c, CFG, [is_w])[0]
            if rec["trades"] >= 3 and rec["sharpe"] is not None:
                scored.append((rec["sharpe"], c))
        best = max(scored, key=lambda t: t[0])
        assert fold["chosen"] == best[1]
        assert fold["is"]["sharpe"] == best[0]
        oos = evaluate(m.market, 1.0, "funding-fade", best[1], CFG, [oos_w])[0]
        assert fold["oos"] == oos
        growth *= 1 + oos["total_return"]
    assert wf["oos"]["total_return"] == pytest.approx(growth - 1, rel=1e-12)
    assert wf["oos"]["trades"] == sum(f["oos"]["trades"] for f in wf["folds"])
    stab = {s["parameter"]: s for s in wf["stability"]}
    assert set(stab) == set(GRID)
    for key, s in stab.items():
        chosen = [f["chosen"][key] for f in wf["folds"]]
        assert s["chosen"] == chosen
        assert s["stability"] == max(chosen.count(v) for v in chosen) / 3
    pairs = [(f["is"]["sharpe"], f["oos"]["sharpe"]) for f in wf["folds"]]
    pairs = [p for p in pairs if p[1] is not None]
    assert wf["efficiency_folds"] == len(pairs) > 0
    mean_is, mean_oos = np.mean([p[0] for p in pairs]), np.mean([p[1] for p in pairs])
    assert mean_is > 0  # this market's in-sample choices are positive (so efficiency is defined)
    assert wf["efficiency"] == pytest.approx(mean_oos / mean_is)


def test_process_pool_equals_the_serial_run(markets: list[SweepMarket]) -> None:
    combos = grid_combos(GRID)
    serial = sweep(markets, "funding-fade", combos, CFG)
    pooled = sweep(markets, "funding-fade", combos, CFG, workers=2)
    assert pooled == serial


@pytest.mark.slow
def test_dask_local_cluster_equals_the_local_run(markets: list[SweepMarket]) -> None:
    """A 2-worker Dask LocalCluster (processes, on 127.0.0.1) gives exactly the local results."""
    pytest.importorskip("distributed")
    combos = random_combos(GRID, 4, seed=1)
    local = sweep(markets, "funding-fade", combos, CFG)
    on_dask = sweep(markets, "funding-fade", combos, CFG, dask="local")
    assert on_dask == local
    assert len(on_dask) == 8


def test_bad_inputs_fail_before_any_work() -> None:
    m = synthetic(3, 200)
    with pytest.raises(ValueError, match="threshold"):
        sweep([m], "funding-fade", [{"threshold": -1.0}], CFG)
    with pytest.raises(ValueError, match="objective"):
        sweep([m], "funding-fade", [{}], CFG, objective="luck")
    for bad in ("\x1b[2J", "[/x]", "http://x:1", "a b:1"):
        with pytest.raises(ValueError, match="bad --dask address"):
            check_dask_address(bad)
    assert check_dask_address("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    assert check_dask_address("scheduler:8786") == "scheduler:8786"
