"""Inputs and outputs of the backtest engine.

A backtest runs over **aligned arrays**: one entry per bar, in time order. Funding settlements are
given separately at their actual timestamps (they need not fall on bar boundaries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from perpscope.risk._checks import PositionSide
from perpscope.risk.liquidation_price import (
    LiqVenue,
    PositionSpec,
    liquidation_price,
    single_tier,
)

__all__ = [
    "EXIT_REASONS",
    "BacktestRun",
    "TRADE_COLUMNS",
    "EngineConfig",
    "FundingSeries",
    "Market",
    "Signals",
    "liquidation_ratios",
]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

TRADE_COLUMNS: tuple[str, ...] = (
    "entry_bar",
    "exit_bar",
    "side",
    "entry_px",
    "exit_px",
    "qty",
    "gross_pnl",
    "funding_usd",
    "fees_usd",
    "pnl_usd",
    "risk_usd",
    "r_multiple",
    "exit_reason",
    "stop_first",
)
"""Columns of the engine's trade matrix (one row per trade, all float64)."""

EXIT_REASONS: tuple[str, ...] = (
    "stop",
    "breakeven",
    "target",
    "signal",
    "time",
    "liquidation",
    "end",
)
"""``exit_reason`` codes: the index into this tuple (the reason of the last fill)."""


@dataclass(frozen=True, slots=True)
class FundingSeries:
    """Another venue's funding settlements of the same asset (a strategy's confirmation).

    Attributes:
        venue: the venue id.
        ts: settlement times, int64 ns, increasing.
        rate: rate per settlement (fraction).
        interval_h: the stored interval of each settlement, hours.
    """

    venue: str
    ts: I64
    rate: F64
    interval_h: F64


@dataclass(frozen=True, slots=True)
class Market:
    """Aligned bar arrays and the funding settlements.

    Attributes:
        ts: bar open times, int64 nanoseconds since the epoch (UTC), strictly increasing.
        o, h, l, c: the traded instrument's bars (fills, stops and targets use these).
        mark_o, mark_h, mark_l, mark_c: mark-price bars (liquidation and funding notional); the
            trade bars when no mark candles exist (``mark_is_trade`` then says so).
        cascade: bars on which the extra cascade slippage applies.
        funding_ts: settlement times, int64 ns, increasing.
        funding_rate: rate per settlement (fraction; positive = longs pay shorts).
        funding_interval_h: the stored interval of each settlement, hours.
        mark_is_trade: no mark candles: funding and liquidation use the trade bars.
        other_funding: other venues' funding of the same asset, for strategies that want venues
            to agree (the engine ignores it: only ``funding_*`` is paid).
        oi_ts, oi: open-interest observations (times int64 ns, value), for strategies that read
            open interest (None: not loaded).
        liq_ts, liq_long, liq_usd: realised liquidation events of the traded perpetual (times
            int64 ns, increasing; True where a long was liquidated; USD notional), for strategies
            that read them (None: not loaded).
    """

    ts: I64
    o: F64
    h: F64
    l: F64  # noqa: E741 - the usual OHLC name
    c: F64
    mark_o: F64
    mark_h: F64
    mark_l: F64
    mark_c: F64
    cascade: npt.NDArray[np.bool_]
    funding_ts: I64
    funding_rate: F64
    funding_interval_h: F64
    mark_is_trade: bool = True
    other_funding: tuple[FundingSeries, ...] = ()
    oi_ts: I64 | None = None
    oi: F64 | None = None
    liq_ts: I64 | None = None
    liq_long: npt.NDArray[np.bool_] | None = None
    liq_usd: F64 | None = None

    @staticmethod
    def from_ohlc(
        ts: I64,
        o: F64,
        h: F64,
        l: F64,  # noqa: E741
        c: F64,
        funding_ts: I64 | None = None,
        funding_rate: F64 | None = None,
        funding_interval_h: F64 | None = None,
        cascade: npt.NDArray[np.bool_] | None = None,
    ) -> Market:
        """A market whose mark bars are its trade bars (no mark candles)."""
        n = len(ts)
        fts = np.zeros(0, np.int64) if funding_ts is None else np.asarray(funding_ts, np.int64)
        frate = np.zeros(0) if funding_rate is None else np.asarray(funding_rate, np.float64)
        fint = (
            np.full(len(fts), 8.0)
            if funding_interval_h is None
            else np.asarray(funding_interval_h, np.float64)
        )
        return Market(
            np.asarray(ts, np.int64),
            np.asarray(o, np.float64),
            np.asarray(h, np.float64),
            np.asarray(l, np.float64),
            np.asarray(c, np.float64),
            np.asarray(o, np.float64),
            np.asarray(h, np.float64),
            np.asarray(l, np.float64),
            np.asarray(c, np.float64),
            np.zeros(n, np.bool_) if cascade is None else np.asarray(cascade, np.bool_),
            fts,
            frate,
            fint,
            True,
        )

    def validate(self) -> None:
        """Check shapes, order and prices.

        Raises:
            ValueError: mismatched lengths, unordered times, or non-positive prices.
        """
        n = len(self.ts)
        arrays = (self.o, self.h, self.l, self.c, self.mark_o, self.mark_h, self.mark_l)
        if any(len(a) != n for a in (*arrays, self.mark_c, self.cascade)):
            raise ValueError("market arrays must all have one value per bar")
        if n and np.any(np.diff(self.ts) <= 0):
            raise ValueError("bar times must be strictly increasing")
        if not (len(self.funding_ts) == len(self.funding_rate) == len(self.funding_interval_h)):
            raise ValueError("funding arrays must have one value per settlement")
        if len(self.funding_ts) and np.any(np.diff(self.funding_ts) <= 0):
            raise ValueError("funding settlement times must be strictly increasing")
        for a in (*arrays, self.mark_c):
            if n and not np.all(a > 0):
                raise ValueError("prices must be positive")


