"""The ESTIMATED liquidation heatmap and liquidation map (anchors C.2), from candles and OI.

Input: one series (one venue and instrument) of bars, a polars frame with the columns

* ``ts`` (bar open, UTC), ``o``, ``h``, ``l``, ``c``: trade-price candles;
* ``mark_h``, ``mark_l`` (optional): mark-price high and low, used for consumption (liquidation is
  triggered by the mark price); the trade high and low are used where they are missing;
* ``oi_base`` or ``oi_usd``: one-sided open interest at the bar's **end**;
* for the side split: ``volume`` and ``taker_buy_volume`` (``split="taker"``), or ``long_frac``
  (``split="long_short"``); ``quote_volume`` for ``entry="vwap"``.

Per bar (anchors C.2): a rise in OI is new notional (``ΔOI_base x entry``, or ``ΔOI_usd``) opened at
the bar's typical price (configurable); it is split long/short by the bar's taker buy share (or the
long/short account ratio, the candle's direction, or 50/50); it is spread over leverage tiers with
weights; each tier's liquidation price is the venue's tiered maintenance-margin formula from
:func:`perpscope.risk.liquidation_price` for an isolated position of ``position_usd``; levels are
consumed when the mark low (longs) or high (shorts) crosses them; a fall in OI removes standing
notional proportionally (net of what the crossing levels explain); a share of the standing
notional turns over every bar (closes and reopens at the bar's entry: OI is net); levels may
decay with a half-life. Everything here is an **ESTIMATE**: no venue publishes where its
positions' liquidation prices are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from perpscope.analytics.liquidations._kernel import heatmap_kernel, heatmap_reference
from perpscope.risk import (
    LiqVenue,
    PositionSide,
    PositionSpec,
    Tier,
    liquidation_price,
    single_tier,
)

__all__ = [
    "ESTIMATED",
    "assemble_bars",
    "HeatmapParams",
    "LiquidationHeatmap",
    "estimate_heatmap",
    "tier_factors",
    "tiers_from_table",
]

ESTIMATED: Final = "ESTIMATED"
"""Label of every estimated output (anchors C.2 step 9)."""

EntryPrice = Literal["typical", "close", "vwap", "ohlc4"]
Split = Literal["taker", "long_short", "candle", "neutral"]

_DEFAULT_TIERS: Final = single_tier(0.004)


@dataclass(frozen=True, slots=True)
class HeatmapParams:
    """The estimator's parameters. Defaults are frozen before each scoring (docs).

    Attributes:
        leverages: leverage tiers L_k.
        weights: share of new notional at each tier (normalised to sum 1). Default 5x 40%,
            10x 30%, 25x 15%, 50x 10%, 100x 5%: the tiers of the public example of anchors C.2
            (5x 15%, 10x 30%, 25x 25%, 50x 20%, 100x 10%) with the weight moved towards low
            leverage, because the map is of *standing* notional: a position at L closes on a
            move of about 1/L (liquidation, stop or take-profit), so high-leverage positions
            stand for a shorter time than low-leverage ones; the venues' tier tables allow
            high leverage only on small notional; and a public description (anchors C.1,
            info-hub) weights high leverage less (docs/liquidation-heatmap.md).
        entry: where new notional opens: ``typical`` ((h+l+c)/3), ``close``, ``vwap``
            (quote_volume / volume) or ``ohlc4``.
        split: long share of new notional: ``taker`` (taker buy volume / volume),
            ``long_short`` (the long/short account share ``long_frac``), ``candle`` (1 for a
            rising bar, 0 for a falling one, 0.5 flat) or ``neutral`` (0.5).
        half_life_bars: levels decay with this half-life in bars (``None``: no decay).
        turnover_half_life_h: positions turn over: on every bar a share ``1 - 0.5 ** (bar
            hours / turnover_half_life_h)`` of the standing levels closes (removed
            proportionally) and as much notional reopens at the bar's entry price, split like
            new notional, so the total stands still while the entries move with the price (OI
            is net: it hides the positions that close and reopen). ``None``: a level lives
            until it is crossed or OI falls. Default 72 h: perp positions are held for hours
            to days, and no venue publishes holding times, so three days is a judgement.
        bin_pct: width of a price bin, a fraction of price (0.001 = 0.1%, geometric bins).
        position_usd: notional of the representative position whose liquidation price the venue
            formula gives for each tier (it selects the maintenance-margin tier).
        net_of_consumed: a fall in OI first counts the levels consumed on the bar; only the rest
            is removed proportionally (``False``: always remove the whole fall).
        seed_initial: the first bar's OI is opened at the first bar's entry price (the history
            before the data is unknown).
        snap_every: keep a heatmap row every this many bars (1 = every bar; 12 on 5-minute bars
            is hourly).
        heat_window_pct: each heatmap row keeps the bins within this fraction of that bar's
            close (0.3 = +-30%, what a chart shows; ``None`` keeps the whole grid). The current
            map always covers the whole grid.
        grid_origin_px: lay the bins on the fixed lattice ``grid_origin_px x (1 + bin_pct)^k``
            (``None``: the grid starts below the series' lowest price). With a fixed origin a
            bin's price does not depend on later bars, so each row is what was known at its
            bar's end (a backtest needs that).
    """

    leverages: tuple[float, ...] = (5.0, 10.0, 25.0, 50.0, 100.0)
    weights: tuple[float, ...] = (0.40, 0.30, 0.15, 0.10, 0.05)
    entry: EntryPrice = "typical"
    split: Split = "taker"
    half_life_bars: float | None = None
    turnover_half_life_h: float | None = 72.0
    bin_pct: float = 0.001
    position_usd: float = 10_000.0
    net_of_consumed: bool = True
    seed_initial: bool = True
    snap_every: int = 1
    heat_window_pct: float | None = 0.3
    grid_origin_px: float | None = None

    def __post_init__(self) -> None:
        if len(self.leverages) != len(self.weights) or not self.leverages:
            raise ValueError("give one weight per leverage tier")
        if min(self.leverages) < 1:
            raise ValueError("leverage tiers must be at least 1x")
        if min(self.weights) < 0 or sum(self.weights) <= 0:
            raise ValueError("leverage weights must be non-negative and not all zero")
        if not 0 < self.bin_pct < 0.1:
            raise ValueError("bin_pct must be a fraction between 0 and 0.1 (0.001 = 0.1%)")
        if self.half_life_bars is not None and self.half_life_bars <= 0:
            raise ValueError("half_life_bars must be positive (or None for no decay)")
        if self.turnover_half_life_h is not None and not self.turnover_half_life_h > 0:
            raise ValueError("turnover_half_life_h must be positive hours (or None)")
        if self.position_usd <= 0:
            raise ValueError("position_usd must be positive")
        if self.heat_window_pct is not None and not 0 < self.heat_window_pct <= 1:
            raise ValueError("heat_window_pct must be a fraction in (0, 1] (or None)")
        if self.grid_origin_px is not None and not self.grid_origin_px > 0:
            raise ValueError("grid_origin_px must be a positive price (or None)")
        if self.snap_every < 1:
            raise ValueError("snap_every must be at least 1")
        if self.entry not in ("typical", "close", "vwap", "ohlc4"):
            raise ValueError(f"unknown entry price {self.entry!r}")
        if self.split not in ("taker", "long_short", "candle", "neutral"):
            raise ValueError(f"unknown side split {self.split!r}")


@dataclass(frozen=True, slots=True)
class LiquidationHeatmap:
    """An ESTIMATED heatmap (time x price, long and short layers) and the current map.

    Attributes:
        bin_px: centre price of each bin (geometric grid, ``bin_pct`` wide).
        snap_ts: time of each heatmap row (the end of its bar).
        heat_long: standing long-liquidation notional, USD, shape ``(rows, columns)``; column
            ``j`` of row ``r`` is bin ``heat_start[r] + j`` (see :meth:`heat_rows`).
        heat_short: the same for shorts.
        heat_start: the bin of each row's first column.
        ts: time of the current map (end of the last bar).
        price: the last close (where "below" and "above" are measured from).
        long_usd: the current map: long liquidations standing per bin (USD).
        short_usd: short liquidations standing per bin (USD).
        bar_ts: open time of every bar.
        consumed_long_usd: estimated long notional whose levels the bar crossed (per bar).
        consumed_short_usd: the same for shorts.
        label: always ``ESTIMATED``.
    """

    bin_px: npt.NDArray[np.float64]
    snap_ts: pl.Series
    heat_long: npt.NDArray[np.float32]
    heat_short: npt.NDArray[np.float32]
    heat_start: npt.NDArray[np.int64]
    ts: object
    price: float
    long_usd: npt.NDArray[np.float64]
    short_usd: npt.NDArray[np.float64]
    bar_ts: pl.Series
    consumed_long_usd: npt.NDArray[np.float64]
    consumed_short_usd: npt.NDArray[np.float64]
    params: HeatmapParams = field(default_factory=HeatmapParams)
    label: str = ESTIMATED

    def heat_rows(
        self, rows: npt.NDArray[np.bool_] | None = None
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Heatmap rows on the absolute grid (columns = :attr:`bin_px`), long and short layers.

        Args:
            rows: which rows (a boolean mask over :attr:`snap_ts`); all if None.
        """
        idx = np.arange(self.heat_long.shape[0]) if rows is None else np.flatnonzero(rows)
        nb, width = self.bin_px.size, self.heat_long.shape[1]
        out_l = np.zeros((idx.size, nb), dtype=np.float32)
        out_s = np.zeros((idx.size, nb), dtype=np.float32)
        for k, r in enumerate(idx.tolist()):
            start = int(self.heat_start[r])
            lo, hi = max(start, 0), min(start + width, nb)
            if lo < hi:
                out_l[k, lo:hi] = self.heat_long[r, lo - start : hi - start]
                out_s[k, lo:hi] = self.heat_short[r, lo - start : hi - start]
        return out_l, out_s

    def levels(self, window_pct: float | None = None) -> pl.DataFrame:
        """The current map as rows ``price, long_usd, short_usd`` (bins holding notional).

        Args:
            window_pct: keep bins within this fraction of ``price`` (0.3 = +-30%); all if None.
        """
        keep = (self.long_usd > 0) | (self.short_usd > 0)
        if window_pct is not None:
            keep &= np.abs(self.bin_px / self.price - 1.0) <= window_pct
        return pl.DataFrame(
            {
                "price": self.bin_px[keep],
                "long_usd": self.long_usd[keep],
                "short_usd": self.short_usd[keep],
            }
        )


def assemble_bars(
    candles: pl.DataFrame,
    open_interest: pl.DataFrame,
    *,
    mark: pl.DataFrame | None = None,
    long_short: pl.DataFrame | None = None,
    bar_hours: float = 1.0,
) -> pl.DataFrame:
    """The estimator's input frame from store-shaped frames of one venue and instrument.

    Args:
        candles: ``ohlcv`` rows of kind ``trade`` (``ts`` = bar open, ``o h l c`` and, when
            stored, ``volume``, ``quote_volume``, ``taker_buy_volume``).
        open_interest: ``open_interest`` rows (``ts``, ``oi_base``, ``oi_usd``); each bar takes
            the latest OI at or before its end (``ts + bar_hours``).
        mark: ``ohlcv`` rows of kind ``mark`` (their ``h``, ``l`` become ``mark_h``, ``mark_l``).
        long_short: ``long_short`` rows (``ts``, ``long_frac``), taken as of the bar's end.
        bar_hours: bar length in hours.

    Returns:
        One row per candle with the columns :func:`estimate_heatmap` reads.
    """
    keep = [c for c in ("ts", "o", "h", "l", "c", "volume", "quote_volume", "taker_buy_volume")
            if c in candles.columns]  # fmt: skip
    bars = (
        candles.select(keep)
        .unique("ts", keep="last")
        .sort("ts")
        .with_columns(_end=pl.col("ts") + pl.duration(microseconds=int(bar_hours * 3.6e9)))
    )
    oi_cols = [c for c in ("oi_base", "oi_usd") if c in open_interest.columns]
    oi = (
        open_interest.select("ts", *oi_cols)
        .group_by("ts")
        .agg(pl.col(c).drop_nulls().last() for c in oi_cols)  # one value per time
        .sort("ts")
        .rename({"ts": "_end"})
    )
    bars = bars.join_asof(oi, on="_end", strategy="backward")
    if mark is not None and not mark.is_empty():
        m = mark.select("ts", mark_h="h", mark_l="l").unique("ts", keep="last")
        bars = bars.join(m, on="ts", how="left")
    if long_short is not None and not long_short.is_empty():
        ls = (
            long_short.select(_end="ts", long_frac="long_frac")
            .unique("_end", keep="last")
            .sort("_end")
        )
        bars = bars.join_asof(ls, on="_end", strategy="backward")
    return bars.drop("_end")


def tiers_from_table(rows: pl.DataFrame) -> tuple[Tier, ...]:
    """Tiers from ``leverage_tiers`` rows of one venue and instrument (the latest ``ts``)."""
    if "bound_unit" in rows.columns:  # bounds in coin or contracts are no USD notional
        rows = rows.filter(pl.col("bound_unit").is_null() | (pl.col("bound_unit") == "usd"))
    if rows.is_empty():
        return ()
    latest = rows.filter(pl.col("ts") == pl.col("ts").max()).sort("tier")
    return tuple(
        Tier(
            int(r["tier"]),
            float(r["notional_floor_usd"]),
            float(r["notional_cap_usd"]),
            float(r["mmr"]),
            float(r["maint_amount_usd"] or 0.0),
            None if r["max_leverage"] is None else float(r["max_leverage"]),
        )
        for r in latest.iter_rows(named=True)
    )


def tier_factors(
    params: HeatmapParams,
    tiers: Sequence[Tier] | None = None,
    venue: LiqVenue = LiqVenue.BINANCE,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Liquidation price / entry price of each leverage tier, for longs and for shorts.

    Each is the venue's exact formula (:func:`perpscope.risk.liquidation_price`) for an isolated
    position of ``params.position_usd`` with margin = notional / leverage. With notional-based
    tiers the ratio does not depend on the entry price, so it is computed once at entry 1.0.
    A tier never liquidated above zero gets 0.

    Raises:
        ValueError: a leverage the tier table does not allow for that notional.
    """
    table = tuple(tiers) if tiers else _DEFAULT_TIERS
    out: dict[PositionSide, list[float]] = {PositionSide.LONG: [], PositionSide.SHORT: []}
    for side, factors in out.items():
        for lev in params.leverages:
            spec = PositionSpec(venue, side, 1.0, params.position_usd, lev)
            px = liquidation_price(spec, table).liquidation_px
            factors.append(0.0 if px is None else px)
    return np.array(out[PositionSide.LONG]), np.array(out[PositionSide.SHORT])


def _col(frame: pl.DataFrame, name: str) -> npt.NDArray[np.float64] | None:
    if name not in frame.columns or frame[name].null_count() == frame.height:
        return None
    return frame[name].cast(pl.Float64).to_numpy()


def _entry(frame: pl.DataFrame, how: EntryPrice) -> npt.NDArray[np.float64]:
    h, low, c, o = (frame[k].cast(pl.Float64).to_numpy() for k in ("h", "l", "c", "o"))
    if how == "close":
        return c
    if how == "ohlc4":
        return np.asarray((o + h + low + c) / 4.0)
    typical = np.asarray((h + low + c) / 3.0)
    if how == "vwap":
        qv, v = _col(frame, "quote_volume"), _col(frame, "volume")
        if qv is None or v is None:
            raise ValueError("entry='vwap' needs quote_volume and volume columns")
        vwap = np.divide(qv, v, out=np.full_like(qv, np.nan), where=v > 0)
        return np.asarray(np.where(np.isfinite(vwap), vwap, typical))
    return typical


def _long_share(frame: pl.DataFrame, split: Split) -> npt.NDArray[np.float64]:
    n = frame.height
    if split == "neutral":
        return np.full(n, 0.5)
    if split == "candle":
        o, c = frame["o"].to_numpy(), frame["c"].to_numpy()
        return np.where(c > o, 1.0, np.where(c < o, 0.0, 0.5))
    if split == "long_short":
        share = _col(frame, "long_frac")
        if share is None:
            raise ValueError("split='long_short' needs a long_frac column")
    else:
        buy, vol = _col(frame, "taker_buy_volume"), _col(frame, "volume")
        if buy is None or vol is None:
            raise ValueError("split='taker' needs volume and taker_buy_volume columns")
        share = np.divide(buy, vol, out=np.full(n, np.nan), where=vol > 0)
    return np.clip(np.where(np.isfinite(share), share, 0.5), 0.0, 1.0)


def _oi_flows(
    frame: pl.DataFrame, entry: npt.NDArray[np.float64], seed: bool, churn: float = 0.0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """New notional (USD) and the kept fraction ``OI_t / OI_{t-1}`` (<= 1) of each bar.

    ``churn``: the share of the OI standing through the bar (``min(OI_{t-1}, OI_t)``) that
    turns over, reopened at the bar's entry (the kernel removes as much by decay).
    """
    base = _col(frame, "oi_base")
    oi = base if base is not None else _col(frame, "oi_usd")
    if oi is None:
        raise ValueError("the bars need an oi_base or oi_usd column")
    oi = pl.Series(oi).fill_nan(None).forward_fill().fill_null(0.0).to_numpy()
    prev = np.concatenate([[0.0 if seed else oi[0]], oi[:-1]])
    delta = oi - prev
    new = np.where(delta > 0, delta, 0.0) + churn * np.minimum(prev, oi)
    if base is not None:
        new = new * entry
    keep = np.where(
        (delta < 0) & (prev > 0), np.divide(oi, prev, out=np.ones_like(oi), where=prev > 0), 1.0
    )
    return new, np.clip(keep, 0.0, 1.0)


def _grid(
    low: npt.NDArray[np.float64],
    high: npt.NDArray[np.float64],
    entry: npt.NDArray[np.float64],
    f_long: npt.NDArray[np.float64],
    f_short: npt.NDArray[np.float64],
    bin_pct: float,
    origin: float | None = None,
) -> tuple[float, float, npt.NDArray[np.float64]]:
    dlog = math.log1p(bin_pct)
    pos_l = f_long[f_long > 0]
    lo_f = float(pos_l.min()) if pos_l.size else 1.0
    hi_f = float(f_short.max()) if f_short.size else 1.0
    p_lo = float(min(np.nanmin(low), np.nanmin(entry))) * min(lo_f, 1.0)
    p_hi = float(max(np.nanmax(high), np.nanmax(entry))) * max(hi_f, 1.0)
    p0 = p_lo * math.exp(-2 * dlog)
    if origin is not None:  # the lattice point at or below p0
        p0 = origin * math.exp(math.floor(math.log(p0 / origin) / dlog) * dlog)
    n_bins = int(math.ceil(math.log(p_hi / p0) / dlog)) + 2
    centers = p0 * np.exp((np.arange(n_bins) + 0.5) * dlog)
    return p0, dlog, centers


def estimate_heatmap(
    bars: pl.DataFrame,
    params: HeatmapParams | None = None,
    *,
    tiers: Sequence[Tier] | None = None,
    venue: LiqVenue = LiqVenue.BINANCE,
    engine: Literal["numba", "python"] = "numba",
) -> LiquidationHeatmap:
    """Estimate the liquidation heatmap and the current liquidation map of one series.

    Args:
        bars: one venue and instrument, columns as in the module docstring, any order of rows.
        params: estimator parameters (defaults: :class:`HeatmapParams`).
        tiers: the venue's maintenance-margin tiers (default: one tier at MMR 0.4%, Binance's
            BTCUSDT first tier).
        venue: whose liquidation rule applies (``perpscope.risk``).
        engine: ``numba`` (the kernel) or ``python`` (the plain reference, for tests).

    Returns:
        The ESTIMATED heatmap; the current map is the state after the last bar.

    Raises:
        ValueError: no bars, missing columns for the chosen entry or split, or bad tiers.
    """
    p = params or HeatmapParams()
    if bars.is_empty():
        raise ValueError("no bars to estimate from")
    frame = bars.sort("ts")
    entry = _entry(frame, p.entry)
    f_long, f_short = tier_factors(p, tiers, venue)
    weights = np.asarray(p.weights, dtype=float) / sum(p.weights)
    decay = 1.0 if p.half_life_bars is None else 0.5 ** (1.0 / p.half_life_bars)
    churn = 0.0
    if p.turnover_half_life_h is not None and frame.height > 1:
        step_h = frame["ts"].diff().drop_nulls().median()
        hours = step_h.total_seconds() / 3600.0 if isinstance(step_h, timedelta) else 0.0
        if hours > 0:
            stay = 0.5 ** (hours / p.turnover_half_life_h)
            churn, decay = 1.0 - stay, decay * stay
    new, keep = _oi_flows(frame, entry, p.seed_initial, churn)
    share = _long_share(frame, p.split)
    high = _col(frame, "mark_h")
    low = _col(frame, "mark_l")
    th, tl = frame["h"].cast(pl.Float64).to_numpy(), frame["l"].cast(pl.Float64).to_numpy()
    high = th if high is None else np.where(np.isfinite(high), high, th)
    low = tl if low is None else np.where(np.isfinite(low), low, tl)
    p0, dlog, centers = _grid(low, high, entry, f_long, f_short, p.bin_pct, p.grid_origin_px)
    run = heatmap_kernel if engine == "numba" else heatmap_reference
    args = (
        np.ascontiguousarray(entry),
        np.ascontiguousarray(new * share),
        np.ascontiguousarray(new * (1.0 - share)),
        np.ascontiguousarray(keep),
        np.ascontiguousarray(high),
        np.ascontiguousarray(low),
        f_long,
        f_short,
        weights,
        centers,
    )
    half_w = 0
    if p.heat_window_pct is not None:
        half_w = int(math.ceil(math.log1p(p.heat_window_pct) / dlog)) + 1
    long_map, short_map, heat_l, heat_s, heat_start, cons_l, cons_s = run(
        *args,
        p0,
        dlog,
        float(decay),
        int(p.snap_every),
        p.net_of_consumed,
        np.ascontiguousarray(frame["c"].cast(pl.Float64).to_numpy()),
        half_w,
    )
    n_snaps = heat_l.shape[0]
    bar_ts = frame["ts"]
    step = bar_ts.diff().drop_nulls().median() if frame.height > 1 else None
    end_ts = bar_ts + step if step is not None else bar_ts
    snap_idx = np.arange(1, n_snaps + 1) * p.snap_every - 1
    return LiquidationHeatmap(
        bin_px=centers,
        snap_ts=end_ts.gather(snap_idx),
        heat_long=heat_l,
        heat_short=heat_s,
        heat_start=np.asarray(heat_start),
        ts=end_ts[-1],
        price=float(frame["c"][-1]),
        long_usd=np.asarray(long_map),
        short_usd=np.asarray(short_map),
        bar_ts=bar_ts,
        consumed_long_usd=np.asarray(cons_l),
        consumed_short_usd=np.asarray(cons_s),
        params=p,
    )
