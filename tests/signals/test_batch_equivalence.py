"""Every setup and the scenario classifier on a multi-asset market, checked two ways:

- against saved outputs (``golden_batch.json``, written by the asset-by-asset implementation
  before the batched rewrite of ``detect_all``): identical, floats within 1e-12;
- ``detect_all`` against each single-asset detector called on its own (the per-asset reference).

Regenerate the saved outputs only for an intended change of results:
``python -m tests.signals.test_batch_equivalence``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from perpscope.signals import DETECTORS, MarketData, classify, detect_all
from perpscope.signals.setups import funding_rotation
from tests.signals.multi import market, times

GOLDEN = Path(__file__).with_name("golden_batch.json")
TOL = 1e-12


def _plain(x: Any) -> Any:
    if isinstance(x, datetime):
        return x.isoformat()
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def _outputs(assets: dict[str, MarketData]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for at in times():
        out[at.isoformat()] = {
            "signals": [_plain(s.to_json()) for s in detect_all(assets, at)],
            "scenarios": [_plain(classify(d, at).to_json()) for d in assets.values()],
        }
    return out


def _same(a: Any, b: Any, where: str = "") -> None:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            assert math.isnan(a), where
            assert math.isnan(b), where
        else:
            assert abs(a - b) <= TOL * max(1.0, abs(a), abs(b)), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: {len(a)} != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def assets() -> dict[str, MarketData]:
    return market()


def test_market_exercises_every_setup_and_some_scenarios() -> None:
    saved = json.loads(GOLDEN.read_text())
    setups = {s["setup"] for v in saved.values() for s in v["signals"]}
    assert setups == {*DETECTORS, "funding_rotation"}
    scenarios = {r["scenario"] for v in saved.values() for r in v["scenarios"]}
    assert len(scenarios) >= 5


def test_signals_and_scenarios_equal_the_saved_per_asset_outputs(
    assets: dict[str, MarketData],
) -> None:
    saved = json.loads(GOLDEN.read_text())
    got = json.loads(json.dumps(_outputs(assets)))  # the same float round trip as the file
    _same(got, saved)


@pytest.mark.parametrize("at", times()[:3], ids=lambda t: t.isoformat())
def test_detect_all_equals_each_detector_on_its_own(
    assets: dict[str, MarketData], at: datetime
) -> None:
    expected = []
    for data in assets.values():
        for det in DETECTORS.values():
            expected.extend(det(data, at))
    for name, data in assets.items():
        if name != "BTC":
            expected.extend(funding_rotation(assets["BTC"], data, at))
    got = detect_all(assets, at)
    _same(
        json.loads(json.dumps([_plain(s.to_json()) for s in got])),
        json.loads(json.dumps([_plain(s.to_json()) for s in expected])),
    )


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(_outputs(market()), separators=(",", ":")) + "\n")
