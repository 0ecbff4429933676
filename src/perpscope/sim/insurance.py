"""The simulated venues' insurance fund and auto-deleveraging (ADL).

One fund per simulated venue and perpetual (an isolated pool per market; real venues pool some
contracts together, which the model does not). A liquidated position is an isolated linear
position with margin = notional / leverage, so its equity left at the liquidation fill ``f`` is
``side x qty x (f - bankruptcy price)`` (the bankruptcy price from
:func:`perpscope.risk.bankruptcy_price`):

* equity >= 0 (filled better than bankruptcy): the **surplus** goes to the fund; the trader
  loses the whole margin, as on real venues;
* equity < 0 (filled beyond bankruptcy): the **shortfall** is paid by the fund, as far as its
  balance goes;
* what the fund cannot pay (it is exhausted: balance 0) is recovered by **auto-deleveraging**:
  the quantity of the liquidated position whose loss is not covered,
  ``qty x uncovered / shortfall``, is closed out of the opposite side's profitable trader
  positions in ADL ranking order (:func:`adl_scores`, Binance's and Bybit's published ranking:
  PnL% x effective leverage), whole positions, at the liquidated position's bankruptcy price.
  Only positions in profit at the mark are deleveraged; when they hold less than the uncovered
  quantity (the crowd covering into a cascade often closes them first), the rest of the
  shortfall is *unrecovered*: borne by the venue, like a socialised loss.

Liquidations settle against the fund one at a time in the order the engine closed them (the
order of their ``liquidated`` events), so the fund's path can be replayed from the output tables.
The functions below are pure numpy; :class:`InsuranceFund` holds the balances and the logs of a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from perpscope.risk import LiqVenue, PositionSide, PositionSpec, bankruptcy_price
from perpscope.sim.positions import PositionBook

__all__ = [
    "ADL_FIELDS",
    "InsuranceFund",
    "adl_queue",
    "adl_scores",
    "bankruptcy_prices",
    "draw_fund",
    "liquidation_equity",
]

ADL_FIELDS: tuple[str, ...] = (
    "step", "pid", "liquidated_pid", "px", "mark_px", "pnl_pct", "effective_leverage", "score",
    "queue_rank",
)  # fmt: skip
"""Fields of the ADL log, one entry per auto-deleveraged position."""


def bankruptcy_prices(
    side: np.ndarray, entry: np.ndarray, qty: np.ndarray, leverage: np.ndarray
) -> np.ndarray:
    """Bankruptcy price of isolated linear positions (margin = notional / leverage).

    From :func:`perpscope.risk.bankruptcy_price` (Binance USD-M rule, the simulated venues'
    rule); a position that never goes bankrupt above zero gets 0.0.
    """
    out = np.empty(side.size)
    for k in range(side.size):
        spec = PositionSpec(
            LiqVenue.BINANCE,
            PositionSide.LONG if side[k] > 0 else PositionSide.SHORT,
            float(entry[k]),
            float(qty[k]),
            float(leverage[k]),
        )
        px = bankruptcy_price(spec)
        out[k] = 0.0 if px is None else px
    return out


def liquidation_equity(
    side: np.ndarray, qty: np.ndarray, fill_px: np.ndarray, bankruptcy_px: np.ndarray
) -> np.ndarray:
    """Equity a liquidated position has left after its fill: surplus (> 0) or shortfall (< 0)."""
    return np.asarray(side * qty * (fill_px - bankruptcy_px))


def draw_fund(
    balance: float, equity: np.ndarray, surplus_share: float = 1.0
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Settle liquidations against a fund of ``balance``, one after another.

    Returns the balance after them, what the fund received from each (``surplus_share`` of a
    surplus), what it paid for each and each one's uncovered shortfall (to be recovered by ADL).
    """
    got = np.zeros(equity.size)
    paid = np.zeros(equity.size)
    uncovered = np.zeros(equity.size)
    for k, e in enumerate(equity.tolist()):
        if e >= 0.0:
            got[k] = surplus_share * e
            balance += got[k]
        else:
            pay = min(balance, -e)
            paid[k] = pay
            uncovered[k] = -e - pay
            balance -= pay
    return balance, got, paid, uncovered


