"""Read-only SQL over the store with DuckDB, safe by construction.

Two guard layers stand between a query and anything it could change, each enough on its own:

1. :func:`check_statement`: DuckDB's own parser must classify the text as exactly one ``SELECT``
   statement (``WITH``, ``FROM``-first, ``VALUES``, ``DESCRIBE``, ``SUMMARIZE``, ``SHOW``,
   ``UNPIVOT`` and ``PIVOT`` parse as selects); anything else is refused before a connection
   exists.
2. :func:`connect_locked`: an in-memory DuckDB connection on which every table of the schema is
   registered as the Arrow dataset of its latest Delta version (an empty table when it does not
   exist yet), then external access is disabled (no file, network or extension access), extension
   auto-install/auto-load is off, and the configuration is locked, so no ``SET`` can undo it.

Queries get a row cap, a time limit (DuckDB's ``max_execution_time`` plus an interrupt for the
fetch) and a memory limit. Spills go to a private temporary directory given by the caller (see
:mod:`perpscope.store.workbench`), never to the current directory. A table whose Delta log cannot
be read is left out of the connection: queries on the other tables run, and a query that names it
gets an error saying which table is damaged.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import duckdb
import polars as pl
import pyarrow as pa

from perpscope.domain.schema import TABLES
from perpscope.errors import QueryError, QueryRefusedError, StoreError
from perpscope.store.lake import Lake

__all__ = [
    "LockedConnection",
    "QueryResult",
    "StoreReader",
    "check_read_only",
    "check_statement",
    "connect_locked",
    "open_store",
    "run_query",
]

_T = TypeVar("_T")
_LEADING_NOISE = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
# A PIVOT without an IN list is expanded by DuckDB into several statements (it first reads the
# distinct values), which the parser reports as one MULTI statement. Such a statement is a read
# when it begins with a keyword that only a query can begin with.
_QUERY_FIRST_WORDS = ("select", "from", "pivot", "pivot_wider", "(")


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Rows of a query, capped: ``truncated`` is true when more rows existed."""

    table: pa.Table
    truncated: bool
    max_rows: int

    def frame(self) -> pl.DataFrame:
        """The rows as a polars frame."""
        frame = pl.from_arrow(self.table)
        assert isinstance(frame, pl.DataFrame)
        return frame


def check_statement(sql: str) -> None:
    """Raise :class:`QueryRefusedError` unless ``sql`` is exactly one read-only query.

    This is the first guard layer; it needs no connection and no store.
    """
    parser = duckdb.connect(":memory:")
    try:
        statements = parser.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefusedError(f"query does not parse: {_one_line(exc)}") from None
    finally:
        parser.close()
    if len(statements) != 1:
        raise QueryRefusedError(
            f"refused: give exactly one query, got {len(statements)} statements"
        )
    try:
        kind = statements[0].type
    except ValueError:  # a statement type the Python binding has no name for (UPDATE EXTENSIONS)
        raise QueryRefusedError(
            "refused: only read-only SELECT queries run here, this is not one"
        ) from None
    if kind == duckdb.StatementType.SELECT:
        return
    if kind == duckdb.StatementType.MULTI and _first_word(sql) in _QUERY_FIRST_WORDS:
        return
    raise QueryRefusedError(
        f"refused: only read-only SELECT queries run here, this is a {kind.name} statement"
    )


check_read_only = check_statement  # the name of earlier releases


def _first_word(sql: str) -> str:
    rest = _LEADING_NOISE.sub("", sql, count=1)
    if rest.startswith("("):
        return "("
    match = re.match(r"[A-Za-z_]+", rest)
    return match.group(0).lower() if match else ""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


@dataclass(slots=True)
class LockedConnection:
    """A locked DuckDB connection over the store, and the tables that could not be opened."""

    con: duckdb.DuckDBPyConnection
    damaged: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        """Close the connection."""
        self.con.close()


