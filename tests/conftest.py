"""Shared test fixtures.

``shared_data`` gives the directory of real market data (``../shared/data`` beside the repo, or
``$PERPSCOPE_SHARED_DATA``). Outside CI a test that needs it skips with the reason; with
``PERPSCOPE_REQUIRE_SHARED=1`` (set by ``.ci/run``) it fails instead.

Every hypothesis test runs under one profile, ``perpscope``, registered and loaded here: no
deadline (a deadline is a timing assertion, and timing belongs in ``bench/`` only), no "too slow"
health check (also a timing check), and under ``CI`` derandomized (same examples every run, no
example database) with the reproduction blob printed on failure. Tests may lower or raise
``max_examples`` with ``@settings``; they never set a deadline.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent

HYPOTHESIS_PROFILE = "perpscope"


def running_in_ci() -> bool:
    """Whether the ``CI`` environment variable is set (to anything but empty, 0 or false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


if running_in_ci():
    settings.register_profile(
        HYPOTHESIS_PROFILE,
        deadline=None,
        max_examples=100,
        derandomize=True,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
else:
    settings.register_profile(
        HYPOTHESIS_PROFILE,
        deadline=None,
        max_examples=100,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
settings.load_profile(HYPOTHESIS_PROFILE)


def shared_data_dir() -> Path:
    """Where the shared real-market data is expected."""
    env = os.environ.get("PERPSCOPE_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def require_shared(relative: str = "") -> Path:
    """The path of a shared data file or folder; skip (or fail in CI) when it is absent."""
    path = shared_data_dir() / relative
    if not path.exists():
        message = f"shared market data not found at {path} (see README, 'Real data')"
        if os.environ.get("PERPSCOPE_REQUIRE_SHARED") == "1":
            pytest.fail(message + "; PERPSCOPE_REQUIRE_SHARED=1 makes this an error")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data directory (skips or fails as :func:`require_shared` does)."""
    return require_shared()


def json_data(text: str) -> Any:
    """Parse one command's JSON output and return its ``data``, after checking the envelope
    that docs/cli.md documents (``command``, ``generated_at``, ``simulated``, ``data``)."""
    import json

    doc = json.loads(text)
    assert isinstance(doc, dict), doc
    assert set(doc) == {"command", "generated_at", "simulated", "data"}, sorted(doc)
    return doc["data"]


class CliResult:
    """Exit code and captured output of one in-process CLI run."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    def json(self) -> Any:
        """The ``data`` of the command's JSON document (the envelope is checked)."""
        return json_data(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``perpscope ARGS...`` in-process through the real entry point; returns a CliResult."""
    from perpscope.cli.main import run

    def invoke(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            run(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke
