"""Funding-rate readings of the playbook, as pure polars functions.

Every function here is pure: frames or expressions in, new frames or expressions out, no I/O, no
clock. Rates are fractions per funding interval (0.0005 = 0.05%), intervals are in hours.

Input frames use the ``funding`` table's columns (``perpscope.domain.schema``): ``venue``,
``instrument``, ``ts`` (UTC), ``rate``, ``interval_h``, ``mark_px``. The asset of an instrument is
the base of its canonical id (``BTC`` for ``BTC-USDT-PERP`` and ``BTC-USD-PERP``).

Playbook L20: "small differences are why funding rates can vary across exchanges for the same
asset, and why cross-exchange funding comparison is a valuable part of your analysis"; L51: "At
+0.05% per 8 hours (3 periods per day), the annualized cost to hold a long position is
approximately 54.75%". Intervals differ by venue (1h, 4h, 8h; DESIGN.md), so rates are compared
per 8h-equivalent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, overload

import polars as pl

from perpscope.analytics._rolling import require_columns, sort_series

__all__ = [
    "HOURS_PER_YEAR",
    "MIN_WEIGHT",
    "CrossVenueFunding",
    "accumulated_funding",
    "aggregate_funding",
    "annualized_rate",
    "asset_expr",
    "cross_venue_funding",
    "funding_arbitrage",
    "funding_carry",
    "funding_payment",
    "latest_funding",
    "normalised_funding",
    "predicted_funding",
    "rate_8h_equivalent",
]

HOURS_PER_YEAR: Final = 8760.0
"""Hours in a (365-day) year, the playbook's annualisation base (3 settlements x 365 days x 8h)."""

_FUNDING_COLUMNS: Final = ("venue", "instrument", "ts", "rate", "interval_h")

MIN_WEIGHT: Final = 1e-300
"""Smallest usable weight: below it (and for null, NaN, infinite or negative weights) a row is
left out of a weighted mean. It keeps subnormal numbers, which CPUs may flush to zero, out of
the sums."""


@overload
def annualized_rate(rate: float, interval_h: float) -> float: ...
@overload
def annualized_rate(rate: pl.Expr, interval_h: pl.Expr | float) -> pl.Expr: ...
@overload
def annualized_rate(rate: pl.Expr | float, interval_h: pl.Expr) -> pl.Expr: ...
def annualized_rate(rate: pl.Expr | float, interval_h: pl.Expr | float) -> pl.Expr | float:
    """Annualise a funding rate: ``rate * 8760 / interval_h`` (simple, not compounded).

    Playbook L51: "At +0.05% per 8 hours (3 periods per day), the annualized cost to hold a long
    position is approximately 54.75%" (0.0005 x 3 x 365). Works on floats and on polars
    expressions (either argument may be an expression; the result is then an expression).

    Args:
        rate: funding rate per interval, a fraction.
        interval_h: the funding interval in hours (1, 4, 8 ...).

    Returns:
        The annual rate as a fraction (0.5475 for 0.0005 per 8h).
    """
    return rate * HOURS_PER_YEAR / interval_h


@overload
def rate_8h_equivalent(rate: float, interval_h: float) -> float: ...
@overload
def rate_8h_equivalent(rate: pl.Expr, interval_h: pl.Expr | float) -> pl.Expr: ...
@overload
def rate_8h_equivalent(rate: pl.Expr | float, interval_h: pl.Expr) -> pl.Expr: ...
def rate_8h_equivalent(rate: pl.Expr | float, interval_h: pl.Expr | float) -> pl.Expr | float:
    """Normalise a funding rate to its 8-hour equivalent: ``rate * 8 / interval_h``.

    The playbook compares funding "across exchanges" (L20, L45) in its 8-hour terms; venues
    settle every 1, 4 or 8 hours (DESIGN.md), so perpscope compares every rate per 8 hours.
    A +0.01% 1h rate is +0.08% per 8h; a +0.02% 4h rate is +0.04% per 8h.

    Args:
        rate: funding rate per interval, a fraction.
        interval_h: the funding interval in hours.

    Returns:
        The rate per 8 hours, a fraction.
    """
    return rate * 8.0 / interval_h


def asset_expr(instrument: str = "instrument") -> pl.Expr:
    """The asset (base) of a canonical instrument id column: ``BTC`` for ``BTC-USDT-PERP``."""
    return pl.col(instrument).str.split_exact("-", 1).struct.field("field_0")


