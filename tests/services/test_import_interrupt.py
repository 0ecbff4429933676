"""Ctrl-C: ``interrupted`` on stderr, exit 130, the store at a committed version, and a rerun
that completes. Real processes and real signals; synchronised on what the process is doing (its
open files), never on the clock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from perpscope.store.lake import Lake

SRC = Path(__file__).resolve().parents[2] / "src"
ROWS = 2_000_000  # one-minute bars from 2020-01-01: big enough to be inside the work for a while


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _big_ohlcv(path: Path) -> pl.DataFrame:
    start = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1000)
    i = pl.int_range(0, ROWS, eager=True)
    close = 100.0 + (i % 1000) / 100.0
    frame = pl.DataFrame(
        {
            "timestamp": start + i * 60_000,
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": (i % 7).cast(pl.Float64),
        }
    )
    frame.write_csv(path)
    return frame


def _uses(pid: int, path: Path) -> bool:
    """True while process ``pid`` has ``path`` open or mapped (it is reading the file)."""
    target = str(path.resolve())
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return True
            except OSError:
                continue
        with open(f"/proc/{pid}/maps") as maps:
            return any(line.rstrip().endswith(target) for line in maps)
    except OSError:  # the process is gone
        return False


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to watch the process")
def test_ctrl_c_on_an_import_exits_130_leaves_a_committed_version_and_a_rerun_completes(
    tmp_path: Path,
) -> None:
    big = tmp_path / "bars.csv"
    frame = _big_ohlcv(big)
    store = tmp_path / "s"
    lake = Lake(store)
    lake.init()
    args = [sys.executable, "-m", "perpscope", "--store", str(store), "import", "ohlcv", str(big)]
    args += ["--venue", "binance", "--instrument", "BTC-USDT", "--timeframe", "1m"]
    proc = subprocess.Popen(
        args, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    while proc.poll() is None and not _uses(proc.pid, big):
        os.sched_yield()  # poll the process's state: no sleeps, no clock
    assert proc.poll() is None, "the import ended before it was seen reading its file"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, (proc.returncode, err)
    assert "interrupted" in err
    assert "Traceback" not in err
    # never partial: no table, or the whole file in one commit
    if lake.has_table("ohlcv"):
        assert DeltaTable(str(lake.table_path("ohlcv"))).version() == 0
        assert lake.read("ohlcv").height == ROWS
    rerun = subprocess.run(args + ["--format", "json"], env=_env(), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    stored = lake.read("ohlcv").sort("ts")
    assert stored.height == ROWS
    assert stored["c"].to_list() == frame["close"].to_list()
    assert stored["ts"][0] == datetime(2020, 1, 1, tzinfo=UTC)


_IMPORT_INTERRUPTED = textwrap.dedent(
    """
    import importlib.abc, sys

    class CtrlC(importlib.abc.MetaPathFinder):
        # stands in for a Ctrl-C that arrives while the CLI's heavy libraries are imported
        def find_spec(self, name, path=None, target=None):
            if name == sys.argv[1]:
                raise KeyboardInterrupt
            return None

    sys.meta_path.insert(0, CtrlC())
    from perpscope.cli.entry import main
    main(sys.argv[2:])
    """
)


@pytest.mark.parametrize("module", ["polars", "deltalake", "perpscope.cli.main"])
def test_ctrl_c_while_the_cli_is_still_importing_is_one_line_and_130(module: str) -> None:
    res = subprocess.run(
        [sys.executable, "-c", _IMPORT_INTERRUPTED, module, "store", "info"],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert res.returncode == 130, res.stderr
    assert res.stderr.strip() == "interrupted"


def test_console_script_and_python_m_use_the_interrupt_safe_entry() -> None:
    pyproject = (SRC.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert 'perpscope = "perpscope.cli.entry:main"' in pyproject
    main_module = (SRC / "perpscope" / "__main__.py").read_text(encoding="utf-8")
    assert "from perpscope.cli.entry import main" in main_module
    res = subprocess.run(
        [sys.executable, "-c", "import sys, perpscope; print(sorted(m for m in sys.modules))"],
        env=_env(),
        capture_output=True,
        text=True,
    )
    # importing the package loads no heavy library, so a Ctrl-C there cannot escape main()
    assert "polars" not in res.stdout
    assert "deltalake" not in res.stdout
