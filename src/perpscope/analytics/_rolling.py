"""Rolling statistics and prior-extreme divergence shared by the analytics modules.

Every window here is a trailing *time* window ``(t - window, t]`` over a ``ts`` column (gaps in
the data shrink the window instead of stretching it), computed per series with ``.over(keys)``.
Frames must be sorted by their series keys and ``ts``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Final

import polars as pl

from perpscope._lazy import lazy_module
from perpscope.analytics._kernels import rolling_rank_count

if TYPE_CHECKING:
    import numpy as np
else:  # loaded by the first rolling percentile, not by importing the analytics
    np = lazy_module("numpy")

__all__ = [
    "REL_STD_TOL",
    "add_rolling_percentile",
    "hours",
    "lagged",
    "prior_extreme_divergence",
    "require_columns",
    "rolling_percentile",
    "series_id",
    "shift_in_series",
    "sort_series",
    "stitched_time",
    "zscore_from_parts",
    "zscore_parts",
]

REL_STD_TOL: Final = 1e-9
"""A window whose std is below this fraction of its |mean| (plus 1e-15) counts as constant."""


def require_columns(frame: pl.DataFrame, columns: tuple[str, ...], what: str) -> None:
    """Raise ``ValueError`` naming the missing columns when ``frame`` lacks any of ``columns``."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs columns {', '.join(missing)}; it has {frame.columns}")


def hours(value_h: float) -> timedelta:
    """A ``timedelta`` of ``value_h`` hours (window parameters are given in hours)."""
    return timedelta(hours=value_h)


_SERIES_GAP: Final = timedelta(days=40_000)
"""Offset between series on the stitched time axis (longer than any data span plus any lag)."""


def series_id(keys: list[str]) -> pl.Expr:
    """An integer id per run of equal ``keys`` (a series, in a frame sorted by ``keys``).

    Grouping (``.over``) on it is much cheaper than on the string keys themselves.
    """
    return pl.struct(keys).rle_id()


def shift_in_series(expr: pl.Expr, n: int = 1, sid: str = "_sid") -> pl.Expr:
    """``expr`` shifted by ``n`` rows within its series (null where the row ``n`` back belongs to
    another series). Needs a series-id column ``sid`` (:func:`series_id`) on a sorted frame;
    cheaper than ``expr.shift(n).over(keys)``."""
    same = (pl.col(sid) == pl.col(sid).shift(n)).fill_null(False)
    return pl.when(same).then(expr.shift(n)).otherwise(None)


def stitched_time(keys: list[str]) -> pl.Expr:
    """One increasing time axis for a frame sorted by ``keys`` then ``ts``.

    Series k is shifted by k x 40,000 days, so as-of joins over the whole frame never reach into
    a neighbouring series and need no per-group sort (much faster than ``by=keys``).
    """
    sid = pl.struct(keys).rle_id().cast(pl.Int64)
    return pl.col("ts") + pl.duration(days=sid * _SERIES_GAP.days)


def lagged(
    frame: pl.DataFrame,
    *,
    keys: list[str],
    columns: list[str],
    lag_h: float,
    tolerance_h: float,
    suffix: str,
    gts: str | None = None,
) -> pl.DataFrame:
    """Add each column's value as of ``lag_h`` hours earlier, per series ``keys``.

    The value used is the latest observation at or before ``ts - lag_h`` and no older than
    ``ts - lag_h - tolerance_h`` (else null), so gaps never pair a value with a stale one. Adds
    ``{column}{suffix}`` columns. The frame must be sorted by ``keys`` then ``ts`` (with no
    duplicate ``ts`` in a series); the output keeps its order. ``gts`` names a column already
    holding :func:`stitched_time` (computed here when None).
    """
    axis = stitched_time(keys) if gts is None else pl.col(gts)
    narrow = frame.select(axis.alias("_lgts"), *columns)
    right = narrow.select(
        pl.col("_lgts").alias("_rgts"), *[pl.col(c).alias(c + suffix) for c in columns]
    )
    # Join only the time axis (not the whole frame with its string keys), then attach the result.
    found = (
        narrow.select((pl.col("_lgts") - hours(lag_h)).alias("_target"))
        .join_asof(
            right,
            left_on="_target",
            right_on="_rgts",
            strategy="backward",
            tolerance=hours(tolerance_h),
        )
        .select([c + suffix for c in columns])
    )
    return frame.hstack(found.get_columns())