def latest_funding(funding: pl.DataFrame) -> pl.DataFrame:
    """The latest settlement per (venue, instrument).

    Args:
        funding: rows with the ``funding`` table columns (venue, instrument, ts, rate,
            interval_h; mark_px optional and kept when present).

    Returns:
        One row per (venue, instrument): the row with the greatest ``ts``, same columns as the
        input, sorted by venue and instrument.
    """
    require_columns(funding, _FUNDING_COLUMNS, "latest_funding")
    return (
        funding.sort("ts")
        .group_by("venue", "instrument", maintain_order=True)
        .last()
        .sort("venue", "instrument")
        .select(funding.columns)
    )


@dataclass(frozen=True, slots=True)
class CrossVenueFunding:
    """Funding compared across venues at one moment (see :func:`cross_venue_funding`).

    Attributes:
        venues: one row per (venue, instrument): ``asset venue instrument ts rate interval_h
            rate_8h annualized weight``, sorted by asset then ``rate_8h`` descending.
        assets: one row per asset: ``asset n_venues weighting weight_coverage agg_rate_8h
            agg_annualized spread_8h spread_annualized high_venue high_instrument high_rate_8h
            low_venue low_instrument low_rate_8h``.
    """

    venues: pl.DataFrame
    assets: pl.DataFrame


_SPREAD_COLUMNS = (
    "spread_8h",
    "high_venue",
    "high_instrument",
    "high_rate_8h",
    "low_venue",
    "low_instrument",
    "low_rate_8h",
)


