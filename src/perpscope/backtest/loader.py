"""Load a backtest's market from the store: candles (resampled if needed), mark candles, funding,
and, when asked or stored, open interest and liquidation events.

Candles come from the ``ohlcv`` table. When the requested timeframe is not stored, a finer stored
timeframe that divides it is resampled with polars ``group_by_dynamic`` (bars aligned to the
epoch, e.g. 4h bars at 00/04/08... UTC); only **complete** bars (every constituent bar present)
are kept. Mark candles (``kind = mark``) are used where they exist for a bar; elsewhere the trade
bar stands in, and :class:`LoadedMarket` says how many bars did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import polars as pl

from perpscope.backtest.types import FundingSeries, Market
from perpscope.store.lake import Lake

__all__ = ["LoadedMarket", "load_market", "resample_ohlcv", "timeframe_hours"]

_TF = re.compile(r"^(\d+)([mhd])$")
_UNIT_H = {"m": 1 / 60, "h": 1.0, "d": 24.0}


def timeframe_hours(timeframe: str) -> float:
    """Hours in a timeframe such as ``15m``, ``1h``, ``4h``, ``1d``.

    Raises:
        ValueError: not of that form.
    """
    m = _TF.match(timeframe)
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"bad timeframe {timeframe!r}: use e.g. 15m, 1h, 4h, 1d")
    return int(m.group(1)) * _UNIT_H[m.group(2)]


def resample_ohlcv(candles: pl.DataFrame, source_tf: str, timeframe: str) -> pl.DataFrame:
    """Resample bars (``ts, o, h, l, c``) of ``source_tf`` to ``timeframe``: complete bars only."""
    src_h, dst_h = timeframe_hours(source_tf), timeframe_hours(timeframe)
    per = round(dst_h / src_h)
    if per < 1 or not np.isclose(per * src_h, dst_h):
        raise ValueError(f"{timeframe} is not a whole multiple of {source_tf}")
    every = f"{round(dst_h * 60)}m"
    return (
        candles.sort("ts")
        .group_by_dynamic("ts", every=every, closed="left", label="left")
        .agg(
            pl.col("o").first(),
            pl.col("h").max(),
            pl.col("l").min(),
            pl.col("c").last(),
            pl.len().alias("_n"),
        )
        .filter(pl.col("_n") == per)
        .drop("_n")
    )


@dataclass(frozen=True, slots=True)
class LoadedMarket:
    """A market ready for the engine, and how it was built.

    Attributes:
        market: the aligned arrays.
        bar_hours: bar length.
        price_instrument: whose candles the prices are.
        mark_bars: bars with mark candles (the rest use the trade bar as the mark).
        resampled_from: the stored timeframe the bars were built from (None if stored as is).
        notes: one sentence per notable choice, for the output.
    """

    market: Market
    bar_hours: float
    price_instrument: str
    mark_bars: int
    resampled_from: str | None
    notes: list[str] = field(default_factory=list)


def _candles(lake: Lake, venue: str, instrument: str, kind: str) -> pl.DataFrame:
    if not lake.has_table("ohlcv"):
        return pl.DataFrame()
    where = (
        (pl.col("venue") == venue) & (pl.col("instrument") == instrument) & (pl.col("kind") == kind)
    )
    return lake.read("ohlcv", columns=["timeframe", "ts", "o", "h", "l", "c"], where=where)


def _bars(frame: pl.DataFrame, timeframe: str) -> tuple[pl.DataFrame, str | None]:
    """Bars of ``timeframe``: stored, or resampled from the coarsest finer stored timeframe."""
    if frame.is_empty():
        return frame, None
    exact = frame.filter(pl.col("timeframe") == timeframe)
    if not exact.is_empty():
        return exact.drop("timeframe").sort("ts"), None
    want = timeframe_hours(timeframe)
    options = []
    for tf in frame["timeframe"].unique().to_list():
        try:
            h = timeframe_hours(tf)
        except ValueError:
            continue
        if h < want and np.isclose(round(want / h) * h, want):
            options.append((h, tf))
    if not options:
        return pl.DataFrame(), None
    _, src = max(options)
    part = frame.filter(pl.col("timeframe") == src).drop("timeframe")
    return resample_ohlcv(part, src, timeframe), src


def _funding(lake: Lake, venue: str, instrument: str) -> pl.DataFrame:
    funding = pl.DataFrame()
    if lake.has_table("funding"):
        funding = lake.read(
            "funding",
            columns=["ts", "rate", "interval_h"],
            where=(pl.col("venue") == venue) & (pl.col("instrument") == instrument),
        ).sort("ts")
    if funding.is_empty():
        raise ValueError(f"no funding settlements for {venue} {instrument} in the store")
    return funding


def _open_interest(
    lake: Lake, oi_from: tuple[str, str] | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    if oi_from is None:
        return None, None
    venue, instrument = oi_from
    frame = pl.DataFrame()
    if lake.has_table("open_interest"):
        frame = lake.read(
            "open_interest",
            columns=["ts", "oi_value", "oi_usd"],
            where=(pl.col("venue") == venue) & (pl.col("instrument") == instrument),
        )
    if frame.is_empty():
        raise ValueError(f"no open interest for {venue} {instrument} in the store")
    frame = (
        frame.sort("ts")
        .unique("ts", keep="first", maintain_order=True)
        .with_columns(pl.coalesce("oi_usd", "oi_value").alias("oi"))
    )
    return (
        frame["ts"].dt.epoch("ns").to_numpy().astype(np.int64),
        frame["oi"].to_numpy().astype(np.float64),
    )


def _liquidations(
    lake: Lake, venue: str, instrument: str
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The perpetual's stored liquidation events (None when there are none)."""
    frame = pl.DataFrame()
    if lake.has_table("liquidations"):
        frame = lake.read(
            "liquidations",
            columns=["ts", "side", "notional_usd"],
            where=(pl.col("venue") == venue) & (pl.col("instrument") == instrument),
        ).drop_nulls()
    if frame.is_empty():
        return None, None, None
    frame = frame.sort("ts")
    return (
        frame["ts"].dt.epoch("ns").to_numpy().astype(np.int64),
        (frame["side"] == "long").to_numpy().astype(np.bool_),
        frame["notional_usd"].to_numpy().astype(np.float64),
    )


