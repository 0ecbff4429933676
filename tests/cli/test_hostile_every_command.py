"""Every command turns hostile option values into one clear error line, never a traceback.

The commands and their options are enumerated from the CLI itself (a new command or option is
covered automatically): every numeric option gets ``nan``, ``inf``, ``-inf`` and ``abc`` (each
must be refused: exit 2, one line on stderr), every text option a terminal escape sequence and
rich markup (accepted or refused, but never a traceback, and a refusal is one line). Commands run
in-process against a small demo store; writers (demo, import, export, optimize) are left to their
own hostile-input tests (tests/services/test_import_hostile.py, tests/alerts/test_watch_e2e.py)
since they change the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer._click.types import STRING, FloatParamType, IntParamType
from typer.core import TyperGroup, TyperOption

from perpscope.cli.main import app
from tests.cli.test_json_shape import ARGS, COMMANDS

_WRITERS = ("demo", "import ", "export ", "store optimize", "store repair", "store delete", "watch")
_NUMERIC = ("nan", "inf", "-inf", "abc")
_TEXT = ("\x1b[2J\x1b[31m", "[/x]")


def _leaf(command: str) -> Any:
    cmd: Any = typer.main.get_command(app)
    for part in command.split():
        assert isinstance(cmd, TyperGroup)
        cmd = cmd.get_command(None, part)  # type: ignore[arg-type]
    return cmd


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for command in COMMANDS:
        if command.startswith(_WRITERS):
            continue
        for param in _leaf(command).params:
            if not isinstance(param, TyperOption) or param.is_flag or param.name == "fmt":
                continue
            if isinstance(param.type, IntParamType | FloatParamType):
                cases += [(command, param.opts[0], v) for v in _NUMERIC]
            elif param.type is STRING:
                cases += [(command, param.opts[0], v) for v in _TEXT]
    return cases


CASES = _cases()


def test_the_cases_cover_every_command_group() -> None:
    groups = {c.split()[0] for c, _, _ in CASES}
    assert {"funding", "oi", "calc", "options", "sql", "backtest", "regime"} <= groups


@pytest.mark.parametrize(("command", "option", "value"), CASES)
def test_hostile_option_values_are_one_line_never_a_traceback(
    command: str,
    option: str,
    value: str,
    demo_store: Path,
    tmp_path: Path,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    args = [a.format(tmp=tmp_path, data=tmp_path) for a in ARGS.get(command, [])]
    res = cli("--store", str(demo_store), *command.split(), *args, option, value)
    assert "Traceback" not in res.err, res.err
    if value in _NUMERIC:
        assert res.code == 2, (res.code, res.out[-300:], res.err)
    if res.code != 0:
        assert len(res.err.strip().splitlines()) == 1, res.err
        assert "\x1b" not in res.err  # the user's escape sequence is not replayed on the terminal
