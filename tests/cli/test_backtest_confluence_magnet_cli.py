"""triple-confluence and liquidation-magnet end to end on a simulator store: ``backtest run``
(trades, PnL adding up to the final equity), ``sweep`` and ``walkforward`` accept them, and a
missing input is a one-line usage error."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

MARKET = ("--venue", "sim1", "--instrument", "BTC-USDT-PERP")
OI = ("--oi-market", "sim1:BTC-USDT-PERP")


@pytest.fixture(scope="module")
def squeeze_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """30 simulated days of the long-squeeze scenario: funding extremes, falling OI, liquidation
    events (read-only)."""
    import subprocess
    import sys

    path = tmp_path_factory.mktemp("squeeze") / "store"
    done = subprocess.run(
        [sys.executable, "-m", "perpscope", "demo", "--store", str(path), "--days", "30",
         "--scenario", "long-squeeze", "--format", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return str(path)


def _one_line_usage_error(r: Any, text: str) -> None:
    assert r.code == 2
    assert text in r.err
    assert "Traceback" not in r.err
    assert len(r.err.strip().splitlines()) == 1


@pytest.mark.parametrize("strategy", ["triple-confluence", "liquidation-magnet"])
def test_run_on_the_simulator_adds_up(
    squeeze_store: str, cli: Any, tmp_path: Path, strategy: str
) -> None:
    trades = tmp_path / "trades.csv"
    r = cli("--store", squeeze_store, "backtest", "run", strategy, *MARKET, *OI,
            "--trades", str(trades), "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    data = r.json()
    assert data["trades"] > 0
    with trades.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == data["trades"]
    pnl = sum(float(x["pnl_usd"]) for x in rows)
    assert 10_000 + pnl == pytest.approx(data["final_equity"], abs=0.01)
    assert any("liquidation events of sim1 BTC-USDT-PERP" in n for n in data["notes"])


def test_triple_confluence_sells_the_squeeze(squeeze_store: str, cli: Any, tmp_path: Path) -> None:
    """In a long squeeze funding is positive (crowded longs): every confluence is a short."""
    trades = tmp_path / "trades.csv"
    r = cli("--store", squeeze_store, "backtest", "run", "triple-confluence", *MARKET, *OI,
            "--trades", str(trades), "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    assert r.json()["params"]["targets_r"] == [1.0, 2.9, 5.4]
    with trades.open() as f:
        sides = {x["side"] for x in csv.DictReader(f)}
    assert sides == {"short"}


def test_missing_open_interest_is_a_usage_error(squeeze_store: str, cli: Any) -> None:
    for strategy in ("triple-confluence", "liquidation-magnet"):
        r = cli("--store", squeeze_store, "backtest", "run", strategy, *MARKET)
        assert r.code == 2, r.err
        _one_line_usage_error(r, "--oi-market")  # and one line naming the missing option


def test_missing_liquidations_is_a_usage_error(
    squeeze_store: str, cli: Any, tmp_path: Path
) -> None:
    """The same store without its liquidation events."""
    import shutil

    root = tmp_path / "store"
    shutil.copytree(squeeze_store, root)
    r = cli("--store", str(root), "store", "delete", "--table", "liquidations", "--venue",
            "sim1", "--instrument", "BTC-USDT-PERP")  # fmt: skip
    assert r.code == 0, r.err
    r = cli("--store", str(root), "backtest", "run", "liquidation-magnet", *MARKET, *OI)
    _one_line_usage_error(r, "liquidation events")


def test_sweep_and_walkforward_accept_both(squeeze_store: str, cli: Any) -> None:
    r = cli("--store", squeeze_store, "backtest", "sweep", "liquidation-magnet", "--market",
            "sim1:BTC-USDT-PERP", *OI, "--grid", "within_pct=3,5", "--workers", "1",
            "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    assert len(r.json()["rows"]) == 2
    r = cli("--store", squeeze_store, "backtest", "walkforward", "triple-confluence",
            "--market", "sim1:BTC-USDT-PERP", *OI, "--grid", "min_ratio=0.3,0.5", "--folds",
            "2", "--min-trades", "0", "--workers", "1", "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    assert len(r.json()["folds"]) == 2


@pytest.mark.parametrize("command", ["run", "sweep", "walkforward"])
def test_help_names_every_registered_strategy(cli: Any, command: str) -> None:
    from perpscope.backtest.strategies import STRATEGIES

    r = cli("backtest", command, "--help")
    assert r.code == 0, r.err
    text = "".join(r.out.split())  # help wraps long words at hyphens
    assert [name for name in STRATEGIES if name not in text] == []


@pytest.mark.parametrize("strategy", ["triple-confluence", "liquidation-magnet"])
def test_signals_use_only_the_past(squeeze_store: str, strategy: str) -> None:
    """The signals of the first k bars are the first k of the whole run's signals: no bar's
    decision depends on a later bar (the liquidation map's bins sit on a fixed lattice)."""
    import numpy as np

    from perpscope.backtest.loader import load_market
    from perpscope.backtest.slicing import slice_market
    from perpscope.backtest.strategies import STRATEGIES
    from perpscope.store.lake import Lake

    market = load_market(
        Lake(squeeze_store), "sim1", "BTC-USDT-PERP", "1h", oi_from=("sim1", "BTC-USDT-PERP")
    ).market
    spec = STRATEGIES[strategy]
    assert spec.run is not None
    whole = spec.run(market, spec.params())
    assert whole.entry.any()
    for k in (250, 400, 550):
        head = spec.run(slice_market(market, 0, k), spec.params())
        np.testing.assert_array_equal(head.entry, whole.entry[:k])
        np.testing.assert_allclose(head.stop_frac, whole.stop_frac[:k], equal_nan=True)
        np.testing.assert_allclose(head.targets_r, whole.targets_r[:k], equal_nan=True)
        np.testing.assert_array_equal(head.exit_sides(), whole.exit_sides()[:k])
