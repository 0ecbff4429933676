"""Golden cases of the engine's rules, each hand-computed in its docstring or comments.

Every case runs through both the numba engine and the reference (they must give the same).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from perpscope.backtest.engine import run_backtest
from perpscope.backtest.reference import run_reference
from perpscope.backtest.types import EXIT_REASONS, EngineConfig, Market, Signals
from tests.backtest._markets import flat_market, no_signals

FREE = EngineConfig(taker_fee=0.0, maker_fee=0.0, slippage=0.0, cascade_slippage=0.0)
RUNNERS = [run_backtest, run_reference]


def _short_at(s: Signals, signal_bar: int, exit_bar: int, stop: float = 0.05) -> None:
    s.entry[signal_bar] = -1
    s.stop_frac[signal_bar] = stop
    s.exit[exit_bar] = True


@pytest.mark.parametrize("runner", RUNNERS)
def test_short_across_three_settlements_gets_exactly_three_payments(runner) -> None:  # type: ignore[no-untyped-def]
    """Short 20 BTC (risk 1% of 10,000 = 100 USD over a 5% stop at 100: 100/5 = 20).

    Held from the 01:00 open to the 26:00 open; settlements at 08, 16, 24h of +0.01%, -0.02%,
    +0.03%, priced at the mark (101, not the trade price 100): notional 20 x 101 = 2,020 USD.
    A short receives a positive rate: +0.202, -0.404, +0.606; total +0.404 USD.
    The settlements at 00:00 (before entry) and 32h (after exit) are not paid.
    """
    m = flat_market(
        40,
        mark=101.0,
        funding=[(0, 0.01, 8), (8, 0.0001, 8), (16, -0.0002, 8), (24, 0.0003, 8), (32, 0.01, 8)],
    )
    s = no_signals(40)
    _short_at(s, 0, 25)
    run = runner(m, s, FREE)
    assert len(run.trades) == 1
    assert run.column("qty")[0] == pytest.approx(20.0)
    assert run.column("funding_usd")[0] == pytest.approx(0.202 - 0.404 + 0.606, abs=1e-12)
    assert run.column("pnl_usd")[0] == pytest.approx(0.404, abs=1e-12)
    assert run.final_equity == pytest.approx(10_000.404, abs=1e-9)
    # the equity curve steps at each settlement: +0.202 from the 08:00 bar on, etc.
    assert run.equity[7] == pytest.approx(10_000.0)
    assert run.equity[8] == pytest.approx(10_000.202)
    assert run.equity[16] == pytest.approx(10_000.202 - 0.404)


@pytest.mark.parametrize("runner", RUNNERS)
def test_entry_at_a_settlement_does_not_pay_it_but_an_exit_there_does(runner) -> None:  # type: ignore[no-untyped-def]
    """Signal at the 07:00 close -> short from the 08:00 open: the 08:00 settlement was before.

    Exit signal at the 15:00 close -> out at the 16:00 open, after the 16:00 settlement: paid.
    Only 16h: rate +0.05% on 20 x 100 = 2,000 -> +1.00 USD for the short.
    """
    m = flat_market(30, funding=[(8, 0.01, 8), (16, 0.0005, 8), (24, 0.01, 8)])
    s = no_signals(30)
    _short_at(s, 7, 15)
    run = runner(m, s, FREE)
    assert run.column("entry_bar")[0] == 8
    assert run.column("exit_bar")[0] == 16
    assert run.column("funding_usd")[0] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("runner", RUNNERS)
def test_interval_change_from_8h_to_4h_mid_position(runner) -> None:  # type: ignore[no-untyped-def]
    """Long 20 from 01:00 to the 30:00 open; settlements 8h apart, then 4h apart after 16h.

    Paid: 8h, 16h (8h interval), 20h, 24h, 28h (4h interval): five payments at their own times.
    Rates 1e-4 each: a long pays 2,000 x 1e-4 = 0.2 each, so -1.0 USD in total.
    """
    m = flat_market(
        36,
        funding=[(8, 1e-4, 8), (16, 1e-4, 8), (20, 1e-4, 4), (24, 1e-4, 4), (28, 1e-4, 4)],
    )
    s = no_signals(36)
    s.entry[0] = 1
    s.stop_frac[0] = 0.05
    s.exit[29] = True
    run = runner(m, s, FREE)
    assert run.column("funding_usd")[0] == pytest.approx(-1.0, abs=1e-12)
    # the 4h settlements step the equity every 4 bars: 20h and 24h are each one payment
    assert run.equity[19] - run.equity[20] == pytest.approx(0.2)
    assert run.equity[23] - run.equity[24] == pytest.approx(0.2)


@pytest.mark.parametrize("runner", RUNNERS)
def test_stop_first_when_stop_and_target_share_a_bar(runner) -> None:  # type: ignore[no-untyped-def]
    """Long from 100, stop 2% (98), T1 1R (102): bar 2 spans 97..103, so both are touched.

    Conservative rule: the stop fills (at 98), the target does not: -1R = -100 USD with no costs.
    """
    m = flat_market(5)
    m.h[2], m.l[2] = 103.0, 97.0
    s = no_signals(5)
    s.entry[0] = 1
    s.stop_frac[0] = 0.02
    s.targets_r[0] = [1.0, 2.0, 3.0]
    run = runner(m, s, FREE)
    assert EXIT_REASONS[int(run.column("exit_reason")[0])] == "stop"
    assert run.column("stop_first")[0] == 1.0
    assert run.column("r_multiple")[0] == pytest.approx(-1.0)


@pytest.mark.parametrize("runner", RUNNERS)
def test_scale_out_then_breakeven(runner) -> None:  # type: ignore[no-untyped-def]
    """Long 50 from 100 (risk 100 USD / stop 2 USD), T1 = 102, T2 = 104, T3 = 106.

    Bar 2 reaches 102.5: 40% (20) close at 102 -> +40 USD; the stop moves to 100 from bar 3.
    Bar 3 dips to 99.9: the other 30 close at 100 -> 0. Total +40 USD = +0.4R, reason breakeven.
    """
    m = flat_market(6)
    m.h[2] = 102.5
    m.l[3] = 99.9
    s = no_signals(6)
    s.entry[0] = 1
    s.stop_frac[0] = 0.02
    s.targets_r[0] = [1.0, 2.0, 3.0]
    run = runner(m, s, FREE)
    assert run.column("qty")[0] == pytest.approx(50.0)
    assert run.column("pnl_usd")[0] == pytest.approx(40.0)
    assert run.column("r_multiple")[0] == pytest.approx(0.4)
    assert EXIT_REASONS[int(run.column("exit_reason")[0])] == "breakeven"
    assert run.column("exit_px")[0] == pytest.approx((20 * 102 + 30 * 100) / 50)


@pytest.mark.parametrize("runner", RUNNERS)
def test_liquidation_on_mark_with_the_risk_formula(runner) -> None:  # type: ignore[no-untyped-def]
    """Long at 10x, MMR 0.4%, stop 20% (beyond the liquidation price, so no protection).

    Binance one-tier isolated: LP = EP (1 - 1/L) / (1 - MMR) = 100 x 0.9 / 0.996 = 90.3614...
    The trade low (95) stays above it, the mark low (90) goes through: liquidated on the mark.
    Size: risk 100 / (0.2 x 100) = 5, cap 10,000 x 10 / 100 = 1,000: 5. Loss 5 x (100 - LP).
    """
    m = flat_market(5, mark=100.0)
    m.l[2] = 95.0
    m.mark_l[2] = 90.0
    s = no_signals(5)
    s.entry[0] = 1
    s.stop_frac[0] = 0.2
    cfg = EngineConfig(
        leverage=10.0, mmr=0.004, taker_fee=0, maker_fee=0, slippage=0, cascade_slippage=0
    )
    run = runner(m, s, cfg)
    lp = 100 * 0.9 / 0.996
    assert EXIT_REASONS[int(run.column("exit_reason")[0])] == "liquidation"
    assert run.column("exit_px")[0] == pytest.approx(lp, rel=1e-12)
    assert run.column("pnl_usd")[0] == pytest.approx(5 * (lp - 100), rel=1e-12)


@pytest.mark.parametrize("runner", RUNNERS)
def test_costs_slippage_cascade_and_time_stop(runner) -> None:  # type: ignore[no-untyped-def]
    """Market long at the bar-1 open 100 with 0.1% slippage + 0.5% cascade slippage: 100.6.

    Time stop 3 bars: held bars 1, 2, 3 -> out at the bar-4 open, 100 x (1 - 0.001) = 99.9.
    qty = 100 / (100.6 x 0.05) = 19.8807...; fees 0.05% taker on both fills.
    """
    m = flat_market(8)
    m.cascade[1] = True
    s = no_signals(8)
    s.entry[0] = 1
    s.stop_frac[0] = 0.05
    cfg = EngineConfig(
        taker_fee=0.0005, maker_fee=0, slippage=0.001, cascade_slippage=0.005, time_stop_bars=3
    )
    run = runner(m, s, cfg)
    q = 100 / (100.6 * 0.05)
    fees = -0.0005 * q * 100.6 - 0.0005 * q * 99.9
    assert run.column("entry_px")[0] == pytest.approx(100.6)
    assert run.column("exit_bar")[0] == 4
    assert EXIT_REASONS[int(run.column("exit_reason")[0])] == "time"
    assert run.column("fees_usd")[0] == pytest.approx(fees)
    assert run.column("pnl_usd")[0] == pytest.approx(q * (99.9 - 100.6) + fees)


@pytest.mark.parametrize("runner", RUNNERS)
def test_limit_entry_fills_at_the_limit_or_lapses(runner) -> None:  # type: ignore[no-untyped-def]
    """A buy limit at 99: bar 1 (low 100) does not reach it, the order lapses (no trade).

    A second order at 99 after bar 3: bar 4's low is 98.5, so it fills at 99 (maker fee).
    """
    m = flat_market(8)
    m.l[4] = 98.5
    s = no_signals(8)
    for b in (0, 3):
        s.entry[b] = 1
        s.stop_frac[b] = 0.05
        s.entry_limit[b] = 99.0
    cfg = EngineConfig(taker_fee=0.001, maker_fee=0.0002, slippage=0.01)
    run = runner(m, s, cfg)
    assert len(run.trades) == 1
    assert run.column("entry_bar")[0] == 4
    assert run.column("entry_px")[0] == 99.0
    q = run.column("qty")[0]
    # entry fee maker 0.02% at 99; the end-of-data close at 100 pays taker 0.1% with 1% slip
    assert run.column("fees_usd")[0] == pytest.approx(-0.0002 * q * 99 - 0.001 * q * 99.0)


def test_liquidation_ratio_comes_from_the_risk_module() -> None:
    from perpscope.backtest.types import liquidation_ratios

    long_r, short_r = liquidation_ratios(EngineConfig(leverage=20.0, mmr=0.005))
    assert long_r == pytest.approx((1 - 1 / 20) / (1 - 0.005))
    assert short_r == pytest.approx((1 + 1 / 20) / (1 + 0.005))
    assert liquidation_ratios(EngineConfig(leverage=1.0, mmr=0.005))[0] == 0.0
    assert math.isfinite(short_r)


def test_bad_inputs_are_rejected() -> None:
    m = flat_market(3)
    with pytest.raises(ValueError, match="must have 3 bars"):
        run_backtest(m, no_signals(4), FREE)
    with pytest.raises(ValueError, match="sum to 1"):
        run_backtest(m, no_signals(3), EngineConfig(scale_out=(0.5, 0.5, 0.5)))
    bad = Market.from_ohlc(
        np.array([2, 1], np.int64), np.ones(2), np.ones(2), np.ones(2), np.ones(2)
    )
    with pytest.raises(ValueError, match="increasing"):
        run_backtest(bad, no_signals(2), FREE)


@pytest.mark.parametrize("runner", RUNNERS)
def test_short_stop_gapped_through_fills_at_the_open(runner) -> None:  # type: ignore[no-untyped-def]
    """Short from 100, stop 3% (103). Bar 2 opens at 105 (above the stop): the fill is the open
    105 plus 0.1% slippage = 105.105, not the stop. qty = 100 / 3 = 33.33...; no fees."""
    m = flat_market(5)
    m.o[2], m.h[2], m.c[2] = 105.0, 106.0, 105.0
    s = no_signals(5)
    s.entry[0] = -1
    s.stop_frac[0] = 0.03
    cfg = EngineConfig(taker_fee=0, maker_fee=0, slippage=0.001, cascade_slippage=0)
    run = runner(m, s, cfg)
    assert run.column("entry_px")[0] == pytest.approx(100 * (1 - 0.001))
    assert run.column("exit_px")[0] == pytest.approx(105 * 1.001)
    q = 100 / (99.9 * 0.03)
    assert run.column("pnl_usd")[0] == pytest.approx(-q * (105.105 - 99.9))


@pytest.mark.parametrize("runner", RUNNERS)
def test_settlement_inside_a_bar_uses_the_mark_close(runner) -> None:  # type: ignore[no-untyped-def]
    """Bars are 1h; a settlement at 5.5h falls inside bar 5 and is priced at its mark close (110).

    Long 20 (risk 100 over a 5% stop at 100): pays 20 x 110 x 0.001 = 2.2 USD.
    """
    m = flat_market(10, mark=100.0, funding=[(5.5, 0.001, 8)])
    m.mark_c[5] = 110.0
    m.mark_h[5] = 110.0
    s = no_signals(10)
    s.entry[0] = 1
    s.stop_frac[0] = 0.05
    run = runner(m, s, FREE)
    assert run.column("funding_usd")[0] == pytest.approx(-2.2)


@pytest.mark.parametrize("runner", RUNNERS)
def test_size_multiple_scales_the_risk_and_zero_places_no_order(runner) -> None:  # type: ignore[no-untyped-def]
    """Half size: 1% of 10,000 = 100 USD x 0.5 = 50 USD over a 5% stop at 100: 50 / 5 = 10 BTC
    (full size would be 20). A size of 0 on a later signal places no order at all."""
    m = flat_market(40)
    s = no_signals(40)
    size = np.ones(40)
    _short_at(s, 0, 10)
    size[0] = 0.5
    s.entry[20] = 1
    s.stop_frac[20] = 0.05
    size[20] = 0.0
    sized = Signals(s.entry, s.exit, s.stop_frac, s.targets_r, s.entry_limit, size)
    run = runner(m, sized, FREE)
    assert len(run.trades) == 1
    assert run.column("qty")[0] == pytest.approx(10.0)
    assert run.column("risk_usd")[0] == pytest.approx(50.0)


def test_size_multiples_are_validated() -> None:
    s = no_signals(5)
    bad = Signals(s.entry, s.exit, s.stop_frac, s.targets_r, s.entry_limit, np.full(5, -0.5))
    with pytest.raises(ValueError, match="size multiples"):
        bad.validate(5)


@pytest.mark.parametrize("runner", RUNNERS)
def test_side_specific_exit_closes_only_that_side(runner) -> None:  # type: ignore[no-untyped-def]
    """A short entered at the 01:00 open: exit_side +1 (close longs) at the 05:00 close does
    nothing; exit_side -1 (close shorts) at the 08:00 close closes it at the 09:00 open."""
    m = flat_market(20)
    s = no_signals(20)
    s.entry[0] = -1
    s.stop_frac[0] = 0.05
    side = np.zeros(20, np.int8)
    side[5] = 1
    side[8] = -1
    sig = Signals(s.entry, s.exit, s.stop_frac, s.targets_r, s.entry_limit, None, side)
    run = runner(m, sig, FREE)
    assert len(run.trades) == 1
    assert run.column("entry_bar")[0] == 1
    assert run.column("exit_bar")[0] == 9
    assert EXIT_REASONS[int(run.column("exit_reason")[0])] == "signal"
