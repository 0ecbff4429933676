"""Shared pieces of the CLI: the per-invocation state, output formats, emit and error lines.

A command parses its arguments, calls one service, and hands the result to :func:`emit`, which
prints it through the presentation layer (:mod:`perpscope.cli._render`): a table that fits the
terminal, CSV, or the one JSON document every command prints (``docs/cli.md``).

This module stays light (standard library, typer and rich): the heavy libraries load inside the
commands that need them, so ``perpscope --help`` starts fast.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer
from typer._click.core import Context as ClickContext
from typer._click.globals import get_current_context

from perpscope.domain.symbols import SIM_VENUES
from perpscope.errors import UsageError

if TYPE_CHECKING:
    from types import ModuleType

    from rich.console import Console

    from perpscope.cli._render import Col
    from perpscope.config import Config
    from perpscope.services.importer import ImportReport
    from perpscope.store.lake import Lake

__all__ = [
    "AppState",
    "Format",
    "TableFormat",
    "emit",
    "emit_import_report",
    "emit_sections",
    "err_console",
    "out_console",
    "print_error",
    "set_output_mode",
    "state",
    "to_jsonable",
]


class _LazyConsole:
    """A rich Console made on first use (``perpscope --version`` never loads rich.console)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def _get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def __enter__(self) -> Console:  # rich's Live and Progress use the console as a context
        return self._get().__enter__()

    def __exit__(self, *exc: object) -> None:
        self._get().__exit__(*exc)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._get(), name, value)


out_console: Console = cast("Console", _LazyConsole(highlight=False, soft_wrap=False))
err_console: Console = cast("Console", _LazyConsole(stderr=True, highlight=False, soft_wrap=True))


def _r() -> ModuleType:
    """The presentation layer, imported on first output."""
    from perpscope.cli import _render

    return _render


class Format(StrEnum):
    """Output formats every command offers."""

    TABLE = "table"
    JSON = "json"


class TableFormat(StrEnum):
    """Output formats of commands that print rows."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


@dataclass
class _Output:
    """Per-invocation output settings, set by the root command before any command runs."""

    wide: bool = False
    json_errors: bool = False
    banner_shown: bool = False
    store_used: bool = False


_output = _Output()


def set_output_mode(*, wide: bool, json_errors: bool) -> None:
    """Start a new invocation: ``--wide`` tables, JSON errors (``--format json``), a new banner."""
    _output.wide = wide
    _output.json_errors = json_errors
    _output.banner_shown = False
    _output.store_used = False


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
        from perpscope.store.lake import Lake

        _output.store_used = True
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
    return _r().json_value(value)


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""Control characters (C0 but tab and newline, DEL, C1) and the bidirectional overrides."""


def _screen_safe(text: str) -> str:
    """``text`` with control characters shown as escapes (a user's ``\\x1b[2J`` is not replayed)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def print_error(message: str, exit_code: int) -> None:
    """One error line on stderr; with ``--format json``, ``{"error": ..., "exit_code": N}``."""
    message = _screen_safe(message)
    if _output.json_errors:
        text = message.removeprefix("error: ")
        sys.stderr.write(json.dumps({"error": text, "exit_code": exit_code}) + "\n")
        return
    if message.startswith("error: "):
        err_console.print(message, markup=False, highlight=False)
    else:
        err_console.print("[bold red]error:[/] ", end="", markup=True, highlight=False)
        err_console.print(message, markup=False, highlight=False)


def _context() -> ClickContext | None:
    # typer vendors click: its current context is typer's, not the click package's
    return get_current_context(silent=True)


def _command_name() -> str:
    ctx = _context()
    path = ctx.command_path if ctx is not None else "perpscope"
    return path.split(" ", 1)[1] if " " in path else path


def _store_is_demo() -> bool:
    """True when this invocation's store is a demo store (its marker says ``"demo": true``).

    Asked only when the command used the store (calculators without a store are not simulated).
    """
    ctx = _context()
    if ctx is None or not _output.store_used:
        return False
    obj = ctx.find_root().obj
    if not isinstance(obj, AppState):
        return False
    try:
        return bool(obj.lake().marker().get("demo", False))
    except Exception:  # an unreadable marker is the command's error to report, not ours
        return False


def _mentions_sim(data: Any) -> bool:
    """True when rows name a simulator venue (sim1..sim3)."""
    if isinstance(data, Mapping):
        return any(_mentions_sim(v) for v in data.values()) or data.get("venue") in SIM_VENUES
    _, rows = _r().rows_of(data) if _r().is_frame(data) else ([], data)
    if isinstance(rows, list | tuple):
        return any(isinstance(r, Mapping) and _mentions_sim(r) for r in rows)
    return False


def _simulated(data: Any) -> bool:
    return _store_is_demo() or _mentions_sim(data)


def _banner() -> None:
    if not _output.banner_shown:
        _output.banner_shown = True
        out_console.print(
            "[bold black on yellow] SIMULATED [/] [yellow]simulator data (sim1..sim3), "
            "not a real market[/]"
        )


Data = Any  # a polars frame, a sequence of mappings, or one mapping


def emit(
    data: Data,
    fmt: str,
    *,
    title: str | None = None,
    spec: Sequence[Col] = (),
) -> None:
    """Print rows (a frame or a list of mappings) or one record (a mapping) in ``fmt``.

    ``json`` prints the one JSON document of the command (``{"command", "generated_at",
    "simulated", "data"}``, see docs/cli.md); ``csv`` a header and rows at full precision;
    ``table`` a table that fits the terminal (``spec`` names, orders and ranks its columns).
    A command prints JSON once; tables as often as it has sections.
    """
    if fmt == "json":
        doc = _r().envelope(
            _command_name(), data, simulated=_simulated(data), generated_at=datetime.now(UTC)
        )
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
        return
    if fmt == "csv":
        _emit_csv(data)
        return
    if _simulated(data):
        _banner()
    if isinstance(data, Mapping):
        _r().render_record(out_console, data, title=title)
    else:
        _r().render_rows(out_console, data, title=title, spec=spec, wide=_output.wide)


def emit_sections(
    sections: Mapping[str, Data],
    fmt: Format | str,
    specs: Mapping[str, Sequence[Col]] | None = None,
) -> None:
    """Print several named results: one JSON object of them, or one table per section."""
    value = fmt.value if isinstance(fmt, Format | TableFormat) else fmt
    if value == "json":
        emit(dict(sections), value)
        return
    for name, data in sections.items():
        emit(data, value, title=name.replace("_", " "), spec=(specs or {}).get(name, ()))


def _emit_csv(data: Data) -> None:
    rows: list[Mapping[str, Any]]
    if isinstance(data, Mapping):
        columns, rows = ["field", "value"], [{"field": k, "value": v} for k, v in data.items()]
    else:
        columns, rows = _r().rows_of(data)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([_csv_cell(r.get(c)) for c in columns])
    sys.stdout.write(buf.getvalue())


def _csv_cell(value: Any) -> str:
    """Full precision for CSV: floats by repr, times ISO 8601 UTC."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else ""
    j = _r().json_value(value)
    return j if isinstance(j, str) else json.dumps(j)


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
