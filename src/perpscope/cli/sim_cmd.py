"""``perpscope sim calibrate``: the simulator's stylised facts against a real market's."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from perpscope.cli._common import Format, emit, err_console, out_console
from perpscope.errors import UsageError

if TYPE_CHECKING:
    from perpscope.services.sim_calibrate import CalibrationReport
    from perpscope.sim.facts import Fact

app = typer.Typer(help="The simulated market: calibration against real data.", no_args_is_help=True)


def _fmt(fact: Fact, x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    if fact.fmt == "pct":
        return f"{x * 100:.1f}%"
    if fact.fmt == "rate":
        return f"{x * 100:+.4f}%"
    if fact.fmt == "count":
        return f"{x:,.0f}"
    return f"{x:.2f}"


def _band(fact: Fact) -> str:
    if fact.lo is not None and fact.hi is not None:
        return f"{_fmt(fact, fact.lo)} to {_fmt(fact, fact.hi)}"
    if fact.lo is not None:
        return f">= {_fmt(fact, fact.lo)}"
    return f"<= {_fmt(fact, fact.hi)}"


def _range(fact: Fact, values: list[float]) -> str:
    v = [x for x in values if math.isfinite(x)]
    if len(v) < 2:
        return ""
    return f"{_fmt(fact, min(v))} .. {_fmt(fact, max(v))}"


def render(report: CalibrationReport) -> None:
    """Print the calibration table."""
    from rich.table import Table

    table = Table(
        title=(
            f"Simulator (sim1 BTC, {len(report.seeds)} seeds x {report.days} days, "
            f"{report.scenario}) vs real ({report.real_source})"
        ),
        title_justify="left",
    )
    for col in ("fact", "band", "simulator", "seeds", "ok", "real", "real windows"):
        table.add_column(col, justify="left" if col in ("fact", "band") else "right")
    for r in report.rows:
        f = r.fact
        table.add_row(
            f.label,
            _band(f),
            _fmt(f, r.sim),
            _range(f, r.sim_values),
            "[green]yes[/]" if r.holds else "[red]NO[/]",
            _fmt(f, r.real) if r.real_values else "-",
            _range(f, r.real_values) or (f"{len(r.real_values)} window" if r.real_values else ""),
        )
    out_console.print(table)
    out_console.print(f"{report.held} of {len(report.rows)} facts in their band.")
    for note in report.real_notes:
        out_console.print(f"  real {note}", markup=False)


@app.command("calibrate")
def calibrate_cmd(
    seeds: Annotated[int, typer.Option("--seeds", help="Simulator seeds (1..N).")] = 5,
    days: Annotated[int, typer.Option("--days", help="Days per run and per real window.")] = 90,
    scenario: Annotated[str, typer.Option("--scenario", help="Simulator preset.")] = "default",
    real_dir: Annotated[
        Path | None,
        typer.Option(
            "--real-dir",
            help="Real data files laid out as candles/, funding/, open_interest/.",
            envvar="PERPSCOPE_SHARED_DATA",
            show_default=False,
        ),
    ] = None,
    real_store: Annotated[
        Path | None,
        typer.Option("--real-store", help="A store with real ohlcv/funding/open_interest."),
    ] = None,
    venue: Annotated[
        str, typer.Option("--venue", help="Venue of the real store's BTC-USDT-PERP.")
    ] = "binance",
    other_venue: Annotated[
        str | None,
        typer.Option("--other-venue", help="Second venue in the store for funding pairs."),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Print each stylised fact for the simulator next to the same fact on real data.

    The simulator side is the median over seeds (or the rule the fact names); the real side is
    computed by the same code over windows of the same length. Without real data, the real
    columns stay empty.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from perpscope.services.sim_calibrate import (
        calibrate,
        real_facts_from_files,
        real_facts_from_store,
    )
    from perpscope.store.lake import Lake

    if real_dir is not None and real_store is not None:
        raise UsageError("give --real-dir or --real-store, not both")
    real = None
    if real_store is not None:
        values, notes = real_facts_from_store(Lake(real_store), days, venue, other_venue)
        real = (values, notes, f"store, {venue}")
    elif real_dir is not None:
        values, notes = real_facts_from_files(real_dir.expanduser(), days)
        real = (values, notes, "files")
    with Progress(
        TextColumn("{task.description:<12}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=fmt is Format.JSON,
    ) as bar:
        task = bar.add_task("simulating", total=seeds)

        def step(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        report = calibrate(seeds, days, scenario, real, step)
    if fmt is Format.JSON:
        emit(
            {
                "venue": "sim1",  # the simulated market measured (sim1 BTC): SIMULATED
                "seeds": report.seeds,
                "days": report.days,
                "scenario": report.scenario,
                "real_source": report.real_source,
                "real_notes": report.real_notes,
                "held": report.held,
                "facts": [
                    {
                        "key": r.fact.key,
                        "label": r.fact.label,
                        "lo": r.fact.lo,
                        "hi": r.fact.hi,
                        "rule": r.fact.agg,
                        "sim": r.sim,
                        "sim_values": r.sim_values,
                        "holds": r.holds,
                        "real": r.real if r.real_values else None,
                        "real_values": r.real_values,
                    }
                    for r in report.rows
                ],
            },
            "json",
        )
        return
    render(report)
