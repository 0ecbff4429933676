"""``perpscope backtest run`` end to end: import the real files with the CLI, then backtest."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_shared

FUNDING = "funding/supervik_BTC-USDT_binance_2020-01-01_2024-01-01_funding_history.csv.gz"
CANDLES = "candles/zxcy_binance_spot_BTCUSDT_1h_2020-2023.csv.gz"
KEYS = {
    "trades", "win_rate", "avg_win_r", "avg_loss_r", "profit_factor", "sharpe", "sortino",
    "max_drawdown", "cagr", "funding_usd", "fees_usd", "initial_equity", "final_equity",
}  # fmt: skip
RUN = ("backtest", "run", "funding-fade", "--venue", "binance", "--instrument", "BTC-USDT-PERP")


@pytest.fixture
def store(tmp_path: Path, cli: Any) -> str:
    """A temp store with the real funding and spot candles, imported through the CLI."""
    root = str(tmp_path / "store")
    funding, candles = require_shared(FUNDING), require_shared(CANDLES)
    r = cli("--store", root, "import", "funding", str(funding), "--venue", "binance",
            "--instrument", "BTC-USDT-PERP", "--tz-offset-h", "3", "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    r = cli("--store", root, "import", "ohlcv", str(candles), "--venue", "binance",
            "--instrument", "BTC-USDT", "--timeframe", "1h", "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    return root


def test_backtest_json_and_trades_file_add_up(store: str, cli: Any, tmp_path: Path) -> None:
    trades = tmp_path / "trades.csv"
    r = cli("--store", store, *RUN, "--price-instrument", "BTC-USDT", "--timeframe", "1h",
            "--format", "json", "--trades", str(trades))  # fmt: skip
    assert r.code == 0, r.err
    data = r.json()
    assert set(data) >= KEYS
    assert data["trades"] > 20
    assert data["initial_equity"] == 10_000.0
    assert "BTC-USDT candles" in data["notes"][0]
    assert "stop fills first" in data["intrabar_rule"]
    assert data["period"].startswith("1h bars")
    with trades.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == data["trades"]
    assert {"entry_ts", "exit_ts", "side", "entry_px", "exit_px", "qty", "pnl_usd",
            "funding_usd", "fees_usd", "r_multiple"} <= set(rows[0])  # fmt: skip
    pnl = math.fsum(float(x["pnl_usd"]) for x in rows)
    # the JSON document rounds USD to the cent (docs/cli.md); the trades file keeps full precision
    assert data["initial_equity"] + pnl == pytest.approx(data["final_equity"], abs=0.006)
    funding = math.fsum(float(x["funding_usd"]) for x in rows)
    assert funding == pytest.approx(data["funding_usd"], abs=0.006)
    fees = math.fsum(float(x["fees_usd"]) for x in rows)
    assert fees == pytest.approx(data["fees_usd"], abs=0.006)
    assert data["fees_usd"] < 0
    for x in rows:  # net PnL = price PnL + funding + fees; a short pays negative funding
        assert x["side"] in ("long", "short")
        assert x["entry_ts"].endswith("Z")


def test_backtest_4h_table_and_params(store: str, cli: Any) -> None:
    r = cli("--store", store, *RUN, "--price-instrument", "BTC-USDT", "--timeframe", "4h",
            "--param", "threshold=0.0003", "--param", "min_periods=2",
            "--risk-pct", "2")  # fmt: skip
    assert r.code == 0, r.err
    assert "max drawdown" in r.out
    assert "resampled from stored 1h" in r.err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "--price-instrument"),
        (("--price-instrument", "BTC-USDT", "--param", "bogus=1"), "bad --param"),
        (("--price-instrument", "BTC-USDT", "--param", "stop_frac=2"), "stop_frac"),
        (("--price-instrument", "BTC-USDT", "--timeframe", "7x"), "bad timeframe"),
        (("--price-instrument", "BTC-USDT", "--leverage", "0.5"), "leverage"),
    ],
)
def test_user_errors_are_one_line_exit_2(
    store: str, cli: Any, extra: tuple[str, ...], message: str
) -> None:
    r = cli("--store", store, *RUN, *extra, "--format", "json")
    assert r.code == 2
    assert message in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert "Traceback" not in r.err


def test_unknown_strategy_and_spot_instrument(store: str, cli: Any) -> None:
    r = cli("--store", store, "backtest", "run", "nope", "--venue", "binance",
            "--instrument", "BTC-USDT-PERP")  # fmt: skip
    assert r.code == 2
    assert "unknown strategy" in r.err
    r = cli("--store", store, "backtest", "run", "funding-fade", "--venue", "binance",
            "--instrument", "BTC-USDT")  # fmt: skip
    assert r.code == 2
    assert "not a perpetual" in r.err


@pytest.mark.parametrize("suffix", [".png", ".html"])
def test_equity_chart(store: str, cli: Any, tmp_path: Path, suffix: str) -> None:
    pytest.importorskip("matplotlib" if suffix == ".png" else "plotly")
    out = tmp_path / f"equity{suffix}"
    r = cli("--store", store, *RUN, "--price-instrument", "BTC-USDT", "--out", str(out),
            "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    data = out.read_bytes()
    if suffix == ".png":
        assert data.startswith(b"\x89PNG")
    else:
        assert b"<html" in data.lower()
        assert b"drawdown" in data
        # self-contained: plotly.js is inside the file, nothing is fetched (no CDN offline)
        assert b'src="http' not in data
        assert len(data) > 1_000_000  # plotly.js itself (several MB) is embedded


def test_chart_suffix_is_checked_before_running(store: str, cli: Any) -> None:
    r = cli("--store", store, *RUN, "--price-instrument", "BTC-USDT", "--out", "x.svg")
    assert r.code == 2
    assert ".png or .html" in r.err


def test_perp_candles_without_price_instrument(tmp_path: Path, cli: Any) -> None:
    """Real Binance ETH perp candles and ETH funding: no --price-instrument needed; no mark
    candles, so the output says funding is priced on the traded candles."""
    root = str(tmp_path / "store")
    funding = require_shared(
        "funding/supervik_ETH-USDT_binance_2020-01-01_2024-01-01_funding_history.csv.gz"
    )
    candles = require_shared("candles/tjf_binance_perp_ETHUSDT_1h_2020-2026.csv.gz")
    r = cli("--store", root, "import", "funding", str(funding), "--venue", "binance",
            "--instrument", "ETH-USDT-PERP", "--tz-offset-h", "3", "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    r = cli("--store", root, "import", "ohlcv", str(candles), "--venue", "binance",
            "--instrument", "ETH-USDT-PERP", "--timeframe", "1h", "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    r = cli("--store", root, "backtest", "run", "funding-fade", "--venue", "binance",
            "--instrument", "ETH-USDT-PERP", "--timeframe", "1h", "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    data = r.json()
    assert data["price_instrument"] == "ETH-USDT-PERP"
    assert data["trades"] > 20
    assert "no mark candles" in data["funding_price"]
    assert data["funding_usd"] != 0


def test_montecarlo_of_the_trades_file_that_run_writes(
    store: str, cli: Any, tmp_path: Path
) -> None:
    trades = tmp_path / "trades.csv"
    r = cli("--store", store, *RUN, "--price-instrument", "BTC-USDT", "--trades", str(trades),
            "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    fan = tmp_path / "fan.png"
    args = ["backtest", "montecarlo", "--trades", str(trades), "--paths", "500", "--seed", "7",
            "--risk-pct", "2", "--format", "json"]  # fmt: skip
    mc = cli(*args, "--out", str(fan))
    assert mc.code == 0, mc.err
    data = mc.json()
    assert data["trades"] == sum(1 for _ in trades.open()) - 1  # one R multiple per trade row
    assert (data["paths"], data["seed"], data["risk_frac"], data["method"]) == (
        500,
        7,
        0.02,
        "bootstrap",
    )
    p = data["final_equity"]
    assert p["p5"] <= p["p25"] <= p["p50"] <= p["p75"] <= p["p95"]
    assert 0.0 <= data["risk_of_ruin"] <= 1.0
    assert fan.read_bytes().startswith(b"\x89PNG")
    assert cli(*args).json() == data  # the seed makes it reproducible
    table = cli(*args[:-2])
    assert table.code == 0, table.err
    assert "p95" in table.out
    assert "% of paths" in table.out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--trades", "/nonexistent/t.csv"], "no such file"),
        (["--trades", "{bad}"], "r_multiple"),
        (["--trades", "{good}", "--method", "jackknife"], "bootstrap or reshuffle"),
        (["--trades", "{good}", "--risk-pct", "0"], "above 0%"),
        (["--trades", "{good}", "--ruin-pct", "120"], "at most 100%"),
        (["--trades", "{good}", "--out", "fan.svg"], ".png"),
    ],
)
def test_montecarlo_bad_input_is_one_line(
    cli: Any, tmp_path: Path, extra: list[str], message: str
) -> None:
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_text("r_multiple\n1.5\n-1\n")
    bad.write_text("pnl_usd\n12.0\n")
    args = [a.format(good=good, bad=bad) for a in extra]
    r = cli("backtest", "montecarlo", *args)
    assert r.code == 2, (r.out, r.err)
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert message in r.err


def test_two_venue_fade_with_bybit_confirmation(store: str, cli: Any, tmp_path: Path) -> None:
    """Bybit's real BTC funding (from 2021, same UTC+3 clock) confirms Binance's: every trade
    starts after Bybit's data does, and there are no more trades than without the condition."""
    bybit = require_shared(
        "funding/supervik_BTC-USDT_bybit_2021-01-01_2024-01-01_funding_history.csv.gz"
    )
    r = cli("--store", store, "import", "funding", str(bybit), "--venue", "bybit",
            "--instrument", "BTC-USDT-PERP", "--tz-offset-h", "3", "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    trades = tmp_path / "t.csv"
    args = [*RUN, "--price-instrument", "BTC-USDT", "--timeframe", "4h", "--format", "json"]
    one = cli("--store", store, *args)
    two = cli("--store", store, *args, "--confirm-venue", "bybit", "--param", "two_venue=true",
              "--trades", str(trades))  # fmt: skip
    assert two.code == 0, two.err
    assert any(n.startswith("bybit funding (") for n in two.json()["notes"])
    assert 0 < two.json()["trades"] <= one.json()["trades"]
    with trades.open() as f:
        assert min(row["entry_ts"] for row in csv.DictReader(f)) >= "2021-01-01"
    # asking for two venues without loading a second one is a usage error
    bad = cli("--store", store, *args, "--param", "two_venue=true")
    assert bad.code == 2
    assert "another venue" in bad.err
    bad = cli("--store", store, *args, "--confirm-venue", "okx")
    assert bad.code == 2
    assert "no funding settlements for okx" in bad.err
