"""Parameter sweeps and walk-forward over one or more markets, locally or on Dask.

A **combination** is a mapping of strategy parameters (the swept ones over the fixed ones). A
**job** is one combination on one market: the strategy's signals are computed once on the whole
market (every strategy decides from what is known at each close, so a window's signals do not
depend on the bars after it), then the engine runs on each requested **window** of bars (the
whole market for a sweep; the in-sample and out-of-sample windows of every fold for a
walk-forward) with the initial equity at each window's start. A position still open at a
window's last bar closes there.

Backends, all giving the same numbers (each job is deterministic and independent):

* ``workers=1``: in this process, in order;
* ``workers=N``: a pool of N processes (spawned; each loads the markets once);
* ``dask``: ``"local"`` starts a :class:`distributed.LocalCluster` of 2 worker processes on
  127.0.0.1; any other value is a scheduler address (``tcp://host:8786``). The markets are
  scattered to the workers once; the workers need perpscope importable.

Walk-forward (:func:`walk_forward`): the bars are cut into ``folds + is_ratio`` equal segments;
fold ``k`` is in-sample on segments ``k .. k + is_ratio - 1`` (from 0 when ``anchored``) and
out-of-sample on segment ``k + is_ratio``. The combination with the best in-sample objective
(among those with at least ``min_trades`` trades) is run out of sample. Reported per fold: the
chosen values, the in-sample and out-of-sample statistics; overall: the out-of-sample windows
chained (their returns compounded, their trades pooled), each parameter's choices over the folds
(stability: the share of folds that chose its most frequent value) and the walk-forward
efficiency (mean out-of-sample objective over mean in-sample objective, over the folds where both
are defined: a fold without out-of-sample trades has no Sharpe; ``efficiency_folds`` says how
many folds it used).
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np

from perpscope.backtest.slicing import slice_market, slice_signals  # noqa: F401 (re-exported)
from perpscope.backtest.stats import backtest_stats, period_returns
from perpscope.backtest.strategies import STRATEGIES, run_strategy
from perpscope.backtest.types import BacktestRun, EngineConfig, Market

__all__ = [
    "OBJECTIVES",
    "SweepMarket",
    "check_dask_address",
    "grid_combos",
    "random_combos",
    "run_jobs",
    "slice_market",
    "slice_signals",
    "sweep",
    "walk_forward",
]

OBJECTIVES: Final = ("sharpe", "total_return", "expectancy_r", "profit_factor", "cagr")
STAT_KEYS: Final = (
    "trades", "win_rate", "avg_win_r", "avg_loss_r", "expectancy_r", "profit_factor", "sharpe",
    "cagr", "max_drawdown", "avg_trade_duration_h", "funding_usd", "fees_usd", "final_equity",
)  # fmt: skip
MAX_JOBS: Final = 100_000
_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx)://[A-Za-z0-9_.\-\[\]:]+$|^[A-Za-z0-9_.\-]+:\d{1,5}$")

Window = tuple[int, int]


@dataclass(frozen=True, slots=True)
class SweepMarket:
    """A market to sweep over: its name (``venue:instrument``), the arrays, the bar length, and
    the first bar to trade (the bars before it are only the strategy's warm-up)."""

    name: str
    market: Market
    bar_hours: float
    start: int = 0


def grid_combos(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values (the cartesian product, keys in grid order)."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def random_combos(grid: Mapping[str, Sequence[Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` distinct combinations drawn uniformly from the grid (all of them if it has fewer),
    in the grid's order; the draw is ``numpy.random.default_rng(seed).choice`` without
    replacement over the combination indices."""
    sizes = [len(v) for v in grid.values()]
    total = math.prod(sizes)
    if n >= total:
        return grid_combos(grid)
    picks = np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
    keys, values = list(grid), list(grid.values())
    out = []
    for flat in picks.tolist():
        idx = np.unravel_index(flat, sizes)
        out.append({k: values[j][int(i)] for j, (k, i) in enumerate(zip(keys, idx, strict=True))})
    return out


def _objective(record: Mapping[str, Any], objective: str) -> float | None:
    value = record.get(objective)
    return None if value is None else float(value)


def _record(stats: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: stats[k] for k in STAT_KEYS}
    out["total_return"] = stats["final_equity"] / stats["initial_equity"] - 1.0
    return out


def evaluate(
    market: Market,
    bar_hours: float,
    strategy: str,
    combo: Mapping[str, Any],
    config: EngineConfig,
    windows: Sequence[Window],
) -> list[dict[str, Any]]:
    """The statistics of one combination on each window of one market (one record each).

    Raises:
        ValueError: bad parameters for the strategy.
    """
    params = STRATEGIES[strategy].params(**combo)
    runs = run_strategy(strategy, market, params, config, windows)
    return [_record(backtest_stats(run, bar_hours)) for run in runs]


# ---------------------------------------------------------------------------------- backends

_POOL_MARKETS: dict[str, SweepMarket] = {}


def _pool_init(markets: dict[str, SweepMarket]) -> None:
    _POOL_MARKETS.clear()
    _POOL_MARKETS.update(markets)


def _pool_job(
    name: str,
    strategy: str,
    combo: dict[str, Any],
    config: EngineConfig,
    windows: list[Window],
) -> list[dict[str, Any]]:
    m = _POOL_MARKETS[name]
    return evaluate(m.market, m.bar_hours, strategy, combo, config, windows)


def _dask_job(
    m: SweepMarket,
    strategy: str,
    combo: dict[str, Any],
    config: EngineConfig,
    windows: list[Window],
) -> list[dict[str, Any]]:
    return evaluate(m.market, m.bar_hours, strategy, combo, config, windows)


def check_dask_address(address: str) -> str:
    """``local`` or a scheduler address such as ``tcp://10.0.0.5:8786``.

    Raises:
        ValueError: anything else.
    """
    if address == "local" or _ADDRESS.match(address):
        return address
    raise ValueError(
        f"bad --dask address {address!r}: use --dask alone (a local 2-worker cluster) or a "
        "scheduler address such as tcp://10.0.0.5:8786"
    )


def run_jobs(
    markets: Sequence[SweepMarket],
    strategy: str,
    combos: Sequence[dict[str, Any]],
    config: EngineConfig,
    windows: Mapping[str, list[Window]],
    *,
    workers: int = 1,
    dask: str | None = None,
) -> list[list[list[dict[str, Any]]]]:
    """Every combination on every market: ``out[market][combo][window]`` records.

    Raises:
        ValueError: too many jobs, bad parameters, or a bad Dask address.
        RuntimeError: the Dask scheduler could not be reached.
    """
    jobs = [(m.name, c) for m in markets for c in combos]
    if not jobs:
        raise ValueError("nothing to run: no markets or no combinations")
    if len(jobs) > MAX_JOBS:
        raise ValueError(f"{len(jobs):,} jobs is more than {MAX_JOBS:,}: narrow the grid")
    spec = STRATEGIES[strategy]
    for c in combos:  # bad values fail here, once, before any work is sent anywhere
        spec.params(**c).validate()
    by_name = {m.name: m for m in markets}
    flat: list[list[dict[str, Any]]]
    if dask is not None:
        flat = _run_dask(check_dask_address(dask), by_name, strategy, jobs, config, windows)
    elif workers <= 1 or len(jobs) == 1:
        flat = [
            evaluate(by_name[n].market, by_name[n].bar_hours, strategy, c, config, windows[n])
            for n, c in jobs
        ]
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=min(workers, len(jobs)),
            mp_context=ctx,
            initializer=_pool_init,
            initargs=(by_name,),
        ) as pool:
            futures = [pool.submit(_pool_job, n, strategy, c, config, windows[n]) for n, c in jobs]
            flat = [f.result() for f in futures]
    k = len(combos)
    return [flat[i * k : (i + 1) * k] for i in range(len(markets))]


def _run_dask(
    address: str,
    by_name: dict[str, SweepMarket],
    strategy: str,
    jobs: list[tuple[str, dict[str, Any]]],
    config: EngineConfig,
    windows: Mapping[str, list[Window]],
) -> list[list[dict[str, Any]]]:
    import importlib

    try:  # untyped library: used through Any
        distributed: Any = importlib.import_module("distributed")
    except ImportError:
        raise ValueError("--dask needs the dask extra: pip install 'perpscope[dask]'") from None
    cluster = None
    try:
        if address == "local":
            cluster = distributed.LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None,
            )  # fmt: skip
            client = distributed.Client(cluster)
        else:
            client = distributed.Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise RuntimeError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        scattered = {n: client.scatter(m, broadcast=True) for n, m in by_name.items()}
        futures = [
            client.submit(_dask_job, scattered[n], strategy, c, config, windows[n], pure=False)
            for n, c in jobs
        ]
        result: list[list[dict[str, Any]]] = client.gather(futures)
        return result
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def default_workers() -> int:
    """Every core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------------- sweep


def sweep(
    markets: Sequence[SweepMarket],
    strategy: str,
    combos: Sequence[dict[str, Any]],
    config: EngineConfig,
    *,
    objective: str = "sharpe",
    workers: int = 1,
    dask: str | None = None,
) -> list[dict[str, Any]]:
    """One record per market and combination over the whole market, best objective first
    (``None`` objectives last; ties keep the grid order)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
    windows = {m.name: [(m.start, len(m.market.ts))] for m in markets}
    out = run_jobs(markets, strategy, combos, config, windows, workers=workers, dask=dask)
    rows = []
    for m, per_combo in zip(markets, out, strict=True):
        for combo, recs in zip(combos, per_combo, strict=True):
            rows.append({"market": m.name, **combo, **recs[0]})
    return _rank(rows, objective)


def _rank(rows: list[dict[str, Any]], objective: str) -> list[dict[str, Any]]:
    def key(r: dict[str, Any]) -> tuple[int, float]:
        v = _objective(r, objective)
        return (1, 0.0) if v is None else (0, -v)

    return sorted(rows, key=key)


# ---------------------------------------------------------------------------------- walk-forward


def fold_windows(
    n_bars: int, folds: int, is_ratio: int, anchored: bool
) -> list[tuple[Window, Window]]:
    """(in-sample, out-of-sample) bar windows of each fold (see the module doc).

    Raises:
        ValueError: too few bars for the folds.
    """
    if folds < 1 or is_ratio < 1:
        raise ValueError("folds and the in-sample ratio must be at least 1")
    seg = n_bars // (folds + is_ratio)
    if seg < 2:
        raise ValueError(
            f"{n_bars} bars are too few for {folds} folds with an in-sample ratio of {is_ratio}"
        )
    out = []
    for k in range(folds):
        is_start = 0 if anchored else k * seg
        is_end = (k + is_ratio) * seg
        oos_end = n_bars if k == folds - 1 else is_end + seg
        out.append(((is_start, is_end), (is_end, oos_end)))
    return out


def walk_forward(
    market: SweepMarket,
    strategy: str,
    combos: Sequence[dict[str, Any]],
    config: EngineConfig,
    *,
    folds: int = 4,
    is_ratio: int = 3,
    anchored: bool = False,
    objective: str = "sharpe",
    min_trades: int = 5,
    workers: int = 1,
    dask: str | None = None,
) -> dict[str, Any]:
    """Walk-forward of the combinations on one market (see the module doc).

    Returns:
        ``{"folds": [...], "oos": {...}, "stability": [...], "efficiency": float | None}``.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")
    ts = market.market.ts
    s0 = market.start
    wins = [
        ((a + s0, b + s0), (c + s0, d + s0))
        for (a, b), (c, d) in fold_windows(len(ts) - s0, folds, is_ratio, anchored)
    ]
    flat_windows = [w for pair in wins for w in pair]
    res = run_jobs(
        [market], strategy, combos, config, {market.name: flat_windows},
        workers=workers, dask=dask,
    )[0]  # fmt: skip
    swept = _swept_keys(combos)
    fold_rows: list[dict[str, Any]] = []
    chosen: list[dict[str, Any]] = []
    oos_runs: list[BacktestRun] = []
    is_obj: list[float] = []
    oos_obj: list[float] = []
    spec = STRATEGIES[strategy]
    for k, (is_w, oos_w) in enumerate(wins):
        best_i, best_v = -1, -math.inf
        for i in range(len(combos)):
            rec = res[i][2 * k]
            v = _objective(rec, objective)
            if rec["trades"] >= min_trades and v is not None and v > best_v:
                best_i, best_v = i, v
        row: dict[str, Any] = {
            "fold": k + 1,
            "is_start": _iso(ts[is_w[0]]),
            "is_end": _iso(ts[is_w[1] - 1]),
            "oos_start": _iso(ts[oos_w[0]]),
            "oos_end": _iso(ts[oos_w[1] - 1]),
        }
        if best_i < 0:
            row["chosen"] = None
            fold_rows.append(row)
            continue
        combo = combos[best_i]
        chosen.append({key: combo[key] for key in swept})
        is_rec, oos_rec = res[best_i][2 * k], res[best_i][2 * k + 1]
        row["chosen"] = {key: combo[key] for key in swept}
        row["is"] = is_rec
        row["oos"] = oos_rec
        fold_rows.append(row)
        v_oos = _objective(oos_rec, objective)
        if v_oos is not None:  # pairs only: a fold with no out-of-sample value is left out
            is_obj.append(best_v)
            oos_obj.append(v_oos)
        params = spec.params(**combo)
        oos_runs.append(run_strategy(strategy, market.market, params, config, [oos_w])[0])
    mean_is = float(np.mean(is_obj)) if is_obj else math.nan
    mean_oos = float(np.mean(oos_obj)) if oos_obj else math.nan
    efficiency = mean_oos / mean_is if is_obj and oos_obj and mean_is > 0 else None
    return {
        "folds": fold_rows,
        "oos": _chained(oos_runs, market.bar_hours),
        "stability": _stability(chosen, swept, len(wins)),
        "efficiency": efficiency,
        "efficiency_folds": len(oos_obj),
        "objective": objective,
    }


def _swept_keys(combos: Sequence[Mapping[str, Any]]) -> list[str]:
    if not combos:
        return []
    return [k for k in combos[0] if len({repr(c[k]) for c in combos}) > 1]


def _stability(chosen: list[dict[str, Any]], keys: list[str], n_folds: int) -> list[dict[str, Any]]:
    out = []
    for key in keys:
        counts = Counter(repr(c[key]) for c in chosen)
        if not counts:
            continue
        mode, hits = counts.most_common(1)[0]
        first = next(c[key] for c in chosen if repr(c[key]) == mode)
        out.append(
            {
                "parameter": key,
                "chosen": [c[key] for c in chosen],
                "most_chosen": first,
                "stability": hits / n_folds,
            }
        )
    return out


def _chained(runs: list[BacktestRun], bar_hours: float) -> dict[str, Any]:
    """The out-of-sample windows one after another: returns compounded, trades pooled."""
    if not runs:
        return {"trades": 0, "total_return": None, "sharpe": None, "max_drawdown": None}
    rets = np.concatenate([period_returns(r) for r in runs])
    growth = np.cumprod(1.0 + rets)
    eq = np.concatenate(([1.0], growth))
    dd = float((eq / np.maximum.accumulate(eq) - 1.0).min())
    sd = float(np.std(rets, ddof=1)) if len(rets) > 1 else 0.0
    ppy = 365.25 * 24.0 / bar_hours
    pnl = np.concatenate([r.column("pnl_usd") for r in runs])
    r_mult = np.concatenate([r.column("r_multiple") for r in runs])
    wins = pnl > 0
    loss = float(-pnl[~wins].sum())
    return {
        "trades": int(len(pnl)),
        "total_return": float(growth[-1] - 1.0),
        "sharpe": float(np.mean(rets) / sd * math.sqrt(ppy)) if sd > 0 else None,
        "max_drawdown": dd,
        "win_rate": float(wins.mean()) if len(pnl) else None,
        "expectancy_r": float(r_mult.mean()) if len(pnl) else None,
        "profit_factor": float(pnl[wins].sum() / loss) if loss > 0 else None,
    }


def _iso(ns: int | np.integer[Any]) -> datetime:
    return datetime.fromtimestamp(int(ns) / 1e9, UTC)
