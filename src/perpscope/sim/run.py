"""The simulator's entry point: a config in, store-shaped tables out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import polars as pl

from perpscope.sim.config import MarketParams, SimConfig
from perpscope.sim.engine import simulate
from perpscope.sim.options import options_tables
from perpscope.sim.presets import PRESETS
from perpscope.sim.tables import build_tables

__all__ = ["SimResult", "run_simulation"]


@dataclass(frozen=True, slots=True)
class SimResult:
    """Frames shaped like the store tables of the same names (``funding``, ``ohlcv``...).

    Attributes:
        tables: store table name -> frame.
        config: what was simulated.
        agent_steps: agent decisions taken (an order considered by one agent population in one
            market and step, plus one per position open, close or liquidation check).
    """

    tables: dict[str, pl.DataFrame]
    config: SimConfig
    agent_steps: int = 0


def run_simulation(config: SimConfig, params: MarketParams | None = None) -> SimResult:
    """Simulate ``config.days`` up to ``config.end`` on every asset and venue of ``config``.

    Args:
        config: seed, length, markets, scenario, whether liquidations are enforced and whether
            the options market runs.
        params: agent parameters overriding the scenario's preset (for studies and tests).

    Returns:
        The store-shaped tables; the same config always gives identical tables.
    """
    p = params or PRESETS[config.scenario]
    rec, book = simulate(config, p)
    tables = build_tables(config, rec, book)
    if config.options:
        catalyst = None  # the first shock, when the option market knows it is coming
        if p.catalyst_vol > 0 and p.shocks:
            first = min(s.at_frac for s in p.shocks)
            catalyst = (int(first * rec.series["index_c"].shape[0]), p.catalyst_vol)
        tables.update(
            options_tables(
                config.assets,
                config.venues,
                config.end - timedelta(days=config.days),
                config.seed,
                rec.series["index_o"],
                rec.series["index_c"],
                rec.series["mark_c"],
                catalyst=catalyst,
            )
        )
    return SimResult(tables, config, rec.agent_steps)
