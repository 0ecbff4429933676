"""``perpscope collect``: backfill history, take snapshots, follow live streams, report holes."""

from __future__ import annotations

import sys
from dataclasses import asdict
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


_STREAM_COLUMNS = ("venue", "instruments", "frames", "liquidations_written",
                   "taker_minutes_written", "ticks_written", "reconnects", "malformed",
                   "lower_bound")  # fmt: skip


@app.command("stream")
def stream_cmd(
    ctx: typer.Context,
    venue: Annotated[
        str, typer.Option("--venue", help="Venue id: binance, bybit, okx or deribit.")
    ],
    instrument: Annotated[
        list[str],
        typer.Option(
            "--instrument",
            help="Perpetual or spot pair (repeatable): BTC-USDT-PERP, BTC-USDT (Deribit: "
            "perpetuals only, BTC-USD-PERP).",
        ),
    ],
    duration: Annotated[
        float | None,
        typer.Option("--duration", help="Stop after this many seconds (default: until Ctrl-C)."),
    ] = None,
    tick_every: Annotated[
        float,
        typer.Option("--tick-every", help="Store one mark-price/funding tick per this many s."),
    ] = 60.0,
    ws_url: Annotated[
        str | None,
        typer.Option("--ws-url", help="Replace the venue's WebSocket host (a local test server)."),
    ] = None,
    api_url: Annotated[
        str | None, typer.Option("--api-url", help=_API_URL_HELP + " Used to fill gaps.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Follow live liquidations, trades (as 1-minute taker buy/sell volume) and funding ticks.

    Perpetuals share one connection; spot pairs (trades only, for spot CVD) get another.

    Rows are committed every two seconds; a dropped or silent connection reconnects with backoff.
    Minutes a gap kept from being stored are summed from REST trades where the venue serves them
    (Binance, OKX, Deribit); elsewhere the gap is recorded and its minutes are not stored.
    Binance liquidations are sampled by the venue (one per symbol per second): their totals are a
    lower bound. Deribit liquidations are its trades flagged as liquidations. A subscription the
    venue refuses ends the run with one error line (exit 1). Ctrl-C commits what was received and
    exits 130.
    """
    from perpscope.services import collection

    lake = state(ctx).lake()

    def log(message: str) -> None:
        err_console.print(message, highlight=False, markup=False)

    try:
        reports = collection.run_stream(
            lake, venue, instrument, duration_s=duration, ws_url=ws_url, api_url=api_url,
            tick_every_s=tick_every, log=log,
        )  # fmt: skip
    except KeyboardInterrupt:
        err_console.print("interrupted; what was received is stored", highlight=False)
        sys.exit(130)
    rows = [collection.stream_row(r) for r in reports]
    if fmt is Format.TABLE:
        emit([{k: row[k] for k in _STREAM_COLUMNS} for row in rows], fmt.value, title="stream")
        for gap in (g for row in rows for g in row["gaps"]):
            out_console.print(f"gap: {gap}", highlight=False, markup=False)
    else:
        emit(rows, fmt.value)
    errors = [r.error for r in reports if r.error]
    if errors:
        raise PerpscopeError("; ".join(errors))


@app.command("archive")
def archive_cmd(
    ctx: typer.Context,
    instrument: Annotated[str, typer.Option("--instrument", help="USDⓈ-M perp: BTC-USDT-PERP.")],
    since: Annotated[str | None, typer.Option("--since", help="First day (YYYY-MM-DD).")] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Last day (default: yesterday, the latest file).")
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            help="Dataset (repeatable; default all): klines, markPriceKlines, indexPriceKlines, "
            "premiumIndexKlines, fundingRate, metrics.",
        ),
    ] = None,
    timeframe: Annotated[str, typer.Option("--timeframe", help="Kline interval.")] = "1h",
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Replace the archive's host (a mirror, or a test server)."),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Backfill from Binance's public archive (data.binance.vision): klines incl. mark, index and
    premium, funding, and 5-minute OI and long/short and taker ratios.

    Each zip is checked against its CHECKSUM (a mismatch is refused and downloaded again) and
    cached; a rerun skips the files already stored, so a killed run resumes without duplicates.
    """
    from perpscope.services import collection

    def log(message: str) -> None:
        err_console.print(message, highlight=False, markup=False)

    report = collection.run_archive(
        state(ctx).lake(), instrument, since=collection.parse_day(since, "--since"),
        until=collection.parse_day(until, "--until"), datasets=dataset or (),
        timeframe=timeframe, base_url=base_url, log=log,
    )  # fmt: skip
    row = asdict(report)
    if fmt is Format.TABLE:
        row["rows_written"] = sum(report.rows_written.values())
        row["missing"] = len(report.missing)
    emit(row, fmt.value, title="archive")


@app.command("options")
def options_cmd(
    ctx: typer.Context,
    venue: Annotated[str, typer.Option("--venue", help="Venue with option chains: deribit.")],
    underlying: Annotated[
        list[str] | None,
        typer.Option("--underlying", help="Underlying (repeatable): BTC, ETH (default both)."),
    ] = None,
    hours: Annotated[
        float,
        typer.Option("--hours", min=0.001, help="Window of option trades and DVOL, hours back."),
    ] = 24.0,
    until: Annotated[
        str | None, typer.Option("--until", help="End of that window (default: now).")
    ] = None,
    api_url: Annotated[str | None, typer.Option("--api-url", help=_API_URL_HELP)] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Store one option-chain snapshot per underlying, its option trades and DVOL.

    The chain (mark, bid/ask and their IVs, OI, volume, underlying price) goes to
    options_snapshot, where 'perpscope options ...' reads it; trades of the last --hours, with
    their block-trade and liquidation flags, to option_trades; DVOL hourly candles to vol_index.
    Nothing is stored unless all of it was read.
    """
    from perpscope.services import collection

    lake = state(ctx).lake()
    result = collection.run_options(
        lake,
        venue,
        tuple(underlying or ("BTC", "ETH")),
        hours=hours,
        until=collection.parse_day(until, "--until"),
        api_url=api_url,
    )
    rows = [
        {"table": t, "rows_in": n, "rows_written": result.rows_written.get(t, 0)}
        for t, n in result.rows_in.items()
    ]
    if fmt is Format.JSON:
        emit({"venue": result.venue, "tables": rows, "chains": result.chains}, "json")
        return
    emit(rows, fmt.value, title=f"options {result.venue}")
    for cur, ts in result.chains.items():
        out_console.print(f"{cur} chain at {ts}", highlight=False)


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
    venue: Annotated[
        str, typer.Option("--venue", help="Venue id: binance (key from env), bybit, okx.")
    ],
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


@app.command("insurance")
def insurance_cmd(
    ctx: typer.Context,
    venue: Annotated[str, typer.Option("--venue", help="Venue id: bybit.")],
    coin: Annotated[
        str | None, typer.Option("--coin", help="Only this coin's pools (default: all).")
    ] = None,
    api_url: Annotated[str | None, typer.Option("--api-url", help=_API_URL_HELP)] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Read the venue's insurance fund, pool by pool, into insurance_pool.

    A pool's balance backs every contract it lists (Bybit shares pools among contracts), so it
    is shown and stored per pool, never split per instrument. Reading again before the venue
    updates its figures stores nothing new.
    """
    from perpscope.services import collection

    res = collection.run_insurance(state(ctx).lake(), venue, coin, api_url=api_url)
    if fmt is Format.JSON:
        emit(res, "json")
        return
    at = f"{res['ts']:%Y-%m-%d %H:%M:%S}Z" if res["ts"] is not None else "-"
    title = (
        f"insurance {res['venue']} (pool-level) at {at}: "
        f"{res['rows_written']} of {len(res['pools'])} pools new"
    )
    emit(res["pools"], fmt.value, title=title)


@app.command("venues")
def venues_cmd(
    venue: Annotated[str | None, typer.Option("--venue", help="Only this venue.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """List collectable venues: page size, history depth and rate-limit pool per stream family."""
    from perpscope.services import collection

    emit(collection.capability_rows(venue), fmt.value, title="venues")
