"""``perpscope sql``: one read-only query against every table.

The time limit bounds the whole command: the query runs in a child process killed at the limit
(:func:`perpscope.store.workbench.run_isolated`), and the output is rendered into memory under
what remains of the limit before anything is printed. Values print exactly: integers and
decimals of any size digit for digit, NaN and infinities as ``NaN``/``inf``/``-inf`` (in JSON
as the strings ``"NaN"``/``"Infinity"``/``"-Infinity"``), NULL as an empty cell (JSON
``null``). Control characters never reach a terminal raw: table cells, and CSV printed to a
terminal, show them escaped (``\\x1b``); CSV written to a file or a pipe keeps the data as it is.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from perpscope.cli import _common
from perpscope.cli._common import TableFormat, err_console, out_console, state
from perpscope.errors import QueryError, UsageError
from perpscope.limits import MAX_ROWS, MAX_TIMEOUT_S

if TYPE_CHECKING:
    from perpscope.store.workbench import Column, DisplayResult

__all__ = ["render", "screen_safe", "sql"]

# C0 and C1 controls, DEL, and the bidirectional overrides that reorder what a terminal shows
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_TS = re.compile(r"^(\d{4,}-\d\d-\d\d) (\d\d:\d\d)(:\d\d)(\.\d+)?(\+00)?$")


def screen_safe(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\n``)."""
    return _UNSAFE.sub(lambda m: _escape_char(m.group(0)), text)


def _escape_char(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _float_text(value: float, *, precise: bool) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value) if precise else f"{value:.6g}"


def _ts_text(value: str, *, screen: bool) -> str:
    """DuckDB's UTC text of a timestamp as ISO 8601 (``T``, ``Z``); for the screen, shorter."""
    m = _TS.match(value)
    if m is None:  # infinity, -infinity, BC dates: DuckDB's own text is the exact answer
        return value
    day, hm, sec, frac, utc = m.groups()
    z = "Z" if utc else ""
    if screen:
        return f"{day} {hm}{z}" if sec == ":00" and not frac else f"{day} {hm}{sec}{frac or ''}{z}"
    return f"{day}T{hm}{sec}{frac or ''}{z}"


def _cell(col: Column, value: Any, *, screen: bool) -> str:
    if value is None:
        return ""
    if col.kind == "float":
        return _float_text(value, precise=not screen)
    if col.kind in ("timestamptz", "timestamp"):
        return _ts_text(value, screen=screen)
    if col.kind == "nested":
        return str(value[0])
    if col.kind == "bool":
        return "true" if value else "false"
    return str(value)  # int and Decimal print every digit; text as it is


def _json_value(col: Column, value: Any) -> Any:
    if value is None:
        return None
    if col.kind in ("timestamptz", "timestamp"):
        return _ts_text(value, screen=False)
    if col.kind == "nested":
        return value[1]
    return value


def _dump(value: Any) -> str:
    """JSON text: integers and decimals exact, NaN and infinities as strings."""
    from perpscope.store.workbench import NonFinite

    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float | NonFinite):
        if math.isnan(value):
            return '"NaN"'
        if math.isinf(value):
            return '"Infinity"' if value > 0 else '"-Infinity"'
        return repr(float(value))
    if isinstance(value, str):
        return _JSON_UNSAFE.sub(
            lambda m: f"\\u{ord(m.group(0)):04x}", json.dumps(value, ensure_ascii=False)
        )
    if isinstance(value, list):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_dump(str(k))}:{_dump(v)}" for k, v in value.items()) + "}"
    return _dump(str(value))


def _table(columns: list[str], cells: list[list[str]]) -> Any:
    """A rich table of already escaped text; long values fold inside their cell (exact text)."""
    from rich.table import Table

    if not cells:
        table = Table(show_header=False, box=None)
        table.add_column("empty")
        table.add_row(f"no rows (columns: {', '.join(columns)})")
        return table
    table = Table()
    for c in columns:
        table.add_column(c, overflow="fold")
    for row in cells:
        table.add_row(*row)
    return table


def _envelope(rows_json: str) -> str:
    """The JSON document every command prints (docs/cli.md), around the exact rows."""
    from datetime import UTC, datetime

    head = {
        "command": "sql",
        "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "simulated": _common._store_is_demo(),
    }
    return json.dumps(head)[:-1] + ', "data": ' + rows_json + "}\n"


