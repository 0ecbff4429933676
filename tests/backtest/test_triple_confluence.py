"""Triple confluence on hand-built markets: every condition, the trade and its PnL by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from perpscope.backtest.engine import run_backtest
from perpscope.backtest.strategies import STRATEGIES
from perpscope.backtest.strategies.triple_confluence import (
    TripleConfluenceParams,
    funding_direction,
    triple_confluence,
)
from perpscope.backtest.types import EXIT_REASONS, EngineConfig, Market
from tests.backtest._markets import HOUR_NS, flat_market

FREE = EngineConfig(taker_fee=0.0, maker_fee=0.0, slippage=0.0, cascade_slippage=0.0)

# bars 319..324 (o, h, l, c): the top of the rally, a swing high at 319 (its high 110.1 is above
# the three highs on each side), confirmed at 322's close, and a swing failure at 324 (a wick to
# 110.5 above 110.1, a close back below it at 109.5)
TOP = {
    320: (110.0, 110.0, 109.7, 109.8),
    321: (109.8, 109.85, 109.5, 109.6),
    322: (109.6, 109.75, 109.55, 109.7),
    323: (109.7, 109.95, 109.65, 109.9),
    324: (109.9, 110.5, 109.4, 109.5),
}


def _market(
    *,
    oi_end: float = 0.92,
    settlements: int = 4,
    rate: float = 0.001,
    sfp_high: float = 110.5,
    n: int = 400,
) -> Market:
    """1h bars: 100 flat (h 100.2, l 99.8) for bars 0-199; +10/120 a bar from 200 to 319 (close
    110, h = c + 0.1, l = o - 0.1); the top of TOP (sfp_high: bar 324's high); from 325 the close
    falls 0.5 a bar (h = o + 0.05, l = c - 0.05) down to 95, then flat. Daily OI (at hours 0, 24,
    ...): 1e9 up to hour 192, then linear to ``oi_end`` x 1e9 at hour 312, flat after.
    Funding ``rate`` per 8h at the ``settlements`` settlements ending at hour 320; none after."""
    c = np.full(n, 100.0)
    c[200:320] = 100.0 + np.arange(1, 121) * 10.0 / 120.0
    o = np.r_[100.0, c[:-1]]
    h, lo = c + 0.1, o - 0.1
    h[:200], lo[:200] = 100.2, 99.8
    for i, bar in TOP.items():
        o[i], h[i], lo[i], c[i] = bar
    h[324] = sfp_high
    down = np.maximum(109.5 - 0.5 * np.arange(1, n - 324), 95.0)
    c[325:] = down
    o[325:] = np.r_[109.5, down[:-1]]
    h[325:], lo[325:] = o[325:] + 0.05, c[325:] - 0.05
    ts = np.arange(n, dtype=np.int64) * HOUR_NS
    fts = np.array([320 - 8 * k for k in range(settlements)][::-1], np.int64) * HOUR_NS
    m = Market.from_ohlc(
        ts, o, h, lo, c, fts, np.full(settlements, rate), np.full(settlements, 8.0)
    )
    days = np.arange(0, n, 24)
    frac = np.clip((days - 192) / 120, 0, 1)
    oi = 1e9 * (1 + (oi_end - 1) * frac)
    return dataclasses.replace(m, oi_ts=days * HOUR_NS, oi=oi)


def test_triple_confluence_shorts_the_swing_failure_and_hits_all_targets() -> None:
    """Funding: +0.1% at 296, 304, 312, 320h: a streak of 4 x 8h = 32h >= 24h, positive -> short.
    OI divergence at bar 319 (close 110 = the 120-bar high): price +10% over 120 bars; the OI
    known at 319's close is the 312h value, 0.92e9, against the 192h value 1e9 known at 199's
    close: -8%, ratio 0.8 >= 0.5 -> bearish, and 319 is 5 bars before 324 (within 24h).
    Trigger: the bearish swing failure at 324. Stop: 0.1% above its high, 110.5 x 1.001 =
    110.6105, a fraction (110.6105 - 109.5) / 109.5 of the close. The short fills at 325's open,
    109.5 (the close: 1R = 1.1105). Price then falls 0.5 a bar to 95 and never comes back up:
    T1 = 1R, T2 = 2.9R, T3 = 5.4R all fill at their limits. Risk 1% of 10,000 = 100, so the
    PnL is 100 x (0.4 x 1 + 0.3 x 2.9 + 0.3 x 5.4) = 289 (no costs, no funding after 320h)."""
    m = _market()
    s = triple_confluence(m, TripleConfluenceParams())
    assert np.flatnonzero(s.entry).tolist() == [324]
    assert s.entry[324] == -1
    assert s.stop_frac[324] == pytest.approx((110.5 * 1.001 - 109.5) / 109.5)
    run = run_backtest(m, s, FREE)
    assert len(run.trades) == 1
    assert run.column("entry_bar")[0] == 325
    assert run.column("entry_px")[0] == pytest.approx(109.5)
    assert run.column("qty")[0] == pytest.approx(100 / (110.5 * 1.001 - 109.5))
    assert EXIT_REASONS[int(run.column("exit_reason")[0])] == "target"
    # exit_px is the size-weighted mean of the three fills: T1 108.3895, T2 106.27955,
    # T3 103.5033; T3 fills on the first bar whose low reaches it, the one closing at 103.5
    # (bar 324 + 12 = 336: close 109.5 - 12 x 0.5, low 103.45)
    assert run.column("exit_px")[0] == pytest.approx(
        0.4 * 108.3895 + 0.3 * 106.27955 + 0.3 * 103.5033
    )
    assert run.column("exit_bar")[0] == 336
    assert run.column("pnl_usd")[0] == pytest.approx(289.0)
    assert run.final_equity == pytest.approx(10_289.0)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"settlements": 2}, "two settlements are 16h, short of 24h"),
        ({"rate": 0.0004}, "0.04% is not an extreme"),
        ({"rate": -0.001}, "negative funding points long; the trigger is bearish"),
        ({"oi_end": 1.08}, "OI rose: no divergence"),
        ({"oi_end": 0.97}, "OI -3% over +10%: ratio 0.3 < 0.5"),
        ({"sfp_high": 110.05}, "the wick stays below the swing high: no swing failure"),
    ],
)
def test_no_entry_when_one_layer_is_missing(change: dict[str, float], why: str) -> None:
    s = triple_confluence(_market(**change), TripleConfluenceParams())  # type: ignore[arg-type]
    assert not s.entry.any(), why


def test_the_divergence_must_be_recent() -> None:
    """The divergence's last bar is 319; with a 4h window it no longer counts at 324."""
    m = _market()
    assert not triple_confluence(m, TripleConfluenceParams(divergence_within_h=4)).entry.any()
    assert triple_confluence(m, TripleConfluenceParams(divergence_within_h=6)).entry[324] == -1


def test_triple_confluence_needs_open_interest() -> None:
    m = dataclasses.replace(_market(), oi_ts=None, oi=None)
    with pytest.raises(ValueError, match="--oi-market"):
        triple_confluence(m, TripleConfluenceParams())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("funding_threshold", 0.0),
        ("min_extreme_h", -1.0),
        ("lookback_h", float("nan")),
        ("divergence_within_h", 0.0),
        ("min_move", 1.0),
        ("min_ratio", -0.1),
        ("swing_width", 0),
        ("stop_buffer", -0.01),
        ("targets_r", (2.0, 1.0, 3.0)),
    ],
)
def test_bad_parameters_are_named(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        TripleConfluenceParams(**{field: value}).validate()  # type: ignore[arg-type]


def test_registered_for_the_cli() -> None:
    assert STRATEGIES["triple-confluence"].params is TripleConfluenceParams


@pytest.mark.parametrize(("prints", "expected"), [(5, 0), (6, -1)])
def test_extreme_hours_count_each_settlements_interval(prints: int, expected: int) -> None:
    """A 4h venue: 5 prints of +0.03% per 4h (+0.06% per 8h) are 20h, 6 are 24h. The last print
    is at hour 4 x (prints - 1), known from that bar's close; read at bar 30."""
    m = flat_market(40, funding=[(4.0 * k, 0.0003, 4.0) for k in range(prints)])
    assert funding_direction(m, 0.0005, 24.0)[30] == expected
