"""Black-76: prices, greeks and implied volatility of European options on a forward.

Deribit prices its options with Black-76 on the expiry's forward (``underlying_price``), zero rate
and calendar time (``T`` in years of 365 days); a Deribit mark price is quoted in coin, and its USD
value is ``mark_price x underlying_px``. Every function here works element-wise on numpy arrays
(or scalars broadcast against them) and returns float arrays; NaN marks an input for which the
quantity does not exist (non-positive time, volatility or prices; a price outside the no-arbitrage
bounds), so callers turn NaN into null with a reason instead of printing it.

Conventions: ``fwd_px`` and ``strike_px`` in USD, ``t_years`` in years, ``vol`` a fraction
(0.65 = 65%), ``rate`` a continuously compounded annual fraction, ``is_call`` booleans.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "black76_greeks",
    "black76_price",
    "implied_vol",
    "norm_cdf",
    "norm_pdf",
]

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

_SQRT2: Final = math.sqrt(2.0)
_INV_SQRT_2PI: Final = 1.0 / math.sqrt(2.0 * math.pi)
_erfc = np.frompyfunc(math.erfc, 1, 1)
VOL_LO: Final = 1e-6
VOL_HI: Final = 20.0


def norm_cdf(x: ArrayLike) -> FloatArray:
    """Standard normal CDF via ``erfc``: accurate in both tails, ``N(x) + N(-x) = 1`` to 1 ulp."""
    arr = np.asarray(x, dtype=np.float64)
    return np.asarray(0.5 * _erfc(-arr / _SQRT2), dtype=np.float64)


def norm_pdf(x: ArrayLike) -> FloatArray:
    """Standard normal density."""
    arr = np.asarray(x, dtype=np.float64)
    return np.asarray(_INV_SQRT_2PI * np.exp(-0.5 * arr * arr), dtype=np.float64)


def _valid(*arrays: FloatArray) -> npt.NDArray[np.bool_]:
    ok = np.ones(np.broadcast(*arrays).shape, dtype=bool)
    for a in arrays:
        ok &= np.isfinite(a) & (a > 0)
    return ok


def _d1_d2(
    fwd: FloatArray, strike: FloatArray, t: FloatArray, vol: FloatArray
) -> tuple[FloatArray, FloatArray]:
    ok = _valid(fwd, strike, t, vol)
    sd = np.where(ok, vol * np.sqrt(np.where(ok, t, 1.0)), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.where(ok, (np.log(np.where(ok, fwd / strike, 1.0)) + 0.5 * sd * sd) / sd, np.nan)
    return d1, d1 - sd


def black76_price(
    fwd_px: ArrayLike,
    strike_px: ArrayLike,
    t_years: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
    rate: ArrayLike = 0.0,
) -> FloatArray:
    """Black-76 price in USD: ``exp(-rT) (F N(d1) - K N(d2))`` for calls, ``exp(-rT) (K N(-d2) -
    F N(-d1))`` for puts.

    Returns NaN where ``fwd_px``, ``strike_px``, ``t_years`` or ``vol`` is not positive.
    """
    f, k, t, v = (np.asarray(a, dtype=np.float64) for a in (fwd_px, strike_px, t_years, vol))
    call = np.asarray(is_call, dtype=bool)
    df = np.exp(-np.asarray(rate, dtype=np.float64) * t)
    d1, d2 = _d1_d2(f, k, t, v)
    call_px = f * norm_cdf(d1) - k * norm_cdf(d2)
    put_px = k * norm_cdf(-d2) - f * norm_cdf(-d1)
    return np.asarray(df * np.where(call, call_px, put_px), dtype=np.float64)


def black76_greeks(
    fwd_px: ArrayLike,
    strike_px: ArrayLike,
    t_years: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
    rate: ArrayLike = 0.0,
) -> dict[str, FloatArray]:
    """Black-76 greeks with respect to the forward, in Deribit's units.

    Returns:
        ``delta`` (per unit of forward), ``gamma`` (per USD of forward), ``vega`` (USD per 1
        volatility point, i.e. per 0.01) and ``theta`` (USD per calendar day), NaN where the
        inputs are not positive.
    """
    f, k, t, v = (np.asarray(a, dtype=np.float64) for a in (fwd_px, strike_px, t_years, vol))
    call = np.asarray(is_call, dtype=bool)
    r = np.asarray(rate, dtype=np.float64)
    df = np.exp(-r * t)
    d1, _ = _d1_d2(f, k, t, v)
    pdf = norm_pdf(d1)
    sqrt_t = np.sqrt(np.where(t > 0, t, np.nan))
    delta = df * np.where(call, norm_cdf(d1), norm_cdf(d1) - 1.0)
    gamma = df * pdf / (f * v * sqrt_t)
    vega = df * f * pdf * sqrt_t / 100.0
    price = black76_price(f, k, t, v, call, r)
    theta = (-df * f * pdf * v / (2.0 * sqrt_t) + r * price) / 365.0
    return {"delta": delta, "gamma": gamma, "vega": vega, "theta": theta}


def implied_vol(
    price_usd: ArrayLike,
    fwd_px: ArrayLike,
    strike_px: ArrayLike,
    t_years: ArrayLike,
    is_call: ArrayLike,
    rate: ArrayLike = 0.0,
    *,
    tol: float = 1e-12,
    max_iter: int = 100,
) -> FloatArray:
    """Invert Black-76: the volatility whose price equals ``price_usd``.

    Safeguarded Newton on each element: a bracket ``[1e-6, 20]`` shrinks around the root every
    step, and a Newton step that would leave the bracket is replaced by bisection, so the search
    always converges; it stops when the price error is below ``tol`` times the forward.

    Returns:
        The volatility as a fraction; NaN where the price is outside the no-arbitrage bounds
        (at or below intrinsic value, at or above the forward for calls or the strike for puts),
        or an input is not positive.
    """
    p, f, k, t = (np.asarray(a, dtype=np.float64) for a in (price_usd, fwd_px, strike_px, t_years))
    p, f, k, t = np.broadcast_arrays(p, f, k, t)
    call = np.broadcast_to(np.asarray(is_call, dtype=bool), p.shape)
    r = np.broadcast_to(np.asarray(rate, dtype=np.float64), p.shape)
    df = np.exp(-r * t)
    intrinsic = df * np.where(call, np.maximum(f - k, 0.0), np.maximum(k - f, 0.0))
    upper = df * np.where(call, f, k)
    ok = _valid(f, k, t) & np.isfinite(p) & (p > intrinsic) & (p < upper)
    lo = np.full(p.shape, VOL_LO)
    hi = np.full(p.shape, VOL_HI)
    vol = np.full(p.shape, 0.5)
    done = ~ok
    scale = np.where(ok, f, 1.0)
    for _ in range(max_iter):
        if done.all():
            break
        model = black76_price(f, k, t, vol, call, r)
        diff = model - p
        done |= np.abs(diff) <= tol * scale
        hi = np.where(diff > 0, vol, hi)
        lo = np.where(diff < 0, vol, lo)
        vega = black76_greeks(f, k, t, vol, call, r)["vega"] * 100.0
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = vol - diff / vega
        inside = np.isfinite(newton) & (newton > lo) & (newton < hi)
        step = np.where(inside, newton, 0.5 * (lo + hi))
        vol = np.where(done, vol, step)
    return np.asarray(np.where(ok, vol, np.nan), dtype=np.float64)
