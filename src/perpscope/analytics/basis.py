"""Basis readings of the playbook: perp premium, dated-futures basis and basis-trade carry.

Pure functions; prices are in the instrument's quote currency, premiums and bases are fractions
(0.001 = 0.1%), times are UTC.
"""

from __future__ import annotations

from typing import Final, overload

import polars as pl

from perpscope.analytics._rolling import hours, require_columns
from perpscope.analytics.funding import (
    HOURS_PER_YEAR,
    annualized_rate,
    normalised_funding,
)

__all__ = [
    "basis_trade_carry",
    "basis_trade_income",
    "dated_basis",
    "perp_basis",
    "premium",
]

_SERIES: Final = ["venue", "instrument"]


@overload
def premium(perp_px: float, ref_px: float) -> float: ...
@overload
def premium(perp_px: pl.Expr, ref_px: pl.Expr | float) -> pl.Expr: ...
def premium(perp_px: pl.Expr | float, ref_px: pl.Expr | float) -> pl.Expr | float:
    """Premium (positive) or discount (negative) of a price over a reference: ``perp / ref - 1``.

    Playbook dashboard: "Basis spread: Perp premium/discount to spot". "If you buy spot at
    $65,000 and short the perp at $65,020 ... you capture an additional $20 in basis on entry"
    (a premium of 20 / 65,000 = 0.0308%).
    """
    if isinstance(perp_px, pl.Expr):
        return perp_px / ref_px - 1.0
    if isinstance(ref_px, pl.Expr):  # pragma: no cover - excluded by the overloads
        raise TypeError("ref_px is an expression but perp_px is not")
    return perp_px / ref_px - 1.0


def perp_basis(frame: pl.DataFrame, *, interval_h: float = 8.0) -> pl.DataFrame:
    """Perp premium to spot and to index, and their annualised equivalents.

    A perp has no expiry, so its premium does not converge on a date; it is pulled back by
    funding every interval (the premium index drives the rate). perpscope annualises a premium as
    if it were paid once per ``interval_h``: ``premium x 8760 / interval_h`` (the same convention
    as funding), which makes it comparable with the annualised funding rate.

    Args:
        frame: rows with ts, perp_px and at least one of spot_px, index_px (nulls allowed), e.g.
            perp, spot and index closes aligned on ts.
        interval_h: the funding interval the premium is annualised over.

    Returns:
        The input plus ``premium_spot``, ``premium_index``, ``premium_spot_annualized`` and
        ``premium_index_annualized`` (null where the reference is missing).
    """
    require_columns(frame, ("ts", "perp_px"), "perp_basis")
    out = frame
    for ref in ("spot", "index"):
        col = f"{ref}_px"
        p = (
            premium(pl.col("perp_px"), pl.col(col))
            if col in frame.columns
            else pl.lit(None, pl.Float64)
        )
        out = out.with_columns(p.alias(f"premium_{ref}")).with_columns(
            annualized_rate(pl.col(f"premium_{ref}"), interval_h).alias(f"premium_{ref}_annualized")
        )
    return out


def dated_basis(frame: pl.DataFrame) -> pl.DataFrame:
    """Basis of a dated future to spot, and its annualised (simple) rate.

    ``basis = future / spot - 1``; ``basis_annualized = basis x 8760 / hours_to_expiry``
    (simple annualisation over the time left). Rows at or after expiry give a null annualised
    basis.

    Args:
        frame: rows with ts, expiry_ts, future_px, spot_px.

    Returns:
        The input plus ``hours_to_expiry``, ``basis`` and ``basis_annualized``.
    """
    require_columns(frame, ("ts", "expiry_ts", "future_px", "spot_px"), "dated_basis")
    h = (pl.col("expiry_ts") - pl.col("ts")).dt.total_seconds() / 3600.0
    return frame.with_columns(
        h.alias("hours_to_expiry"), premium(pl.col("future_px"), pl.col("spot_px")).alias("basis")
    ).with_columns(
        pl.when(pl.col("hours_to_expiry") > 0)
        .then(pl.col("basis") * HOURS_PER_YEAR / pl.col("hours_to_expiry"))
        .otherwise(None)
        .alias("basis_annualized")
    )


def basis_trade_carry(
    funding: pl.DataFrame,
    *,
    window_h: float = 168.0,
    favorable_8h: float = 0.0003,
    exit_below_8h: float = 0.0001,
) -> pl.DataFrame:
    """Carry of the basis trade (long spot, short perp) from funding, with the playbook's rules.

    Playbook: "When the 7-day average exceeds +0.03%, conditions are favorable"; "Close both legs
    when: (a) funding drops below +0.01% ... (b) funding turns negative"; "If funding is +0.05%
    per 8-hour period, you earn 0.15% per day, or roughly 4.5% per month".

    Rules: ``mean_rate_8h`` = mean 8h-equivalent rate over the trailing ``window_h``;
    ``carry_daily`` = mean x 3, ``carry_30d`` = mean x 90, ``carry_annualized`` = mean x 1095
    (simple, before fees); ``status`` = ``exit`` when the latest rate_8h < ``exit_below_8h``
    (which includes negative funding), else ``favorable`` when the mean > ``favorable_8h``, else
    ``hold``.

    Args:
        funding: rows with venue, instrument, ts, rate, interval_h.

    Returns:
        :func:`perpscope.analytics.funding.normalised_funding` columns plus ``mean_rate_8h``,
        ``carry_daily``, ``carry_30d``, ``carry_annualized`` and ``status``.
    """
    base = normalised_funding(funding)
    mean = pl.col("rate_8h").rolling_mean_by("ts", hours(window_h)).over(_SERIES)
    m = pl.col("mean_rate_8h")
    return base.with_columns(mean.alias("mean_rate_8h")).with_columns(
        (m * 3.0).alias("carry_daily"),
        (m * 90.0).alias("carry_30d"),
        annualized_rate(m, 8.0).alias("carry_annualized"),
        pl.when(pl.col("rate_8h") < exit_below_8h)
        .then(pl.lit("exit"))
        .when(m > favorable_8h)
        .then(pl.lit("favorable"))
        .otherwise(pl.lit("hold"))
        .alias("status"),
    )


def basis_trade_income(notional_usd: float, rate_8h: float, hours_held: float) -> float:
    """Funding a short perp leg of ``notional_usd`` collects over ``hours_held`` at ``rate_8h``.

    Playbook: "At +0.05%, a $100,000 short collects $50 per period, $150 per day, $1,050 per
    week". Simple (not compounded), before fees.
    """
    return notional_usd * rate_8h * hours_held / 8.0
