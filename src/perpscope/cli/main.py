"""The ``perpscope`` command: root options, command groups, and one-line errors.

Each command group lives in its own module and is registered below. Every error perpscope raises on
purpose (:class:`perpscope.errors.PerpscopeError`) is printed as one line on stderr with its exit
code (2 for usage and configuration errors); click's own usage errors exit 2 as well. Tracebacks are
for bugs only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from perpscope import __version__
from perpscope.cli import (
    basis_cmd,
    calc_cmd,
    chart_cmd,
    collect_cmd,
    config_cmd,
    cvd_cmd,
    demo_cmd,
    export_cmd,
    funding_cmd,
    import_cmd,
    liq_cmd,
    longshort_cmd,
    oi_cmd,
    options_cmd,
    signals_cmd,
    sql_cmd,
    store_cmd,
)
from perpscope.cli._common import AppState, err_console
from perpscope.config import load_config
from perpscope.errors import PerpscopeError

__all__ = ["app", "run"]

app = typer.Typer(
    name="perpscope",
    help=(
        "Derivatives intelligence for crypto traders: funding, open interest, basis and options "
        "from Binance, Bybit, OKX, Deribit and the simulator, in a local Delta Lake store."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"perpscope {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help="Store directory (default: $PERPSCOPE_STORE, config file, or user data dir).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Config file (default: $PERPSCOPE_CONFIG or the user config dir)."
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Load the configuration once and pass it to the command."""
    cfg = load_config(config)
    if store is not None:
        cfg = cfg.model_copy(
            update={
                "store": cfg.store.model_copy(update={"path": store.expanduser()}),
                "source": f"{cfg.source}, --store",
            }
        )
    ctx.obj = AppState(cfg)


app.command("demo")(demo_cmd.demo)
app.command("sql")(sql_cmd.sql)
app.add_typer(store_cmd.app, name="store")
app.add_typer(collect_cmd.app, name="collect")
app.add_typer(import_cmd.app, name="import")
app.add_typer(export_cmd.app, name="export")
app.add_typer(config_cmd.app, name="config")
app.add_typer(calc_cmd.app, name="calc")
app.add_typer(options_cmd.app, name="options")
app.add_typer(funding_cmd.app, name="funding")
app.add_typer(oi_cmd.app, name="oi")
app.command("basis")(basis_cmd.basis)
app.command("cvd")(cvd_cmd.cvd)
app.command("longshort")(longshort_cmd.longshort)
app.command("heatmap")(liq_cmd.heatmap)
app.command("cascades")(liq_cmd.cascades)
app.command("liquidations")(liq_cmd.liquidations)
app.command("regime")(chart_cmd.regime)
app.command("structure")(chart_cmd.structure)
app.command("profile")(chart_cmd.profile)
app.command("scenario")(signals_cmd.scenario)
app.add_typer(signals_cmd.app, name="signals")
import_cmd.app.command("options")(options_cmd.import_options)


def _usage_line(exc: Exception) -> str:
    """One line for a usage error: what is wrong and where to get help."""
    fmt = getattr(exc, "format_message", None)
    message = " ".join(str(fmt() if callable(fmt) else exc).split())
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "perpscope"
    return f"error: {message} (see '{path} --help')"


def run(argv: list[str] | None = None) -> None:
    """Entry point of the console script: run the CLI and map errors to exit codes."""
    try:
        app(args=argv, prog_name="perpscope", standalone_mode=False)
    except PerpscopeError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except typer.TyperException as exc:  # click's usage errors (typer vendors click)
        if str(exc).strip():  # a bare command prints its help, then exits with no message
            err_console.print(_usage_line(exc), markup=False, highlight=False)
        sys.exit(int(getattr(exc, "exit_code", 2)))
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
