"""Open-interest readings of the playbook, as pure polars functions.

Input frames carry ``venue``, ``instrument``, ``ts`` (UTC) and ``oi_usd`` (one-sided OI as USD
notional, the ``open_interest`` table's column); price-aware readings also need ``close_px``.
A series is one (venue, instrument); windows and lags are in hours and look back in time only.
Changes are fractions (0.10 = +10%).
"""

from __future__ import annotations

from typing import Final

import polars as pl

from perpscope.analytics._rolling import (
    hours,
    lagged,
    require_columns,
    rolling_percentile,
    sort_series,
    stitched_time,
)
from perpscope.analytics.funding import asset_expr

__all__ = [
    "DIVERGENCE",
    "GRADE",
    "MIN_OI_MOVE_24H",
    "MIN_OI_USD",
    "MIN_PRICE_MOVE_24H",
    "MIN_PRICE_MOVE_DIVERGENCE",
    "QUADRANT",
    "QUADRANTS",
    "market_oi_divergence",
    "oi_changes",
    "oi_divergence",
    "oi_percentile",
    "price_oi_quadrant",
    "venue_oi_share",
]

_SERIES: Final = ["venue", "instrument"]

QUADRANTS: Final[dict[str, str]] = {
    "new_longs": "price up, OI up: new longs are opening; healthy uptrend, bullish continuation",
    "short_covering": "price up, OI down: shorts are covering; the rally may exhaust",
    "new_shorts": "price down, OI up: new shorts opening; healthy downtrend, bearish continuation",
    "long_capitulation": "price down, OI down: longs are capitulating; selling may exhaust",
    "undefined": "price or OI moved less than its guard, or is unknown: no reading",
}
"""The playbook's four price/OI scenarios (and the catch-all) with their interpretation."""

QUADRANT: Final = pl.Enum(list(QUADRANTS))
"""The quadrant labels as a polars Enum (the dtype :func:`price_oi_quadrant` returns)."""

DIVERGENCE: Final = pl.Enum(["bearish", "bullish"])
"""Labels of ``oi_divergence`` (and ``market_wide``)."""

GRADE: Final = pl.Enum(["moderate", "strong"])
"""Labels of ``oi_divergence_grade``."""

MIN_PRICE_MOVE_24H: Final = 0.005
"""Guard: a 24h price change smaller than 0.5% is flat (no quadrant)."""

MIN_OI_MOVE_24H: Final = 0.005
"""Guard: a 24h OI change smaller than 0.5% is flat (no quadrant, no wave)."""

MIN_OI_USD: Final = 1e6
"""Guard: OI below $1M at the start of a change is too small for a spike, alert or wave."""

MIN_PRICE_MOVE_DIVERGENCE: Final = 0.02
"""Guard: a price move smaller than 2% over the divergence window is no new extreme."""

_EPS: Final = 1e-12
"""Tolerance of the guards, so a change exactly at a guard passes despite float rounding."""


def price_oi_quadrant(
    price_change: pl.Expr,
    oi_change: pl.Expr,
    *,
    min_price_move: float = MIN_PRICE_MOVE_24H,
    min_oi_move: float = MIN_OI_MOVE_24H,
) -> pl.Expr:
    """Classify a price change and an OI change into the playbook's four scenarios.

    Playbook table "Price / OI / Interpretation": rising/rising = new longs, rising/falling =
    short covering, falling/rising = new shorts, falling/falling = long capitulation. "Rising"
    and "falling" need a move of at least the guard (playbook L181: "Single-day OI fluctuations
    are noise"): a price change with ``|change| < min_price_move`` or an OI change with
    ``|change| < min_oi_move`` is flat. The classification is total: a flat, null or NaN change
    on either side gives ``"undefined"``.

    Args:
        price_change: the price change over the period, a fraction.
        oi_change: the OI change over the same period, a fraction.
        min_price_move: smallest price move that counts as rising or falling (0.5% over 24h).
        min_oi_move: smallest OI move that counts as rising or falling (0.5% over 24h).

    Returns:
        An expression of dtype :data:`QUADRANT` (the keys of :data:`QUADRANTS`).
    """
    p_lim, o_lim = max(min_price_move - _EPS, 0.0), max(min_oi_move - _EPS, 0.0)
    up_p, dn_p = (
        (price_change > 0) & (price_change >= p_lim),
        (price_change < 0) & (price_change <= -p_lim),
    )
    up_o, dn_o = (oi_change > 0) & (oi_change >= o_lim), (oi_change < 0) & (oi_change <= -o_lim)
    label = (
        pl.when(up_p & up_o)
        .then(pl.lit("new_longs", QUADRANT))
        .when(up_p & dn_o)
        .then(pl.lit("short_covering", QUADRANT))
        .when(dn_p & up_o)
        .then(pl.lit("new_shorts", QUADRANT))
        .when(dn_p & dn_o)
        .then(pl.lit("long_capitulation", QUADRANT))
        .otherwise(pl.lit("undefined", QUADRANT))
    )
    return label.fill_null(pl.lit("undefined", QUADRANT))


