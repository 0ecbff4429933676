"""``perpscope backtest sweep|walkforward`` and ``run --since/--until`` end to end on the real
Binance BTC funding 2020-2023 with the BTC spot candles (imported once through the CLI)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from perpscope.services.importer import FileOptions, import_funding, import_ohlcv
from perpscope.store.lake import Lake
from tests.conftest import require_shared

FUNDING = "funding/supervik_BTC-USDT_binance_2020-01-01_2024-01-01_funding_history.csv.gz"
CANDLES = "candles/zxcy_binance_spot_BTCUSDT_1h_2020-2023.csv.gz"
MARKET = "binance:BTC-USDT-PERP:BTC-USDT"
RUN = ("backtest", "run", "funding-fade", "--venue", "binance", "--instrument", "BTC-USDT-PERP",
       "--price-instrument", "BTC-USDT", "--timeframe", "4h")  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The real files through the importer (the CLI's import is tested elsewhere), once."""
    root = tmp_path_factory.mktemp("sweep") / "store"
    funding, candles = require_shared(FUNDING), require_shared(CANDLES)
    lake = Lake(root)
    lake.init()
    import_funding(
        lake, funding, venue="binance", instrument="BTC-USDT-PERP",
        opts=FileOptions(tz_offset_h=3.0),
    )  # fmt: skip
    import_ohlcv(
        lake, candles, venue="binance", instrument="BTC-USDT", timeframe="1h", kind="trade",
        opts=FileOptions(),
    )  # fmt: skip
    return str(root)


