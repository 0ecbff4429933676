"""Reading market tables for a :class:`MarketQuery`, and saying why nothing was found.

An empty result names what is available instead: the venues, assets or instruments that the
table holds, or the time span of its data ("no funding after 2026-01-05; the data ends
2023-12-31").
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import polars as pl

from perpscope.errors import UsageError
from perpscope.services.filters import MarketQuery
from perpscope.store.lake import Lake

__all__ = [
    "explain_empty",
    "latest_ts",
    "need",
    "read_table",
    "require_store",
    "resolve",
    "within",
]


def latest_ts(lake: Lake, table: str) -> datetime | None:
    """The greatest ``ts`` of ``table`` (``None`` when it is absent or empty)."""
    if not lake.has_table(table):
        return None
    ts = lake.read(table, columns=["ts"])["ts"]
    value = ts.max() if ts.len() else None
    return value if isinstance(value, datetime) else None


def require_store(lake: Lake) -> None:
    """Raise ``UsageError`` when the store directory is not a perpscope store (a typo in
    ``--store``, or nothing built yet)."""
    if not lake.exists():
        raise UsageError(
            f"no store at {lake.root} (check --store, or run 'perpscope demo', an import or a "
            "backfill first)"
        )


def resolve(lake: Lake, table: str, q: MarketQuery) -> MarketQuery:
    """``q`` with relative bounds counted back from the latest timestamp of ``table``.

    Raises:
        UsageError: the store does not exist, or the window is empty.
    """
    require_store(lake)
    return q.resolved(latest_ts(lake, table) if q.relative else None)


def _filters(q: MarketQuery, *, lookback_h: float = 0.0) -> pl.Expr | None:
    where: pl.Expr | None = None

    def both(e: pl.Expr) -> pl.Expr:
        return e if where is None else where & e

    if q.venues:
        where = both(pl.col("venue").is_in(list(q.venues)))
    if q.instrument:
        where = both(pl.col("instrument") == q.instrument)
    if q.assets:
        any_asset: pl.Expr | None = None
        for a in q.assets:
            e = pl.col("instrument").str.starts_with(f"{a}-")
            any_asset = e if any_asset is None else any_asset | e
        assert any_asset is not None
        where = both(any_asset)
    if q.since_ts is not None:
        where = both(pl.col("ts") >= q.since_ts - timedelta(hours=lookback_h))
    if q.until_ts is not None:
        where = both(pl.col("ts") < q.until_ts)
    return where


def read_table(lake: Lake, table: str, q: MarketQuery, *, lookback_h: float = 0.0) -> pl.DataFrame:
    """Rows of ``table`` matching the (resolved) query; ``since`` is moved back by
    ``lookback_h`` so trailing windows are full at ``since``. An absent table is empty."""
    if not lake.has_table(table):
        return pl.DataFrame()
    return lake.read(table, where=_filters(q, lookback_h=lookback_h))


def within(frame: pl.DataFrame, q: MarketQuery, column: str = "ts") -> pl.DataFrame:
    """Rows of ``frame`` inside the query's window ``[since, until)``."""
    if frame.is_empty():
        return frame
    if q.since_ts is not None:
        frame = frame.filter(pl.col(column) >= q.since_ts)
    if q.until_ts is not None:
        frame = frame.filter(pl.col(column) < q.until_ts)
    return frame


def _day(ts: datetime) -> str:
    return f"{ts:%Y-%m-%d}" if (ts.hour, ts.minute) == (0, 0) else f"{ts:%Y-%m-%d %H:%M}Z"


def _listed(values: list[str], limit: int = 12) -> str:
    shown = ", ".join(values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def explain_empty(lake: Lake, table: str, q: MarketQuery, what: str) -> str:
    """Why ``q`` finds no rows of ``table``: the first filter that matches nothing, with what
    the table does hold (or the time span of the data when only the window is empty)."""
    if not lake.has_table(table):
        return (
            f"no {what} in the store at {lake.root} (import or collect it first, "
            "or run 'perpscope demo')"
        )
    keys = lake.read(table, columns=["venue", "instrument", "ts"])
    if keys.is_empty():
        return f"no {what} in the store at {lake.root} (import or collect it first)"
    assets = pl.col("instrument").str.extract(r"^([A-Z0-9]+)-")
    if q.venues:
        stored = sorted(keys["venue"].unique().to_list())
        missing = [v for v in q.venues if v not in stored]
        if len(missing) == len(q.venues):
            return (
                f"no {what} for venue {', '.join(missing)}; venues in the store: {_listed(stored)}"
            )
        keys = keys.filter(pl.col("venue").is_in(list(q.venues)))
    on = f" on {', '.join(q.venues)}" if q.venues else ""
    if q.assets:
        stored = sorted(keys.select(assets.unique())["instrument"].drop_nulls().to_list())
        if not any(a in stored for a in q.assets):
            return (
                f"no {what} for asset {', '.join(q.assets)}{on}; assets{on or ' in the store'}: "
                f"{_listed(stored)}"
            )
        keys = keys.filter(assets.is_in(list(q.assets)))
    if q.instrument:
        stored = sorted(keys["instrument"].unique().to_list())
        if q.instrument not in stored:
            return (
                f"no {what} for instrument {q.instrument}{on}; instruments"
                f"{on or ' in the store'}: {_listed(stored)}"
            )
        keys = keys.filter(pl.col("instrument") == q.instrument)
    first, last = keys["ts"].min(), keys["ts"].max()
    assert isinstance(first, datetime)
    assert isinstance(last, datetime)
    span = f"the data runs {_day(first)} to {_day(last)}"
    lo, hi = q.since_ts, q.until_ts
    if lo is not None and lo > last:
        return f"no {what} after {_day(lo)}; the data ends {_day(last)}"
    if hi is not None and hi <= first:
        return f"no {what} before {_day(hi)}; the data starts {_day(first)}"
    if lo is not None or hi is not None:
        window = f"{_day(lo) if lo else 'the start'} to {_day(hi) if hi else 'the end'}"
        return f"no {what} from {window}; {span}"
    return f"no {what} in the store for these filters; {span}"


def need(lake: Lake, table: str, q: MarketQuery, frame: pl.DataFrame, what: str) -> None:
    """Raise ``UsageError`` explaining the empty result when ``frame`` has no rows."""
    if frame.is_empty():
        raise UsageError(explain_empty(lake, table, q, what))


def narrowed(q: MarketQuery, **changes: object) -> MarketQuery:
    """``q`` with some fields replaced (a typed wrapper of ``dataclasses.replace``)."""
    return replace(q, **changes)  # type: ignore[arg-type]
