"""The higher-high guard of the funding-price and CVD-price divergences at its boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from perpscope.analytics.cvd import MIN_HIGHER_HIGH as CVD_GUARD
from perpscope.analytics.cvd import cvd_price_divergence
from perpscope.analytics.funding_series import MIN_HIGHER_HIGH, funding_price_divergence

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _two_highs(new_high: float) -> pl.DataFrame:
    # Hourly: 99 at h0, a high of 100 at h1, 98 for h2..h25, then `new_high` at h26 (25h after
    # the prior high: a distinct swing). Funding 0.1% per 8h up to h1, 0 after, so its 7-day
    # mean at h26 (0.002 / 27) is below its mean at h1 (0.001); CVD 10 at h1, 5 at h26.
    n = 27
    close = [99.0, 100.0] + [98.0] * 24 + [new_high]
    return pl.DataFrame(
        {
            "venue": "binance",
            "instrument": "BTC-USDT-PERP",
            "ts": [T0 + timedelta(hours=i) for i in range(n)],
            "close_px": close,
            "rate_8h": [0.001, 0.001] + [0.0] * 25,
            "cvd_base": [0.0, 10.0] + [7.0] * 24 + [5.0],
        }
    )


def test_guard_default_is_half_a_percent() -> None:
    assert MIN_HIGHER_HIGH == CVD_GUARD == 0.005


@pytest.mark.parametrize(
    ("new_high", "expected"), [(100.49, None), (100.5, "bearish"), (100.51, "bearish")]
)
def test_funding_divergence_needs_a_higher_high_of_half_a_percent(
    new_high: float, expected: str | None
) -> None:
    # 100.49 / 100 - 1 = 0.49% (below), 0.50% (at), 0.51% (above).
    last = funding_price_divergence(_two_highs(new_high)).row(-1, named=True)
    assert last["fdiv_prior_price"] == 100.0
    assert last["funding_mean_8h"] == pytest.approx(0.002 / 27)
    assert last["fdiv_divergence"] == expected


@pytest.mark.parametrize(
    ("new_high", "expected"), [(100.49, None), (100.5, "bearish"), (100.51, "bearish")]
)
def test_cvd_divergence_needs_a_higher_high_of_half_a_percent(
    new_high: float, expected: str | None
) -> None:
    last = cvd_price_divergence(_two_highs(new_high)).row(-1, named=True)
    assert (last["cdiv_prior_price"], last["cdiv_prior_value"]) == (100.0, 10.0)
    assert last["cdiv_divergence"] == expected


def test_guard_off_restores_the_plain_rule() -> None:
    last = funding_price_divergence(_two_highs(100.01), min_price_move=0.0).row(-1, named=True)
    assert last["fdiv_divergence"] == "bearish"
