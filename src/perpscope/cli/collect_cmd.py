"""``perpscope collect``: backfill history, take snapshots, report holes."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from perpscope.cli._common import Format, TableFormat, emit, err_console, out_console, state
from perpscope.errors import PerpscopeError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from perpscope.collect.backfill import StreamResult
    from perpscope.store.lake import Lake

app = typer.Typer(help="Collect data from venues into the store.", no_args_is_help=True)

_TABLE_COLUMNS = ("instrument", "stream", "status", "pages", "rows_written", "last_ts", "holes",
                  "retries")  # fmt: skip
_API_URL_HELP = "Replace the venue's hosts by this base URL (a mirror, or a local test server)."


class _Bars:
    """Draws one progress bar per stream on stderr (time covered / time to cover)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, tuple[TaskID, float]] = {}

    def started(self, key: str, start: datetime, end: datetime) -> None:
        total = max(1.0, (end - start).total_seconds())
        self.tasks[key] = (self.progress.add_task(key, total=total), start.timestamp())

    def advanced(self, key: str, upto: datetime, rows_written: int) -> None:
        task, t0 = self.tasks[key]
        self.progress.update(task, completed=upto.timestamp() - t0)

    def finished(self, key: str, result: StreamResult) -> None:
        if key in self.tasks:
            task, _ = self.tasks[key]
            total = self.progress.tasks[task].total or 1.0
            mark = {"ok": "[green]done", "holes": "[yellow]holes left"}.get(
                result.status, "[red]failed"
            )
            self.progress.update(task, completed=total, description=f"{key} {mark}")