def oi_changes(
    oi: pl.DataFrame,
    *,
    change_h: float = 24.0,
    avg_window_h: float = 168.0,
    wave_ratio: float = 3.0,
    spike_h: float = 4.0,
    spike_threshold: float = 0.10,
    alert_threshold: float = 0.10,
    lag_tolerance_h: float = 2.0,
    min_oi_usd: float = MIN_OI_USD,
    min_oi_move: float = MIN_OI_MOVE_24H,
    min_price_move: float = MIN_PRICE_MOVE_24H,
) -> pl.DataFrame:
    """OI change over 24h, its ratio to the 7-day average, intraday spikes and the 24h alert.

    Playbook: "Track OI's 24-hour rate of change alongside its 7-day average rate of change. When
    the 24-hour figure is 3x or more above the 7-day average, a wave of new positioning has
    entered"; "a 10-15% increase within a few hours" is a spike; "OI spike alerts: Trigger when
    aggregate OI increases by more than 10% in 24 hours".

    Rules:

    - ``oi_change_24h`` = oi[t] / oi[t - change_h] - 1, the earlier value being the latest
      observation at or before t - change_h and at most ``lag_tolerance_h`` older (else null);
    - ``roc_avg_7d`` = mean of ``oi_change_24h`` over the trailing ``avg_window_h`` hours;
    - ``roc_ratio`` = oi_change_24h / roc_avg_7d when roc_avg_7d > 0, else null;
      ``wave`` = roc_ratio >= ``wave_ratio`` (a flat or falling week never signals a wave:
      "3x above" an average that is not positive has no meaning);
    - ``oi_change_4h`` as above over ``spike_h``; ``spike`` = oi_change_4h >= ``spike_threshold``;
    - ``alert_24h`` = oi_change_24h > ``alert_threshold``.

    Guards (a percent change of a tiny base is noise): ``spike``, ``alert_24h`` and ``wave``
    need the OI at the start of their change (4h or 24h ago) to be at least ``min_oi_usd``
    ($1M); ``wave`` also needs ``oi_change_24h >= min_oi_move`` (0.5%: three times a near-zero
    average is no wave).

    When ``close_px`` is present, ``price_change_24h`` (as-of, like the OI change) and
    ``quadrant`` (:func:`price_oi_quadrant` of the two 24h changes, with ``min_price_move`` and
    ``min_oi_move`` as its guards) are added too.

    Args:
        oi: rows with venue, instrument, ts, oi_usd (and optionally close_px).

    Returns:
        The input sorted by venue, instrument, ts, plus the columns above.
    """
    require_columns(oi, ("venue", "instrument", "ts", "oi_usd"), "oi_changes")
    has_px = "close_px" in oi.columns
    base = sort_series(oi, _SERIES).with_columns(stitched_time(_SERIES).alias("_gts"))
    base = lagged(
        base,
        keys=_SERIES,
        columns=["oi_usd", "close_px"] if has_px else ["oi_usd"],
        lag_h=change_h,
        tolerance_h=lag_tolerance_h,
        suffix="_24h_ago",
        gts="_gts",
    )
    base = lagged(
        base,
        keys=_SERIES,
        columns=["oi_usd"],
        lag_h=spike_h,
        tolerance_h=lag_tolerance_h,
        suffix="_4h_ago",
        gts="_gts",
    )
    ch = pl.col("oi_change_24h")
    avg = pl.col("roc_avg_7d")
    lazy = base.lazy()
    if has_px:
        px_change = pl.col("close_px") / pl.col("close_px_24h_ago") - 1.0
        lazy = lazy.with_columns(px_change.alias("price_change_24h")).drop("close_px_24h_ago")
    lazy = (
        lazy.with_columns(
            (pl.col("oi_usd") / pl.col("oi_usd_24h_ago") - 1.0).alias("oi_change_24h"),
            (pl.col("oi_usd") / pl.col("oi_usd_4h_ago") - 1.0).alias("oi_change_4h"),
        )
        # on the stitched axis a window never reaches into the previous series
        .with_columns(ch.rolling_mean_by("_gts", hours(avg_window_h)).alias("roc_avg_7d"))
        .with_columns(pl.when(avg > 0).then(ch / avg).otherwise(None).alias("roc_ratio"))
        .with_columns(
            (
                (pl.col("roc_ratio") >= wave_ratio)
                & (ch >= min_oi_move - _EPS)
                & (pl.col("oi_usd_24h_ago") >= min_oi_usd)
            )
            .fill_null(False)
            .alias("wave"),
            ((pl.col("oi_change_4h") >= spike_threshold) & (pl.col("oi_usd_4h_ago") >= min_oi_usd))
            .fill_null(False)
            .alias("spike"),
            ((ch > alert_threshold) & (pl.col("oi_usd_24h_ago") >= min_oi_usd))
            .fill_null(False)
            .alias("alert_24h"),
        )
        .drop("oi_usd_24h_ago", "oi_usd_4h_ago", "_gts")
    )
    if has_px:
        quadrant = price_oi_quadrant(
            pl.col("price_change_24h"),
            pl.col("oi_change_24h"),
            min_price_move=min_price_move,
            min_oi_move=min_oi_move,
        )
        lazy = lazy.with_columns(quadrant.alias("quadrant"))
    return lazy.collect()


