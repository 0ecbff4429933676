"""Sweep and walk-forward use-cases: parse the grid and the markets, load, run, chart.

The CLI (``perpscope backtest sweep|walkforward``) calls these and renders their records.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from perpscope.backtest.loader import load_market
from perpscope.backtest.strategies import STRATEGIES
from perpscope.backtest.sweep import (
    OBJECTIVES,
    SweepMarket,
    check_dask_address,
    default_workers,
    grid_combos,
    random_combos,
    slice_market,
    sweep,
    walk_forward,
)
from perpscope.backtest.types import EngineConfig
from perpscope.domain.symbols import InstrumentKind, parse_instrument, parse_venue
from perpscope.errors import UsageError
from perpscope.services.backtest import coerce_param, parse_oi_market, window_bars
from perpscope.store.lake import Lake

__all__ = [
    "MarketSpec",
    "backend",
    "build_combos",
    "load_sweep_markets",
    "parse_market",
    "run_sweep",
    "run_walkforward",
    "write_sweep_chart",
    "write_walkforward_chart",
]


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """``VENUE:INSTRUMENT[:PRICE_INSTRUMENT]``: the perpetual and whose candles price it."""

    venue: str
    instrument: str
    price_instrument: str | None

    @property
    def name(self) -> str:
        return f"{self.venue}:{self.instrument}"


def parse_market(text: str) -> MarketSpec:
    """A ``--market`` value.

    Raises:
        UsageError: not of the form, a bad venue or instrument, or not a perpetual.
    """
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise UsageError(
            f"bad --market {text!r}: use VENUE:INSTRUMENT or VENUE:INSTRUMENT:PRICE_INSTRUMENT, "
            "e.g. binance:BTC-USDT-PERP:BTC-USDT"
        )
    try:
        venue = parse_venue(parts[0])
        if parse_instrument(parts[1]).kind is not InstrumentKind.PERP:
            raise ValueError(f"{parts[1]} is not a perpetual: funding needs one")
        price = parts[2] if len(parts) == 3 else None
        if price is not None:
            parse_instrument(price)
    except ValueError as exc:
        raise UsageError(f"bad --market {text!r}: {exc}") from None
    return MarketSpec(venue, parts[1], price)


def _split_pair(pair: str, option: str, names: set[str]) -> tuple[str, str]:
    key, sep, text = pair.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or key not in names:
        raise UsageError(
            f"bad {option} {pair!r}: use KEY=VALUE with KEY one of {', '.join(sorted(names))}"
        )
    return key, text.strip()


def build_combos(
    strategy: str,
    grid: list[str],
    fixed: list[str],
    *,
    random: int = 0,
    seed: int = 0,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The combinations to run and the swept keys.

    ``grid`` items are ``KEY=V1,V2,...`` (a tuple value writes its items with ``/``:
    ``targets_r=1/2/3,1/2.6/5.8``); ``fixed`` items are ``KEY=VALUE``; ``random`` > 0 draws that
    many distinct combinations from the grid with ``seed``.

    Raises:
        UsageError: unknown strategy or key, a bad value, a key both swept and fixed, or a
            combination the strategy refuses.
    """
    spec = STRATEGIES.get(strategy)
    if spec is None:
        raise UsageError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    hints = typing.get_type_hints(spec.params)
    names = {f.name for f in dataclasses.fields(spec.params)}
    values: dict[str, list[Any]] = {}
    for pair in grid:
        key, text = _split_pair(pair, "--grid", names)
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise UsageError(f"bad --grid {pair!r}: give at least one value")
        try:
            values[key] = [coerce_param(t.replace("/", ","), hints[key]) for t in items]
        except ValueError as exc:
            raise UsageError(f"bad --grid {pair!r}: {exc}") from None
    base: dict[str, Any] = {}
    for pair in fixed:
        key, text = _split_pair(pair, "--param", names)
        if key in values:
            raise UsageError(f"--param {key} is also swept by --grid: give it once")
        try:
            base[key] = coerce_param(text, hints[key])
        except ValueError as exc:
            raise UsageError(f"bad --param {pair!r}: {exc}") from None
    if not values:
        raise UsageError("give at least one --grid KEY=V1,V2,...")
    combos = random_combos(values, random, seed) if random > 0 else grid_combos(values)
    out = [{**base, **c} for c in combos]
    for c in out:
        try:
            spec.params(**c).validate()
        except ValueError as exc:
            raise UsageError(f"{strategy} {_show(c, list(values))}: {exc}") from None
    return out, [k for k in values if len(values[k]) > 1]