def connect_locked(
    lake: Lake,
    *,
    memory_limit_bytes: int = 4 * 2**30,
    temp_dir: Path | None = None,
    timeout_s: float | None = None,
) -> LockedConnection:
    """The second guard layer: a connection that can read the store's tables and nothing else.

    Args:
        lake: the store whose tables are registered (read at their latest version).
        memory_limit_bytes: DuckDB's memory limit.
        temp_dir: where DuckDB may spill; ``None`` disables spilling. DuckDB always allows a
            query to read its own spill directory, so give a fresh private one.
        timeout_s: DuckDB's ``max_execution_time`` (``None``: no limit).
    """
    con = duckdb.connect(":memory:")
    damaged: dict[str, str] = {}
    try:
        for name, spec in TABLES.items():
            try:
                source = lake.dataset(name) if lake.has_table(name) else spec.schema.empty_table()
            except StoreError as exc:
                damaged[name] = str(exc)
                continue
            con.register(name, source)
        settings: list[tuple[str, str | int | bool]] = [
            ("TimeZone", "UTC"),
            ("memory_limit", f"{memory_limit_bytes}B"),
            ("temp_directory", str(temp_dir) if temp_dir is not None else ""),
            ("max_temp_directory_size", f"{2 * memory_limit_bytes}B"),
            ("autoinstall_known_extensions", False),
            ("autoload_known_extensions", False),
            ("allow_community_extensions", False),
            ("allow_persistent_secrets", False),
        ]
        if timeout_s is not None:
            settings.append(("max_execution_time", max(1, int(timeout_s * 1000))))
        for key, value in settings:
            con.execute(f"SET {key} = {_literal(value)}")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return LockedConnection(con, damaged)


