"""``perpscope calc ...`` run for real: in-process through ``run`` and as ``python -m perpscope``.

Expected figures are the hand calculations of ``tests/risk`` and ``docs/calculators.md``.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from perpscope.cli.main import run
from perpscope.store.lake import Lake
from tests.conftest import json_data


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        run(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = _run(capsys, *args, "--format", "json")
    assert code == 0, err
    data = json_data(out)
    assert isinstance(data, dict)
    return data


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERPSCOPE_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("PERPSCOPE_CONFIG", str(tmp_path / "absent.toml"))
    (tmp_path / "absent.toml").write_text("", encoding="utf-8")


def test_liq_bybit_worked_example_json_fields(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(
        capsys,
        "calc",
        "liq",
        "--venue",
        "bybit",
        "--side",
        "long",
        "--entry",
        "20000",
        "--qty",
        "1",
        "--leverage",
        "50",
        "--mmr",
        "0.005",
    )
    assert d["liquidation_px"] == pytest.approx(19_700)
    assert d["bankruptcy_px"] == pytest.approx(19_600)
    assert d["mmr"] == pytest.approx(0.005)
    assert d["maint_amount"] == 0
    assert d["formula_status"] == "published"


def test_liq_okx_is_labelled_derived_in_json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    args = (
        "calc",
        "liq",
        "--venue",
        "okx",
        "--side",
        "short",
        "--entry",
        "20000",
        "--qty",
        "1",
        "--leverage",
        "50",
        "--mmr",
        "0.004",
    )
    d = _json(capsys, *args)
    # Derived short: (Q*EP + M)/(Q*(1 + MMR + fee)), default fee 0.0005.
    assert d["liquidation_px"] == pytest.approx(20_400 / 1.0045)
    assert d["formula_status"] == "derived"
    code, out, err = _run(capsys, *args)
    assert code == 0
    assert "derived" in out
    assert "DERIVED" in err


def test_liq_cross_margin_with_other_positions(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(
        capsys,
        "calc",
        "liq",
        "--venue",
        "binance",
        "--side",
        "long",
        "--entry",
        "20000",
        "--qty",
        "1",
        "--leverage",
        "20",
        "--mmr",
        "0.004",
        "--margin-mode",
        "cross",
        "--wallet",
        "10000",
        "--other-mm",
        "500",
        "--other-upnl",
        "-1000",
    )
    assert d["liquidation_px"] == pytest.approx((10_000 - 500 - 1_000 - 20_000) / (0.004 - 1))


def test_liq_inverse_coin_m(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(
        capsys,
        "calc",
        "liq",
        "--venue",
        "binance",
        "--side",
        "long",
        "--entry",
        "20000",
        "--qty",
        "10",
        "--leverage",
        "20",
        "--mmr",
        "0.004",
        "--inverse",
        "--contract-size",
        "100",
    )
    assert d["liquidation_px"] == pytest.approx(10 * 1.004 / (0.0025 / 100 + 10 / 20_000))
    assert d["margin_currency"] == "coin"


def _store_binance_tiers(root: Path, bound_unit: str | None = None) -> None:
    # FIXTURE tiers (the Binance fixture of tests/risk, first three brackets) in the store's shape.
    lake = Lake(root)
    lake.init()
    ts = datetime(2026, 11, 1, tzinfo=UTC)
    lake.ingest(
        "leverage_tiers",
        pl.DataFrame(
            {
                "venue": ["binance"] * 3,
                "instrument": ["BTC-USDT-PERP"] * 3,
                "ts": [ts] * 3,
                "tier": [1, 2, 3],
                "notional_floor_usd": [0.0, 50_000.0, 250_000.0],
                "notional_cap_usd": [50_000.0, 250_000.0, 3_000_000.0],
                "mmr": [0.004, 0.005, 0.01],
                "maint_amount_usd": [0.0, 50.0, 1_300.0],
                "max_leverage": [125.0, 100.0, 50.0],
                "bound_unit": [bound_unit] * 3,
            },
            schema_overrides={"tier": pl.Int32, "bound_unit": pl.String},
        ),
    )


def test_liq_refuses_stored_tiers_bounded_in_coin(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # the same tiers with bounds in coin (as OKX's linear tiers are stored) must not be read as USD
    _store_binance_tiers(tmp_path / "tiers", bound_unit="base")
    args = ["--store", str(tmp_path / "tiers"), "calc", "liq", "--venue", "binance"]
    args += ["--instrument", "BTC-USDT-PERP", "--side", "long", "--qty", "1", "--leverage", "10"]
    _assert_usage_error(*_run(capsys, *args, "--entry", "20000"), "bound notional in base")


def test_liq_reads_tiers_from_the_store_and_recomputes_on_tier_change(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _store_binance_tiers(tmp_path / "tiers")
    d = _json(
        capsys,
        "--store",
        str(tmp_path / "tiers"),
        "calc",
        "liq",
        "--venue",
        "binance",
        "--instrument",
        "BTC-USDT-PERP",
        "--side",
        "long",
        "--entry",
        "20000",
        "--qty",
        "2.6",
        "--leverage",
        "10",
    )
    # Entry notional 52,000 is tier 2; at the liquidation price it is tier 1 (see tests/risk).
    assert d["liquidation_px"] == pytest.approx((52_000 - 5_200) / (2.6 * 0.996))
    assert (d["entry_tier"], d["tier"], d["tier_changed"]) == (2, 1, True)
    assert d["mmr"] == pytest.approx(0.004)
    assert "store leverage_tiers" in d["tiers_source"]


def _assert_usage_error(code: int, out: str, err: str, fragment: str) -> None:
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error:")
    assert fragment in lines[0]


def test_liq_leverage_above_the_stored_tier_maximum_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _store_binance_tiers(tmp_path / "tiers")
    res = _run(
        capsys,
        "--store",
        str(tmp_path / "tiers"),
        "calc",
        "liq",
        "--venue",
        "binance",
        "--instrument",
        "BTC-USDT-PERP",
        "--side",
        "long",
        "--entry",
        "20000",
        "--qty",
        "3",
        "--leverage",
        "110",
    )
    _assert_usage_error(*res, "above the 100x maximum of tier 2")


def test_liq_at_exactly_a_stored_cap_uses_the_tier_the_cap_closes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Binance publishes "0 < Position <= 50,000: 125x": 1 BTC at 50,000 may use 110x (tier 1);
    # at 50,000.01 it is tier 2 (max 100x) and refused. See tests/risk/test_tier_boundaries.py.
    _store_binance_tiers(tmp_path / "tiers")
    args = ["--store", str(tmp_path / "tiers"), "calc", "liq", "--venue", "binance"]
    args += ["--instrument", "BTC-USDT-PERP", "--side", "long", "--qty", "1", "--leverage", "110"]
    d = _json(capsys, *args, "--entry", "50000")
    assert (d["entry_tier"], d["mmr"]) == (1, 0.004)
    _assert_usage_error(
        *_run(capsys, *args, "--entry", "50000.01"), "above the 100x maximum of tier 2"
    )


def test_liq_without_tiers_says_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(
        capsys,
        "calc",
        "liq",
        "--venue",
        "binance",
        "--side",
        "long",
        "--entry",
        "20000",
        "--qty",
        "1",
        "--leverage",
        "10",
    )
    _assert_usage_error(*res, "pass --mmr")
    res = _run(
        capsys,
        "calc",
        "liq",
        "--venue",
        "bybit",
        "--side",
        "long",
        "--entry",
        "20000",
        "--qty",
        "1",
        "--leverage",
        "10",
        "--instrument",
        "BTC-USDT-PERP",
    )
    _assert_usage_error(*res, "no leverage tiers for bybit BTC-USDT-PERP")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            (
                "liq",
                "--venue",
                "binance",
                "--side",
                "long",
                "--entry",
                "-20000",
                "--qty",
                "1",
                "--leverage",
                "10",
                "--mmr",
                "0.004",
            ),
            "entry price must be a positive number",
        ),
        (
            ("size", "--equity", "50000", "--risk-pct", "1.5", "--entry", "-1", "--stop", "47600"),
            "entry price must be a positive number",
        ),
        (
            (
                "size",
                "--equity",
                "50000",
                "--risk-pct",
                "1.5",
                "--entry",
                "47100",
                "--stop",
                "47100",
            ),
            "stop must differ",
        ),
        (
            (
                "size",
                "--equity",
                "50000",
                "--risk-pct",
                "1.5",
                "--entry",
                "47100",
                "--stop",
                "47600",
                "--side",
                "long",
            ),
            "wrong side of entry",
        ),
        (
            ("targets", "--entry", "100", "--stop", "90", "--targets", "95,120,130"),
            "not on the profit side",
        ),
        (("kelly", "--win-rate", "60", "--payoff", "1.2"), "between 0 and 1"),
        (
            (
                "funding",
                "--side",
                "flat",
                "--notional",
                "1",
                "--rate",
                "0",
                "--interval-h",
                "8",
                "--days",
                "1",
            ),
            "--side must be one of long | short",
        ),
        (
            (
                "funding",
                "--notional",
                "100000",
                "--rate",
                "0.0005",
                "--interval-h",
                "0",
                "--days",
                "7",
            ),
            "funding interval must be a positive number",
        ),
    ],
)
def test_invalid_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], fragment: str
) -> None:
    _assert_usage_error(*_run(capsys, "calc", *args), fragment)


def test_size_json_fields(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(
        capsys,
        "calc",
        "size",
        "--equity",
        "50000",
        "--risk-pct",
        "1.5",
        "--entry",
        "47100",
        "--stop",
        "47600",
        "--leverage",
        "5",
    )
    assert d["side"] == "short"
    assert d["qty"] == pytest.approx(1.5)
    assert d["risk_usd"] == pytest.approx(750)
    assert d["notional_usd"] == pytest.approx(70_650)
    assert d["margin_usd"] == pytest.approx(14_130)
    assert d["liquidation_formula"] == "simplified"
    d = _json(
        capsys,
        "calc",
        "size",
        "--equity",
        "10000",
        "--risk-pct",
        "1",
        "--entry",
        "100",
        "--stop",
        "98.495",
        "--leverage",
        "50",
        "--mmr",
        "0.005",
        "--venue",
        "binance",
    )
    # Binance exact isolated: 100 x (1 - 1/50) / (1 - 0.005), below the stop: no warning.
    assert d["liquidation_px"] == pytest.approx(100 * 0.98 / 0.995)
    assert d["warning"] is None


def test_targets_json_fields_and_rest_exits(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(
        capsys,
        "calc",
        "targets",
        "--entry",
        "47100",
        "--stop",
        "47600",
        "--targets",
        "46600,45800,44200",
        "--scale",
        "40,30,30",
        "--qty",
        "1.5",
    )
    assert d["r_multiples"] == pytest.approx([1.0, 2.6, 5.8])
    assert d["blended_r"] == pytest.approx(2.92)
    assert d["profit_usd"] == pytest.approx(2_190)
    d = _json(
        capsys,
        "calc",
        "targets",
        "--entry",
        "2660",
        "--stop",
        "2590",
        "--targets",
        "2730,2850,2960",
        "--hit",
        "2",
        "--rest-exit",
        "2850",
    )
    assert d["blended_r"] == pytest.approx(0.4 + 0.6 * 190 / 70)
    assert d["profit_usd"] is None
    d = _json(
        capsys,
        "calc",
        "targets",
        "--entry",
        "2660",
        "--stop",
        "2590",
        "--targets",
        "2730,2850,2960",
        "--hit",
        "1",
        "--breakeven-after-t1",
    )
    assert d["blended_r"] == pytest.approx(0.4)


def test_funding_json_fields_signed_to_the_position(capsys: pytest.CaptureFixture[str]) -> None:
    args = (
        "calc",
        "funding",
        "--notional",
        "100000",
        "--rate",
        "0.0005",
        "--interval-h",
        "8",
        "--days",
        "7",
    )
    d = _json(capsys, *args)
    assert d["payment_per_period_usd"] == pytest.approx(-50)
    assert d["total_usd"] == pytest.approx(-1_050)
    assert d["annualized_rate"] == pytest.approx(0.5475)
    d = _json(capsys, *args, "--side", "short")
    assert d["total_usd"] == pytest.approx(1_050)


def test_kelly_json_fields_and_trade_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    d = _json(capsys, "calc", "kelly", "--win-rate", "0.6", "--payoff", "1.2")
    assert d["kelly_fraction"] == pytest.approx(0.6 - 0.4 / 1.2)
    assert d["half_kelly_fraction"] == pytest.approx((0.6 - 0.4 / 1.2) / 2)
    trades = tmp_path / "trades.txt"
    trades.write_text("# R per trade\n1.5\n-1\n\n1.5\n-1\n1.5\n", encoding="utf-8")
    d = _json(capsys, "calc", "kelly", "--trades-file", str(trades))
    # W 0.6, payoff 1.5: 0.6 - 0.4/1.5.
    assert d["kelly_fraction"] == pytest.approx(0.6 - 0.4 / 1.5)
    assert d["trades"] == 5


def test_basis_and_bucket(capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(
        capsys,
        "calc",
        "basis",
        "--spot",
        "100000",
        "--leverage",
        "5",
        "--rate",
        "0.0005",
        "--buffer",
        "10000",
    )
    assert d["total_capital_usd"] == pytest.approx(130_000)
    assert d["income_per_week_usd"] == pytest.approx(1_050)
    assert d["hold"] is True
    d = _json(
        capsys, "calc", "bucket", "--risks", "750,450", "--equity", "50000", "--max-risk-pct", "2"
    )
    assert d["combined_risk_usd"] == pytest.approx(1_200)
    assert d["scale"] == pytest.approx(1_000 / 1_200)


def test_basis_from_historical_funding_in_the_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lake = Lake(tmp_path / "f")
    lake.init()
    # Four 8 h settlements then four 4 h ones; rescaled to 8 h: 0.0001, 0.0003, 0.0002 x2,
    # 0.0002 x4 (0.0001 per 4 h) -> mean 0.0002 over the last 10 days (all rows).
    ts = [datetime(2026, 11, 1, h, tzinfo=UTC) for h in (0, 8, 16)]
    ts += [datetime(2026, 11, 2, h, tzinfo=UTC) for h in (0, 4, 8, 12, 16)]
    lake.ingest(
        "funding",
        pl.DataFrame(
            {
                "venue": ["binance"] * 8,
                "instrument": ["BTC-USDT-PERP"] * 8,
                "ts": ts,
                "rate": [0.0001, 0.0003, 0.0002, 0.0002, 0.0001, 0.0001, 0.0001, 0.0001],
                "interval_h": [8.0, 8.0, 8.0, 8.0, 4.0, 4.0, 4.0, 4.0],
            }
        ),
    )
    d = _json(
        capsys,
        "--store",
        str(tmp_path / "f"),
        "calc",
        "basis",
        "--spot",
        "100000",
        "--leverage",
        "5",
        "--venue",
        "binance",
        "--instrument",
        "BTC-USDT-PERP",
        "--history-days",
        "10",
    )
    assert d["rate"] == pytest.approx(0.0002 * 8 / 8)
    assert d["income_per_period_usd"] == pytest.approx(20)
    assert "8 binance BTC-USDT-PERP settlements" in d["rate_source"]


def test_python_dash_m_runs_the_real_cli() -> None:
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "perpscope",
            "calc",
            "liq",
            "--venue",
            "bybit",
            "--side",
            "long",
            "--entry",
            "20000",
            "--qty",
            "1",
            "--leverage",
            "50",
            "--mmr",
            "0.005",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json_data(ok.stdout)["liquidation_px"] == pytest.approx(19_700)
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "perpscope",
            "calc",
            "liq",
            "--venue",
            "bybit",
            "--side",
            "long",
            "--entry",
            "-20000",
            "--qty",
            "1",
            "--leverage",
            "50",
            "--mmr",
            "0.005",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.stderr
