"""``perpscope import options`` and ``perpscope options ...`` through the real entry point.

Expected figures are computed in this file from the raw Deribit files with pandas, independently
of perpscope's importer and analytics: instruments are parsed from ``instrument_name``
(``BTC-26MAR21-10000-C``), the BTC file's two snapshots are reduced to each instrument's latest
row, and put/call ratios, max pain, OI walls and volume/OI ratios are plain group sums.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from perpscope.cli.main import run
from tests.conftest import json_data, require_shared

ETH = "options/deribit_eth_book_summary_2024-01-08.csv.gz"
BTC = "options/deribit_btc_option_chain_2021-02-11.csv.gz"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        run(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def _chain(rel: str) -> pd.DataFrame:
    """One snapshot of a raw file: expiry, strike, C/P, OI, volume, mark IV (latest row kept)."""
    raw = pd.read_csv(require_shared(rel))
    if "timestamp" in raw.columns:  # BTC ticker file: two snapshots of the same instruments
        raw = raw.sort_values("timestamp").drop_duplicates("instrument_name", keep="last")
        volume, iv = raw["stats.volume"], raw["mark_iv"] / 100
    else:
        volume, iv = raw["volume"], pd.Series(np.nan, index=raw.index)
    parts = raw["instrument_name"].str.split("-", expand=True)
    return pd.DataFrame(
        {
            "expiry": [
                datetime.strptime(x, "%d%b%y").replace(tzinfo=UTC).date().isoformat()
                for x in parts[1]
            ],
            "strike": parts[2].astype(float),
            "type": parts[3],
            "oi": raw["open_interest"].astype(float),
            "volume": volume.astype(float),
            "iv": iv.astype(float),
        }
    )


def _pcr_oi(chain: pd.DataFrame) -> float:
    by_type = chain.groupby("type")["oi"].sum()
    return float(by_type["P"] / by_type["C"])


def _pain(chain: pd.DataFrame, expiry: str) -> dict[float, float]:
    """Total payout to option holders at expiry if it settles at each listed strike."""
    part = chain[chain["expiry"] == expiry]
    calls, puts = part[part["type"] == "C"], part[part["type"] == "P"]
    return {
        k: float(
            (calls["oi"] * np.maximum(k - calls["strike"], 0)).sum()
            + (puts["oi"] * np.maximum(puts["strike"] - k, 0)).sum()
        )
        for k in sorted(part["strike"].unique())
    }


def _max_pain(chain: pd.DataFrame, expiry: str) -> float | None:
    if chain.loc[chain["expiry"] == expiry, "oi"].sum() == 0:
        return None
    pain = _pain(chain, expiry)
    return min(pain, key=lambda k: pain[k])


def _number_in(text: str, value: float) -> bool:
    """Whether ``value`` appears in a table, with or without thousands separators."""
    plain = f"{value:.0f}"
    grouped = f"{value:,.0f}"
    return bool(re.search(rf"(?<![\d.]){re.escape(plain)}|{re.escape(grouped)}", text))


@pytest.fixture
def store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    root = str(tmp_path / "store")
    for rel in (ETH, BTC):
        code, _, err = _run(
            capsys, "--store", root, "import", "options", str(require_shared(rel)),
            "--venue", "deribit", "--format", "json",
        )  # fmt: skip
        assert code == 0, err
    return root


@pytest.mark.shared_data
def test_import_reports_rows_and_snapshots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tmp_path / "s")
    args = ["--store", root, "import", "options", str(require_shared(BTC)), "--venue", "deribit"]
    code, out, _ = _run(capsys, *args, "--format", "json")
    assert code == 0
    report = json_data(out)
    assert (report["rows_written"], report["rows_already_stored"]) == (976, 0)
    assert "2 snapshot(s)" in report["notes"]
    code, out, _ = _run(capsys, *args, "--format", "json")
    assert json_data(out)["rows_already_stored"] == 976


@pytest.mark.shared_data
def test_pcr_json_interface(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "--store", store, "options", "pcr", "--venue", "deribit", "--underlying", "ETH",
        "--format", "json",
    )  # fmt: skip
    assert code == 0
    doc: dict[str, Any] = json_data(out)
    eth = _chain(ETH)
    # PROVENANCE.md gives 0.325 for this file; pandas on the raw OI gives 0.3248.
    assert doc["pcr_oi"] == pytest.approx(_pcr_oi(eth), rel=1e-12)
    assert round(doc["pcr_oi"], 3) == 0.325
    by_type_volume = eth.groupby("type")["volume"].sum()
    assert doc["pcr_volume"] == pytest.approx(by_type_volume["P"] / by_type_volume["C"])
    first = doc["by_expiry"][0]
    assert {"expiry", "pcr_oi", "pcr_volume"} <= set(first)
    assert first["expiry"] == min(eth["expiry"]) == "2024-01-09"
    assert first["pcr_oi"] == pytest.approx(_pcr_oi(eth[eth["expiry"] == first["expiry"]]))


@pytest.mark.shared_data
def test_maxpain_json_interface(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "--store", store, "options", "maxpain", "--venue", "deribit",
        "--underlying", "ETH", "--expiry", "2024-01-26", "--format", "json",
    )  # fmt: skip
    assert code == 0
    rows = json_data(out)
    assert isinstance(rows, list)
    assert len(rows) == 1
    row = rows[0]
    assert row["expiry"] == "2024-01-26"
    # PROVENANCE.md: "max pain 26JAN24 = 2,200"; recomputed from the raw OI by strike.
    assert row["max_pain_px"] == _max_pain(_chain(ETH), "2024-01-26") == 2200.0
    raw = pd.read_csv(require_shared(ETH))
    assert row["spot_px"] == raw["estimated_delivery_price"].iloc[0]  # the ETH index
    # Deribit expires at 08:00 UTC; the snapshot time is the file's creation_timestamp.
    snap = datetime.fromtimestamp(raw["creation_timestamp"].max() / 1000, tz=UTC)
    days = (datetime(2024, 1, 26, 8, tzinfo=UTC) - snap) / timedelta(days=1)
    assert row["days_to_expiry"] == pytest.approx(days, abs=1e-6)
    code, out, _ = _run(
        capsys, "--store", store, "options", "maxpain", "--underlying", "BTC", "--format", "json"
    )
    btc = _chain(BTC)
    by_expiry = {r["expiry"]: r for r in json_data(out)}
    assert set(by_expiry) == set(btc["expiry"])
    for expiry, r in by_expiry.items():
        assert r["max_pain_px"] == _max_pain(btc, expiry), expiry
    assert by_expiry["2021-03-26"]["max_pain_px"] == 10000.0
    assert by_expiry["2021-03-05"]["max_pain_px"] is None  # no open interest in that expiry


def _json_of(store: str, capsys: pytest.CaptureFixture[str], command: list[str]) -> Any:
    base = ["--store", store, "options", *command, "--underlying", "BTC"]
    code, out, err = _run(capsys, *base, "--format", "json")
    assert code == 0, err
    assert "NaN" not in out
    return json_data(out)


def _table_of(store: str, capsys: pytest.CaptureFixture[str], command: list[str]) -> str:
    code, out, err = _run(capsys, "--store", store, "options", *command, "--underlying", "BTC")
    assert code == 0, err
    return out


@pytest.mark.shared_data
def test_summary_and_pcr_show_the_raw_files_ratio_and_main_expiry(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    btc = _chain(BTC)
    main = btc.groupby("expiry")["oi"].sum().idxmax()  # the expiry with the largest OI
    summary = _json_of(store, capsys, ["summary"])
    assert (summary["instruments"], summary["expiries"]) == (len(btc), btc["expiry"].nunique())
    assert summary["pcr_oi"] == pytest.approx(_pcr_oi(btc), rel=1e-12)
    assert (summary["main_expiry"], summary["main_expiry_max_pain_px"]) == (
        main,
        _max_pain(btc, main),
    )
    pcr = _json_of(store, capsys, ["pcr"])
    sums = btc.groupby("type")[["oi", "volume"]].sum()
    assert (pcr["put_oi"], pcr["call_oi"]) == pytest.approx(
        (sums.at["P", "oi"], sums.at["C", "oi"])
    )
    assert pcr["put_volume"] == pytest.approx(sums.at["P", "volume"])
    assert f"{_pcr_oi(btc):.2f}" in _table_of(store, capsys, ["pcr"])
    assert _number_in(_table_of(store, capsys, ["summary"]), _max_pain(btc, main) or 0)


@pytest.mark.shared_data
def test_maxpain_curve_is_the_payout_at_each_strike(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pain = _pain(_chain(BTC), "2021-03-26")
    curve = _json_of(store, capsys, ["maxpain", "--expiry", "2021-03-26", "--curve"])
    assert {r["strike_px"]: r["payout_usd"] for r in curve} == pytest.approx(pain)
    table = _table_of(store, capsys, ["maxpain", "--expiry", "2021-03-26", "--curve"])
    assert _number_in(table, min(pain, key=lambda k: pain[k]))


@pytest.mark.shared_data
def test_oi_walls_are_the_largest_strikes_by_open_interest(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    btc = _chain(BTC)
    per_strike = btc.pivot_table(
        index=["expiry", "strike"], columns="type", values="oi", aggfunc="sum", fill_value=0.0
    )
    per_strike["total"] = per_strike["C"] + per_strike["P"]
    top = per_strike.sort_values("total", ascending=False).head(5)
    walls = _json_of(store, capsys, ["oi", "--top", "5"])
    assert [(w["expiry"], w["strike_px"]) for w in walls] == list(top.index)
    for w, (_, t) in zip(walls, top.iterrows(), strict=True):
        assert (w["call_oi_contracts"], w["put_oi_contracts"]) == pytest.approx((t["C"], t["P"]))
    assert _number_in(_table_of(store, capsys, ["oi", "--top", "5"]), top.index[0][1])


@pytest.mark.shared_data
def test_unusual_volume_is_every_instrument_trading_at_least_its_open_interest(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # docs/options.md rule: 24h volume >= OI (or volume with no OI), and a volume notional
    # (contracts x 1 BTC x index) of at least $1M. Index: the latest snapshot's index_price.
    raw = pd.read_csv(require_shared(BTC))
    index = float(raw.sort_values("timestamp")["index_price"].iloc[-1])
    btc = _chain(BTC)
    ratio = btc["volume"] / btc["oi"].where(btc["oi"] > 0)
    hot = btc[(btc["volume"] > 0) & (btc["volume"] * index >= 1e6) & (ratio.isna() | (ratio >= 1))]
    assert len(hot) > 5
    items = [u for u in _json_of(store, capsys, ["unusual"]) if u["kind"] == "volume_oi"]
    assert sorted((u["expiry"], u["strike_px"], u["option_type"]) for u in items) == sorted(
        zip(hot["expiry"], hot["strike"], hot["type"], strict=True)
    )
    for u in items:
        key = (btc["expiry"] == u["expiry"]) & (btc["strike"] == u["strike_px"])
        expected = ratio[key & (btc["type"] == u["option_type"])].iloc[0]
        if np.isnan(expected):
            assert u["volume_oi_ratio"] is None
        else:
            assert u["volume_oi_ratio"] == pytest.approx(float(expected))
    assert _table_of(store, capsys, ["unusual"]).strip()


@pytest.mark.shared_data
def test_smile_points_are_the_venues_mark_iv_by_strike(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    btc = _chain(BTC)
    part = btc[btc["expiry"] == "2021-03-26"]
    iv = {(k, t): v for k, t, v in zip(part["strike"], part["type"], part["iv"], strict=True)}
    doc = _json_of(store, capsys, ["smile", "--expiry", "2021-03-26"])
    assert doc["iv_source"] == "venue"
    assert doc["smile"]
    for point in doc["smile"]:
        assert point["call_iv"] == pytest.approx(iv[(point["strike_px"], "C")])
        assert point["put_iv"] == pytest.approx(iv[(point["strike_px"], "P")])
    assert _table_of(store, capsys, ["smile", "--expiry", "2021-03-26"]).strip()


def test_bad_arguments_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tmp_path / "empty")
    code, _, err = _run(capsys, "--store", root, "options", "pcr", "--underlying", "ETH")
    assert code == 2
    assert f"no store at {root}" in err  # a mistyped --store says so
    assert "Traceback" not in err
    code, _, err = _run(capsys, "--store", root, "options", "maxpain", "--expiry", "26JAN24")
    assert code == 2
    assert "bad --expiry '26JAN24'" in err
    missing = str(tmp_path / "nope.csv")
    code, _, err = _run(capsys, "--store", root, "import", "options", missing, "--venue", "deribit")
    assert code == 2
    assert "no such file" in err


# --------------------------------------------------------------------- the demo store's options


DEMO_COMMANDS = ("summary", "pcr", "maxpain", "oi", "unusual", "smile")


@pytest.mark.parametrize("command", DEMO_COMMANDS)
@pytest.mark.parametrize("underlying", ["BTC", "ETH"])
def test_every_options_command_reads_the_demo_stores_simulated_chain(
    capsys: pytest.CaptureFixture[str], demo_store: Path, command: str, underlying: str
) -> None:
    """The simulator lists BTC and ETH options on sim1: with no --venue every command reads
    them, in a table and in JSON, with data (not "no options snapshots")."""
    args = ("--store", str(demo_store), "options", command, "--underlying", underlying)
    code, out, err = _run(capsys, *args, "--format", "json")
    assert code == 0, err
    data = json_data(out)
    assert data, data
    records = data if isinstance(data, list) else [data]
    assert all(r.get("venue", "sim1") == "sim1" for r in records if isinstance(r, dict))
    if command in ("summary", "pcr", "smile"):
        assert data["underlying"] == underlying
        assert data["spot_px"] > 0
    if command == "pcr":
        assert data["call_oi"] > 0
        assert data["put_oi"] > 0
    if command == "oi":
        assert data[0]["oi_contracts"] > 0
    if command == "smile":
        assert all(0 < r["atm_iv"] < 3 for r in data["by_expiry"] if r["atm_iv"] is not None)
    code, out, err = _run(capsys, *args)
    assert code == 0, err
    assert "no options snapshots" not in out + err
    assert "no unusual activity" not in out
    assert len(out.splitlines()) > 3


def test_the_demo_maxpain_curve_of_an_expiry_has_a_strike_per_row(
    capsys: pytest.CaptureFixture[str], demo_store: Path
) -> None:
    code, out, err = _run(capsys, "--store", str(demo_store), "options", "maxpain",
                          "--format", "json")  # fmt: skip
    assert code == 0, err
    expiry = max(json_data(out), key=lambda r: r["oi_base"] or 0)["expiry"]
    code, out, err = _run(capsys, "--store", str(demo_store), "options", "maxpain", "--curve",
                          "--expiry", expiry, "--format", "json")  # fmt: skip
    assert code == 0, err
    curve = json_data(out)
    assert len(curve) >= 5
    assert any(r["payout_usd"] > 0 for r in curve)
