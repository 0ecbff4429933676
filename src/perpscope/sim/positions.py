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
from perpscope.sim._kernels import drop_ids, liq_px_kernel, open_fields

__all__ = [
    "AGENT_KINDS",
    "POSITION_TRADER",
    "SIM_TIERS",
    "PositionBook",
    "position_liquidation_px",
]

AGENT_KINDS: tuple[str, ...] = (
    "trend_follower",
    "mean_reverter",
    "noise_trader",
    "position_trader",
)
"""Agent kinds that hold leveraged positions (index = the ``kind`` code)."""

POSITION_TRADER = 3
"""The kind code of position traders (``MarketParams.patient_share``)."""


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


_CAPS = np.array([t.cap for t in SIM_TIERS])
_FLOORS = np.array([t.floor for t in SIM_TIERS])
_MMRS = np.array([t.mmr for t in SIM_TIERS])
_CUMS = np.array([t.maint_amount for t in SIM_TIERS])
_MAXLEV = np.array([t.max_leverage or 1.0 for t in SIM_TIERS])
_REL_TOL = 1e-9  # the risk module's tolerance on a tier's bounds
_LO = _FLOORS * (1 - _REL_TOL) - 1e-12
_HI = np.append(_CAPS[:-1] * (1 + _REL_TOL) + 1e-12, np.inf)


def max_leverage_many(notional_usd: np.ndarray) -> np.ndarray:
    """:func:`max_leverage` of each notional (the tier holding it, the last one open-ended)."""
    i = np.minimum(np.searchsorted(_CAPS, notional_usd, side="left"), _CAPS.size - 1)
    return np.asarray(_MAXLEV[i])


def liquidation_px_many(
    side: np.ndarray, entry_px: np.ndarray, qty: np.ndarray, leverage: np.ndarray
) -> np.ndarray:
    """:func:`position_liquidation_px` of many positions at once, by the same closed form.

    The risk module's Binance USD-M rule: for each tier the price where the isolated margin
    ``qty x entry / leverage`` plus PnL meets ``qty x price x MMR - cum``; the tier whose bounds
    hold ``qty x price`` (the last one open-ended) is the answer, the one nearer entry if two
    agree. Positions with no consistent tier (none in the simulator's range) are solved one by
    one by the risk module itself.
    """
    out, bad = liq_px_kernel(
        np.ascontiguousarray(side, np.int64),
        np.ascontiguousarray(entry_px, float),
        np.ascontiguousarray(qty, float),
        np.ascontiguousarray(leverage, float),
        _CUMS,
        _MMRS,
        _LO,
        _HI,
    )
    if np.count_nonzero(bad):
        _solve_bad(out, bad, side, entry_px, qty, leverage)
    return np.asarray(out)


def _solve_bad(
    out: np.ndarray,
    bad: np.ndarray,
    side: np.ndarray,
    entry_px: np.ndarray,
    qty: np.ndarray,
    leverage: np.ndarray,
) -> None:
    """Solve the ``bad`` positions' liquidation prices one by one by the risk module, in ``out``."""
    for i in np.flatnonzero(bad).tolist():
        out[i] = position_liquidation_px(
            int(side[i]), float(entry_px[i]), float(qty[i]), float(leverage[i])
        )


_EVENT_FIELDS = ("step", "pid", "event", "px", "qty_after", "funding", "liq_fill")


