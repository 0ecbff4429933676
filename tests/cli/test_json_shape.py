"""Every command prints one JSON shape (docs/cli.md), and errors are JSON too with --format json.

The commands are enumerated from the typer app, so a new command is covered automatically: it
fails here until it gets sample arguments in ``ARGS`` (or runs without any).
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup

from perpscope.cli.main import app


def _command_paths() -> list[str]:
    """Every leaf command of the CLI, as ``"group command"`` or ``"command"``."""
    out: list[str] = []

    def walk(cmd: Any, path: list[str]) -> None:
        if isinstance(cmd, TyperGroup):
            for name in cmd.list_commands(None):  # type: ignore[arg-type]
                walk(cmd.get_command(None, name), [*path, name])  # type: ignore[arg-type]
        else:
            out.append(" ".join(path))

    walk(typer.main.get_command(app), [])
    return out


COMMANDS = _command_paths()

# sample arguments of the commands that need some; {tmp} is a fresh directory, {data} holds the
# small files written by the ``files`` fixture
ARGS: dict[str, list[str]] = {
    "demo": ["--store", "{tmp}/demo", "--days", "1"],
    "serve": ["--dry-run"],
    "sql": ["SELECT venue, avg(rate) AS mean_rate FROM funding GROUP BY venue ORDER BY venue"],
    "store optimize": ["--retention-hours", "0"],
    "collect backfill": [
        "--venue", "nosuch", "--instrument", "BTC-USDT-PERP", "--stream", "funding",
    ],
    "collect snapshot": ["--venue", "nosuch"],
    "collect stream": ["--venue", "nosuch", "--instrument", "BTC-USDT-PERP"],
    "collect archive": ["--instrument", "BTC-USDT-PERP", "--since", "2024-01-02", "--until",
                        "2024-01-01"],
    "collect options": ["--venue", "nosuch"],
    "collect tiers": ["--venue", "nosuch", "--instrument", "BTC-USDT-PERP"],
    "collect insurance": ["--venue", "nosuch"],
    "watch": ["--sim", "--days", "1", "--speed", "0"],
    "alerts test": ["funding_extreme"],
    "import funding": [
        "{data}/funding.csv", "--venue", "testex", "--instrument", "BTC-USDT-PERP",
        "--ts-unit", "iso", "--interval-h", "8",
    ],
    "import ohlcv": [
        "{data}/ohlcv.csv", "--venue", "testex", "--instrument", "BTC-USDT-PERP",
        "--timeframe", "1h", "--ts-unit", "iso",
    ],
    "import open-interest": [
        "{data}/oi.csv", "--venue", "testex", "--instrument", "BTC-USDT-PERP", "--unit", "usd",
        "--value-col", "oi", "--ts-unit", "iso",
    ],
    "import options": ["{data}/missing-chain.csv", "--venue", "deribit"],
    "export parquet": ["{tmp}/export"],
    "calc liq": ["--venue", "binance", "--side", "long", "--entry", "20000", "--qty", "1",
                 "--leverage", "10", "--mmr", "0.004", "--maint-amount", "0"],
    "calc size": ["--equity", "10000", "--risk-pct", "1", "--entry", "100", "--stop", "95"],
    "calc targets": ["--entry", "100", "--stop", "95", "--targets", "105,110,120"],
    "calc funding": ["--notional", "10000", "--rate", "0.0001", "--interval-h", "8",
                     "--days", "30"],
    "calc kelly": ["--win-rate", "0.6", "--payoff", "1.5"],
    "calc basis": ["--spot", "10000", "--leverage", "3", "--rate", "0.0001"],
    "calc bucket": ["--risks", "750,450", "--correlation", "0.8"],
    "funding spread": ["sim1", "sim2"],
    "store delete": ["--table", "funding", "--venue", "sim9", "--instrument", "BTC-USDT-PERP"],
    "heatmap": ["--venue", "sim1", "--instrument", "BTC-USDT-PERP"],
    "scenario": ["--asset", "BTC"],
    "sim calibrate": ["--seeds", "1", "--days", "7"],
    "cascades": ["--venue", "sim1", "--instrument", "BTC-USDT-PERP"],
    "backtest run": ["funding-fade", "--venue", "sim1", "--instrument", "BTC-USDT-PERP",
                     "--timeframe", "1h"],
    "backtest montecarlo": ["--trades", "{data}/trades.csv", "--paths", "200"],
    "backtest sweep": ["funding-fade", "--market", "sim1:BTC-USDT-PERP", "--grid",
                       "threshold=0.0003,0.0005", "--workers", "1"],
    "backtest walkforward": ["funding-fade", "--market", "sim1:BTC-USDT-PERP", "--grid",
                             "threshold=0.0003,0.0005", "--folds", "2", "--is-ratio", "1",
                             "--min-trades", "0", "--workers", "1"],
}  # fmt: skip

# commands that cannot succeed offline on a demo store: they must fail with a JSON error line
EXPECTED_ERRORS = {
    "collect backfill",  # no network collector for the made-up venue
    "collect snapshot",
    "collect stream",  # no live feed for the made-up venue
    "collect archive",  # an empty date range (checked before any download)
    "collect options",  # no option chains on the made-up venue
    "collect tiers",
    "collect insurance",  # no collector for the made-up venue
    "import options",  # no chain file (the options tests import real ones)
}

_WRITERS = ("import ", "store optimize", "store delete", "store repair", "export ", "demo", "watch")
_ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny import files in the layouts the import commands read."""
    d = tmp_path_factory.mktemp("files")
    (d / "funding.csv").write_text(
        "ts,rate\n2024-01-01T00:00:00Z,0.0001\n2024-01-01T08:00:00Z,0.00012\n", encoding="utf-8"
    )
    (d / "ohlcv.csv").write_text(
        "ts,open,high,low,close,volume\n"
        "2024-01-01T00:00:00Z,100,101,99,100.5,10\n2024-01-01T01:00:00Z,100.5,102,100,101,12\n",
        encoding="utf-8",
    )
    (d / "oi.csv").write_text(
        "ts,oi\n2024-01-01T00:00:00Z,1000000\n2024-01-01T01:00:00Z,1100000\n", encoding="utf-8"
    )
    (d / "trades.csv").write_text("r_multiple,side\n2.1,long\n-1.0,short\n0.4,long\n")
    return d


