"""``calc liq`` and ``calc funding`` reading a demo store: the simulated venues' tiers and the
current funding rate.

The liquidation check is against the simulator's ground truth: each trader position in
``sim_positions`` carries the liquidation price the simulator's engine acts on (itself checked
against an independent bisection in tests/sim/test_ground_truth.py); ``calc liq`` must reproduce
it from the position's entry, size and leverage and the tiers the demo wrote to
``leverage_tiers``. The funding figures are recomputed by hand from the stored snapshot's rate.
"""

from __future__ import annotations

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


def _sample_positions(store: Path, venue: str, n: int) -> list[dict[str, Any]]:
    frame = Lake(store).read(
        "sim_positions",
        where=(pl.col("venue") == venue)
        & (pl.col("event") == "open")
        & (pl.col("agent") != "market_maker"),
    )
    longs = frame.filter(pl.col("side") == "long").sort("position_id").head(n)
    shorts = frame.filter(pl.col("side") == "short").sort("position_id").head(n)
    return [*longs.to_dicts(), *shorts.to_dicts()]


@pytest.mark.parametrize("venue", ["sim1", "sim3"])
def test_calc_liq_on_a_simulated_venue_reproduces_the_simulators_liquidation_prices(
    capsys: pytest.CaptureFixture[str], demo_store: Path, venue: str
) -> None:
    positions = _sample_positions(demo_store, venue, 6)
    assert len(positions) == 12  # longs and shorts were found

    for p in positions:
        d = _json(
            capsys, "--store", str(demo_store), "calc", "liq", "--venue", venue,
            "--instrument", p["instrument"], "--side", p["side"],
            "--entry", repr(p["entry_px"]), "--qty", repr(p["qty_base"]),
            "--leverage", repr(p["leverage"]),
        )  # fmt: skip

        assert d["liquidation_px"] == pytest.approx(p["liquidation_px"], rel=1e-9), p
        assert (d["venue"], d["rule"]) == (venue, "binance")
        assert f"store leverage_tiers, {venue} {p['instrument']}" in d["tiers_source"]


def test_calc_liq_names_the_simulated_venues_when_the_venue_is_unknown(
    capsys: pytest.CaptureFixture[str], demo_store: Path
) -> None:
    code, out, err = _run(
        capsys, "--store", str(demo_store), "calc", "liq", "--venue", "sim9", "--side", "long",
        "--entry", "100", "--qty", "1", "--leverage", "5", "--instrument", "BTC-USDT-PERP",
    )  # fmt: skip

    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "sim1" in err
    assert "'sim9'" in err


def _latest_snapshot(store: Path, venue: str, instrument: str) -> dict[str, Any]:
    frame = Lake(store).read(
        "funding_snapshot",
        where=(pl.col("venue") == venue) & (pl.col("instrument") == instrument),
    )
    return frame.sort("ts").row(-1, named=True)


def test_calc_funding_takes_the_stores_current_rate_and_its_interval(
    capsys: pytest.CaptureFixture[str], demo_store: Path
) -> None:
    snap = _latest_snapshot(demo_store, "sim3", "ETH-USDT-PERP")
    assert snap["interval_h"] == 4.0  # sim3 settles every 4 hours

    d = _json(
        capsys, "--store", str(demo_store), "calc", "funding", "--venue", "sim3",
        "--instrument", "ETH-USDT-PERP", "--notional", "100000", "--days", "2", "--side", "long",
    )  # fmt: skip

    # JSON rounds a rate to 1e-10 and USD to the cent (cli/_render.json_value)
    assert d["rate"] == pytest.approx(snap["rate"], abs=5e-11)
    assert d["interval_h"] == 4.0
    # 2 days of 4h settlements = 12 payments; a long pays a positive rate
    assert d["total_usd"] == pytest.approx(-100_000 * snap["rate"] * 12, abs=0.005)
    assert d["rate_source"].startswith("sim3 current rate, ")


def test_calc_funding_rescales_the_stores_rate_to_a_given_interval(
    capsys: pytest.CaptureFixture[str], demo_store: Path
) -> None:
    snap = _latest_snapshot(demo_store, "sim1", "BTC-USDT-PERP")
    assert snap["interval_h"] == 8.0

    d = _json(
        capsys, "--store", str(demo_store), "calc", "funding", "--venue", "sim1",
        "--instrument", "BTC-USDT-PERP", "--notional", "50000", "--days", "1",
        "--interval-h", "1", "--side", "short",
    )  # fmt: skip

    assert d["rate"] == pytest.approx(snap["rate"] / 8, abs=5e-11)  # JSON: rates to 1e-10
    # a short receives; JSON: USD to the cent
    assert d["total_usd"] == pytest.approx(50_000 * snap["rate"] / 8 * 24, abs=0.005)
    assert "rescaled from 8h to 1h" in d["rate_source"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--rate", "0.01%"), "--rate needs --interval-h"),
        (("--rate", "0.01%", "--interval-h", "8", "--venue", "sim1"), "not both"),
        ((), "give --rate and --interval-h, or --venue and --instrument"),
        (("--venue", "sim1", "--instrument", "DOGE-USDT-PERP"), "no funding for sim1 DOGE"),
    ],
)
def test_calc_funding_without_a_usable_rate_is_one_usage_error(
    capsys: pytest.CaptureFixture[str], demo_store: Path, args: tuple[str, ...], fragment: str
) -> None:
    code, out, err = _run(
        capsys, "--store", str(demo_store), "calc", "funding", "--notional", "1000", "--days",
        "1", *args,
    )  # fmt: skip

    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert fragment in err
