"""Funding carry, Kelly, the basis-trade planner and the correlation bucket, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from perpscope.risk import (
    InvalidInput,
    PositionSide,
    correlation_bucket,
    funding_carry,
    kelly,
    kelly_fraction,
    plan_basis_trade,
    position_size,
    stats_from_trades,
)


def test_playbook_long_100k_at_5bp_pays_50_per_8h_and_1050_a_week() -> None:
    c = funding_carry(100_000, 0.0005, 8, 7, PositionSide.LONG)
    assert c.payment_per_period_usd == pytest.approx(-50)
    assert c.periods == 21
    assert c.total_usd == pytest.approx(-1_050)
    assert c.per_week_usd == pytest.approx(-1_050)
    # Annualised: 0.0005 x 8760 / 8 = 0.5475.
    assert c.annualized_rate == pytest.approx(0.5475)


def test_short_receives_positive_funding_and_pays_negative_funding() -> None:
    assert funding_carry(10_000, 0.0001, 1, 1, PositionSide.SHORT).total_usd == pytest.approx(24)
    assert funding_carry(10_000, -0.0001, 4, 1, PositionSide.SHORT).total_usd == pytest.approx(-6)


def test_periods_count_whole_settlements_only() -> None:
    # 1 day on a 16 h schedule holds one settlement.
    assert funding_carry(1_000, 0.001, 16, 1).periods == 1


def test_kelly_fraction_formula_at_the_playbooks_edges() -> None:
    # f = W - (1 - W)/R: 0.6 - 0.4/1.2 = 0.2667; 0.65 - 0.35/1.5 = 0.4167.
    assert kelly_fraction(0.6, 1.2) == pytest.approx(0.6 - 0.4 / 1.2)
    r = kelly(0.65, 1.5, equity_usd=50_000)
    assert r.kelly_fraction == pytest.approx(0.65 - 0.35 / 1.5)
    assert r.half_kelly_fraction == pytest.approx((0.65 - 0.35 / 1.5) / 2)
    assert r.risk_usd == pytest.approx(50_000 * (0.65 - 0.35 / 1.5) / 2)


def test_kelly_matches_a_brute_force_maximum_of_log_growth() -> None:
    # Independent method: grid-search the expected log growth W ln(1 + fR) + L ln(1 - f).
    trades = [2.0, -1.0, 1.5, -1.0, 0.0, 3.0]
    w, lose, payoff = stats_from_trades(trades)
    assert (w, lose) == pytest.approx((0.5, 1 / 3))
    assert payoff == pytest.approx(6.5 / 3)
    grid = np.linspace(0.0, 0.999, 99_901)
    growth = w * np.log1p(grid * payoff) + lose * np.log1p(-grid)
    best = float(grid[int(np.argmax(growth))])
    assert kelly(trades_r=trades).kelly_fraction == pytest.approx(best, abs=2e-5)


def test_no_edge_means_no_risk() -> None:
    r = kelly(0.4, 1.0)
    assert r.kelly_fraction == pytest.approx(-0.2)
    assert r.risk_fraction == 0.0


def test_kelly_input_errors() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        kelly(1.5, 1.2)
    with pytest.raises(ValueError, match="one win and one loss"):
        kelly(trades_r=[1.0, 2.0])
    with pytest.raises(ValueError, match="not both"):
        kelly(0.5, 1.0, trades_r=[1.0, -1.0])


def test_playbook_basis_trade_capital_and_income() -> None:
    # 100,000 spot + 20,000 short margin (5x) + 10,000 buffer = 130,000; +0.05 %: 50 / period,
    # 150 / day, 1,050 / week; year 54,750 = 42.1 % on 130,000 of capital.
    p = plan_basis_trade(100_000, 5, 0.0005, buffer_usd=10_000, spot_px=65_000, perp_px=65_020)
    assert (p.short_margin_usd, p.total_capital_usd) == pytest.approx((20_000, 130_000))
    assert p.income_per_period_usd == pytest.approx(50)
    assert p.income_per_day_usd == pytest.approx(150)
    assert p.income_per_week_usd == pytest.approx(1_050)
    assert p.annualized_return_on_capital == pytest.approx(54_750 / 130_000)
    # 20 per BTC of premium on 100,000 / 65,000 = 1.538 BTC = 30.77, not 20.
    assert p.entry_basis_usd == pytest.approx(20 * 100_000 / 65_000)
    assert p.margin_buffer_ratio == pytest.approx(0.5)
    assert p.exit_signals == []


def test_basis_exit_signals_follow_the_playbook() -> None:
    low = plan_basis_trade(100_000, 5, 0.00005)
    assert any("below" in s for s in low.exit_signals)
    neg = plan_basis_trade(100_000, 5, -0.0001)
    assert any("negative" in s for s in neg.exit_signals)
    # A 1 h rate of 0.00002 is 0.00016 per 8 h: above the 0.01 % floor, no exit.
    assert plan_basis_trade(100_000, 5, 0.00002, 1).exit_signals == []
    # Mark up 8 % on the short: balance 24,000 - 1.538 x 5,200 = 16,000; required
    # 1.538 x 70,200 / 5 = 21,600; ratio 16,000/21,600 - 1 < 0.2.
    squeezed = plan_basis_trade(100_000, 5, 0.0005, perp_px=65_000, spot_px=65_000, mark_px=70_200)
    qty = 100_000 / 65_000
    assert squeezed.margin_buffer_ratio == pytest.approx(
        (24_000 - qty * 5_200) / (qty * 70_200 / 5) - 1
    )
    assert any("margin buffer" in s for s in squeezed.exit_signals)


def test_bucket_sums_at_correlation_one_and_adds_in_quadrature_at_zero() -> None:
    assert correlation_bucket([750, 450]).combined_risk_usd == pytest.approx(1_200)
    zero = correlation_bucket([750, 450], 0.0)
    assert zero.combined_risk_usd == pytest.approx(math.hypot(750, 450))
    # rho 0.8: sqrt(750^2 + 450^2 + 2 x 0.8 x 750 x 450).
    half = correlation_bucket([750, 450], 0.8, max_risk_usd=1_000)
    combined = math.sqrt(750**2 + 450**2 + 2 * 0.8 * 750 * 450)
    assert half.combined_risk_usd == pytest.approx(combined)
    assert half.scale == pytest.approx(1_000 / combined)
    assert half.over_budget


def test_bucket_refuses_an_impossible_correlation() -> None:
    with pytest.raises(ValueError, match="impossible"):
        correlation_bucket([1, 1, 1], -0.9)


def test_kelly_refuses_more_than_full_kelly_and_caps_the_risk_per_trade() -> None:
    with pytest.raises(InvalidInput, match="at most 1"):
        kelly(0.6, 1.2, multiple=10)
    # Half Kelly at W 0.6, R 1.2 is 13.3 % of equity; the playbook's ceiling is 2 % per trade.
    r = kelly(0.6, 1.2, equity_usd=10_000)
    assert r.risk_fraction == pytest.approx((0.6 - 0.4 / 1.2) / 2)
    assert (r.max_risk_fraction, r.recommended_risk_fraction) == pytest.approx((0.02, 0.02))
    assert r.recommended_risk_usd == pytest.approx(200)
    assert r.warning is not None
    loose = kelly(0.6, 1.2, max_risk_pct=20)
    assert loose.recommended_risk_fraction == pytest.approx(loose.risk_fraction)
    assert loose.warning is None


def test_funding_carry_refuses_an_uncountable_number_of_settlements() -> None:
    with pytest.raises(InvalidInput, match="not a countable number of settlements"):
        funding_carry(1_000, 0.0001, 1e-308, 7)


def test_position_size_refuses_a_margin_above_the_equity_and_an_impossible_leverage() -> None:
    # 1.5 % of 10,000 at a stop 0.0001 from 50,000: 1.5M units, 75B of notional at 1x.
    with pytest.raises(InvalidInput, match="more than the equity"):
        position_size(10_000, 1.5, 50_000, 49_999.9999)
    with pytest.raises(InvalidInput, match="above 125x"):
        position_size(10_000, 1.5, 50_000, 49_000, 126)
    with pytest.raises(InvalidInput, match="at least 1"):
        position_size(10_000, 1.5, 50_000, 49_000, 0.5)
