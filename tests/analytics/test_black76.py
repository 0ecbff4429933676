"""Black-76 prices, greeks and IV inversion: golden values, parity, round trips, bad inputs."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from perpscope.analytics.black76 import black76_greeks, black76_price, implied_vol, norm_cdf


def _n(x: float) -> float:
    """Normal CDF written independently with math.erf."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def test_atm_call_matches_closed_form() -> None:
    # ATM Black-76 call = F (2 N(sigma sqrt(T) / 2) - 1); F=100, sigma=0.2, T=1 -> 7.9655674554...
    expected = 100.0 * (2.0 * _n(0.1) - 1.0)
    price = black76_price(100.0, 100.0, 1.0, 0.2, True)
    assert abs(float(price) - expected) < 1e-12
    assert abs(expected - 7.965567455405804) < 1e-12


def test_itm_put_matches_hand_formula_with_rate() -> None:
    # K N(-d2) - F N(-d1), discounted; d1, d2 by hand with math.erf.
    f, k, t, v, r = 50_000.0, 55_000.0, 0.25, 0.8, 0.03
    d1 = (math.log(f / k) + 0.5 * v * v * t) / (v * math.sqrt(t))
    d2 = d1 - v * math.sqrt(t)
    expected = math.exp(-r * t) * (k * _n(-d2) - f * _n(-d1))
    assert abs(float(black76_price(f, k, t, v, False, r)) - expected) < 1e-8


def test_norm_cdf_is_symmetric_to_one_ulp() -> None:
    x = np.linspace(-8, 8, 161)
    assert np.abs(norm_cdf(x) + norm_cdf(-x) - 1.0).max() <= 2.3e-16
    assert norm_cdf(-8.0) > 0  # the lower tail does not cancel to zero


@settings(max_examples=200)
@given(
    fwd=st.floats(100.0, 100_000.0),
    moneyness=st.floats(0.3, 3.0),
    t=st.floats(1 / 365, 3.0),
    vol=st.floats(0.05, 3.0),
    rate=st.floats(0.0, 0.1),
)
def test_put_call_parity_holds(
    fwd: float, moneyness: float, t: float, vol: float, rate: float
) -> None:
    strike = fwd * moneyness
    call = float(black76_price(fwd, strike, t, vol, True, rate))
    put = float(black76_price(fwd, strike, t, vol, False, rate))
    assert abs((call - put) - math.exp(-rate * t) * (fwd - strike)) < 1e-9 * max(fwd, strike)


@settings(max_examples=300)
@given(
    fwd=st.floats(100.0, 100_000.0),
    moneyness=st.floats(0.5, 2.0),
    t=st.floats(1 / 365, 2.0),
    vol=st.floats(0.05, 3.0),
    is_call=st.booleans(),
    rate=st.floats(0.0, 0.1),
)
def test_iv_inversion_round_trips_to_1e6(
    fwd: float, moneyness: float, t: float, vol: float, is_call: bool, rate: float
) -> None:
    strike = fwd * moneyness
    vega = float(black76_greeks(fwd, strike, t, vol, is_call, rate)["vega"]) * 100
    assume(vega > 1e-4 * fwd)  # below this the price barely depends on vol: IV is not identified
    price = float(black76_price(fwd, strike, t, vol, is_call, rate))
    recovered = float(implied_vol(price, fwd, strike, t, is_call, rate))
    assert abs(recovered - vol) < 1e-6


def test_iv_inversion_is_vectorised_and_recovers_each_vol() -> None:
    fwd = np.full(5, 2000.0)
    strike = np.array([1500.0, 1800.0, 2000.0, 2200.0, 3000.0])
    vols = np.array([0.9, 0.75, 0.6, 0.65, 0.8])
    calls = np.array([False, False, True, True, True])
    prices = black76_price(fwd, strike, 0.1, vols, calls)
    assert np.allclose(implied_vol(prices, fwd, strike, 0.1, calls), vols, atol=1e-9)


def test_iv_is_nan_outside_no_arbitrage_bounds() -> None:
    # below intrinsic, at intrinsic, above the forward (call), zero time, negative price
    out = implied_vol(
        [5.0, 10.0, 120.0, 3.0, -1.0],
        [110.0, 110.0, 110.0, 100.0, 100.0],
        [100.0, 100.0, 100.0, 100.0, 100.0],
        [0.5, 0.5, 0.5, 0.0, 0.5],
        [True, True, True, True, False],
    )
    assert np.isnan(out).all()


def test_greeks_match_finite_differences() -> None:
    f, k, t, v = 45_000.0, 50_000.0, 30 / 365, 0.7
    g = black76_greeks(f, k, t, v, True)
    h = 1e-3 * f
    price = lambda ff, vv, tt: float(black76_price(ff, k, tt, vv, True))  # noqa: E731
    delta_fd = (price(f + h, v, t) - price(f - h, v, t)) / (2 * h)
    gamma_fd = (price(f + h, v, t) - 2 * price(f, v, t) + price(f - h, v, t)) / (h * h)
    vega_fd = (price(f, v + 1e-4, t) - price(f, v - 1e-4, t)) / (2e-4) / 100
    day = 1 / 365
    theta_fd = price(f, v, t - day) - price(f, v, t)  # one calendar day of decay
    assert abs(float(g["delta"]) - delta_fd) < 1e-6
    assert abs(float(g["gamma"]) - gamma_fd) < 1e-8
    assert abs(float(g["vega"]) - vega_fd) < 1e-5
    assert abs(float(g["theta"]) - theta_fd) / abs(theta_fd) < 0.02


def test_put_delta_is_call_delta_minus_one() -> None:
    call = black76_greeks(100.0, 90.0, 0.5, 0.4, True)["delta"]
    put = black76_greeks(100.0, 90.0, 0.5, 0.4, False)["delta"]
    assert abs(float(call) - float(put) - 1.0) < 1e-15
