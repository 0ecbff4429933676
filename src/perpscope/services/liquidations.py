"""Liquidation use-cases shared by the front ends: the ESTIMATED heatmap and map with its
clusters, the cascade detector, and REALISED liquidation flows, from the store.

Each use-case reads the tables it needs for one venue and instrument (candles of a timeframe,
mark candles, open interest, long/short ratios, leverage tiers, liquidations), runs the pure
functions of :mod:`perpscope.analytics.liquidations` and returns records and frames ready to
render. Nothing here computes a metric itself.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from perpscope.analytics.liquidations import (
    ESTIMATED,
    WINDOWS_H,
    Asymmetry,
    CascadeParams,
    HeatmapParams,
    LiquidationHeatmap,
    assemble_bars,
    asymmetry,
    detect_cascades,
    estimate_heatmap,
    find_clusters,
    nearest_cluster,
    realised_flows,
    tiers_from_table,
    trade_check,
)
from perpscope.domain.symbols import parse_instrument, parse_venue
from perpscope.errors import UsageError
from perpscope.store.lake import Lake
from perpscope.venues.registry import capabilities

__all__ = [
    "HeatmapReport",
    "TradePlan",
    "cascades_report",
    "heatmap_report",
    "liquidations_report",
    "timeframe_hours",
]

_MAX_ROWS = 2000
"""Most heatmap rows kept (older bars are still estimated, rows are thinned evenly)."""


def timeframe_hours(timeframe: str) -> float:
    """Hours in a candle timeframe such as ``5m``, ``1h``, ``4h`` or ``1d``."""
    m = re.fullmatch(r"(\d+)([mhd])", timeframe)
    if m is None:
        raise UsageError(f"bad timeframe {timeframe!r}: use e.g. 5m, 1h, 4h or 1d")
    n, unit = int(m.group(1)), m.group(2)
    return n / 60.0 if unit == "m" else n * (24.0 if unit == "d" else 1.0)


def _ids(venue: str, instrument: str) -> tuple[str, str]:
    try:
        return parse_venue(venue.lower()), str(parse_instrument(instrument.upper()))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _read(lake: Lake, table: str, venue: str, instrument: str) -> pl.DataFrame:
    if not lake.has_table(table):
        return pl.DataFrame()
    where = (pl.col("venue") == venue) & (pl.col("instrument") == instrument)
    return lake.read(table, where=where)


def _candles(lake: Lake, venue: str, instrument: str, kind: str, timeframe: str) -> pl.DataFrame:
    ohlcv = _read(lake, "ohlcv", venue, instrument)
    if ohlcv.is_empty():
        return ohlcv
    return ohlcv.filter((pl.col("kind") == kind) & (pl.col("timeframe") == timeframe)).sort("ts")


@dataclass(frozen=True, slots=True)
class TradePlan:
    """A planned trade to check against the map: entry, target and the trader's own liquidation
    price (optional)."""

    entry_px: float
    target_px: float
    own_liq_px: float | None = None

    def __post_init__(self) -> None:
        prices = [self.entry_px, self.target_px, self.own_liq_px or 1.0]
        if min(prices) <= 0 or not all(math.isfinite(p) for p in prices):
            raise UsageError("entry, target and liquidation prices must be positive numbers")
        if self.entry_px == self.target_px:
            raise UsageError("the target must differ from the entry")


@dataclass(frozen=True, slots=True)
class HeatmapReport:
    """The ESTIMATED liquidation heatmap and map of one series, read for a trader.

    Attributes:
        venue, instrument: the series.
        heatmap: the estimator's output (time x price layers and the current map).
        levels: the current map within ``window_pct`` of price (``price, long_usd, short_usd``).
        clusters: density peaks of the map (see :func:`find_clusters`).
        asymmetry: long liquidations below vs short liquidations above, with the read.
        nearest: the nearest dense cluster within ``proximity_pct`` of price, if any.
        candles: the candles the heatmap was built from (for charts).
    """

    venue: str
    instrument: str
    heatmap: LiquidationHeatmap
    levels: pl.DataFrame
    clusters: pl.DataFrame
    asymmetry: Asymmetry
    nearest: dict[str, Any] | None
    candles: pl.DataFrame
    label: str = ESTIMATED
    notes: tuple[str, ...] = field(default=())
    trade: dict[str, Any] | None = None

    @property
    def ts(self) -> datetime:
        """Time of the map (end of the last bar)."""
        ts = self.heatmap.ts
        assert isinstance(ts, datetime)
        return ts

    @property
    def price(self) -> float:
        """Last close."""
        return self.heatmap.price

    def to_json(self) -> dict[str, Any]:
        """The command's JSON: ts, price, estimated, levels, clusters (plus context)."""
        return {
            "ts": self.ts,
            "price": self.price,
            "estimated": True,
            "label": self.label,
            "venue": self.venue,
            "instrument": self.instrument,
            "levels": self.levels.to_dicts(),
            "clusters": self.clusters.to_dicts(),
            "asymmetry": {
                "window_pct": self.asymmetry.window_pct * 100.0,
                "long_below_usd": self.asymmetry.long_below_usd,
                "short_above_usd": self.asymmetry.short_above_usd,
                "ratio": self.asymmetry.ratio,
                "read": self.asymmetry.read,
            },
            "nearest_cluster": self.nearest,
            "trade": self.trade,
            "notes": list(self.notes),
        }