def _show(combo: dict[str, Any], keys: list[str]) -> str:
    return " ".join(f"{k}={combo[k]}" for k in keys)


def load_sweep_markets(
    lake: Lake,
    specs: list[MarketSpec],
    timeframe: str,
    *,
    confirm_venues: tuple[str, ...] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    cascade_range: float = 0.03,
    oi_market: str | None = None,
) -> list[SweepMarket]:
    """Each market from the store, traded over ``[since, until)``.

    The bars before ``since`` stay in the market as the strategy's warm-up (its signals are
    computed on the whole history up to ``until``, so its indicators are warm at ``since``) and
    are not traded (``SweepMarket.start``).

    Raises:
        UsageError: missing data, bad timeframe, or an empty window.
    """
    if oi_market is not None and len(specs) > 1:
        raise UsageError("--oi-market goes with one --market (whose open interest it is)")
    out = []
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise UsageError(f"--market {spec.name} is given twice")
        seen.add(spec.name)
        try:
            for other in confirm_venues:
                parse_venue(other)
            loaded = load_market(
                lake, spec.venue, spec.instrument, timeframe,
                price_instrument=spec.price_instrument, cascade_range=cascade_range,
                confirm_venues=tuple(v for v in confirm_venues if v != spec.venue),
                oi_from=parse_oi_market(oi_market),
            )  # fmt: skip
            market = loaded.market
            i0, i1 = window_bars(market.ts, since, until)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        out.append(SweepMarket(spec.name, slice_market(market, 0, i1), loaded.bar_hours, i0))
    return out


def backend(workers: int, dask: bool, scheduler: str | None) -> tuple[int, str | None, str]:
    """(workers, dask address or None, a description) from the options.

    Raises:
        UsageError: a bad scheduler address or worker count.
    """
    if workers < 0:
        raise UsageError("--workers must be >= 0 (0 = every core)")
    if scheduler is not None:
        try:
            address = check_dask_address(scheduler)
        except ValueError as exc:
            raise UsageError(str(exc).replace("--dask address", "--scheduler")) from None
        return 1, address, f"dask scheduler {address}"
    if dask:
        return 1, "local", "dask LocalCluster, 2 workers"
    n = workers or default_workers()
    return n, None, f"local, {n} process{'es' if n > 1 else ''}"


def _check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise UsageError(f"bad --objective {objective!r}: choose one of {', '.join(OBJECTIVES)}")


def run_sweep(
    markets: list[SweepMarket],
    strategy: str,
    combos: list[dict[str, Any]],
    swept: list[str],
    config: EngineConfig,
    *,
    objective: str,
    workers: int,
    dask: str | None,
    backend_text: str,
) -> dict[str, Any]:
    """The sweep's rows (swept values and statistics per market and combination) and its setup.

    Raises:
        UsageError: a bad objective or configuration, or the Dask scheduler is unreachable.
    """
    _check_objective(objective)
    try:
        config.validate()
        rows = sweep(markets, strategy, combos, config, objective=objective, workers=workers,
                     dask=dask)  # fmt: skip
    except (ValueError, RuntimeError) as exc:
        raise UsageError(str(exc)) from None
    keep = ["market", *swept]
    fixed = {k: v for k, v in combos[0].items() if k not in swept}
    return {
        "strategy": strategy,
        "objective": objective,
        "backend": backend_text,
        "markets": [m.name for m in markets],
        "combinations": len(combos),
        "fixed": fixed,
        "rows": [{**{k: r[k] for k in keep}, **_stats(r)} for r in rows],
    }


