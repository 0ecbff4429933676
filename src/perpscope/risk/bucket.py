"""Correlation bucket: the combined risk of positions that share one thesis.

Playbook: "If you are fading positive BTC funding and also fading positive ETH funding at the same
time, you are effectively double-exposed to a single thesis ... Treat correlated positions as a
single risk bucket and size accordingly." The combined risk of positions with risks ``r_i`` and one
pairwise correlation ``rho`` is ``sqrt(sum_i sum_j rho_ij r_i r_j)`` (``rho_ii = 1``); with the
playbook's ``rho = 1`` it is the plain sum. ``scale`` is the factor to apply to every position
so the bucket fits a risk budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from perpscope.risk._checks import InvalidInput, finite, positive

__all__ = ["BucketResult", "correlation_bucket"]


@dataclass(frozen=True, slots=True)
class BucketResult:
    """Combined risk of a bucket and the scale that fits it to ``max_risk_usd``."""

    risks_usd: list[float]
    correlation: float
    sum_risk_usd: float
    combined_risk_usd: float
    max_risk_usd: float | None
    scale: float | None
    over_budget: bool | None


def correlation_bucket(
    risks_usd: Sequence[float], correlation: float = 1.0, max_risk_usd: float | None = None
) -> BucketResult:
    """Combined risk of ``risks_usd`` at one pairwise ``correlation``.

    Raises:
        ValueError: no or non-positive risks, a correlation outside [-1, 1], or one so negative
            that the combined variance is negative.
    """
    if not risks_usd:
        raise InvalidInput("give the risk of at least one position")
    for r in risks_usd:
        positive("position risk", r)
    finite("correlation", correlation)
    if not -1.0 <= correlation <= 1.0:
        raise InvalidInput(f"correlation must be between -1 and 1, got {correlation:g}")
    total = sum(risks_usd)
    squares = sum(r * r for r in risks_usd)
    var = squares + correlation * (total * total - squares)
    if var < -1e-9 * total * total:
        raise InvalidInput(
            f"a correlation of {correlation:g} is impossible for {len(risks_usd)} positions"
        )
    combined = math.sqrt(max(var, 0.0))
    scale = over = None
    if max_risk_usd is not None:
        positive("bucket risk budget", max_risk_usd)
        scale = 1.0 if combined == 0 else min(1.0, max_risk_usd / combined)
        over = combined > max_risk_usd
    return BucketResult(
        risks_usd=list(risks_usd),
        correlation=correlation,
        sum_risk_usd=total,
        combined_risk_usd=combined,
        max_risk_usd=max_risk_usd,
        scale=scale,
        over_budget=over,
    )