@dataclass(frozen=True, slots=True)
class Signals:
    """What a strategy decides at each bar's close (all arrays aligned with the bars).

    Attributes:
        entry: +1 long / -1 short / 0: open a position at the next bar (only when flat).
        exit: close the whole position at the next bar's open.
        stop_frac: stop distance as a fraction of the entry fill (1R), for an entry on this bar.
        targets_r: shape (n, 3): T1, T2, T3 as R multiples (NaN: no target at that level).
        entry_limit: limit price for the next bar's entry (NaN: market order at the open).
        size: a multiple of the configured risk for an entry on this bar (1 = full size, 0.5 =
            half, 0 = no entry); None: 1 on every bar.
        exit_side: close only a position of this side at the next open (+1 a long, -1 a short,
            0 neither); None: never. ``exit`` closes either side.
    """

    entry: npt.NDArray[np.int8]
    exit: npt.NDArray[np.bool_]
    stop_frac: F64
    targets_r: F64
    entry_limit: F64
    size: F64 | None = None
    exit_side: npt.NDArray[np.int8] | None = None

    def exit_sides(self) -> npt.NDArray[np.int8]:
        """The side-specific exit of every bar (zeros when ``exit_side`` is None)."""
        if self.exit_side is None:
            return np.zeros(len(self.entry), np.int8)
        return np.asarray(self.exit_side, np.int8)

    def sizes(self) -> F64:
        """The size multiple of every bar (ones when ``size`` is None)."""
        if self.size is None:
            return np.ones(len(self.entry))
        return np.asarray(self.size, np.float64)

    def validate(self, n: int) -> None:
        """Check the arrays have ``n`` bars and sane values.

        Raises:
            ValueError: wrong shapes or values.
        """
        if not (len(self.entry) == len(self.exit) == len(self.stop_frac) == len(self.entry_limit)):
            raise ValueError("signal arrays must all have one value per bar")
        if len(self.entry) != n or self.targets_r.shape != (n, 3):
            raise ValueError(f"signals must have {n} bars (targets_r shape ({n}, 3))")
        if not np.all(np.isin(self.entry, (-1, 0, 1))):
            raise ValueError("entry must be -1, 0 or +1")
        if self.size is not None:
            if len(self.size) != n:
                raise ValueError(f"size must have {n} bars")
            if not np.all(np.isfinite(self.size) & (np.asarray(self.size) >= 0)):
                raise ValueError("size multiples must be finite and >= 0")
        if self.exit_side is not None:
            if len(self.exit_side) != n:
                raise ValueError(f"exit_side must have {n} bars")
            if not np.all(np.isin(self.exit_side, (-1, 0, 1))):
                raise ValueError("exit_side must be -1, 0 or +1")


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Account, costs and position-management rules (all fractions, not percent).

    Attributes:
        initial_equity: starting account equity, USD.
        risk_frac: equity risked per trade (0.01 = 1%): qty = equity*risk_frac / (entry*stop_frac).
        leverage: isolated leverage; caps the notional at equity*leverage and sets the
            liquidation price (through :mod:`perpscope.risk`).
        mmr: maintenance-margin rate of the isolated position.
        taker_fee: fee rate of market fills (entries, stops, exits, liquidation).
        maker_fee: fee rate of limit fills (limit entries, targets).
        slippage: adverse slippage of market fills, a fraction of price.
        cascade_slippage: extra slippage on bars flagged as cascade bars.
        scale_out: fractions of the initial size closed at T1, T2, T3 (sum 1).
        breakeven_after_t1: move the stop to the entry fill once T1 fills (active next bar).
        time_stop_bars: close at the next open after this many bars held (0 = no time stop).
    """

    initial_equity: float = 10_000.0
    risk_frac: float = 0.01
    leverage: float = 5.0
    mmr: float = 0.004
    taker_fee: float = 0.0005
    maker_fee: float = 0.0002
    slippage: float = 0.0002
    cascade_slippage: float = 0.001
    scale_out: tuple[float, float, float] = field(default=(0.4, 0.3, 0.3))
    breakeven_after_t1: bool = True
    time_stop_bars: int = 0

    def validate(self) -> None:
        """Check every value.

        Raises:
            ValueError: a value out of range, naming it.
        """
        if not (math.isfinite(self.initial_equity) and self.initial_equity > 0):
            raise ValueError("initial equity must be positive")
        if not 0 < self.risk_frac <= 1:
            raise ValueError("risk per trade must be a fraction in (0, 1]")
        if not self.leverage >= 1:
            raise ValueError("leverage must be at least 1")
        for name, v in (
            ("mmr", self.mmr),
            ("taker fee", self.taker_fee),
            ("maker fee", self.maker_fee),
            ("slippage", self.slippage),
            ("cascade slippage", self.cascade_slippage),
        ):
            if not (math.isfinite(v) and 0 <= v < 0.5):
                raise ValueError(f"{name} must be a fraction in [0, 0.5), got {v:g}")
        if len(self.scale_out) != 3 or any(f < 0 for f in self.scale_out):
            raise ValueError("scale-out needs three non-negative fractions")
        if not math.isclose(sum(self.scale_out), 1.0, abs_tol=1e-9):
            raise ValueError("scale-out fractions must sum to 1")
        if self.time_stop_bars < 0:
            raise ValueError("time stop must be >= 0 bars")


def liquidation_ratios(config: EngineConfig) -> tuple[float, float]:
    """Isolated liquidation price as a multiple of the entry price, (long, short).

    Computed once with :func:`perpscope.risk.liquidation_price.liquidation_price` (Binance USDⓈ-M
    formula, one tier with ``config.mmr`` and no maintenance amount, wallet = initial margin) for a
    unit position: with one tier and no maintenance amount the liquidation price is proportional
    to the entry price, so the kernel multiplies each entry fill by these ratios. A long whose
    margin covers its notional (leverage 1) is never liquidated: ratio 0.
    """
    out = []
    for side in (PositionSide.LONG, PositionSide.SHORT):
        spec = PositionSpec(LiqVenue.BINANCE, side, 1.0, 1.0, config.leverage)
        px = liquidation_price(spec, single_tier(config.mmr)).liquidation_px
        if px is None:  # no liquidation above zero (a long) or none at all
            out.append(0.0 if side is PositionSide.LONG else math.inf)
        else:
            out.append(float(px))
    return out[0], out[1]


@dataclass(frozen=True, slots=True)
class BacktestRun:
    """Result of one engine run.

    Attributes:
        trades: shape (n_trades, len(TRADE_COLUMNS)), one row per trade (see TRADE_COLUMNS).
        equity: account equity at each bar's close (cash + open PnL at the close).
        ts: the bar open times (int64 ns), aligned with ``equity``.
        initial_equity: the starting equity.
        final_equity: cash after the last bar (every position is closed at the last close).
    """

    trades: F64
    equity: F64
    ts: I64
    initial_equity: float
    final_equity: float

    def column(self, name: str) -> F64:
        """One column of the trade matrix by name."""
        return self.trades[:, TRADE_COLUMNS.index(name)]
