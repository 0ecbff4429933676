"""Read-only SQL over the store with DuckDB, safe by construction.

Every table of the schema is registered in an in-memory DuckDB connection as the Arrow dataset of
its latest Delta version (an empty table when it does not exist yet). Then the connection's external
access is disabled and its configuration locked, so no statement can read or write files, load
extensions or reach the network. Before anything runs, DuckDB's own parser must classify the text as
exactly one ``SELECT`` statement (``WITH``, ``FROM``-first, ``VALUES``, ``DESCRIBE`` and
``SUMMARIZE`` parse as selects); anything else is refused. Queries get a row cap and a time limit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

from perpscope.domain.schema import TABLES
from perpscope.errors import QueryError, QueryRefusedError, StoreError
from perpscope.store.lake import Lake

__all__ = ["QueryResult", "StoreReader", "check_read_only", "open_store", "run_query"]


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


def check_read_only(sql: str) -> None:
    """Raise :class:`QueryRefusedError` unless ``sql`` is exactly one SELECT statement."""
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
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise QueryRefusedError(
            f"refused: only read-only SELECT queries run here, this is a {kind.name} statement"
        )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _connect(lake: Lake, memory_limit: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    for name, spec in TABLES.items():
        con.register(
            name, lake.dataset(name) if lake.has_table(name) else spec.schema.empty_table()
        )
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def run_query(
    lake: Lake,
    sql: str,
    *,
    max_rows: int = 10_000,
    timeout_s: float = 30.0,
    memory_limit: str = "4GB",
) -> QueryResult:
    """Run one read-only query against every table of the store.

    Raises:
        QueryRefusedError: the text is not exactly one SELECT statement.
        QueryError: the query failed (unknown column, file access refused...) or ran past
            ``timeout_s``.
    """
    check_read_only(sql)
    con = _connect(lake, memory_limit)
    timed_out = threading.Event()

    def _interrupt() -> None:
        timed_out.set()
        con.interrupt()

    timer = threading.Timer(timeout_s, _interrupt)
    timer.start()
    try:
        reader = con.sql(sql).to_arrow_reader(min(max_rows + 1, 100_000))
        batches: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            batches.append(batch)
            rows += batch.num_rows
            if rows > max_rows:
                break
        table = pa.Table.from_batches(batches, schema=reader.schema)
    except duckdb.PermissionException as exc:
        raise QueryRefusedError(
            f"refused: the workbench has no file or network access ({_one_line(exc)})"
        ) from None
    except (duckdb.Error, pa.ArrowException) as exc:
        if timed_out.is_set():
            raise QueryError(f"query stopped after the {timeout_s:g} s time limit") from None
        raise QueryError(_one_line(exc)) from None
    finally:
        timer.cancel()
        con.close()
    truncated = table.num_rows > max_rows
    return QueryResult(table.slice(0, max_rows), truncated, max_rows)


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