def oi_divergence(
    frame: pl.DataFrame,
    *,
    window_h: float = 72.0,
    min_oi_drop: float = 0.08,
    moderate_ratio: float = 0.5,
    strong_ratio: float = 1.0,
    lag_tolerance_h: float = 2.0,
    min_price_move: float = MIN_PRICE_MOVE_DIVERGENCE,
    min_oi_usd: float = MIN_OI_USD,
) -> pl.DataFrame:
    """OI divergence: price at a new extreme while OI has declined, with the ratio Y/X.

    Playbook: "If price rises X% while OI falls Y%, the divergence ratio is Y/X" (SOL: 16% and 12%
    give 0.75); "ratios above 0.5 ... win rate above 60%. Ratios above 1.0 ... above 70%"; "The
    divergence needs to be sustained (at least 3-5 days of OI decline while price continues in its
    direction) and significant (OI declining by at least 8-10% during the period)".

    Rules over the trailing ``window_h`` (72h = the playbook's 3 days, the lower end of 3-5):

    - ``price_change_w`` = close[t] / close[t - w] - 1; ``oi_change_w`` likewise (as-of values,
      at most ``lag_tolerance_h`` stale);
    - ``divergence_ratio`` = -oi_change_w / |price_change_w| (null when price did not move);
      positive when OI fell;
    - guards: ``sustained`` = OI never rose above its value at t - w during (t - w, t];
      ``significant`` = oi_change_w <= -min_oi_drop; price at a window extreme (close[t] is the
      highest close of (t - w, t] for bearish, the lowest for bullish); ``price_moved`` =
      |price_change_w| >= ``min_price_move`` (2%: a price that barely moved makes no new
      extreme, and the ratio Y/X of a tiny X is meaningless) and the OI at t - w is at least
      ``min_oi_usd`` ($1M);
    - ``oi_divergence`` = ``bearish`` (price up) or ``bullish`` (price down) when the guards hold
      and the ratio >= ``moderate_ratio``; ``oi_divergence_grade`` = strong (ratio >=
      ``strong_ratio``) or moderate.

    Args:
        frame: rows with venue, instrument, ts, close_px, oi_usd.

    Returns:
        The input sorted by venue, instrument, ts, plus ``price_change_w oi_change_w
        divergence_ratio sustained significant price_moved quadrant oi_divergence
        oi_divergence_grade`` (``quadrant`` classifies the window's price and OI changes, with
        ``min_price_move`` and ``min_oi_drop`` as its guards).
    """
    require_columns(frame, ("venue", "instrument", "ts", "close_px", "oi_usd"), "oi_divergence")
    w = hours(window_h)
    base = lagged(
        sort_series(frame, _SERIES).with_columns(stitched_time(_SERIES).alias("_gts")),
        keys=_SERIES,
        columns=["close_px", "oi_usd"],
        lag_h=window_h,
        tolerance_h=lag_tolerance_h,
        suffix="_start",
        gts="_gts",
    )
    pc, oc = pl.col("price_change_w"), pl.col("oi_change_w")
    ratio = pl.col("divergence_ratio")
    out = (
        base.lazy()
        .with_columns(
            (pl.col("close_px") / pl.col("close_px_start") - 1.0).alias("price_change_w"),
            (pl.col("oi_usd") / pl.col("oi_usd_start") - 1.0).alias("oi_change_w"),
            pl.col("oi_usd").rolling_max_by("_gts", w).alias("_oi_max"),
            pl.col("close_px").rolling_max_by("_gts", w).alias("_px_max"),
            pl.col("close_px").rolling_min_by("_gts", w).alias("_px_min"),
        )
        .with_columns(
            pl.when(pc != 0).then(-oc / pc.abs()).otherwise(None).alias("divergence_ratio"),
            (pl.col("_oi_max") <= pl.col("oi_usd_start")).fill_null(False).alias("sustained"),
            (oc <= -min_oi_drop + _EPS).fill_null(False).alias("significant"),
            ((pc.abs() >= min_price_move - _EPS) & (pl.col("oi_usd_start") >= min_oi_usd))
            .fill_null(False)
            .alias("price_moved"),
            price_oi_quadrant(pc, oc, min_price_move=min_price_move, min_oi_move=min_oi_drop).alias(
                "quadrant"
            ),
        )
    )
    ok = (
        pl.col("sustained")
        & pl.col("significant")
        & pl.col("price_moved")
        & (ratio >= moderate_ratio).fill_null(False)
    )
    bearish = ok & (pc > 0) & (pl.col("close_px") >= pl.col("_px_max"))
    bullish = ok & (pc < 0) & (pl.col("close_px") <= pl.col("_px_min"))
    label = (
        pl.when(bearish)
        .then(pl.lit("bearish", DIVERGENCE))
        .when(bullish)
        .then(pl.lit("bullish", DIVERGENCE))
    )
    return (
        out.with_columns(
            label.otherwise(None).alias("oi_divergence"),
            pl.when(bearish | bullish)
            .then(
                pl.when(ratio >= strong_ratio)
                .then(pl.lit("strong", GRADE))
                .otherwise(pl.lit("moderate", GRADE))
            )
            .otherwise(None)
            .alias("oi_divergence_grade"),
        )
        .drop("close_px_start", "oi_usd_start", "_oi_max", "_px_max", "_px_min", "_gts")
        .collect()
    )