def test_oi_divergence_with_imported_open_interest(store: str, cli: Any, tmp_path: Path) -> None:
    """Coinalyze's daily COIN-M BTC OI (from 2021-09-15), imported through the CLI into a copy of
    the store, drives oi-divergence; without --oi-market it is a one-line usage error."""
    import shutil

    root = str(tmp_path / "store")
    shutil.copytree(store, root)
    oi = require_shared("open_interest/coinalyze_oi_daily_top10_since2020.csv.gz")
    r = cli("--store", root, "import", "open-interest", str(oi), "--venue", "binance",
            "--instrument", "BTC-USD-PERP", "--unit", "usd", "--value-col", "oi_open",
            "--ts-col", "timestamp", "--ts-unit", "s", "--filter", "symbol=BTCUSD_PERP.A",
            "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    assert r.json()["rows_written"] == 1503
    args = ["--store", root, "backtest", "run", "oi-divergence", "--venue", "binance",
            "--instrument", "BTC-USDT-PERP", "--price-instrument", "BTC-USDT", "--timeframe",
            "1d", "--since", "2021-09-21", "--format", "json"]  # fmt: skip
    run = cli(*args, "--oi-market", "binance:BTC-USD-PERP")
    assert run.code == 0, run.err
    data = run.json()
    assert data["trades"] > 5
    assert any(n.startswith("open interest of binance BTC-USD-PERP: 1503") for n in data["notes"])
    bad = cli(*args)
    assert bad.code == 2
    assert "--oi-market" in bad.err
    bad = cli(*args, "--oi-market", "binance:ETH-USD-PERP")
    assert bad.code == 2
    assert "no open interest for binance ETH-USD-PERP" in bad.err


def test_basis_carry_run_adds_up(store: str, cli: Any, tmp_path: Path) -> None:
    """basis-carry through 'backtest run': the trades' net PnL adds up to the final equity, all
    income is funding (both legs at one price), and each trade's r_multiple is its return on
    the equity deployed."""
    trades = tmp_path / "carry.csv"
    r = cli("--store", store, "backtest", "run", "basis-carry", "--venue", "binance",
            "--instrument", "BTC-USDT-PERP", "--price-instrument", "BTC-USDT", "--until",
            "2021-12-31", "--trades", str(trades), "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    data = r.json()
    assert data["trades"] > 5
    with trades.open() as f:
        rows = list(csv.DictReader(f))
    pnl = sum(float(x["pnl_usd"]) for x in rows)
    assert 10_000 + pnl == pytest.approx(data["final_equity"], abs=0.01)
    assert data["funding_usd"] > 0
    assert all(x["side"] == "short" for x in rows)
    equity = 10_000.0
    for x in rows:  # the whole equity is deployed at each entry
        assert float(x["r_multiple"]) == pytest.approx(float(x["pnl_usd"]) / equity, rel=1e-9)
        equity += float(x["pnl_usd"])


def test_sweep_rows_equal_single_runs_and_files(store: str, cli: Any, tmp_path: Path) -> None:
    results, chart = tmp_path / "rows.csv", tmp_path / "sweep.png"
    r = cli("--store", store, "backtest", "sweep", "funding-fade", "--market", MARKET,
            "--timeframe", "4h", "--grid", "threshold=0.0004,0.0006", "--grid",
            "regime_filter=off,half", "--param", "min_periods=2", "--workers", "1",
            "--results", str(results), "--out", str(chart), "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    data = r.json()
    assert data["combinations"] == 4
    assert data["fixed"] == {"min_periods": 2}
    assert len(data["rows"]) == 4
    sharpes = [row["sharpe"] for row in data["rows"]]
    assert sharpes == sorted(sharpes, reverse=True)
    for row in data["rows"]:
        one = cli("--store", store, *RUN, "--param", f"threshold={row['threshold']}",
                  "--param", f"regime_filter={row['regime_filter']}", "--param",
                  "min_periods=2", "--format", "json").json()  # fmt: skip
        assert row["trades"] == one["trades"]
        assert row["sharpe"] == pytest.approx(one["sharpe"], rel=1e-9)
        assert 1 + row["total_return"] == pytest.approx(one["final_equity"] / 10_000, abs=1e-6)
    with results.open() as f:
        assert len(list(csv.DictReader(f))) == 4
    assert chart.read_bytes().startswith(b"\x89PNG")
    table = cli("--store", store, "backtest", "sweep", "funding-fade", "--market", MARKET,
                "--timeframe", "4h", "--grid", "threshold=0.0004,0.0006", "--workers", "1",
                "--top", "1")  # fmt: skip
    assert table.code == 0, table.err
    assert "2 combinations x 1 market(s) on local, 1 process" in table.err


def test_walkforward_folds_and_chained_out_of_sample(store: str, cli: Any, tmp_path: Path) -> None:
    chart = tmp_path / "wf.png"
    r = cli("--store", store, "backtest", "walkforward", "funding-fade", "--market", MARKET,
            "--timeframe", "4h", "--grid", "threshold=0.0003,0.0005", "--grid",
            "min_periods=2,3", "--folds", "3", "--is-ratio", "2", "--min-trades", "1",
            "--workers", "1", "--format", "json", "--out", str(chart))  # fmt: skip
    assert r.code == 0, r.err
    data = r.json()
    assert len(data["folds"]) == 3
    chosen = [f for f in data["folds"] if f["chosen"] is not None]
    assert chosen  # not vacuous
    assert data["oos"]["trades"] == sum(f["oos"]["trades"] for f in chosen)
    growth = 1.0
    for f in chosen:
        assert f["oos_start"] > f["is_end"]
        growth *= 1 + f["oos"]["total_return"]
    assert data["oos"]["total_return"] == pytest.approx(growth - 1, abs=1e-9)
    assert {s["parameter"] for s in data["stability"]} == {"threshold", "min_periods"}
    assert chart.read_bytes().startswith(b"\x89PNG")
    table = cli("--store", store, "backtest", "walkforward", "funding-fade", "--market", MARKET,
                "--timeframe", "4h", "--grid", "threshold=0.0003,0.0005", "--folds", "2",
                "--min-trades", "0", "--workers", "1")  # fmt: skip
    assert table.code == 0, table.err
    assert "walk-forward folds" in table.out
    assert "stability threshold" in table.out


def test_run_window_trades_only_inside_it(store: str, cli: Any, tmp_path: Path) -> None:
    """2021 only: every trade enters in 2021 (bars before are warm-up); the window's bars are
    the 2,190 4h bars of 2021 less the incomplete ones of the spot file's gaps."""
    trades = tmp_path / "t.csv"
    r = cli("--store", store, *RUN, "--param", "entry_window=0", "--since", "2021-01-01",
            "--until", "2021-12-31", "--trades", str(trades), "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    data = r.json()
    assert data["start"].startswith("2021-01-01T00:00")
    assert data["end"].startswith("2021-12-31T20:00")
    assert 2_180 <= data["bars"] <= 2_190
    with trades.open() as f:
        rows = list(csv.DictReader(f))
    assert rows
    assert all("2021-01-01" <= row["entry_ts"] < "2022-01-01" for row in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--market", "binance"], "VENUE:INSTRUMENT"),
        (["--market", "binance:BTC-USDT"], "not a perpetual"),
        (["--market", MARKET, "--grid", "bogus=1,2"], "bad --grid"),
        (["--market", MARKET, "--grid", "threshold=abc"], "bad --grid"),
        (["--market", MARKET, "--grid", "threshold=1,2", "--param", "threshold=1"], "also swept"),
        (["--market", MARKET, "--grid", "threshold=-1,1"], "threshold"),
        (["--market", MARKET], "--grid"),
        (["--market", MARKET, "--grid", "threshold=1", "--scheduler", "nowhere"], "--scheduler"),
        (["--market", MARKET, "--grid", "threshold=1", "--objective", "luck"], "--objective"),
        (["--market", MARKET, "--grid", "threshold=1", "--since", "2030-01-01"], "fewer than 2"),
        (["--market", MARKET, "--market", MARKET, "--grid", "threshold=1"], "twice"),
    ],
)
def test_sweep_bad_input_is_one_line(store: str, cli: Any, args: list[str], message: str) -> None:
    r = cli("--store", store, "backtest", "sweep", "funding-fade", *args, "--workers", "1")
    assert r.code == 2, r.out
    assert message in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert "Traceback" not in r.err


@pytest.mark.slow
def test_sweep_on_dask_local_cluster_equals_local(store: str, cli: Any) -> None:
    """--dask (a 2-worker LocalCluster on 127.0.0.1) prints the same rows as the local run."""
    pytest.importorskip("distributed")
    args = ["--store", store, "backtest", "sweep", "funding-fade", "--market", MARKET,
            "--timeframe", "4h", "--grid", "threshold=0.0004,0.0006",
            "--format", "json"]  # fmt: skip
    local = cli(*args, "--workers", "1").json()
    dask = cli(*args, "--dask").json()
    assert dask["backend"] == "dask LocalCluster, 2 workers"
    assert dask["rows"] == local["rows"]
