"""OI divergence reversal and basis carry on hand-built markets, each case computed by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from perpscope.backtest.strategies import run_strategy
from perpscope.backtest.strategies.basis_carry import BasisCarryParams, basis_carry
from perpscope.backtest.strategies.oi_divergence import OIDivergenceParams, oi_divergence
from perpscope.backtest.types import EXIT_REASONS, EngineConfig, Market
from tests.backtest._markets import HOUR_NS, flat_market

FREE = EngineConfig(taker_fee=0.0, maker_fee=0.0, slippage=0.0, cascade_slippage=0.0)


def _ramp_market(move: float, oi_move: float, n: int = 400) -> Market:
    """1h bars: flat at 100 for 200 bars, then a straight 120-bar move of ``move`` (in log terms)
    to a new extreme, then flat; daily OI observations at each day's start: flat, then changing
    by ``oi_move`` over the same 5 days, then flat."""
    c = np.full(n, 100.0)
    c[200:320] = 100.0 * np.exp(np.linspace(0, np.log1p(move), 121)[1:])
    c[320:] = c[319]
    o = np.r_[100.0, c[:-1]]
    h, lo = np.maximum(o, c) * 1.002, np.minimum(o, c) * 0.998
    ts = np.arange(n, dtype=np.int64) * HOUR_NS
    days = np.arange(0, n, 24)
    oi = np.where(days < 200, 1e9, np.where(days < 320, 1e9 * (1 + oi_move * (days - 192) / 120),
                                            1e9 * (1 + oi_move)))  # fmt: skip
    m = Market.from_ohlc(ts, o, h, lo, c, np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
    return dataclasses.replace(m, oi_ts=days.astype(np.int64) * HOUR_NS, oi=oi)


def test_bearish_oi_divergence_shorts_the_new_high() -> None:
    """+10% in 5 days to a new high while OI fell: ratio OI% / price% at or above 0.5 -> short
    on the first bar of the divergence (fresh_only; the daily OI steps can end a divergence and
    start a new one), where the window's price change is >= 3%."""
    m = _ramp_market(0.10, -0.08)
    s = oi_divergence(m, OIDivergenceParams())
    shorts = np.flatnonzero(s.entry == -1)
    assert 1 <= len(shorts) <= 3
    assert not (s.entry == 1).any()
    assert len(np.flatnonzero(oi_divergence(m, OIDivergenceParams(fresh_only=False)).entry)) > 50
    i = shorts[0]
    assert 200 < i <= 320
    price_chg = m.c[i] / m.c[i - 120] - 1
    assert price_chg >= 0.03
    assert m.c[i] == m.c[i - 120 : i + 1].max()
    # the OI known at bar i's close is the last daily value with ts < close
    k = np.searchsorted(m.oi_ts, m.ts[i] + HOUR_NS) - 1
    k0 = np.searchsorted(m.oi_ts, m.ts[i - 120] + HOUR_NS) - 1
    assert m.oi is not None
    assert -(m.oi[k] / m.oi[k0] - 1) / price_chg >= 0.5
    assert s.stop_frac[i] > 0


def test_no_signal_when_oi_rises_or_the_ratio_is_small() -> None:
    assert not oi_divergence(_ramp_market(0.10, +0.08), OIDivergenceParams()).entry.any()
    assert not oi_divergence(_ramp_market(0.10, -0.02), OIDivergenceParams()).entry.any()
    # the same -2% OI passes a looser ratio (0.2 x 10% = 2%... with the ramp, 0.1 is safe)
    assert (oi_divergence(_ramp_market(0.10, -0.02), OIDivergenceParams(min_ratio=0.1)).entry
            == -1).any()  # fmt: skip


def test_bullish_capitulation_goes_long() -> None:
    s = oi_divergence(_ramp_market(-0.10, -0.08), OIDivergenceParams())
    assert 1 <= (s.entry == 1).sum() <= 3
    assert not (s.entry == -1).any()


def test_oi_divergence_needs_open_interest() -> None:
    with pytest.raises(ValueError, match="open interest"):
        oi_divergence(flat_market(50), OIDivergenceParams())


def _carry_market(n: int = 300, rate_until_h: int = 240) -> Market:
    """Flat 100; +0.06% per 8h from 0h until ``rate_until_h`` (exclusive), then +0.005%."""
    fts = np.arange(0, n, 8)
    rates = np.where(fts < rate_until_h, 0.0006, 0.00005)
    return flat_market(
        n, funding=[(float(t), float(r), 8.0) for t, r in zip(fts, rates, strict=True)]
    )


