"""Import public market-data files (CSV, CSV.gz, Parquet) into the store.

Each importer reads the whole file, maps its columns to a table of ``domain.schema``, validates
every row, and writes the valid rows in one idempotent commit. A file with invalid rows writes
nothing and reports them with their line numbers, unless ``skip_bad`` is set. Importing the
same file twice changes nothing.

Timestamps: ``ts_unit`` is ``ms``, ``s``, ``iso`` or ``auto`` (numbers above 1e11 are milliseconds,
other numbers seconds, text ISO 8601). A timestamp without a zone is read as local time
``tz_offset_h`` hours ahead of UTC (public files are sometimes written in local time), and text
with an explicit zone is converted to UTC.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import polars as pl

from perpscope.domain.symbols import InstrumentKind, parse_instrument, parse_venue
from perpscope.errors import BadRow, BadRowsError, DataContractError, UsageError
from perpscope.store.lake import Lake

__all__ = [
    "FUNDING_INTERVALS_H",
    "FileOptions",
    "ImportReport",
    "import_funding",
    "import_ohlcv",
    "import_open_interest",
    "infer_intervals",
    "read_table_file",
]

TsUnit = Literal["auto", "ms", "s", "iso"]
Progress = Callable[[str], None]

FUNDING_INTERVALS_H: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
"""Funding intervals that the spacing of settlements can establish."""

MAX_ABS_FUNDING_RATE = 0.05
"""Rates of ±5% per interval or beyond are rejected: such files are almost always in percent."""

_TIMEFRAME_RE = re.compile(r"^\d+[mhdwM]$")
_OHLC_NAMES = {
    "o": ("open", "o", "openprice", "open_px"),
    "h": ("high", "h", "highprice", "high_px"),
    "l": ("low", "l", "lowprice", "low_px"),
    "c": ("close", "c", "closeprice", "close_px"),
    "volume": ("volume", "vol", "v", "basevolume", "volume_base"),
    "quote_volume": ("quotevolume", "quoteassetvolume", "turnover", "volumequote", "quote_volume"),
    "taker_buy_volume": (
        "takerbuyvolume",
        "takerbuybaseassetvolume",
        "takerbuybasevolume",
        "takerbuybase",
    ),
}
_TS_NAMES = (
    "ts",
    "timestamp",
    "time",
    "opentime",
    "date",
    "datetime",
    "settlementts",
    "fundingtime",
)
_RATE_NAMES = ("rate", "fundingrate", "rateraw", "lastfundingrate")
_OI_NAMES = ("oi", "openinterest", "sumopeninterest", "oivalue", "oiclose")
_REQUIRED = ("o", "h", "l", "c")
_ZONED_FORMATS = ("%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M%z")
_NAIVE_FORMATS = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


@dataclass(frozen=True, slots=True)
class FileOptions:
    """How to read a file's rows and timestamps."""

    ts_col: str | None = None
    ts_unit: TsUnit = "auto"
    tz_offset_h: float = 0.0
    filters: tuple[tuple[str, str], ...] = ()
    skip_bad: bool = False


@dataclass(slots=True)
class ImportReport:
    """What an import did."""

    table: str
    path: str
    rows_read: int = 0
    rows_bad: int = 0
    rows_written: int = 0
    rows_already_stored: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    bad_examples: list[BadRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _find_column(
    frame: pl.DataFrame, given: str | None, candidates: Sequence[str], what: str, option: str
) -> str:
    names = [c for c in frame.columns if c != "_line"]
    if given is not None:
        if given not in names:
            raise UsageError(f"column {given!r} not in file; columns: {', '.join(names)}")
        return given
    wanted = {_norm(c) for c in candidates}
    for col in names:
        if _norm(col) in wanted:
            return col
    raise UsageError(
        f"no {what} column found (looked for {', '.join(candidates)}"
        + (f"; name it with {option}" if option else "")
        + f"); columns: {', '.join(names)}"
    )


def read_table_file(path: Path) -> tuple[pl.DataFrame, str]:
    """Read a CSV, CSV.gz or Parquet file; CSV columns are read as text for validation.

    Returns the frame and the word for its row positions (``line`` for CSV, ``row`` for Parquet).
    """
    if not path.is_file():
        raise UsageError(f"cannot read {path}: no such file")
    name = path.name.lower()
    try:
        if name.endswith(".parquet") or name.endswith(".pq"):
            return pl.read_parquet(path), "row"
        if name.endswith((".csv", ".csv.gz", ".txt", ".tsv", ".gz")):
            sep = "\t" if ".tsv" in name else ","
            frame = pl.read_csv(
                path, infer_schema=False, separator=sep, truncate_ragged_lines=False
            )
            return frame, "line"
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {' '.join(str(exc).split())[:300]}") from None
    raise UsageError(f"cannot read {path}: expected .csv, .csv.gz or .parquet")


def _apply_filters(frame: pl.DataFrame, filters: Sequence[tuple[str, str]]) -> pl.DataFrame:
    for col, value in filters:
        if col not in frame.columns:
            raise UsageError(
                f"--filter column {col!r} not in file; columns: {', '.join(frame.columns)}"
            )
        frame = frame.filter(pl.col(col).cast(pl.String) == value)
    return frame


def _parse_ts(col: pl.Series, unit: TsUnit, tz_offset_h: float) -> pl.Series:
    """Parse a timestamp column to UTC microseconds; unparsable values become null."""
    offset = pl.duration(microseconds=round(tz_offset_h * 3_600_000_000))
    if col.dtype == pl.Datetime:
        dt = col.dt.cast_time_unit("us")
        if getattr(col.dtype, "time_zone", None) is None:
            frame = pl.DataFrame({"t": dt}).select(
                (pl.col("t") - offset).dt.replace_time_zone("UTC")
            )
            return frame.to_series()
        return dt.dt.convert_time_zone("UTC")
    if unit == "auto":
        numeric = col.cast(pl.Float64, strict=False)
        if numeric.null_count() == col.null_count() and len(col):
            unit = "ms" if float(numeric.abs().max() or 0) > 1e11 else "s"  # type: ignore[arg-type]
        else:
            unit = "iso"
    if unit in ("ms", "s"):
        scale = 1_000 if unit == "ms" else 1_000_000
        num = col.cast(pl.Float64, strict=False)
        micros = (num * scale).round(0).cast(pl.Int64, strict=False)
        frame = pl.DataFrame({"m": micros}).select(
            pl.from_epoch(pl.col("m"), time_unit="us").dt.replace_time_zone("UTC")
        )
        return frame.to_series()
    text = (
        col.cast(pl.String)
        .str.strip_chars()
        .str.replace("T", " ", literal=True)
        .str.replace(r"Z$", "+00:00")
    )
    parsed = pl.DataFrame({"t": text}).select(
        pl.coalesce(
            *[
                pl.col("t").str.strptime(pl.Datetime("us", "UTC"), fmt, strict=False, exact=True)
                for fmt in _ZONED_FORMATS
            ],
            *[
                (
                    pl.col("t").str.strptime(pl.Datetime("us"), fmt, strict=False, exact=True)
                    - offset
                ).dt.replace_time_zone("UTC")
                for fmt in _NAIVE_FORMATS
            ],
        )
    )
    return parsed.to_series()


def _number(col: pl.Series) -> pl.Series:
    if col.dtype.is_numeric():
        return col.cast(pl.Float64)
    return col.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)


def _collect_bad(frame: pl.DataFrame, checks: list[tuple[pl.Expr, str]]) -> pl.DataFrame:
    """Add a ``_bad`` column with the first failed check's reason (null when the row is valid)."""
    reason: pl.Expr = pl.lit(None, dtype=pl.String)
    for failed, why in reversed(checks):
        reason = pl.when(failed).then(pl.lit(why)).otherwise(reason)
    return frame.with_columns(_bad=reason)


def _split_bad(
    frame: pl.DataFrame, report: ImportReport, opts: FileOptions, pos_word: str
) -> pl.DataFrame:
    bad = frame.filter(pl.col("_bad").is_not_null())
    report.rows_bad = bad.height
    report.bad_examples = [
        BadRow(int(r["_line"]), str(r["_bad"])) for r in bad.head(100).iter_rows(named=True)
    ]
    if bad.height and not opts.skip_bad:
        raise BadRowsError(report.path, report.bad_examples, report.rows_read, pos_word, bad.height)
    return frame.filter(pl.col("_bad").is_null()).drop("_bad", "_line")


