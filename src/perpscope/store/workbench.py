"""The SQL workbench's query runner: exact values of every DuckDB type, in a process of its own.

``perpscope sql`` runs its query in a child Python process (``python -m
perpscope.store.workbench``) that is killed when the time limit is reached, so even a single
uninterruptible function call (``repeat('x', 2000000000)``) cannot outlast it. The child spills
to a private temporary directory (``mkdtemp``, mode 0700, under the system temp directory) that
the parent removes afterwards; directories left by killed runs are removed by the next run.
DuckDB always lets a query read its own spill directory, so this one is fresh and holds nothing
but the spill files of the same query.

Values come back exactly, whatever their type: the child projects each column to a form that
survives the trip (integers, decimals and floats as DuckDB's own text, timestamps as UTC text,
nested values as text and as JSON), and :class:`DisplayResult` turns them back into Python
values (``int``, ``Decimal``, ``float`` with NaN and infinities, ``str``).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from perpscope.errors import PerpscopeError, QueryError, QueryRefusedError
from perpscope.store.lake import Lake
from perpscope.store.query import (
    LockedConnection,
    check_statement,
    connect_locked,
    fetch_capped,
    run_in_connection,
)

__all__ = [
    "SPILL_PREFIX",
    "Column",
    "DisplayResult",
    "NonFinite",
    "private_spill_dir",
    "query_display",
    "run_isolated",
]

SPILL_PREFIX = "perpscope-sql-"

_INT_TYPES = {
    "tinyint", "smallint", "integer", "bigint", "utinyint", "usmallint", "uinteger",
    "ubigint", "hugeint", "uhugeint", "bignum", "varint",
}  # fmt: skip
_NESTED_TYPES = {"list", "struct", "map", "array", "union"}
_TIMESTAMP_TYPES = {"timestamp", "timestamp_s", "timestamp_ms", "timestamp_ns"}


@dataclass(frozen=True, slots=True)
class Column:
    """One result column: its name, DuckDB type and how its values are carried.

    ``kind`` is one of ``bool``, ``int``, ``float``, ``decimal``, ``timestamptz``,
    ``timestamp``, ``nested``, ``text``, ``null``.
    """

    name: str
    duckdb_type: str
    kind: str


@dataclass(frozen=True, slots=True)
class DisplayResult:
    """A capped query result whose values convert exactly to Python.

    :meth:`rows` gives ``None``, ``bool``, ``int``, ``float`` (NaN and infinities included),
    ``Decimal`` or ``str``; a ``nested`` column gives ``(text, json_value)`` pairs, where
    ``json_value`` is parsed with decimals exact and NaN/infinities as :class:`NonFinite`.
    """

    columns: list[Column]
    table: pa.Table
    truncated: bool
    max_rows: int
    started: float = 0.0
    """``time.monotonic()`` when the query started (its time limit counts from then)."""

    def rows(self) -> list[tuple[Any, ...]]:
        """The rows as tuples of exact Python values (converted on each call)."""
        return _to_python(self.columns, self.table)


def _kind(type_id: str) -> str:
    if type_id == "boolean":
        return "bool"
    if type_id in _INT_TYPES:
        return "int"
    if type_id in {"float", "double"}:
        return "float"
    if type_id == "decimal":
        return "decimal"
    if type_id == "timestamp with time zone":
        return "timestamptz"
    if type_id in _TIMESTAMP_TYPES:
        return "timestamp"
    if type_id in _NESTED_TYPES:
        return "nested"
    if type_id == "null":
        return "null"
    return "text"


def _display_relation(
    relation: duckdb.DuckDBPyRelation,
) -> tuple[list[Column], duckdb.DuckDBPyRelation]:
    """Project every column (by position, so duplicate names are fine) to a transportable form."""
    columns = []
    exprs = []
    for i, (name, dtype) in enumerate(zip(relation.columns, relation.types, strict=True), 1):
        kind = _kind(str(dtype.id))
        columns.append(Column(name, str(dtype), kind))
        if kind == "bool":
            exprs.append(f"#{i}")
        elif kind == "nested":
            exprs.append(f"CAST(#{i} AS VARCHAR)")
            exprs.append(f"CAST(to_json(#{i}) AS VARCHAR)")
        else:
            exprs.append(f"CAST(#{i} AS VARCHAR)")
    return columns, relation.project(", ".join(exprs)) if exprs else relation


def _to_python(columns: list[Column], table: pa.Table) -> list[tuple[Any, ...]]:
    """Rows of exact Python values from the projected table."""
    converted: list[list[Any]] = []
    pos = 0
    for col in columns:
        values = table.column(pos).to_pylist()
        pos += 1
        if col.kind == "nested":
            js = table.column(pos).to_pylist()
            pos += 1
            converted.append(
                [
                    None if v is None else (v, _json_exact(j))
                    for v, j in zip(values, js, strict=True)
                ]
            )
            continue
        convert = _CONVERT.get(col.kind)
        converted.append(values if convert is None else [_maybe(convert, v) for v in values])
    return list(zip(*converted, strict=True)) if converted else []


def _maybe(convert: Any, value: Any) -> Any:
    return None if value is None else convert(value)


_CONVERT: dict[str, Any] = {"int": int, "float": float, "decimal": Decimal}


class NonFinite(float):
    """A NaN or infinity inside a nested value (JSON has no spelling for them)."""


def _json_exact(text: str | None) -> Any:
    if text is None:
        return None
    return json.loads(text, parse_float=Decimal, parse_constant=NonFinite)


def query_display(
    lake: Lake,
    sql: str,
    *,
    max_rows: int = 10_000,
    timeout_s: float = 30.0,
    memory_limit_bytes: int = 2**30,
    temp_dir: Path | None = None,
) -> DisplayResult:
    """Run ``sql`` in this process and return its rows for display (no kill at the limit)."""
    started = time.monotonic()
    columns, table, truncated = run_display(
        lake,
        sql,
        max_rows=max_rows,
        timeout_s=timeout_s,
        memory_limit_bytes=memory_limit_bytes,
        temp_dir=temp_dir,
    )
    return DisplayResult(columns, table, truncated, max_rows, started)


def run_display(
    lake: Lake,
    sql: str,
    *,
    max_rows: int,
    timeout_s: float,
    memory_limit_bytes: int,
    temp_dir: Path | None,
) -> tuple[list[Column], pa.Table, bool]:
    """Run ``sql`` in this process; the projected rows (see :func:`_display_relation`)."""
    check_statement(sql)
    locked = connect_locked(
        lake, memory_limit_bytes=memory_limit_bytes, temp_dir=temp_dir, timeout_s=timeout_s
    )

    try:
        return run_in_connection(
            locked, lake, sql, timeout_s=timeout_s, fetch=_display_fetch(max_rows)
        )
    finally:
        locked.close()


def _display_fetch(
    max_rows: int,
) -> Callable[[duckdb.DuckDBPyRelation], tuple[list[Column], pa.Table, bool]]:
    """Fetch a relation for display: its columns, at most ``max_rows`` rows, and if it was cut."""

    def fetch(rel: duckdb.DuckDBPyRelation) -> tuple[list[Column], pa.Table, bool]:
        columns, projected = _display_relation(rel)
        table, truncated = fetch_capped(projected, max_rows)
        return columns, table, truncated

    return fetch


# ----------------------------------------------------------------------------- private spill dir


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_spill_dirs(parent: Path | None = None) -> list[Path]:
    """Remove spill directories of ours left by runs whose process is gone; returns them."""
    base = Path(parent or tempfile.gettempdir())
    removed = []
    try:
        candidates = list(base.glob(f"{SPILL_PREFIX}*"))
    except OSError:
        return []
    for path in candidates:
        try:
            pid = int(path.name[len(SPILL_PREFIX) :].split("-", 1)[0])
            if path.is_dir() and path.stat().st_uid == os.getuid() and not _pid_alive(pid):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        except (ValueError, OSError):
            continue
    return removed


@contextlib.contextmanager
def private_spill_dir() -> Iterator[Path]:
    """A fresh directory (mode 0700) for DuckDB's spill files, removed on exit.

    Its name carries this process's id, so a later run can remove it if this one is killed.
    """
    remove_stale_spill_dirs()
    path = Path(tempfile.mkdtemp(prefix=f"{SPILL_PREFIX}{os.getpid()}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------------- child process

_EXIT_REFUSED = 2
_EXIT_ERROR = 3
_READY = b"R"
_STARTUP_LIMIT_S = 120.0


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parent.parent.parent)  # the directory holding perpscope/
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env


def run_isolated(
    lake: Lake,
    sql: str,
    *,
    max_rows: int,
    timeout_s: float,
    memory_limit_bytes: int,
) -> DisplayResult:
    """Run one read-only query in a child process that is killed at ``timeout_s``.

    Raises:
        QueryRefusedError: the text is not one read-only query, or it tried to reach a file.
        QueryError: the query failed, or the time limit was reached.
        KeyboardInterrupt: the user interrupted it (the child is killed first).
    """
    check_statement(sql)  # refuse early and cheaply; the child checks again
    with private_spill_dir() as spill:
        request = {
            "store": str(lake.root),
            "sql": sql,
            "max_rows": max_rows,
            "timeout_s": timeout_s,
            "memory_limit_bytes": memory_limit_bytes,
            "temp_dir": str(spill),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "perpscope.store.workbench"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_child_env(),
            bufsize=0,
        )
        try:
            started = _start(proc, json.dumps(request).encode())
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise QueryError(f"time limit of {timeout_s:g} s reached") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return _parse_reply(proc.returncode, out, err, max_rows, started)


def _start(proc: subprocess.Popen[bytes], request: bytes) -> float:
    """Send the request and wait until the child has loaded its libraries.

    The time limit counts from then: Python's start-up and opening the store's tables are not
    the query's time.
    """
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(request)
    proc.stdin.close()
    proc.stdin = None  # sent: communicate() must not touch it again
    ready, _, _ = select.select([proc.stdout], [], [], _STARTUP_LIMIT_S)
    if not ready or proc.stdout.read(1) != _READY:
        proc.kill()
        _, err = proc.communicate()
        lines = err.decode(errors="replace").strip().splitlines()
        raise QueryError(f"the query process did not start: {lines[-1] if lines else 'no reply'}")
    return time.monotonic()


def _parse_reply(code: int, out: bytes, err: bytes, max_rows: int, started: float) -> DisplayResult:
    if code in (_EXIT_REFUSED, _EXIT_ERROR):
        try:
            message = str(json.loads(out.decode())["message"])
        except (ValueError, KeyError, TypeError):
            message = ""
        if message:
            raise (QueryRefusedError if code == _EXIT_REFUSED else QueryError)(message)
    if code != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        why = lines[-1] if lines else f"exit code {code}"
        if code < 0:
            why = f"killed by signal {-code}" + (" (out of memory?)" if -code == 9 else "")
        raise QueryError(f"the query process failed: {why}")
    with pa.ipc.open_stream(out) as reader:
        table = reader.read_all()
    meta = json.loads((table.schema.metadata or {})[b"perpscope"].decode())
    columns = [Column(*c) for c in meta["columns"]]
    return DisplayResult(columns, table, meta["truncated"], max_rows, started)


def _child_main() -> int:
    """Entry of the child: read a JSON request on stdin, write Arrow IPC (or an error) out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and kills us
    request = json.loads(sys.stdin.buffer.read().decode())
    out = sys.stdout.buffer
    timeout_s = float(request["timeout_s"])
    lake = Lake(Path(request["store"]))
    sql = request["sql"]
    opened: LockedConnection | PerpscopeError
    try:
        check_statement(sql)
        # the store is open before the parent's clock starts: the limit is the query's own time
        opened = connect_locked(
            lake,
            memory_limit_bytes=int(request["memory_limit_bytes"]),
            temp_dir=Path(request["temp_dir"]),
            timeout_s=timeout_s,
        )
    except PerpscopeError as exc:
        opened = exc  # reported below, like a failing query
    out.write(_READY)
    out.flush()
    # the parent kills us at the limit; should it die first, do not run on for long
    suicide = threading.Timer(timeout_s + 5.0, os._exit, (_EXIT_ERROR,))
    suicide.daemon = True
    suicide.start()
    try:
        if isinstance(opened, PerpscopeError):
            raise opened
        try:
            columns, table, truncated = run_in_connection(
                opened,
                lake,
                sql,
                timeout_s=timeout_s,
                fetch=_display_fetch(int(request["max_rows"])),
            )
        finally:
            opened.close()
    except QueryRefusedError as exc:
        out.write(json.dumps({"message": str(exc)}).encode())
        return _EXIT_REFUSED
    except (PerpscopeError, KeyboardInterrupt) as exc:
        message = str(exc) if isinstance(exc, PerpscopeError) else "interrupted"
        out.write(json.dumps({"message": message}).encode())
        return _EXIT_ERROR
    meta = {"columns": [[c.name, c.duckdb_type, c.kind] for c in columns], "truncated": truncated}
    table = table.replace_schema_metadata({"perpscope": json.dumps(meta)})
    with pa.ipc.new_stream(out, table.schema) as writer:
        writer.write_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