@dataclass
class PositionBook:
    """Positions as parallel arrays, the ids of the open ones, and the event log.

    ``open_idx`` holds the ids of the open positions in ascending order (the order they
    opened), so the per-step work scales with the open book, not with every position ever
    opened. It is a view of a buffer that opening and closing update in place: a caller that
    keeps it across an open or a close takes a copy.
    """

    capacity: int = 4096
    n: int = 0
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
    _open: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # open_idx's buffer
    _n_open: int = 0
    _chunks: dict[str, list[np.ndarray]] = field(default_factory=dict)
    _counts: list[tuple[int, int, int]] = field(default_factory=list)  # step, event, how many
    _events: dict[str, np.ndarray] | None = None

    def __post_init__(self) -> None:
        self._grow(self.capacity)
        self._chunks = {k: [] for k in _EVENT_FIELDS if k not in ("step", "event")}

    @property
    def open_idx(self) -> np.ndarray:
        """The ids of the open positions, ascending (a view: see the class)."""
        return self._open[: self._n_open]

    @property
    def n_open(self) -> int:
        """Number of open positions."""
        return self._n_open

    @property
    def events(self) -> dict[str, np.ndarray]:
        """The event log: one entry per open, close and liquidation, in the order they happened.

        ``event`` is 0 (open), 1 (close by the owner), 2 (liquidation) or 3 (ADL); ``funding`` the
        position's funding paid so far; ``liq_fill`` the liquidation's fill price (else 0).
        """
        if self._events is None:
            got = {k: np.concatenate(v) if v else np.zeros(0) for k, v in self._chunks.items()}
            if self._counts:
                step, code, count = (np.array(x, np.int64) for x in zip(*self._counts, strict=True))
                got["step"], got["event"] = np.repeat(step, count), np.repeat(code, count)
            else:
                got["step"], got["event"] = np.zeros(0), np.zeros(0)
            self._events = {k: got[k] for k in _EVENT_FIELDS}
        return self._events

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

    def open_many(
        self,
        step: int,
        market: np.ndarray,
        side: np.ndarray,
        qty: np.ndarray,
        entry_px: np.ndarray,
        leverage: np.ndarray,
        kind: np.ndarray,
        close_step: np.ndarray,
        take_profit_roe: np.ndarray,
    ) -> np.ndarray:
        """Open positions (liquidation prices by the risk module's rule); log the events.

        Each leverage is capped at the largest the tier of the position's notional allows. The
        take-profit price is where the position's return on margin reaches ``take_profit_roe``.
        Returns the new ids.
        """
        k = int(market.size)
        while self.n + k > self.capacity:
            self._grow(self.capacity * 2)
        a, b = self.n, self.n + k
        ids = np.arange(a, b)
        self.n = b
        side = np.ascontiguousarray(side, np.int64)
        entry_px = np.ascontiguousarray(entry_px, float)
        qty = np.ascontiguousarray(qty, float)
        lev, liq, bad, tp = open_fields(
            side, entry_px, qty, np.ascontiguousarray(leverage, float),
            np.ascontiguousarray(take_profit_roe, float), _CAPS, _MAXLEV, _CUMS, _MMRS, _LO, _HI,
        )  # fmt: skip
        if np.count_nonzero(bad):
            _solve_bad(liq, bad, side, entry_px, qty, lev)
        # the new ids are the range a..b: slices, not fancy indexing
        self.market[a:b], self.side[a:b], self.qty[a:b] = market, side, qty
        self.entry[a:b], self.leverage[a:b], self.kind[a:b] = entry_px, lev, kind
        self.close_step[a:b] = close_step
        np.maximum(liq, 0.0, out=self.liq[a:b])
        np.maximum(tp, 0.0, out=self.tp[a:b])
        self.alive[a:b] = True
        self.funding[a:b] = 0.0
        n_open = self._n_open + k
        if n_open > self._open.size:
            grown = np.empty(max(2 * self._open.size, n_open, 1024), np.int64)
            grown[: self._n_open] = self._open[: self._n_open]
            self._open = grown
        self._open[self._n_open : n_open] = ids
        self._n_open = n_open
        self._log(step, ids, 0, entry_px, qty, np.zeros(k), np.zeros(k))
        return ids

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
        """Open one position (see :meth:`open_many`); returns its id."""
        ids = self.open_many(
            step, np.array([market]), np.array([side]), np.array([qty], float),
            np.array([entry_px], float), np.array([leverage], float), np.array([kind]),
            np.array([close_step]), np.array([take_profit_roe], float),
        )  # fmt: skip
        return int(ids[0])

    def close(self, step: int, ids: np.ndarray, fill_px: np.ndarray, liquidated: bool) -> None:
        """Close positions ``ids`` (by their owner, or by the liquidation engine) at ``fill_px``."""
        if ids.size == 0:
            return
        self.alive[ids] = False
        self._n_open = drop_ids(self._open, self._n_open, np.ascontiguousarray(ids, np.int64))
        fill = np.asarray(fill_px, float)
        zeros = np.zeros(ids.size)
        self._log(step, ids, 2 if liquidated else 1, fill, zeros, fill if liquidated else zeros,
                  self.funding[ids])  # fmt: skip

    def deleverage(self, step: int, ids: np.ndarray, px: np.ndarray) -> None:
        """Close positions ``ids`` by auto-deleveraging at ``px`` (event ``adl``)."""
        if ids.size == 0:
            return
        self.alive[ids] = False
        self._n_open = drop_ids(self._open, self._n_open, np.ascontiguousarray(ids, np.int64))
        zeros = np.zeros(ids.size)
        self._log(step, ids, 3, np.asarray(px, float), zeros, zeros, self.funding[ids])

    def _log(
        self, step: int, ids: np.ndarray, code: int, px: np.ndarray, qty_after: np.ndarray,
        fill: np.ndarray, funding: np.ndarray,
    ) -> None:  # fmt: skip
        """Log ``ids``' events (``funding``: their funding paid so far, a copy). The step and
        the event code are kept once per call and repeated per event in :attr:`events`."""
        c = self._chunks
        self._counts.append((step, code, ids.size))
        c["pid"].append(ids.astype(np.int64))
        c["px"].append(np.asarray(px, float))
        c["qty_after"].append(np.asarray(qty_after, float))
        c["funding"].append(funding)
        c["liq_fill"].append(np.asarray(fill, float))
        self._events = None

    def open_ids(self) -> np.ndarray:
        """Indices of the open positions (ascending; a view, see the class)."""
        return self.open_idx
