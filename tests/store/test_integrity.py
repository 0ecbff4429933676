"""A damaged table: the others keep working, ``store check`` finds it, ``store repair`` fixes it.

Each test builds one kind of damage by hand in a temporary store, as a crash, a full disk or a
stray ``rm`` would leave it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from perpscope.errors import QueryError, StoreError
from perpscope.store.integrity import QUARANTINE, check_store, repair_table
from perpscope.store.lake import Lake
from perpscope.store.query import run_query
from tests.conftest import json_data

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def funding(start: int, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "venue": ["binance"] * n,
            "instrument": ["BTC-USDT-PERP"] * n,
            "ts": [T0 + timedelta(hours=8 * (start + i)) for i in range(n)],
            "rate": [0.0001] * n,
            "interval_h": [8.0] * n,
        }
    )


def oi(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "venue": ["binance"] * n,
            "instrument": ["BTC-USDT-PERP"] * n,
            "source": ["snapshot"] * n,
            "ts": [T0 + timedelta(hours=i) for i in range(n)],
            "oi_value": [1.0] * n,
            "oi_unit": ["base"] * n,
        }
    )


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    """funding in three commits of 10 rows (versions 0-2), open_interest with 5 rows."""
    lake = Lake(tmp_path / "store")
    for i in range(3):
        lake.ingest("funding", funding(10 * i, 10))
    lake.ingest("open_interest", oi(5))
    return lake


def _commit(lake: Lake, version: int) -> Path:
    return lake.table_path("funding") / "_delta_log" / f"{version:020d}.json"


def _parquet(lake: Lake) -> set[str]:
    return {p.name for p in lake.table_path("funding").glob("*.parquet")}


def test_truncated_last_commit_takes_down_only_its_own_table(lake: Lake, cli) -> None:  # type: ignore[no-untyped-def]
    last = _commit(lake, 2)
    last.write_text(last.read_text()[:50])  # a write cut short

    assert run_query(lake, "SELECT count(*) AS n FROM open_interest").table.to_pylist() == [
        {"n": 5}
    ]
    with pytest.raises(QueryError, match="table funding is damaged"):
        run_query(lake, "SELECT count(*) FROM funding")

    info = {t.name: t for t in lake.info()}
    assert info["open_interest"].rows == 5
    assert info["funding"].damaged is not None
    res = cli("--store", str(lake.root), "store", "info", "--format", "json")
    assert res.code == 0, res.err

    (check,) = [c for c in check_store(lake) if c.table == "funding"]
    assert [(d.kind, d.version) for d in check.damage] == [("bad_commit", 2)]
    assert all(c.ok for c in check_store(lake) if c.table != "funding")

    res = cli("--store", str(lake.root), "store", "check", "--format", "json")
    assert res.code == 1
    by_table = {row["table"]: row for row in json_data(res.out)}
    assert by_table["open_interest"]["ok"] is True
    assert by_table["funding"]["damage"][0]["kind"] == "bad_commit"

    files_before = _parquet(lake)
    res = cli("--store", str(lake.root), "store", "repair")
    assert res.code == 0, res.out + res.err
    assert "moved damaged commit 2" in res.out
    assert "now at version 1" in res.out
    assert (lake.table_path("funding") / QUARANTINE / last.name).is_file()  # kept, not deleted
    assert _parquet(lake) == files_before  # no data file deleted
    assert lake.read("funding").height == 20  # the two good commits
    assert all(c.ok for c in check_store(lake))
    assert cli("--store", str(lake.root), "store", "check").code == 0
    # and the table takes new writes again
    assert lake.ingest("funding", funding(100, 3)).rows_written == 3


def test_empty_commit_is_reported_instead_of_silently_hiding_rows(lake: Lake) -> None:
    _commit(lake, 2).write_text("")
    assert lake.read("funding").height == 20  # Delta itself says nothing: 10 rows vanish
    (check,) = [c for c in check_store(lake) if c.table == "funding"]
    assert [(d.kind, d.version) for d in check.damage] == [("empty_commit", 2)]
    files_before = _parquet(lake)
    actions = repair_table(lake, "funding")
    assert any("moved damaged commit 2 (empty_commit)" in a for a in actions)
    assert _parquet(lake) == files_before
    assert all(c.ok for c in check_store(lake))


def test_missing_data_file_is_named_and_repair_keeps_the_other_rows(lake: Lake) -> None:
    gone = Path(DeltaTable(str(lake.table_path("funding"))).file_uris()[0].removeprefix("file://"))
    os.remove(gone)
    with pytest.raises(QueryError, match="table funding is damaged: a data file is missing"):
        run_query(lake, "SELECT count(*) FROM funding")
    assert run_query(lake, "SELECT count(*) AS n FROM open_interest").table.to_pylist() == [
        {"n": 5}
    ]
    (check,) = [c for c in check_store(lake) if c.table == "funding"]
    assert [d.kind for d in check.damage] == ["missing_file"]
    assert gone.name in check.damage[0].detail

    actions = repair_table(lake, "funding")
    assert any(f"removed 1 references to missing data files ({gone.name})" in a for a in actions)
    assert lake.read("funding").height == 20  # 30 rows less the 10 of the lost file
    assert all(c.ok for c in check_store(lake))


def test_damaged_commit_in_the_middle_is_not_touched(lake: Lake, cli) -> None:  # type: ignore[no-untyped-def]
    middle = _commit(lake, 1)
    middle.write_text("{not json")
    before = sorted(p.name for p in (lake.table_path("funding") / "_delta_log").iterdir())
    res = cli("--store", str(lake.root), "store", "repair", "--table", "funding")
    assert res.code == 1
    assert "NOT repaired" in res.out
    assert sorted(p.name for p in (lake.table_path("funding") / "_delta_log").iterdir()) == before
    assert not (lake.table_path("funding") / QUARANTINE).exists()


def test_schema_mismatch_against_domain_schema_is_reported(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "store")
    lake.init()
    wrong = pa.table(
        {
            "venue": ["binance"],
            "instrument": ["BTC-USDT-PERP"],
            "ts": pa.array([T0], pa.timestamp("us", "UTC")),
            "rate": ["0.0001"],  # text where the schema says float64
        }
    )
    write_deltalake(str(lake.table_path("funding")), wrong)
    (check,) = check_store(lake)
    assert [d.kind for d in check.damage] == ["schema_mismatch"]
    assert "rate is string" in check.damage[0].detail
    assert "missing columns interval_h" in check.damage[0].detail


def test_repair_of_an_unknown_table_is_a_usage_error(lake: Lake, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("--store", str(lake.root), "store", "repair", "--table", "nope")
    assert res.code == 2
    assert "unknown table" in res.err


def test_a_healthy_store_under_a_path_with_spaces_and_accents_checks_clean(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "my store é")
    lake.ingest("funding", funding(0, 3))
    assert [(c.table, c.ok) for c in check_store(lake)] == [("funding", True)]


def test_import_into_a_table_with_a_missing_data_file_is_one_clear_error(
    lake: Lake,
    tmp_path: Path,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    # the keys of all three commits: the key check must read the stored (damaged) files
    gone = Path(DeltaTable(str(lake.table_path("funding"))).file_uris()[0].removeprefix("file://"))
    os.remove(gone)
    before = DeltaTable(str(lake.table_path("funding"))).version()
    with pytest.raises(StoreError, match="table funding .* is damaged .*store check"):
        lake.ingest("funding", funding(0, 30))
    csv = tmp_path / "f.csv"
    funding(0, 30).select("ts", "rate").write_csv(csv)
    res = cli("--store", str(lake.root), "import", "funding", str(csv), "--venue", "binance",
              "--instrument", "BTC-USDT-PERP", "--interval-h", "8")  # fmt: skip
    assert res.code != 0
    assert "Traceback" not in res.err
    assert "store check" in res.err
    assert DeltaTable(str(lake.table_path("funding"))).version() == before  # nothing written
