"""``perpscope import``: load public CSV, CSV.gz and Parquet files into the store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from perpscope.cli._common import Format, emit_import_report, err_console, state
from perpscope.errors import UsageError

if TYPE_CHECKING:
    from perpscope.services.importer import FileOptions

app = typer.Typer(help="Import market-data files (CSV, CSV.gz, Parquet).", no_args_is_help=True)


class TsUnitOpt(StrEnum):
    AUTO = "auto"
    MS = "ms"
    S = "s"
    ISO = "iso"


class OhlcvKind(StrEnum):
    TRADE = "trade"
    MARK = "mark"
    INDEX = "index"
    PREMIUM = "premium"


class OiUnit(StrEnum):
    CONTRACTS = "contracts"
    BASE = "base"
    USD = "usd"


FileArg = Annotated[Path, typer.Argument(help="CSV, CSV.gz or Parquet file.", show_default=False)]
VenueOpt = Annotated[
    str, typer.Option("--venue", help="Venue id (any lowercase word: binance, gate, htx...).")
]
InstrumentOpt = Annotated[
    str, typer.Option("--instrument", help="Canonical instrument id, e.g. BTC-USDT-PERP.")
]
TsColOpt = Annotated[
    str | None, typer.Option("--ts-col", help="Timestamp column (default: found by name).")
]
TsUnitOption = Annotated[
    TsUnitOpt,
    typer.Option(
        "--ts-unit", help="ms | s | iso | auto (numbers > 1e11 are ms, other numbers s, text ISO)."
    ),
]
TzOpt = Annotated[
    float,
    typer.Option(
        "--tz-offset-h", help="Hours the file's clock is ahead of UTC (for times without a zone)."
    ),
]
FilterOpt = Annotated[
    list[str] | None,
    typer.Option("--filter", help="COL=VALUE: keep only matching rows (repeatable)."),
]
SkipBadOpt = Annotated[
    bool, typer.Option("--skip-bad", help="Import the valid rows even if some rows are invalid.")
]
FormatOpt = Annotated[Format, typer.Option("--format", help="Output format.")]


class ConflictOpt(StrEnum):
    FIRST = "first"
    LAST = "last"


OnConflictOpt = Annotated[
    ConflictOpt | None,
    typer.Option(
        "--on-conflict",
        help="Rows repeating a key with other values: keep the first or the last "
        "(default: refuse the file and list them).",
    ),
]
ReplaceOpt = Annotated[
    bool,
    typer.Option(
        "--replace",
        help="Overwrite stored rows with the same keys (to correct a wrong import), "
        "in one atomic commit.",
    ),
]


def _file_options(
    ts_col: str | None,
    ts_unit: TsUnitOpt,
    tz: float,
    filters: list[str] | None,
    skip_bad: bool,
    on_conflict: ConflictOpt | None = None,
    replace: bool = False,
) -> FileOptions:
    from perpscope.services.importer import (
        FileOptions,
    )

    pairs = []
    for f in filters or []:
        col, sep, value = f.partition("=")
        if not sep or not col:
            raise UsageError(f"bad --filter {f!r}: use COL=VALUE")
        pairs.append((col, value))
    return FileOptions(
        ts_col,
        ts_unit.value,
        tz,
        tuple(pairs),
        skip_bad,
        on_conflict.value if on_conflict is not None else "refuse",
        replace,
    )


@contextmanager
def _progress() -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr over the import's stages: read, validate, write."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<36}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,  # a pipe or log gets the result, not a blank line
    ) as bar:
        task = bar.add_task("starting", total=3)

        def stage(text: str) -> None:
            done = 0 if text.startswith("reading") else 1 if text.startswith("validating") else 2
            bar.update(task, description=text, completed=done)

        yield stage


@app.command("funding")
def funding(
    ctx: typer.Context,
    file: FileArg,
    venue: VenueOpt,
    instrument: InstrumentOpt,
    ts_col: TsColOpt = None,
    value_col: Annotated[
        str | None,
        typer.Option("--value-col", help="Funding-rate column (fractions per interval)."),
    ] = None,
    ts_unit: TsUnitOption = TsUnitOpt.AUTO,
    tz_offset_h: TzOpt = 0.0,
    interval_h: Annotated[
        float | None, typer.Option("--interval-h", help="Funding interval in hours for every row.")
    ] = None,
    interval_col: Annotated[
        str | None,
        typer.Option("--interval-col", help="Column holding each row's interval in hours."),
    ] = None,
    filters: FilterOpt = None,
    skip_bad: SkipBadOpt = False,
    on_conflict: OnConflictOpt = None,
    replace: ReplaceOpt = False,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Import realised funding settlements into the funding table.

    Without --interval-h or --interval-col, each row's interval is inferred from the spacing to the
    previous settlement (1, 2, 4 or 8 h), so a file whose interval changes is stored right.
    Timestamps are snapped to the whole minute.
    """
    from perpscope.services.importer import (
        import_funding,
    )

    if interval_h is not None and interval_col is not None:
        raise UsageError("give --interval-h or --interval-col, not both")
    opts = _file_options(ts_col, ts_unit, tz_offset_h, filters, skip_bad, on_conflict, replace)
    with _progress() as progress:
        report = import_funding(
            state(ctx).lake(),
            file,
            venue=venue,
            instrument=instrument,
            opts=opts,
            value_col=value_col,
            interval_h=interval_h,
            interval_col=interval_col,
            progress=progress,
        )
    emit_import_report(report, fmt)