def cross_venue_funding(
    latest: pl.DataFrame,
    oi_usd: pl.DataFrame | None = None,
    *,
    weight_column: str = "oi_usd",
) -> CrossVenueFunding:
    """Compare the latest funding across venues, per asset, on an 8h-equivalent basis.

    Playbook L166: "Rather than simply averaging funding rates across exchanges, weight each
    exchange's funding rate by its share of total OI"; L45: "If funding rates are extreme on
    Binance, Bybit, and OKX simultaneously, the signal is stronger". Rates are normalised to 8h
    before comparison.

    Per asset (the base of the instrument id, so ``BTC-USDT-PERP`` and ``BTC-USD-PERP`` pool
    together):

    - ``agg_rate_8h`` = sum(w_i * rate_8h_i) / sum(w_i) over the rows with a usable weight;
      ``agg_annualized`` = ``agg_rate_8h * 8760 / 8``.
    - Weights: ``oi_usd[weight_column]`` joined on (venue, instrument). With ``oi_usd=None`` every
      row weighs 1 (``weighting = "equal"``). A row whose weight is null, missing from ``oi_usd``,
      non-finite or below :data:`MIN_WEIGHT` (1e-300, i.e. not positive) is **left out of the
      weighted mean** (it still appears in ``venues`` and
      in the spread); ``weight_coverage`` is the share of the asset's rows that had a usable
      weight. When no row of an asset has a usable weight the asset falls back to equal weights
      and ``weighting`` says ``"equal"`` (otherwise ``"oi"``, or the name of ``weight_column``).
    - ``spread_8h`` = max(rate_8h) - min(rate_8h) across the asset's rows, with the venue and
      instrument of each end (ties: the high end is the first row by venue then instrument at
      the maximum, the low end the last at the minimum, so the two ends are never the same
      row); null, with null ends, when the asset has one row.
      ``spread_annualized`` = ``spread_8h * 8760 / 8``, the carry of being short the high
      venue and long the low venue, before fees.

    Args:
        latest: one row per (venue, instrument) with venue, instrument, ts, rate, interval_h (e.g.
            the output of :func:`latest_funding`).
        oi_usd: optional frame with venue, instrument and ``weight_column`` (one-sided OI in USD).
            Pass a frame of 24h volume with ``weight_column="volume_usd"`` for volume weighting.
        weight_column: the weight column of ``oi_usd``.

    Returns:
        A :class:`CrossVenueFunding` with the per-venue and the per-asset frames.
    """
    require_columns(latest, _FUNDING_COLUMNS, "cross_venue_funding")
    label = "oi" if weight_column == "oi_usd" else weight_column.removesuffix("_usd")
    venues = latest.select(
        asset_expr().alias("asset"),
        "venue",
        "instrument",
        "ts",
        "rate",
        "interval_h",
        rate_8h_equivalent(pl.col("rate"), pl.col("interval_h")).alias("rate_8h"),
        annualized_rate(pl.col("rate"), pl.col("interval_h")).alias("annualized"),
    )
    if oi_usd is None:
        venues = venues.with_columns(pl.lit(1.0).alias("weight"))
        label = "equal"
    else:
        require_columns(
            oi_usd, ("venue", "instrument", weight_column), "cross_venue_funding weights"
        )
        w = oi_usd.select(
            "venue", "instrument", pl.col(weight_column).cast(pl.Float64).alias("weight")
        ).unique(subset=["venue", "instrument"], keep="last")
        venues = venues.join(w, on=["venue", "instrument"], how="left")
    usable = pl.col("weight").is_finite() & (pl.col("weight") >= MIN_WEIGHT)
    w_ok = pl.when(usable).then(pl.col("weight")).otherwise(None)
    venues = venues.with_columns(pl.when(usable).then(pl.col("weight")).alias("weight"))
    ordered = venues.sort(["asset", "venue", "instrument"])
    assets = (
        ordered.group_by("asset", maintain_order=True)
        .agg(
            pl.len().alias("n_venues"),
            (w_ok.is_not_null().sum() / pl.len()).alias("weight_coverage"),
            # weights scaled by the asset's largest, so tiny weights cannot underflow to 0/0
            ((w_ok / w_ok.max() * pl.col("rate_8h")).sum() / (w_ok / w_ok.max()).sum()).alias(
                "_wmean"
            ),
            pl.col("rate_8h").mean().alias("_mean"),
            (pl.col("rate_8h").max() - pl.col("rate_8h").min()).alias("spread_8h"),
            pl.col("venue").get(pl.col("rate_8h").arg_max()).alias("high_venue"),
            pl.col("instrument").get(pl.col("rate_8h").arg_max()).alias("high_instrument"),
            pl.col("rate_8h").max().alias("high_rate_8h"),
            # the low end is the *last* row at the minimum, so a tie never pairs a row with itself
            pl.col("venue").reverse().get(pl.col("rate_8h").reverse().arg_min()).alias("low_venue"),
            pl.col("instrument")
            .reverse()
            .get(pl.col("rate_8h").reverse().arg_min())
            .alias("low_instrument"),
            pl.col("rate_8h").min().alias("low_rate_8h"),
        )
        .with_columns(
            pl.when(pl.col("weight_coverage") > 0)
            .then(pl.lit(label))
            .otherwise(pl.lit("equal"))
            .alias("weighting"),
            pl.when(pl.col("weight_coverage") > 0)
            .then(pl.col("_wmean"))
            .otherwise(pl.col("_mean"))
            .alias("agg_rate_8h"),
        )
        .with_columns(
            # one row has no cross-venue spread: no ends, no spread (never a row against itself)
            *[
                pl.when(pl.col("n_venues") > 1).then(pl.col(c)).otherwise(None).alias(c)
                for c in _SPREAD_COLUMNS
            ]
        )
        .with_columns(
            annualized_rate(pl.col("agg_rate_8h"), 8.0).alias("agg_annualized"),
            annualized_rate(pl.col("spread_8h"), 8.0).alias("spread_annualized"),
        )
        .select(
            "asset",
            "n_venues",
            "weighting",
            "weight_coverage",
            "agg_rate_8h",
            "agg_annualized",
            "spread_8h",
            "spread_annualized",
            "high_venue",
            "high_instrument",
            "high_rate_8h",
            "low_venue",
            "low_instrument",
            "low_rate_8h",
        )
        .sort("asset")
    )
    venues = venues.sort(
        ["asset", "rate_8h", "venue", "instrument"], descending=[False, True, False, False]
    )
    return CrossVenueFunding(venues=venues, assets=assets)


def normalised_funding(funding: pl.DataFrame) -> pl.DataFrame:
    """Add ``rate_8h`` and ``annualized`` to funding rows, sorted by series and time.

    Args:
        funding: rows with venue, instrument, ts, rate, interval_h.

    Returns:
        The input columns plus ``rate_8h`` (8h-equivalent) and ``annualized``, sorted by venue,
        instrument, ts (a no-op when already sorted).
    """
    require_columns(funding, _FUNDING_COLUMNS, "normalised_funding")
    return sort_series(funding, ["venue", "instrument"]).with_columns(
        rate_8h_equivalent(pl.col("rate"), pl.col("interval_h")).alias("rate_8h"),
        annualized_rate(pl.col("rate"), pl.col("interval_h")).alias("annualized"),
    )


