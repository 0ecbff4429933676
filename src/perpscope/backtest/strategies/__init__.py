"""Strategies: pure functions from a :class:`~perpscope.backtest.types.Market` and a parameters
dataclass to :class:`~perpscope.backtest.types.Signals` for the engine, or (for trades the
directional engine does not model, such as a two-legged carry) to a whole
:class:`~perpscope.backtest.types.BacktestRun`.

A strategy decides at each bar's close with what is known then (no look-ahead: a funding
settlement at time T is known from the first bar that closes after T). Its parameters are a
frozen dataclass with a ``validate()`` method raising ``ValueError`` with one clear sentence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from perpscope.backtest.engine import run_backtest
from perpscope.backtest.slicing import slice_market, slice_signals
from perpscope.backtest.strategies.basis_carry import BasisCarryParams, basis_carry
from perpscope.backtest.strategies.funding_fade import FundingFadeParams, funding_fade
from perpscope.backtest.strategies.liquidation_magnet import (
    LiquidationMagnetParams,
    liquidation_magnet,
)
from perpscope.backtest.strategies.oi_divergence import OIDivergenceParams, oi_divergence
from perpscope.backtest.strategies.triple_confluence import (
    TripleConfluenceParams,
    triple_confluence,
)
from perpscope.backtest.types import BacktestRun, EngineConfig, Market, Signals

__all__ = ["STRATEGIES", "StrategySpec", "run_strategy"]


@dataclass(frozen=True, slots=True)
class StrategySpec:
    """A registered strategy: its signals function (for the engine) or its own simulation, its
    parameters class and a one-line summary."""

    run: Callable[[Market, Any], Signals] | None
    params: type[Any]
    summary: str
    simulate: Callable[[Market, Any, EngineConfig], BacktestRun] | None = None


STRATEGIES: dict[str, StrategySpec] = {
    "funding-fade": StrategySpec(
        funding_fade,
        FundingFadeParams,
        "fade funding beyond +-0.05% per 8h for 3 settlements; ATR stop, 1R/2.6R, rest at the "
        "opposite funding extreme; optional two-venue agreement and ADX regime overlay",
    ),
    "oi-divergence": StrategySpec(
        oi_divergence,
        OIDivergenceParams,
        "fade a new 5-day price extreme made while open interest fell (ratio >= 0.5)",
    ),
    "triple-confluence": StrategySpec(
        triple_confluence,
        TripleConfluenceParams,
        "funding beyond +-0.05% for 24h+, OI divergence and a swing failure or break of "
        "structure, all in one direction; stop beyond the trigger bar, 1R/2.9R/5.4R",
    ),
    "liquidation-magnet": StrategySpec(
        liquidation_magnet,
        LiquidationMagnetParams,
        "scalp toward the densest estimated liquidation cluster within 5% on a structural "
        "trigger; T1 its near edge, T2 just beyond it, the rest out at the realised cascade's "
        "climax; half size",
    ),
    "basis-carry": StrategySpec(
        None,
        BasisCarryParams,
        "long spot + short perp while the 7-day funding average is above 0.03%; both legs",
        simulate=basis_carry,
    ),
}
"""Strategies by the name the CLI uses."""


def run_strategy(
    name: str,
    market: Market,
    params: Any,
    config: EngineConfig,
    windows: Sequence[tuple[int, int]],
) -> list[BacktestRun]:
    """Run strategy ``name`` on each window of bars ``(start, end)`` of ``market``.

    Signals come from the whole market (every strategy is causal, so a window's signals do not
    depend on later bars, and its indicators are warm at the window's start); the engine, or the
    strategy's own simulation, then runs on each window from the initial equity.

    Raises:
        ValueError: bad parameters, configuration or market.
    """
    spec = STRATEGIES[name]
    n = len(market.ts)
    if spec.simulate is not None:
        return [spec.simulate(slice_market(market, a, b), params, config) for a, b in windows]
    assert spec.run is not None
    signals = spec.run(market, params)
    out = []
    for a, b in windows:
        if (a, b) == (0, n):
            out.append(run_backtest(market, signals, config))
        else:
            out.append(
                run_backtest(slice_market(market, a, b), slice_signals(signals, a, b), config)
            )
    return out
