"""The market state alert rules read: one row per perpetual and one per asset, at a time.

:func:`market_state` works on store-shaped frames covering the last :data:`WINDOW` (the
``funding_snapshot`` and ``open_interest`` tables, which both ``perpscope watch`` and the
simulator produce every hour), so each evaluation costs the same however long the service runs.
Every value is point-in-time: only rows with ``ts <= now`` are read.

Instrument rows (``level = "instrument"``): the latest funding normalised to 8 hours and the
mark price; the open interest; their 24-hour changes (against the latest value at or before
``now - 24h``, read on an hourly grid); and ``divergence_hours``, the time since the 24h OI
change and the 24h price change last had the same sign (0 when they agree now). A series whose
latest row is older than :data:`STALE` is left out: its venue has stopped answering, which is
the outage rule's business, not a reading.

Asset rows (``level = "asset"``, ``venue = "all"``, ``instrument`` = the asset): open interest
summed over the asset's perpetuals, its 24h change over the perpetuals that have both values,
and the funding spread, the highest minus the lowest 8h funding among two or more venues.

``liq_cluster_distance`` comes from :func:`with_liq_distance`: the distance from the current
price to the nearest dense cluster of the ESTIMATED liquidation map of
:mod:`perpscope.analytics.liquidations` (:func:`liq_clusters`, refreshed on its own schedule:
it reads two weeks of bars, and clusters move slowly).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

__all__ = [
    "STALE",
    "WINDOW",
    "liq_clusters",
    "market_state",
    "with_liq_distance",
]

WINDOW = timedelta(hours=96)
"""History read per evaluation: 48h of divergence needs 24h changes over at least 72h."""
STALE = timedelta(hours=2)
_DAY = timedelta(hours=24)
_KEY = ["venue", "instrument"]


def _hourly(funding: pl.LazyFrame, oi: pl.LazyFrame) -> pl.LazyFrame:
    """The last funding, price and OI of each series in each hour (by the hour's end)."""
    f = (
        funding.select(
            *_KEY,
            "ts",
            funding_8h=pl.col("rate") * (8.0 / pl.col("interval_h")),
            price=pl.col("mark_px"),
        )
        .with_columns(hour=pl.col("ts").dt.truncate("1h"))
        .sort("ts")
        .unique([*_KEY, "hour"], keep="last")
    )
    o = (
        oi.select(*_KEY, "ts", "oi_usd")
        .drop_nulls("oi_usd")
        .with_columns(hour=pl.col("ts").dt.truncate("1h"))
        .sort("ts")
        .unique([*_KEY, "hour"], keep="last")
        .rename({"ts": "oi_ts"})
    )
    return f.join(o, on=[*_KEY, "hour"], how="full", coalesce=True)


def _floor_hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _with_changes(last: pl.LazyFrame, hourly: pl.LazyFrame) -> pl.LazyFrame:
    """``last`` (rows of ``hourly``) with the 24h changes of price and OI, against each series'
    latest hour at or up to 2 hours before 24h earlier, and whether they disagree in sign."""
    ago = hourly.select(
        *_KEY,
        hour=pl.col("hour") + _DAY,
        price_24h_ago=pl.col("price"),
        oi_usd_24h_ago=pl.col("oi_usd"),
    ).sort("hour")
    h = last.sort("hour").join_asof(
        ago,
        on="hour",
        by=_KEY,
        strategy="backward",
        tolerance=_TOLERANCE,
        check_sortedness=False,  # sorted by hour overall, so within each series too
    )
    return h.with_columns(
        price_change_24h=pl.col("price") / pl.col("price_24h_ago") - 1.0,
        oi_change_24h=pl.col("oi_usd") / pl.col("oi_usd_24h_ago") - 1.0,
    ).with_columns(
        _apart=(pl.col("price_change_24h").sign() * pl.col("oi_change_24h").sign()) < 0,
    )


def _divergence_since(hourly: pl.LazyFrame) -> pl.LazyFrame:
    """Per series, from its whole history: the first hour of the opposite-sign run that its
    latest hour ends (null when the latest hour is not in one)."""
    ch = _with_changes(hourly, hourly)
    agreed = (
        ch.filter(~pl.col("_apart").fill_null(False))
        .group_by(_KEY)
        .agg(_agreed=pl.col("hour").max())
    )
    known = ch.filter(pl.col("_apart").is_not_null())
    first = known.group_by(_KEY).agg(_first=pl.col("hour").min())
    return (
        ch.group_by(_KEY)
        .agg(pl.col("_apart").sort_by("hour").last())
        .join(agreed, on=_KEY, how="left")
        .join(first, on=_KEY, how="left")
        .select(
            *_KEY,
            _since=pl.when(pl.col("_apart").fill_null(False)).then(
                pl.coalesce(pl.col("_agreed") + timedelta(hours=1), pl.col("_first"))
            ),
        )
    )


_TOLERANCE = timedelta(hours=2)
"""How much older than 24h the "24h earlier" value may be (a missed snapshot)."""
_RECENT = timedelta(hours=30)
"""History a tick reads when it carries the divergence run from the previous state: the
latest hours (up to :data:`STALE` old) and their values 24 to 26 hours earlier."""


def market_state(
    funding: pl.DataFrame,
    oi: pl.DataFrame,
    now: datetime,
    previous: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The rules' inputs at ``now`` (see the module docstring).

    Args:
        funding: ``funding_snapshot`` rows (``venue instrument ts rate interval_h mark_px``).
        oi: ``open_interest`` rows (``venue instrument ts oi_usd``).
        now: evaluation time (UTC); rows after it are ignored.
        previous: the state of the previous tick. With it, only the last 30 hours are read and
            each series' divergence run is carried on from it (a run still going keeps its
            start; a new one starts at this hour): with hourly data this is the same as reading
            the whole :data:`WINDOW`, which is what happens without it.

    Returns:
        Columns ``level asset venue instrument ts`` and the metrics of
        :data:`perpscope.domain.alert_rules.METRICS` (null where unknown), plus evidence columns.
    """

    def hourly_since(start: datetime) -> pl.LazyFrame:
        window = (pl.col("ts") <= now) & (pl.col("ts") > start)
        return _hourly(funding.lazy().filter(window), oi.lazy().filter(window))

    if previous is None:
        recent = hourly_since(now - _RECENT)
    else:  # only the hours the latest values and their 24h-earlier values can come from
        top = _floor_hour(now)
        cut = _floor_hour(now - STALE - timedelta(hours=1))
        ts = pl.col("ts")
        rows = ((ts > cut) & (ts <= now)) | (
            (ts >= cut - _DAY - _TOLERANCE) & (ts < top - _DAY + timedelta(hours=1))
        )
        recent = _hourly(funding.lazy().filter(rows), oi.lazy().filter(rows))
    last = (
        recent.group_by(_KEY)
        .agg(pl.all().sort_by("hour").last())
        .filter(pl.col("hour") > now - STALE - timedelta(hours=1))
    )
    inst = _with_changes(last, recent)
    if previous is None:
        inst = inst.join(_divergence_since(hourly_since(now - WINDOW)), on=_KEY, how="left")
    else:
        prev = previous.lazy().filter(pl.col("level") == "instrument")
        inst = inst.join(
            prev.select(*_KEY, _prev=pl.col("divergence_since")), on=_KEY, how="left"
        ).with_columns(_since=pl.coalesce("_prev", "hour"))
    inst = (
        inst.with_columns(
            divergence_since=pl.when(pl.col("_apart").fill_null(False)).then(pl.col("_since"))
        )
        .with_columns(
            divergence_hours=pl.when(pl.col("_apart").is_null())
            .then(None)
            .otherwise(
                (
                    (pl.col("hour") - pl.col("divergence_since")).dt.total_seconds() / 3600.0
                ).fill_null(0.0)
            ),
            ts=pl.max_horizontal("ts", "oi_ts"),
            asset=pl.col("instrument").str.split("-").list.first(),
            level=pl.lit("instrument"),
        )
        .drop("_since", "_prev", "_apart", "hour", "oi_ts", strict=False)
    )
    assets = (
        inst.sort("venue")
        .group_by("asset")
        .agg(  # ties: the first venue by name
            level=pl.lit("asset"),
            venue=pl.lit("all"),
            instrument=pl.col("asset").first(),
            ts=pl.col("ts").max(),
            oi_usd_total=pl.col("oi_usd").sum(),
            oi_usd_total_24h_ago=pl.col("oi_usd_24h_ago")
            .filter(pl.col("oi_usd").is_not_null())
            .sum(),
            _oi_now_both=pl.col("oi_usd").filter(pl.col("oi_usd_24h_ago").is_not_null()).sum(),
            _n_funding=pl.col("funding_8h").count(),
            funding_hi_venue=pl.col("venue").get(pl.col("funding_8h").arg_max()),
            funding_lo_venue=pl.col("venue").get(pl.col("funding_8h").arg_min()),
            funding_hi=pl.col("funding_8h").max(),
            funding_lo=pl.col("funding_8h").min(),
        )
    )
    assets = assets.with_columns(
        oi_change_24h_total=pl.when(pl.col("oi_usd_total_24h_ago") > 0).then(
            pl.col("_oi_now_both") / pl.col("oi_usd_total_24h_ago") - 1.0
        ),
        funding_spread_8h=pl.when(pl.col("_n_funding") >= 2).then(
            pl.col("funding_hi") - pl.col("funding_lo")
        ),
    ).drop("_oi_now_both", "_n_funding")
    return pl.concat([inst, assets], how="diagonal_relaxed").collect()


def liq_clusters(
    candles: pl.DataFrame,
    oi: pl.DataFrame,
    now: datetime,
    *,
    min_density: float = 3.0,
    top: int = 3,
) -> pl.DataFrame:
    """The dense ESTIMATED liquidation clusters of each series, as of ``now``.

    Args:
        candles: hourly ``ohlcv`` rows of kind ``trade`` of any number of series.
        oi: ``open_interest`` rows of the same series.
        now: only bars that have closed by ``now`` are used.
        min_density: a cluster is dense when its peak bin holds at least this many times the
            mean bin notional within 20% of the price (:func:`find_clusters`' ``density``)...
        top: ...and it is one of the ``top`` densest clusters in that window.

    Returns:
        ``venue instrument liq_cluster_px liq_cluster_usd``, one row per dense cluster.
    """
    from perpscope.analytics.liquidations import assemble_bars, estimate_heatmap, find_clusters

    parts = []
    closed = candles.filter(pl.col("ts") + timedelta(hours=1) <= now)
    known = oi.filter(pl.col("ts") <= now)
    for (venue, instrument), bars in closed.group_by(_KEY):
        o = known.filter((pl.col("venue") == venue) & (pl.col("instrument") == instrument))
        frame = assemble_bars(bars, o).filter(pl.col("oi_usd").is_not_null())
        if frame.height < 24:
            continue
        hm = estimate_heatmap(frame)
        dense = find_clusters(hm.levels(0.2), hm.price, top=top).filter(
            pl.col("density") >= min_density
        )
        parts.append(
            dense.select(
                venue=pl.lit(venue),
                instrument=pl.lit(instrument),
                liq_cluster_px=pl.col("price"),
                liq_cluster_usd=pl.col("notional_usd"),
            )
        )
    schema = {
        "venue": pl.String,
        "instrument": pl.String,
        "liq_cluster_px": pl.Float64,
        "liq_cluster_usd": pl.Float64,
    }
    return pl.concat(parts) if parts else pl.DataFrame(schema=schema)


def with_liq_distance(state: pl.DataFrame, clusters: pl.DataFrame) -> pl.DataFrame:
    """``state`` with the distance from each series' current price to its nearest cluster of
    ``clusters`` (:func:`liq_clusters`): ``liq_cluster_distance`` (a fraction),
    ``liq_cluster_px``, ``liq_cluster_side`` (``long`` below the price: long liquidations;
    ``short`` above) and ``liq_cluster_usd``."""
    if clusters.is_empty():
        return state
    near = (
        state.filter(pl.col("level") == "instrument")
        .select(*_KEY, "price")
        .join(clusters, on=_KEY)
        .with_columns(liq_cluster_distance=(pl.col("liq_cluster_px") / pl.col("price") - 1).abs())
        .sort("liq_cluster_distance")
        .group_by(_KEY)
        .first()
        .select(
            *_KEY,
            "liq_cluster_distance",
            "liq_cluster_px",
            "liq_cluster_usd",
            liq_cluster_side=pl.when(pl.col("liq_cluster_px") < pl.col("price"))
            .then(pl.lit("long"))
            .otherwise(pl.lit("short")),
        )
    )
    return state.join(near, on=_KEY, how="left")
