"""``perpscope import options`` and ``perpscope options ...`` through the real entry point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    assert round(doc["pcr_oi"], 4) == 0.3248
    assert isinstance(doc["pcr_volume"], float)
    first = doc["by_expiry"][0]
    assert {"expiry", "pcr_oi", "pcr_volume"} <= set(first)
    assert first["expiry"] == "2024-01-09"


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
    assert row["max_pain_px"] == 2200.0
    assert row["spot_px"] == 2222.19
    assert 17.8 < row["days_to_expiry"] < 17.9
    code, out, _ = _run(
        capsys, "--store", store, "options", "maxpain", "--underlying", "BTC", "--format", "json"
    )
    by_expiry = {r["expiry"]: r for r in json_data(out)}
    assert by_expiry["2021-03-26"]["max_pain_px"] == 10000.0
    assert by_expiry["2021-03-05"]["max_pain_px"] is None


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "command",
    [
        ["summary"],
        ["pcr"],
        ["maxpain"],
        ["maxpain", "--expiry", "2021-03-26", "--curve"],
        ["oi", "--top", "5"],
        ["unusual"],
        ["smile", "--expiry", "2021-03-26"],
    ],
)
def test_every_command_prints_table_and_json(
    store: str, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    base = ["--store", store, "options", *command, "--underlying", "BTC"]
    code, out, err = _run(capsys, *base)
    assert code == 0, err
    assert out.strip()
    code, out, err = _run(capsys, *base, "--format", "json")
    assert code == 0, err
    assert json_data(out) is not None
    assert "NaN" not in out


def test_bad_arguments_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tmp_path / "empty")
    code, _, err = _run(capsys, "--store", root, "options", "pcr", "--underlying", "ETH")
    assert code == 2
    assert "no options snapshots for deribit ETH" in err
    assert "Traceback" not in err
    code, _, err = _run(capsys, "--store", root, "options", "maxpain", "--expiry", "26JAN24")
    assert code == 2
    assert "bad --expiry '26JAN24'" in err
    missing = str(tmp_path / "nope.csv")
    code, _, err = _run(capsys, "--store", root, "import", "options", missing, "--venue", "deribit")
    assert code == 2
    assert "no such file" in err