def render(result: DisplayResult, fmt: str, *, terminal: bool) -> str:
    """The text ``perpscope sql`` prints for ``result`` in ``fmt`` (table, csv or json).

    ``terminal`` says whether stdout is a terminal: CSV then escapes control characters.
    """
    cols = result.columns
    data = result.rows()
    if fmt == "json":
        rows = (
            "{"
            + ",".join(
                f"{_dump(c.name)}:{_dump(_json_value(c, v))}"
                for c, v in zip(cols, row, strict=True)
            )
            + "}"
            for row in data
        )
        return _envelope("[" + ",".join(rows) + "]")
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        clean = screen_safe if terminal else str
        writer.writerow([clean(c.name) for c in cols])
        for row in data:
            writer.writerow(
                [clean(_cell(c, v, screen=False)) for c, v in zip(cols, row, strict=True)]
            )
        return buf.getvalue()
    names = [escape(screen_safe(c.name)) for c in cols]
    cells = [
        [escape(screen_safe(_cell(c, v, screen=True))) for c, v in zip(cols, row, strict=True)]
        for row in data
    ]
    with out_console.capture() as captured:
        out_console.print(_table(names, cells))
    return captured.get()


class _Deadline(Exception):
    pass


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Raise :class:`_Deadline` in this (main) thread after ``seconds``; a no-op elsewhere."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def _fire(signum: int, frame: object) -> None:
        raise _Deadline

    previous = signal.signal(signal.SIGALRM, _fire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _check_timeout(timeout: float | None, default: float) -> float:
    limit = default if timeout is None else timeout
    if not math.isfinite(limit) or limit <= 0 or limit > MAX_TIMEOUT_S:
        raise UsageError(
            f"--timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}, "
            f"got {timeout}"
        )
    return limit


def sql(
    ctx: typer.Context,
    query: Annotated[
        str,
        typer.Argument(help='One read-only SELECT query, e.g. "SELECT * FROM funding LIMIT 5".'),
    ],
    fmt: Annotated[
        TableFormat, typer.Option("--format", help="Output format.")
    ] = TableFormat.TABLE,
    max_rows: Annotated[
        int | None,
        typer.Option(
            "--max-rows",
            min=1,
            max=MAX_ROWS,
            help="Row cap (default from config: workbench.max_rows).",
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            help="Time limit in seconds of the whole command: query, fetch and output "
            "(default: workbench.timeout_s; at most 3600).",
        ),
    ] = None,
) -> None:
    """Run one read-only SQL query (DuckDB dialect) against the store's tables.

    Writes, DDL, COPY, ATTACH, INSTALL/LOAD, SET and any file or network access are refused.
    JSON output puts the rows (an array of objects, timestamps ISO 8601 UTC, NaN and infinities
    as the strings "NaN", "Infinity" and "-Infinity") in its "data".
    """
    from perpscope.store.workbench import run_isolated

    st = state(ctx)
    wb = st.config.workbench
    limit = _check_timeout(timeout, wb.timeout_s)
    if not st.lake().exists():
        err_console.print(
            f"note: no store at {st.store_path}; every table is empty "
            "(run 'perpscope demo', an import or a backfill first)"
        )
    try:
        result = run_isolated(
            st.lake(),
            query,
            max_rows=max_rows or wb.max_rows,
            timeout_s=limit,
            memory_limit_bytes=wb.memory_limit_bytes,
        )
        try:
            with _alarm(limit - (time.monotonic() - result.started)):
                text = render(result, fmt.value, terminal=sys.stdout.isatty())
        except _Deadline:
            raise QueryError(
                f"time limit of {limit:g} s reached while formatting {result.table.num_rows} rows "
                "(--max-rows to print fewer)"
            ) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        # SystemExit, not typer.Exit: click hands typer.Exit back as a return value outside
        # standalone mode, and the exit code would be lost on the way
        sys.exit(130)
    sys.stdout.write(text)
    sys.stdout.flush()
    if result.truncated:
        err_console.print(f"note: output capped at {result.max_rows} rows (--max-rows to change)")
