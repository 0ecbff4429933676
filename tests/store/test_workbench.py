"""Where the workbench's DuckDB may spill: a private directory, never the current one."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from perpscope.errors import QueryRefusedError
from perpscope.store.lake import Lake
from perpscope.store.query import run_query
from perpscope.store.workbench import (
    SPILL_PREFIX,
    private_spill_dir,
    query_display,
    remove_stale_spill_dirs,
    run_isolated,
)


@pytest.fixture
def tmpdir_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "systmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_spill_dir_is_private_and_removed_afterwards(tmpdir_root: Path) -> None:
    with private_spill_dir() as spill:
        assert spill.parent == tmpdir_root
        assert spill.name.startswith(f"{SPILL_PREFIX}{os.getpid()}-")
        assert stat.S_IMODE(spill.stat().st_mode) == 0o700
        (spill / "duckdb_temp_storage-0.tmp").write_bytes(b"x" * 10)
    assert not spill.exists()


def test_leftovers_of_killed_runs_are_removed_and_live_ones_kept(tmpdir_root: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)  # that process has exited: its pid names no live process
    stale = tmpdir_root / f"{SPILL_PREFIX}{dead_pid}-abc"
    stale.mkdir()
    (stale / "duckdb_temp_storage-0.tmp").write_bytes(b"x")
    live = tmpdir_root / f"{SPILL_PREFIX}{os.getpid()}-def"
    live.mkdir()
    other = tmpdir_root / "someone-elses"
    other.mkdir()
    assert remove_stale_spill_dirs() == [stale]
    assert not stale.exists()
    assert live.exists()
    assert other.exists()


def test_files_in_the_current_directory_tmp_are_not_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DuckDB's default spill directory is <cwd>/.tmp, and DuckDB lets queries read it
    (tmp_path / ".tmp").mkdir()
    (tmp_path / ".tmp" / "x.csv").write_text("secret,1\n")
    monkeypatch.chdir(tmp_path)
    lake = Lake(tmp_path / "store")
    reads = ("SELECT * FROM read_csv('.tmp/x.csv')", "SELECT * FROM glob('.tmp/*')")
    with private_spill_dir() as spill:
        for sql in reads:
            with pytest.raises(QueryRefusedError, match="no file or network access"):
                query_display(lake, sql, temp_dir=spill)
    for sql in reads:  # the Python API, which does not spill at all
        with pytest.raises(QueryRefusedError, match="no file or network access"):
            run_query(lake, sql)


@pytest.mark.slow
def test_the_query_process_spills_to_a_fresh_private_dir_that_is_gone_afterwards(
    tmp_path: Path, tmpdir_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sql = (
        "SELECT current_setting('temp_directory') AS d, "
        "(SELECT count(*) FROM glob(current_setting('temp_directory') || '/*')) AS n"
    )
    result = run_isolated(
        Lake(tmp_path / "store"), sql, max_rows=10, timeout_s=120, memory_limit_bytes=2**30
    )
    ((spill, files),) = result.rows()
    assert Path(spill).parent == tmpdir_root
    assert Path(spill).name.startswith(SPILL_PREFIX)
    assert files == 0  # fresh: nothing in it for a query to read but its own spill
    assert not Path(spill).exists()
    assert not (tmp_path / ".tmp").exists()
    assert list(tmpdir_root.iterdir()) == []


def test_memory_limits_parse_in_duckdb_units_and_auto_keeps_half_the_ram() -> None:
    from perpscope.config import memory_limit_bytes, physical_memory_bytes

    assert memory_limit_bytes("512MiB") == 512 * 2**20
    assert memory_limit_bytes("2GB") == 2 * 10**9
    assert memory_limit_bytes(" 1.5 gib ") == 3 * 2**29
    assert memory_limit_bytes("auto") == min(4 * 2**30, physical_memory_bytes() // 2)
    for bad in ("0KB", "63MiB", "99999999TB", "lots", "-1GB", "inf GB"):
        with pytest.raises(ValueError, match=r"too small|more than 80%|not a size"):
            memory_limit_bytes(bad)
