"""The shared per-asset computations of many assets at one time, done in one pass per analytic.

A detector reads its inputs from the asset's :class:`~perpscope.signals._common.Context` (a memo
per bundle and time). Alone, each asset computes them itself, and each polars call costs a
fraction of a millisecond of fixed overhead whatever the size of the frame: for 100 assets that
overhead, not the arithmetic, was the time of :func:`~perpscope.signals.setups.detect_all`.
:func:`prepare` instead runs each analytic once over the frames of every asset stacked together
(the analytics treat every ``venue instrument`` series on its own) and puts each asset's part in
its context, so the detectors find them there. The results are the ones an asset computes alone
(``tests/signals/test_batch_equivalence.py``).

Each memo is named by a key below. The funding memos are made by one function used both ways:
on one asset's frame (``keys=()``) or on the stack (``keys=(ASSET,)``); the divergence rows by the
same analytics as the detectors' own path (``setups._fdiv_row`` and the like), on the stacked
frames of the assets whose last bars are near a price extreme. A bundle the batch cannot stack
(other columns than the rest, a series shared with another asset, more than one candle series)
is left to compute alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

import numpy as np
import polars as pl

from perpscope.analytics.basis import basis_trade_carry
from perpscope.analytics.cvd import (
    cumulative_volume_delta,
    cvd_price_divergence,
    delta_from_candles,
)
from perpscope.analytics.funding_series import (
    extreme_persistence,
    funding_acceleration,
    funding_price_divergence,
)
from perpscope.analytics.oi import oi_divergence
from perpscope.analytics.regime import regime
from perpscope.analytics.structure import structure, structure_events, zones
from perpscope.signals._common import (
    EVENTS,
    HISTORY_H,
    ZONES,
    Context,
    MarketData,
    context,
    raw_times,
)

__all__ = [
    "ACCEL_LAST",
    "AGG_FUNDING",
    "ASSET",
    "CARRY_LAST",
    "CDIV_ROW",
    "FDIV_ROW",
    "FRESH_H",
    "LATEST_FUNDING",
    "OI_DIV_ROW",
    "agg_funding",
    "has_taker_volume",
    "last_fresh",
    "latest_rows",
    "memo",
    "prepare",
]

ASSET: Final = "_asset"
"""The column naming each row's asset in a stack."""
FRESH_H: Final = 12.0
"""A venue's last settlement counts when it is younger than this at ``at``."""

LATEST_FUNDING: Final = "latest_funding"
"""Memo: each series' last :func:`extreme_persistence` row, if fresh (:func:`latest_rows`)."""
AGG_FUNDING: Final = "agg_funding"
"""Memo: the mean 8h-equivalent rate across venues per settlement time (:func:`agg_funding`)."""
ACCEL_LAST: Final = "accel_last"
"""Memo: each series' last :func:`funding_acceleration` row, if fresh."""
CARRY_LAST: Final = "carry_last"
"""Memo: each series' last :func:`basis_trade_carry` row, if fresh."""
FDIV_ROW: Final = "fdiv_row"
"""Memo: the funding-price divergence row of the last bars (``dict``), or None."""
CDIV_ROW: Final = "cdiv_row"
"""Memo: the CVD-price divergence row of the last bars (``dict``), or None."""
OI_DIV_ROW: Final = "oi_div"
"""Memo: the last bar's OI divergence row (``dict``), or None."""

T = TypeVar("T")

_LATEST_COLUMNS: Final = (
    "venue",
    "instrument",
    "ts",
    "rate_8h",
    "extreme_side",
    "extreme_streak_h",
)


def memo(ctx: Context, key: str, make: Callable[[], T]) -> T:
    """``ctx.memo[key]``, made by ``make`` the first time."""
    if key not in ctx.memo:
        ctx.memo[key] = make()
    return ctx.memo[key]  # type: ignore[return-value]


def latest_rows(ext: pl.DataFrame, keys: tuple[str, ...] = ()) -> pl.DataFrame:
    """The last row per (venue, instrument) of :func:`extreme_persistence` output, sorted by
    venue and instrument: ``venue instrument ts rate_8h extreme_side extreme_streak_h``."""
    return (
        ext.sort("ts")
        .group_by(*keys, "venue", "instrument")
        .agg(pl.all().last())
        .select(*keys, *_LATEST_COLUMNS)
        .sort(*keys, "venue", "instrument")
    )


