"""Market use-cases shared by the front ends: funding, open interest, basis and CVD from the store.

Each use-case reads the tables it needs through :meth:`perpscope.store.lake.Lake.read` (filtered by
venue, instrument or asset and time), runs the pure functions of ``perpscope.analytics`` and
returns frames or records ready to render. Nothing here computes a metric itself.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl

from perpscope.analytics.basis import basis_trade_carry, dated_basis, perp_basis
from perpscope.analytics.cvd import (
    cumulative_volume_delta,
    cvd_price_divergence,
    delta_from_candles,
    delta_from_taker_volume,
    market_expr,
)
from perpscope.analytics.funding import (
    accumulated_funding,
    asset_expr,
    funding_arbitrage,
    latest_funding,
    normalised_funding,
)
from perpscope.analytics.funding_series import (
    cross_venue_spread_history,
    extremes_per_year,
    funding_acceleration,
    funding_extremes,
    funding_price_divergence,
    funding_statistics,
)
from perpscope.analytics.longshort import long_short_compare, long_short_extremes
from perpscope.analytics.oi import (
    MIN_OI_MOVE_24H,
    MIN_OI_USD,
    MIN_PRICE_MOVE_24H,
    MIN_PRICE_MOVE_DIVERGENCE,
    QUADRANTS,
    market_oi_divergence,
    oi_changes,
    oi_divergence,
    oi_percentile,
    venue_oi_share,
)
from perpscope.domain.symbols import parse_instrument, parse_venue
from perpscope.errors import UsageError
from perpscope.services._market_read import need, read_table, resolve, within
from perpscope.services.filters import MarketQuery, check_timeframe
from perpscope.services.funding_table import FundingTable, funding_table_report
from perpscope.store.lake import Lake

__all__ = [
    "FundingTable",
    "MarketQuery",
    "basis_report",
    "cvd_report",
    "funding_arbitrage_report",
    "funding_divergence_report",
    "funding_extremes_report",
    "funding_history_report",
    "funding_spread_report",
    "funding_table_report",
    "long_short_report",
    "oi_divergence_report",
    "oi_summary_report",
]

_MAX_WINDOW_H = 720.0
"""Longest trailing window any report uses; reads start this much before ``since``."""


def _need(lake: Lake, table: str, q: MarketQuery, frame: pl.DataFrame, what: str) -> None:
    need(lake, table, q, frame, what)


def funding_history_report(
    lake: Lake,
    q: MarketQuery,
    *,
    zscore_window_h: float = 168.0,
    percentile_window_h: float = 720.0,
) -> pl.DataFrame:
    """Each settlement with its 8h rate, annualised rate, accumulated funding, z-score,
    percentile and acceleration, from ``since`` on. The windows reach back before ``since``;
    accumulated funding starts at ``since`` (or the first stored settlement)."""
    q = resolve(lake, "funding", q)
    funding = read_table(lake, "funding", q, lookback_h=max(zscore_window_h, percentile_window_h))
    _need(lake, "funding", q, within(funding, q), "funding")
    stats = funding_statistics(
        funding, zscore_window_h=zscore_window_h, percentile_window_h=percentile_window_h
    )
    acc = funding_acceleration(funding).select(
        "venue", "instrument", "ts", "change_8h", "accel_level", "parabolic"
    )
    shown = within(
        stats.drop("cum_rate").join(acc, on=["venue", "instrument", "ts"], how="left"), q
    )
    cum = accumulated_funding(shown).select("venue", "instrument", "ts", "cum_rate")
    return shown.join(cum, on=["venue", "instrument", "ts"]).select(
        "venue",
        "instrument",
        "ts",
        "rate",
        "interval_h",
        "rate_8h",
        "annualized",
        "cum_rate",
        "zscore",
        "percentile",
        "change_8h",
        "accel_level",
        "parabolic",
    )


def funding_extremes_report(
    lake: Lake,
    q: MarketQuery,
    *,
    threshold_8h: float = 0.0005,
    min_venues: int = 2,
    min_duration_h: float = 24.0,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Extreme-funding episodes (graded) and their count per asset, year and side."""
    q = resolve(lake, "funding", q)
    funding = read_table(lake, "funding", q)
    _need(lake, "funding", q, funding, "funding")
    if min_venues < 1:
        raise UsageError("--min-venues must be at least 1")
    episodes = funding_extremes(
        funding,
        threshold_8h=threshold_8h,
        min_venues=min_venues,
        min_duration_h=min_duration_h,
    )
    return episodes, extremes_per_year(episodes)


