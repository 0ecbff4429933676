"""``perpscope collect options --venue deribit`` end to end (the real CLI in a subprocess against
the fake exchange), then every ``perpscope options ...`` command reads what it stored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from perpscope.domain.schema import table_spec
from perpscope.store.lake import Lake
from tests.conftest import json_data
from tests.fakex import deribit as fd
from tests.fakex.fixture import fake_binance
from tests.fakex.market import END_MS, HOUR_MS
from tests.fakex.server import FakeBinance

__all__ = ["fake_binance"]

UNTIL = "2026-01-01T00:00:00Z"  # the fake market's END


def perpscope(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perpscope", "--store", str(store), *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:  # type: ignore[type-arg]
    """One store filled by ``collect options`` from the fake, run twice (the second must add
    nothing), with the JSON report of each run."""
    from tests.fakex.server import FakeServer

    store = tmp_path_factory.mktemp("opts") / "store"
    with FakeServer() as fake:
        args = ["collect", "options", "--venue", "deribit", "--until", UNTIL, "--hours", "24",
                "--api-url", fake.url, "--format", "json"]  # fmt: skip
        first = perpscope(store, *args)
        assert first.returncode == 0, first.stderr
        second = perpscope(store, *args)
        assert second.returncode == 0, second.stderr
        assert {r.status for r in fake.requests()} == {200}  # paced: no 429 from the credits
    return store, json_data(first.stdout), json_data(second.stdout)


def test_collect_options_stores_chains_trades_and_dvol(collected: tuple[Path, dict, dict]) -> None:  # type: ignore[type-arg]
    store, first, second = collected
    written = {t["table"]: t["rows_written"] for t in first["tables"]}
    # 12 options per coin (2 expiries x 3 strikes x C/P); a trade every 5 minutes per coin over
    # 24 h = 288; DVOL hourly candles of 24 h = 24 per coin
    assert written == {"instruments": 24, "options_snapshot": 24, "option_trades": 576,
                       "vol_index": 48}  # fmt: skip
    assert first["chains"] == {"BTC": "2025-12-31T23:59:59Z", "ETH": "2025-12-31T23:59:59Z"}
    again = {t["table"]: t["rows_written"] for t in second["tables"]}
    assert again == {"instruments": 24, "options_snapshot": 0, "option_trades": 0,
                     "vol_index": 0}  # fmt: skip  # instruments: a new listing read, by design
    trades = Lake(store).read("option_trades")
    # the fake's flags, counted independently from its trade numbers in the window
    start_n = (END_MS - 24 * HOUR_MS - fd.TRADES_START_MS) // fd.TRADE_STEP_MS
    ns = [n for n in range(start_n, fd.trade_count())
          if END_MS - 24 * HOUR_MS <= fd.trade("BTC", n)["timestamp"] < END_MS]  # fmt: skip
    btc = trades.filter(pl.col("instrument").str.starts_with("BTC-"))
    assert btc.height == len(ns) == 288
    assert btc["block"].sum() == sum(1 for n in ns if n % 7 == 0)
    assert btc["liquidation"].drop_nulls().len() == sum(1 for n in ns if n % 11 == 5)
    assert set(btc["liquidation"].drop_nulls()) == {"T", "M", "MT"}
    chain = Lake(store).read("options_snapshot")
    assert chain["mark_iv"].min() > 0.4  # fractions, not percent  # type: ignore[operator]
    assert chain["bid_iv"].null_count() == 2 * 12 // 5  # every fifth option has no bid
    dvol = Lake(store).read("vol_index")
    assert set(dvol["underlying"]) == {"BTC", "ETH"}
    assert dvol["c"].max() < 1.0  # type: ignore[operator]


@pytest.mark.parametrize(
    "command",
    [["summary"], ["pcr"], ["maxpain"], ["oi"], ["smile"], ["unusual", "--threshold-usd", "1"]],
    ids=["summary", "pcr", "maxpain", "oi", "smile", "unusual"],
)
def test_every_options_command_reads_the_collected_chain(
    collected: tuple[Path, dict, dict],  # type: ignore[type-arg]
    command: list[str],
    cli: Any,
) -> None:
    store, _, _ = collected
    done = cli("--store", str(store), "options", *command, "--venue", "deribit",
               "--underlying", "BTC", "--format", "json")  # fmt: skip
    assert done.code == 0, done.err
    data = done.json()
    assert data  # a report with content, not an empty document
    text = done.out
    assert "2025-12-31T23:59:59" in text or "2026-" in text  # read from the collected chain


def test_summary_numbers_come_from_the_collected_chain(
    collected: tuple[Path, dict, dict],  # type: ignore[type-arg]
    cli: Any,
) -> None:
    store, _, _ = collected
    done = cli("--store", str(store), "options", "summary", "--venue", "deribit",
               "--underlying", "ETH", "--format", "json")  # fmt: skip
    assert done.code == 0, done.err
    data = done.json()
    assert data["instruments"] == 12
    assert data["expiries"] == 2
    # put/call OI by hand from the fake: OI = 100 + 10 i for option i of the ETH list, whose
    # odd positions are puts (C, P alternate)
    calls = sum(100 + 10 * i for i in range(12) if i % 2 == 0)
    puts = sum(100 + 10 * i for i in range(12) if i % 2 == 1)
    assert data["pcr_oi"] == pytest.approx(puts / calls, rel=1e-9)


def test_a_venue_without_chains_is_a_usage_error(tmp_path: Path) -> None:
    done = perpscope(tmp_path / "s", "collect", "options", "--venue", "binance")
    assert done.returncode == 2
    assert "option chains are collected from deribit, not 'binance'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_store_written_before_the_iv_columns_gains_them(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    # options_snapshot as an older perpscope wrote it: without bid_iv and ask_iv
    spec = table_spec("options_snapshot")
    old = pa.schema([f for f in spec.schema if f.name not in ("bid_iv", "ask_iv")])
    store = tmp_path / "store"
    Lake(store).init()
    write_deltalake(str(Lake(store).table_path("options_snapshot")), old.empty_table())
    done = perpscope(store, "collect", "options", "--venue", "deribit", "--underlying", "BTC",
                     "--until", UNTIL, "--api-url", fake_binance.url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    chain = Lake(store).read("options_snapshot")
    assert chain.height == 12
    assert chain["ask_iv"].null_count() == 0


@pytest.mark.live
def test_collect_options_on_the_real_venue(tmp_path: Path) -> None:
    """Deribit itself (``pytest -m live``, off by default): one BTC chain and an hour of trades."""
    from perpscope.services.collection import run_options

    lake = Lake(tmp_path / "store")
    result = run_options(lake, "deribit", ["BTC"], hours=1)
    assert result.rows_written["options_snapshot"] > 100
    chain = lake.read("options_snapshot")
    assert set(chain["option_type"]) == {"C", "P"}
    iv = chain["mark_iv"].drop_nulls()
    assert ((iv > 0.05) & (iv < 5.0)).all()  # fractions, not percent
    assert (chain["underlying_px"] > 1_000).all()
    assert result.rows_written["vol_index"] >= 1