def last_fresh(frame: pl.DataFrame, at: datetime, keys: tuple[str, ...] = ()) -> pl.DataFrame:
    """The last row of each series of ``frame`` if younger than :data:`FRESH_H` at ``at``."""
    last = frame.sort("ts").group_by(*keys, "venue", "instrument").agg(pl.all().last())
    return last.filter(pl.col("ts") > at - timedelta(hours=FRESH_H))


def agg_funding(ext: pl.DataFrame, keys: tuple[str, ...] = ()) -> pl.DataFrame:
    """Mean 8h-equivalent rate across venues per settlement time: ``ts rate_8h``."""
    return ext.group_by(*keys, "ts").agg(pl.col("rate_8h").mean()).sort(*keys, "ts")


def _stack(frames: Mapping[str, pl.DataFrame], *, one_series: bool = False) -> pl.DataFrame | None:
    """The frames one under the other with an :data:`ASSET` column, or None when they cannot be
    stacked: different columns, one venue-instrument series in two assets' frames, or (with
    ``one_series``) an asset with more than one series."""
    schemas = {tuple(f.schema.items()) for f in frames.values()}
    if len(frames) < 2 or len(schemas) != 1 or ASSET in next(iter(frames.values())).columns:
        return None
    stack = pl.concat([f.with_columns(pl.lit(k).alias(ASSET)) for k, f in frames.items()])
    series = pl.struct("venue", "instrument")
    n_series = series.n_unique()
    ok = stack.select(
        (pl.struct(series, ASSET).n_unique() == n_series)
        & ((n_series == len(frames)) if one_series else pl.lit(True))
    ).item()
    return stack if ok else None


def has_taker_volume(candles: pl.DataFrame) -> bool:
    """Whether the candles have any taker buy volume (for the CVD)."""
    c = candles
    return "taker_buy_volume" in c.columns and c["taker_buy_volume"].null_count() < c.height


def _split(frame: pl.DataFrame, assets: list[str]) -> dict[str, pl.DataFrame]:
    """Each asset's rows of ``frame`` (in order, without :data:`ASSET`); empty when it has none."""
    parts = frame.partition_by(ASSET, as_dict=True, include_key=False, maintain_order=True)
    empty = frame.clear().drop(ASSET)
    return {a: parts.get((a,), empty) for a in assets}


def _prepare_funding(windows: Mapping[str, MarketData], at: datetime) -> pl.DataFrame | None:
    """Returns the stacked :func:`agg_funding` (None when the bundles were not stacked)."""
    todo = {
        k: d.funding
        for k, d in windows.items()
        if d.funding is not None and d.funding.height and LATEST_FUNDING not in context(d, at).memo
    }
    stack = _stack(todo)
    if stack is None:
        return None
    names, keys = list(todo), (ASSET,)
    ext = extreme_persistence(stack)
    fresh = pl.col("ts") > at - timedelta(hours=FRESH_H)
    agg = agg_funding(ext, keys)
    pieces = {
        "persistence": _split(ext, names),
        LATEST_FUNDING: _split(latest_rows(ext, keys).filter(fresh), names),
        AGG_FUNDING: _split(agg, names),
        ACCEL_LAST: _split(last_fresh(funding_acceleration(stack), at, keys), names),
        CARRY_LAST: _split(last_fresh(basis_trade_carry(stack), at, keys), names),
    }
    for name in names:
        ctx = context(windows[name], at)
        ctx._persistence = pieces["persistence"][name]
        for key in (LATEST_FUNDING, AGG_FUNDING, ACCEL_LAST, CARRY_LAST):
            ctx.memo[key] = pieces[key][name]
    return agg


def _by_asset(
    frame: pl.DataFrame, owners: pl.DataFrame, assets: list[str]
) -> dict[str, pl.DataFrame]:
    """:func:`_split` of an analytic's output that lost :data:`ASSET`, through its series."""
    return _split(frame.join(owners, on=["venue", "instrument"], maintain_order="left"), assets)


