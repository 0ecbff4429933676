"""Pure risk maths: liquidation prices, sizing, funding carry, targets, Kelly, basis, buckets.

Imports only ``perpscope.domain``, numpy and polars (import-linter enforces it). Invalid input
raises :class:`InvalidInput` (a ``ValueError``) with one clear sentence; the services turn it into
a usage error.
"""

from __future__ import annotations

from perpscope.risk._checks import MAX_VENUE_LEVERAGE, InvalidInput, PositionSide, venue_leverage
from perpscope.risk.basis import BasisPlan, plan_basis_trade
from perpscope.risk.bucket import BucketResult, correlation_bucket
from perpscope.risk.carry import (
    HOURS_PER_YEAR,
    FundingCarry,
    annualized_rate,
    funding_carry,
    funding_payment,
)
from perpscope.risk.kelly import (
    DEFAULT_MAX_RISK_PCT,
    KellyResult,
    kelly,
    kelly_fraction,
    stats_from_trades,
)
from perpscope.risk.liquidation_price import (
    LiquidationResult,
    LiqVenue,
    MarginMode,
    PositionSpec,
    Tier,
    TierBasis,
    bankruptcy_price,
    check_tiers,
    liquidation_price,
    maint_amounts_by_recursion,
    simplified_liquidation_price,
    single_tier,
    tier_basis,
    tier_for,
)
from perpscope.risk.sizing import SizeResult, infer_side, position_size, stop_from_atr
from perpscope.risk.targets import DEFAULT_SCALE_PCT, ScaleOutResult, r_multiple, scale_out

__all__ = [
    "DEFAULT_MAX_RISK_PCT",
    "DEFAULT_SCALE_PCT",
    "HOURS_PER_YEAR",
    "MAX_VENUE_LEVERAGE",
    "BasisPlan",
    "BucketResult",
    "FundingCarry",
    "InvalidInput",
    "KellyResult",
    "LiqVenue",
    "LiquidationResult",
    "MarginMode",
    "PositionSide",
    "PositionSpec",
    "ScaleOutResult",
    "SizeResult",
    "Tier",
    "TierBasis",
    "annualized_rate",
    "bankruptcy_price",
    "check_tiers",
    "correlation_bucket",
    "funding_carry",
    "funding_payment",
    "infer_side",
    "kelly",
    "kelly_fraction",
    "liquidation_price",
    "maint_amounts_by_recursion",
    "plan_basis_trade",
    "position_size",
    "r_multiple",
    "scale_out",
    "simplified_liquidation_price",
    "single_tier",
    "stats_from_trades",
    "stop_from_atr",
    "tier_basis",
    "tier_for",
    "venue_leverage",
]
