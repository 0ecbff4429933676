"""Price formation: the market maker's book, the mark price and the funding formula.

All three are small pure functions on arrays (one element per market), used by the engine.
"""

from __future__ import annotations

import numpy as np

from perpscope.sim.constants import CAP_8H, CLAMP_8H, INTEREST_8H

__all__ = ["consume_depth", "funding_rate", "mark_price", "median3"]


def consume_depth(
    mid_px: np.ndarray, order_usd: np.ndarray, depth_usd: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Execute net market orders against a book of constant depth per unit of log-price.

    A book holding ``depth_usd`` of resting orders per unit of log-price (``depth_usd / 100`` per
    1% move) is consumed level by level: a buy of ``q`` USD lifts the price from ``p`` to
    ``p * exp(q / depth)`` and fills on average at ``p * exp(q / (2 * depth))``.

    Returns:
        (new mid price, average fill price), both per market.
    """
    x = order_usd / depth_usd
    return np.asarray(mid_px * np.exp(x)), np.asarray(mid_px * np.exp(0.5 * x))


def median3(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Element-wise median of three arrays."""
    return np.asarray(np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c)))


def mark_price(
    index_px: np.ndarray,
    last_px: np.ndarray,
    premium_ema: np.ndarray,
    last_rate: np.ndarray,
    time_left_frac: np.ndarray,
) -> np.ndarray:
    """Mark price as Binance defines it: the median of three prices.

    ``index * (1 + last funding rate * time to next funding / interval)``,
    ``index * (1 + moving average of the premium)`` and the last traded price. A dump on one
    book moves the last price only, so the mark follows it only once the index or the premium
    average moves too.
    """
    p1 = index_px * (1.0 + last_rate * time_left_frac)
    p2 = index_px * (1.0 + premium_ema)
    return median3(p1, p2, last_px)


def funding_rate(mean_premium: np.ndarray, interval_h: np.ndarray | float) -> np.ndarray:
    """The playbook's funding formula, scaled to the interval.

    ``rate = P + clamp(I - P, -c, +c)`` with ``P`` the interval's average premium index, the
    interest rate ``I = 0.01%`` per 8h and the clamp ``c = 0.05%`` per 8h, both scaled by
    ``interval_h / 8``. Whenever ``|P - I| <= c`` the rate is exactly ``I``. The venue caps the
    result at +-0.3% per 8h (:data:`~perpscope.sim.constants.CAP_8H`, scaled likewise).
    """
    scale = np.asarray(interval_h, dtype=float) / 8.0
    interest = INTEREST_8H * scale
    clamp = CLAMP_8H * scale
    cap = CAP_8H * scale
    rate = mean_premium + np.clip(interest - mean_premium, -clamp, clamp)
    return np.asarray(np.clip(rate, -cap, cap))
