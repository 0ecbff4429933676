"""Binance leverage brackets (signed ``/fapi/v1/leverageBracket``): ``collect tiers --venue
binance`` with the key and secret from the environment, signed as the fake checks (HMAC-SHA256);
refused in one line without a key (exit 2) or with a wrong secret; then ``calc liq`` on the
stored brackets against a liquidation price computed by hand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from perpscope.errors import DataContractError
from perpscope.store.lake import Lake
from perpscope.venues.binance_parse import parse_leverage_brackets
from tests.conftest import json_data
from tests.fakex.server import BINANCE_SECRET, FakeBinance


def _run(store: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PERPSCOPE_BINANCE_")}
    cmd = [sys.executable, "-m", "perpscope", "--store", str(store), *args, "--format", "json"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**base, **env})


def _tiers(store: Path, url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return _run(store, env, "collect", "tiers", "--venue", "binance", "--instrument",
                "BTC-USDT-PERP", "--api-url", url)  # fmt: skip


def test_collect_binance_brackets_with_a_key_then_calc_liq_reads_them(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    store = tmp_path / "store"
    keys = {"PERPSCOPE_BINANCE_KEY": "k", "PERPSCOPE_BINANCE_SECRET": BINANCE_SECRET}
    done = _tiers(store, fake_binance.url, keys)
    assert done.returncode == 0, done.stderr
    [row] = json_data(done.stdout)
    assert (row["tiers"], row["bound_unit"], row["rows_written"]) == (3, "usd", 3)
    [req] = fake_binance.requests("leverageBracket")
    assert req.status == 200
    assert {"signature", "timestamp"} <= set(req.params)
    stored = Lake(store).read("leverage_tiers").sort("tier")
    assert stored["notional_floor_usd"].to_list() == [0.0, 50_000.0, 600_000.0]
    assert stored["notional_cap_usd"].to_list() == [50_000.0, 600_000.0, 3_000_000.0]
    assert stored["maint_amount_usd"].to_list() == [0.0, 50.0, 950.0]
    assert stored["max_leverage"].to_list() == [125.0, 100.0, 75.0]

    # long 10 BTC at 50,000, 20x isolated: wallet 25,000; tier 2 (mmr 0.005, cum 50) holds the
    # notional at liquidation. Binance USDⓈ-M by hand: (WB + cum - q x entry) / (q x mmr - q)
    # = (25,000 + 50 - 500,000) / (0.05 - 10) = -474,950 / -9.95 = 47,733.668...
    liq = _run(store, {}, "calc", "liq", "--venue", "binance", "--instrument", "BTC-USDT-PERP",
               "--side", "long", "--entry", "50000", "--qty", "10", "--leverage", "20")  # fmt: skip
    assert liq.returncode == 0, liq.stderr
    d = json_data(liq.stdout)
    assert d["liquidation_px"] == pytest.approx(474_950 / 9.95, rel=1e-12)
    assert d["liquidation_px"] == pytest.approx(47_733.668341708, rel=1e-9)
    assert (d["tier"], d["mmr"], d["maint_amount"]) == (2, 0.005, 50.0)


def test_binance_brackets_are_refused_without_a_key_or_with_a_wrong_secret(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    store = tmp_path / "store"
    bare = _tiers(store, fake_binance.url, {"PERPSCOPE_BINANCE_KEY": "k"})
    assert bare.returncode == 2
    [line] = bare.stderr.strip().splitlines()
    assert "set PERPSCOPE_BINANCE_KEY and PERPSCOPE_BINANCE_SECRET" in line
    assert fake_binance.requests("leverageBracket") == []  # nothing was sent

    wrong = _tiers(store, fake_binance.url,
                   {"PERPSCOPE_BINANCE_KEY": "k", "PERPSCOPE_BINANCE_SECRET": "nope"})  # fmt: skip
    assert wrong.returncode not in (0, 2)
    [line] = wrong.stderr.strip().splitlines()  # one line, no traceback
    assert "leverageBracket" in line
    assert not Lake(store).exists() or Lake(store).read("leverage_tiers").is_empty()


def test_a_malformed_bracket_payload_is_refused_naming_the_problem() -> None:
    good = {"bracket": 1, "initialLeverage": 125, "notionalCap": 50_000, "notionalFloor": 0,
            "maintMarginRatio": 0.004, "cum": 0.0}  # fmt: skip
    frame = parse_leverage_brackets(
        [{"symbol": "BTCUSDT", "brackets": [good]}], "BTC-USDT-PERP", "BTCUSDT", 0
    )
    assert frame["notional_cap_usd"].to_list() == [50_000.0]
    with pytest.raises(DataContractError, match="'maintMarginRatio' must be in"):
        parse_leverage_brackets(
            [{"symbol": "BTCUSDT", "brackets": [{**good, "maintMarginRatio": 2}]}],
            "X",
            "BTCUSDT",
            0,
        )
    with pytest.raises(DataContractError, match="no brackets of BTCUSDT"):
        parse_leverage_brackets([{"symbol": "ETHUSDT", "brackets": [good]}], "X", "BTCUSDT", 0)
    bad = {k: v for k, v in good.items() if k != "cum"}
    with pytest.raises(DataContractError, match="has no field 'cum'"):
        parse_leverage_brackets({"symbol": "BTCUSDT", "brackets": [bad]}, "X", "BTCUSDT", 0)
