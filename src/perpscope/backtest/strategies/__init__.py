"""Strategies: pure functions from a :class:`~perpscope.backtest.types.Market` and a parameters
dataclass to :class:`~perpscope.backtest.types.Signals`.

A strategy decides at each bar's close with what is known then (no look-ahead: a funding
settlement at time T is known from the first bar that closes after T). Its parameters are a
frozen dataclass with a ``validate()`` method raising ``ValueError`` with one clear sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perpscope.backtest.strategies.funding_fade import FundingFadeParams, funding_fade
from perpscope.backtest.types import Market, Signals

__all__ = ["STRATEGIES", "StrategySpec"]


@dataclass(frozen=True, slots=True)
class StrategySpec:
    """A registered strategy: its function, its parameters class and a one-line summary."""

    run: Callable[[Market, Any], Signals]
    params: type[Any]
    summary: str


STRATEGIES: dict[str, StrategySpec] = {
    "funding-fade": StrategySpec(
        funding_fade,
        FundingFadeParams,
        "fade funding beyond +-0.05% per 8h for 3 settlements; ATR stop, 1R/2.6R, rest at the "
        "opposite funding extreme; optional two-venue agreement and ADX regime overlay",
    ),
}
"""Strategies by the name the CLI uses."""
