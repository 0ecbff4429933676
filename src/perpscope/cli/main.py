"""The ``perpscope`` command: root options, command groups, and one-line errors.

Each command group lives in its own module and is registered below. Every error perpscope raises on
purpose (:class:`perpscope.errors.PerpscopeError`) is printed as one line on stderr with its exit
code (2 for usage and configuration errors); click's own usage errors exit 2 as well. Tracebacks are
for bugs only. With ``--format json`` the error is a JSON object on stderr instead.

Start-up stays fast: the command modules import only typer and rich at the top and load polars,
Delta Lake, DuckDB, numba and ccxt inside the commands that use them (``tests/cli/
test_lazy_imports.py`` keeps it so).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from typer._click.core import Command as ClickCommand
from typer._click.core import Context as ClickContext
from typer.core import TyperCommand, TyperGroup

from perpscope import __version__
from perpscope.cli._common import AppState, err_console, print_error, set_output_mode
from perpscope.cli.entry import INTERRUPTED_EXIT, interrupted
from perpscope.errors import PerpscopeError

__all__ = ["app", "run"]


def _json_requested(args: list[str]) -> bool:
    """True when the command line asks for ``--format json`` (errors are then JSON too)."""
    return "--format=json" in args or any(
        a == "--format" and b == "json" for a, b in zip(args, args[1:], strict=False)
    )


# The command groups and commands, in the order of the help: name -> (module, attribute). The
# attribute is a typer sub-app or a command function. A command's module is imported, and its
# click command built, only when that command runs (or its help is shown).
_COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("perpscope.cli.demo_cmd", "demo"),
    "brief": ("perpscope.cli.brief_cmd", "brief"),
    "sql": ("perpscope.cli.sql_cmd", "sql"),
    "store": ("perpscope.cli.store_cmd", "app"),
    "collect": ("perpscope.cli.collect_cmd", "app"),
    "import": ("perpscope.cli.import_cmd", "app"),
    "export": ("perpscope.cli.export_cmd", "app"),
    "config": ("perpscope.cli.config_cmd", "app"),
    "calc": ("perpscope.cli.calc_cmd", "app"),
    "options": ("perpscope.cli.options_cmd", "app"),
    "funding": ("perpscope.cli.funding_cmd", "app"),
    "oi": ("perpscope.cli.oi_cmd", "app"),
    "basis": ("perpscope.cli.basis_cmd", "basis"),
    "cvd": ("perpscope.cli.cvd_cmd", "cvd"),
    "longshort": ("perpscope.cli.longshort_cmd", "longshort"),
    "heatmap": ("perpscope.cli.liq_cmd", "heatmap"),
    "cascades": ("perpscope.cli.liq_cmd", "cascades"),
    "liquidations": ("perpscope.cli.liq_cmd", "liquidations"),
    "regime": ("perpscope.cli.chart_cmd", "regime"),
    "structure": ("perpscope.cli.chart_cmd", "structure"),
    "profile": ("perpscope.cli.chart_cmd", "profile"),
    "backtest": ("perpscope.cli.backtest_cmd", "app"),
    "sim": ("perpscope.cli.sim_cmd", "app"),
    "scenario": ("perpscope.cli.signals_cmd", "scenario"),
    "signals": ("perpscope.cli.signals_cmd", "app"),
    "watch": ("perpscope.cli.watch_cmd", "watch"),
    "alerts": ("perpscope.cli.watch_cmd", "app"),
    "serve": ("perpscope.cli.serve_cmd", "serve"),
}


# The one-line help of each command for the root help, so that `perpscope --help` lists the
# commands without importing their modules (tests/cli/test_lazy_imports.py keeps each equal to
# its command's own help). A command missing here is listed from its module.
_HELP: dict[str, str] = {
    "brief": (
        "The morning brief: funding, OI, liquidations, options, regime, scenario, setups, alerts."
    ),
    "demo": "Build a demo store from the simulator and show cross-venue funding (SIMULATED).",
    "serve": (
        "The web dashboard: the brief, every panel, calculators and SQL, with JSON under /api/."
    ),
    "sql": "Run one read-only SQL query (DuckDB dialect) against the store's tables.",
    "store": "Inspect and maintain the store.",
    "collect": "Collect data from venues into the store.",
    "import": "Import market-data files (CSV, CSV.gz, Parquet).",
    "export": "Export the store for other engines.",
    "config": "Show the configuration.",
    "calc": (
        "Pre-trade calculators: liquidation price, position size, targets, funding, Kelly, basis."
    ),
    "options": "Options positioning and volatility from stored chain snapshots.",
    "funding": "Funding rates: normalised, aggregated, extremes and arbitrage.",
    "oi": "Open interest: changes, spikes, quadrants, share and divergence.",
    "basis": (
        "Perp premium to spot and index (annualised), basis-trade status, dated-futures basis."
    ),
    "cvd": "CVD per series from taker volume, and where price and CVD diverge.",
    "longshort": (
        "Latest global vs top-trader long/short ratios and each ratio's 30-day percentile."
    ),
    "heatmap": "ESTIMATED liquidation map and heatmap: levels, clusters, asymmetry, trade helper.",
    "cascades": (
        "Liquidation cascades: initiation, acceleration, climax, exhaustion and the retrace."
    ),
    "liquidations": (
        "REALISED liquidations by venue and side over the last window (to the latest event)."
    ),
    "regime": (
        "Regime per series: ATR, ADX and DIs, realised volatility, the label and its sizing rule."
    ),
    "structure": (
        "Swings, swing failures, breaks of structure (BOS/CHoCH), springs/UTADs and S/R zones."
    ),
    "profile": "Volume profile: point of control, value area, high/low-volume nodes, session VWAP.",
    "backtest": "Backtest strategies on stored candles and funding.",
    "sim": "The simulated market: calibration against real data.",
    "scenario": "Which of the playbook's six confluence scenarios applies to ASSET (or none).",
    "signals": "The playbook's setups with evidence, entry, invalidation and targets; the journal.",
    "watch": "Collect, recompute the metrics, evaluate the alert rules and notify, until stopped.",
    "alerts": "Alert rules and the alerts they fired.",
}


def _target(name: str) -> object:
    module, attr = _COMMANDS[name]
    return getattr(import_module(module), attr)


@cache
def _build(name: str) -> ClickCommand:
    """The click command of ``name`` (built once; building reads every option's annotations)."""
    target = _target(name)
    if name == "import":  # the options-chain import lives with the options commands
        from perpscope.cli import import_cmd, options_cmd

        import_cmd.app.command("options")(options_cmd.import_options)
    # registered on a parent exactly as on the root, so a one-command group stays a group
    parent = typer.Typer(add_completion=False, rich_markup_mode=None)
    if isinstance(target, typer.Typer):
        parent.add_typer(target, name=name)
    else:
        parent.command(name)(cast(Callable[..., Any], target))
    built = typer.main.get_command(parent)  # a lone command comes back as itself
    command = built.commands[name] if isinstance(built, TyperGroup) else built
    _whole_short_help(command)
    _finite_numbers(command)
    return command


def _finite_numbers(command: ClickCommand) -> None:
    """Make every number option of ``command`` (and its subcommands) refuse NaN and infinities.

    Bounds alone do not: ``inf >= 1`` holds, and an unbounded option takes ``nan``.
    """
    import math

    from typer._click.exceptions import BadParameter
    from typer._click.types import FloatParamType

    def check(ctx: ClickContext, param: Any, value: Any, inner: Any = None) -> Any:
        values = value if isinstance(value, list | tuple) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise BadParameter(f"{value!r} is not a finite number", ctx=ctx, param=param)
        return inner(ctx, param, value) if inner is not None else value

    for sub in getattr(command, "commands", {}).values():
        _finite_numbers(sub)
    for param in command.params:
        if isinstance(param.type, FloatParamType):
            inner = param.callback
            param.callback = lambda ctx, p, v, _inner=inner: check(ctx, p, v, _inner)


def _first_paragraph(text: str | None) -> str | None:
    return " ".join(text.strip().split("\n\n")[0].split()) if text else None


def _whole_short_help(command: ClickCommand) -> None:
    """List commands with their whole first paragraph, wrapped, not cut off with '...'."""
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            if sub.short_help is None:
                sub.short_help = _first_paragraph(sub.help)
            _whole_short_help(sub)


def _stub(name: str) -> ClickCommand:
    """A command that only carries its help line, for the root help's list of commands."""
    if name in _HELP:
        kind = TyperGroup if _COMMANDS[name][1] == "app" else TyperCommand
        return kind(name=name, help=_HELP[name], short_help=_HELP[name])
    target = _target(name)
    if isinstance(target, typer.Typer):
        text = target.info.help if isinstance(target.info.help, str) else None
        return TyperGroup(name=name, help=text, short_help=_first_paragraph(text))
    text = inspect.getdoc(target)
    return TyperCommand(name=name, help=text, short_help=_first_paragraph(text))


class _RootGroup(TyperGroup):
    """The root group: loads commands lazily, and reads the global output flags first.

    ``--wide`` is accepted anywhere on the line (``perpscope oi summary --wide``), like a global
    flag; ``--format json`` also switches error messages to JSON.
    """

    _listing = False

    def list_commands(self, ctx: ClickContext) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: ClickContext, cmd_name: str) -> ClickCommand | None:
        if cmd_name not in _COMMANDS:
            return None
        return _stub(cmd_name) if self._listing else _build(cmd_name)

    def format_help(self, ctx: ClickContext, formatter: Any) -> None:
        self._listing = True  # list the commands from their help lines, without building them
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: ClickContext | None = None,
        **extra: Any,
    ) -> ClickContext:
        end = args.index("--") if "--" in args else len(args)
        wide = "--wide" in args[:end]
        args = [a for i, a in enumerate(args) if a != "--wide" or i >= end]
        set_output_mode(wide=wide, json_errors=_json_requested(args[:end]))
        return super().make_context(info_name, args, parent, **extra)