def market_oi_divergence(
    divergences: pl.DataFrame, *, min_assets: int = 2, grid_h: float = 1.0
) -> pl.DataFrame:
    """The market-wide form: how many assets show the same OI divergence at once.

    Playbook: "Check if the OI divergence is occurring across multiple assets (BTC, ETH, SOL) or
    only on one. Market-wide divergences are stronger than single-asset divergences".

    Args:
        divergences: output of :func:`oi_divergence` for several assets.
        min_assets: assets that must diverge the same way for ``market_wide``.
        grid_h: period to align timestamps of different assets on, hours.

    Returns:
        One row per period with any divergence: ``period n_assets bearish_assets bullish_assets
        market_wide`` (market_wide = bearish | bullish | null; bearish wins a tie).
    """
    per = divergences.filter(pl.col("oi_divergence").is_not_null()).select(
        pl.col("ts").dt.truncate(f"{int(grid_h * 3600)}s").alias("period"),
        asset_expr().alias("asset"),
        "oi_divergence",
    )
    agg = per.group_by("period").agg(
        pl.col("asset").n_unique().alias("n_assets"),
        pl.col("asset")
        .filter(pl.col("oi_divergence") == "bearish")
        .unique()
        .sort()
        .alias("bearish_assets"),
        pl.col("asset")
        .filter(pl.col("oi_divergence") == "bullish")
        .unique()
        .sort()
        .alias("bullish_assets"),
    )
    nb, nu = pl.col("bearish_assets").list.len(), pl.col("bullish_assets").list.len()
    return agg.with_columns(
        pl.when((nb >= min_assets) & (nb >= nu))
        .then(pl.lit("bearish"))
        .when(nu >= min_assets)
        .then(pl.lit("bullish"))
        .otherwise(None)
        .alias("market_wide"),
        pl.col("bearish_assets").list.join(","),
        pl.col("bullish_assets").list.join(","),
    ).sort("period")


