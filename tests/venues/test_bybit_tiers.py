"""Bybit risk-limit tiers: the parser on a hand-made payload, a malformed payload refused with
one clear error, and ``collect tiers --venue bybit`` end to end on the fake exchange, followed
by ``calc liq`` on the stored tiers checked against a liquidation price computed by hand."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from perpscope.errors import DataContractError
from perpscope.store.lake import Lake
from perpscope.venues.bybit_parse import parse_risk_limits
from tests.conftest import json_data
from tests.fakex.server import FakeBinance

READ_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def _row(i: int, cap: str, mm: str, im: str, ded: str) -> dict[str, object]:
    return {"id": i, "symbol": "BTCUSDT", "riskLimitValue": cap, "maintenanceMargin": mm,
            "initialMargin": im, "isLowestRisk": int(i == 1), "maxLeverage": "0",
            "mmDeduction": ded}  # fmt: skip


def test_risk_limits_become_usd_tiers_ordered_by_cap_with_the_previous_cap_as_floor() -> None:
    rows = [  # deliberately out of order; one row of another symbol is left out
        _row(3, "3200000", "0.0062", "0.025", "2760"),
        _row(1, "2000000", "0.005", "0.01", ""),
        {**_row(9, "1", "0.5", "0.5", ""), "symbol": "ETHUSDT"},
        _row(2, "2600000", "0.0056", "0.02", "1200"),
    ]
    frame = parse_risk_limits(rows, "BTC-USDT-PERP", "BTCUSDT", READ_MS)
    assert frame.columns == [
        "venue", "instrument", "ts", "tier", "notional_floor_usd", "notional_cap_usd", "mmr",
        "maint_amount_usd", "max_leverage", "bound_unit",
    ]  # fmt: skip
    assert frame["tier"].to_list() == [1, 2, 3]
    # floors: 0, then the previous tier's cap
    assert frame["notional_floor_usd"].to_list() == [0.0, 2_000_000.0, 2_600_000.0]
    assert frame["notional_cap_usd"].to_list() == [2_000_000.0, 2_600_000.0, 3_200_000.0]
    assert frame["mmr"].to_list() == [0.005, 0.0056, 0.0062]
    assert frame["maint_amount_usd"].to_list() == [0.0, 1200.0, 2760.0]  # "" is 0
    # 1 / initialMargin: 1/0.01 = 100, 1/0.02 = 50, 1/0.025 = 40
    assert frame["max_leverage"].to_list() == pytest.approx([100.0, 50.0, 40.0])
    assert set(frame["bound_unit"]) == {"usd"}
    assert set(frame["venue"]) == {"bybit"}
    assert frame["ts"][0] == datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([_row(1, "2000000", "half", "0.01", "")], "field 'mmr' holds a non-number 'half'"),
        ([_row(1, "2000000", "1.5", "0.01", "")], "'maintenanceMargin' must be a fraction"),
        ([_row(1, "0", "0.005", "0.01", "")], "'riskLimitValue' must be a positive"),
        ([_row(1, "2000000", "0.005", "0", "")], "'initialMargin' must be a fraction"),
        ([_row(1, "5", "0.005", "0.01", ""), _row(2, "5", "0.006", "0.02", "")], "share one"),
        ([{"id": 1, "symbol": "BTCUSDT"}], "row 0 has no field 'riskLimitValue'"),
        (["x"], "row 0 is a str"),
        ([], "no tier of BTCUSDT"),
    ],
)
def test_a_malformed_risk_limit_payload_is_refused_naming_the_field(
    rows: list[object], message: str
) -> None:
    with pytest.raises(DataContractError) as err:
        parse_risk_limits(rows, "BTC-USDT-PERP", "BTCUSDT", READ_MS)
    assert message in str(err.value)
    assert str(err.value).startswith("bybit v5/market/risk-limit: ")


def _cli(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "perpscope", "--store", str(store), *args, "--format", "json"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_collect_tiers_on_bybit_then_calc_liq_reads_them(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    store = tmp_path / "store"
    done = _cli(store, "collect", "tiers", "--venue", "bybit", "--instrument", "BTC-USDT-PERP",
                "--api-url", fake_binance.url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    [row] = json_data(done.stdout)
    assert (row["venue"], row["instrument"], row["tiers"], row["bound_unit"]) == (
        "bybit", "BTC-USDT-PERP", 4, "usd",
    )  # fmt: skip
    assert row["rows_written"] == 4
    # the fake pages 3 tiers at a time: the 4 tiers took two requests, the cursor followed
    asked = fake_binance.requests("risk-limit")
    assert len(asked) == 2
    stored = Lake(store).read("leverage_tiers").sort("tier")
    assert stored["notional_cap_usd"].to_list() == [2e6, 2.6e6, 3.2e6, 3.8e6]
    assert stored["notional_floor_usd"].to_list() == [0.0, 2e6, 2.6e6, 3.2e6]
    assert stored["maint_amount_usd"].to_list() == [0.0, 1200.0, 2760.0, 4680.0]
    assert stored["max_leverage"].to_list() == pytest.approx([100.0, 50.0, 40.0, 32.0])

    # a long of 45 BTC at 50,000 (value 2,250,000: tier 2, mmr 0.0056, deduction 1,200) at 40x.
    # By hand (Bybit isolated, USDT): IM = 2,250,000 / 40 = 56,250;
    # MM = 2,250,000 x 0.0056 - 1,200 = 11,400; liq = 50,000 - (56,250 - 11,400) / 45
    # = 50,000 - 996.666... = 49,003.333...
    liq = _cli(store, "calc", "liq", "--venue", "bybit", "--instrument", "BTC-USDT-PERP",
               "--side", "long", "--entry", "50000", "--qty", "45", "--leverage", "40")  # fmt: skip
    assert liq.returncode == 0, liq.stderr
    d = json_data(liq.stdout)
    assert d["liquidation_px"] == pytest.approx(50_000 - 44_850 / 45, rel=1e-12)
    assert d["liquidation_px"] == pytest.approx(49_003.3333333, rel=1e-9)
    assert (d["tier"], d["mmr"], d["maint_amount"]) == (2, 0.0056, 1200.0)
    assert "store leverage_tiers, bybit BTC-USDT-PERP" in d["tiers_source"]


def test_collect_tiers_on_a_malformed_bybit_answer_fails_in_one_line_and_stores_nothing(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    bad = {"retCode": 0, "retMsg": "OK", "time": 0,
           "result": {"category": "linear", "nextPageCursor": "",
                      "list": [_row(1, "2000000", "half", "0.01", "")]}}  # fmt: skip
    fake_binance.serve("/v5/market/risk-limit", bad)
    store = tmp_path / "store"
    done = _cli(store, "collect", "tiers", "--venue", "bybit", "--instrument", "BTC-USDT-PERP",
                "--api-url", fake_binance.url)  # fmt: skip
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()  # one line, no traceback
    assert "bybit v5/market/risk-limit: field 'mmr' holds a non-number 'half'" in line
    lake = Lake(store)
    assert not lake.exists() or lake.read("leverage_tiers").is_empty()
