"""``perpscope collect`` end to end: the real CLI in a subprocess against the fake exchange."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import json_data
from tests.fakex.fixture import fake_binance
from tests.fakex.server import FakeBinance, Fault

__all__ = ["fake_binance"]


def perpscope(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perpscope", "--store", str(store), *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--stream", "fundingz"], "unknown stream 'fundingz'"),
        (["--stream", "oi:7x"], "bad period '7x'"),
        (["--stream", "funding", "--since", "yesterday"], "--since 'yesterday'"),
        (["--stream", "funding", "--venue", "kraken"], "no collector for venue 'kraken'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    base = ["collect", "backfill", "--venue", "binance", "--instrument", "BTC-USDT-PERP"]
    done = perpscope(tmp_path / "s", *base, *args)
    assert done.returncode == 2
    assert needle in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_backfill_gaps_and_snapshot_as_json(tmp_path: Path, fake_binance: FakeBinance) -> None:
    store = tmp_path / "s"
    # a page goes missing, and again when the backfill asks for it a second time
    fake_binance.inject(Fault("fundingRate", "missing_page", times=2, skip=1, symbol="BTCUSDT"))
    args = [
        "collect", "backfill", "--venue", "binance", "--instrument", "BTC-USDT-PERP",
        "--stream", "funding", "--until", "2026-01-01", "--api-url", fake_binance.url,
        "--no-progress", "--format", "json",
    ]  # fmt: skip
    done = perpscope(store, *args)
    assert done.returncode == 1  # a run that leaves a hole does not end "ok"
    [row] = json_data(done.stdout)
    assert (row["status"], row["holes"]) == ("holes", 1)
    assert row["rows_written"] == 2193 - 1000  # one page went missing
    [line] = done.stderr.strip().splitlines()
    assert "BTC-USDT-PERP funding: 1 hole(s)" in line
    assert "(1000 rows missing)" in line
    assert "a rerun fetches them again" in line
    holes = json_data(perpscope(store, "collect", "gaps", "--format", "json").stdout)
    assert [h["missing"] for h in holes] == [1000]
    # a plain rerun (no --restart) fills the hole
    again = perpscope(store, *args)
    assert again.returncode == 0, again.stderr
    [row] = json_data(again.stdout)
    assert (row["status"], row["holes"], row["holes_refilled"]) == ("ok", 0, 1)
    assert row["rows_written"] == 1000
    assert json_data(perpscope(store, "collect", "gaps", "--format", "json").stdout) == []
    snap = perpscope(store, "collect", "snapshot", "--venue", "binance", "--api-url",
                     fake_binance.url, "--format", "json")  # fmt: skip
    assert snap.returncode == 0, snap.stderr
    report = json_data(snap.stdout)
    assert report["unmapped"] == ["OLDUSDT"]
    written = {t["table"]: t["rows_written"] for t in report["tables"]}
    assert written == {"instruments": 4, "funding_snapshot": 3, "open_interest": 2}


def test_a_failing_stream_exits_1_and_names_itself(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    fake_binance.inject(
        Fault("fundingRate", "rename", field=("fundingRate", "r"), symbol="ETHUSDT")
    )
    done = perpscope(
        tmp_path / "s", "collect", "backfill", "--venue", "binance",
        "--instrument", "BTC-USDT-PERP", "--instrument", "ETH-USDT-PERP", "--stream", "funding",
        "--until", "2026-01-01", "--api-url", fake_binance.url, "--no-progress", "--format", "json",
    )  # fmt: skip
    assert done.returncode == 1
    rows = {r["instrument"]: r for r in json_data(done.stdout)}
    assert rows["BTC-USDT-PERP"]["status"] == "ok"
    assert rows["ETH-USDT-PERP"]["status"] == "failed"
    [line] = done.stderr.strip().splitlines()
    assert "ETH-USDT-PERP funding" in line
    assert "no field 'fundingRate'" in line


def test_venues_lists_capabilities(tmp_path: Path) -> None:
    done = perpscope(tmp_path / "s", "collect", "venues", "--format", "json")
    assert done.returncode == 0, done.stderr
    rows = {(r["venue"], r["family"]): r for r in json_data(done.stdout)}
    assert rows["binance", "funding"]["page_size"] == 1000
    assert rows["binance", "oi"]["history"] == "30 days"
    assert rows["binance", "oi"]["pool"] == "futures_data"
    bad = perpscope(tmp_path / "s", "collect", "venues", "--venue", "kraken")
    assert bad.returncode == 2
    assert "no collector for venue 'kraken'" in bad.stderr