def _floats(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _floats(v)]
    return []


def test_every_command_is_enumerated() -> None:
    # a floor, not the list: new commands join automatically
    assert {"funding table", "oi summary", "basis", "calc liq", "sql", "store info"} <= set(
        COMMANDS
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_json_shape_of_every_command(
    command: str,
    demo_store: Path,
    files: Path,
    tmp_path: Path,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    store = demo_store
    if command.startswith(_WRITERS):  # writers get their own copy of the store
        store = tmp_path / "store"
        shutil.copytree(demo_store, store)
    args = [a.format(tmp=tmp_path, data=files) for a in ARGS.get(command, [])]

    res = cli("--store", str(store), *command.split(), *args, "--format", "json")

    if command in EXPECTED_ERRORS:
        assert res.code == 2, (res.out, res.err)
        assert res.out == ""
        lines = res.err.strip().splitlines()
        assert len(lines) == 1, res.err
        err = json.loads(lines[0])
        assert set(err) == {"error", "exit_code"}
        assert err["exit_code"] == 2
        assert err["error"]
        assert "\n" not in err["error"]
        return
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    if command == "brief":  # its own documented shape (docs/brief.schema.json): assets, not data
        assert list(doc) == ["command", "generated_at", "simulated", "as_of", "assets", "notes"]
        doc = {"command": doc["command"], "generated_at": doc["generated_at"],
               "simulated": doc["simulated"], "data": doc["assets"]}  # fmt: skip
    assert list(doc) == ["command", "generated_at", "simulated", "data"]
    assert doc["command"] == command
    assert _ISO_Z.match(doc["generated_at"]), doc["generated_at"]
    assert isinstance(doc["data"], list | dict)
    # simulated exactly when the command used the (demo) store; these sample calculator runs,
    # the config, the venue list and the alert rules use none
    reads_demo = not command.startswith(
        ("calc ", "config ", "collect venues", "backtest montecarlo", "alerts list")
    )
    assert doc["simulated"] is (reads_demo or command == "demo")
    # no float noise (12 significant digits at most); sql prints the user's own query results
    # exactly, digit for digit (docs/store.md, the SQL workbench)
    for x in [] if command == "sql" else _floats(doc["data"]):
        assert math.isfinite(x)
        assert x == float(f"{x:.12g}"), x


def test_usage_errors_are_json_with_format_json(cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("funding", "table", "--no-such-option", "--format", "json")
    assert res.code == 2
    assert json.loads(res.err) == {
        "error": "No such option: --no-such-option (see 'perpscope funding table --help')",
        "exit_code": 2,
    }


def test_errors_stay_one_text_line_without_json(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = cli("--store", str(tmp_path / "none"), "store", "info")
    assert res.code != 0
    assert res.err.startswith("error: ")
    assert len(res.err.strip().splitlines()) == 1
