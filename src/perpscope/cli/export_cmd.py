"""``perpscope export``: the store as files other tools read."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from perpscope.cli._common import Format, emit, state
from perpscope.errors import StoreError

app = typer.Typer(help="Export the store for other engines.", no_args_is_help=True)


@app.command("parquet")
def parquet(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Argument(help="Directory to write into (created if missing).")],
    table: Annotated[
        list[str] | None, typer.Option("--table", help="Export only this table (repeatable).")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Write Hive-partitioned Parquet: DIR/<table>/venue=V/instrument=I/date=YYYY-MM-DD/."""
    from perpscope.store.export import export_parquet

    lake = state(ctx).lake()
    if not lake.exists():
        raise StoreError(f"no store at {lake.root}")
    results = export_parquet(lake, out_dir, table)
    emit(
        [
            {"table": r.table, "rows": r.rows, "files": r.files, "path": str(r.path)}
            for r in results
        ],
        fmt.value,
        title="export",
    )
