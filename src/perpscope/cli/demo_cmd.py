"""``perpscope demo``: build the simulated demo store and print the first brief section."""

from __future__ import annotations

import shlex
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from perpscope.cli._common import Format, emit, err_console, out_console, state

if TYPE_CHECKING:
    import polars as pl


class Scenario(StrEnum):
    """The simulator presets (see ``perpscope.venues.sim.SCENARIOS``)."""

    DEFAULT = "default"
    LONG_SQUEEZE = "long-squeeze"
    SHORT_SQUEEZE = "short-squeeze"
    VACUUM = "vacuum"
    HEALTHY_TREND = "healthy-trend"
    EXHAUSTION = "exhaustion"
    PRE_EVENT_BUILD = "pre-event-build"
    BASIS_BULL = "basis-bull"


def _pct(x: float | None, digits: int = 4) -> str:
    return "" if x is None else f"{x * 100:+.{digits}f}%"


def _weighting(label: str) -> str:
    return {"oi": "OI-weighted", "equal": "equal-weighted"}.get(label, f"{label}-weighted")


def _render(overview_venues: pl.DataFrame, overview_assets: pl.DataFrame) -> None:
    import polars as pl
    from rich.panel import Panel
    from rich.table import Table

    out_console.print(
        Panel.fit(
            "[bold yellow]SIMULATED DATA[/] - venues sim1, sim2, sim3 are perpscope's simulator, "
            "not real markets",
            border_style="yellow",
        )
    )
    for asset_row in overview_assets.iter_rows(named=True):
        asset = asset_row["asset"]
        table = Table(title=f"{asset} funding across venues (SIMULATED)", title_justify="left")
        for col in ("venue", "instrument", "rate", "interval", "8h-equiv", "annualised"):
            table.add_column(col, justify="left" if col in ("venue", "instrument") else "right")
        for r in overview_venues.filter(pl.col("asset") == asset).iter_rows(named=True):
            table.add_row(
                r["venue"],
                r["instrument"],
                _pct(r["rate"]),
                f"{r['interval_h']:g}h",
                _pct(r["rate_8h"]),
                _pct(r["annualized"], 2),
            )
        out_console.print(table)
        spread = (
            # two lines, so that it reads whole in 80 columns
            f"  widest spread: {_pct(asset_row['spread_8h'])} per 8h "
            f"= {_pct(asset_row['spread_annualized'], 2)} a year,\n"
            f"    {asset_row['high_venue']} {_pct(asset_row['high_rate_8h'])} vs "
            f"{asset_row['low_venue']} {_pct(asset_row['low_rate_8h'])} per 8h\n"
            if asset_row["spread_8h"] is not None  # one venue has no cross-venue spread
            else "  one venue: no cross-venue spread\n"
        )
        out_console.print(
            f"  {_weighting(asset_row['weighting'])}: {_pct(asset_row['agg_rate_8h'])} per 8h "
            f"= {_pct(asset_row['agg_annualized'], 2)} a year\n" + spread
        )


def demo(
    ctx: typer.Context,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="Demo store directory (default: the default store if it is empty or a demo "
            "store, else 'demo' beside it). Rebuilt on every run.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Simulator seed (same seed, same data).")] = 7,
    days: Annotated[int, typer.Option("--days", min=1, max=3650, help="Days to simulate.")] = 30,
    scenario: Annotated[
        Scenario, typer.Option("--scenario", help="Simulator preset.")
    ] = Scenario.DEFAULT,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Build a demo store from the simulator and show cross-venue funding (SIMULATED).

    Needs no network. The demo store is separate from your own store and is rebuilt on every run;
    a non-empty directory that is not a demo store is never overwritten.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from perpscope.services.demo import build_demo, demo_target, funding_overview
    from perpscope.store.lake import Lake

    default_store = state(ctx).store_path
    path = (store or demo_target(default_store)).expanduser()
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=fmt is Format.JSON,
    ) as bar:
        task = bar.add_task("demo", total=1)

        def step(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        result = build_demo(path, seed=seed, days=days, scenario=scenario.value, step=step)
    overview = funding_overview(Lake(result.store))
    if fmt is Format.JSON:
        emit(
            {
                "simulated": True,
                "store": str(result.store),
                "seed": result.seed,
                "days": result.days,
                "scenario": result.scenario,
                "rows": result.rows,
                "funding": {
                    "venues": overview.venues.drop("weight", strict=False),
                    "assets": overview.assets,
                },
            },
            "json",
        )
        return
    _render(overview.venues, overview.assets)
    # the store commands read without --store: not one named by `perpscope --store X demo`
    from_option = state(ctx).config.source.endswith("--store")
    is_default = not from_option and result.store.resolve() == default_store.expanduser().resolve()
    out_console.print(
        f"Demo store: {result.store} ({sum(result.rows.values()):,} rows, seed {seed}, "
        f"scenario {result.scenario})"
        + (
            "; it is your default store, so the commands below need no --store"
            if is_default
            else "; add --store to use it"
        ),
        soft_wrap=True,  # a path or a command is copied whole: never broken across lines
        markup=False,
    )
    out_console.print("Try next:")
    for line in try_next(None if is_default else result.store):
        out_console.print(f"  {line}", markup=False, soft_wrap=True)


def try_next(store: Path | None) -> list[str]:
    """The commands to try on the demo store (with ``--store`` only when it is not the default)."""
    prefix = "perpscope" if store is None else f"perpscope --store {shlex.quote(str(store))}"
    return [
        f"{prefix} {command}"
        for command in (
            "brief",
            "store info",
            "funding table",
            "funding history --asset BTC --since 1d",
            "funding extremes --threshold 0.01 --min-venues 1",
            "funding arbitrage",
            "funding divergence --asset BTC",
            "oi summary",
            "oi divergence",
            "basis",
            "cvd --asset BTC --tail 5",
            "longshort",
            "heatmap --venue sim1 --instrument BTC-USDT-PERP",
            "scenario --asset BTC",
            "signals --assets BTC,ETH",
            "calc size --equity 50000 --risk-pct 1.5 --entry 47100 --stop 47600 --leverage 5",
            'sql "SELECT venue, instrument, ts, rate, interval_h FROM funding '
            'ORDER BY ts DESC LIMIT 10"',
        )
    ]
