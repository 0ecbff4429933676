"""``funding table``: the latest funding per venue with its context, and how old it is.

Per venue and perpetual: the latest settlement (8h-equivalent and annualised), the venue's
predicted next rate and next settlement time from the latest ``funding_snapshot`` row, and the
settlement's z-score (7 days) and percentile (30 days) against the venue's own history. Per asset:
the OI-weighted aggregate and the widest cross-venue spread. And the age of the data against the
wall clock, so a store whose data ends in 2023 says so instead of presenting it as current.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import polars as pl

from perpscope.analytics.funding import cross_venue_funding, latest_funding
from perpscope.analytics.funding_series import latest_funding_statistics
from perpscope.services._market_read import need, read_table, resolve, within
from perpscope.services.filters import MarketQuery
from perpscope.store.lake import Lake

__all__ = ["FundingTable", "funding_table_report", "latest_oi"]

_KEYS = ["venue", "instrument"]


@dataclass(frozen=True, slots=True)
class FundingTable:
    """The cross-venue funding table (see :func:`funding_table_report`).

    Attributes:
        venues: one row per (venue, instrument): ``asset venue instrument ts rate interval_h
            rate_8h annualized weight`` and ``zscore percentile`` (of ``rate_8h``: 7-day z-score,
            30-day percentile), ``predicted_rate predicted_rate_8h next_funding_ts snapshot_ts
            next_funding_in_h`` (from the latest snapshot at or before the window's end; null
            when none is stored; ``next_funding_in_h`` counts from ``snapshot_ts``), ``age_h``
            (hours from ``ts`` to ``now``) and ``stale`` (``age_h`` > ``stale_after_h``).
        assets: one row per asset, as :class:`perpscope.analytics.funding.CrossVenueFunding`.
        latest_ts: the newest settlement in the table.
        age_h: hours from ``latest_ts`` to ``now``.
        stale: true when even the newest settlement is older than ``stale_after_h``.
        stale_note: one line saying how old the data is when stale (else ``None``), e.g.
            "stale: the latest settlement is 2023-12-31 16:00Z, 1067 days ago".
    """

    venues: pl.DataFrame
    assets: pl.DataFrame
    latest_ts: datetime
    age_h: float
    stale: bool
    stale_note: str | None


def latest_oi(lake: Lake, q: MarketQuery) -> pl.DataFrame | None:
    """The latest stored ``oi_usd`` per (venue, instrument) in the query (any source)."""
    oi = read_table(lake, "open_interest", q)
    if oi.is_empty():
        return None
    return oi.filter(pl.col("oi_usd").is_not_null()).sort("ts").group_by(_KEYS).last()


def _snapshots(lake: Lake, q: MarketQuery) -> pl.DataFrame | None:
    snaps = read_table(lake, "funding_snapshot", q)
    if snaps.is_empty():
        return None
    last = snaps.sort("ts").group_by(_KEYS).last()
    return last.select(
        *_KEYS,
        "predicted_rate",
        (pl.col("predicted_rate") * 8.0 / pl.col("interval_h")).alias("predicted_rate_8h"),
        "next_funding_ts",
        pl.col("ts").alias("snapshot_ts"),
        ((pl.col("next_funding_ts") - pl.col("ts")).dt.total_seconds() / 3600.0).alias(
            "next_funding_in_h"
        ),
    )


def _age_text(hours: float) -> str:
    if hours < 48:
        return f"{hours:.0f}h"
    return f"{hours / 24:.0f} days"


def funding_table_report(
    lake: Lake,
    q: MarketQuery,
    *,
    now: datetime | None = None,
    stale_after_h: float = 24.0,
    zscore_window_h: float = 168.0,
    percentile_window_h: float = 720.0,
) -> FundingTable:
    """Latest funding per venue with its prediction, z-score and percentile, and the data's age.

    Weights of the aggregate are each venue's latest stored ``oi_usd`` (any source); venues
    without one are left out of the weighted mean (see
    :func:`perpscope.analytics.funding.cross_venue_funding`).

    Args:
        lake: the store.
        q: the filters (the latest settlement is the latest inside the window).
        now: the wall clock for the age (default: the current time, UTC).
        stale_after_h: a settlement older than this is stale (24h: three 8h settlements missed).
        zscore_window_h: window of the z-score, hours.
        percentile_window_h: window of the percentile, hours.

    Raises:
        UsageError: no funding for the filters (the message names what the store holds).
    """
    q = resolve(lake, "funding", q)
    history = read_table(lake, "funding", q, lookback_h=max(zscore_window_h, percentile_window_h))
    funding = within(history, q)
    need(lake, "funding", q, funding, "funding")
    table = cross_venue_funding(latest_funding(funding), latest_oi(lake, q))
    stats = latest_funding_statistics(
        within(history, replace(q, since=None)),
        zscore_window_h=zscore_window_h,
        percentile_window_h=percentile_window_h,
    ).select(*_KEYS, "ts", "zscore", "percentile")
    venues = table.venues.join(stats, on=[*_KEYS, "ts"], how="left")
    snaps = _snapshots(lake, q)
    if snaps is not None:
        venues = venues.join(snaps, on=_KEYS, how="left")
    else:
        venues = venues.with_columns(
            pl.lit(None, pl.Float64).alias("predicted_rate"),
            pl.lit(None, pl.Float64).alias("predicted_rate_8h"),
            pl.lit(None, pl.Datetime("us", "UTC")).alias("next_funding_ts"),
            pl.lit(None, pl.Datetime("us", "UTC")).alias("snapshot_ts"),
            pl.lit(None, pl.Float64).alias("next_funding_in_h"),
        )
    clock = now or datetime.now(UTC)
    venues = venues.with_columns(
        ((pl.lit(clock) - pl.col("ts")).dt.total_seconds() / 3600.0).alias("age_h")
    ).with_columns((pl.col("age_h") > stale_after_h).alias("stale"))
    latest = venues["ts"].max()
    assert isinstance(latest, datetime)
    age_h = (clock - latest).total_seconds() / 3600.0
    stale = age_h > stale_after_h
    note = (
        f"stale: the latest settlement is {latest:%Y-%m-%d %H:%M}Z, {_age_text(age_h)} ago"
        if stale
        else None
    )
    return FundingTable(venues, table.assets, latest, age_h, stale, note)
