"""The one hypothesis profile of tests/conftest.py is loaded everywhere and sets no deadline."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import HYPOTHESIS_PROFILE, REPO

TESTS = Path(__file__).resolve().parent


def test_the_loaded_profile_has_no_deadline_and_no_timing_health_check() -> None:
    assert settings.get_current_profile_name() == HYPOTHESIS_PROFILE
    assert settings.default.deadline is None
    assert HealthCheck.too_slow in settings.default.suppress_health_check
    # A per-test ``@settings(max_examples=...)`` is built on the loaded profile: still no deadline.
    assert settings(max_examples=3).deadline is None


@given(st.integers())
def test_a_given_test_runs_without_a_deadline(value: int) -> None:
    del value
    assert settings.default.deadline is None


def test_no_test_file_sets_a_hypothesis_deadline() -> None:
    offenders: list[str] = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else None
            if isinstance(node.func, ast.Name):
                name = node.func.id
            if name not in ("settings", "register_profile"):
                continue
            if path.name == "conftest.py" and path.parent == TESTS:
                continue  # the profile itself, which sets deadline=None
            if any(k.arg == "deadline" for k in node.keywords):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == [], "set no deadline in a test; the conftest profile has none"


def _profile_in_subprocess(ci: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    code = (
        "import tests.conftest\n"
        "from hypothesis import settings as s\n"
        "d = s.default\n"
        "print(s.get_current_profile_name(), d.deadline, d.derandomize, d.database is None,"
        " d.print_blob, sep='|')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_ci_derandomizes_with_no_database_and_prints_the_blob() -> None:
    assert _profile_in_subprocess("true") == f"{HYPOTHESIS_PROFILE}|None|True|True|True"


def test_outside_ci_examples_are_random_and_remembered() -> None:
    assert _profile_in_subprocess(None) == f"{HYPOTHESIS_PROFILE}|None|False|False|True"