def _prepare(
    path: Path, opts: FileOptions, table: str, progress: Progress | None
) -> tuple[pl.DataFrame, ImportReport, str, pl.Series]:
    if progress:
        progress(f"reading {path.name}")
    raw, pos_word = read_table_file(path)
    first_line = 2 if pos_word == "line" else 1
    raw = raw.with_row_index("_line", offset=first_line)
    raw = _apply_filters(raw, opts.filters)
    report = ImportReport(table=table, path=str(path), rows_read=raw.height)
    if progress:
        progress(f"validating {raw.height} rows")
    if raw.height == 0:
        raise DataContractError(
            f"{path}: no rows to import" + (" after --filter" if opts.filters else "")
        )
    ts_col = _find_column(raw, opts.ts_col, _TS_NAMES, "timestamp", "--ts-col")
    ts = _parse_ts(raw.get_column(ts_col), opts.ts_unit, opts.tz_offset_h)
    return raw, report, pos_word, ts


def _write(
    lake: Lake, table: str, rows: pl.DataFrame, report: ImportReport, progress: Progress | None
) -> ImportReport:
    if rows.height:
        report.first_ts = rows.get_column("ts").min()  # type: ignore[assignment]
        report.last_ts = rows.get_column("ts").max()  # type: ignore[assignment]
    if progress:
        progress(f"writing {rows.height} rows to {table}")
    result = lake.ingest(table, rows)
    report.rows_written = result.rows_written
    report.rows_already_stored = rows.height - result.rows_written
    return report


def _venue_instrument(venue: str, instrument: str, *, perp_only: bool = False) -> tuple[str, str]:
    try:
        v = parse_venue(venue)
        inst = parse_instrument(instrument)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if perp_only and inst.kind is not InstrumentKind.PERP:
        raise UsageError(f"funding applies to perpetuals; {instrument} is a {inst.kind.value}")
    return v, str(inst)


def infer_intervals(ts: pl.Series) -> tuple[pl.Series, int]:
    """Infer each settlement's funding interval (hours) from the spacing of sorted timestamps.

    A row's interval is the spacing to the previous settlement when that spacing is one of
    :data:`FUNDING_INTERVALS_H`; the first row takes the spacing to the next one. Any other spacing
    (a gap of missing settlements, or an off-schedule settlement) carries the last established
    interval forward. Returns the intervals and how many rows had such an irregular spacing.
    """
    hours = ts.diff().dt.total_minutes() / 60.0
    frame = pl.DataFrame({"h": hours})
    allowed = list(FUNDING_INTERVALS_H)
    first_next = hours.shift(-1)
    frame = (
        frame.with_columns(first_next=first_next)
        .with_row_index("i")
        .with_columns(
            cand=pl.when(pl.col("i") == 0)
            .then(pl.when(pl.col("first_next").is_in(allowed)).then(pl.col("first_next")))
            .when(pl.col("h").is_in(allowed))
            .then(pl.col("h"))
        )
    )
    irregular = int(frame.filter((pl.col("i") > 0) & pl.col("cand").is_null()).height)
    filled = frame.get_column("cand").fill_null(strategy="forward").fill_null(strategy="backward")
    return filled, irregular