app = typer.Typer(
    cls=_RootGroup,
    rich_markup_mode=None,  # plain help: rendering it with rich costs more than the command
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
    wide: Annotated[
        bool,
        typer.Option(
            "--wide", help="Show every column of a table (also accepted after the command)."
        ),
    ] = False,
) -> None:
    """Load the configuration once and pass it to the command."""
    from perpscope.config import load_config, with_store_path

    cfg = load_config(config)
    if store is not None:
        cfg = with_store_path(cfg, store, "--store")
    ctx.obj = AppState(cfg)


def _usage_line(exc: Exception) -> str:
    """One line for a usage error: what is wrong and where to get help."""
    fmt = getattr(exc, "format_message", None)
    message = " ".join(str(fmt() if callable(fmt) else exc).split())
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "perpscope"
    return f"error: {message} (see '{path} --help')"


def run(argv: list[str] | None = None) -> None:
    """Entry point of the CLI: run a command and map errors to exit codes.

    Outside click's standalone mode, typer returns the code of a ``typer.Exit`` (and turns Ctrl-C
    into ``Exit(130)``) instead of exiting: that code is the process's exit code, and 130 says
    ``interrupted``. The console script enters through :func:`perpscope.cli.entry.main`, which
    also covers a Ctrl-C while the CLI is being imported.
    """
    try:
        code = app(args=argv, prog_name="perpscope", standalone_mode=False)
    except PerpscopeError as exc:
        print_error(str(exc), exc.exit_code)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort as exc:
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
            interrupted()
        err_console.print("aborted")
        sys.exit(1)
    except typer.TyperException as exc:  # click's usage errors (typer vendors click)
        if str(exc).strip():  # a bare command prints its help, then exits with no message
            print_error(_usage_line(exc), int(getattr(exc, "exit_code", 2)))
        sys.exit(int(getattr(exc, "exit_code", 2)))
    except KeyboardInterrupt:
        interrupted()
    if code == INTERRUPTED_EXIT:
        interrupted()
    if isinstance(code, int) and not isinstance(code, bool) and code:
        sys.exit(code)