@overload
def predicted_funding(
    premium_index: float, interest_rate: float = 0.0001, clamp: float = 0.0005
) -> float: ...
@overload
def predicted_funding(
    premium_index: pl.Expr, interest_rate: float = 0.0001, clamp: float = 0.0005
) -> pl.Expr: ...
def predicted_funding(
    premium_index: pl.Expr | float, interest_rate: float = 0.0001, clamp: float = 0.0005
) -> pl.Expr | float:
    """The playbook's funding formula: premium + clamp(interest - premium, -clamp, +clamp).

    Playbook: "Funding Rate = Premium Index + clamp(Interest Rate - Premium Index, -0.05%, 0.05%)";
    "The interest rate component is typically fixed at 0.01% per 8-hour period". Venue caps on the
    final rate are not applied. All three are fractions per 8 hours.
    """
    if isinstance(premium_index, pl.Expr):
        return premium_index + (interest_rate - premium_index).clip(-clamp, clamp)
    return premium_index + min(max(interest_rate - premium_index, -clamp), clamp)


def funding_payment(position_usd: float, rate: float) -> float:
    """Funding paid per settlement by a position: ``position_usd x rate``.

    Playbook L21: "Funding Payment = Position Size × Funding Rate" ($100,000 long at +0.05% pays
    $50).
    ``position_usd`` is signed (long > 0, short < 0); the result is what the holder *pays*
    (negative = receives).
    """
    return position_usd * rate


def funding_carry(position_usd: float, rate: float, interval_h: float, holding_h: float) -> float:
    """Funding paid over ``holding_h`` hours at a constant rate (no compounding).

    Playbook: "$100,000 BTC long ... +0.05% ... $50 every 8 hours. Over a week, that is $1,050"
    (168 / 8 = 21 settlements). Partial intervals count pro rata.
    """
    return funding_payment(position_usd, rate) * holding_h / interval_h


def funding_arbitrage(
    latest: pl.DataFrame, *, min_spread_8h: float = 0.0, alert_spread_8h: float = 0.0003
) -> pl.DataFrame:
    """Funding-arbitrage screener: venue pairs of an asset ranked by 8h-equivalent spread.

    Playbook: OI migration "can create temporary dislocations in funding rates between exchanges
    that are exploitable via cross-exchange arbitrage"; "Cross-exchange funding spread alerts:
    Trigger when the funding rate differential between two major exchanges exceeds 0.03%".

    Each unordered pair of (venue, instrument) rows of one asset on different venues appears once,
    oriented so the trade is short the higher-rate leg and long the lower one.

    Args:
        latest: one row per (venue, instrument) with venue, instrument, ts, rate, interval_h.
        min_spread_8h: pairs with a smaller spread are dropped.
        alert_spread_8h: ``alert`` is true when the spread is >= this (0.03%).

    Returns:
        ``asset short_venue short_instrument short_rate_8h long_venue long_instrument
        long_rate_8h spread_8h carry_annualized alert`` sorted by spread, widest first;
        ``carry_annualized`` = spread_8h x 8760 / 8, before fees and price risk.
    """
    require_columns(latest, _FUNDING_COLUMNS, "funding_arbitrage")
    legs = latest.select(
        asset_expr().alias("asset"),
        "venue",
        "instrument",
        rate_8h_equivalent(pl.col("rate"), pl.col("interval_h")).alias("rate_8h"),
    )
    pairs = legs.join(legs, on="asset", suffix="_b").filter(
        (pl.col("venue") != pl.col("venue_b"))
        & (
            (pl.col("rate_8h") > pl.col("rate_8h_b"))
            | ((pl.col("rate_8h") == pl.col("rate_8h_b")) & (pl.col("venue") < pl.col("venue_b")))
        )
    )
    return (
        pairs.select(
            "asset",
            pl.col("venue").alias("short_venue"),
            pl.col("instrument").alias("short_instrument"),
            pl.col("rate_8h").alias("short_rate_8h"),
            pl.col("venue_b").alias("long_venue"),
            pl.col("instrument_b").alias("long_instrument"),
            pl.col("rate_8h_b").alias("long_rate_8h"),
            (pl.col("rate_8h") - pl.col("rate_8h_b")).alias("spread_8h"),
        )
        .filter(pl.col("spread_8h") >= min_spread_8h)
        .with_columns(
            annualized_rate(pl.col("spread_8h"), 8.0).alias("carry_annualized"),
            (pl.col("spread_8h") >= alert_spread_8h - 1e-12).alias("alert"),
        )
        .sort(
            ["spread_8h", "asset", "short_venue", "long_venue"],
            descending=[True, False, False, False],
        )
    )


