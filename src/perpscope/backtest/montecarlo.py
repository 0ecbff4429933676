"""Monte Carlo of a backtest's trades: how lucky was the order, and how bad can it get?

The trades' R multiples (profit over the risk taken, from ``backtest run --trades``) are replayed
at a fixed risk per trade: a trade of ``R`` multiplies the equity by ``1 + risk x R`` (floored at
0: a loss cannot take more than the whole account). Two ways to make the paths:

* ``bootstrap``: each path draws as many trades as the backtest had, with replacement
  (``rng.integers(0, n, size=(paths, n))``): the final equity and the drawdowns both vary;
* ``reshuffle``: each path is a permutation of the trades (``rng.permuted`` of ``0..n-1`` per
  row): the final equity is the same on every path (a product does not depend on its order), so
  this reads the drawdowns the same trades could have made in another order.

Both draw from ``numpy.random.default_rng(seed)``, so a seed gives the same numbers everywhere.

Readings: the final equity (a multiple of the initial) and the maximum drawdown (a negative
fraction, ``E_t / max(E_0..E_t) - 1``) at the 5th, 25th, 50th, 75th and 95th percentiles over the
paths (numpy's linear interpolation), and the risk of ruin: the share of paths whose drawdown
reaches ``ruin_drawdown`` (50% by default) at some point. The fan chart's bands are the same
percentiles of the equity after each trade.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

__all__ = ["METHODS", "PERCENTILES", "MonteCarloResult", "draw_orders", "monte_carlo"]

PERCENTILES: Final = (5, 25, 50, 75, 95)
METHODS: Final = ("bootstrap", "reshuffle")
MAX_CELLS: Final = 50_000_000
"""The most path x trade cells one run may hold (400 MB of float64)."""

Method = Literal["bootstrap", "reshuffle"]


@dataclass(frozen=True, slots=True)
class MonteCarloResult:
    """The distribution over ``paths`` paths (see the module doc for each reading)."""

    method: str
    paths: int
    trades: int
    risk_frac: float
    seed: int
    ruin_drawdown: float
    final_equity: dict[int, float]
    max_drawdown: dict[int, float]
    risk_of_ruin: float
    fan: npt.NDArray[np.float64]
    """Equity multiples, one row per percentile of :data:`PERCENTILES`, one column per trade
    (column 0 is the start, 1.0)."""

    def to_json(self) -> dict[str, Any]:
        """The readings as a flat record (percentile keys ``p5`` ... ``p95``)."""
        return {
            "method": self.method,
            "paths": self.paths,
            "trades": self.trades,
            "risk_frac": self.risk_frac,
            "seed": self.seed,
            "ruin_drawdown": self.ruin_drawdown,
            "risk_of_ruin": self.risk_of_ruin,
            "final_equity": {f"p{p}": v for p, v in self.final_equity.items()},
            "max_drawdown": {f"p{p}": v for p, v in self.max_drawdown.items()},
        }


def draw_orders(
    n: int, paths: int, method: Method, rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """The trade indices of every path, ``(paths, n)``, drawn as the module doc says."""
    if method == "bootstrap":
        return rng.integers(0, n, size=(paths, n))
    return rng.permuted(np.broadcast_to(np.arange(n), (paths, n)), axis=1)


def monte_carlo(
    r_multiples: npt.ArrayLike,
    risk_frac: float,
    *,
    paths: int = 10_000,
    method: Method = "bootstrap",
    seed: int = 0,
    ruin_drawdown: float = 0.5,
) -> MonteCarloResult:
    """Replay the trades ``paths`` times at ``risk_frac`` of the equity per trade.

    Raises:
        ValueError: no trades, a non-finite R multiple, or a parameter out of range.
    """
    r = np.asarray(r_multiples, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        raise ValueError("no trades to replay")
    if not np.isfinite(r).all():
        raise ValueError("every R multiple must be a finite number")
    if not (math.isfinite(risk_frac) and 0.0 < risk_frac <= 1.0):
        raise ValueError(f"the risk per trade must be above 0% and at most 100%, not {risk_frac:g}")
    if not (math.isfinite(ruin_drawdown) and 0.0 < ruin_drawdown <= 1.0):
        raise ValueError(
            f"the ruin drawdown must be above 0% and at most 100%, not {ruin_drawdown:g}"
        )
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose {' or '.join(METHODS)}")
    if paths < 1 or paths * r.size > MAX_CELLS:
        raise ValueError(
            f"paths x trades must be between 1 and {MAX_CELLS:,} (asked {paths:,} x {r.size:,})"
        )
    idx = draw_orders(r.size, paths, method, np.random.default_rng(seed))
    growth = np.maximum(1.0 + risk_frac * r[idx], 0.0)
    equity = np.ones((paths, r.size + 1))
    np.cumprod(growth, axis=1, out=equity[:, 1:])
    peak = np.maximum.accumulate(equity, axis=1)
    max_dd = (equity / peak - 1.0).min(axis=1)
    final = equity[:, -1]
    return MonteCarloResult(
        method=method,
        paths=paths,
        trades=int(r.size),
        risk_frac=risk_frac,
        seed=seed,
        ruin_drawdown=ruin_drawdown,
        final_equity=dict(
            zip(PERCENTILES, np.percentile(final, PERCENTILES).tolist(), strict=True)
        ),
        max_drawdown=dict(
            zip(PERCENTILES, np.percentile(max_dd, PERCENTILES).tolist(), strict=True)
        ),
        risk_of_ruin=float((max_dd <= -ruin_drawdown).mean()),
        fan=np.percentile(equity, PERCENTILES, axis=0),
    )
