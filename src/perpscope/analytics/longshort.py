"""Long/short ratio readings: global accounts against top traders, and extremes by percentile.

Input rows follow the ``long_short`` table: venue, instrument, kind (``global_account``,
``top_account``, ``top_position``), period, ts, long_short_ratio.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from perpscope.analytics._rolling import hours, require_columns, rolling_percentile

__all__ = ["KINDS", "long_short_compare", "long_short_extremes"]

KINDS: Final = ("global_account", "top_account", "top_position")
"""The ratio kinds of the ``long_short`` table."""

_KEYS: Final = ["venue", "instrument", "kind", "period"]


def long_short_compare(frame: pl.DataFrame) -> pl.DataFrame:
    """Global account ratio against the top traders' ratios at the same time.

    Playbook dashboard: "Long/short ratio: Balance between bull and bear positioning". The crowd
    (all accounts) and the top traders can lean opposite ways; perpscope reports both and labels
    the disagreement: ``crowd_long_top_short`` when global > 1 and top_position < 1,
    ``crowd_short_top_long`` for the mirror, ``aligned`` otherwise (null when either is missing).

    Args:
        frame: long_short rows (several kinds for the same venue, instrument, period and ts).

    Returns:
        ``venue instrument period ts global_account top_account top_position top_minus_global
        lean`` (``top_minus_global`` = top_position - global_account), sorted by series and ts.
    """
    require_columns(
        frame,
        ("venue", "instrument", "kind", "period", "ts", "long_short_ratio"),
        "long_short_compare",
    )
    wide = frame.filter(pl.col("kind").is_in(KINDS)).pivot(
        on="kind",
        index=["venue", "instrument", "period", "ts"],
        values="long_short_ratio",
        aggregate_function="last",
    )
    for kind in KINDS:
        if kind not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.Float64).alias(kind))
    g, t = pl.col("global_account"), pl.col("top_position")
    lean = (
        pl.when(g.is_null() | t.is_null())
        .then(None)
        .when((g > 1) & (t < 1))
        .then(pl.lit("crowd_long_top_short"))
        .when((g < 1) & (t > 1))
        .then(pl.lit("crowd_short_top_long"))
        .otherwise(pl.lit("aligned"))
    )
    return (
        wide.select("venue", "instrument", "period", "ts", *KINDS)
        .with_columns((t - g).alias("top_minus_global"), lean.alias("lean"))
        .sort("venue", "instrument", "period", "ts")
    )


def long_short_extremes(
    frame: pl.DataFrame,
    *,
    window_h: float = 720.0,
    high_pct: float = 0.9,
    low_pct: float = 0.1,
    min_samples: int = 10,
) -> pl.DataFrame:
    """Long/short ratio extremes by trailing percentile, per venue, instrument, kind and period.

    Extremes are relative to the series' own history (a ratio of 2.0 is ordinary on one venue and
    extreme on another): ``ls_percentile`` = share of the trailing ``window_h`` (30 days) values
    <= the current one; ``extreme`` = ``crowded_long`` when >= ``high_pct``, ``crowded_short``
    when <= ``low_pct``, else null. (The playbook gives no thresholds for this ratio; 90/10 match
    its "90th percentile" reading of OI.)

    Guard: no ``extreme`` while the window holds fewer than ``min_samples`` values (10). With n
    values the lowest percentile is 1/n, so below 10 values ``crowded_short`` (<= 10%) cannot
    happen while ``crowded_long`` (the newest high of three values is at 100%) fires on noise.

    Returns:
        The input sorted by series and ts plus ``ls_samples`` (values in the window),
        ``ls_percentile`` and ``extreme``.
    """
    require_columns(frame, (*_KEYS, "ts", "long_short_ratio"), "long_short_extremes")
    pct = pl.col("ls_percentile")
    return (
        frame.sort(*_KEYS, "ts")
        .with_columns(
            rolling_percentile(pl.col("long_short_ratio"), "ts", window_h, _KEYS).alias(
                "ls_percentile"
            ),
            pl.col("long_short_ratio")
            .is_not_null()
            .cast(pl.Int64)
            .rolling_sum_by("ts", hours(window_h))
            .over(_KEYS)
            .alias("ls_samples"),
        )
        .with_columns(
            pl.when(pl.col("ls_samples") < min_samples)
            .then(None)
            .when(pct >= high_pct)
            .then(pl.lit("crowded_long"))
            .when(pct <= low_pct)
            .then(pl.lit("crowded_short"))
            .otherwise(None)
            .alias("extreme")
        )
    )