def _stats(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("trades", "total_return", "sharpe", "win_rate", "expectancy_r", "profit_factor",
            "max_drawdown", "cagr", "avg_trade_duration_h", "funding_usd", "fees_usd")  # fmt: skip
    return {k: r[k] for k in keys}


def run_walkforward(
    market: SweepMarket,
    strategy: str,
    combos: list[dict[str, Any]],
    config: EngineConfig,
    *,
    folds: int,
    is_ratio: int,
    anchored: bool,
    objective: str,
    min_trades: int,
    workers: int,
    dask: str | None,
    backend_text: str,
) -> dict[str, Any]:
    """The walk-forward record (folds, chained out-of-sample, stability) and its setup.

    Raises:
        UsageError: bad folds, objective or configuration, or an unreachable scheduler.
    """
    _check_objective(objective)
    if min_trades < 0:
        raise UsageError("--min-trades must be >= 0")
    try:
        config.validate()
        wf = walk_forward(
            market, strategy, combos, config, folds=folds, is_ratio=is_ratio, anchored=anchored,
            objective=objective, min_trades=min_trades, workers=workers, dask=dask,
        )  # fmt: skip
    except (ValueError, RuntimeError) as exc:
        raise UsageError(str(exc)) from None
    return {
        "strategy": strategy,
        "market": market.name,
        "objective": objective,
        "backend": backend_text,
        "folds_n": folds,
        "is_ratio": is_ratio,
        "anchored": anchored,
        "min_trades": min_trades,
        "combinations": len(combos),
        **wf,
    }


def _plt() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--out .png: matplotlib is not installed") from None
    return plt


def write_sweep_chart(report: dict[str, Any], swept: list[str], path: Path) -> None:
    """The objective against the first swept parameter: every combination as a dot, and the
    median over the other swept parameters as a line, one colour per market and value of the
    second swept parameter (if any); PNG."""
    plt = _plt()
    objective = report["objective"]
    x_key = swept[0] if swept else None
    fig, ax = plt.subplots(figsize=(9, 5))
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in report["rows"]:
        label = r["market"] + (f" {swept[1]}={r[swept[1]]}" if len(swept) > 1 else "")
        groups.setdefault(label, []).append(r)
    xs = sorted({str(r[x_key]) for r in report["rows"]}) if x_key else [""]
    pos = {x: i for i, x in enumerate(xs)}
    for g, (label, items) in enumerate(list(groups.items())[:12]):
        pts = [(pos[str(r[x_key]) if x_key else ""], r[objective]) for r in items
               if r[objective] is not None]  # fmt: skip
        if not pts:
            continue
        jitter = (g - len(groups) / 2) * 0.02
        med = [
            (i, float(np.median([v for j, v in pts if j == i])))
            for i in sorted({p[0] for p in pts})
        ]
        (line,) = ax.plot(
            [m[0] + jitter for m in med], [m[1] for m in med], marker="o", label=label
        )
        ax.scatter(
            [p[0] + jitter for p in pts], [p[1] for p in pts], s=12, alpha=0.4,
            color=line.get_color(),
        )  # fmt: skip
    ax.set_xticks(range(len(xs)), xs)
    ax.set_xlabel(x_key or "")
    ax.set_ylabel(f"{objective} (line: median over the other parameters)")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_title(f"{report['strategy']} sweep ({report['combinations']} combinations)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_walkforward_chart(report: dict[str, Any], path: Path) -> None:
    """In-sample against out-of-sample objective per fold; PNG."""
    plt = _plt()
    objective = report["objective"]
    folds = [f for f in report["folds"] if f.get("chosen") is not None]
    fig, ax = plt.subplots(figsize=(9, 5))
    x = np.arange(len(folds))
    ins = [f["is"][objective] or 0.0 for f in folds]
    oos = [f["oos"][objective] or 0.0 for f in folds]
    ax.bar(x - 0.2, ins, 0.4, label="in-sample (chosen)")
    ax.bar(x + 0.2, oos, 0.4, label="out-of-sample")
    ax.set_xticks(x, [f"fold {f['fold']}\n{f['oos_start']:%Y-%m-%d}" for f in folds])
    ax.set_ylabel(objective)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_title(f"{report['strategy']} walk-forward on {report['market']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
