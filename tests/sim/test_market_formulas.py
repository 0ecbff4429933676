"""Golden numbers for the simulator's formulas (hand-computed; see each comment)."""

from __future__ import annotations

import numpy as np
import pytest

from perpscope.sim.market import consume_depth, funding_rate, mark_price


@pytest.mark.parametrize(
    ("premium", "interval_h", "expected"),
    [
        (0.0003, 8.0, 0.0001),  # |I - P| = 0.02% <= 0.05%: rate = I
        (0.0010, 8.0, 0.0005),  # P + clamp(0.01% - 0.10%) = 0.10% - 0.05%
        (-0.0010, 8.0, -0.0005),  # -0.10% + min(0.11%, 0.05%)
        (-0.0003, 8.0, 0.0001),  # -0.03% + 0.04% (inside the clamp)
        (0.0010, 4.0, 0.00075),  # 4h: I = 0.005%, c = 0.025%: 0.10% - 0.025%
        (0.0050, 8.0, 0.0030),  # 0.50% - 0.05% = 0.45%, capped at the venue's 0.3% per 8h
        (-0.0050, 8.0, -0.0030),  # -0.50% + 0.05% = -0.45%, capped at -0.3%
        (0.0050, 4.0, 0.0015),  # 4h: 0.50% - 0.025% = 0.475%, capped at 0.3% x 4/8 = 0.15%
    ],
)
def test_funding_rate_is_premium_plus_clamped_interest_gap(
    premium: float, interval_h: float, expected: float
) -> None:
    assert funding_rate(np.array([premium]), interval_h)[0] == pytest.approx(expected, abs=1e-15)


def test_consuming_depth_moves_price_by_the_order_over_depth() -> None:
    # $1M into $100M per unit log-price: price x exp(0.01), average fill x exp(0.005).
    new, fill = consume_depth(np.array([100.0]), np.array([1e6]), 1e8)
    assert new[0] == pytest.approx(100.0 * np.exp(0.01))
    assert fill[0] == pytest.approx(100.0 * np.exp(0.005))


def test_mark_is_the_median_of_funding_basis_premium_average_and_last() -> None:
    # index 100; p1 = 100 x (1 + 0.001 x 0.5) = 100.05; p2 = 100 x 1.002 = 100.2; last 90.
    m = mark_price(np.array([100.0]), np.array([90.0]), np.array([0.002]),
                   np.array([0.001]), np.array([0.5]))  # fmt: skip
    assert m[0] == pytest.approx(100.05)