@app.command("backfill")
def backfill_cmd(
    ctx: typer.Context,
    venue: Annotated[str, typer.Option("--venue", help="Venue id, e.g. binance.")],
    instrument: Annotated[
        list[str], typer.Option("--instrument", help="Canonical id (repeatable): BTC-USDT-PERP.")
    ],
    stream: Annotated[
        list[str],
        typer.Option(
            "--stream",
            help="Stream (repeatable): funding, ohlcv:<trade|mark|index|premium>:<tf>, "
            "oi:<period>, long_short:<global_account|top_account|top_position>:<period>, "
            "taker:<period>.",
        ),
    ],
    since: Annotated[
        str | None, typer.Option("--since", help="Start (YYYY-MM-DD); default: all history.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="End (default: now).")] = None,
    restart: Annotated[
        bool, typer.Option("--restart", help="Ignore stored cursors and start from --since.")
    ] = False,
    api_url: Annotated[str | None, typer.Option("--api-url", help=_API_URL_HELP)] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Bars.")] = True,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Backfill history page by page; a rerun resumes each stream after its stored cursor.

    Streams run concurrently; one that fails stops alone with one message (exit 1). Holes the
    venue left in a page are fetched again; any still there end the run with exit 1 and a rerun
    tries them again. Ctrl-C stops at a committed page (exit 130) and says where a rerun
    continues.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from perpscope.services import collection

    lake = state(ctx).lake()
    bars = Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
        console=err_console, disable=not progress, transient=False,
    )  # fmt: skip
    try:
        with bars:
            results = collection.run_backfill(
                lake,
                venue,
                instrument,
                stream,
                since=collection.parse_day(since, "--since"),
                until=collection.parse_day(until, "--until"),
                restart=restart,
                api_url=api_url,
                progress=_Bars(bars),
            )
    except KeyboardInterrupt:
        _interrupted(lake, venue, instrument, stream)
    rows = collection.result_rows(results)
    if fmt is Format.TABLE:  # the terminal gets the essentials; JSON has every field
        rows = [{k: r[k] for k in _TABLE_COLUMNS} for r in rows]
    emit(rows, fmt.value, title="backfill")
    failed = [r.error or r.stream for r in results if r.status != "ok"]
    if failed:
        head = "" if len(failed) == 1 else f"{len(failed)} of {len(results)} streams failed: "
        raise PerpscopeError(head + "; ".join(failed))


def _interrupted(lake: Lake, venue: str, instruments: list[str], streams: list[str]) -> NoReturn:
    """Ctrl-C: say so, say where a rerun continues, exit 130.

    Every page is one atomic store commit, so the store holds whole pages only; a page whose
    cursor was not written yet is read again by the rerun and changes nothing.
    """
    from perpscope.services import collection

    err_console.print("interrupted", highlight=False)
    for key, cursor in collection.resume_points(lake, venue, instruments, streams):
        where = f"after {cursor:%Y-%m-%d %H:%M:%S}Z" if cursor else "from the start"
        err_console.print(f"{key}: a rerun continues {where}", highlight=False)
    sys.exit(130)


@app.command("snapshot")
def snapshot_cmd(
    ctx: typer.Context,
    venue: Annotated[
        str, typer.Option("--venue", help="Venue id, e.g. binance, or 'all' (every venue).")
    ],
    instrument: Annotated[
        list[str] | None,
        typer.Option("--instrument", help="Instruments whose OI is read (default BTC, ETH perps)."),
    ] = None,
    api_url: Annotated[str | None, typer.Option("--api-url", help=_API_URL_HELP)] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Take one all-symbol snapshot of funding, mark/index prices, instruments and OI.

    ``--venue all`` snapshots every collectable venue in turn, each within its own limits.
    """
    from perpscope.services import collection

    lake = state(ctx).lake()
    insts = tuple(instrument or collection.DEFAULT_SNAPSHOT_INSTRUMENTS)
    if venue == "all":
        results, errors = collection.run_snapshots(lake, instruments=insts, api_url=api_url)
    else:
        results, errors = [collection.run_snapshot(lake, venue, insts, api_url=api_url)], {}
    docs = []
    for result in results:
        rows = [
            {"table": t, "rows_in": n, "rows_written": result.rows_written.get(t, 0)}
            for t, n in result.rows_in.items()
        ]
        if fmt is Format.JSON:
            docs.append({"venue": result.venue, "tables": rows, "unmapped": list(result.unmapped)})
            continue
        emit(rows, fmt.value, title=f"snapshot {result.venue}")
        if result.unmapped:
            shown = ", ".join(result.unmapped[:10])
            out_console.print(
                f"{len(result.unmapped)} venue symbols without a canonical id: {shown}"
            )
    if fmt is Format.JSON and docs:
        emit(docs if venue == "all" else docs[0], "json")  # one JSON document
    if errors:  # the other venues' snapshots are stored and reported above
        raise PerpscopeError("; ".join(f"snapshot {v} failed: {e}" for v, e in errors.items()))


@app.command("gaps")
def gaps_cmd(
    ctx: typer.Context,
    venue: Annotated[str | None, typer.Option("--venue", help="Only this venue.")] = None,
    instrument: Annotated[str | None, typer.Option("--instrument", help="Only this.")] = None,
    table: Annotated[str | None, typer.Option("--table", help="Only this table.")] = None,
    fmt: Annotated[TableFormat, typer.Option("--format", help="Output format.")] = (
        TableFormat.TABLE
    ),
) -> None:
    """Report holes: consecutive rows of a series further apart than its step."""
    from perpscope.services import collection

    frame = collection.gaps(state(ctx).lake(), venue=venue, instrument=instrument, table=table)
    emit(frame, fmt.value, title="gaps")


@app.command("tiers")
def tiers_cmd(
    ctx: typer.Context,
    venue: Annotated[str, typer.Option("--venue", help="Venue id: okx.")],
    instrument: Annotated[
        list[str], typer.Option("--instrument", help="Canonical id (repeatable): BTC-USDT-PERP.")
    ],
    api_url: Annotated[str | None, typer.Option("--api-url", help=_API_URL_HELP)] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Read the venue's public leverage tiers into leverage_tiers, with their bound unit."""
    from perpscope.services import collection

    rows = collection.run_tiers(state(ctx).lake(), venue, instrument, api_url=api_url)
    emit(rows, fmt.value, title=f"tiers {venue}")


@app.command("venues")
def venues_cmd(
    venue: Annotated[str | None, typer.Option("--venue", help="Only this venue.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """List collectable venues: page size, history depth and rate-limit pool per stream family."""
    from perpscope.services import collection

    emit(collection.capability_rows(venue), fmt.value, title="venues")