def _last_bars(struct: pl.DataFrame, bars: int) -> pl.DataFrame:
    """The rows of each series from the time of its ``bars``-th last row on (what
    :meth:`Context.events` reads of one series)."""
    ids = struct.select(pl.struct("venue", "instrument").rle_id().alias("_id"))["_id"].to_numpy()
    n = ids.size
    starts = np.concatenate(([0], np.flatnonzero(np.diff(ids)) + 1))
    ends = np.concatenate((starts[1:], [n]))
    first = np.maximum(starts, ends - bars)
    ts = raw_times(struct["ts"])
    keep = ts >= np.repeat(ts[first], ends - starts)
    return struct.filter(pl.Series(keep))


def _prepare_candles(
    windows: Mapping[str, MarketData], at: datetime, bars: int
) -> pl.DataFrame | None:
    """Returns the stacked candles (one series per asset; None when not stacked)."""
    todo = {
        k: d.candles
        for k, d in windows.items()
        if d.candles is not None and d.candles.height and context(d, at)._structure is None
    }
    stack = _stack(todo, one_series=True)
    if stack is None:
        return None
    names = list(todo)
    # Context.candles: one series each, so sorted by series and ts is sorted by ts
    stack = stack.filter(pl.col("ts") > at - timedelta(hours=HISTORY_H)).sort(
        "venue", "instrument", "ts"
    )
    owners = stack.select(ASSET, "venue", "instrument").unique(maintain_order=True)
    candles = _split(stack, names)
    struct = structure(stack)
    events = _by_asset(structure_events(_last_bars(struct, bars)), owners, names)
    reg = _by_asset(regime(stack), owners, names)
    zz = _by_asset(zones(struct), owners, names)
    parts = _by_asset(struct, owners, names)
    for name in names:
        ctx = context(windows[name], at)
        ctx._candles = candles[name]
        ctx._structure = parts[name]
        ctx._regime = reg[name]
        ctx.memo[ZONES] = zz[name]
        ctx.memo[f"{EVENTS}{bars}"] = events[name].to_dicts()
    return stack


def _tail(frame: pl.DataFrame, n: int) -> pl.DataFrame:
    """The last ``n`` rows of each series of a frame sorted by series."""
    ids = frame.select(pl.struct("venue", "instrument").rle_id().alias("_id"))["_id"].to_numpy()
    starts = np.concatenate(([0], np.flatnonzero(np.diff(ids)) + 1))
    lengths = np.diff(np.concatenate((starts, [ids.size])))
    pos = np.arange(ids.size) - np.repeat(starts, lengths)
    return frame.filter(pl.Series(pos >= np.repeat(lengths, lengths) - n))


def _rows(frame: pl.DataFrame, names: list[str]) -> dict[str, dict[str, Any] | None]:
    """Each asset's last row of ``frame`` (None when it has none)."""
    return {
        a: (p.row(-1, named=True) if p.height else None) for a, p in _split(frame, names).items()
    }


def _with_price(candles: pl.DataFrame, extra: pl.DataFrame, col: str) -> pl.DataFrame:
    """Each bar's close with the as-of ``col`` of its asset (``extra``: ASSET ts col)."""
    c = candles.select("venue", "instrument", "ts", pl.col("c").alias("close_px"), ASSET)
    return c.join_asof(
        extra.sort(ASSET, "ts"), on="ts", by=ASSET, strategy="backward", check_sortedness=False
    ).drop_nulls(col)