@app.command("ohlcv")
def ohlcv(
    ctx: typer.Context,
    file: FileArg,
    venue: VenueOpt,
    instrument: InstrumentOpt,
    timeframe: Annotated[
        str, typer.Option("--timeframe", help="Bar length: 1m, 5m, 1h, 4h, 1d...")
    ],
    kind: Annotated[
        OhlcvKind, typer.Option("--kind", help="Which price the bars are of.")
    ] = OhlcvKind.TRADE,
    ts_col: TsColOpt = None,
    ts_unit: TsUnitOption = TsUnitOpt.AUTO,
    tz_offset_h: TzOpt = 0.0,
    filters: FilterOpt = None,
    skip_bad: SkipBadOpt = False,
    on_conflict: OnConflictOpt = None,
    replace: ReplaceOpt = False,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Import candles into the ohlcv table.

    Columns are found by name: open/high/low/close (or o/h/l/c), volume, quote volume and taker-buy
    volume when present. The timestamp is the bar's open time. Bars closer than --timeframe, or
    mostly spaced otherwise, are refused.
    """
    from perpscope.services.importer import import_ohlcv

    opts = _file_options(ts_col, ts_unit, tz_offset_h, filters, skip_bad, on_conflict, replace)
    with _progress() as progress:
        report = import_ohlcv(
            state(ctx).lake(),
            file,
            venue=venue,
            instrument=instrument,
            timeframe=timeframe,
            kind=kind.value,
            opts=opts,
            progress=progress,
        )
    emit_import_report(report, fmt)


@app.command("open-interest")
def open_interest(
    ctx: typer.Context,
    file: FileArg,
    venue: VenueOpt,
    instrument: InstrumentOpt,
    unit: Annotated[
        OiUnit, typer.Option("--unit", help="Unit of the values: contracts, base or usd.")
    ],
    value_col: Annotated[
        str | None,
        typer.Option("--value-col", help="Open-interest column (default: found by name)."),
    ] = None,
    ts_col: TsColOpt = None,
    ts_unit: TsUnitOption = TsUnitOpt.AUTO,
    tz_offset_h: TzOpt = 0.0,
    filters: FilterOpt = None,
    skip_bad: SkipBadOpt = False,
    on_conflict: OnConflictOpt = None,
    replace: ReplaceOpt = False,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Import open interest into the open_interest table (source recorded as import).

    Without --value-col, the open-interest column is taken only if exactly one column's name fits
    --unit (sum_open_interest_value for usd); otherwise the candidates are listed.
    """
    from perpscope.services.importer import import_open_interest

    opts = _file_options(ts_col, ts_unit, tz_offset_h, filters, skip_bad, on_conflict, replace)
    with _progress() as progress:
        report = import_open_interest(
            state(ctx).lake(),
            file,
            venue=venue,
            instrument=instrument,
            unit=unit.value,
            opts=opts,
            value_col=value_col,
            progress=progress,
        )
    emit_import_report(report, fmt)
