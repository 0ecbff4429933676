"""Each guard layer of the SQL workbench on its own.

Layer 1 (``check_statement``) is tested without any connection; layer 2 (``connect_locked``) is
tested by executing statements on the locked connection directly, with layer 1 bypassed. A
statement that slips through one layer must be caught by that layer's own test, not by the other.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest

from perpscope.errors import QueryRefusedError
from perpscope.store.lake import Lake
from perpscope.store.query import check_statement, connect_locked

T0 = datetime(2024, 1, 1, tzinfo=UTC)

REFUSED_STATEMENTS = {
    "insert": "INSERT INTO funding VALUES ('x', 'BTC-USDT-PERP', now(), 0.1, 8, NULL)",
    "insert_with_cte": "WITH t AS (SELECT 1) INSERT INTO x SELECT * FROM t",
    "update": "UPDATE funding SET rate = 0",
    "delete": "DELETE FROM funding",
    "truncate": "TRUNCATE funding",
    "merge": "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE",
    "create_table": "CREATE TABLE t AS SELECT 1",
    "create_table_as_pivot": "CREATE TABLE t AS PIVOT (SELECT 1 AS a, 'x' AS b) ON b USING sum(a)",
    "create_view": "CREATE VIEW v AS SELECT 1",
    "create_macro": "CREATE MACRO m() AS 1",
    "create_secret": "CREATE SECRET (TYPE s3)",
    "drop": "DROP TABLE funding",
    "alter": "ALTER TABLE funding ADD COLUMN x INTEGER",
    "comment": "COMMENT ON TABLE funding IS 'x'",
    "copy_to": "COPY funding TO 'x.csv'",
    "copy_query_to": "COPY (SELECT 1) TO 'x.csv'",
    "copy_from": "COPY funding FROM 'x.csv'",
    "copy_database": "COPY FROM DATABASE a TO b",
    "export": "EXPORT DATABASE 'out'",
    "import": "IMPORT DATABASE 'out'",
    "attach": "ATTACH 'x.db'",
    "detach": "DETACH x",
    "use": "USE x",
    "install": "INSTALL httpfs",
    "force_install": "FORCE INSTALL httpfs",
    "load": "LOAD httpfs",
    "load_path": "LOAD '/tmp/x.duckdb_extension'",
    "update_extensions": "UPDATE EXTENSIONS",
    "set": "SET enable_external_access = true",
    "set_variable": "SET VARIABLE x = 1",
    "reset": "RESET memory_limit",
    "pragma": "PRAGMA version",
    "call": "CALL pragma_version()",
    "checkpoint": "CHECKPOINT",
    "vacuum": "VACUUM",
    "analyze": "ANALYZE",
    "explain_analyze": "EXPLAIN ANALYZE SELECT 1",
    "begin": "BEGIN TRANSACTION",
    "commit": "COMMIT",
    "prepare": "PREPARE p AS SELECT 1",
    "execute": "EXECUTE p",
    "deallocate": "DEALLOCATE p",
    "multi_statement": "SELECT 1; DROP TABLE funding",
    "two_selects": "SELECT 1; SELECT 2",
    "empty": "",
    "garbage": "SELEKT 1",
}


@pytest.mark.parametrize("sql", REFUSED_STATEMENTS.values(), ids=REFUSED_STATEMENTS.keys())
def test_statement_check_alone_refuses_every_non_read_statement(sql: str) -> None:
    with pytest.raises(QueryRefusedError):
        check_statement(sql)


ACCEPTED_STATEMENTS = {
    "select": "SELECT * FROM funding",
    "cte": "WITH x AS (SELECT rate FROM funding) SELECT avg(rate) FROM x",
    "from_first": "FROM funding LIMIT 1",
    "values": "VALUES (1), (2)",
    "describe": "DESCRIBE funding",
    "summarize": "SUMMARIZE funding",
    "show": "SHOW TABLES",
    "union": "SELECT 1 UNION ALL SELECT 2",
    "trailing_semicolon": "SELECT 1;",
    "unpivot": "UNPIVOT (SELECT 1 AS a, 2 AS b) ON a, b INTO NAME k VALUE v",
    "pivot_in_list": "PIVOT (SELECT 1 AS a, 'x' AS b) ON b IN ('x') USING sum(a)",
    "pivot": "PIVOT (SELECT 1 AS a, 'x' AS b) ON b USING sum(a)",
    "pivot_after_comment": "-- pivot\n/* wide */ PIVOT (SELECT 1 AS a, 'x' AS b) ON b USING sum(a)",
    "pivot_subquery": "SELECT * FROM (PIVOT (SELECT 1 AS a, 'x' AS b) ON b USING sum(a))",
}


@pytest.mark.parametrize("sql", ACCEPTED_STATEMENTS.values(), ids=ACCEPTED_STATEMENTS.keys())
def test_statement_check_accepts_reads_including_pivot(sql: str) -> None:
    check_statement(sql)  # raises if refused


# --------------------------------------------------------------------------- layer 2 alone


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "store")
    lake.ingest(
        "funding",
        pl.DataFrame(
            {
                "venue": ["binance"],
                "instrument": ["BTC-USDT-PERP"],
                "ts": [T0],
                "rate": [0.0001],
                "interval_h": [8.0],
            }
        ),
    )
    return lake


def _tree(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in root.rglob("*")}


def test_locked_connection_has_external_access_off_and_configuration_locked(
    lake: Lake, tmp_path: Path
) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    locked = connect_locked(lake, memory_limit_bytes=256 * 2**20, temp_dir=spill)
    try:
        con = locked.con
        settings = dict(
            con.sql(
                "SELECT name, value FROM duckdb_settings() WHERE name IN "
                "('enable_external_access', 'lock_configuration', 'autoload_known_extensions', "
                "'autoinstall_known_extensions', "
                "'allow_community_extensions', 'allow_persistent_secrets', 'TimeZone', "
                "'temp_directory')"
            ).fetchall()
        )
        assert settings == {
            "enable_external_access": "false",
            "lock_configuration": "true",
            "autoload_known_extensions": "false",
            "autoinstall_known_extensions": "false",
            "allow_community_extensions": "false",
            "allow_persistent_secrets": "false",
            "TimeZone": "UTC",
            "temp_directory": str(spill),
        }
        # 256 MiB = 268435456 bytes; DuckDB reports it in its own units
        limit = con.sql("SELECT current_setting('memory_limit')").fetchall()[0]
        assert limit is not None
        assert limit[0] == "256.0 MiB"
        assert con.sql("SELECT count(*) FROM funding").fetchall() == [(1,)]
    finally:
        locked.close()


def _forbidden(tmp_path: Path) -> dict[str, str]:
    secret = tmp_path / "secret.csv"
    out = tmp_path / "written"
    return {
        "copy_to": f"COPY (SELECT 1 AS a) TO '{out}.csv'",
        "copy_table_to": f"COPY funding TO '{out}.parquet' (FORMAT parquet)",
        "export": f"EXPORT DATABASE '{out}'",
        "attach": f"ATTACH '{out}.db'",
        "install": "INSTALL httpfs",
        "load": "LOAD httpfs",
        "load_path": f"LOAD '{out}.duckdb_extension'",
        "set_external_access": "SET enable_external_access = true",
        "reset_external_access": "RESET enable_external_access",
        "unlock": "SET lock_configuration = false",
        "set_memory": "SET memory_limit = '100GB'",
        "set_temp": f"SET temp_directory = '{out}'",
        "read_csv": f"SELECT * FROM read_csv('{secret}')",
        "read_text": f"SELECT * FROM read_text('{secret}')",
        "read_blob": f"SELECT * FROM read_blob('{secret}')",
        "glob": f"SELECT * FROM glob('{tmp_path}/*')",
        "read_parquet_store": "SELECT * FROM read_parquet('store/funding/*.parquet')",
        "http": "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')",
    }


FORBIDDEN_IDS = list(_forbidden(Path("/x")).keys())


@pytest.mark.parametrize("key", FORBIDDEN_IDS)
def test_locked_connection_alone_refuses_files_extensions_and_settings(
    lake: Lake, tmp_path: Path, key: str
) -> None:
    (tmp_path / "secret.csv").write_text("a,b\n1,2\n")
    sql = _forbidden(tmp_path)[key]
    before = _tree(tmp_path)
    locked = connect_locked(lake, memory_limit_bytes=256 * 2**20)
    cwd = os.getcwd()
    os.chdir(tmp_path)  # relative paths would land here
    try:
        with pytest.raises(duckdb.Error):
            locked.con.execute(sql).fetchall()
        # and the lock held: external access is still off after the attempt
        still = locked.con.sql("SELECT current_setting('enable_external_access')").fetchall()
        assert still == [(False,)]
    finally:
        os.chdir(cwd)
        locked.close()
    assert _tree(tmp_path) == before


def test_writes_on_the_locked_connection_cannot_reach_the_store(lake: Lake) -> None:
    before = _tree(lake.root)
    locked = connect_locked(lake, memory_limit_bytes=256 * 2**20)
    try:
        for sql in ("DELETE FROM funding", "UPDATE funding SET rate = 0"):
            with pytest.raises(duckdb.Error):
                locked.con.execute(sql)
    finally:
        locked.close()
    assert _tree(lake.root) == before
    assert lake.read("funding")["rate"].to_list() == [0.0001]
