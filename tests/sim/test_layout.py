"""The simulated market is its own package; the venue adapter re-exports its public names."""

from __future__ import annotations

import ast
from pathlib import Path

import perpscope.sim as market
import perpscope.venues.sim as adapter


def test_the_adapter_exports_the_markets_own_objects() -> None:
    for name in adapter.__all__:
        assert getattr(adapter, name) is getattr(market, name), name


def _imports(module: str) -> set[str]:
    path = Path(market.__file__).parent / f"{module}.py"
    tree = ast.parse(path.read_text())
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}


def test_config_presets_params_import_one_way() -> None:
    # config -> presets -> params -> constants: nothing below reaches back up.
    assert "perpscope.sim.presets" in _imports("config")
    assert "perpscope.sim.config" not in _imports("presets")
    assert not {"perpscope.sim.config", "perpscope.sim.presets"} & _imports("params")
    assert not {i for i in _imports("constants") if i.startswith("perpscope")}
