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
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from perpscope.signals import DETECTORS, MarketData, classify, detect_all
from perpscope.signals._common import MAX_CONTEXTS, ts_cut
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
    # the market has no option chains: the options setups are tested in test_options.py, and
    # this golden file (saved before they existed) proves the rest unchanged without options
    options = {"pcr_extreme", "max_pain_magnet", "unusual_options"}
    assert setups == {*DETECTORS, "funding_rotation"} - options
    scenarios = {r["scenario"] for v in saved.values() for r in v["scenarios"]}
    assert len(scenarios) >= 5


def test_signals_and_scenarios_equal_the_saved_per_asset_outputs(
    assets: dict[str, MarketData],
) -> None:
    saved = json.loads(GOLDEN.read_text())
    got = json.loads(json.dumps(_outputs(assets)))  # the same float round trip as the file
    assert saved  # the golden file holds outputs to compare, not an empty document
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
    assert expected, "the market must raise some setups, or the comparison proves nothing"
    _same(
        json.loads(json.dumps([_plain(s.to_json()) for s in got])),
        json.loads(json.dumps([_plain(s.to_json()) for s in expected])),
    )


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(_outputs(market()), separators=(",", ":")) + "\n")


def _unstackable(assets: dict[str, MarketData], how: str) -> dict[str, MarketData]:
    """The market with a bundle the batch cannot stack with the others: ``columns``, one with
    Float32 volume (its own group; the others are stacked); ``shared``, one whose funding and
    candles reuse BTC's series names; ``two_series``, one with two candle series."""
    out = dict(assets)
    d = out["A001"]
    assert d.funding is not None
    assert d.candles is not None
    if how == "columns":
        out["A001"] = replace(d, candles=d.candles.with_columns(pl.col("volume").cast(pl.Float32)))
    elif how == "shared":
        btc = pl.lit("BTC-USDT-PERP").alias("instrument")
        out["A001"] = replace(
            d, funding=d.funding.with_columns(btc), candles=d.candles.with_columns(btc)
        )
    else:
        other = d.candles.with_columns(pl.lit("v9").alias("venue"))
        out["A001"] = replace(d, candles=pl.concat([d.candles, other]))
    return out


@pytest.mark.parametrize("how", ["columns", "shared", "two_series"])
def test_bundles_that_cannot_be_stacked_give_their_own_results(
    assets: dict[str, MarketData], how: str
) -> None:
    at = times()[0]
    market_ = _unstackable(assets, how)
    expected = []
    for data in market_.values():
        for det in DETECTORS.values():
            expected.extend(det(data, at))
    for name, data in market_.items():
        if name != "BTC":
            expected.extend(funding_rotation(market_["BTC"], data, at))
    alone = [_plain(classify(d, at).to_json()) for d in market_.values()]
    fresh = {k: replace(d) for k, d in market_.items()}  # no shared contexts
    got = detect_all(fresh, at)
    assert expected, "the market must raise some setups, or the comparison proves nothing"
    assert alone
    _same(
        json.loads(json.dumps([_plain(s.to_json()) for s in got])),
        json.loads(json.dumps([_plain(s.to_json()) for s in expected])),
    )
    _same(
        json.loads(json.dumps([_plain(classify(d, at).to_json()) for d in fresh.values()])),
        json.loads(json.dumps(alone)),
    )


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
@pytest.mark.parametrize("shuffled", [False, True])
def test_time_cut_keeps_the_rows_the_polars_filter_keeps(unit: str, shuffled: bool) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    ts = [start + timedelta(minutes=7 * i, microseconds=333 * i) for i in range(200)]
    frame = pl.DataFrame({"ts": ts, "x": range(200)}).with_columns(
        pl.col("ts").dt.cast_time_unit(unit)  # type: ignore[arg-type]
    )
    if shuffled:
        frame = frame.sample(fraction=1.0, shuffle=True, seed=3)
    after = start + timedelta(hours=3, microseconds=1500)
    upto = start + timedelta(hours=19, minutes=1, microseconds=999)
    for lo, hi in ((after, None), (None, upto), (after, upto), (upto, after)):
        keep = pl.lit(True)
        if lo is not None:
            keep = keep & (pl.col("ts") > lo)
        if hi is not None:
            keep = keep & (pl.col("ts") <= hi)
        assert ts_cut(frame, after=lo, upto=hi).equals(frame.filter(keep))


def test_a_bundle_keeps_the_window_of_its_latest_times_only(
    assets: dict[str, MarketData],
) -> None:
    data = replace(assets["BTC"])
    first = data.window(times()[0])
    assert data.window(times()[0]) is first  # detect_all and classify share it
    for at in times()[1:]:
        data.window(at)
    assert len(data.contexts) == MAX_CONTEXTS
    assert list(data.contexts) == times()[-MAX_CONTEXTS:]
    assert replace(data).contexts == {}
