"""The basis-trade planner: long spot, short the perpetual, collect funding.

Playbook ("Calculate the required capital allocation"): for a $100,000 trade with the short at 5x,
spot $100,000 + short margin $20,000 + buffer margin $10,000 = $130,000 deployed; "At +0.05%, a
$100,000 short collects $50 per period, $150 per day, $1,050 per week." Exit when "(a) funding drops
below +0.01%, (b) funding turns negative, or (c) your margin is approaching warning levels", with
"a margin buffer of at least 20% above the minimum required".

Thresholds are per 8 hours in the playbook; a rate on another interval is compared after scaling
it to 8 hours. The margin buffer ratio is (short margin + buffer + short PnL at mark) / (short
notional at mark / leverage) - 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from perpscope.risk._checks import InvalidInput, finite, non_negative, positive
from perpscope.risk.carry import HOURS_PER_YEAR

__all__ = ["BasisPlan", "plan_basis_trade"]


@dataclass(frozen=True, slots=True)
class BasisPlan:
    """Capital, income and exit checks of a basis trade (the short receives a positive rate)."""

    spot_usd: float
    leverage: float
    short_margin_usd: float
    buffer_usd: float
    total_capital_usd: float
    rate: float
    interval_h: float
    income_per_period_usd: float
    income_per_day_usd: float
    income_per_week_usd: float
    income_per_year_usd: float
    annualized_rate: float
    annualized_return_on_capital: float
    margin_buffer_ratio: float
    entry_basis_usd: float | None
    exit_signals: list[str]


def plan_basis_trade(
    spot_usd: float,
    leverage: float,
    rate: float,
    interval_h: float = 8.0,
    *,
    buffer_usd: float | None = None,
    buffer_frac: float = 0.2,
    spot_px: float | None = None,
    perp_px: float | None = None,
    mark_px: float | None = None,
    min_rate_8h: float = 0.0001,
    min_buffer_ratio: float = 0.2,
) -> BasisPlan:
    """Plan a basis trade of ``spot_usd`` with the short perpetual at ``leverage``.

    Args:
        spot_usd: spot bought, equal to the short perpetual's notional.
        leverage: leverage of the short.
        rate: funding rate per interval (given, or a historical mean).
        interval_h: funding interval in hours.
        buffer_usd: extra margin beside the short's initial margin (default:
            ``buffer_frac`` x the short margin).
        buffer_frac: buffer as a fraction of the short margin when ``buffer_usd`` is not given.
        spot_px: spot entry price, with ``perp_px`` for the basis captured on entry.
        perp_px: perpetual entry price.
        mark_px: current mark price of the perpetual, for the margin buffer (default: entry).
        min_rate_8h: exit when the rate per 8 h is below this (playbook: +0.01 %).
        min_buffer_ratio: exit when the margin buffer ratio is below this (playbook: 20 %).

    Raises:
        ValueError: invalid input, or a mark price without the perpetual's entry price.
    """
    positive("spot notional", spot_usd)
    positive("leverage", leverage)
    finite("funding rate", rate)
    positive("funding interval", interval_h)
    non_negative("buffer fraction", buffer_frac)
    margin = spot_usd / leverage
    buffer = margin * buffer_frac if buffer_usd is None else non_negative("buffer", buffer_usd)
    total = spot_usd + margin + buffer
    per_period = spot_usd * rate
    per_year = per_period * HOURS_PER_YEAR / interval_h
    basis_usd = None
    if spot_px is not None or perp_px is not None:
        if spot_px is None or perp_px is None:
            raise InvalidInput("the entry basis needs both the spot and the perpetual entry price")
        positive("spot price", spot_px)
        positive("perpetual price", perp_px)
        basis_usd = (perp_px - spot_px) * spot_usd / spot_px
    balance, required = margin + buffer, margin
    if mark_px is not None:
        if perp_px is None:
            raise InvalidInput("the margin at a mark price needs the perpetual's entry price")
        positive("mark price", mark_px)
        qty = spot_usd / perp_px
        balance += qty * (perp_px - mark_px)
        required = qty * mark_px / leverage
    if not (required > 0 and math.isfinite(required) and math.isfinite(balance)):
        raise InvalidInput(
            "the margin at the mark price is out of range: check the notional and the prices"
        )
    ratio = balance / required - 1.0
    signals = []
    rate_8h = rate * 8.0 / interval_h
    if rate < 0:
        signals.append("funding is negative: the short now pays; close both legs")
    elif rate_8h < min_rate_8h:
        signals.append(
            f"funding {rate_8h:.4%} per 8h is below {min_rate_8h:.4%}: not worth the capital lockup"
        )
    if ratio < min_buffer_ratio - 1e-12:  # the default buffer sits exactly on the floor
        signals.append(
            f"margin buffer {ratio:.1%} is under {min_buffer_ratio:.0%} of the required margin"
        )
    return BasisPlan(
        spot_usd=spot_usd,
        leverage=leverage,
        short_margin_usd=margin,
        buffer_usd=buffer,
        total_capital_usd=total,
        rate=rate,
        interval_h=interval_h,
        income_per_period_usd=per_period,
        income_per_day_usd=per_period * 24.0 / interval_h,
        income_per_week_usd=per_period * 168.0 / interval_h,
        income_per_year_usd=per_year,
        annualized_rate=rate * HOURS_PER_YEAR / interval_h,
        annualized_return_on_capital=per_year / total,
        margin_buffer_ratio=ratio,
        entry_basis_usd=basis_usd,
        exit_signals=signals,
    )
