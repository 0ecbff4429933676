"""A backfill killed with SIGKILL mid-way resumes from its cursor and ends equal to an
uninterrupted run, without duplicates. The backfill runs as the real CLI in a subprocess; the fake
exchange holds the answer to one request so the kill lands at a known page."""

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


def test_sigkilled_backfill_resumes_and_matches_an_uninterrupted_run(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    # Arrange: a reference store from an uninterrupted run
    reference = Lake(tmp_path / "reference")
    run_backfill(
        reference, "binance", ["BTC-USDT-PERP"], [STREAM], until=END, api_url=fake_binance.url,
        policy=RetryPolicy(), pace=False, rate_limit_ms=1,
    )  # fmt: skip
    assert len(fake_binance.requests("/fapi/v1/klines")) == PAGES
    fake_binance.log.clear()

    # Act 1: the sixth page request hangs; kill the process while it waits for it
    store = tmp_path / "store"
    fake_binance.inject(Fault("/fapi/v1/klines", "hang", skip=5))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPSCOPE_")}
    proc = subprocess.Popen(cli(store, fake_binance.url), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert fake_binance.hung.wait(120), "the backfill never reached the sixth page"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        fake_binance.release()
    assert proc.returncode == -signal.SIGKILL
    lake = Lake(store)
    cursor = read_cursor(lake, "binance", "BTC-USDT-PERP", STREAM)
    assert cursor is not None
    assert lake.read("ohlcv").height == 5 * 1500  # five pages were committed before the kill
    before = len(fake_binance.requests("/fapi/v1/klines"))

    # Act 2: run it again
    done = subprocess.run(cli(store, fake_binance.url), env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip

    # Assert: resumed after the cursor, and the store equals the reference
    assert done.returncode == 0, done.stderr
    resumed = fake_binance.requests("/fapi/v1/klines")[before:]
    assert len(resumed) == PAGES - 5
    assert int(resumed[0].params["startTime"]) == int(cursor.timestamp() * 1000) + 1
    ours = lake.read("ohlcv").sort("ts")
    theirs = reference.read("ohlcv").sort("ts")
    assert ours.height == BARS
    assert not ours.select(pl.col("ts").is_duplicated().any()).item()
    assert ours.equals(theirs)
