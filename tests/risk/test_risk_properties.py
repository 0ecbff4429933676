"""Property tests (hypothesis) of the calculators, as the issue's acceptance lists them."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from risk_tier_fixtures import binance_tiers, bisect, mm_binance

from perpscope.risk import (
    LiqVenue,
    PositionSide,
    PositionSpec,
    liquidation_price,
    position_size,
    scale_out,
    single_tier,
)

PRICES = st.floats(1.0, 1e6)
QTYS = st.floats(1e-3, 100.0)
LEVERAGES = st.floats(1.0, 100.0)
MMRS = st.floats(0.0, 0.05)
VENUES = st.sampled_from(list(LiqVenue))
SETTINGS = settings(max_examples=300)


def _liq(venue: LiqVenue, side: PositionSide, ep: float, q: float, lev: float, mmr: float) -> float:
    spec = PositionSpec(venue, side, ep, q, lev)
    px = liquidation_price(spec, single_tier(mmr)).liquidation_px
    return 0.0 if px is None else px


@SETTINGS
@given(VENUES, PRICES, QTYS, LEVERAGES, MMRS)
def test_long_liquidation_below_entry_below_short_liquidation(
    venue: LiqVenue, ep: float, q: float, lev: float, mmr: float
) -> None:
    assume(1 / lev > mmr * 1.01 + 1e-9)  # the margin covers maintenance at entry
    long_px = _liq(venue, PositionSide.LONG, ep, q, lev, mmr)
    short_px = _liq(venue, PositionSide.SHORT, ep, q, lev, mmr)
    assert long_px < ep < short_px


@SETTINGS
@given(
    VENUES, PRICES, QTYS, LEVERAGES, st.floats(1.01, 5.0), MMRS, st.sampled_from(list(PositionSide))
)
def test_more_leverage_moves_liquidation_closer_to_entry(
    venue: LiqVenue,
    ep: float,
    q: float,
    lev: float,
    factor: float,
    mmr: float,
    side: PositionSide,
) -> None:
    lev_hi = min(lev * factor, 125.0)
    assume(lev_hi > lev * 1.001 and 1 / lev_hi > mmr * 1.01 + 1e-9)
    near = abs(_liq(venue, side, ep, q, lev_hi, mmr) - ep)
    far = abs(_liq(venue, side, ep, q, lev, mmr) - ep)
    assert near < far


@SETTINGS
@given(
    st.floats(1_000.0, 100_000.0),
    st.floats(0.01, 60.0),
    LEVERAGES,
    st.sampled_from(list(PositionSide)),
)
def test_binance_tiered_closed_form_equals_a_bisection_root(
    ep: float, q: float, lev: float, side: PositionSide
) -> None:
    # Independent check: bisect the margin balance minus the tiered MM over price.
    notional = ep * q
    tiers = binance_tiers()
    entry_tier = next(t for t in tiers if notional <= t.cap)  # published: floor < x <= cap
    assume(lev <= (entry_tier.max_leverage or 1e9) and 1 / lev > entry_tier.mmr * 1.01)
    res = liquidation_price(PositionSpec(LiqVenue.BINANCE, side, ep, q, lev), tiers)
    wallet = notional / lev
    s = 1 if side is PositionSide.LONG else -1

    def surplus(p: float) -> float:
        return wallet + s * q * (p - ep) - mm_binance(q * p)

    if side is PositionSide.LONG:
        assume(surplus(1e-9) < 0)  # else no liquidation above zero
        root = bisect(surplus, 1e-9, ep)
    else:
        root = bisect(surplus, ep, ep * 10)
    assert res.liquidation_px == pytest.approx(root, rel=1e-8)


@SETTINGS
@given(
    st.floats(100.0, 1e7),
    st.floats(0.1, 5.0),
    PRICES,
    st.floats(0.001, 0.5),
    st.booleans(),
    st.floats(0.01, 100.0),
)
def test_size_is_linear_in_equity(
    equity: float, risk_pct: float, entry: float, dist: float, long: bool, k: float
) -> None:
    stop = entry * (1 - dist) if long else entry * (1 + dist)
    # margin / equity = risk% / distance / leverage: sizes whose margin exceeds equity are refused
    assume(risk_pct / 100 / dist / 3 <= 0.99)
    base = position_size(equity, risk_pct, entry, stop, 3)
    scaled = position_size(equity * k, risk_pct, entry, stop, 3)
    assert scaled.qty == pytest.approx(base.qty * k, rel=1e-9)
    assert scaled.margin_usd == pytest.approx(base.margin_usd * k, rel=1e-9)
    assert scaled.risk_usd == pytest.approx(base.risk_usd * k, rel=1e-9)


@st.composite
def _plans(draw: st.DrawFn) -> tuple[float, float, list[float], list[float], list[float]]:
    """Entry, stop, targets, scale and the R multiples the targets were built from."""
    entry = draw(st.floats(1.0, 1e5))
    risk = draw(st.floats(1e-3, 0.2)) * entry
    long = draw(st.booleans())
    n = draw(st.integers(1, 5))
    steps = draw(st.lists(st.floats(0.1, 3.0), min_size=n, max_size=n))
    rs = [sum(steps[: i + 1]) for i in range(n)]
    targets = [entry + (r * risk if long else -r * risk) for r in rs]
    assume(all(t > 0 for t in targets))
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=n - 1, max_size=n - 1)))
    bounds = [0, *cuts, 100]
    scale = [float(bounds[i + 1] - bounds[i]) for i in range(n)]
    stop = entry - risk if long else entry + risk
    return entry, stop, targets, scale, rs


@SETTINGS
@given(_plans())
def test_blended_r_of_a_full_fill_equals_the_weighted_r_multiples(
    plan: tuple[float, float, list[float], list[float], list[float]],
) -> None:
    # Independent: the targets were placed at known R multiples (cumulative steps of risk), and R
    # is (target - entry) / (entry - stop) on either side; neither uses the code's r_multiples.
    entry, stop, targets, scale, rs = plan
    by_hand = [(t - entry) / (entry - stop) for t in targets]
    assert by_hand == pytest.approx(rs, rel=1e-6)
    res = scale_out(entry, stop, targets, scale)
    assert res.r_multiples == pytest.approx(by_hand, rel=1e-9, abs=1e-12)
    weighted = sum(w * r for w, r in zip(scale, by_hand, strict=True)) / 100
    assert res.blended_r == pytest.approx(weighted, rel=1e-9, abs=1e-12)