def zscore_parts(
    column: str, *, window_h: float, keys: list[str], min_samples: int = 2
) -> list[pl.Expr]:
    """The trailing mean (``_zm``) and sample std (``_zs``) of ``column`` that
    :func:`zscore_from_parts` needs; add them in the same ``with_columns`` as other window
    expressions so polars computes them in parallel."""
    w = hours(window_h)
    x = pl.col(column)
    return [
        x.rolling_mean_by("ts", w, min_samples=min_samples).over(keys).alias("_zm"),
        x.rolling_std_by("ts", w, min_samples=min_samples).over(keys).alias("_zs"),
    ]


def zscore_from_parts(column: str) -> pl.Expr:
    """``(x - mean) / std`` from the columns of :func:`zscore_parts` (drop them afterwards).

    The std is the sample std (ddof = 1). A constant window (std below ``REL_STD_TOL`` x |mean|)
    and a window with fewer than ``min_samples`` values give null, never NaN or infinity.
    """
    mean, std = pl.col("_zm"), pl.col("_zs")
    flat = std <= mean.abs() * REL_STD_TOL + 1e-15
    return pl.when(flat.fill_null(True)).then(None).otherwise((pl.col(column) - mean) / std)


def sort_series(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """``frame`` sorted by ``keys`` then ``ts``; returned as is (no copy) when already sorted.

    The check is one vectorised pass, much cheaper than re-sorting a sorted frame with string keys.
    """
    if frame.height < 2:
        return frame
    ordered: pl.Expr = pl.col("ts") > pl.col("ts").shift()
    for key in reversed(keys):
        k, prev = pl.col(key), pl.col(key).shift()
        ordered = (k > prev) | ((k == prev) & ordered)
    if frame.lazy().select(ordered.slice(1).all()).collect().item():  # lazy: shifts shared
        return frame
    return frame.sort(*keys, "ts")


def add_rolling_percentile(
    frame: pl.DataFrame,
    column: str,
    alias: str,
    *,
    window_h: float,
    sid: str = "_sid",
) -> pl.DataFrame:
    """Add ``alias`` = :func:`rolling_percentile` of ``column`` per series, in O(n log n).

    polars' rolling rank costs O(window) per row; this computes the same numbers with a Fenwick
    tree over each series' value levels (:func:`perpscope.analytics._kernels.rolling_rank_count`),
    tested equal to the :func:`rolling_percentile` expression. The frame must be sorted by
    ``sid`` (contiguous series, as numbered by :func:`series_id`) and ``ts``.
    """
    if frame.height == 0:
        return frame.with_columns(pl.lit(None, dtype=pl.Float64).alias(alias))
    col = frame.get_column(column).cast(pl.Float64)
    valid = col.is_not_null() & col.is_not_nan()
    starts = frame.select(
        pl.arg_where(pl.col(sid) != pl.col(sid).shift(fill_value=pl.col(sid).first() - 1))
    ).to_series()
    ts_us = frame.get_column("ts").dt.cast_time_unit("us").to_physical().to_numpy()
    rank, count = rolling_rank_count(
        ts_us,
        col.fill_null(0.0).fill_nan(0.0).to_numpy(),
        valid.to_numpy(),
        starts.to_numpy().astype(np.int64),
        round(window_h * 3_600_000_000),
    )
    pct = pl.Series(alias, rank / np.where(count > 0, count, 1.0))
    return frame.with_columns(pl.when(valid).then(pct).otherwise(None).alias(alias))


def rolling_percentile(value: pl.Expr, ts: str, window_h: float, keys: list[str]) -> pl.Expr:
    """Share of the trailing ``window_h``-hour window's values that are <= the current one.

    In (0, 1]: 1.0 means the current value is the window's highest (ties count as <=). Null values
    give null.
    """
    w = hours(window_h)
    rank = value.rolling_rank_by(ts, w, method="max").over(keys)
    count = value.is_not_null().cast(pl.Float64).rolling_sum_by(ts, w).over(keys)
    return pl.when(value.is_null()).then(None).otherwise(rank.cast(pl.Float64) / count)


def prior_extreme_divergence(
    frame: pl.DataFrame,
    *,
    keys: list[str],
    price: str,
    indicator: str,
    window_h: float,
    min_gap_h: float,
    prefix: str,
) -> pl.DataFrame:
    """Compare an indicator at a new price extreme with its value at the prior extreme.

    Rule (used for funding-price and CVD-price divergence):

    - a bar is a **new high** when ``price`` is strictly above every price of the trailing
      ``window_h`` hours before it (``(t - window, t)``); a **new low** mirrors it;
    - its **prior high** is the latest earlier new-high bar that is at least ``min_gap_h`` hours
      older and at most ``window_h`` hours older (so the two highs are distinct swings within one
      window);
    - **bearish** when the indicator at the new high is strictly below its value at the prior high;
      **bullish** when, at a new low, it is strictly above its value at the prior low.

    Adds columns ``{prefix}_new_high``, ``{prefix}_new_low`` (bool), ``{prefix}_prior_ts``,
    ``{prefix}_prior_price``, ``{prefix}_prior_value`` (of the prior extreme used, or null) and
    ``{prefix}_divergence`` (``"bearish"``, ``"bullish"`` or null). Input must be sorted by ``keys``
    then ``ts``; the output keeps that order.
    """
    w = hours(window_h)
    prev_max = pl.col(price).rolling_max_by("ts", w, closed="left").over(keys)
    prev_min = pl.col(price).rolling_min_by("ts", w, closed="left").over(keys)
    base = frame.with_columns(
        (pl.col(price) > prev_max).fill_null(False).alias("_hi"),
        (pl.col(price) < prev_min).fill_null(False).alias("_lo"),
    )
    out = base.with_columns(
        stitched_time(keys).alias("_gts"), pl.struct(keys).rle_id().alias("_sid")
    )
    for side in ("hi", "lo"):
        marks = out.filter(pl.col(f"_{side}")).select(
            (pl.col("_gts") + hours(min_gap_h)).alias("_key"),
            pl.col("_sid").alias("_msid"),
            pl.col("ts").alias(f"_{side}_ts"),
            pl.col(price).alias(f"_{side}_px"),
            pl.col(indicator).alias(f"_{side}_v"),
        )
        out = out.join_asof(marks, left_on="_gts", right_on="_key", strategy="backward").drop(
            "_key"
        )
        stale = (pl.col("_msid") != pl.col("_sid")) | (pl.col("ts") - pl.col(f"_{side}_ts") > w)
        out = out.with_columns(
            pl.when(stale.fill_null(True)).then(None).otherwise(pl.col(c)).alias(c)
            for c in (f"_{side}_ts", f"_{side}_px", f"_{side}_v")
        ).drop("_msid")
    bearish = pl.col("_hi") & (pl.col(indicator) < pl.col("_hi_v"))
    bullish = pl.col("_lo") & (pl.col(indicator) > pl.col("_lo_v"))
    return out.with_columns(
        pl.col("_hi").alias(f"{prefix}_new_high"),
        pl.col("_lo").alias(f"{prefix}_new_low"),
        pl.when(pl.col("_hi"))
        .then(pl.col("_hi_ts"))
        .when(pl.col("_lo"))
        .then(pl.col("_lo_ts"))
        .alias(f"{prefix}_prior_ts"),
        pl.when(pl.col("_hi"))
        .then(pl.col("_hi_px"))
        .when(pl.col("_lo"))
        .then(pl.col("_lo_px"))
        .alias(f"{prefix}_prior_price"),
        pl.when(pl.col("_hi"))
        .then(pl.col("_hi_v"))
        .when(pl.col("_lo"))
        .then(pl.col("_lo_v"))
        .alias(f"{prefix}_prior_value"),
        pl.when(bearish.fill_null(False))
        .then(pl.lit("bearish"))
        .when(bullish.fill_null(False))
        .then(pl.lit("bullish"))
        .otherwise(None)
        .alias(f"{prefix}_divergence"),
    ).drop("_hi", "_lo", "_hi_ts", "_hi_px", "_hi_v", "_lo_ts", "_lo_px", "_lo_v", "_gts", "_sid")
