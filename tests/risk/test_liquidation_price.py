"""Liquidation, bankruptcy and simplified prices: venues' worked examples and hand calculations.

Each expected figure is written out from the published formula in the test (a hand calculation),
and the tier-change cases are also checked against an independent bisection on the margin balance.
"""

from __future__ import annotations

import math

import pytest
from risk_tier_fixtures import (
    binance_tiers,
    bisect,
    bybit_tiers,
    mm_binance,
    okx_tiers,
)

from perpscope.risk import (
    LiqVenue,
    MarginMode,
    PositionSide,
    PositionSpec,
    Tier,
    check_tiers,
    liquidation_price,
    maint_amounts_by_recursion,
    simplified_liquidation_price,
    single_tier,
)

LONG, SHORT = PositionSide.LONG, PositionSide.SHORT
BINANCE, BYBIT, OKX = LiqVenue.BINANCE, LiqVenue.BYBIT, LiqVenue.OKX


def test_bybit_worked_example_long_1btc_20000_50x_mmr_half_pct_liquidates_at_19700() -> None:
    # Bybit help "Liquidation Price (USDT Contract)": IM = 20,000/50 = 400, MM = 0.5%*20,000 = 100,
    # LP = 20,000 - (400 - 100)/1 = 19,700; bankruptcy = 20,000 x (1 - 1/50) = 19,600.
    res = liquidation_price(PositionSpec(BYBIT, LONG, 20_000, 1, 50), single_tier(0.005))
    assert res.liquidation_px == pytest.approx(19_700)
    assert res.bankruptcy_px == pytest.approx(19_600)
    assert res.initial_margin == pytest.approx(400)
    assert res.maintenance_margin_at_liq == pytest.approx(100)
    assert res.formula_status == "published"


def test_bybit_short_mirror_and_extra_margin() -> None:
    # Short: LP = EP + (IM - MM)/Q = 20,000 + 300 = 20,300. With 100 extra margin (wallet 500):
    # LP_long = EP - (IM - MM)/Q - Extra/Q = 20,000 - 300 - 100 = 19,600.
    short = liquidation_price(PositionSpec(BYBIT, SHORT, 20_000, 1, 50), single_tier(0.005))
    assert short.liquidation_px == pytest.approx(20_300)
    extra = liquidation_price(
        PositionSpec(BYBIT, LONG, 20_000, 1, 50, wallet=500), single_tier(0.005)
    )
    assert extra.liquidation_px == pytest.approx(19_600)


def test_bybit_tier_by_position_value_uses_its_deduction() -> None:
    # Fixture tier 2 (value 2M-4M): MMR 1%, deduction 10,000. 50 BTC at 50,000 = 2.5M, 20x:
    # IM = 125,000, MM = 2.5M x 1% - 10,000 = 15,000, LP = 50,000 - (125,000 - 15,000)/50 = 47,800.
    res = liquidation_price(PositionSpec(BYBIT, LONG, 50_000, 50, 20), bybit_tiers())
    assert res.tier == 2
    assert res.liquidation_px == pytest.approx(47_800)


def test_binance_isolated_long_and_short_one_tier_by_hand() -> None:
    # LP = (WB + cum - side*Q*EP) / (Q*MMR - side*Q), WB = 20,000/50 = 400, MMR 0.5 %, cum 0.
    long = liquidation_price(PositionSpec(BINANCE, LONG, 20_000, 1, 50), single_tier(0.005))
    assert long.liquidation_px == pytest.approx((400 + 0 - 20_000) / (0.005 - 1))  # 19,698.49
    short = liquidation_price(PositionSpec(BINANCE, SHORT, 20_000, 1, 50), single_tier(0.005))
    assert short.liquidation_px == pytest.approx((400 + 0 + 20_000) / (0.005 + 1))  # 20,298.51
    assert long.bankruptcy_px == pytest.approx(19_600)
    assert short.bankruptcy_px == pytest.approx(20_400)


