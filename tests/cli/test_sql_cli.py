"""``perpscope sql``: every DuckDB type prints exactly, limits hold, terminals stay safe.

The expected texts are DuckDB's documented canonical text of each value (and, for JSON, the
JSON value it denotes); big integers are computed here from their definition (2**127 - 1...).
"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from perpscope.cli.sql_cmd import render
from perpscope.store.lake import Lake
from perpscope.store.workbench import SPILL_PREFIX, query_display
from tests.conftest import json_data

REPO = Path(__file__).resolve().parents[2]

# (SQL expression, table text, CSV text, JSON value)
TYPES: dict[str, tuple[str, str, str, Any]] = {
    "boolean": ("true", "true", "true", True),
    "tinyint": ("(-128)::TINYINT", "-128", "-128", -128),
    "ubigint": ("18446744073709551615::UBIGINT", str(2**64 - 1), str(2**64 - 1), 2**64 - 1),
    "hugeint": (
        "170141183460469231731687303715884105727::HUGEINT",
        str(2**127 - 1),
        str(2**127 - 1),
        2**127 - 1,
    ),
    "uhugeint": (f"{2**128 - 1}::UHUGEINT", str(2**128 - 1), str(2**128 - 1), 2**128 - 1),
    "bignum": (f"{10**50}::BIGNUM", str(10**50), str(10**50), 10**50),
    "decimal38": (
        "12345678901234567890123456789.123456789::DECIMAL(38,9)",
        "12345678901234567890123456789.123456789",
        "12345678901234567890123456789.123456789",
        Decimal("12345678901234567890123456789.123456789"),
    ),
    "decimal38_0": (
        "99999999999999999999999999999999999999::DECIMAL(38,0)",
        "9" * 38,
        "9" * 38,
        Decimal("9" * 38),
    ),
    "double": (
        "0.000425212861123::DOUBLE",
        "0.000425213",
        "0.000425212861123",
        Decimal("0.000425212861123"),
    ),  # fmt: skip
    "float": ("0.1::FLOAT", "0.1", "0.1", Decimal("0.1")),
    "nan": ("'nan'::DOUBLE", "NaN", "NaN", "NaN"),
    "inf": ("'inf'::DOUBLE", "inf", "inf", "Infinity"),
    "neg_inf": ("'-inf'::FLOAT", "-inf", "-inf", "-Infinity"),
    "null": ("NULL", "", "", None),
    "null_double": ("NULL::DOUBLE", "", "", None),
    "varchar": ("'héllo, \"world\"'", 'héllo, "world"', 'héllo, "world"', 'héllo, "world"'),
    "interval": (
        "INTERVAL 3 DAY + INTERVAL 5 MINUTE",
        "3 days 00:05:00",
        "3 days 00:05:00",
        "3 days 00:05:00",
    ),
    "interval_from_ts": (
        "TIMESTAMPTZ '2024-01-02 08:00:00+00' - TIMESTAMPTZ '2024-01-01 00:00:00+00'",
        "1 day 08:00:00",
        "1 day 08:00:00",
        "1 day 08:00:00",
    ),
    "time": ("TIME '12:34:56.5'", "12:34:56.5", "12:34:56.5", "12:34:56.5"),
    "timetz": ("TIMETZ '12:00:00+05'", "12:00:00+05", "12:00:00+05", "12:00:00+05"),
    "date": ("DATE '2024-02-29'", "2024-02-29", "2024-02-29", "2024-02-29"),
    "date_infinity": ("'infinity'::DATE", "infinity", "infinity", "infinity"),
    "timestamptz": (
        "TIMESTAMPTZ '2024-01-01 08:00:00+00'",
        "2024-01-01 08:00Z",
        "2024-01-01T08:00:00Z",
        "2024-01-01T08:00:00Z",
    ),
    "timestamptz_other_zone_in": (
        "TIMESTAMPTZ '2024-01-01 08:00:01.5+03'",
        "2024-01-01 05:00:01.5Z",
        "2024-01-01T05:00:01.5Z",
        "2024-01-01T05:00:01.5Z",
    ),
    "timestamp_naive": (
        "TIMESTAMP '2024-01-01 08:00:00'",
        "2024-01-01 08:00",
        "2024-01-01T08:00:00",
        "2024-01-01T08:00:00",
    ),
    "timestamp_ns": (
        "TIMESTAMP_NS '2024-01-01 00:00:01.123456789'",
        "2024-01-01 00:00:01.123456789",
        "2024-01-01T00:00:01.123456789",
        "2024-01-01T00:00:01.123456789",
    ),
    "timestamp_infinity": ("'infinity'::TIMESTAMP", "infinity", "infinity", "infinity"),
    "timestamptz_neg_infinity": (
        "'-infinity'::TIMESTAMPTZ",
        "-infinity",
        "-infinity",
        "-infinity",
    ),
    "year_0": (  # year 0 is 1 BC in the proleptic Gregorian calendar DuckDB uses
        "TIMESTAMP '0000-06-01 00:00:00'",
        "0001-06-01 (BC) 00:00:00",
        "0001-06-01 (BC) 00:00:00",
        "0001-06-01 (BC) 00:00:00",
    ),
    "year_10000": (
        "TIMESTAMPTZ '10000-01-01 00:00:00+00'",
        "10000-01-01 00:00Z",
        "10000-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
    ),
    "blob": ("'\\x00ab'::BLOB", "\\x00ab", "\\x00ab", "\\x00ab"),
    "bit": ("'101'::BIT", "101", "101", "101"),
    "uuid": (
        "'00000000-0000-0000-0000-000000000001'::UUID",
        "00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0000-000000000001",
    ),
    "enum": ("'b'::ENUM('a', 'b')", "b", "b", "b"),
    "union": ("union_value(k := 2)", "2", "2", {"k": 2}),
    "list": ("[1, 2, NULL]", "[1, 2, NULL]", "[1, 2, NULL]", [1, 2, None]),
    "list_of_nan": ("[1.5, 'nan'::DOUBLE]", "[1.5, nan]", "[1.5, nan]", [Decimal("1.5"), "NaN"]),
    "array": ("[1, 2]::INTEGER[2]", "[1, 2]", "[1, 2]", [1, 2]),
    "struct": (
        "{'x': 1.5, 'y': 'a'}",
        "{'x': 1.5, 'y': a}",
        "{'x': 1.5, 'y': a}",
        {"x": Decimal("1.5"), "y": "a"},
    ),  # fmt: skip
    "map": ("MAP {'k': [1]}", "{k=[1]}", "{k=[1]}", {"k": [1]}),
}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    return Lake(tmp_path_factory.mktemp("s") / "store")  # no store: every table is empty


def _render(lake: Lake, sql: str, fmt: str) -> str:
    return render(query_display(lake, sql), fmt, terminal=False)


@pytest.mark.parametrize("name", TYPES)
def test_every_duckdb_type_prints_exactly_in_table_csv_and_json(lake: Lake, name: str) -> None:
    expr, table_text, csv_text, json_value = TYPES[name]
    sql = f"SELECT {expr} AS x"

    table = _render(lake, sql, "table")
    cells = [line.strip("│┃ ") for line in table.splitlines() if line.startswith("│")]
    assert cells == [table_text], table

    rows = list(csv.reader(io.StringIO(_render(lake, sql, "csv"))))
    assert rows == [["x"], [csv_text]]

    parsed = json.loads(_render(lake, sql, "json"), parse_float=Decimal)["data"]
    assert parsed == [{"x": json_value}]


def test_nan_inf_and_null_are_distinguishable_in_every_format(lake: Lake) -> None:
    sql = "SELECT * FROM (VALUES (1, 'nan'::DOUBLE), (2, NULL), (3, 'inf'::DOUBLE)) t(k, v)"
    assert _render(lake, sql, "csv").splitlines() == ["k,v", "1,NaN", "2,", "3,inf"]
    assert json_data(_render(lake, sql, "json")) == [
        {"k": 1, "v": "NaN"},
        {"k": 2, "v": None},
        {"k": 3, "v": "Infinity"},
    ]


def test_interval_of_a_grouped_query_on_the_store_prints(tmp_path: Path) -> None:
    # the query of the bug report: max(ts) - min(ts) per venue is an INTERVAL
    from datetime import UTC, datetime, timedelta

    import polars as pl

    lake = Lake(tmp_path / "store")
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    lake.ingest(
        "funding",
        pl.DataFrame(
            {
                "venue": ["binance", "binance", "bybit"],
                "instrument": ["BTC-USDT-PERP"] * 3,
                "ts": [t0, t0 + timedelta(hours=16), t0],
                "rate": [0.0001, 0.0002, 0.0003],
                "interval_h": [8.0] * 3,
            }
        ),
    )
    sql = "SELECT venue, max(ts) - min(ts) AS span FROM funding GROUP BY venue ORDER BY venue"
    assert json_data(_render(lake, sql, "json")) == [
        {"venue": "binance", "span": "16:00:00"},
        {"venue": "bybit", "span": "00:00:00"},
    ]


def test_duplicate_column_names_keep_their_own_values(lake: Lake) -> None:
    assert _render(lake, "SELECT 1 AS a, 'x' AS a", "csv").splitlines() == ["a,a", "1,x"]


def test_pivot_without_an_in_list_runs(lake: Lake) -> None:
    sql = "PIVOT (SELECT * FROM (VALUES (1, 'x'), (2, 'y')) t(a, b)) ON b USING sum(a)"
    assert json_data(_render(lake, sql, "json")) == [{"x": 1, "y": 2}]


# --------------------------------------------------------------------------- screen safety


ESC = "SELECT chr(27) || '[2J' || chr(27) || ']0;pwned' || chr(7) || chr(155) || 'x' AS evil"


def test_table_output_escapes_control_characters_and_markup(lake: Lake) -> None:
    out = _render(lake, ESC + ", '[bold]b[/bold] [/]' AS markup", "table")
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\x9b" not in out
    assert "\\x1b[2J\\x1b]0;pwned\\x07\\x9bx" in out
    assert "[bold]b[/bold] [/]" in out  # shown as text, not taken as rich markup


def test_csv_to_a_file_or_pipe_keeps_data_and_json_escapes(lake: Lake) -> None:
    csv_out = _render(lake, ESC, "csv")
    assert csv_out.splitlines()[1] == "\x1b[2J\x1b]0;pwned\x07\x9bx"  # faithful data
    json_out = _render(lake, ESC, "json")
    assert "\x1b" not in json_out
    assert "\x9b" not in json_out
    assert json_data(json_out) == [{"evil": "\x1b[2J\x1b]0;pwned\x07\x9bx"}]


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env["TMPDIR"] = str(tmp)
    env.pop("PERPSCOPE_CONFIG", None)
    return env


@pytest.mark.slow
def test_csv_printed_to_a_terminal_is_escaped(tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perpscope",
            "--store",
            str(tmp_path / "s"),
            "sql",
            ESC,
            "--format",
            "csv",
        ],  # fmt: skip
        stdout=secondary,
        stderr=subprocess.PIPE,
        env=_env(tmp_path),
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the terminal closed: the command is done
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    _, err = proc.communicate(timeout=120)
    out = b"".join(chunks).decode()
    assert proc.returncode == 0, err
    assert "\x1b" not in out
    assert "\\x1b[2J\\x1b]0;pwned\\x07\\x9bx" in out


# --------------------------------------------------------------------------- limits


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-1", "3601"])
def test_bad_timeout_is_one_line_exit_2(lake: Lake, cli, value: str) -> None:  # type: ignore[no-untyped-def]
    res = cli("--store", str(lake.root), "sql", "SELECT 1", "--timeout", value)
    assert res.code == 2
    assert "--timeout" in res.err
    assert "Traceback" not in res.err
    assert res.err.strip().count("\n") <= 1  # the 'no store' note, then the error


@pytest.mark.parametrize(
    ("value", "reason"),
    [("99999999TB", "more than 80%"), ("0KB", "too small"), ("lots", "not a size")],
)
def test_bad_memory_limit_in_config_is_one_line_exit_2(
    tmp_path: Path,
    cli,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    reason: str,  # type: ignore[no-untyped-def]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[workbench]\nmemory_limit = "{value}"\n')
    monkeypatch.setenv("PERPSCOPE_CONFIG", str(config))
    res = cli("--store", str(tmp_path / "s"), "sql", "SELECT 1")
    assert res.code == 2
    assert "workbench.memory_limit" in res.err
    assert reason in res.err
    assert "Traceback" not in res.err


def test_update_extensions_is_refused_not_a_crash(lake: Lake, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("--store", str(lake.root), "sql", "UPDATE EXTENSIONS")
    assert res.code == 2
    assert "refused" in res.err
    assert "Traceback" not in res.err


@pytest.mark.slow
def test_an_uninterruptible_function_is_stopped_at_the_time_limit(lake: Lake, cli) -> None:  # type: ignore[no-untyped-def]
    # repeat() of 2 GB is one C++ call DuckDB cannot interrupt: only killing the process stops it
    res = cli("--store", str(lake.root), "sql", "SELECT length(repeat('x', 2000000000))",
              "--timeout", "1")  # fmt: skip
    assert res.code == 1
    assert "time limit of 1 s reached" in res.err
    assert "Traceback" not in res.err
    assert res.out == ""


@pytest.mark.slow
def test_the_time_limit_bounds_formatting_a_huge_result(lake: Lake, cli) -> None:  # type: ignore[no-untyped-def]
    # Five million rows cannot be fetched and laid out in a tenth of a second on any machine
    # (a quiet one does one million in under 2 s, so a 2 s limit was a timing bet): the limit
    # stops the command while the rows are fetched or formatted, and nothing partial is printed.
    res = cli("--store", str(lake.root), "sql", "SELECT range AS i, 'row ' || range AS s "
              "FROM range(5000000)", "--max-rows", "5000000", "--timeout", "0.1")  # fmt: skip
    assert res.code == 1, res.err
    assert "time limit of 0.1 s reached" in res.err
    assert "Traceback" not in res.err
    assert res.out == ""


@pytest.mark.slow
def test_the_row_cap_holds_end_to_end(lake: Lake, cli) -> None:  # type: ignore[no-untyped-def]
    res = cli("--store", str(lake.root), "sql", "SELECT range AS i FROM range(100)",
              "--max-rows", "7", "--format", "json")  # fmt: skip
    assert res.code == 0, res.err
    assert res.json() == [{"i": i} for i in range(7)]
    assert "capped at 7 rows" in res.err


# --------------------------------------------------------------------------- interrupts


@pytest.mark.slow
def test_ctrl_c_on_a_query_says_interrupted_and_exits_130(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perpscope",
            "--store",
            str(tmp_path / "s"),
            "sql",
            "SELECT count(*) FROM range(1000000000000) a, range(1000) b",
            "--timeout",
            "600",
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(tmp),
    )
    # the private spill directory exists once the command has reached its query: wait for it
    deadline = time.monotonic() + 300
    while not list(tmp.glob(f"{SPILL_PREFIX}*")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the query never started"
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    assert b"Traceback" not in err
    assert list(tmp.glob(f"{SPILL_PREFIX}*")) == []  # the spill directory went with it
