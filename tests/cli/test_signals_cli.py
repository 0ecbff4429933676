"""The signals commands' interface: JSON shapes, --at, and one-line errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from perpscope.services.demo import build_demo
from perpscope.signals import SCENARIOS
from tests.conftest import CliResult

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("sigcli") / "s"
    build_demo(path, seed=5, days=8, scenario="short-squeeze")
    return str(path)


@pytest.fixture(scope="module")
def at(store: str) -> str:
    """Six days into the run, ISO 8601."""
    from datetime import timedelta

    from perpscope.store.lake import Lake

    first = Lake(store).read("funding")["ts"].min()
    return (first + timedelta(days=6)).strftime("%Y-%m-%dT%H:00Z")  # type: ignore[operator]


def test_scenario_json(cli, store: str, at: str) -> None:  # type: ignore[no-untyped-def]
    r: CliResult = cli("--store", store, "scenario", "--asset", "BTC", "--at", at,
                       "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    d = r.json()
    assert isinstance(d, dict)
    assert {"asset", "ts", "scenario", "confidence", "evidence"} <= set(d)
    assert d["asset"] == "BTC"
    assert d["scenario"] in SCENARIOS
    assert d["ts"] == at.replace(":00Z", ":00:00Z")
    assert isinstance(d["evidence"], list)
    assert d["evidence"]


def test_signals_then_journal(cli, store: str, at: str) -> None:  # type: ignore[no-untyped-def]
    r: CliResult = cli("--store", store, "signals", "--assets", "BTC,ETH", "--at", at,
                       "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    found = r.json()
    assert isinstance(found, list)
    assert all(s["asset"] in {"BTC", "ETH"} for s in found)
    j = cli("--store", store, "signals", "journal", "--format", "json")
    assert j.code == 0, j.err
    doc = j.json()
    assert isinstance(doc, dict)
    assert len(doc["signals"]) == len(found)
    t = cli("--store", store, "signals", "journal")
    assert t.code == 0
    assert "per setup" in t.out


@pytest.mark.parametrize(
    "args",
    [
        ("scenario", "--asset", "B-T"),
        ("signals", "journal", "--setup", "nope"),
        ("scenario", "--asset", "BTC", "--at", "yesterday"),
    ],
)
def test_bad_inputs_are_one_line(cli, store: str, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    r: CliResult = cli("--store", store, *args)
    assert r.code == 2
    assert len(r.err.strip().splitlines()) == 1
    assert "Traceback" not in r.err


def test_store_without_the_asset_is_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty"
    r: CliResult = cli("--store", str(empty), "scenario", "--asset", "BTC")
    assert r.code == 2
    assert "no funding or candles" in r.err


def test_scenario_evidence_values_are_formatted_by_what_they_measure() -> None:
    from perpscope.cli.signals_cmd import _value

    assert _value("funding_8h", 0.000576) == "+0.0576%"
    assert _value("oi_change_168h", -0.1066) == "-10.66%"
    # oi_pct_30d is a share 0..1 of the trailing 30 days' OI values at or below now
    assert _value("oi_pct_30d", 0.5611) == "pctl 56"
    assert _value("oi_pct_30d", float("nan")) == "n/a"
    # cluster readings are densities: the peak bin over the mean bin; 0 means no cluster
    assert _value("long_cluster_below", 1.64808) == "1.65x mean bin"
    assert _value("short_cluster_above", 0.0) == "none"
    assert _value("clusters_near", 2) == "2"
    assert _value("long_near_5", 2.0) == "2"
    # distances off the 7-day high and low are fractions: 0.00542 is 0.54% under the high
    assert _value("price_off_7d_high", 0.00542127) == "0.54%"
    assert _value("price_off_7d_low", 0.0) == "0.00%"
    # a condition's grade (0 to 1) is a grade, not a funding rate, whatever the stream's name
    assert _value("pre_event_build: funding", 1.0) == "1.00"
    assert _value("exhaustion: oi", 0.8213) == "0.82"
    assert _value("missing inputs", "levels") == "levels"


def test_options_evidence_for_btc_not_sol(cli, store: str, at: str) -> None:  # type: ignore[no-untyped-def]
    # the demo store has BTC and ETH option chains on sim1, none for SOL
    btc: CliResult = cli("--store", store, "scenario", "--asset", "BTC", "--at", at,
                         "--format", "json")  # fmt: skip
    assert btc.code == 0, btc.err
    d = btc.json()
    assert isinstance(d, dict)
    ev = {e["name"]: e["value"] for e in d["evidence"]}
    assert ev["options venue"] == "sim1"
    assert isinstance(ev["options put/call OI"], float)
    assert ev["options put/call OI"] > 0
    assert isinstance(ev["options 25d skew vol pts"], float)
    assert ev["options chain ts"] <= at.replace("Z", "+00:00").replace(":00+", ":00:00+")
    sol: CliResult = cli("--store", store, "scenario", "--asset", "SOL", "--at", at,
                         "--format", "json")  # fmt: skip
    assert sol.code == 0, sol.err
    s = sol.json()
    assert isinstance(s, dict)
    assert not [e for e in s["evidence"] if e["name"].startswith("options")]
    table: CliResult = cli("--store", store, "scenario", "--asset", "BTC", "--at", at)
    assert table.code == 0, table.err
    assert "options evidence" in table.out
    assert "vol pts" in table.out
    sol_table: CliResult = cli("--store", store, "scenario", "--asset", "SOL", "--at", at)
    assert "options evidence" not in sol_table.out


def test_signals_options_table_takes_each_assets_fullest_evidence() -> None:
    # A setup carrying only the options context (put/call, no percentile) comes first for BTC;
    # the pcr setup after it carries the percentile too: the table's BTC row is the fuller one.
    # ETH has only the partial one, which is still shown.
    from perpscope.cli.signals_cmd import options_rows
    from perpscope.signals import Evidence, Signal

    ts = datetime(2026, 1, 1, tzinfo=UTC)
    context = (Evidence("options venue", "sim1"), Evidence("options put/call OI", 1.48))
    full = (*context, Evidence("options put/call percentile", 0.68))
    found = [
        Signal("funding_acceleration", "BTC", ts, "long", 0.6, "entry", context),
        Signal("pcr_extreme", "BTC", ts, "long", 0.7, "watch", full),
        Signal("funding_acceleration", "ETH", ts, "short", 0.6, "entry", context),
        Signal("oi_divergence", "ETH", ts, "short", 0.5, "entry", ()),  # no options evidence
    ]
    rows = {r["asset"]: r for r in options_rows(found)}
    assert set(rows) == {"BTC", "ETH"}
    assert rows["BTC"]["pctl"] == "68th pct"
    assert rows["BTC"]["put/call"] == rows["ETH"]["put/call"] == "1.48"
    assert rows["ETH"]["pctl"] == ""
