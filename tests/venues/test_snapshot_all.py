"""``perpscope collect snapshot --venue all``: every collectable venue in one command, paced
within each venue's limits (the real CLI in a subprocess against the fake exchange)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl

from perpscope.store.lake import Lake
from perpscope.venues.registry import COLLECTABLE
from tests.conftest import json_data
from tests.fakex.server import FakeBinance


def test_snapshot_of_every_venue_in_one_paced_command(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    store = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, "-m", "perpscope", "--store", str(store), "collect", "snapshot",
         "--venue", "all", "--api-url", fake_binance.url, "--format", "json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json_data(done.stdout)
    assert [r["venue"] for r in report] == list(COLLECTABLE)
    # paced by default: the fake logged no rate-limit answer (429, 418, 403) from any venue
    statuses = [r.status for r in fake_binance.requests()]
    assert statuses
    assert set(statuses) == {200}
    funding = Lake(store).read("funding_snapshot")
    per_venue = funding.group_by("venue").agg(pl.col("instrument").n_unique())
    # BTC, ETH, XYZ perps; Deribit lists the BTC and ETH inverse perps only
    perps = {v: 2 if v == "deribit" else 3 for v in COLLECTABLE}
    assert dict(per_venue.iter_rows()) == perps
    deribit_calls = [r for r in fake_binance.requests() if r.path.startswith("/api/v2/")]
    assert len(deribit_calls) == 4  # instruments and book summary of BTC and of ETH


def test_snapshot_all_with_one_venue_down_reports_it_and_exits_1(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    fake_binance.set_budget("bybit_ip", 0, 60.0)  # every Bybit request is an overrun: 403
    store = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, "-m", "perpscope", "--store", str(store), "collect", "snapshot",
         "--venue", "all", "--api-url", fake_binance.url, "--format", "json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1
    up = [v for v in COLLECTABLE if v != "bybit"]
    assert [r["venue"] for r in json_data(done.stdout)] == up
    [line] = done.stderr.strip().splitlines()  # one line, no traceback
    err = json.loads(line)  # with --format json the error line is JSON (docs/cli.md)
    assert err["exit_code"] == 1
    assert err["error"].startswith("snapshot bybit failed:")
    assert "IP banned (HTTP 403)" in line
    assert set(Lake(store).read("funding_snapshot")["venue"]) == set(up)
