"""The README's first set-up command works on a fresh clone: ``make demo``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_make_demo_on_a_fresh_clone_builds_the_demo_store(tmp_path: Path) -> None:
    if shutil.which("make") is None or shutil.which("git") is None:
        pytest.fail("make and git are needed for the README's set-up")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    home = tmp_path / "home"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PERPSCOPE_", "VIRTUAL_ENV", "XDG_"))
    }
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "cfg"))
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    proc = subprocess.run(
        ["make", "demo"], cwd=clone, env=env, capture_output=True, text=True, timeout=1200
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "SIMULATED" in proc.stdout
    assert "BTC funding across venues (SIMULATED)" in proc.stdout
    # the demo is built in the default store, so the next commands need no --store
    demo = home / "data" / "perpscope" / "store"
    assert (demo / "funding" / "_delta_log").is_dir()
    table = subprocess.run(
        [str(clone / ".venv" / "bin" / "perpscope"), "funding", "table"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert table.returncode == 0, table.stderr[-3000:]
    # the installed command is a regular (non-editable) install inside the clone's venv
    installed = subprocess.run(
        [
            str(clone / ".venv" / "bin" / "python"),
            "-c",
            "import perpscope; print(perpscope.__file__)",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "site-packages" in installed.stdout
