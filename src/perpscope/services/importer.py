"""Import public market-data files (CSV, CSV.gz, Parquet) into the store.

Each importer reads the whole file, maps its columns to a table of ``domain.schema``, validates
every row (its own checks, then the store's value rules, see ``services.import_finish``), and
writes the valid rows in one idempotent commit. A file with invalid rows writes nothing and
reports them with their line numbers, unless ``skip_bad`` is set. Rows repeating a key with other
values are refused unless ``on_conflict`` says which to keep. Importing the same file twice
changes nothing; ``replace`` overwrites the stored rows of the file's keys instead.

Timestamps: ``ts_unit`` is ``ms``, ``s``, ``iso`` or ``auto`` (numbers above 1e11 are milliseconds,
other numbers seconds, text ISO 8601; a file mixing seconds and milliseconds has its minority rows
refused). A timestamp without a zone is read as local time ``tz_offset_h`` hours (-14 to 14) ahead
of UTC (public files are sometimes written in local time), and text with an explicit zone is
converted to UTC.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import polars as pl

from perpscope.domain.schema import PERIOD_RE
from perpscope.domain.symbols import InstrumentKind, parse_instrument, parse_venue
from perpscope.errors import BadInputError, BadRow, BadRowsError, UsageError
from perpscope.services.import_finish import ConflictPolicy, ImportReport, finish
from perpscope.services.import_read import TsUnit, number, parse_ts, read_table_file
from perpscope.store.lake import Lake

__all__ = [
    "FUNDING_INTERVALS_H",
    "MAX_TZ_OFFSET_H",
    "FileOptions",
    "ImportReport",
    "import_funding",
    "import_ohlcv",
    "import_open_interest",
    "infer_intervals",
    "read_table_file",
]

Progress = Callable[[str], None]

FUNDING_INTERVALS_H: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
"""Funding intervals that the spacing of settlements can establish."""

MAX_ABS_FUNDING_RATE = 0.05
"""Rates of ±5% per interval or beyond are rejected: such files are almost always in percent."""

MAX_TZ_OFFSET_H = 14.0
"""Local clocks run from UTC-12 to UTC+14; a larger offset is a typo."""

_TIMEFRAME_RE = re.compile(PERIOD_RE)
_TIMEFRAME_S = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
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


@dataclass(frozen=True, slots=True)
class FileOptions:
    """How to read a file's rows and timestamps."""

    ts_col: str | None = None
    ts_unit: TsUnit = "auto"
    tz_offset_h: float = 0.0
    filters: tuple[tuple[str, str], ...] = ()
    skip_bad: bool = False
    on_conflict: ConflictPolicy = "refuse"
    replace: bool = False


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


def _apply_filters(frame: pl.DataFrame, filters: Sequence[tuple[str, str]]) -> pl.DataFrame:
    for col, value in filters:
        if col not in frame.columns:
            raise UsageError(
                f"--filter column {col!r} not in file; columns: {', '.join(frame.columns)}"
            )
        frame = frame.filter(pl.col(col).cast(pl.String) == value)
    return frame


def _collect_bad(frame: pl.DataFrame, checks: list[tuple[pl.Expr, str | pl.Expr]]) -> pl.DataFrame:
    """Add a ``_bad`` column with the first failed check's reason (null when the row is valid)."""
    reason: pl.Expr = pl.lit(None, dtype=pl.String)
    for failed, why in reversed(checks):
        text = pl.lit(why) if isinstance(why, str) else why
        reason = pl.when(failed.fill_null(False)).then(text).otherwise(reason)
    return frame.with_columns(_bad=reason)