def import_funding(
    lake: Lake,
    path: Path,
    *,
    venue: str,
    instrument: str,
    opts: FileOptions,
    value_col: str | None = None,
    interval_h: float | None = None,
    interval_col: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import realised funding settlements into ``funding``.

    Timestamps are snapped to the whole minute (venues report jitter like ``00:00:00.002``). The
    interval is ``interval_h``, else the column ``interval_col``, else inferred per row from the
    spacing of settlements (:func:`infer_intervals`).
    """
    v, inst = _venue_instrument(venue, instrument, perp_only=True)
    if interval_h is not None and interval_h <= 0:
        raise UsageError("--interval-h must be positive")
    raw, report, pos_word, ts = _prepare(path, opts, "funding", progress)
    rate_col = _find_column(raw, value_col, _RATE_NAMES, "funding-rate", "--value-col")
    frame = raw.select(
        "_line",
        ts=ts.dt.round("1m"),
        rate=_number(raw.get_column(rate_col)),
        interval_h=(
            _number(
                raw.get_column(_find_column(raw, interval_col, (), "interval", "--interval-col"))
            )
            if interval_col
            else pl.lit(interval_h, dtype=pl.Float64)
        ),
    )
    frame = _collect_bad(
        frame,
        [
            (pl.col("ts").is_null(), "unparsable timestamp"),
            (pl.col("rate").is_null() | pl.col("rate").is_nan(), "rate is not a number"),
            (
                pl.col("rate").abs() >= MAX_ABS_FUNDING_RATE,
                f"|rate| >= {MAX_ABS_FUNDING_RATE}: rates are fractions per interval, not percent",
            ),
            (
                pl.lit(interval_col is not None) & ~(pl.col("interval_h") > 0),
                "interval is not a positive number",
            ),
        ],
    )
    good = _split_bad(frame, report, opts, pos_word)
    good = good.sort("ts").unique(subset="ts", keep="last", maintain_order=True)
    if interval_h is None and interval_col is None:
        if good.height < 2:
            raise UsageError(
                "cannot infer the funding interval from fewer than 2 rows: give --interval-h"
            )
        intervals, irregular = infer_intervals(good.get_column("ts"))
        good = good.with_columns(interval_h=intervals)
        if irregular:
            report.notes.append(
                f"{irregular} settlements were off the regular spacing (gaps or off-schedule "
                "rows); they keep the last established interval"
            )
    rows = good.with_columns(venue=pl.lit(v), instrument=pl.lit(inst))
    return _write(lake, "funding", rows, report, progress)


def import_ohlcv(
    lake: Lake,
    path: Path,
    *,
    venue: str,
    instrument: str,
    timeframe: str,
    kind: Literal["trade", "mark", "index", "premium"],
    opts: FileOptions,
    progress: Progress | None = None,
) -> ImportReport:
    """Import candles into ``ohlcv``; open/high/low/close/volume columns are found by name."""
    v, inst = _venue_instrument(venue, instrument)
    if not _TIMEFRAME_RE.match(timeframe):
        raise UsageError(f"bad --timeframe {timeframe!r}: use forms like 1m, 15m, 1h, 4h, 1d")
    raw, report, pos_word, ts = _prepare(path, opts, "ohlcv", progress)
    cols: dict[str, pl.Series] = {}
    for target, names in _OHLC_NAMES.items():
        try:
            cols[target] = _number(raw.get_column(_find_column(raw, None, names, target, "")))
        except UsageError:
            if target in _REQUIRED:
                raise
    frame = pl.DataFrame({"_line": raw.get_column("_line"), "ts": ts, **cols})
    price_checks: list[tuple[pl.Expr, str]] = [(pl.col("ts").is_null(), "unparsable timestamp")]
    price_checks += [
        (pl.col(c).is_null() | pl.col(c).is_nan(), f"{c} is not a number") for c in _REQUIRED
    ]
    if kind != "premium":
        price_checks.append((pl.min_horizontal(*_REQUIRED) <= 0, "prices must be positive"))
    price_checks += [
        (pl.col("h") < pl.max_horizontal("o", "c", "l"), "high is below open, close or low"),
        (pl.col("l") > pl.min_horizontal("o", "c", "h"), "low is above open, close or high"),
    ]
    if "volume" in cols:
        price_checks.append((pl.col("volume") < 0, "volume is negative"))
    good = _split_bad(_collect_bad(frame, price_checks), report, opts, pos_word)
    rows = good.with_columns(
        venue=pl.lit(v), instrument=pl.lit(inst), kind=pl.lit(kind), timeframe=pl.lit(timeframe)
    )
    return _write(lake, "ohlcv", rows, report, progress)


def import_open_interest(
    lake: Lake,
    path: Path,
    *,
    venue: str,
    instrument: str,
    unit: Literal["contracts", "base", "usd"],
    opts: FileOptions,
    value_col: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import open interest into ``open_interest`` with source ``import``.

    The value is stored as reported (``oi_value`` in ``unit``); it also fills ``oi_usd`` when the
    unit is USD and ``oi_base`` when it is base units.
    """
    v, inst = _venue_instrument(venue, instrument)
    raw, report, pos_word, ts = _prepare(path, opts, "open_interest", progress)
    value = _number(
        raw.get_column(_find_column(raw, value_col, _OI_NAMES, "open-interest", "--value-col"))
    )
    frame = pl.DataFrame({"_line": raw.get_column("_line"), "ts": ts, "oi_value": value})
    frame = _collect_bad(
        frame,
        [
            (pl.col("ts").is_null(), "unparsable timestamp"),
            (
                pl.col("oi_value").is_null() | pl.col("oi_value").is_nan(),
                "open interest is not a number",
            ),
            (pl.col("oi_value") < 0, "open interest is negative"),
        ],
    )
    good = _split_bad(frame, report, opts, pos_word)
    rows = good.with_columns(
        venue=pl.lit(v),
        instrument=pl.lit(inst),
        source=pl.lit("import"),
        oi_unit=pl.lit(unit),
        oi_usd=pl.col("oi_value") if unit == "usd" else pl.lit(None, dtype=pl.Float64),
        oi_base=pl.col("oi_value") if unit == "base" else pl.lit(None, dtype=pl.Float64),
    )
    return _write(lake, "open_interest", rows, report, progress)
