"""``perpscope store``: what the store holds, keeping it compact, and deleting wrong rows."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from perpscope.cli._common import Format, emit, err_console, out_console, state
from perpscope.errors import StoreError, UsageError

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
            "damaged": t.damaged or "",
        }
        for t in lake.info()
    ]
    if not any(r["damaged"] for r in rows):
        for r in rows:
            del r["damaged"]
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


def _utc(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"bad {option} {text!r}: use ISO 8601, e.g. 2024-01-01T08:00Z") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@app.command("delete")
def delete(
    ctx: typer.Context,
    table: Annotated[str, typer.Option("--table", help="Table to delete rows from.")],
    venue: Annotated[str, typer.Option("--venue", help="Venue whose rows to delete.")],
    instrument: Annotated[str, typer.Option("--instrument", help="Instrument whose rows.")],
    since: Annotated[
        str | None, typer.Option("--since", help="Only rows at or after this UTC time (ISO 8601).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Only rows before this UTC time (ISO 8601).")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Delete one venue's and instrument's rows of a table (optionally a time range), atomically.

    One Delta commit: readers see all the rows or none of them gone. Re-import the right data
    afterwards, or use 'import ... --replace' to overwrite keys in one step.
    """
    from perpscope.domain.schema import TABLES

    if table not in TABLES:
        raise UsageError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    lake = state(ctx).lake()
    if not lake.exists():
        raise StoreError(f"no store at {lake.root}")
    result = lake.delete(
        table,
        venue=venue,
        instrument=instrument,
        since=_utc(since, "--since"),
        until=_utc(until, "--until"),
    )
    emit(
        {"table": result.table, "rows_deleted": result.rows_deleted, "version": result.version},
        fmt.value,
        title="delete",
    )


@app.command("check")
def check(
    ctx: typer.Context,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Check every table for damage: unparseable or empty commits, missing data files, schema.

    Exits 1 when damage is found ('perpscope store repair' fixes what can be fixed).
    """
    from perpscope.store.integrity import check_store

    lake = state(ctx).lake()
    if not lake.exists():
        raise StoreError(f"no store at {lake.root}")
    checks = check_store(lake)
    if fmt is Format.JSON:
        emit(
            [
                {
                    "table": c.table,
                    "ok": c.ok,
                    "version": c.version,
                    "damage": [
                        {"kind": d.kind, "detail": d.detail, "version": d.version} for d in c.damage
                    ],
                }
                for c in checks
            ],
            "json",
        )
    else:
        rows = [
            {"table": c.table, "version": c.version, "status": "ok"}
            if c.ok
            else {
                "table": c.table,
                "version": c.version,
                "status": "; ".join(f"{d.kind}: {d.detail}" for d in c.damage),
            }
            for c in checks
        ]
        emit(rows, "table", title="store check")
    damaged = [c.table for c in checks if not c.ok]
    if damaged:
        err_console.print(
            f"damage found in {', '.join(damaged)}: run 'perpscope store repair' to fix what "
            "can be fixed"
        )
        sys.exit(1)  # not typer.Exit: outside standalone mode click drops its code


@app.command("repair")
def repair(
    ctx: typer.Context,
    table: Annotated[str | None, typer.Option("--table", help="Repair only this table.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Restore damaged tables to their last good state where Delta allows it.

    Damaged trailing commits are moved out of the log (kept in the table's
    _perpscope_quarantine folder), references to missing data files are dropped; no data file
    is ever deleted. Every action is printed; exits 1 when damage remains.
    """
    from perpscope.domain.schema import TABLES
    from perpscope.store.integrity import check_store, repair_table

    lake = state(ctx).lake()
    if not lake.exists():
        raise StoreError(f"no store at {lake.root}")
    if table is not None and table not in TABLES:
        raise UsageError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
    names = [table] if table else [c.table for c in check_store(lake) if not c.ok]
    actions = [
        {"table": name, "action": line, "repaired": "NOT repaired" not in line}
        for name in names
        for line in repair_table(lake, name)
    ]
    if fmt is Format.JSON:
        emit(actions, fmt.value)
    elif not actions:
        out_console.print("nothing to repair: every table is fine")
    for action in actions if fmt is Format.TABLE else []:
        out_console.print(action["action"], markup=False)
    if not all(a["repaired"] for a in actions):
        sys.exit(1)  # not typer.Exit: outside standalone mode click drops its code
