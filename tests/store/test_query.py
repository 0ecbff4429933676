"""The read-only SQL workbench: what it refuses, caps and returns."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from perpscope.errors import QueryError, QueryRefusedError
from perpscope.store.lake import Lake
from perpscope.store.query import check_read_only, open_store, run_query

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "store")
    lake.ingest(
        "funding",
        pl.DataFrame(
            {
                "venue": ["binance", "bybit", "binance"],
                "instrument": ["BTC-USDT-PERP"] * 3,
                "ts": [T0, T0, T0 + timedelta(hours=8)],
                "rate": [0.0001, 0.0002, -0.0003],
                "interval_h": [8.0, 8.0, 8.0],
            }
        ),
    )
    return lake


def _snapshot(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in root.rglob("*")}


REFUSED = [
    "DROP TABLE funding",
    "INSERT INTO funding VALUES ('x', 'BTC-USDT-PERP', now(), 0.1, 8, NULL)",
    "COPY funding TO 'x.csv'",
    "ATTACH 'x.db'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "PRAGMA version",
    "CREATE TABLE t AS SELECT 1",
    "DELETE FROM funding",
    "UPDATE funding SET rate = 0",
    "SELECT 1; DROP TABLE funding",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM read_text('/etc/hostname')",
    "CALL pragma_version()",
]


@pytest.mark.parametrize("query", REFUSED)
def test_writes_ddl_and_file_access_are_refused_and_change_nothing(
    lake: Lake, tmp_path: Path, query: str
) -> None:
    before = _snapshot(tmp_path)
    version = DeltaTable(str(lake.table_path("funding"))).version()
    cwd = os.getcwd()
    os.chdir(tmp_path)  # a file written by COPY or ATTACH would land here
    try:
        with pytest.raises(QueryRefusedError, match="refused"):
            run_query(lake, query)
    finally:
        os.chdir(cwd)
    assert _snapshot(tmp_path) == before
    assert DeltaTable(str(lake.table_path("funding"))).version() == version
    assert lake.read("funding").height == 3


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM funding",
        "WITH x AS (SELECT rate FROM funding) SELECT avg(rate) FROM x",
        "FROM funding LIMIT 1",
        "DESCRIBE funding",
        "SUMMARIZE funding",
    ],
)
def test_read_only_queries_are_accepted(query: str) -> None:
    check_read_only(query)  # raises if refused


def test_query_sees_every_table_even_empty_ones(lake: Lake) -> None:
    out = run_query(lake, "SELECT venue, sum(rate) AS s FROM funding GROUP BY venue ORDER BY venue")
    assert out.table.to_pylist() == [
        {"venue": "binance", "s": pytest.approx(-0.0002)},
        {"venue": "bybit", "s": pytest.approx(0.0002)},
    ]
    empty = run_query(lake, "SELECT count(*) AS n FROM liquidations")
    assert empty.table.to_pylist() == [{"n": 0}]


def test_row_cap_truncates_and_says_so(lake: Lake) -> None:
    out = run_query(lake, "SELECT * FROM range(100)", max_rows=7)
    assert out.table.num_rows == 7
    assert out.truncated
    full = run_query(lake, "SELECT * FROM range(7)", max_rows=7)
    assert not full.truncated


def test_time_limit_stops_a_long_query(lake: Lake) -> None:
    with pytest.raises(QueryError, match="time limit"):
        run_query(
            lake,
            "SELECT sum(a.range * b.range % 7) FROM range(100000000) a, range(1000) b",
            timeout_s=0.5,
        )


def test_unknown_table_is_one_clear_error(lake: Lake) -> None:
    with pytest.raises(QueryError, match="nope"):
        run_query(lake, "SELECT * FROM nope")


def test_python_api_returns_polars_frames(lake: Lake) -> None:
    store = open_store(lake.root)
    assert store.tables() == ["funding"]
    assert store.table("funding").height == 3
    frame = store.sql("SELECT max(rate) AS m FROM funding")
    assert frame.item() == pytest.approx(0.0002)


def test_cli_sql_json_prints_rows_with_iso_utc_timestamps(lake: Lake, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli(
        "--store",
        str(lake.root),
        "sql",
        "SELECT venue, ts, rate FROM funding ORDER BY ts, venue",
        "--format",
        "json",
    )
    assert res.code == 0, res.err
    assert res.json() == [
        {"venue": "binance", "ts": "2024-01-01T00:00:00Z", "rate": 0.0001},
        {"venue": "bybit", "ts": "2024-01-01T00:00:00Z", "rate": 0.0002},
        {"venue": "binance", "ts": "2024-01-01T08:00:00Z", "rate": -0.0003},
    ]


def test_cli_sql_refusal_is_one_line_exit_2(lake: Lake, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("--store", str(lake.root), "sql", "DROP TABLE funding")
    assert res.code == 2
    assert res.err.strip().count("\n") == 0
    assert "refused" in res.err
    assert "Traceback" not in res.err


def test_cli_sql_csv(lake: Lake, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli(
        "--store",
        str(lake.root),
        "sql",
        "SELECT venue, rate FROM funding ORDER BY rate",
        "--format",
        "csv",
    )
    assert res.code == 0
    assert res.out.splitlines() == [
        "venue,rate",
        "binance,-0.0003",
        "binance,0.0001",
        "bybit,0.0002",
    ]


def test_cli_csv_keeps_full_precision_and_table_rounds_for_the_screen(lake: Lake, cli) -> None:  # type: ignore[no-untyped-def]
    q = "SELECT 0.000425212861123::DOUBLE AS x"
    csv_out = cli("--store", str(lake.root), "sql", q, "--format", "csv")
    assert csv_out.out.splitlines() == ["x", "0.000425212861123"]
    table_out = cli("--store", str(lake.root), "sql", q)
    assert "0.000425213" in table_out.out


def test_cli_sql_without_a_store_runs_and_says_the_tables_are_empty(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("--store", str(tmp_path / "none"), "sql", "SELECT count(*) AS n FROM funding",
              "--format", "json")  # fmt: skip
    assert res.code == 0
    assert res.json() == [{"n": 0}]
    assert "no store at" in res.err
