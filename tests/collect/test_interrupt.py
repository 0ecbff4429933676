"""Ctrl-C on ``perpscope collect backfill``: "interrupted", exit 130, the cursor a rerun continues
after, whole pages only in the store, and a rerun that ends equal to an uninterrupted run.

The backfill runs as the real CLI in a subprocess. The fake exchange holds the answer to the sixth
page request, so SIGINT lands at a known point (five pages served and stored), ordered by the
fake's request log, not by a sleep.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from perpscope.collect.cursor import read_cursor
from perpscope.collect.retry import RetryPolicy
from perpscope.services.collection import run_backfill
from perpscope.store.lake import Lake
from tests.fakex.market import END_MS, LISTING_MS
from tests.fakex.server import FakeBinance, Fault

END = datetime.fromtimestamp(END_MS / 1000, UTC)
STREAM = "ohlcv:trade:1h"
BARS = (END_MS - LISTING_MS["BTCUSDT"]) // 3_600_000  # 17,544 hourly bars
PAGES = math.ceil(BARS / 1500)  # 12


def cli(store: Path, url: str) -> list[str]:
    return [
        sys.executable, "-m", "perpscope", "--store", str(store), "collect", "backfill",
        "--venue", "binance", "--instrument", "BTC-USDT-PERP", "--stream", STREAM,
        "--until", "2026-01-01", "--api-url", url, "--no-progress", "--format", "json",
    ]  # fmt: skip


def test_ctrl_c_on_backfill_exits_130_and_a_rerun_completes(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    # Arrange: a reference store from an uninterrupted run
    reference = Lake(tmp_path / "reference")
    run_backfill(
        reference, "binance", ["BTC-USDT-PERP"], [STREAM], until=END, api_url=fake_binance.url,
        policy=RetryPolicy(), pace=False, rate_limit_ms=1,
    )  # fmt: skip
    fake_binance.log.clear()

    # Act 1: the sixth page request is held; Ctrl-C while the backfill waits for it
    store = tmp_path / "store"
    fake_binance.inject(Fault("/fapi/v1/klines", "hang", skip=5))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPSCOPE_")}
    proc = subprocess.Popen(cli(store, fake_binance.url), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert fake_binance.hung.wait(120), "the backfill never reached the sixth page"
        assert len(fake_binance.requests("/fapi/v1/klines")) == 6
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        fake_binance.release()

    # Assert 1: said so, exit 130, the cursor named, whole pages only
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[0] == "interrupted"
    lake = Lake(store)
    cursor = read_cursor(lake, "binance", "BTC-USDT-PERP", STREAM)
    assert cursor is not None
    assert (
        lines[1] == f"BTC-USDT-PERP {STREAM}: a rerun continues after {cursor:%Y-%m-%d %H:%M:%S}Z"
    )
    assert out == ""  # no report of a run that did not finish
    assert lake.read("ohlcv").height == 5 * 1500  # five pages committed, nothing of the sixth
    # the cursor is the last bar of the fifth page: listing + 7,499 hours
    assert int(cursor.timestamp() * 1000) == LISTING_MS["BTCUSDT"] + (5 * 1500 - 1) * 3_600_000
    before = len(fake_binance.requests("/fapi/v1/klines"))

    # Act 2: run it again
    done = subprocess.run(cli(store, fake_binance.url), env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip

    # Assert 2: resumed after the cursor, and the store equals the reference
    assert done.returncode == 0, done.stderr
    resumed = fake_binance.requests("/fapi/v1/klines")[before:]
    assert len(resumed) == PAGES - 5
    assert int(resumed[0].params["startTime"]) == int(cursor.timestamp() * 1000) + 1
    ours = lake.read("ohlcv").sort("ts")
    assert ours.height == BARS
    assert not ours.select(pl.col("ts").is_duplicated().any()).item()
    assert ours.equals(reference.read("ohlcv").sort("ts"))
