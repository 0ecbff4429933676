"""Reading import files and their timestamps: the first stage of every importer.

``read_table_file`` reads CSV, CSV.gz and Parquet (CSV columns as text, so every value can be
validated), turning every way a file can be unreadable into one :class:`UsageError` line.
``parse_ts`` reads a timestamp column (epoch seconds or milliseconds, ISO 8601 text, or native
datetimes) to UTC, and says per row why a value cannot be used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl

from perpscope.errors import UsageError

__all__ = ["TsUnit", "number", "parse_ts", "read_table_file"]

TsUnit = Literal["auto", "ms", "s", "iso"]

_MS_THRESHOLD = 1e11  # numbers above are epoch milliseconds (1e11 s is the year 5138)
# numeric timestamps outside 1900..2200 are refused as out of range before any conversion
_MIN_US = -2_208_988_800_000_000
_MAX_US = 7_258_118_400_000_000
_ZONED_FORMATS = ("%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%z", "%Y-%m-%d %H:%M%z")
_NAIVE_FORMATS = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def read_table_file(path: Path) -> tuple[pl.DataFrame, str]:
    """Read a CSV, CSV.gz or Parquet file; CSV columns are read as text for validation.

    Returns the frame and the word for its row positions (``line`` for CSV, ``row`` for Parquet).

    Raises:
        UsageError: the path is missing, a directory, unreadable, or not a readable table file
            (truncated, not UTF-8, empty, malformed), in one line.
    """
    if path.is_dir():
        raise UsageError(f"cannot read {path}: it is a directory, not a file")
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
            if any("\ufffd" in c for c in frame.columns):  # polars decodes a header lossily
                raise UsageError(f"cannot read {path}: the header is not UTF-8 text")
            return frame, "line"
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError, ValueError, EOFError) as exc:
        raise UsageError(f"cannot read {path}: {_one_line(exc)}") from None
    except BaseException as exc:  # a Rust panic inside polars is a BaseException
        if type(exc).__name__ != "PanicException":
            raise
        raise UsageError(f"cannot read {path}: malformed file ({_one_line(exc)})") from None
    raise UsageError(f"cannot read {path}: expected .csv, .csv.gz or .parquet")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:300]
    return text or type(exc).__name__


def parse_ts(col: pl.Series, unit: TsUnit, tz_offset_h: float) -> tuple[pl.Series, pl.Series]:
    """Parse a timestamp column to UTC microseconds.

    Returns the timestamps (null where a value cannot be used) and, per row, why a non-null value
    was refused (out of range, or seconds among milliseconds); null elsewhere.
    """
    offset = pl.duration(microseconds=round(tz_offset_h * 3_600_000_000))
    no_reason = pl.Series("why", [None] * len(col), dtype=pl.String)
    if col.dtype == pl.Datetime:
        dt = col.dt.cast_time_unit("us")
        if getattr(col.dtype, "time_zone", None) is None:
            frame = pl.DataFrame({"t": dt}).select(
                (pl.col("t") - offset).dt.replace_time_zone("UTC")
            )
            return frame.to_series(), no_reason
        return dt.dt.convert_time_zone("UTC"), no_reason
    why = no_reason
    if unit == "auto":
        numeric = number(col) if col.dtype != pl.Boolean else col
        if len(col) and numeric.dtype.is_numeric() and numeric.null_count() == col.null_count():
            is_ms = numeric.abs() > _MS_THRESHOLD
            n_ms, n_s = int(is_ms.sum()), int((~is_ms).sum())
            unit = "ms" if n_ms >= n_s else "s"
            if n_ms and n_s:
                other = "seconds" if unit == "ms" else "milliseconds"
                minority = ~is_ms if unit == "ms" else is_ms
                mixed = f"looks like {other} while most timestamps are in {unit}: give --ts-unit"
                why = pl.select(pl.when(minority).then(pl.lit(mixed))).to_series()
        else:
            unit = "iso"
    if unit in ("ms", "s"):
        scale = 1_000 if unit == "ms" else 1_000_000
        out_of_range = f"timestamp out of range (not an epoch {unit} of 1900 to 2200)"
        parts = pl.DataFrame({"n": number(col) * scale, "why": why}).with_columns(
            why=pl.when(
                pl.col("n").is_not_null()
                & ~(pl.col("n").is_finite() & pl.col("n").is_between(_MIN_US, _MAX_US))
            )
            .then(pl.lit(out_of_range))
            .otherwise(pl.col("why"))
        )
        ts = parts.select(
            pl.when(pl.col("why").is_null())
            .then(pl.col("n"))
            .round(0)
            .cast(pl.Int64)
            .pipe(pl.from_epoch, time_unit="us")
            .dt.replace_time_zone("UTC")
        )
        return ts.to_series(), parts.get_column("why")
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
    return parsed.to_series(), why


def number(col: pl.Series) -> pl.Series:
    """A column as floats; text that is not a number becomes null (``nan``/``inf`` stay)."""
    if col.dtype.is_numeric():
        return col.cast(pl.Float64)
    return col.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
