"""``perpscope sql``: one read-only query against every table."""

from __future__ import annotations

from typing import Annotated

import typer

from perpscope.cli._common import TableFormat, emit, err_console, state


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
            "--max-rows", min=1, help="Row cap (default from config: workbench.max_rows)."
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout", min=0.001, help="Time limit in seconds (default: workbench.timeout_s)."
        ),
    ] = None,
) -> None:
    """Run one read-only SQL query (DuckDB dialect) against the store's tables.

    Writes, DDL, COPY, ATTACH, INSTALL/LOAD, SET and any file or network access are refused.
    JSON output puts the rows (an array of objects, timestamps ISO 8601 UTC) in its "data".
    """
    from perpscope.store.query import run_query
    st = state(ctx)
    wb = st.config.workbench
    if not st.lake().exists():
        err_console.print(
            f"note: no store at {st.store_path}; every table is empty "
            "(run 'perpscope demo', an import or a backfill first)"
        )
    result = run_query(
        st.lake(),
        query,
        max_rows=max_rows or wb.max_rows,
        timeout_s=timeout or wb.timeout_s,
        memory_limit=wb.memory_limit,
    )
    emit(result.frame(), fmt.value)
    if result.truncated:
        err_console.print(f"note: output capped at {result.max_rows} rows (--max-rows to change)")