def _literal(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def explain_error(exc: BaseException, lake: Lake, damaged: dict[str, str]) -> str:
    """One line for a failed query; names a damaged table when the failure comes from one."""
    text = _one_line(exc)
    for name, reason in damaged.items():
        if re.search(rf"\b{re.escape(name)}\b", text) and isinstance(exc, duckdb.CatalogException):
            return (
                f"table {name} is damaged and cannot be queried ({reason}); "
                "run 'perpscope store check'"
            )
    for name in TABLES:
        where = str(lake.root / name)
        if where in text or quote(where) in text:  # Delta may give the path percent-encoded
            return (
                f"table {name} is damaged: a data file is missing or unreadable ({text}); "
                "run 'perpscope store check'"
            )
    return text


class _Watchdog:
    """Interrupts a connection after ``timeout_s``; ``fired`` says whether it did."""

    def __init__(self, con: duckdb.DuckDBPyConnection, timeout_s: float) -> None:
        self.fired = threading.Event()
        self._con = con
        self._timer = threading.Timer(timeout_s, self._interrupt)
        self._timer.daemon = True

    def _interrupt(self) -> None:
        self.fired.set()
        self._con.interrupt()

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _is_interrupt(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.InterruptException) or "INTERRUPT" in str(exc).upper()


def fetch_capped(relation: duckdb.DuckDBPyRelation, max_rows: int) -> tuple[pa.Table, bool]:
    """At most ``max_rows`` rows of ``relation`` and whether more existed."""
    reader = relation.limit(max_rows + 1).to_arrow_reader(min(max_rows + 1, 100_000))
    table = pa.Table.from_batches(list(reader), schema=reader.schema)
    return table.slice(0, max_rows), table.num_rows > max_rows


def run_in_connection(
    locked: LockedConnection,
    lake: Lake,
    sql: str,
    *,
    timeout_s: float,
    fetch: Callable[[duckdb.DuckDBPyRelation], _T],
) -> _T:
    """Run ``fetch(relation)`` for ``sql`` under the time limit, mapping errors to ours.

    ``fetch`` is a callable taking the DuckDB relation; its result is returned. The statement
    must have passed :func:`check_statement`.

    Raises:
        QueryRefusedError: the query tried to reach a file, the network or an extension.
        QueryError: the query failed or reached the time limit.
        KeyboardInterrupt: the query was interrupted by the user (Ctrl-C).
    """
    with _Watchdog(locked.con, timeout_s) as watchdog:
        try:
            return fetch(locked.con.sql(sql))
        except duckdb.PermissionException as exc:
            raise QueryRefusedError(
                f"refused: the workbench has no file or network access ({_one_line(exc)})"
            ) from None
        except (duckdb.Error, pa.ArrowException, OSError, RuntimeError) as exc:
            if watchdog.fired.is_set() or "maximum execution time" in str(exc):
                raise QueryError(f"time limit of {timeout_s:g} s reached") from None
            if _is_interrupt(exc):
                raise KeyboardInterrupt from None
            raise QueryError(explain_error(exc, lake, locked.damaged)) from None


def run_query(
    lake: Lake,
    sql: str,
    *,
    max_rows: int = 10_000,
    timeout_s: float = 30.0,
    memory_limit: str | int = "auto",
    temp_dir: Path | None = None,
) -> QueryResult:
    """Run one read-only query against every table of the store, in this process.

    Args:
        lake: the store.
        sql: one read-only query.
        max_rows: row cap; ``QueryResult.truncated`` says whether more rows existed.
        timeout_s: time limit of the query and its fetch.
        memory_limit: DuckDB memory limit, as bytes or as text (``"4GB"``, ``"auto"``).
        temp_dir: a private directory DuckDB may spill to (``None``: no spilling).

    Raises:
        QueryRefusedError: the text is not exactly one read-only query, or it tried to reach
            a file, the network or an extension.
        QueryError: the query failed (unknown column, damaged table...) or ran past
            ``timeout_s``. A single uninterruptible function call (``repeat`` of gigabytes) can
            outlast the limit in-process; ``perpscope sql`` runs queries in a child process that
            is killed at the limit (:func:`perpscope.store.workbench.run_isolated`).
    """
    from perpscope.config import memory_limit_bytes

    check_statement(sql)
    limit = memory_limit if isinstance(memory_limit, int) else memory_limit_bytes(memory_limit)
    locked = connect_locked(lake, memory_limit_bytes=limit, temp_dir=temp_dir, timeout_s=timeout_s)
    try:
        table, truncated = run_in_connection(
            locked, lake, sql, timeout_s=timeout_s, fetch=lambda rel: fetch_capped(rel, max_rows)
        )
    finally:
        locked.close()
    return QueryResult(table, truncated, max_rows)


class StoreReader:
    """The Python API's handle on a store: tables as polars frames and SQL as frames.

    Example::

        import perpscope
        store = perpscope.open_store("~/data/perpscope")
        funding = store.table("funding")
        top = store.sql("SELECT venue, avg(rate) FROM funding GROUP BY venue")
    """

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    def tables(self) -> list[str]:
        """Names of the tables that hold data."""
        return self.lake.tables()

    def table(self, name: str) -> pl.DataFrame:
        """A whole table as a polars frame (empty with the right schema if absent)."""
        return self.lake.read(name)

    def sql(
        self, query: str, *, max_rows: int = 10_000_000, timeout_s: float = 600.0
    ) -> pl.DataFrame:
        """Run a read-only query and return its rows as a polars frame."""
        return run_query(self.lake, query, max_rows=max_rows, timeout_s=timeout_s).frame()


def open_store(path: str | Path | None = None, *, create: bool = False) -> StoreReader:
    """Open a store for reading from Python.

    Args:
        path: the store directory; ``None`` uses ``$PERPSCOPE_STORE``, the config file, or the
            default under the user data directory.
        create: create an empty store there when there is none (else a missing store raises).

    Raises:
        StoreError: ``path`` is not a perpscope store (a typo, or nothing built there yet) and
            ``create`` is false.
    """
    if path is None:
        from perpscope.config import load_config

        root = load_config().store.path
    else:
        root = Path(path).expanduser()
    lake = Lake(root)
    if not lake.exists():
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise StoreError(
                f"{root} is not a perpscope store (no store marker) and not an empty directory"
            )
        if create:
            lake.init()
        elif root.exists():
            raise StoreError(
                f"{root} is an empty directory, not a perpscope store; "
                "pass create=True to make one there"
            )
        else:
            raise StoreError(
                f"no store at {root} (run 'perpscope demo' or an import first, or pass create=True)"
            )
    return StoreReader(lake)