def heatmap_report(
    lake: Lake,
    venue: str,
    instrument: str,
    *,
    at: datetime | None = None,
    timeframe: str = "1h",
    params: HeatmapParams | None = None,
    window_pct: float = 0.3,
    proximity_pct: float = 2.0,
    plan: TradePlan | None = None,
) -> HeatmapReport:
    """Estimate the liquidation heatmap of one series from every stored bar up to ``at``.

    Reads trade candles of ``timeframe`` (with taker volume), mark candles, ``open_interest``,
    ``long_short`` (global accounts) and ``leverage_tiers`` (the venue's MMR table; one tier at
    0.4% when none is stored). With a ``plan``, the trade helper lists the clusters between its
    entry and target and the cluster holding its liquidation price, if any, from the same
    clusters the report shows.

    Raises:
        UsageError: bad ids, or no candles or OI stored for the series (up to ``at``).
    """
    venue, instrument = _ids(venue, instrument)
    bar_h = timeframe_hours(timeframe)
    trade = _candles(lake, venue, instrument, "trade", timeframe)
    oi = _read(lake, "open_interest", venue, instrument)
    if trade.is_empty() or oi.is_empty():
        what = "candles" if trade.is_empty() else "open interest"
        raise UsageError(
            f"no {timeframe} {what} for {venue} {instrument} in the store "
            "(import or collect it first)"
        )
    notes: list[str] = []
    if at is not None:
        trade = trade.filter(pl.col("ts") + timedelta(hours=bar_h) <= at)
        if trade.is_empty():
            raise UsageError(f"no complete {timeframe} bar of {venue} {instrument} ends by {at}")
    mark = _candles(lake, venue, instrument, "mark", timeframe)
    if mark.is_empty():
        notes.append("no mark candles: levels are consumed on trade highs and lows")
    ls = _read(lake, "long_short", venue, instrument)
    if not ls.is_empty():
        ls = ls.filter(pl.col("kind") == "global_account")
    bars = assemble_bars(trade, oi, mark=mark, long_short=ls, bar_hours=bar_h)
    bars = bars.filter(pl.col("oi_base").is_not_null() | pl.col("oi_usd").is_not_null())
    if bars.is_empty():
        raise UsageError(f"no open interest of {venue} {instrument} overlaps its candles")
    p = params or HeatmapParams()
    if p.split == "taker" and (
        "taker_buy_volume" not in bars.columns
        or bars["taker_buy_volume"].null_count() == bars.height
    ):
        p = replace(p, split="candle")
        notes.append("no taker buy volume stored: new notional split by candle direction")
    p = replace(p, snap_every=max(p.snap_every, math.ceil(bars.height / _MAX_ROWS)))
    tiers = tiers_from_table(_read(lake, "leverage_tiers", venue, instrument))
    if not tiers:
        notes.append("no leverage tiers stored: one tier at MMR 0.4% (Binance BTCUSDT tier 1)")
    try:
        hm = estimate_heatmap(bars, p, tiers=tiers or None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    levels = hm.levels(window_pct)
    # one set of clusters for the table and the trade helper: the helper never names a cluster
    # the heatmap does not show (it used to read 50 to the table's 10)
    clusters = find_clusters(levels, hm.price)
    helper = None
    if plan is not None:
        check = trade_check(
            clusters,
            entry_px=plan.entry_px,
            target_px=plan.target_px,
            own_liq_px=plan.own_liq_px,
        )
        helper = {
            "entry_px": plan.entry_px,
            "target_px": plan.target_px,
            "own_liq_px": plan.own_liq_px,
            "clusters_between": check.between.to_dicts(),
            "own_liq_in_cluster": check.own_liq_in_cluster,
        }
    return HeatmapReport(
        venue=venue,
        instrument=instrument,
        heatmap=hm,
        levels=levels,
        clusters=clusters,
        asymmetry=asymmetry(levels, hm.price),
        nearest=nearest_cluster(clusters, within_pct=proximity_pct),
        candles=bars,
        notes=tuple(notes),
        trade=helper,
    )


def cascades_report(
    lake: Lake,
    venue: str,
    instrument: str,
    *,
    since: datetime | None = None,
    params: CascadeParams | None = None,
) -> pl.DataFrame:
    """Cascades of one series on its stored hourly trade candles, with REALISED liquidations.

    The detector reads the whole stored history (its trailing windows need it); cascades whose
    climax is before ``since`` are dropped.

    Raises:
        UsageError: bad ids, or no hourly candles stored for the series.
    """
    venue, instrument = _ids(venue, instrument)
    candles = _candles(lake, venue, instrument, "trade", "1h")
    if candles.is_empty():
        raise UsageError(
            f"no 1h candles for {venue} {instrument} in the store (import or collect them first)"
        )
    liq = _read(lake, "liquidations", venue, instrument)
    out = detect_cascades(candles, None if liq.is_empty() else liq, params)
    if since is not None:
        out = out.filter(pl.col("climax_ts") >= since)
    return out


def liquidations_report(
    lake: Lake,
    venues: list[str] | None = None,
    instrument: str | None = None,
    *,
    window: str = "24h",
) -> pl.DataFrame:
    """REALISED liquidations over the last ``window`` (ending at the latest stored event).

    Venues whose feed is sampled (their capabilities say so, e.g. Binance's one event per symbol
    per second) are flagged ``lower_bound``.

    Raises:
        UsageError: a bad window or id.
    """
    if window not in WINDOWS_H:
        raise UsageError(f"bad --window {window!r}: use one of {', '.join(WINDOWS_H)}")
    try:
        vs = [parse_venue(v.lower()) for v in venues or []]
        inst = str(parse_instrument(instrument.upper())) if instrument else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not lake.has_table("liquidations"):
        return realised_flows(pl.DataFrame(), WINDOWS_H[window])
    where: pl.Expr | None = None
    if vs:
        where = pl.col("venue").is_in(vs)
    if inst:
        e = pl.col("instrument") == inst
        where = e if where is None else where & e
    liq = lake.read("liquidations", where=where)
    sampled = [
        v
        for v in (liq["venue"].unique().to_list() if liq.height else [])
        if (cap := capabilities(v)) is not None and cap.liquidation_feed_sampled
    ]
    return realised_flows(liq, WINDOWS_H[window], sampled_venues=sampled)