def _split(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows that passed the importer's checks (no ``_bad``), and ``_line, _bad`` of the rest."""
    bad = frame.filter(pl.col("_bad").is_not_null()).select("_line", "_bad")
    return frame.filter(pl.col("_bad").is_null()).drop("_bad"), bad


def _ts_check() -> tuple[pl.Expr, pl.Expr]:
    """The first check of every importer: a usable timestamp."""
    return (
        pl.col("ts").is_null(),
        pl.coalesce(pl.col("_ts_why"), pl.lit("unparsable timestamp")),
    )


def _prepare(
    path: Path, opts: FileOptions, table: str, progress: Progress | None
) -> tuple[pl.DataFrame, ImportReport, str, pl.Series, pl.Series]:
    if not math.isfinite(opts.tz_offset_h) or abs(opts.tz_offset_h) > MAX_TZ_OFFSET_H:
        raise UsageError(
            f"bad --tz-offset-h {opts.tz_offset_h}: give the file's UTC offset in hours, "
            f"from -{MAX_TZ_OFFSET_H:g} to {MAX_TZ_OFFSET_H:g}"
        )
    if opts.on_conflict not in ("refuse", "first", "last"):
        raise UsageError(f"bad --on-conflict {opts.on_conflict!r}: use first or last")
    if progress:
        progress(f"reading {path.name}")
    raw, pos_word = read_table_file(path)
    first_line = 2 if pos_word == "line" else 1
    raw = raw.with_row_index("_line", offset=first_line).with_columns(
        pl.col("_line").cast(pl.Int64)
    )
    raw = _apply_filters(raw, opts.filters)
    report = ImportReport(table=table, path=str(path), rows_read=raw.height)
    if progress:
        progress(f"validating {raw.height} rows")
    if raw.height == 0:
        raise BadInputError(
            f"{path}: no rows to import" + (" after --filter" if opts.filters else "")
        )
    ts_col = _find_column(raw, opts.ts_col, _TS_NAMES, "timestamp", "--ts-col")
    ts, why = parse_ts(raw.get_column(ts_col), opts.ts_unit, opts.tz_offset_h)
    return raw, report, pos_word, ts, why


def _finish(
    lake: Lake,
    table: str,
    good: pl.DataFrame,
    bad: pl.DataFrame,
    report: ImportReport,
    opts: FileOptions,
    pos_word: str,
    progress: Progress | None,
    check: Callable[[pl.DataFrame], None] | None = None,
) -> ImportReport:
    return finish(
        lake,
        table,
        good,
        bad,
        report,
        skip_bad=opts.skip_bad,
        on_conflict=opts.on_conflict,
        replace=opts.replace,
        pos_word=pos_word,
        progress=progress,
        check=check,
    )


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
    interval forward. Returns the intervals and how many rows had such an irregular spacing; the
    intervals are null when no spacing establishes one.
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


def _irregular_gaps(settlements: pl.DataFrame, limit: int = 3) -> list[str]:
    """``16h between 2024-01-01 00:00 (line 2) and 2024-01-01 16:00 (line 3)`` for odd spacings."""
    frame = settlements.select(
        "ts",
        "_line",
        prev_ts=pl.col("ts").shift(1),
        prev_line=pl.col("_line").shift(1),
        h=pl.col("ts").diff().dt.total_minutes() / 60.0,
    ).filter(pl.col("h").is_not_null() & ~pl.col("h").is_in(list(FUNDING_INTERVALS_H)))
    return [
        f"{r['h']:g}h between {_when(r['prev_ts'])} (line {r['prev_line']}) and "
        f"{_when(r['ts'])} (line {r['_line']})"
        for r in frame.head(limit).iter_rows(named=True)
    ]


def _when(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


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
    if interval_h is not None and not (math.isfinite(interval_h) and 1 <= interval_h <= 24):
        raise UsageError(f"bad --interval-h {interval_h}: give the interval in hours, 1 to 24")
    raw, report, pos_word, ts, ts_why = _prepare(path, opts, "funding", progress)
    rate_col = _find_column(raw, value_col, _RATE_NAMES, "funding-rate", "--value-col")
    frame = raw.select(
        "_line",
        ts=ts.dt.round("1m"),
        _ts_why=ts_why,
        rate=number(raw.get_column(rate_col)),
        interval_h=(
            number(
                raw.get_column(_find_column(raw, interval_col, (), "interval", "--interval-col"))
            )
            if interval_col
            else pl.lit(interval_h, dtype=pl.Float64)
        ),
    )
    frame = _collect_bad(
        frame,
        [
            _ts_check(),
            (pl.col("rate").is_null() | pl.col("rate").is_nan(), "rate is not a number"),
            (
                pl.col("rate").abs() >= MAX_ABS_FUNDING_RATE,
                f"|rate| >= {MAX_ABS_FUNDING_RATE}: rates are fractions per interval, not percent",
            ),
            (
                pl.lit(interval_col is not None) & pl.col("interval_h").is_null(),
                "interval is not a number",
            ),
        ],
    )
    good, bad = _split(frame.drop("_ts_why"))
    if interval_h is None and interval_col is None:
        if bad.height and not opts.skip_bad:  # report them before inferring from the rest
            shown = [BadRow(int(n), str(w)) for n, w in bad.head(100).iter_rows()]
            raise BadRowsError(report.path, shown, report.rows_read, pos_word, bad.height)
        good = _with_inferred_intervals(good, report)
    rows = good.with_columns(venue=pl.lit(v), instrument=pl.lit(inst))
    return _finish(lake, "funding", rows, bad, report, opts, pos_word, progress)


def _with_inferred_intervals(good: pl.DataFrame, report: ImportReport) -> pl.DataFrame:
    """Each settlement's interval from the spacing of the file's distinct settlement times."""
    settlements = good.sort("ts", "_line").unique(subset="ts", keep="first", maintain_order=True)
    if settlements.height < 2:
        raise UsageError(
            "cannot infer the funding interval from fewer than 2 settlements: give --interval-h"
        )
    intervals, irregular = infer_intervals(settlements.get_column("ts"))
    gaps = _irregular_gaps(settlements)
    if intervals.null_count():
        raise BadInputError(
            f"{report.path}: cannot infer the funding interval: no two settlements are "
            f"{', '.join(f'{h:g}' for h in FUNDING_INTERVALS_H)}h apart "
            f"({'; '.join(gaps)}); give --interval-h"
        )
    if irregular:
        report.notes.append(
            f"{irregular} settlements were off the regular spacing (gaps or off-schedule "
            f"rows: {'; '.join(gaps)}); they keep the last established interval"
        )
    by_ts = settlements.select("ts", interval_h=intervals)
    return good.drop("interval_h").join(by_ts, on="ts", how="left", maintain_order="left")


def _timeframe_seconds(timeframe: str) -> int | None:
    """Seconds of a bar length (None for months, whose length varies)."""
    unit = timeframe[-1]
    return int(timeframe[:-1]) * _TIMEFRAME_S[unit] if unit in _TIMEFRAME_S else None


def _human(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _check_spacing(good: pl.DataFrame, timeframe: str, path: str, pos_word: str) -> None:
    """Refuse bars whose spacing contradicts ``timeframe`` (1h bars imported as 1d, and back).

    No two bars may be closer than one bar, and the most common spacing must be one bar.
    """
    step = _timeframe_seconds(timeframe)
    if step is None:
        return
    bars = good.select("ts", "_line").sort("ts").unique(subset="ts", maintain_order=True)
    if bars.height < 2:
        return
    spacing = bars.with_columns(
        s=pl.col("ts").diff().dt.total_seconds(),
        prev_ts=pl.col("ts").shift(1),
        prev_line=pl.col("_line").shift(1),
    ).drop_nulls("s")
    closest = spacing.sort("s").row(0, named=True)
    if closest["s"] < step:
        raise BadInputError(
            f"{path}: bars are {_human(closest['s'])} apart ({pos_word}s {closest['prev_line']} "
            f"and {closest['_line']}: {_when(closest['prev_ts'])}, {_when(closest['ts'])}) but "
            f"--timeframe is {timeframe}"
        )
    usual = float(spacing.get_column("s").mode().min())  # type: ignore[arg-type]
    if bars.height >= 3 and usual != step:  # two bars may be a gap apart
        raise BadInputError(
            f"{path}: most bars are {_human(usual)} apart but --timeframe is {timeframe}"
        )


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
    """Import candles into ``ohlcv``; open/high/low/close/volume columns are found by name.

    The bars' spacing must agree with ``timeframe``: the closest two bars may not be nearer than
    one bar, and the most common spacing must be one bar (gaps are allowed).
    """
    v, inst = _venue_instrument(venue, instrument)
    if not _TIMEFRAME_RE.match(timeframe):
        raise UsageError(f"bad --timeframe {timeframe!r}: use forms like 1m, 15m, 1h, 4h, 1d")
    raw, report, pos_word, ts, ts_why = _prepare(path, opts, "ohlcv", progress)
    cols: dict[str, pl.Series] = {}
    for target, names in _OHLC_NAMES.items():
        try:
            cols[target] = number(raw.get_column(_find_column(raw, None, names, target, "")))
        except UsageError:
            if target in _REQUIRED:
                raise
    frame = pl.DataFrame({"_line": raw.get_column("_line"), "ts": ts, "_ts_why": ts_why, **cols})
    price_checks: list[tuple[pl.Expr, str | pl.Expr]] = [_ts_check()]
    price_checks += [
        (pl.col(c).is_null() | pl.col(c).is_nan(), f"{c} is not a number") for c in _REQUIRED
    ]
    price_checks += [
        (pl.col("h") < pl.max_horizontal("o", "c", "l"), "high is below open, close or low"),
        (pl.col("l") > pl.min_horizontal("o", "c", "h"), "low is above open, close or high"),
    ]
    good, bad = _split(_collect_bad(frame, price_checks).drop("_ts_why"))
    rows = good.with_columns(
        venue=pl.lit(v), instrument=pl.lit(inst), kind=pl.lit(kind), timeframe=pl.lit(timeframe)
    )

    def spacing(accepted: pl.DataFrame) -> None:
        _check_spacing(accepted, timeframe, report.path, pos_word)

    return _finish(lake, "ohlcv", rows, bad, report, opts, pos_word, progress, spacing)


def _oi_units(column: str) -> tuple[str, ...]:
    """The units a column's name allows (Binance's ``sumOpenInterestValue`` is USD on USDⓈ-M and
    base coin on COIN-M; ``sumOpenInterest`` base or contracts; a bare ``oi`` says nothing)."""
    n = _norm(column)
    if any(w in n for w in ("usd", "notional", "quote")):
        return ("usd",)
    if "value" in n:
        return ("usd", "base")
    if "contract" in n:
        return ("contracts",)
    if any(w in n for w in ("base", "coin", "qty", "amount")):
        return ("base",)
    if n.startswith("sum"):
        return ("base", "contracts")
    return ("contracts", "base", "usd")


def _oi_column(raw: pl.DataFrame, unit: str) -> str:
    """The one open-interest column whose name allows ``unit``; refuse to guess otherwise."""
    names = [c for c in raw.columns if c != "_line"]
    candidates = [
        c
        for c in names
        if _norm(c) in _OI_NAMES or "openinterest" in _norm(c) or _norm(c).startswith("oi")
    ]
    if not candidates:
        raise UsageError(
            f"no open-interest column found (looked for {', '.join(_OI_NAMES)}; name it with "
            f"--value-col); columns: {', '.join(names)}"
        )
    fitting = [c for c in candidates if unit in _oi_units(c)]
    listed = ", ".join(f"{c} ({' or '.join(_oi_units(c))})" for c in candidates)
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        raise UsageError(
            f"no open-interest column looks like {unit}: {listed}; if one of them is in {unit}, "
            "name it with --value-col"
        )
    raise UsageError(
        f"several open-interest columns could be in {unit}: {listed}; name one with --value-col"
    )


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
    unit is USD and ``oi_base`` when it is base units. Without ``value_col`` the column is chosen
    only when exactly one open-interest column's name allows ``unit`` (``sum_open_interest`` is
    never taken for USD): otherwise the import is refused, listing the candidates and their units.
    """
    v, inst = _venue_instrument(venue, instrument)
    raw, report, pos_word, ts, ts_why = _prepare(path, opts, "open_interest", progress)
    column = _find_column(raw, value_col, (), "", "") if value_col else _oi_column(raw, unit)
    value = number(raw.get_column(column))
    frame = pl.DataFrame(
        {"_line": raw.get_column("_line"), "ts": ts, "_ts_why": ts_why, "oi_value": value}
    )
    frame = _collect_bad(
        frame,
        [
            _ts_check(),
            (pl.col("oi_value").is_null(), "open interest is not a number"),
        ],
    )
    good, bad = _split(frame.drop("_ts_why"))
    rows = good.with_columns(
        venue=pl.lit(v),
        instrument=pl.lit(inst),
        source=pl.lit("import"),
        oi_unit=pl.lit(unit),
        oi_usd=pl.col("oi_value") if unit == "usd" else pl.lit(None, dtype=pl.Float64),
        oi_base=pl.col("oi_value") if unit == "base" else pl.lit(None, dtype=pl.Float64),
    )
    report.notes.append(f"value column {column} ({unit})")
    return _finish(lake, "open_interest", rows, bad, report, opts, pos_word, progress)
