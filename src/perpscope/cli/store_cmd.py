"""``perpscope store``: what the store holds, and keeping it compact."""

from __future__ import annotations

from typing import Annotated

import typer

from perpscope.cli._common import Format, emit, out_console, state
from perpscope.errors import StoreError

app = typer.Typer(help="Inspect and maintain the store.", no_args_is_help=True)


@app.command("info")
def info(
    ctx: typer.Context,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """List the tables with row counts, time spans, Delta versions and file counts."""
    lake = state(ctx).lake()
    if not lake.exists():
        raise StoreError(f"no store at {lake.root} (run 'perpscope demo' or import data first)")
    rows = [
        {
            "table": t.name,
            "rows": t.rows,
            "first_ts": t.first_ts,
            "last_ts": t.last_ts,
            "version": t.version,
            "files": t.files,
        }
        for t in lake.info()
    ]
    if fmt is Format.TABLE:
        out_console.print(f"store: {lake.root}")
    emit(rows, fmt.value, title="tables")


@app.command("optimize")
def optimize(
    ctx: typer.Context,
    retention_h: Annotated[
        float | None,
        typer.Option(
            "--retention-hours",
            min=0,
            help="Vacuum files unreferenced for this long (default: store.vacuum_retention_h).",
        ),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Merge small files of every table, then vacuum unreferenced files and checkpoint."""
    st = state(ctx)
    lake = st.lake()
    if not lake.exists():
        raise StoreError(f"no store at {lake.root}")
    hours = st.config.store.vacuum_retention_h if retention_h is None else retention_h
    report = lake.optimize(hours)
    emit([{"table": k, **v} for k, v in report.items()], fmt.value, title="optimize")
