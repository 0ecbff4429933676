"""Cumulative volume delta (CVD) and CVD-price divergence, as pure polars functions.

Playbook: "Cumulative Volume Delta (CVD) measures the net difference between aggressive buying and
aggressive selling over time." Volumes are in base units. Perp and spot are kept apart: each
(venue, instrument) is its own series, and ``market`` says which kind it is.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from perpscope.analytics._rolling import prior_extreme_divergence, require_columns, sort_series

__all__ = [
    "MIN_HIGHER_HIGH",
    "cumulative_volume_delta",
    "cvd_price_divergence",
    "delta_from_candles",
    "delta_from_taker_volume",
    "delta_from_trades",
    "market_expr",
]

_SERIES: Final = ["venue", "instrument"]

MIN_HIGHER_HIGH: Final = 0.005
"""Guard of the divergences at price extremes: a new high at least 0.5% above the prior one."""


def market_expr(instrument: str = "instrument") -> pl.Expr:
    """``perp``, ``future``, ``option`` or ``spot`` from a canonical instrument id column."""
    parts = pl.col(instrument).str.split("-").list.len()
    return (
        pl.when(pl.col(instrument).str.ends_with("-PERP"))
        .then(pl.lit("perp"))
        .when(parts == 3)
        .then(pl.lit("future"))
        .when(parts >= 5)
        .then(pl.lit("option"))
        .otherwise(pl.lit("spot"))
    )


def delta_from_candles(ohlcv: pl.DataFrame) -> pl.DataFrame:
    """Volume delta per bar from candles with taker-buy volume.

    ``delta_base`` = taker buy - taker sell = ``2 x taker_buy_volume - volume`` (taker sell is
    the rest of the bar's volume). Bars without taker-buy volume give a null delta.

    Args:
        ohlcv: rows with venue, instrument, ts, volume, taker_buy_volume (and c, kept as
            ``close_px`` when present).

    Returns:
        ``venue instrument market ts delta_base`` (+ ``close_px``), sorted by series and ts.
    """
    require_columns(
        ohlcv, ("venue", "instrument", "ts", "volume", "taker_buy_volume"), "delta_from_candles"
    )
    extra = [pl.col("c").alias("close_px")] if "c" in ohlcv.columns else []
    return ohlcv.select(
        "venue",
        "instrument",
        market_expr().alias("market"),
        "ts",
        (2.0 * pl.col("taker_buy_volume") - pl.col("volume")).alias("delta_base"),
        *extra,
    ).sort(*_SERIES, "ts")


def delta_from_taker_volume(taker: pl.DataFrame) -> pl.DataFrame:
    """Volume delta per period from the ``taker_volume`` table: buy minus sell, base units.

    Returns:
        ``venue instrument market ts delta_base`` sorted by series and ts.
    """
    require_columns(
        taker,
        ("venue", "instrument", "ts", "buy_volume_base", "sell_volume_base"),
        "delta_from_taker_volume",
    )
    return taker.select(
        "venue",
        "instrument",
        market_expr().alias("market"),
        "ts",
        (pl.col("buy_volume_base") - pl.col("sell_volume_base")).alias("delta_base"),
    ).sort(*_SERIES, "ts")


def delta_from_trades(trades: pl.DataFrame, *, bar: str = "1h") -> pl.DataFrame:
    """Volume delta per bar from individual trades (the most exact source when present).

    A trade whose taker ``side`` is ``buy`` adds ``qty_base``, ``sell`` subtracts it; any other
    side raises ``ValueError`` (never silently dropped). Bars are ``ts`` floored to ``bar``.

    Args:
        trades: rows with venue, instrument, ts, side, qty_base.
        bar: polars duration string of the bar (``1m``, ``1h``).

    Returns:
        ``venue instrument market ts delta_base`` sorted by series and ts.
    """
    require_columns(trades, ("venue", "instrument", "ts", "side", "qty_base"), "delta_from_trades")
    bad = trades.filter(~pl.col("side").is_in(["buy", "sell"]))
    if bad.height:
        raise ValueError(
            f"delta_from_trades: side must be buy or sell, got {bad['side'].unique().to_list()}"
        )
    signed = (
        pl.when(pl.col("side") == "buy").then(pl.col("qty_base")).otherwise(-pl.col("qty_base"))
    )
    return (
        trades.group_by("venue", "instrument", pl.col("ts").dt.truncate(bar))
        .agg(signed.sum().alias("delta_base"))
        .select("venue", "instrument", market_expr().alias("market"), "ts", "delta_base")
        .sort(*_SERIES, "ts")
    )


def cumulative_volume_delta(delta: pl.DataFrame) -> pl.DataFrame:
    """CVD: the running sum of ``delta_base`` per (venue, instrument), from the frame's first bar.

    The level of a CVD depends on where it starts; only its changes and its highs and lows
    relative to each other carry meaning. Null deltas count as 0 (the CVD carries over).

    Returns:
        The input sorted by series and ts plus ``cvd_base``.
    """
    require_columns(delta, ("venue", "instrument", "ts", "delta_base"), "cumulative_volume_delta")
    return sort_series(delta, _SERIES).with_columns(
        pl.col("delta_base").fill_null(0.0).cum_sum().over(_SERIES).alias("cvd_base")
    )


def cvd_price_divergence(
    frame: pl.DataFrame,
    *,
    window_h: float = 168.0,
    min_gap_h: float = 24.0,
    min_price_move: float = MIN_HIGHER_HIGH,
) -> pl.DataFrame:
    """CVD-price divergence: a new price high with CVD below its value at the prior high.

    Playbook: "Bearish CVD divergence: Price makes a new high, but CVD makes a lower high";
    "Bullish CVD divergence: Price makes a new low, but CVD makes a higher low". Same rule as the
    funding-price divergence (``perpscope.analytics._rolling.prior_extreme_divergence``): a new
    ``window_h`` high (strictly above the prior window), compared with the latest earlier new
    high at least ``min_gap_h`` and at most ``window_h`` hours older.

    Args:
        frame: rows with venue, instrument, ts, close_px, cvd_base.
        window_h: the price-extreme window, hours (7 days).
        min_gap_h: the least separation of two highs, hours.
        min_price_move: guard: the new high must be at least this much above the prior high
            (the new low this much below the prior low), a fraction (0.5%).

    Returns:
        The input plus ``cdiv_new_high``, ``cdiv_new_low``, ``cdiv_prior_ts``,
        ``cdiv_prior_price``, ``cdiv_prior_value`` (CVD at the prior extreme) and
        ``cdiv_divergence`` (bearish | bullish | null).
    """
    require_columns(
        frame, ("venue", "instrument", "ts", "close_px", "cvd_base"), "cvd_price_divergence"
    )
    out = prior_extreme_divergence(
        sort_series(frame, _SERIES),
        keys=_SERIES,
        price="close_px",
        indicator="cvd_base",
        window_h=window_h,
        min_gap_h=min_gap_h,
        prefix="cdiv",
    )
    return _higher_high_guard(out, "cdiv", min_price_move)


def _higher_high_guard(out: pl.DataFrame, prefix: str, min_price_move: float) -> pl.DataFrame:
    """Drop ``{prefix}_divergence`` where the new extreme beats the prior one by less than
    ``min_price_move`` (a fraction; a gap exactly at the guard passes)."""
    gap = (pl.col("close_px") / pl.col(f"{prefix}_prior_price") - 1.0).abs()
    col = f"{prefix}_divergence"
    return out.with_columns(
        pl.when(gap >= min_price_move - 1e-12).then(pl.col(col)).otherwise(None).alias(col)
    )