def test_basis_carry_collects_funding_between_entry_and_exit() -> None:
    """The 7-day average exists from the close at 168h (data since 0h): entry at the 168h open,
    which does not get the 168h settlement. Paid: 176..232h (8 x 0.06%) and 240h (0.005%, at the
    open, before the exit). The 240h print is known at bar 240's close (241h): exit at the 241h
    open. Notional = 10,000 / (1 + 1/5 + 0.1) = 7,692.31; funding = N x
    (8 x 0.0006 + 0.00005) = N x 0.00485 = 37.31; no fees here."""
    run = basis_carry(_carry_market(), BasisCarryParams(spot_fee=0.0), FREE)
    assert len(run.trades) == 1
    n_usd = 10_000 / 1.3
    assert run.column("entry_bar")[0] == 168
    assert run.column("exit_bar")[0] == 241
    assert run.column("qty")[0] == pytest.approx(n_usd / 100)
    assert run.column("funding_usd")[0] == pytest.approx(n_usd * 0.00485)
    assert run.final_equity == pytest.approx(10_000 + n_usd * 0.00485)
    assert run.column("r_multiple")[0] == pytest.approx(n_usd * 0.00485 / 10_000)
    assert EXIT_REASONS[int(run.column("exit_reason")[0])] == "signal"
    # the equity curve steps at each settlement: +N x 0.0006 from the 176h bar on
    assert run.equity[175] == pytest.approx(10_000)
    assert run.equity[176] == pytest.approx(10_000 + n_usd * 0.0006)


def test_basis_carry_costs_four_fills() -> None:
    """Spot 0.1% + perp taker 0.05% + 2 x 0.02% slippage = 0.19% of N per side, twice."""
    cfg = EngineConfig(taker_fee=0.0005, slippage=0.0002)
    run = basis_carry(_carry_market(), BasisCarryParams(), cfg)
    n_usd = 10_000 / 1.3
    assert run.column("fees_usd")[0] == pytest.approx(-2 * 0.0019 * n_usd)
    assert run.final_equity == pytest.approx(10_000 + n_usd * (0.00485 - 2 * 0.0019))


def test_margin_warning_and_liquidation() -> None:
    """5x with a 10% buffer: margin + buffer = 30% of N. Rule (c) at 50% of it: a close >= +15%
    exits at the next open ('stop'). A bar whose high is +30% first: the short's liquidation at
    (1 + 0.3) / (1 + 0.004) - 1 = +29.48%, losing the maintenance margin 0.4% of N."""
    base = _carry_market(400, rate_until_h=400)
    c = base.c.copy()
    c[200:] = 116.0
    o = np.r_[c[0], c[:-1]]
    m = Market.from_ohlc(base.ts, o, np.maximum(o, c), np.minimum(o, c), c,
                         base.funding_ts, base.funding_rate, base.funding_interval_h)  # fmt: skip
    run = basis_carry(m, BasisCarryParams(spot_fee=0.0), FREE)
    assert EXIT_REASONS[int(run.column("exit_reason")[0])] == "stop"
    assert run.column("exit_bar")[0] == 201
    h = base.h.copy()
    h[200] = 130.0
    m2 = Market.from_ohlc(base.ts, base.o, h, base.l, base.c,
                          base.funding_ts, base.funding_rate, base.funding_interval_h)  # fmt: skip
    run2 = basis_carry(m2, BasisCarryParams(spot_fee=0.0), FREE)
    first = run2.trades[0]
    assert EXIT_REASONS[int(first[12])] == "liquidation"
    n_usd = 10_000 / 1.3
    assert run2.column("exit_px")[0] == pytest.approx(100 * 1.3 / 1.004)
    assert run2.column("pnl_usd")[0] == pytest.approx(run2.column("funding_usd")[0] - 0.004 * n_usd)
    assert len(run2.trades) == 2  # funding still qualifies: a new carry from the next open


def test_run_strategy_windows_the_simulation_like_the_engine() -> None:
    """A window of a simulated strategy is the simulation of those bars (funding kept whole)."""
    m = _carry_market()
    p = BasisCarryParams(spot_fee=0.0)
    whole, part = run_strategy("basis-carry", m, p, FREE, [(0, 300), (200, 300)])
    assert len(whole.trades) == 1
    # already qualified at the window's first close (200h): in at the next open (201h), out at
    # the 241h open as in the whole run; the window's bars are numbered from its start
    assert part.column("entry_bar")[0] == 1
    assert part.column("exit_bar")[0] == 41
    assert whole.column("exit_bar")[0] == 241