def aggregate_funding(
    frame: pl.DataFrame, *, weight_column: str | None = "oi_usd", grid_h: float | None = None
) -> pl.DataFrame:
    """Cross-venue aggregate funding per asset over time, OI-weighted (or equal-weighted).

    Playbook: "weight each exchange's funding rate by its share of total OI. This gives you a more
    accurate picture of what the 'average' leveraged trader is actually paying."

    Rule: per (asset, time) the aggregate is sum(w x rate_8h) / sum(w) over the rows with a
    finite positive weight; when no row of that (asset, time) has one, the equal-weight mean. Time
    is ``ts`` itself, or ``ts`` floored to ``grid_h`` hours when given (so venues that settle at
    different times within a period pool together).

    Args:
        frame: rows with venue, instrument, ts, rate, interval_h and, unless ``weight_column`` is
            None, the weight column (``oi_usd``, or e.g. ``volume_usd`` for volume weighting).
        weight_column: the weight column, or None for equal weights.
        grid_h: period to pool settlements on, hours, or None for exact timestamps.

    Returns:
        ``asset ts n_venues agg_rate_8h agg_annualized`` sorted by asset and ts.
    """
    require_columns(frame, _FUNDING_COLUMNS, "aggregate_funding")
    t = pl.col("ts") if grid_h is None else pl.col("ts").dt.truncate(f"{int(grid_h * 3600)}s")
    r8 = rate_8h_equivalent(pl.col("rate"), pl.col("interval_h"))
    w = pl.lit(1.0) if weight_column is None else pl.col(weight_column).cast(pl.Float64)
    usable = pl.when(w.is_finite() & (w >= MIN_WEIGHT)).then(w).otherwise(0.0)
    # scaled by the largest weight so sums of tiny weights cannot underflow
    w_ok = usable / pl.when(usable.max() > 0).then(usable.max()).otherwise(1.0)
    # Group on integer keys (an asset code per distinct instrument, the time's integer value):
    # hashing them is several times cheaper than hashing the strings of every row.
    names = frame.select(pl.col("instrument").unique().sort())
    codes = names.with_columns(asset_expr().alias("asset")).with_columns(
        pl.col("asset").rank("dense").cast(pl.Int32).alias("_code")
    )
    assets = codes.select("_code", "asset").unique("_code")
    return (
        frame.lazy()
        .select(
            pl.col("instrument")
            .replace_strict(codes["instrument"], codes["_code"], return_dtype=pl.Int32)
            .alias("_code"),
            t.alias("ts"),
            r8.alias("_r8"),
            w_ok.alias("_w"),
            (w_ok * r8).alias("_wr"),
        )
        .group_by("_code", "ts")
        .agg(
            pl.len().alias("n_venues"),
            pl.col("_wr").sum(),
            pl.col("_w").sum(),
            pl.col("_r8").mean().alias("_m"),
        )
        .join(assets.lazy(), on="_code")
        .with_columns(
            pl.when(pl.col("_w") > 0)
            .then(pl.col("_wr") / pl.col("_w"))
            .otherwise(pl.col("_m"))
            .alias("agg_rate_8h")
        )
        .with_columns(annualized_rate(pl.col("agg_rate_8h"), 8.0).alias("agg_annualized"))
        .select("asset", "ts", "n_venues", "agg_rate_8h", "agg_annualized")
        .sort("asset", "ts")
        .collect()
    )


def accumulated_funding(funding: pl.DataFrame) -> pl.DataFrame:
    """Funding accumulated per series: the running sum of ``rate`` from the frame's first row.

    Playbook L21: a $100,000 long at +0.05% pays $1,050 over a week; ``cum_rate`` is that sum
    as a fraction of a constant notional (0.0105 after 21 such settlements). Positive = longs
    paid, negative = longs received. Filter the frame to start where the sum should start.

    Returns:
        venue, instrument, ts, rate and ``cum_rate``, sorted by series and time.
    """
    require_columns(funding, _FUNDING_COLUMNS, "accumulated_funding")
    return (
        sort_series(funding, ["venue", "instrument"])
        .select("venue", "instrument", "ts", "rate")
        .with_columns(pl.col("rate").cum_sum().over("venue", "instrument").alias("cum_rate"))
    )
