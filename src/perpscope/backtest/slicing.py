"""Windows of bars: a market and its signals cut to ``start:end``."""

from __future__ import annotations

import dataclasses

from perpscope.backtest.types import Market, Signals

__all__ = ["slice_market", "slice_signals"]


def slice_market(market: Market, start: int, end: int) -> Market:
    """Bars ``start:end`` of the market (the funding and OI series are kept whole: the engine and
    the strategies select them by time)."""
    cut = slice(start, end)
    return dataclasses.replace(
        market,
        ts=market.ts[cut], o=market.o[cut], h=market.h[cut], l=market.l[cut], c=market.c[cut],
        mark_o=market.mark_o[cut], mark_h=market.mark_h[cut], mark_l=market.mark_l[cut],
        mark_c=market.mark_c[cut], cascade=market.cascade[cut],
    )  # fmt: skip


def slice_signals(s: Signals, start: int, end: int) -> Signals:
    """Bars ``start:end`` of the signals."""
    cut = slice(start, end)
    return Signals(
        s.entry[cut], s.exit[cut], s.stop_frac[cut], s.targets_r[cut], s.entry_limit[cut],
        None if s.size is None else s.size[cut],
        None if s.exit_side is None else s.exit_side[cut],
    )  # fmt: skip
