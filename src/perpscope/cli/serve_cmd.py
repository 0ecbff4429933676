"""``perpscope serve``: the web dashboard (uvicorn loads inside the command).

The command hands uvicorn the app factory by name (:data:`APP_FACTORY`) with the store and the
config file in the environment: ``perpscope.cli`` and ``perpscope.web`` are independent front ends
and do not import each other.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Annotated

import typer

from perpscope.cli._common import Format, emit, err_console, state
from perpscope.cli._market_opts import FormatOpt
from perpscope.errors import UsageError

__all__ = ["serve"]

LOCALHOST = "127.0.0.1"
PAGES: tuple[str, ...] = ("/", "/funding", "/oi", "/liquidations", "/cvd", "/basis", "/options")
PAGES += ("/signals", "/calc", "/sql")
API: tuple[str, ...] = ("brief", "funding", "oi", "liquidations", "cvd", "basis", "options")
API += ("signals", "calc/{liq,size,funding}", "sql?q=...")
APP_FACTORY = "perpscope.web:app_from_environment"
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def _check_host(host: str) -> None:
    """Refuse anything but an IP address or a plain host name (exit 2)."""
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if not _HOSTNAME.match(host):
        raise UsageError(f"bad --host {host[:60]!r}: give an IP address or a host name")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def serve(
    ctx: typer.Context,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to bind. Default 127.0.0.1 (this machine only); any other address "
            "exposes the dashboard and its SQL workbench to the network.",
        ),
    ] = LOCALHOST,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8050,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Check the address and the store, print what would be served, exit."
        ),
    ] = False,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """The web dashboard: the brief, every panel, calculators and SQL, with JSON under /api/.

    Pages: overview (the brief), funding, open interest, liquidations, CVD, basis, options,
    signals and alerts, calculators and a read-only SQL workbench (docs/dashboard.md).
    """
    st = state(ctx)
    _check_host(host)
    if host not in (LOCALHOST, "localhost", "::1"):
        err_console.print(
            f"warning: binding {host}: the dashboard and its read-only SQL workbench are "
            "reachable from other machines; there is no authentication",
            markup=False,
        )
    if not st.lake().exists():
        err_console.print(
            f"note: no store at {st.store_path}; pages stay empty until 'perpscope demo', an "
            "import or 'perpscope watch' fills it",
            markup=False,
        )
    if dry_run:
        emit(
            {
                "url": f"http://{_url_host(host)}:{port}/",
                "host": host,
                "store": str(st.store_path),
                "store_exists": st.lake().exists(),
                "pages": " ".join(PAGES),
                "api": " ".join(f"/api/{p}" for p in API),
            },
            fmt.value,
            title="perpscope serve (dry run)",
        )
        return
    import uvicorn

    # the app is named, not imported: front ends are independent layers (pyproject.toml)
    os.environ["PERPSCOPE_STORE"] = str(st.store_path)
    config_file = ctx.find_root().params.get("config")
    if config_file is not None:
        os.environ["PERPSCOPE_CONFIG"] = str(config_file)
    err_console.print(
        f"perpscope dashboard on http://{_url_host(host)}:{port}/ (Ctrl-C to stop)", markup=False
    )
    uvicorn.run(
        APP_FACTORY, factory=True, host=host, port=port, log_level="warning", access_log=False
    )
