"""One demo store for the whole session, shared by every CLI test that only reads it.

Tests that write (imports, ``store optimize``/``delete``/``repair``, exports) copy it first.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo store of 8 simulated days (read-only: copy it before writing)."""
    path = tmp_path_factory.mktemp("cli") / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "perpscope", "demo", "--store", str(path), "--days", "8",
         "--format", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return path