def venue_oi_share(
    oi: pl.DataFrame,
    *,
    horizon_h: float = 168.0,
    migration_threshold: float = 0.05,
    grid_h: float = 1.0,
) -> pl.DataFrame:
    """Each venue's share of an asset's OI, concentration, share change and migration.

    Playbook: "Track which exchange holds the largest share of total OI ... When one exchange's
    OI share increases significantly (e.g., Bybit going from 22% to 30% of total OI)"; "When OI
    declines on one exchange but rises on another, traders are migrating their positions".

    Rules: per (asset, venue, period of ``grid_h`` hours) the venue's OI is the sum over its
    instruments of their last ``oi_usd`` in the period; ``share`` = venue OI / asset OI; ``hhi`` =
    sum of squared shares (1 = one venue holds everything); ``share_change``, ``hhi_change``
    (concentration change) and ``venue_oi_change`` compare with the same period ``horizon_h``
    earlier; ``migration`` (per
    asset and period) = some venue's OI fell by >= ``migration_threshold`` while another's rose
    by >= it.

    Returns:
        ``asset venue period oi_usd share hhi top_venue share_change venue_oi_change migration
        hhi_change``
        sorted by asset, period, venue.
    """
    require_columns(oi, ("venue", "instrument", "ts", "oi_usd"), "venue_oi_share")
    grid = f"{int(grid_h * 3600)}s"
    per = (
        oi.sort("ts")
        .group_by("venue", "instrument", pl.col("ts").dt.truncate(grid).alias("period"))
        .agg(pl.col("oi_usd").last())
        .group_by(asset_expr().alias("asset"), "venue", "period")
        .agg(pl.col("oi_usd").sum())
        .with_columns(
            (pl.col("oi_usd") / pl.col("oi_usd").sum().over("asset", "period")).alias("share")
        )
        .with_columns(
            (pl.col("share") ** 2).sum().over("asset", "period").alias("hhi"),
            pl.col("venue")
            .sort_by("share", descending=True)
            .first()
            .over("asset", "period")
            .alias("top_venue"),
        )
    )
    earlier = per.select(
        "asset",
        "venue",
        (pl.col("period") + hours(horizon_h)).alias("period"),
        pl.col("share").alias("_share0"),
        pl.col("oi_usd").alias("_oi0"),
    )
    out = per.join(earlier, on=["asset", "venue", "period"], how="left").with_columns(
        (pl.col("share") - pl.col("_share0")).alias("share_change"),
        (pl.col("oi_usd") / pl.col("_oi0") - 1.0).alias("venue_oi_change"),
    )
    ch = pl.col("venue_oi_change")
    migration = ((ch <= -migration_threshold).any() & (ch >= migration_threshold).any()).over(
        "asset", "period"
    )
    hhi_then = (
        per.select("asset", (pl.col("period") + hours(horizon_h)).alias("period"), "hhi")
        .unique(subset=["asset", "period"])
        .rename({"hhi": "_hhi0"})
    )
    return (
        out.with_columns(migration.alias("migration"))
        .join(hhi_then, on=["asset", "period"], how="left")
        .with_columns((pl.col("hhi") - pl.col("_hhi0")).alias("hhi_change"))
        .drop("_share0", "_oi0", "_hhi0")
        .sort("asset", "period", "venue")
    )


def oi_percentile(oi: pl.DataFrame, *, window_h: float = 720.0) -> pl.DataFrame:
    """OI percentile over the trailing 30 days (playbook: "OI elevated at 90th percentile vs. the
    30-day average").

    Returns:
        The input sorted by venue, instrument, ts plus ``oi_percentile``: the share of the
        window's ``oi_usd`` values <= the current one, in (0, 1].
    """
    require_columns(oi, ("venue", "instrument", "ts", "oi_usd"), "oi_percentile")
    return sort_series(oi, _SERIES).with_columns(
        rolling_percentile(pl.col("oi_usd"), "ts", window_h, _SERIES).alias("oi_percentile")
    )
