"""Position sizing and scale-out R: the playbook's worked examples, recomputed by hand."""

from __future__ import annotations

import pytest

from perpscope.risk import (
    LiqVenue,
    PositionSide,
    position_size,
    r_multiple,
    scale_out,
    stop_from_atr,
)


def test_february_btc_short_sizes_to_1_5_btc_and_14130_margin_at_5x() -> None:
    # Playbook: equity 50,000, risk 1.5 % = 750, entry 47,100, stop 47,600 -> 750/500 = 1.5 BTC;
    # margin at 5x = 1.5 x 47,100 / 5 = 14,130.
    r = position_size(50_000, 1.5, 47_100, 47_600, 5)
    assert r.side is PositionSide.SHORT
    assert r.qty == pytest.approx(1.5)
    assert r.risk_usd == pytest.approx(750)
    assert r.notional_usd == pytest.approx(70_650)
    assert r.margin_usd == pytest.approx(14_130)
    # Simplified liquidation with MMR 0 (bankruptcy): 47,100 x 1.2 = 56,520, beyond the stop.
    assert r.liquidation_px == pytest.approx(56_520)
    assert r.warning is None


def test_september_eth_long_sizes_to_6_43_eth_and_5700_margin_at_3x() -> None:
    # 30,000 x 1.5 % = 450; 450 / 70 = 6.4286 ETH; margin = 6.4286 x 2,660 / 3 = 5,700.
    r = position_size(30_000, 1.5, 2_660, 2_590, 3)
    assert r.side is PositionSide.LONG
    assert r.qty == pytest.approx(450 / 70)
    assert r.margin_usd == pytest.approx(5_700)


def test_lot_size_rounds_down_and_reports_the_risk_actually_taken() -> None:
    # 450/70 = 6.428 -> 6.42 with lots of 0.01; risk = 6.42 x 70 = 449.4.
    r = position_size(30_000, 1.5, 2_660, 2_590, 3, lot_size=0.01)
    assert r.qty == pytest.approx(6.42)
    assert r.risk_usd == pytest.approx(449.4)
    assert r.risk_budget_usd == pytest.approx(450)


def test_warning_when_liquidation_comes_before_the_stop() -> None:
    # 50x long at 100 with stop 97: simplified liquidation 100 x (1 - 0.02 + 0.005) = 98.5 > 97.
    r = position_size(10_000, 1, 100, 97, 50, mmr=0.005)
    assert r.liquidation_px == pytest.approx(98.5)
    assert r.warning is not None
    assert "before the stop" in r.warning


