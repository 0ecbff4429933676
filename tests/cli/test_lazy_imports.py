"""Start-up stays light: the CLI and ``import perpscope`` load no heavy library until a command
needs it (each check runs in a fresh interpreter, where nothing is imported yet)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("ccxt", "numba", "deltalake", "polars", "duckdb", "pyarrow", "pandas", "numpy")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.split()


def _run_importtime(*args: str, check: bool = True) -> tuple[set[str], str]:
    """Top-level modules a ``perpscope ARGS`` run imports (from ``-X importtime`` on stderr),
    and its standard output."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "perpscope", *args],
        capture_output=True, text=True, check=check,
    )  # fmt: skip
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "typer" in names  # the probe works: it sees what was imported
    return names, done.stdout


def _imported_by_command(*args: str) -> set[str]:
    return _run_importtime(*args)[0]


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert _loaded_after("import perpscope.cli.main") == []


def test_importing_perpscope_loads_no_heavy_library_until_a_name_is_used() -> None:
    assert _loaded_after("import perpscope") == []
    assert "deltalake" in _loaded_after("import perpscope\nperpscope.open_store")


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("funding", "--help")])
def test_version_and_help_import_no_heavy_library(args: tuple[str, ...]) -> None:
    assert _imported_by_command(*args).isdisjoint(HEAVY)


def test_a_market_command_loads_neither_ccxt_nor_numba(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # a market command on an empty store runs without ccxt or numba (the lazy imports hold)
    names, _ = _run_importtime("--store", str(tmp_path), "funding", "table", check=False)
    assert "polars" in names  # it did reach the service
    assert "ccxt" not in names
    assert "numba" not in names
    # nor pydantic: typer 0.29 coerces every option through a pydantic TypeAdapter (about 0.25 s
    # per run here), which is why pyproject pins typer below 0.29
    assert "pydantic" not in names


def test_a_market_command_on_a_store_reads_it_without_pyarrow_pandas_or_numpy(
    demo_store: Path,
) -> None:
    # Reading the store is polars over the Delta log's file list: pyarrow (and pandas, which
    # pyarrow.dataset pulls in) and numpy load only for writes, SQL, export and kernels.
    names, out = _run_importtime("--store", str(demo_store), "funding", "table", "--format", "json")
    assert "deltalake" in names  # it read the store...
    assert '"venue"' in out  # ...and printed the table
    assert names.isdisjoint({"pyarrow", "pandas", "numpy", "numba", "duckdb", "ccxt"})


def test_the_root_help_lists_commands_without_importing_them() -> None:
    """``perpscope --help`` reads each command's line from ``_HELP``, which must equal the line
    the command's own help starts with (its first paragraph), and imports no command module."""
    import inspect

    import typer

    from perpscope.cli import main

    assert set(main._HELP) == set(main._COMMANDS)
    for name in main._COMMANDS:
        target = main._target(name)
        text = target.info.help if isinstance(target, typer.Typer) else inspect.getdoc(target)
        assert main._HELP[name] == main._first_paragraph(text), name
    code = (
        "import sys\nfrom perpscope.cli.main import run\n"
        "try:\n    run(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('MODULES:', ' '.join(m for m in sys.modules if m.endswith('_cmd')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Commands" in done.stdout
    assert done.stdout.splitlines()[-1].strip() == "MODULES:"  # no command module imported
