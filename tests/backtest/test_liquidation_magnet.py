"""Liquidation magnet scalp on a hand-built market: the cluster, the trade and its PnL by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from perpscope.backtest.engine import run_backtest
from perpscope.backtest.strategies import STRATEGIES
from perpscope.backtest.strategies._common import structure_triggers
from perpscope.backtest.strategies.liquidation_magnet import (
    LiquidationMagnetParams,
    liquidation_magnet,
)
from perpscope.backtest.types import EXIT_REASONS, EngineConfig, Market
from tests.backtest._markets import HOUR_NS

FREE = EngineConfig(taker_fee=0.0, maker_fee=0.0, slippage=0.0, cascade_slippage=0.0)
ONE_TIER = LiquidationMagnetParams(leverages=(25.0,), weights=(1.0,))
N = 60


def _market(
    *, oi: bool = True, sfp_high: float = 101.3, climax_usd: float = 100_000.0, liqs: bool = True
) -> Market:
    """1h bars (o, h, l, c):

    * 0-9: 100, 100.2, 99.8, 100; bar 10 rises: 100, 100.6, 99.9, 100.5 (typical price
      (100.6 + 99.9 + 100.5) / 3 = 100.3333);
    * 11-39 flat at 100.5 (h 100.7, l 100.3) except a swing high at 20 (h 101, confirmed at
      23's close) and the bearish swing failure at 25: 100.5, ``sfp_high``, 100.2, 100.4;
    * 26-37 fall 0.5 a bar from 100.4 (h = o + 0.05, l = c - 0.05): closes 99.9 ... 94.4;
    * 38 the climax: 94.4, 94.45, 92.0, 93.5 (a new low, a reversal wick: close 61% of the
      range above the low); 39 on flat at 93.5 (h 93.6, l 93.4).

    Open interest: one observation, 1e8 USD at bar 10's open (known at its close). Liquidations:
    1,000 USD of longs in every bar (so the trailing average is 1,000) and ``climax_usd`` in
    bar 38."""
    o = np.full(N, 100.5)
    h, lo, c = o + 0.2, o - 0.2, o.copy()
    o[:10], h[:10], lo[:10], c[:10] = 100.0, 100.2, 99.8, 100.0
    o[10], h[10], lo[10], c[10] = 100.0, 100.6, 99.9, 100.5
    h[20] = 101.0
    o[25], h[25], lo[25], c[25] = 100.5, sfp_high, 100.2, 100.4
    fall = 100.4 - 0.5 * np.arange(1, 13)
    o[26:38], c[26:38] = np.r_[100.4, fall[:-1]], fall
    h[26:38], lo[26:38] = o[26:38] + 0.05, c[26:38] - 0.05
    o[38], h[38], lo[38], c[38] = 94.4, 94.45, 92.0, 93.5
    o[39:], h[39:], lo[39:], c[39:] = 93.5, 93.6, 93.4, 93.5
    ts = np.arange(N, dtype=np.int64) * HOUR_NS
    m = Market.from_ohlc(ts, o, h, lo, c)
    usd = np.full(N, 1_000.0)
    usd[38] = climax_usd
    return dataclasses.replace(
        m,
        oi_ts=np.array([10 * HOUR_NS]) if oi else None,
        oi=np.array([1e8]) if oi else None,
        liq_ts=ts + HOUR_NS // 2 if liqs else None,
        liq_long=np.ones(N, np.bool_) if liqs else None,
        liq_usd=usd if liqs else None,
    )


# The one cluster, by hand. The 1e8 USD opened at bar 10 is all long (a rising candle) at 25x:
# its liquidation price is entry x (1 - 1/25) / (1 - 0.004) (Binance, isolated, one tier, MMR
# 0.4%) = 100.3333 x 0.963855 = 96.707. At bar 25's close (100.4) the map is summed into 0.5%
# bins of 100.4: 96.707 / 100.4 - 1 = -3.68%, bin k = -8 ([96.384, 96.886)); the cluster is bins
# -9..-7: low 100.4 x 0.955 = 95.882, high 100.4 x 0.97 = 97.388, centre of bin -8 at -3.75%
# (within 5%), density 80 (one full bin of the 80 in +-20%).
CLOSE, LOW_PX, HIGH_PX = 100.4, 100.4 * 0.955, 100.4 * 0.97
STOP_PX = 101.3 * 1.001  # 0.1% above the swing failure's high
RISK_PX = STOP_PX - CLOSE  # 1R = 1.0013 (the entry fills at 100.4, the close)
T1_PX, T2_PX = HIGH_PX, LOW_PX * 0.999  # the near edge; 0.1% past the far edge


def test_magnet_shorts_toward_the_long_cluster_and_exits_at_the_climax() -> None:
    """Short at bar 26's open (100.4), half size: qty = 0.5 x 100 / 1.0013. T1 (97.388) fills
    in bar 31 (close 97.4, low 97.35), T2 (95.786) in bar 35 (low 95.35); bar 38's long
    liquidations are 100x their trailing mean of 1,000, at a new 24-bar low 9.2% below the
    24-bar high (101.3) with a reversal wick: a climax, so the last 30% closes at bar 39's open,
    93.5. PnL = qty x (0.4 x (100.4 - T1) + 0.3 x (100.4 - T2) + 0.3 x (100.4 - 93.5))."""
    m = _market()
    s = liquidation_magnet(m, ONE_TIER)
    assert np.flatnonzero(s.entry).tolist() == [25]
    assert s.entry[25] == -1
    assert s.sizes()[25] == 0.5
    assert s.targets_r[25, 0] == pytest.approx((CLOSE - T1_PX) / RISK_PX)
    assert s.targets_r[25, 1] == pytest.approx((CLOSE - T2_PX) / RISK_PX)
    assert np.isnan(s.targets_r[25, 2])
    assert np.flatnonzero(s.exit_sides()).tolist() == [38]
    assert s.exit_sides()[38] == -1  # a sell cascade's climax closes shorts
    run = run_backtest(m, s, FREE)
    assert len(run.trades) == 1
    qty = 0.5 * 100 / RISK_PX
    assert run.column("entry_bar")[0] == 26
    assert run.column("qty")[0] == pytest.approx(qty)
    assert run.column("exit_bar")[0] == 39
    assert EXIT_REASONS[int(run.column("exit_reason")[0])] == "signal"
    pnl = qty * (0.4 * (CLOSE - T1_PX) + 0.3 * (CLOSE - T2_PX) + 0.3 * (CLOSE - 93.5))
    assert run.column("pnl_usd")[0] == pytest.approx(pnl)
    assert run.final_equity == pytest.approx(10_000 + pnl)


def test_without_a_climax_the_rest_is_held() -> None:
    """Bar 38's liquidations at 4x the average are no climax (5x needed): the last 30% stays
    open to the last close (93.5), the same price here, but the exit is 'end'."""
    m = _market(climax_usd=4_000.0)
    run = run_backtest(m, liquidation_magnet(m, ONE_TIER), FREE)
    assert len(run.trades) == 1
    assert EXIT_REASONS[int(run.column("exit_reason")[0])] == "end"
    assert run.column("exit_bar")[0] == N - 1


@pytest.mark.parametrize(
    ("market", "params", "why"),
    [
        (dict(sfp_high=100.9), ONE_TIER, "the wick stays below the swing high: no trigger"),
        ({}, dataclasses.replace(ONE_TIER, within_pct=3.0), "the cluster is 3.75% away"),
        ({}, dataclasses.replace(ONE_TIER, min_density=100.0), "density 80 < 100"),
    ],
)
def test_no_entry_when_a_condition_is_missing(
    market: dict[str, float], params: LiquidationMagnetParams, why: str
) -> None:
    assert not liquidation_magnet(_market(**market), params).entry.any(), why  # type: ignore[arg-type]


def test_no_entry_when_the_trigger_points_away_from_the_cluster() -> None:
    """A swing low at 20 (low 100.0) and a bullish swing failure at 25 (a wick to 99.7, a close
    back above at 100.55): the trigger points up, the cluster (longs below) down: no entry."""
    m = _market()
    lo, h, c = m.l.copy(), m.h.copy(), m.c.copy()
    h[20], lo[20] = 100.7, 100.0
    h[25], lo[25], c[25] = 100.6, 99.7, 100.55
    bullish = dataclasses.replace(m, h=h, l=lo, c=c, mark_h=h, mark_l=lo, mark_c=c)
    assert structure_triggers(bullish, 3).side[25] == 1
    assert liquidation_magnet(bullish, ONE_TIER).entry[25] == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [({"oi": False}, "--oi-market"), ({"liqs": False}, "liquidation events")],
)
def test_missing_inputs_are_named(change: dict[str, bool], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        liquidation_magnet(_market(**change), ONE_TIER)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("within_pct", 0.0),
        ("min_density", -1.0),
        ("beyond", 0.6),
        ("stop_buffer", float("nan")),
        ("swing_width", 0),
        ("size", 0.0),
        ("climax_mult", 1.0),
        ("leverages", (0.5,)),
    ],
)
def test_bad_parameters_are_named(field: str, value: object) -> None:
    kwargs = {field: value}
    if field == "leverages":
        kwargs["weights"] = (1.0,)
    with pytest.raises(ValueError, match=field):
        LiquidationMagnetParams(**kwargs).validate()  # type: ignore[arg-type]


def test_registered_for_the_cli() -> None:
    assert STRATEGIES["liquidation-magnet"].params is LiquidationMagnetParams