def _prepare_divergences(
    windows: Mapping[str, MarketData],
    at: datetime,
    bars: int,
    candles: pl.DataFrame,
    agg: pl.DataFrame | None,
) -> None:
    """The divergence rows (funding, CVD, OI) of the assets in ``candles`` (stacked by
    :func:`_prepare_candles`) whose last bars are near a price extreme, in one pass each."""
    ctxs = {
        k: context(windows[k], at) for k in candles[ASSET].unique(maintain_order=True).to_list()
    }
    near = {k: c.near_extreme(168.0, bars) for k, c in ctxs.items()}
    for k, c in ctxs.items():
        if not near[k]:
            c.memo.setdefault(FDIV_ROW, None)
            c.memo.setdefault(CDIV_ROW, None)
    if agg is not None:
        stacked = set(agg[ASSET].unique().to_list())
        todo = [k for k, c in ctxs.items() if near[k] and FDIV_ROW not in c.memo and k in stacked]
        if todo:
            keep = pl.col(ASSET).is_in(todo)
            frame = _with_price(candles.filter(keep), agg.filter(keep), "rate_8h")
            out = funding_price_divergence(frame)
            rows = _rows(_tail(out, bars).drop_nulls("fdiv_divergence"), todo)
            for k in todo:
                ctxs[k].memo[FDIV_ROW] = rows[k]
    todo = [k for k, c in ctxs.items() if near[k] and CDIV_ROW not in c.memo]
    for k in [k for k in todo if not has_taker_volume(ctxs[k].candles)]:
        ctxs[k].memo[CDIV_ROW] = None
        todo.remove(k)
    if todo:
        sub = candles.filter(pl.col(ASSET).is_in(todo))
        owners = sub.select(ASSET, "venue", "instrument").unique(maintain_order=True)
        cvd = cumulative_volume_delta(delta_from_candles(sub))
        frame = cvd.join(
            sub.select("venue", "instrument", "ts", pl.col("c").alias("close_px")),
            on=["venue", "instrument", "ts"],
        )
        out = cvd_price_divergence(frame)
        tail = _tail(out, bars).drop_nulls("cdiv_divergence")
        rows = _rows(tail.join(owners, on=["venue", "instrument"], maintain_order="left"), todo)
        for k in todo:
            ctxs[k].memo[CDIV_ROW] = rows[k]
    _prepare_oi(windows, ctxs, candles)


def _prepare_oi(
    windows: Mapping[str, MarketData], ctxs: dict[str, Context], candles: pl.DataFrame
) -> None:
    todo = []
    for k, c in ctxs.items():
        oi = windows[k].oi
        if OI_DIV_ROW in c.memo or oi is None or not oi.height:
            continue
        if not c.near_extreme(72.0, 1):
            c.memo[OI_DIV_ROW] = None
        else:
            todo.append(k)
    frames = {k: windows[k].oi.select("ts", "oi_usd") for k in todo}  # type: ignore[union-attr]
    if len({tuple(f.schema.items()) for f in frames.values()}) != 1:
        return
    extra = pl.concat([f.with_columns(pl.lit(k).alias(ASSET)) for k, f in frames.items()])
    frame = _with_price(candles.filter(pl.col(ASSET).is_in(todo)), extra, "oi_usd")
    rows = _rows(_tail(oi_divergence(frame), 1), todo)
    for k in todo:
        r = rows[k]
        ctxs[k].memo[OI_DIV_ROW] = r if r is not None and r["oi_divergence"] is not None else None


def prepare(windows: Mapping[str, MarketData], at: datetime, *, trigger_bars: int) -> None:
    """Fill the contexts at ``at`` of the bundles ``windows`` (cut by
    :meth:`MarketData.window` at ``at``) with the shared computations, each in one pass over all
    of them (the structural events of the last ``trigger_bars`` bars). Bundles whose contexts
    are already filled are left as they are."""
    aggs = [_prepare_funding(group, at) for group in _same_columns(windows, "funding")]
    agg = aggs[0] if len(aggs) == 1 else None
    for group in _same_columns(windows, "candles"):
        candles = _prepare_candles(group, at, trigger_bars)
        if candles is not None:
            _prepare_divergences(windows, at, trigger_bars, candles, agg)


def _same_columns(windows: Mapping[str, MarketData], name: str) -> list[dict[str, MarketData]]:
    """The bundles grouped by the schema of their frame ``name`` (each group can be stacked)."""
    groups: dict[tuple[tuple[str, pl.DataType], ...], dict[str, MarketData]] = {}
    for k, d in windows.items():
        f = getattr(d, name)
        if f is not None:
            groups.setdefault(tuple(f.schema.items()), {})[k] = d
    return list(groups.values())