def adl_scores(
    side: np.ndarray,
    entry: np.ndarray,
    qty: np.ndarray,
    bankruptcy_px: np.ndarray,
    mark: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ADL ranking of positions at ``mark``: PnL%, effective leverage and the score.

    The ranking Binance and Bybit publish: ``PnL% = (mark value - entry value) / |entry value|``,
    ``effective leverage = |mark value| / (mark value - bankrupt value)`` (values signed by
    side), score ``PnL% x effective leverage`` when ``PnL% > 0``, else ``PnL% / effective
    leverage``. A position with no equity left at ``mark`` gets an infinite effective leverage
    (it is being liquidated, not deleveraged).
    """
    pnl_pct = side * (mark - entry) / entry
    equity = side * qty * (mark - bankruptcy_px)
    with np.errstate(divide="ignore"):
        eff = np.where(equity > 0, qty * mark / np.where(equity > 0, equity, 1.0), np.inf)
        score = np.where(pnl_pct > 0, pnl_pct * eff, pnl_pct / eff)
    return pnl_pct, eff, score


def adl_queue(score: np.ndarray, qty: np.ndarray, ids: np.ndarray, need: float) -> np.ndarray:
    """Positions to deleverage, in queue order: highest score first (ties: lower id first),
    whole positions, until their quantity reaches ``need`` (all of them if it never does).

    Scores equal to 12 significant digits tie: positions of one entry and one leverage score
    alike in exact arithmetic (the quantity cancels out of the effective leverage) but not
    always in the last bits, and which way those bits fall changed between numpy releases."""
    tie = np.array([float(f"{s:.12g}") for s in score.tolist()])
    order = np.lexsort((ids, -tie))
    cum = np.cumsum(qty[order])
    n = int(np.searchsorted(cum, need * (1.0 - 1e-12))) + 1
    return order[: min(n, order.size)]


@dataclass
class InsuranceFund:
    """The funds of one run (one per market) and their per-step flows.

    ``inflow`` (surpluses), ``outflow`` (shortfalls paid), ``uncovered`` (shortfalls the fund
    could not pay) and ``unrecovered`` (the part of those ADL could not recover either: too few
    profitable opposite positions) are USD per step and market; ``balance_at`` is the balance
    after the last settlement in a step (NaN where nothing settled); ``adl`` logs every
    deleveraged position.
    """

    start: np.ndarray
    surplus_share: float
    balance: np.ndarray
    inflow: np.ndarray
    outflow: np.ndarray
    uncovered: np.ndarray
    unrecovered: np.ndarray
    balance_at: np.ndarray
    adl: dict[str, list[float]] = field(default_factory=dict)
    _bk: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def create(cls, start_usd: np.ndarray, steps: int, surplus_share: float = 1.0) -> InsuranceFund:
        """Funds starting at ``start_usd`` (one per market) for a run of ``steps`` steps."""
        shape = (steps, start_usd.size)
        return cls(
            start=start_usd.astype(float).copy(),
            surplus_share=surplus_share,
            balance=start_usd.astype(float).copy(),
            inflow=np.zeros(shape),
            outflow=np.zeros(shape),
            uncovered=np.zeros(shape),
            unrecovered=np.zeros(shape),
            balance_at=np.full(shape, np.nan),
            adl={k: [] for k in ADL_FIELDS},
        )

    def _bankruptcy(self, book: PositionBook, ids: np.ndarray) -> np.ndarray:
        """Bankruptcy prices of ``ids`` (computed once per position, then cached)."""
        if self._bk.size < book.n:
            grown = np.full(max(book.capacity, book.n), np.nan)
            grown[: self._bk.size] = self._bk
            self._bk = grown
        bk = self._bk[ids]
        todo = np.isnan(bk)
        if todo.any():
            j = ids[todo]
            self._bk[j] = bankruptcy_prices(
                book.side[j], book.entry[j], book.qty[j], book.leverage[j]
            )
        return np.asarray(self._bk[ids])

    def settle(
        self,
        step: int,
        book: PositionBook,
        ids: np.ndarray,
        fill_px: np.ndarray,
        mark: Callable[[], np.ndarray],
    ) -> list[tuple[int, float]]:
        """Settle liquidated positions ``ids`` (already closed in ``book`` at ``fill_px``).

        Surpluses feed the fund, shortfalls draw it; an uncovered shortfall deleverages the
        opposite side (closed in ``book`` here, event ``adl``). Returns ``(position, price)`` of
        every deleveraged position, for the engine to book the market maker's side of it.
        """
        mk = book.market[ids]
        bk = self._bankruptcy(book, ids)
        equity = liquidation_equity(book.side[ids], book.qty[ids], fill_px, bk)
        out: list[tuple[int, float]] = []
        for m in np.unique(mk).tolist():
            sel = np.flatnonzero(mk == m)
            bal, got, paid, unc = draw_fund(float(self.balance[m]), equity[sel], self.surplus_share)
            e = equity[sel]
            self.inflow[step, m] += got.sum()
            self.outflow[step, m] += paid.sum()
            self.uncovered[step, m] += unc.sum()
            self.balance[m] = bal
            self.balance_at[step, m] = bal
            for k in np.flatnonzero(unc > 0).tolist():
                i = int(ids[sel[k]])
                need = float(book.qty[i] * unc[k] / -e[k])
                closed = self._deleverage(step, book, m, i, float(bk[sel[k]]), need, mark)
                done = float(book.qty[[j for j, _ in closed]].sum())
                self.unrecovered[step, m] += unc[k] * max(0.0, 1.0 - done / need)
                out += closed
        return out

    def _deleverage(
        self,
        step: int,
        book: PositionBook,
        m: int,
        liquidated: int,
        px: float,
        need: float,
        mark: Callable[[], np.ndarray],
    ) -> list[tuple[int, float]]:
        """Close ``need`` base units of the opposite side's profitable positions in queue order."""
        ids = book.open_ids()
        ids = ids[(book.market[ids] == m) & (book.side[ids] == -book.side[liquidated])]
        if ids.size == 0:
            return []
        mark_px = float(mark()[m])
        pnl, eff, score = adl_scores(
            book.side[ids], book.entry[ids], book.qty[ids], self._bankruptcy(book, ids), mark_px
        )
        ok = pnl > 0
        ids, pnl, eff, score = ids[ok], pnl[ok], eff[ok], score[ok]
        if ids.size == 0:
            return []
        picked = adl_queue(score, book.qty[ids], ids, need)
        chosen = ids[picked]
        book.deleverage(step, chosen, np.full(chosen.size, px))
        log = self.adl
        for r, k in enumerate(picked.tolist()):
            for name, v in zip(
                ADL_FIELDS,
                (step, ids[k], liquidated, px, mark_px, pnl[k], eff[k], score[k], r + 1),
                strict=True,
            ):
                log[name].append(float(v))
        return [(int(i), px) for i in chosen.tolist()]
