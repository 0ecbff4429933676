"""Where the demo builds, and the stores it never wipes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from perpscope.cli.demo_cmd import Scenario, try_next
from perpscope.errors import StoreError
from perpscope.services.demo import _wipe, demo_target
from perpscope.store.lake import Lake
from perpscope.venues.sim import SCENARIOS


def _funding(venue: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "venue": [venue],
            "instrument": ["BTC-USDT-PERP"],
            "ts": [datetime(2024, 1, 1, tzinfo=UTC)],
            "rate": [1e-4],
            "interval_h": [8.0],
        }
    )


def test_demo_goes_to_the_default_store_when_it_is_free_or_a_demo(tmp_path: Path) -> None:
    default = tmp_path / "store"
    assert demo_target(default) == default  # absent
    default.mkdir()
    assert demo_target(default) == default  # empty
    Lake(default).init(demo=True)
    assert demo_target(default) == default  # already the demo


def test_demo_goes_beside_a_users_own_store(tmp_path: Path) -> None:
    default = tmp_path / "store"
    Lake(default).init()
    Lake(default).ingest("funding", _funding("binance"))
    assert demo_target(default) == tmp_path / "demo"


def test_a_demo_store_holding_real_venues_is_never_wiped(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "store")
    lake.init(demo=True)
    lake.ingest("funding", _funding("sim1"))
    lake.ingest("funding", _funding("binance"))
    with pytest.raises(StoreError, match="holds data of binance"):
        _wipe(lake.root)
    assert lake.read("funding").height == 2


def test_a_demo_store_of_simulated_data_is_wiped(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "store")
    lake.init(demo=True)
    lake.ingest("funding", _funding("sim1"))
    _wipe(lake.root)
    assert not lake.root.exists()


def test_try_next_adds_store_only_when_needed() -> None:
    plain = try_next(None)
    assert "perpscope funding table" in plain
    assert not any("--store" in line for line in plain)
    for group in ("funding extremes", "oi summary", "oi divergence", "basis", "cvd", "longshort"):
        assert any(line.startswith(f"perpscope {group}") for line in plain), group
    elsewhere = try_next(Path("/tmp/my demo"))
    assert all(line.startswith("perpscope --store '/tmp/my demo' ") for line in elsewhere)


def test_scenario_choices_are_the_simulators_presets() -> None:
    assert tuple(s.value for s in Scenario) == SCENARIOS
