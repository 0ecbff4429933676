"""Funding time series: statistics, extremes, acceleration and funding-price divergence.

Pure functions over rows of the ``funding`` table (venue, instrument, ts, rate, interval_h), all
computed on the 8h-equivalent rate (see :mod:`perpscope.analytics.funding`). Series are
(venue, instrument); windows are trailing time windows in hours.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from perpscope.analytics._rolling import (
    add_rolling_percentile,
    hours,
    prior_extreme_divergence,
    require_columns,
    rolling_percentile,
    series_id,
    shift_in_series,
    sort_series,
    zscore_from_parts,
    zscore_parts,
)
from perpscope.analytics.funding import asset_expr, normalised_funding

__all__ = [
    "MIN_HIGHER_HIGH",
    "latest_funding_statistics",
    "ACCEL_LEVELS",
    "cross_venue_spread_history",
    "extreme_persistence",
    "extremes_per_year",
    "funding_acceleration",
    "funding_extremes",
    "funding_price_divergence",
    "funding_statistics",
]

_SERIES: Final = ["venue", "instrument"]

MIN_HIGHER_HIGH: Final = 0.005
"""Guard of the divergences at price extremes: a new high at least 0.5% above the prior one."""
_SID: Final = ["_sid"]

ACCEL_LEVELS: Final = pl.Enum(["none", "moderate", "strong"])
"""The acceleration levels, mildest first."""


def funding_statistics(
    funding: pl.DataFrame,
    *,
    zscore_window_h: float = 168.0,
    percentile_window_h: float = 720.0,
    min_samples: int = 3,
) -> pl.DataFrame:
    """Accumulated funding, trailing z-score and percentile of each venue's funding series.

    Playbook: "Raw funding rates need context" (distance from neutral, regime). Statistics use the
    8h-equivalent rate so series with different intervals are comparable.

    Args:
        funding: rows with venue, instrument, ts, rate, interval_h.
        zscore_window_h: trailing window of the z-score, hours (default 7 days).
        percentile_window_h: trailing window of the percentile, hours (default 30 days).
        min_samples: fewest settlements in the window for a z-score (else null).

    Returns:
        :func:`normalised_funding` columns plus ``cum_rate`` (running sum of ``rate`` per series:
        what a constant-notional long has paid, as a fraction of notional; negative = received),
        ``zscore`` ((rate_8h - mean) / sample std over the window; null for a constant window) and
        ``percentile`` (share of the window's rate_8h values <= the current one, in (0, 1]).
    """
    base = normalised_funding(funding).with_columns(series_id(_SERIES).alias("_sid"))
    out = base.with_columns(
        pl.col("rate").cum_sum().over(_SID).alias("cum_rate"),
        *zscore_parts("rate_8h", window_h=zscore_window_h, keys=_SID, min_samples=min_samples),
    ).with_columns(zscore_from_parts("rate_8h").alias("zscore"))
    out = add_rolling_percentile(out, "rate_8h", "percentile", window_h=percentile_window_h)
    return out.drop("_sid", "_zm", "_zs")


def latest_funding_statistics(
    funding: pl.DataFrame,
    *,
    zscore_window_h: float = 168.0,
    percentile_window_h: float = 720.0,
    min_samples: int = 3,
) -> pl.DataFrame:
    """The z-score and percentile of each series' latest settlement, as :func:`funding_statistics`
    defines them, with plain polars window expressions.

    For one row per series (the funding table) this needs no compiled kernel; it is tested equal
    to the last row of :func:`funding_statistics` per series.

    Returns:
        One row per (venue, instrument): ``venue instrument ts rate_8h zscore percentile``.
    """
    require_columns(funding, ("venue", "instrument", "ts", "rate", "interval_h"), "statistics")
    base = sort_series(normalised_funding(funding), _SERIES)
    return (
        base.with_columns(
            *zscore_parts(
                "rate_8h", window_h=zscore_window_h, keys=_SERIES, min_samples=min_samples
            ),
            rolling_percentile(pl.col("rate_8h"), "ts", percentile_window_h, _SERIES).alias(
                "percentile"
            ),
        )
        .with_columns(zscore_from_parts("rate_8h").alias("zscore"))
        .group_by(_SERIES, maintain_order=True)
        .last()
        .select(*_SERIES, "ts", "rate_8h", "zscore", "percentile")
    )


def extreme_persistence(
    funding: pl.DataFrame, *, threshold_8h: float = 0.0005, gap_factor: float = 1.5
) -> pl.DataFrame:
    """Per-settlement persistence of an extreme on one venue: how long it has lasted so far.

    A settlement is extreme when ``|rate_8h| >= threshold_8h`` (playbook: "roughly ±0.05% or
    higher"). A run is a sequence of consecutive extreme settlements of the same sign; it breaks
    when the sign changes, a settlement is not extreme, or the gap to the previous settlement is
    more than ``gap_factor`` x its interval (missing data never extends a run).

    Returns:
        :func:`normalised_funding` columns plus ``extreme_side`` (1, -1 or 0) and
        ``extreme_streak_h`` (sum of ``interval_h`` over the run up to and including this
        settlement; 0 when not extreme).
    """
    base = normalised_funding(funding).with_columns(series_id(_SERIES).alias("_sid"))
    side = (
        pl.when(pl.col("rate_8h") >= threshold_8h)
        .then(1)
        .when(pl.col("rate_8h") <= -threshold_8h)
        .then(-1)
        .otherwise(0)
        .cast(pl.Int8)
    )
    gap_h = pl.col("ts") - shift_in_series(pl.col("ts"))
    out = base.lazy().with_columns(side.alias("extreme_side"))
    new_run = (
        (pl.col("extreme_side") != shift_in_series(pl.col("extreme_side")))
        | (gap_h.dt.total_seconds() / 3600.0 > gap_factor * pl.col("interval_h"))
    ).fill_null(True)
    # Hours since the run began: a running sum of interval_h minus its value before the run.
    done = pl.col("interval_h").cum_sum()
    start = pl.when(new_run).then(done - pl.col("interval_h")).otherwise(None).forward_fill()
    return (
        out.with_columns(
            pl.when(pl.col("extreme_side") != 0)
            .then(done - start)
            .otherwise(0.0)
            .alias("extreme_streak_h")
        )
        .drop("_sid")
        .collect()
    )


def funding_extremes(
    funding: pl.DataFrame,
    *,
    threshold_8h: float = 0.0005,
    min_venues: int = 2,
    min_duration_h: float = 24.0,
    grid_h: float = 8.0,
    full_distance: float = 2.0,
    full_duration_h: float = 72.0,
) -> pl.DataFrame:
    """Episodes of extreme funding across venues, graded.

    Playbook: "When funding hits an extreme (roughly ±0.05% or higher across multiple exchanges,
    sustained for 24+ hours)"; strength depends on "how far from neutral", "duration of the
    extreme" and "convergence across exchanges".

    Rule:

    1. Settlements are put on a grid of ``grid_h``-hour periods (``ts`` floored to the grid, UTC
       epoch aligned, so 8h periods start 00/08/16 UTC). Per (asset, venue, period) the venue's
       rate is the mean ``rate_8h`` of its settlements in the period (for an hourly venue: the sum
       of its eight hourly rates) across its instruments of that asset.
    2. A period is **positive** when at least ``min_venues`` venues have rate >= ``threshold_8h``
       and more venues are positive than negative; **negative** mirrors it.
    3. An **episode** is a run of consecutive periods (no missing period) of the same sign lasting
       at least ``min_duration_h`` hours (24h = three 8h periods).
    4. Grades: ``distance`` = mean over the episode of |mean rate of the extreme venues| /
       threshold; ``convergence`` = mean share of reporting venues that were extreme;
       ``score`` = mean of clip((distance - 1) / (full_distance - 1)), clip((duration - min) /
       (full_duration_h - min)) and convergence, each in [0, 1]; ``grade`` = strong (score >=
       2/3), moderate (>= 1/3) or weak.

    Args:
        funding: rows with venue, instrument, ts, rate, interval_h.
        threshold_8h: extreme level per 8h (0.0005 = 0.05%).
        min_venues: venues that must be extreme at once (N; 1 = single venue).
        min_duration_h: shortest episode, hours.
        grid_h: period of the common grid, hours.
        full_distance: distance (multiple of the threshold) that scores 1.
        full_duration_h: duration that scores 1.

    Returns:
        One row per episode: ``asset side start_ts end_ts duration_h n_periods peak_rate_8h
        mean_rate_8h distance convergence venues score grade`` (side = positive | negative;
        ``end_ts`` is the end of the last period), sorted by asset and start.
    """
    base = normalised_funding(funding).with_columns(asset_expr().alias("asset"))
    grid = f"{int(grid_h * 3600)}s"
    per_venue = base.group_by("asset", "venue", pl.col("ts").dt.truncate(grid).alias("period")).agg(
        pl.col("rate_8h").mean()
    )
    pos = pl.col("rate_8h") >= threshold_8h
    neg = pl.col("rate_8h") <= -threshold_8h
    periods = (
        per_venue.group_by("asset", "period")
        .agg(
            pl.len().alias("n_reporting"),
            pos.sum().alias("n_pos"),
            neg.sum().alias("n_neg"),
            pl.col("rate_8h").filter(pos).mean().alias("pos_rate"),
            pl.col("rate_8h").filter(neg).mean().alias("neg_rate"),
            pl.col("venue").filter(pos).sort().alias("pos_venues"),
            pl.col("venue").filter(neg).sort().alias("neg_venues"),
        )
        .with_columns(
            pl.when((pl.col("n_pos") >= min_venues) & (pl.col("n_pos") > pl.col("n_neg")))
            .then(1)
            .when((pl.col("n_neg") >= min_venues) & (pl.col("n_neg") > pl.col("n_pos")))
            .then(-1)
            .otherwise(0)
            .alias("side")
        )
        .sort("asset", "period")
    )
    step = hours(grid_h)
    new_run = (
        (pl.col("side") != pl.col("side").shift(1).over("asset"))
        | (pl.col("period") - pl.col("period").shift(1).over("asset") != step)
    ).fill_null(True)
    is_pos = pl.col("side") == 1
    periods = periods.filter(pl.col("side") != 0).with_columns(
        new_run.cast(pl.UInt32).cum_sum().over("asset").alias("run"),
        pl.when(is_pos).then(pl.col("pos_rate")).otherwise(pl.col("neg_rate")).alias("ext_rate"),
        pl.when(is_pos).then(pl.col("n_pos")).otherwise(pl.col("n_neg")).alias("n_ext"),
        pl.when(is_pos).then(pl.col("pos_venues")).otherwise(pl.col("neg_venues")).alias("vs"),
    )
    span = max(full_duration_h - min_duration_h, 1e-9)
    episodes = (
        periods.group_by("asset", "run")
        .agg(
            pl.col("side").first(),
            pl.col("period").min().alias("start_ts"),
            (pl.col("period").max() + step).alias("end_ts"),
            pl.len().alias("n_periods"),
            pl.col("ext_rate").get(pl.col("ext_rate").abs().arg_max()).alias("peak_rate_8h"),
            pl.col("ext_rate").mean().alias("mean_rate_8h"),
            (pl.col("ext_rate").abs().mean() / threshold_8h).alias("distance"),
            (pl.col("n_ext") / pl.col("n_reporting")).mean().alias("convergence"),
            pl.col("vs").explode().unique().sort().str.join(",").alias("venues"),
        )
        .with_columns((pl.col("n_periods") * grid_h).alias("duration_h"))
        .filter(pl.col("duration_h") >= min_duration_h)
    )
    d = ((pl.col("distance") - 1.0) / max(full_distance - 1.0, 1e-9)).clip(0.0, 1.0)
    u = ((pl.col("duration_h") - min_duration_h) / span).clip(0.0, 1.0)
    score = (d + u + pl.col("convergence")) / 3.0
    return (
        episodes.with_columns(
            pl.when(pl.col("side") == 1)
            .then(pl.lit("positive"))
            .otherwise(pl.lit("negative"))
            .alias("side"),
            score.alias("score"),
        )
        .with_columns(
            pl.when(pl.col("score") >= 2 / 3)
            .then(pl.lit("strong"))
            .when(pl.col("score") >= 1 / 3)
            .then(pl.lit("moderate"))
            .otherwise(pl.lit("weak"))
            .alias("grade")
        )
        .select(
            "asset",
            "side",
            "start_ts",
            "end_ts",
            "duration_h",
            "n_periods",
            "peak_rate_8h",
            "mean_rate_8h",
            "distance",
            "convergence",
            "venues",
            "score",
            "grade",
        )
        .sort("asset", "start_ts")
    )


def extremes_per_year(episodes: pl.DataFrame) -> pl.DataFrame:
    """Count :func:`funding_extremes` episodes per asset, UTC year (of ``start_ts``) and side.

    Returns:
        ``asset year side episodes hours longest_h`` sorted by asset, year, side.
    """
    return (
        episodes.group_by("asset", pl.col("start_ts").dt.year().alias("year"), "side")
        .agg(
            pl.len().alias("episodes"),
            pl.col("duration_h").sum().alias("hours"),
            pl.col("duration_h").max().alias("longest_h"),
        )
        .sort("asset", "year", "side")
    )


def funding_acceleration(
    funding: pl.DataFrame,
    *,
    moderate_8h: float = 0.0002,
    strong_8h: float = 0.0003,
    parabolic_factor: float = 1.5,
    tolerance: float = 1e-12,
) -> pl.DataFrame:
    """Per-settlement change of funding, its change, and the playbook's acceleration level.

    Playbook L71-73: "Moderate acceleration: Funding increasing by +0.02% per period"; "Strong
    acceleration: Funding increasing by +0.03%+ per period"; "Parabolic acceleration: Funding
    doubling in consecutive periods (e.g., +0.03% → +0.06% → +0.10%)". The example grows by
    2.0x then 1.67x, so "doubling" is read as growth by at least ``parabolic_factor`` (1.5) in
    each of two consecutive periods.

    Rule, on each series' 8h-equivalent rate r (per settlement):

    - ``change_8h`` = r[t] - r[t-1]; ``accel_8h`` = change[t] - change[t-1];
    - ``accel_level`` counts only moves *away from neutral* (change with the sign of r[t]):
      ``strong`` when |change| >= ``strong_8h``, else ``moderate`` when |change| >=
      ``moderate_8h``, else ``none`` (``tolerance`` absorbs float error, so +0.04% -> +0.07%
      counts as a +0.03% change);
    - ``parabolic`` (a separate flag, not a level) when r[t-2], r[t-1], r[t] share a sign and
      |r[t]| >= factor x |r[t-1]| and |r[t-1]| >= factor x |r[t-2]|. The playbook's own "strong"
      example (+0.02% -> +0.04% -> +0.07%, growth 2.0x then 1.75x) is parabolic by this rule too,
      which is why the two are reported side by side;
    - ``accel_direction`` = 1 (rising) or -1 (falling) where the level is not ``none``, else 0.

    Returns:
        :func:`normalised_funding` columns plus ``change_8h``, ``accel_8h``, ``accel_level``,
        ``parabolic`` (bool) and ``accel_direction``.
    """
    base = normalised_funding(funding).with_columns(series_id(_SERIES).alias("_sid"))
    r = pl.col("rate_8h")
    r1 = shift_in_series(r, 1)
    r2 = shift_in_series(r, 2)
    out = base.lazy().with_columns((r - r1).alias("change_8h"))
    ch = pl.col("change_8h")
    away = ((ch > 0) & (r > 0)) | ((ch < 0) & (r < 0))
    same_sign = ((r > 0) & (r1 > 0) & (r2 > 0)) | ((r < 0) & (r1 < 0) & (r2 < 0))
    parabolic = same_sign & (
        (r.abs() >= parabolic_factor * r1.abs() - tolerance)
        & (r1.abs() >= parabolic_factor * r2.abs() - tolerance)
    )
    level = (
        pl.when(~away.fill_null(False))
        .then(pl.lit("none", ACCEL_LEVELS))
        .when(ch.abs() >= strong_8h - tolerance)
        .then(pl.lit("strong", ACCEL_LEVELS))
        .when(ch.abs() >= moderate_8h - tolerance)
        .then(pl.lit("moderate", ACCEL_LEVELS))
        .otherwise(pl.lit("none", ACCEL_LEVELS))
    )
    return (
        out.with_columns(
            (ch - shift_in_series(ch, 1)).alias("accel_8h"),
            level.alias("accel_level"),
            parabolic.fill_null(False).alias("parabolic"),
        )
        .with_columns(
            pl.when(pl.col("accel_level") == "none")
            .then(0)
            .otherwise(ch.sign())
            .cast(pl.Int8)
            .alias("accel_direction")
        )
        .drop("_sid")
        .collect()
    )


def funding_price_divergence(
    frame: pl.DataFrame,
    *,
    window_h: float = 168.0,
    mean_window_h: float = 168.0,
    min_gap_h: float = 24.0,
    min_price_move: float = MIN_HIGHER_HIGH,
) -> pl.DataFrame:
    """Funding-price divergence: a new 7-day price high while funding's 7-day mean is lower.

    Playbook: "When price makes a new 7-day high but funding's 7-day average is lower than it was
    at the prior price high, you have a divergence ... The same logic applies in reverse for
    bullish divergence at lows." The prior high is the latest earlier new 7-day high at least
    ``min_gap_h`` hours older (and at most ``window_h`` older), so two bars of one push do not
    count as two highs (see ``perpscope.analytics._rolling.prior_extreme_divergence``).

    Args:
        frame: rows with venue, instrument, ts, close_px and rate_8h (e.g. funding joined as-of to
            candles), one series per (venue, instrument).
        window_h: the price-extreme window, hours (7 days).
        mean_window_h: the funding mean window, hours (7 days).
        min_gap_h: the least separation of two highs, hours.
        min_price_move: guard: the new high must be at least this much above the prior high
            (the new low this much below the prior low), a fraction (0.5%). Playbook: "The
            wider the gap — price making a significantly higher high ... the stronger the
            signal"; a higher high by a few cents is no new swing.

    Returns:
        The input plus ``funding_mean_8h`` (trailing mean of rate_8h) and the ``fdiv_*`` columns:
        ``fdiv_new_high``, ``fdiv_new_low``, ``fdiv_prior_ts``, ``fdiv_prior_price``,
        ``fdiv_prior_value`` (funding mean at the prior extreme) and ``fdiv_divergence``
        (bearish | bullish | null).
    """
    require_columns(
        frame, ("venue", "instrument", "ts", "close_px", "rate_8h"), "funding_price_divergence"
    )
    base = sort_series(frame, _SERIES).with_columns(
        pl.col("rate_8h")
        .rolling_mean_by("ts", hours(mean_window_h))
        .over(_SERIES)
        .alias("funding_mean_8h")
    )
    out = prior_extreme_divergence(
        base,
        keys=_SERIES,
        price="close_px",
        indicator="funding_mean_8h",
        window_h=window_h,
        min_gap_h=min_gap_h,
        prefix="fdiv",
    )
    return _higher_high_guard(out, "fdiv", min_price_move)


def cross_venue_spread_history(
    funding: pl.DataFrame, venue_a: str, venue_b: str, *, grid_h: float = 8.0
) -> pl.DataFrame:
    """Per-period funding spread of venue A minus venue B, per asset, on a common grid.

    Each venue's rate in a ``grid_h`` period is the mean rate_8h of its settlements in it (as in
    :func:`funding_extremes`); only periods where both venues report are kept.

    Returns:
        ``asset period rate_8h_a rate_8h_b spread_8h`` sorted by asset and period.
    """
    base = normalised_funding(
        funding.filter(pl.col("venue").is_in([venue_a, venue_b]))
    ).with_columns(asset_expr().alias("asset"))
    grid = f"{int(grid_h * 3600)}s"
    per = base.group_by("asset", "venue", pl.col("ts").dt.truncate(grid).alias("period")).agg(
        pl.col("rate_8h").mean()
    )
    a = per.filter(pl.col("venue") == venue_a).select(
        "asset", "period", pl.col("rate_8h").alias("rate_8h_a")
    )
    b = per.filter(pl.col("venue") == venue_b).select(
        "asset", "period", pl.col("rate_8h").alias("rate_8h_b")
    )
    return (
        a.join(b, on=["asset", "period"])
        .with_columns((pl.col("rate_8h_a") - pl.col("rate_8h_b")).alias("spread_8h"))
        .sort("asset", "period")
    )


def _higher_high_guard(out: pl.DataFrame, prefix: str, min_price_move: float) -> pl.DataFrame:
    """Drop ``{prefix}_divergence`` where the new extreme beats the prior one by less than
    ``min_price_move`` (a fraction; a gap exactly at the guard passes)."""
    gap = (pl.col("close_px") / pl.col(f"{prefix}_prior_price") - 1.0).abs()
    col = f"{prefix}_divergence"
    return out.with_columns(
        pl.when(gap >= min_price_move - 1e-12).then(pl.col(col)).otherwise(None).alias(col)
    )
