"""Open interest per asset across venues: the total and its change, above the per-venue rows.

The changes are exact aggregates of the per-venue ones: a venue whose OI is ``oi`` after a change
``c`` held ``oi / (1 + c)`` before, so the asset's change is ``sum(oi) / sum(oi / (1 + c)) - 1``
over the venues that have the change (an OI-weighted change, not a mean of percentages).
"""

from __future__ import annotations

import polars as pl

__all__ = ["asset_totals"]

_CHANGES = ("oi_change_1h", "oi_change_4h", "oi_change_24h")


def asset_totals(summary: pl.DataFrame) -> pl.DataFrame:
    """Total OI per asset from an ``oi summary`` frame, with its 1h/4h/24h change where known.

    Args:
        summary: one row per series with ``instrument`` (canonical id, asset first), ``venue``,
            ``oi_usd`` and any of ``oi_change_1h``, ``oi_change_4h``, ``oi_change_24h``
            (fractions).

    Returns:
        One row per asset, largest total first: ``asset``, ``n_venues``, ``oi_usd`` (the total),
        the changes present in the input, ``top_venue`` and ``top_share`` (its share of the
        total).
    """
    changes = [c for c in _CHANGES if c in summary.columns]
    frame = summary.filter(pl.col("oi_usd").is_not_null()).with_columns(
        pl.col("instrument").str.split("-").list.first().alias("asset")
    )
    aggs: list[pl.Expr] = [
        pl.col("venue").n_unique().alias("n_venues"),
        pl.col("oi_usd").sum().alias("oi_usd"),
    ]
    for c in changes:
        known = pl.col(c).is_not_null() & (pl.col(c) > -1)
        now = pl.col("oi_usd").filter(known).sum()
        before = (pl.col("oi_usd") / (1 + pl.col(c))).filter(known).sum()
        aggs.append(pl.when(before > 0).then(now / before - 1).otherwise(None).alias(c))
    aggs += [
        pl.col("venue").sort_by("oi_usd", descending=True).first().alias("top_venue"),
        (pl.col("oi_usd").max() / pl.col("oi_usd").sum()).alias("top_share"),
    ]
    return frame.group_by("asset").agg(aggs).sort("oi_usd", descending=True)
