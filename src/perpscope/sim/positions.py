"""The traders' leveraged positions: true entry, size, margin and liquidation price.

Positions are isolated-margin, one-way linear perpetual positions. Their liquidation prices come
from :func:`perpscope.risk.liquidation_price.liquidation_price` with the Binance USD-M rule and the
simulated venues' tier table (:data:`SIM_TIERS`), exactly as the risk calculators compute them for
a real position. Every open, close and liquidation is recorded as a ground-truth event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from perpscope.risk import (
    LiqVenue,
    PositionSide,
    PositionSpec,
    Tier,
    check_tiers,
    liquidation_price,
    maint_amounts_by_recursion,
    tier_for,
)

__all__ = ["AGENT_KINDS", "SIM_TIERS", "PositionBook", "position_liquidation_px"]

AGENT_KINDS: tuple[str, ...] = ("trend_follower", "mean_reverter", "noise_trader")
"""Agent kinds that hold leveraged positions (index = the ``kind`` code)."""


def _tiers() -> tuple[Tier, ...]:
    bounds = [0.0, 5e4, 2.5e5, 1e6, 5e6, 2e7, 1e9]
    mmrs = [0.004, 0.005, 0.01, 0.025, 0.05, 0.1]
    max_lev = [125.0, 100.0, 50.0, 20.0, 10.0, 5.0]
    raw = [
        Tier(i + 1, bounds[i], bounds[i + 1], mmrs[i], 0.0, max_lev[i]) for i in range(len(mmrs))
    ]
    cums = maint_amounts_by_recursion(raw)
    return check_tiers(
        [
            Tier(t.tier, t.floor, t.cap, t.mmr, cum, t.max_leverage)
            for t, cum in zip(raw, cums, strict=True)
        ]
    )


SIM_TIERS: tuple[Tier, ...] = _tiers()
"""Maintenance-margin tiers of the simulated venues (notional in USD, Binance-like)."""


def position_liquidation_px(side: int, entry_px: float, qty: float, leverage: float) -> float:
    """True liquidation price of an isolated position with margin = notional / leverage.

    Uses the risk module's Binance USD-M formula on :data:`SIM_TIERS`; a price <= 0 (no
    liquidation above zero) is returned as 0.0.
    """
    spec = PositionSpec(
        LiqVenue.BINANCE,
        PositionSide.LONG if side > 0 else PositionSide.SHORT,
        entry_px,
        qty,
        leverage,
    )
    px = liquidation_price(spec, SIM_TIERS).liquidation_px
    return 0.0 if px is None else px


def max_leverage(notional_usd: float) -> float:
    """Largest leverage the tier table allows for a position of ``notional_usd``."""
    t = tier_for(SIM_TIERS, notional_usd, open_ended=True)
    return t.max_leverage or 1.0


@dataclass
class PositionBook:
    """Open positions as parallel arrays, plus the event log of every position ever opened."""

    capacity: int = 4096
    n: int = 0
    n_open: int = 0
    market: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    side: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    qty: np.ndarray = field(default_factory=lambda: np.zeros(0))
    entry: np.ndarray = field(default_factory=lambda: np.zeros(0))
    liq: np.ndarray = field(default_factory=lambda: np.zeros(0))
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    funding: np.ndarray = field(default_factory=lambda: np.zeros(0))
    close_step: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    kind: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    leverage: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tp: np.ndarray = field(default_factory=lambda: np.zeros(0))
    events: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._grow(self.capacity)
        self.events = {
            k: [] for k in ("step", "pid", "event", "px", "qty_after", "funding", "liq_fill")
        }

    def _grow(self, cap: int) -> None:
        def ext(a: np.ndarray) -> np.ndarray:
            out = np.zeros(cap, dtype=a.dtype)
            out[: a.size] = a
            return out

        self.market, self.side, self.qty = ext(self.market), ext(self.side), ext(self.qty)
        self.entry, self.liq, self.alive = ext(self.entry), ext(self.liq), ext(self.alive)
        self.funding, self.close_step = ext(self.funding), ext(self.close_step)
        self.kind, self.leverage, self.tp = ext(self.kind), ext(self.leverage), ext(self.tp)
        self.capacity = cap

    def open(
        self,
        step: int,
        market: int,
        side: int,
        qty: float,
        entry_px: float,
        leverage: float,
        kind: int,
        close_step: int,
        take_profit_roe: float = math.inf,
    ) -> int:
        """Open a position (its liquidation price from the risk module) and log the event.

        The leverage is capped at the largest the tier of the position's notional allows. The
        take-profit price is where the position's return on margin reaches ``take_profit_roe``.
        """
        leverage = min(leverage, max_leverage(qty * entry_px))
        if self.n == self.capacity:
            self._grow(self.capacity * 2)
        i = self.n
        self.n += 1
        self.market[i], self.side[i], self.qty[i], self.entry[i] = market, side, qty, entry_px
        self.leverage[i], self.kind[i], self.close_step[i] = leverage, kind, close_step
        self.liq[i] = position_liquidation_px(side, entry_px, qty, leverage)
        self.tp[i] = max(entry_px * (1.0 + side * take_profit_roe / leverage), 0.0)
        self.alive[i] = True
        self.n_open += 1
        self.funding[i] = 0.0
        self._log(step, i, 0, entry_px, qty, 0.0)
        return i

    def close(self, step: int, ids: np.ndarray, fill_px: np.ndarray, liquidated: bool) -> None:
        """Close positions ``ids`` (by their owner, or by the liquidation engine) at ``fill_px``."""
        self.alive[ids] = False
        self.n_open -= ids.size
        code = 2 if liquidated else 1
        for i, px in zip(ids.tolist(), fill_px.tolist(), strict=True):
            self._log(step, i, code, px, 0.0, px if liquidated else 0.0)

    def deleverage(self, step: int, ids: np.ndarray, px: np.ndarray) -> None:
        """Close positions ``ids`` by auto-deleveraging at ``px`` (event ``adl``)."""
        self.alive[ids] = False
        self.n_open -= ids.size
        for i, p in zip(ids.tolist(), px.tolist(), strict=True):
            self._log(step, i, 3, p, 0.0, 0.0)

    def _log(self, step: int, i: int, code: int, px: float, qty_after: float, fill: float) -> None:
        ev = self.events
        ev["step"].append(step)
        ev["pid"].append(i)
        ev["event"].append(code)
        ev["px"].append(px)
        ev["qty_after"].append(qty_after)
        ev["funding"].append(float(self.funding[i]))
        ev["liq_fill"].append(fill)

    def open_ids(self) -> np.ndarray:
        """Indices of the open positions."""
        return np.flatnonzero(self.alive[: self.n])
