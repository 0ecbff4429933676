"""Funding payments and carry of a perpetual position.

Playbook: "Funding Payment = Position Size x Funding Rate. If you hold a $100,000 BTC long position
and the funding rate is +0.05%, you pay $50 every 8 hours." A positive rate means longs pay shorts.
Cash flows here are signed to the position: negative = paid, positive = received. Annualised rate =
rate x 8760 / interval_h (DESIGN.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from perpscope.risk._checks import (
    InvalidInput,
    PositionSide,
    finite,
    non_negative,
    positive,
    side_sign,
)

__all__ = ["HOURS_PER_YEAR", "FundingCarry", "annualized_rate", "funding_carry", "funding_payment"]

HOURS_PER_YEAR = 8760.0


def annualized_rate(rate: float, interval_h: float) -> float:
    """A per-interval funding rate as a simple annual rate: ``rate * 8760 / interval_h``."""
    finite("funding rate", rate)
    positive("funding interval", interval_h)
    return rate * HOURS_PER_YEAR / interval_h


def funding_payment(
    notional_usd: float, rate: float, side: PositionSide = PositionSide.LONG
) -> float:
    """One settlement's cash flow: ``-side * notional * rate`` (negative = paid)."""
    positive("notional", notional_usd)
    finite("funding rate", rate)
    return -side_sign(side) * notional_usd * rate


@dataclass(frozen=True, slots=True)
class FundingCarry:
    """Funding of a position over a horizon; every ``_usd`` figure is signed to the position."""

    side: PositionSide
    notional_usd: float
    rate: float
    interval_h: float
    days: float
    periods: int
    payment_per_period_usd: float
    per_day_usd: float
    per_week_usd: float
    per_year_usd: float
    total_usd: float
    annualized_rate: float


def funding_carry(
    notional_usd: float,
    rate: float,
    interval_h: float,
    days: float,
    side: PositionSide = PositionSide.LONG,
) -> FundingCarry:
    """Funding per settlement, per day, per week, per year and over ``days`` at a constant rate.

    ``periods`` counts whole settlements in the horizon: ``floor(days * 24 / interval_h)``.
    """
    positive("funding interval", interval_h)
    non_negative("days", days)
    pay = funding_payment(notional_usd, rate, side)
    per_h = pay / interval_h
    count = days * 24.0 / interval_h
    if not math.isfinite(count):
        raise InvalidInput(
            f"{days:g} days at a {interval_h:g}h funding interval is not a countable number of "
            "settlements"
        )
    periods = math.floor(count + 1e-9)
    return FundingCarry(
        side=side,
        notional_usd=notional_usd,
        rate=rate,
        interval_h=interval_h,
        days=days,
        periods=periods,
        payment_per_period_usd=pay,
        per_day_usd=per_h * 24.0,
        per_week_usd=per_h * 168.0,
        per_year_usd=per_h * HOURS_PER_YEAR,
        total_usd=pay * periods,
        annualized_rate=annualized_rate(rate, interval_h),
    )
