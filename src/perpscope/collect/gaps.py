"""Holes in stored history: where consecutive rows of a series are further apart than its step.

A series is one venue, instrument and (per table) kind/timeframe, OI source or period. Its step
is the bar length or period; for funding it is each settlement's own ``interval_h`` (so an
interval change from 8 h to 4 h is not a hole, but a missing settlement is). OI snapshots have no
fixed step and are not checked.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from perpscope.store.lake import Lake
from perpscope.venues.base import Stream, period_ms

__all__ = ["GAP_TABLES", "find_gaps", "series_of"]

GAP_TABLES: Final = ("funding", "ohlcv", "open_interest", "long_short", "taker_volume")
_SCHEMA: Final[dict[str, pl.DataType]] = {
    "table": pl.String(),
    "venue": pl.String(),
    "instrument": pl.String(),
    "series": pl.String(),
    "gap_start": pl.Datetime("us", "UTC"),
    "gap_end": pl.Datetime("us", "UTC"),
    "missing": pl.Int64(),
}


def series_of(stream: Stream) -> str:
    """The ``series`` label :func:`find_gaps` gives the rows of ``stream``."""
    if stream.family == "oi":
        return f"hist_{stream.period}"
    if stream.family == "funding":
        return "funding"
    return stream.name.split(":", 1)[1]


def _series_expr(table: str) -> pl.Expr:
    if table == "ohlcv":
        return pl.concat_str("kind", "timeframe", separator=":")
    if table == "open_interest":
        return pl.col("source")
    if table == "long_short":
        return pl.concat_str("kind", "period", separator=":")
    if table == "taker_volume":
        return pl.col("period")
    return pl.lit("funding")


def _step_ms(frame: pl.DataFrame, table: str) -> pl.Expr:
    if table == "funding":
        return (pl.col("interval_h") * 3_600_000).cast(pl.Int64)
    label = {"ohlcv": "timeframe", "long_short": "period", "taker_volume": "period"}.get(table)
    periods = frame["series"].unique().to_list()
    mapping: dict[str, int] = {}
    for s in periods:
        text = s.rsplit(":", 1)[-1] if label else s.removeprefix("hist_")
        try:
            mapping[s] = period_ms(text)
        except Exception:  # noqa: BLE001 - a series without a fixed step is not checked
            continue
    return pl.col("series").replace_strict(mapping, default=None, return_dtype=pl.Int64)


def find_gaps(
    lake: Lake,
    *,
    venue: str | None = None,
    instrument: str | None = None,
    table: str | None = None,
) -> pl.DataFrame:
    """Every hole in the stored series, optionally of one venue, instrument or table.

    Returns:
        One row per hole: ``table, venue, instrument, series, gap_start`` (last row before the
        hole), ``gap_end`` (first row after it), ``missing`` (rows expected in between).
    """
    out = []
    for name in [table] if table else GAP_TABLES:
        if name not in GAP_TABLES or not lake.has_table(name):
            continue
        where = None
        if venue is not None:
            where = pl.col("venue") == venue
        if instrument is not None:
            cond = pl.col("instrument") == instrument
            where = cond if where is None else where & cond
        frame = lake.read(name, None, where).with_columns(_series_expr(name).alias("series"))
        if name == "open_interest":
            frame = frame.filter(pl.col("series").str.starts_with("hist_"))
        if frame.height < 2:
            continue
        group = ["venue", "instrument", "series"]
        frame = frame.sort([*group, "ts"]).with_columns(_step_ms(frame, name).alias("step"))
        frame = frame.with_columns(
            pl.col("ts").shift(1).over(group).alias("gap_start"),
            pl.col("ts").dt.epoch("ms").diff().over(group).alias("delta"),
        )
        # a funding gap is measured in whole hours (settlement times are snapped to minutes)
        holes = frame.filter(pl.col("step").is_not_null() & (pl.col("delta") > pl.col("step")))
        out.append(
            holes.select(
                pl.lit(name).alias("table"),
                "venue",
                "instrument",
                "series",
                "gap_start",
                pl.col("ts").alias("gap_end"),
                ((pl.col("delta") + pl.col("step") // 2) // pl.col("step") - 1)
                .cast(pl.Int64)
                .alias("missing"),
            ).filter(pl.col("missing") > 0)
        )
    if not out:
        return pl.DataFrame(schema=_SCHEMA)
    return pl.concat([o.cast(_SCHEMA) for o in out]).sort(  # type: ignore[arg-type]
        ["table", "venue", "instrument", "series", "gap_start"]
    )