def test_atr_stop_is_multiple_times_atr_beyond_entry() -> None:
    assert stop_from_atr(PositionSide.LONG, 100, 2, 1.5) == pytest.approx(97)
    assert stop_from_atr(PositionSide.SHORT, 100, 2, 1.5) == pytest.approx(103)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((50_000, 1.5, -1, 47_600), "entry price must be a positive number"),
        ((50_000, 1.5, 47_100, 47_100), "stop must differ"),
        ((0, 1.5, 47_100, 47_600), "equity must be a positive number"),
        ((50_000, 150, 47_100, 47_600), "at most 100"),
    ],
)
def test_invalid_sizing_input_is_refused(args: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        position_size(*args)


def test_february_btc_blended_r_is_2_92_not_the_playbooks_3_1() -> None:
    # R: (47,100-46,600)/500 = 1.0, (47,100-45,800)/500 = 2.6, (47,100-44,200)/500 = 5.8.
    # All hit, 40/30/30: 0.4x1 + 0.3x2.6 + 0.3x5.8 = 2.92 R = 2,190 on 750 risk (playbook: 3.1 R).
    r = scale_out(47_100, 47_600, [46_600, 45_800, 44_200], qty=1.5)
    assert r.r_multiples == pytest.approx([1.0, 2.6, 5.8])
    assert r.blended_r == pytest.approx(2.92)
    assert r.profit_usd == pytest.approx(2_190)


def test_september_eth_blended_r_with_the_rest_stopped_at_2850_is_2_03() -> None:
    # T1 1 R, T2 190/70 = 2.714 R; the last 30 % exits at 2,850 (= T2, not breakeven): 2.714 R.
    # 0.4 + 0.3 x 2.714 + 0.3 x 2.714 = 2.029 R = 912.86 on 450 risk (playbook: 2.1 R, 945).
    r = scale_out(2_660, 2_590, [2_730, 2_850, 2_960], hit=2, rest_exit_px=2_850, qty=450 / 70)
    assert r.blended_r == pytest.approx(0.4 + 0.6 * 190 / 70)
    assert r.profit_usd == pytest.approx(450 * (0.4 + 0.6 * 190 / 70))
    # If the rest had truly been stopped at breakeven: 0.4 + 0.3 x 2.714 = 1.214 R.
    be = scale_out(2_660, 2_590, [2_730, 2_850, 2_960], hit=2, breakeven_after_t1=True)
    assert be.blended_r == pytest.approx(0.4 + 0.3 * 190 / 70)


def test_triple_confluence_blended_r_is_2_89_not_3_4() -> None:
    # 0.4 x 1 + 0.3 x 2.9 + 0.3 x 5.4 = 2.89 R = 3,468 on 1,200 risk (playbook: 3.4 R, 4,080).
    r = scale_out(72_400, 73_400, [71_400, 69_500, 67_000], qty=1.2)
    assert r.r_multiples == pytest.approx([1.0, 2.9, 5.4])
    assert r.blended_r == pytest.approx(2.89)
    assert r.profit_usd == pytest.approx(3_468)


def test_rest_exits_at_the_stop_by_default_and_at_entry_after_t1_with_breakeven() -> None:
    # Only T1 hit: 0.4 x 1 + 0.6 x (-1) = -0.2 R; with breakeven after T1: 0.4 R.
    plan = (100.0, 90.0, [110.0, 120.0, 130.0])
    assert scale_out(*plan, hit=1).blended_r == pytest.approx(-0.2)
    assert scale_out(*plan, hit=1, breakeven_after_t1=True).blended_r == pytest.approx(0.4)
    # Nothing hit: breakeven never armed, the whole position is stopped: -1 R.
    assert scale_out(*plan, hit=0, breakeven_after_t1=True).blended_r == pytest.approx(-1.0)


def test_r_multiple_is_signed_to_the_side() -> None:
    assert r_multiple(100, 90, 125) == pytest.approx(2.5)
    assert r_multiple(100, 110, 125) == pytest.approx(-2.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"targets_px": [95.0, 120.0, 130.0]}, "not on the profit side"),
        ({"targets_px": [120.0, 110.0, 130.0]}, "in order"),
        ({"scale_pct": [50.0, 30.0, 30.0]}, "sum to 100"),
        ({"hit": 4}, "between 0 and 3"),
        ({"rest_exit_px": 105.0, "breakeven_after_t1": True}, "not both"),
    ],
)
def test_invalid_scale_out_plans_are_refused(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"targets_px": [110.0, 120.0, 130.0]}
    base.update(kwargs)
    with pytest.raises(ValueError, match=message):
        scale_out(100, 90, **base)  # type: ignore[arg-type]


def test_venue_liquidation_check_is_exact_where_the_simplified_one_warns() -> None:
    # 50x long at 100, MMR 0.5 %, stop 98.495. Simplified: 100 x (1 - 0.02 + 0.005) = 98.5, which
    # is above the stop (warning). Binance exact: 100 x (1 - 1/50) / (1 - 0.005) = 98.4925, which
    # is below the stop (no warning).
    simple = position_size(10_000, 1, 100, 98.495, 50, mmr=0.005)
    assert simple.liquidation_px == pytest.approx(98.5)
    assert simple.warning is not None
    exact = position_size(10_000, 1, 100, 98.495, 50, mmr=0.005, venue=LiqVenue.BINANCE)
    assert exact.liquidation_px == pytest.approx(100 * 0.98 / 0.995)
    assert exact.warning is None
