"""``perpscope demo --scenario``: presets reach the store; unknown names are usage errors."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from perpscope.store.lake import Lake


def test_demo_scenario_vacuum_builds_a_store_with_its_tables(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "demo"
    res = cli("demo", "--store", str(store), "--days", "2", "--scenario", "vacuum",
              "--format", "json")  # fmt: skip
    assert res.code == 0, res.err
    out = res.json()
    assert out["scenario"] == "vacuum"
    lake = Lake(store)
    positions = lake.read("sim_positions")
    assert out["rows"]["sim_positions"] == positions.height > 0
    # the vacuum's funding is neutral: 0.01% per 8h or within a bp of it
    r8 = lake.read("funding").select(pl.col("rate") * 8 / pl.col("interval_h"))["rate"]
    assert (r8 - 0.0001).abs().max() <= 0.0001


def test_demo_unknown_scenario_is_a_usage_error(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("demo", "--store", str(tmp_path / "demo"), "--scenario", "melt-up")
    assert res.code == 2
    assert "'melt-up' is not one of" in res.err
    assert not (tmp_path / "demo").exists()