def funding_arbitrage_report(
    lake: Lake, q: MarketQuery, *, min_spread_8h: float = 0.0, alert_spread_8h: float = 0.0003
) -> pl.DataFrame:
    """Venue pairs per asset ranked by the latest 8h-equivalent funding spread."""
    q = resolve(lake, "funding", q)
    funding = read_table(lake, "funding", q)
    _need(lake, "funding", q, funding, "funding")
    return funding_arbitrage(
        latest_funding(funding), min_spread_8h=min_spread_8h, alert_spread_8h=alert_spread_8h
    )


def funding_spread_report(
    lake: Lake, q: MarketQuery, venue_a: str, venue_b: str, *, alert_spread_8h: float = 0.0003
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per-period spread of venue A minus venue B and its summary per asset and year."""
    try:
        a, b = parse_venue(venue_a.lower()), parse_venue(venue_b.lower())
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if a == b:
        raise UsageError(f"give two different venues (got {a} twice)")
    q = replace(resolve(lake, "funding", q), venues=(a, b))
    funding = read_table(lake, "funding", q)
    for v in (a, b):
        one = replace(q, venues=(v,))
        _need(lake, "funding", one, funding.filter(pl.col("venue") == v), "funding")
    history = cross_venue_spread_history(funding, a, b)
    if history.is_empty():
        raise UsageError(
            f"no funding period where both {a} and {b} report for these filters "
            "(their series do not overlap in time or instrument)"
        )
    s = pl.col("spread_8h")
    summary = (
        history.group_by("asset", pl.col("period").dt.year().alias("year"))
        .agg(
            pl.len().alias("periods"),
            s.mean().alias("mean_spread_8h"),
            s.abs().mean().alias("mean_abs_spread_8h"),
            s.std().alias("std_spread_8h"),
            s.min().alias("min_spread_8h"),
            s.max().alias("max_spread_8h"),
            (s.abs() >= alert_spread_8h - 1e-12).mean().alias("share_at_alert"),
            pl.corr("rate_8h_a", "rate_8h_b").alias("correlation"),
        )
        .sort("asset", "year")
    )
    return history, summary


def _timeframes_note(lake: Lake, q: MarketQuery, kind: str = "trade") -> str:
    """The note "; trade timeframes stored: 1h, 4h" for the query's series (or "")."""
    if not lake.has_table("ohlcv"):
        return "; the store has no candles"
    rows = read_table(lake, "ohlcv", replace(q, since=None, until=None))
    stored = sorted(rows.filter(pl.col("kind") == kind)["timeframe"].unique().to_list())
    return f"; {kind} timeframes stored: {', '.join(stored)}" if stored else ""


def _prices(lake: Lake, q: MarketQuery, timeframe: str, kind: str = "trade") -> pl.DataFrame:
    candles = read_table(lake, "ohlcv", q, lookback_h=_MAX_WINDOW_H)
    if candles.is_empty():
        return candles
    return candles.filter((pl.col("kind") == kind) & (pl.col("timeframe") == timeframe)).select(
        "venue", "instrument", "ts", pl.col("c").alias("close_px")
    )


def _oi_with_price(lake: Lake, q: MarketQuery, timeframe: str) -> pl.DataFrame:
    oi = read_table(lake, "open_interest", q, lookback_h=_MAX_WINDOW_H)
    _need(lake, "open_interest", q, within(oi, q), "open interest")
    oi = (
        oi.filter(pl.col("oi_usd").is_not_null())
        .sort("ts")
        .group_by("venue", "instrument", "ts")
        .agg(pl.col("oi_usd").last())  # one value per time when several sources overlap
        .sort("venue", "instrument", "ts")
    )
    prices = _prices(lake, q, timeframe)
    if prices.is_empty():
        return oi.with_columns(pl.lit(None, pl.Float64).alias("close_px"))
    return oi.join_asof(
        prices.sort("ts"),
        on="ts",
        by=["venue", "instrument"],
        strategy="backward",
        tolerance=timedelta(hours=2),
        check_sortedness=False,
    ).sort("venue", "instrument", "ts")


def oi_summary_report(
    lake: Lake,
    q: MarketQuery,
    *,
    timeframe: str = "1h",
    min_price_move: float = MIN_PRICE_MOVE_24H,
    min_oi_move: float = MIN_OI_MOVE_24H,
    min_oi_usd: float = MIN_OI_USD,
) -> pl.DataFrame:
    """Latest OI reading per series: level, 24h change, 24h/7d ratio (wave), 4h spike, the 24h
    alert, 30-day percentile, venue share and the price/OI quadrant over 24h, with the guards of
    :func:`perpscope.analytics.oi.oi_changes` (smallest price and OI moves, smallest OI)."""
    q = resolve(lake, "open_interest", q)
    frame = _oi_with_price(lake, q, check_timeframe(timeframe))
    changes = oi_changes(
        frame, min_price_move=min_price_move, min_oi_move=min_oi_move, min_oi_usd=min_oi_usd
    )
    pct = oi_percentile(frame).select("venue", "instrument", "ts", "oi_percentile")
    latest = (
        changes.join(pct, on=["venue", "instrument", "ts"]).group_by("venue", "instrument").last()
    )
    share = venue_oi_share(frame).sort("period").group_by("venue", "asset").last()
    return (
        latest.with_columns(asset_expr().alias("asset"))
        .join(
            share.select(
                "asset", "venue", "share", "share_change", "hhi", "hhi_change", "migration"
            ),
            on=["asset", "venue"],
            how="left",
        )
        .with_columns(pl.col("quadrant").cast(pl.String).replace_strict(QUADRANTS).alias("reading"))
        .select(
            "venue",
            "instrument",
            "ts",
            "oi_usd",
            "oi_change_24h",
            "roc_avg_7d",
            "roc_ratio",
            "wave",
            "oi_change_4h",
            "spike",
            "alert_24h",
            "oi_percentile",
            "share",
            "share_change",
            "hhi",
            "hhi_change",
            "migration",
            "price_change_24h",
            "quadrant",
            "reading",
        )
        .sort("venue", "instrument")
    )


def oi_divergence_report(
    lake: Lake,
    q: MarketQuery,
    *,
    window_h: float = 72.0,
    min_oi_drop: float = 0.08,
    min_assets: int = 2,
    timeframe: str = "1h",
    min_price_move: float = MIN_PRICE_MOVE_DIVERGENCE,
    min_oi_usd: float = MIN_OI_USD,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """OI divergences (rows where one is live, from ``since``) and the market-wide form, with
    the guards of :func:`perpscope.analytics.oi.oi_divergence`."""
    q = resolve(lake, "open_interest", q)
    frame = _oi_with_price(lake, q, check_timeframe(timeframe))
    if frame["close_px"].null_count() == frame.height:
        raise UsageError(
            f"no {timeframe} trade candles stored for these series: OI divergence needs price"
            f"{_timeframes_note(lake, q)}"
        )
    div = oi_divergence(
        frame,
        window_h=window_h,
        min_oi_drop=min_oi_drop,
        min_price_move=min_price_move,
        min_oi_usd=min_oi_usd,
    )
    live = within(div.filter(pl.col("oi_divergence").is_not_null()), q)
    market = market_oi_divergence(live, min_assets=min_assets)
    cols = [
        "venue",
        "instrument",
        "ts",
        "close_px",
        "oi_usd",
        "price_change_w",
        "oi_change_w",
        "divergence_ratio",
        "oi_divergence",
        "oi_divergence_grade",
    ]
    return live.select(cols), market


def _latest_with_spot(latest: pl.DataFrame, spot: pl.DataFrame, staleness_h: float) -> pl.DataFrame:
    """``latest`` (venue, _spot, ts, ...) with ``spot_px`` as of its ``ts`` (at most
    ``staleness_h`` older; else null)."""
    spot_px = spot.sort("ts").select(
        "venue", pl.col("instrument").alias("_spot"), "ts", pl.col("c").alias("spot_px")
    )
    return latest.sort("ts").join_asof(
        spot_px,
        on="ts",
        by=["venue", "_spot"],
        tolerance=timedelta(hours=staleness_h),
        check_sortedness=False,
    )


def _expiry_ts(instrument: str, hour_utc: int) -> datetime | None:
    inst = parse_instrument(instrument)
    if inst.expiry is None:
        return None
    return datetime(inst.expiry.year, inst.expiry.month, inst.expiry.day, hour_utc, tzinfo=UTC)


def basis_report(
    lake: Lake,
    q: MarketQuery,
    *,
    timeframe: str = "1h",
    staleness_h: float = 2.0,
    expiry_hour_utc: int = 8,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Latest perp premium to spot and index with the basis-trade status, and dated-futures basis.

    References are as of each contract's latest candle and at most ``staleness_h`` older: the
    same venue's ``BASE-QUOTE`` spot candles and, for perps, the perp's ``index`` candles. Dated
    futures expire at ``expiry_hour_utc`` (08:00 UTC on Binance, Bybit, OKX and Deribit) of the
    date in their id.

    Returns:
        ``(perps, futures)``: perps with the premium columns of
        :func:`perpscope.analytics.basis.perp_basis` and, when funding is stored, the 7-day
        carry and status of :func:`perpscope.analytics.basis.basis_trade_carry`; futures with
        those of :func:`perpscope.analytics.basis.dated_basis` (empty when none are stored).
    """
    check_timeframe(timeframe)
    q = resolve(lake, "ohlcv", q)
    wide = replace(q, instrument=None)
    if q.instrument:
        wide = replace(wide, assets=(parse_instrument(q.instrument).base,))
    candles = read_table(lake, "ohlcv", wide)
    if q.instrument:
        base = parse_instrument(q.instrument).underlying
        candles = candles.filter(pl.col("instrument").is_in([q.instrument, base]))
    _need(lake, "ohlcv", q, candles, "candles")
    candles = candles.filter(pl.col("timeframe") == timeframe)
    trade = candles.filter(pl.col("kind") == "trade").with_columns(market_expr().alias("market"))
    spot = trade.filter(pl.col("market") == "spot")
    last = trade.sort("ts").group_by("venue", "instrument").last()
    underlying = pl.col("instrument").str.extract(r"^([A-Z0-9]+-[A-Z0-9]+)")
    last = last.select(
        "venue", "instrument", "market", "ts", pl.col("c").alias("px"), underlying.alias("_spot")
    )
    perps = last.filter(pl.col("market") == "perp")
    futures = last.filter(pl.col("market") == "future")
    if perps.is_empty() and futures.is_empty():
        raise UsageError(
            f"no {timeframe} perp or dated-future trade candles stored for these filters"
            f"{_timeframes_note(lake, q)}"
        )
    index_px = (
        candles.filter(pl.col("kind") == "index")
        .sort("ts")
        .select("venue", "instrument", "ts", pl.col("c").alias("index_px"))
    )
    perp_rows = (
        _latest_with_spot(perps.rename({"px": "perp_px"}), spot, staleness_h)
        .join_asof(
            index_px,
            on="ts",
            by=["venue", "instrument"],
            tolerance=timedelta(hours=staleness_h),
            check_sortedness=False,
        )
        .drop("_spot", "market")
    )
    perp_out = perp_basis(perp_rows)
    funding = read_table(lake, "funding", q, lookback_h=168.0)
    if not funding.is_empty() and not perp_out.is_empty():
        carry = basis_trade_carry(funding).sort("ts").group_by("venue", "instrument").last()
        perp_out = perp_out.join(
            carry.select("venue", "instrument", "mean_rate_8h", "carry_annualized", "status"),
            on=["venue", "instrument"],
            how="left",
        )
    if futures.is_empty():
        return perp_out.sort("venue", "instrument"), pl.DataFrame()
    expiries = {i: _expiry_ts(i, expiry_hour_utc) for i in futures["instrument"].unique()}
    fut_rows = _latest_with_spot(
        futures.rename({"px": "future_px"}), spot, staleness_h
    ).with_columns(
        pl.col("instrument")
        .replace_strict(expiries, return_dtype=pl.Datetime("us", "UTC"))
        .alias("expiry_ts")
    )
    fut_out = dated_basis(fut_rows.drop("_spot", "market"))
    return perp_out.sort("venue", "instrument"), fut_out.sort("venue", "instrument")


def cvd_report(
    lake: Lake, q: MarketQuery, *, timeframe: str = "1h", window_h: float = 168.0
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """CVD per series (perp and spot apart) from ``since``, and the CVD-price divergences.

    The delta comes from the ``taker_volume`` table when it holds the series, else from candles'
    taker-buy volume. CVD starts at 0 at the first bar read.
    """
    check_timeframe(timeframe)
    q = resolve(lake, "ohlcv", q)
    candles = read_table(lake, "ohlcv", q)
    candles = (
        candles.filter((pl.col("kind") == "trade") & (pl.col("timeframe") == timeframe))
        if not candles.is_empty()
        else candles
    )
    deltas = []
    if not candles.is_empty():
        deltas.append(delta_from_candles(candles.filter(pl.col("taker_buy_volume").is_not_null())))
    taker = read_table(lake, "taker_volume", q)
    if not taker.is_empty():
        deltas.append(delta_from_taker_volume(taker.filter(pl.col("period") == timeframe)))
    delta = (
        pl.concat([d.select("venue", "instrument", "market", "ts", "delta_base") for d in deltas])
        if deltas
        else pl.DataFrame()
    )
    if delta.is_empty():
        _need(lake, "ohlcv", q, candles, "candles")
        raise UsageError(
            f"no {timeframe} taker volume for these filters (candles with taker-buy volume or "
            f"the taker_volume table){_timeframes_note(lake, q)}"
        )
    delta = delta.unique(subset=["venue", "instrument", "ts"], keep="last", maintain_order=True)
    cvd = cumulative_volume_delta(delta)
    if candles.is_empty():
        return cvd, pl.DataFrame()
    prices = candles.select("venue", "instrument", "ts", pl.col("c").alias("close_px"))
    div = cvd_price_divergence(
        cvd.join(prices, on=["venue", "instrument", "ts"]), window_h=window_h
    )
    return cvd, div.filter(pl.col("cdiv_divergence").is_not_null())


def funding_divergence_report(
    lake: Lake,
    q: MarketQuery,
    *,
    timeframe: str = "1h",
    window_h: float = 168.0,
    min_gap_h: float = 24.0,
) -> pl.DataFrame:
    """Funding-price divergences from ``since`` on: each candle of a perp gets the latest funding
    settlement at or before it (8h-equivalent), then
    :func:`perpscope.analytics.funding_series.funding_price_divergence` runs on the pair."""
    check_timeframe(timeframe)
    q = resolve(lake, "funding", q)
    lookback = 2 * window_h
    funding = read_table(lake, "funding", q, lookback_h=lookback)
    _need(lake, "funding", q, within(funding, q), "funding")
    prices = _prices(lake, q, timeframe)
    prices = prices.filter(pl.col("instrument").str.ends_with("-PERP")) if prices.height else prices
    if prices.is_empty():
        raise UsageError(
            f"no {timeframe} perp trade candles for these filters: funding-price divergence "
            f"needs price{_timeframes_note(lake, q)}"
        )
    rates = normalised_funding(funding).select("venue", "instrument", "ts", "rate_8h").sort("ts")
    frame = (
        prices.sort("ts")
        .join_asof(rates, on="ts", by=["venue", "instrument"], check_sortedness=False)
        .filter(pl.col("rate_8h").is_not_null())
    )
    out = funding_price_divergence(
        frame, window_h=window_h, mean_window_h=window_h, min_gap_h=min_gap_h
    )
    live = within(out.filter(pl.col("fdiv_divergence").is_not_null()), q)
    return live.select(
        "venue",
        "instrument",
        "ts",
        "close_px",
        "funding_mean_8h",
        pl.col("fdiv_prior_ts").alias("prior_ts"),
        pl.col("fdiv_prior_price").alias("prior_close_px"),
        pl.col("fdiv_prior_value").alias("prior_funding_mean_8h"),
        pl.col("fdiv_divergence").alias("divergence"),
    )


def long_short_report(
    lake: Lake,
    q: MarketQuery,
    *,
    period: str | None = None,
    window_h: float = 720.0,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Latest long/short reading per series: the crowd against top traders, and each ratio's
    30-day percentile with its extreme label."""
    if period is not None:
        check_timeframe(period, "--period")
    q = resolve(lake, "long_short", q)
    rows = read_table(lake, "long_short", q, lookback_h=window_h)
    _need(lake, "long_short", q, within(rows, q), "long/short ratios")
    if period is not None:
        stored = sorted(rows["period"].unique().to_list())
        rows = rows.filter(pl.col("period") == period)
        if rows.is_empty():
            raise UsageError(
                f"no long/short ratios of period {period}; periods stored: {', '.join(stored)}"
            )
    keys = ["venue", "instrument", "period"]
    compare = within(long_short_compare(rows), q).sort("ts").group_by(keys).last()
    extremes = within(long_short_extremes(rows, window_h=window_h), q)
    latest = extremes.sort("ts").group_by([*keys, "kind"]).last()
    return (
        compare.sort(keys),
        latest.select(*keys, "kind", "ts", "long_short_ratio", "ls_percentile", "extreme").sort(
            [*keys, "kind"]
        ),
    )