def load_market(
    lake: Lake,
    venue: str,
    instrument: str,
    timeframe: str,
    *,
    price_instrument: str | None = None,
    cascade_range: float = 0.03,
    confirm_venues: tuple[str, ...] = (),
    oi_from: tuple[str, str] | None = None,
) -> LoadedMarket:
    """The market of ``instrument`` on ``venue`` for a backtest.

    Args:
        lake: the store.
        venue: venue id.
        instrument: the perpetual whose funding is paid.
        timeframe: bar length (stored, or resampled from a finer stored timeframe).
        price_instrument: take the candles of this instrument instead (e.g. spot when the store
            has no perp candles); funding is still the perpetual's.
        cascade_range: a bar whose range (high - low) / open is at least this is a cascade bar.
        confirm_venues: also load these venues' funding of the same instrument
            (``Market.other_funding``), for strategies that want venues to agree.
        oi_from: (venue, instrument) whose stored open interest to load (``Market.oi``: USD
            where known, else as stored; one value per time, the first source's).

    The perpetual's stored liquidation events, if any, are loaded too (``Market.liq_*``).

    Raises:
        ValueError: no candles, or no funding settlements, for the request.
    """
    timeframe_hours(timeframe)
    priced = price_instrument or instrument
    trade, src = _bars(_candles(lake, venue, priced, "trade"), timeframe)
    if trade.is_empty():
        hint = "" if price_instrument else " (use --price-instrument to price it with spot candles)"
        raise ValueError(f"no {timeframe} candles for {venue} {priced} in the store{hint}")
    mark, _ = _bars(_candles(lake, venue, priced, "mark"), timeframe)
    joined = trade.join(
        mark.rename({"o": "mo", "h": "mh", "l": "ml", "c": "mc"}) if not mark.is_empty()
        else pl.DataFrame(schema={"ts": trade["ts"].dtype, "mo": pl.Float64, "mh": pl.Float64,
                                  "ml": pl.Float64, "mc": pl.Float64}),
        on="ts", how="left",
    ).sort("ts")  # fmt: skip
    mark_bars = int(joined["mo"].is_not_null().sum())
    for a, b in (("mo", "o"), ("mh", "h"), ("ml", "l"), ("mc", "c")):
        joined = joined.with_columns(pl.col(a).fill_null(pl.col(b)))
    funding = _funding(lake, venue, instrument)
    others = []
    for other in confirm_venues:
        if other == venue:
            raise ValueError(f"the confirming venue must differ from {venue}")
        frame = _funding(lake, other, instrument)
        others.append(
            FundingSeries(
                other,
                frame["ts"].dt.epoch("ns").to_numpy().astype(np.int64),
                frame["rate"].to_numpy().astype(np.float64),
                frame["interval_h"].to_numpy().astype(np.float64),
            )
        )
    ts = joined["ts"].dt.epoch("ns").to_numpy().astype(np.int64)
    o, h, lo, c = (joined[k].to_numpy().astype(np.float64) for k in ("o", "h", "l", "c"))
    mo, mh, ml, mc = (joined[k].to_numpy().astype(np.float64) for k in ("mo", "mh", "ml", "mc"))
    market = Market(
        ts, o, h, lo, c, mo, mh, ml, mc,
        (h - lo) / o >= cascade_range,
        funding["ts"].dt.epoch("ns").to_numpy().astype(np.int64),
        funding["rate"].to_numpy().astype(np.float64),
        funding["interval_h"].to_numpy().astype(np.float64),
        mark_bars == 0,
        tuple(others),
        *_open_interest(lake, oi_from),
        *_liquidations(lake, venue, instrument),
    )  # fmt: skip
    notes = []
    if price_instrument:
        notes.append(
            f"prices are {price_instrument} candles (no {instrument} candles used): fills, stops "
            f"and the funding notional use them; funding is {instrument}'s"
        )
    if mark_bars < len(ts):
        notes.append(
            f"no mark candles for {len(ts) - mark_bars} of {len(ts)} bars: liquidation and the "
            "funding notional use the trade close/open there"
        )
    for other_series in others:
        first = datetime.fromtimestamp(int(other_series.ts[0]) / 1e9, UTC)
        notes.append(
            f"{other_series.venue} funding ({len(other_series.ts)} settlements from "
            f"{first:%Y-%m-%d %H:%M}Z) loaded to confirm; only {venue}'s is paid"
        )
    if oi_from is not None and market.oi_ts is not None:
        first = datetime.fromtimestamp(int(market.oi_ts[0]) / 1e9, UTC)
        notes.append(
            f"open interest of {oi_from[0]} {oi_from[1]}: {len(market.oi_ts)} observations from "
            f"{first:%Y-%m-%d %H:%M}Z"
        )
    if market.liq_ts is not None:
        notes.append(
            f"{len(market.liq_ts)} stored liquidation events of {venue} {instrument} loaded"
        )
    if src:
        notes.append(f"{timeframe} bars resampled from stored {src} bars (complete bars only)")
    return LoadedMarket(market, timeframe_hours(timeframe), priced, mark_bars, src, notes)
