"""The wheel a user installs carries the whole package: every module, the dashboard's static files
and the typing marker, and nothing from a developer's checkout (bytecode, numba caches).

The wheel is built offline with the project's own build backend (hatchling, a dev dependency),
from this checkout, into a temporary directory.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "perpscope"


def _wheel_names(tmp_path: Path) -> set[str]:
    from hatchling.builders.wheel import WheelBuilder

    built = list(WheelBuilder(str(ROOT)).build(directory=str(tmp_path), versions=["standard"]))
    assert len(built) == 1
    with zipfile.ZipFile(built[0]) as wheel:
        return set(wheel.namelist())


def test_the_wheel_has_every_module_the_static_files_and_no_caches(tmp_path: Path) -> None:
    names = _wheel_names(tmp_path)

    in_package = {n for n in names if n.startswith("perpscope/")}
    modules = {
        f"perpscope/{p.relative_to(PACKAGE).as_posix()}"
        for p in PACKAGE.rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert modules  # the checkout's modules were found
    assert modules <= in_package, sorted(modules - in_package)[:10]
    assert {"perpscope/web/static/app.css", "perpscope/web/static/app.js"} <= in_package
    assert "perpscope/py.typed" in in_package
    assert not [n for n in in_package if "__pycache__" in n or n.endswith((".pyc", ".nbi", ".nbc"))]
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)  # the perpscope command