def test_binance_long_recomputes_when_the_liquidation_notional_falls_into_a_lower_tier() -> None:
    # 2.6 BTC at 20,000 = 52,000 notional: entry tier 2 (MMR 0.5 %, cum 50). 10x: WB = 5,200.
    # Tier 2: LP = (52,000 - 5,200 - 50)/(2.6 x 0.995) = 18,071.1 -> notional 46,985 < 50,000: not
    # tier 2. Tier 1: LP = (52,000 - 5,200)/(2.6 x 0.996) = 18,072.28 -> notional 46,988: tier 1.
    res = liquidation_price(PositionSpec(BINANCE, LONG, 20_000, 2.6, 10), binance_tiers())
    assert res.entry_tier == 2
    assert res.tier == 1
    assert res.tier_changed
    assert res.liquidation_px == pytest.approx((52_000 - 5_200) / (2.6 * 0.996))
    root = bisect(lambda p: 5_200 + 2.6 * (p - 20_000) - mm_binance(2.6 * p), 1.0, 20_000)
    assert res.liquidation_px == pytest.approx(root, rel=1e-9)


def test_binance_short_recomputes_when_the_liquidation_notional_rises_into_a_higher_tier() -> None:
    # 2.4 BTC at 20,000 = 48,000 (tier 1), 10x: WB = 4,800. Tier 1 gives 21,912.35 (notional
    # 52,590: tier 2); tier 2: LP = (4,800 + 50 + 48,000)/(2.4 x 1.005) = 21,911.28 (52,587).
    res = liquidation_price(PositionSpec(BINANCE, SHORT, 20_000, 2.4, 10), binance_tiers())
    assert (res.entry_tier, res.tier) == (1, 2)
    assert res.liquidation_px == pytest.approx((4_800 + 50 + 48_000) / (2.4 * 1.005))
    root = bisect(lambda p: 4_800 + 2.4 * (20_000 - p) - mm_binance(2.4 * p), 20_000, 40_000)
    assert res.liquidation_px == pytest.approx(root, rel=1e-9)


def test_binance_cross_margin_uses_wallet_minus_other_mm_plus_other_upnl() -> None:
    # FAQ: LP = (WB - TMM1 + UPNL1 + cum - Q*EP)/(Q*MMR - Q); WB 10,000, TMM1 500, UPNL1 -1,000.
    spec = PositionSpec(
        BINANCE,
        LONG,
        20_000,
        1,
        20,
        MarginMode.CROSS,
        wallet=10_000,
        other_mm=500,
        other_upnl=-1_000,
    )
    res = liquidation_price(spec, binance_tiers())
    assert res.liquidation_px == pytest.approx((10_000 - 500 - 1_000 + 0 - 20_000) / (0.004 - 1))
    # Bankruptcy counts the others' PnL but not their maintenance margin: 20,000 - 9,000.
    assert res.bankruptcy_px == pytest.approx(11_000)


def test_binance_coin_m_inverse_long_matches_the_faq_formula_and_a_bisection() -> None:
    # 10 contracts of 100 USD at 20,000, 20x: WB = 10 x 100 / 20,000 / 20 = 0.0025 BTC.
    # FAQ: LP = (N*MMR + side*N) / ((WB + cum)/CM + side*N/EP)
    #        = 10 x 1.004 / (0.0025/100 + 10/20,000).
    spec = PositionSpec(BINANCE, LONG, 20_000, 10, 20, inverse=True, contract_size=100)
    res = liquidation_price(spec, single_tier(0.004))
    assert res.liquidation_px == pytest.approx(10 * 1.004 / (0.0025 / 100 + 10 / 20_000))
    root = bisect(
        lambda p: 0.0025 + 1_000 * (1 / 20_000 - 1 / p) - 1_000 / p * 0.004, 1_000, 20_000
    )
    assert res.liquidation_px == pytest.approx(root, rel=1e-9)
    short = liquidation_price(
        PositionSpec(BINANCE, SHORT, 20_000, 10, 20, inverse=True, contract_size=100),
        single_tier(0.004),
    )
    assert short.liquidation_px == pytest.approx(10 * (0.004 - 1) / (0.0025 / 100 - 10 / 20_000))


def test_okx_is_labelled_derived_and_follows_the_derived_formula() -> None:
    # Derived: LP_long = (Q*EP - M)/(Q*(1 - MMR - fee)), LP_short = (Q*EP + M)/(Q*(1 + MMR + fee)).
    res = liquidation_price(
        PositionSpec(OKX, LONG, 20_000, 1, 50, fee_rate=0.0005), single_tier(0.004)
    )
    assert res.formula_status == "derived"
    assert "derived" in res.formula
    assert res.liquidation_px == pytest.approx((20_000 - 400) / (1 - 0.004 - 0.0005))
    short = liquidation_price(
        PositionSpec(OKX, SHORT, 20_000, 1, 50, fee_rate=0.0005), single_tier(0.004)
    )
    assert short.liquidation_px == pytest.approx((20_000 + 400) / (1 + 0.004 + 0.0005))


def test_okx_tiers_are_chosen_by_size() -> None:
    # 250 BTC = 25,000 contracts of 0.01: fixture tier 2 (MMR 0.6 %), max 100x.
    res = liquidation_price(PositionSpec(OKX, LONG, 20_000, 250, 50), okx_tiers())
    assert res.tier == 2
    assert res.liquidation_px == pytest.approx((250 * 20_000 - 100_000) / (250 * (1 - 0.006)))


def test_leverage_above_the_tier_maximum_is_refused() -> None:
    # 60,000 notional is fixture tier 2, whose maximum is 100x.
    with pytest.raises(ValueError, match="above the 100x maximum of tier 2"):
        liquidation_price(PositionSpec(BINANCE, LONG, 20_000, 3, 101), binance_tiers())


def test_size_above_the_largest_tier_is_refused() -> None:
    with pytest.raises(ValueError, match="above the largest tier"):
        liquidation_price(PositionSpec(BINANCE, LONG, 20_000, 2_000, 1), binance_tiers())


def test_margin_below_maintenance_at_entry_is_refused() -> None:
    # 125x gives 0.8 % margin; an MMR of 1 % exceeds it: liquidated at once.
    with pytest.raises(ValueError, match="liquidated at once"):
        liquidation_price(PositionSpec(BINANCE, LONG, 20_000, 1, 125), single_tier(0.01))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (PositionSpec(BINANCE, LONG, -5, 1, 10), "entry price must be a positive number"),
        (PositionSpec(BINANCE, LONG, 100, 0, 10), "quantity must be a positive number"),
        (PositionSpec(BINANCE, LONG, 100, 1, 0.5), "leverage must be at least 1"),
        (PositionSpec(BINANCE, LONG, 100, 1, 10, MarginMode.CROSS), "cross margin needs"),
        (PositionSpec(BYBIT, LONG, 100, 1, 10, inverse=True), "Binance COIN-M only"),
        (PositionSpec(BINANCE, LONG, 100, 1, 10, other_mm=5), "cross margin only"),
    ],
)
def test_invalid_positions_get_one_clear_message(spec: PositionSpec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        liquidation_price(spec, single_tier(0.005))


def test_a_fully_collateralised_long_has_no_liquidation_price() -> None:
    # 1x long with MMR 0.4 %: LP = (Q*EP - Q*EP)/(...) = 0, shown as "--" (None).
    res = liquidation_price(PositionSpec(BINANCE, LONG, 20_000, 1, 1), binance_tiers())
    assert res.liquidation_px is None
    assert res.bankruptcy_px is None


def test_simplified_formula_is_the_textbook_one() -> None:
    # 10x long: EP x (1 - 0.1 + 0.005); 10x short: EP x (1 + 0.1 - 0.005).
    assert simplified_liquidation_price(LONG, 100, 10, 0.005) == pytest.approx(90.5)
    assert simplified_liquidation_price(SHORT, 100, 10, 0.005) == pytest.approx(109.5)


def test_fixture_maintenance_amounts_follow_the_tier_recursion() -> None:
    tiers = binance_tiers()
    assert maint_amounts_by_recursion(tiers) == pytest.approx([t.maint_amount for t in tiers])
    # Binance's COIN-M FAQ example: level 5 = 50 BTC x (5 % - 2.5 %) + 0.56 BTC = 1.81 BTC.
    levels = [Tier(4, 0, 50, 0.025, 0.56), Tier(5, 50, 100, 0.05, 0.0)]
    assert maint_amounts_by_recursion(levels)[1] == pytest.approx(1.81)


def test_tier_table_with_a_gap_is_refused() -> None:
    tiers = binance_tiers()
    del tiers[1]
    with pytest.raises(ValueError, match="gap or overlap"):
        check_tiers(tiers)


def test_maintenance_is_continuous_across_each_fixture_bound() -> None:
    # With the recursion the MM just below and at each bound agree: the premise of the exact solve.
    for t in binance_tiers()[1:]:
        below = t.floor * (1 - 1e-12)
        assert mm_binance(below) == pytest.approx(mm_binance(t.floor), rel=1e-9)
    assert math.isfinite(mm_binance(1e9))
