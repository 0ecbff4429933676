"""``perpscope regime|structure|profile`` through the real entry point on a hand-built store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from perpscope.cli.main import run
from perpscope.store.lake import Lake
from tests.conftest import json_data

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        run(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """1,000 hourly BTC candles (a random walk) plus the playbook's SFP at the end."""
    rng = np.random.default_rng(3)
    n = 1_000
    close = 40_000 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    frame = pl.DataFrame(
        {
            "venue": "binance",
            "instrument": "BTC-USDT-PERP",
            "kind": "trade",
            "timeframe": "1h",
            "ts": [T0 + timedelta(hours=i) for i in range(n)],
            "o": close,
            "h": close * 1.002,
            "l": close * 0.998,
            "c": close,
            "volume": rng.lognormal(0, 0.3, n) * 100,
        }
    )
    path = tmp_path_factory.mktemp("chart") / "store"
    lake = Lake(path)
    lake.init()
    lake.ingest("ohlcv", frame)
    return str(path)


def _json(capsys: pytest.CaptureFixture[str], store: str, *args: str) -> Any:
    code, out, err = _run(capsys, "--store", store, *args, "--format", "json")
    assert code == 0, err
    return json_data(out)


def test_regime_json_gives_the_last_bar_with_its_rule(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    data = _json(capsys, store, "regime", "--asset", "BTC")
    (row,) = data["regime"]
    assert row["ts"] == "2024-04-11T15:00:00Z"  # the 1,000th hour
    assert row["regime"] in {"trending", "ranging", "volatile"}
    expected_size = 0.5 if row["regime"] == "trending" else 1.0
    assert row["size_mult"] == expected_size
    assert (row["adx"] > 30) == (row["regime"] == "trending")


def test_regime_on_4h_resamples_the_stored_1h_bars(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    data = _json(capsys, store, "regime", "--asset", "BTC", "--timeframe", "4h", "--tail", "2")
    rows = data["regime"]
    assert [r["ts"] for r in rows] == ["2024-04-11T08:00:00Z", "2024-04-11T12:00:00Z"]


def test_structure_lists_events_zones_and_swings(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    data = _json(capsys, store, "structure", "--instrument", "BTC-USDT-PERP", "--events", "5")
    assert set(data) == {"swings", "zones", "events"}
    assert len(data["events"]) == 5
    assert {e["event"] for e in data["events"]} <= {"sfp", "bos", "choch", "spring", "utad"}
    for zone in data["zones"]:
        assert zone["high_px"] <= zone["low_px"] * 1.005 + 1e-9  # no zone wider than 0.5%
        assert zone["touches"] >= 2


def test_profile_gives_poc_inside_the_value_area(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    data = _json(capsys, store, "profile", "--asset", "BTC", "--window-h", "72", "--bins", "20")
    (summary,) = data["profile"]
    assert summary["value_low_px"] <= summary["poc_px"] <= summary["value_high_px"]
    assert len(data["bins"]) == 20
    assert summary["from_ts"] == "2024-04-08T16:00:00Z"  # 72 bars back from the last one


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("regime", "--timeframe", "banana"), "bad timeframe"),
        (("regime", "--timeframe", "30m"), "no trade candles that make 30m"),
        (("structure", "--asset", "ETH"), "no candles"),
        (("profile", "--bins", "2"), "--bins"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], store: str, args: tuple[str, ...], message: str
) -> None:
    code, out, err = _run(capsys, "--store", store, *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_missing_store_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "--store", str(tmp_path / "none"), "regime")
    assert code != 0
    assert "no store" in err or "no candles" in err
    assert "Traceback" not in err
