"""Shared pieces of the CLI: the per-invocation state, output formats and rendering.

A command parses its arguments, calls one service, and hands the result to :func:`emit`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from perpscope.config import Config
from perpscope.errors import UsageError
from perpscope.services.importer import ImportReport
from perpscope.store.lake import Lake

__all__ = [
    "AppState",
    "Format",
    "TableFormat",
    "emit",
    "emit_import_report",
    "err_console",
    "out_console",
    "state",
    "to_jsonable",
]

out_console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class Format(StrEnum):
    """Output formats every command offers."""

    TABLE = "table"
    JSON = "json"


class TableFormat(StrEnum):
    """Output formats of commands that print rows."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


@dataclass(frozen=True, slots=True)
class AppState:
    """What the root command resolved: the configuration and the store path."""

    config: Config

    @property
    def store_path(self) -> Path:
        """The store this invocation uses."""
        return self.config.store.path

    def lake(self) -> Lake:
        """The store as a :class:`Lake` (touches nothing on disk)."""
        return Lake(self.store_path)


def state(ctx: typer.Context) -> AppState:
    """The :class:`AppState` that the root callback put on the click context."""
    root = ctx.find_root()
    obj = root.obj
    if not isinstance(obj, AppState):  # pragma: no cover - the root callback always sets it
        raise UsageError("internal: command invoked without the root command")
    return obj


def to_jsonable(value: Any) -> Any:
    """Turn a value into plain JSON types: datetimes become ISO 8601 UTC strings ending in Z."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in output")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, pl.DataFrame):
        return [to_jsonable(row) for row in value.iter_rows(named=True)]
    if isinstance(value, StrEnum):
        return value.value
    return value


def _cell(value: Any, *, precise: bool = False) -> str:
    """Text of one value: full precision for CSV, six significant digits for the screen."""
    if value is None:
        return ""
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return repr(value) if precise else f"{value:.6g}"
    if isinstance(value, datetime) and not precise:
        utc = value.astimezone(UTC)
        if utc.second == 0 and utc.microsecond == 0:
            return utc.strftime("%Y-%m-%d %H:%MZ")
        return utc.isoformat(sep=" ").replace("+00:00", "Z")
    j = to_jsonable(value)
    return j if isinstance(j, str) else json.dumps(j)


def emit(
    data: pl.DataFrame | Sequence[Mapping[str, Any]] | Mapping[str, Any],
    fmt: str,
    *,
    title: str | None = None,
) -> None:
    """Print rows (a frame or a list of mappings) or one record (a mapping) in ``fmt``.

    ``json`` prints one JSON document: an array of row objects for rows, an object for a record.
    ``csv`` prints a header and rows. ``table`` prints a rich table.
    """
    if fmt == "json":
        sys.stdout.write(json.dumps(to_jsonable(data), ensure_ascii=False) + "\n")
        return
    if isinstance(data, Mapping):
        rows: list[Mapping[str, Any]] = [{"field": k, "value": v} for k, v in data.items()]
    elif isinstance(data, pl.DataFrame):
        rows = list(data.iter_rows(named=True))
        if not rows:
            rows = []
    else:
        rows = list(data)
    columns = (
        list(data.columns)
        if isinstance(data, pl.DataFrame)
        else list(rows[0].keys())
        if rows
        else []
    )
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_cell(r.get(c), precise=True) for c in columns] for r in rows])
        sys.stdout.write(buf.getvalue())
        return
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    out_console.print(_table(columns, cells, title))


_TRANSPOSE_MAX_ROWS = 6


def _table(columns: list[str], cells: list[list[str]], title: str | None) -> Table:
    """A rich table; far too wide for the terminal, it turns on its side (one column per row)."""
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    # a little too wide is fine (cells wrap); far too wide is unreadable, so turn it
    if not cells:
        table = Table(title=title, title_justify="left", show_header=False, box=None)
        table.add_column("empty")
        table.add_row(f"no rows (columns: {', '.join(columns)})")
        return table
    if sum(w + 3 for w in widths) + 1 <= out_console.width * 1.4 or len(columns) < 3:
        table = Table(title=title, title_justify="left")
        for c in columns:
            table.add_column(c, overflow="fold")
        for row in cells:
            table.add_row(*row)
        return table
    if len(cells) <= _TRANSPOSE_MAX_ROWS:
        table = Table(title=title, title_justify="left")
        table.add_column("field", style="bold")
        for k in range(len(cells)):
            table.add_column(f"#{k + 1}", overflow="fold")
        for i, c in enumerate(columns):
            table.add_row(c, *[row[i] for row in cells])
        return table
    # many wide rows: one record per row, as psql's expanded display does
    table = Table(title=title, title_justify="left", show_header=False, show_lines=True)
    table.add_column("record", style="dim")
    table.add_column("fields", overflow="fold")
    for k, row in enumerate(cells, start=1):
        text = "\n".join(f"{c}: {v}" for c, v in zip(columns, row, strict=True))
        table.add_row(f"#{k}", text)
    return table


def emit_import_report(report: ImportReport, fmt: Format) -> None:
    """Print what an import did; in table form, also the first skipped rows on stderr."""
    record = {
        "table": report.table,
        "file": report.path,
        "rows_read": report.rows_read,
        "rows_bad_skipped": report.rows_bad,
        "rows_written": report.rows_written,
        "rows_replaced": report.rows_replaced,
        "rows_already_stored": report.rows_already_stored,
        "rows_duplicate": report.rows_duplicate,
        "rows_conflicting_dropped": report.rows_conflicting,
        "first_ts": report.first_ts,
        "last_ts": report.last_ts,
        "notes": "; ".join(report.notes),
    }
    if report.rows_bad and fmt is Format.TABLE:
        shown = "; ".join(f"{b.line}: {b.reason}" for b in report.bad_examples[:5])
        err_console.print(f"skipped {report.rows_bad} invalid rows ({shown})")
    emit(record, fmt.value, title=f"import {report.table}")
