"""The Delta store: idempotent ingest, concurrent writers, crash safety, consistent readers."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from perpscope.domain.schema import TABLES
from perpscope.errors import DataContractError, StoreError
from perpscope.store.lake import Lake

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def funding_rows(
    start: int, n: int, *, rate: float = 0.0001, instrument: str = "BTC-USDT-PERP"
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "venue": ["binance"] * n,
            "instrument": [instrument] * n,
            "ts": [T0 + timedelta(hours=8 * (start + i)) for i in range(n)],
            "rate": [rate] * n,
            "interval_h": [8.0] * n,
        }
    )


def test_ingesting_the_same_batch_twice_changes_nothing(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "s")
    first = lake.ingest("funding", funding_rows(0, 100))
    version = DeltaTable(str(lake.table_path("funding"))).version()
    second = lake.ingest("funding", funding_rows(0, 100))
    assert (first.rows_written, second.rows_written) == (100, 0)
    assert DeltaTable(str(lake.table_path("funding"))).version() == version  # no new commit
    assert lake.read("funding").height == 100


def test_overlapping_batch_writes_only_new_keys_and_keeps_first_values(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "s")
    lake.ingest("funding", funding_rows(0, 10, rate=0.0001))
    result = lake.ingest("funding", funding_rows(5, 10, rate=0.0009))
    frame = lake.read("funding").sort("ts")
    assert result.rows_written == 5
    assert frame.height == 15
    assert frame["rate"].to_list() == [0.0001] * 10 + [0.0009] * 5


def test_duplicate_keys_within_a_batch_keep_the_last(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "s")
    batch = pl.concat([funding_rows(0, 3, rate=0.1 / 1000), funding_rows(0, 3, rate=0.2 / 1000)])
    assert lake.ingest("funding", batch).rows_written == 3
    assert lake.read("funding")["rate"].to_list() == [0.0002] * 3


def test_same_time_on_other_instruments_and_sources_are_different_keys(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "s")
    lake.ingest("funding", funding_rows(0, 5, instrument="BTC-USDT-PERP"))
    assert lake.ingest("funding", funding_rows(0, 5, instrument="ETH-USDT-PERP")).rows_written == 5
    oi = pl.DataFrame(
        {
            "venue": ["binance"] * 2,
            "instrument": ["BTC-USDT-PERP"] * 2,
            "source": ["snapshot", "hist_5m"],
            "ts": [T0, T0],
            "oi_value": [1.0, 2.0],
            "oi_unit": ["base", "base"],
        }
    )
    assert lake.ingest("open_interest", oi).rows_written == 2  # sources never overwrite


def test_missing_required_column_null_key_and_naive_time_are_refused(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "s")
    with pytest.raises(DataContractError, match="required column 'rate'"):
        lake.ingest("funding", funding_rows(0, 2).drop("rate"))
    with pytest.raises(DataContractError, match="null"):
        lake.ingest("funding", funding_rows(0, 2).with_columns(venue=pl.lit(None, pl.String)))
    naive = funding_rows(0, 2).with_columns(pl.col("ts").dt.replace_time_zone(None))
    with pytest.raises(DataContractError, match="naive"):
        lake.ingest("funding", naive)
    assert not lake.has_table("funding")


def test_every_table_is_stored_with_the_schema_of_domain_schema_and_ingest_is_idempotent(
    tmp_path: Path,
) -> None:
    lake = Lake(tmp_path / "s")
    for name, spec in TABLES.items():
        row = {}
        for col in spec.columns:
            if pa.types.is_timestamp(col.type):
                row[col.name] = pa.array([T0], type=col.type)
            elif pa.types.is_string(col.type):
                # a value the column's rules accept: its first choice, a period, or any text
                text = col.choices[0] if col.choices else "1h" if col.pattern else "x"
                row[col.name] = pa.array([text], type=col.type)
            elif pa.types.is_boolean(col.type):
                row[col.name] = pa.array([True])
            else:
                row[col.name] = pa.array([1], type=col.type)
        lake.ingest(name, pa.table(row))
        version = DeltaTable(str(lake.table_path(name))).version()
        assert lake.ingest(name, pa.table(row)).rows_written == 0, name  # idempotent on every table
        assert DeltaTable(str(lake.table_path(name))).version() == version, name
    for name, spec in TABLES.items():
        stored = DeltaTable(str(lake.table_path(name))).to_pyarrow_dataset().schema
        assert [(f.name, f.type) for f in stored] == [(f.name, f.type) for f in spec.schema], name
        assert [f.nullable for f in stored] == [f.nullable for f in spec.schema], name


def test_schema_keys_are_columns_and_never_nullable() -> None:
    for spec in TABLES.values():
        for key in spec.key:
            assert not spec.column(key).nullable, f"{spec.name}.{key}"
        if spec.time_column:
            assert pa.types.is_timestamp(spec.column(spec.time_column).type)
            assert spec.column(spec.time_column).type.tz == "UTC"


def test_unwritable_store_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot write store"):
        Lake(blocker / "store").ingest("funding", funding_rows(0, 1))


def test_corrupt_table_is_a_store_error(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "s")
    lake.ingest("funding", funding_rows(0, 3))
    log = lake.table_path("funding") / "_delta_log" / "00000000000000000000.json"
    log.write_text("{not json")
    with pytest.raises(StoreError, match="unreadable"):
        lake.read("funding")


def test_optimize_compacts_small_files_and_keeps_every_row(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "s")
    for i in range(6):
        lake.ingest("funding", funding_rows(i * 10, 10))
    before = DeltaTable(str(lake.table_path("funding"))).file_uris()
    report = lake.optimize(retention_h=0)
    after = DeltaTable(str(lake.table_path("funding"))).file_uris()
    assert len(before) == 6
    assert len(after) == 1
    assert report["funding"]["files_removed"] == 6
    assert report["funding"]["files_vacuumed"] == 6
    assert lake.read("funding").height == 60
    parquet_on_disk = list(lake.table_path("funding").glob("*.parquet"))
    assert len(parquet_on_disk) == 1


# --------------------------------------------------------------------------- across processes

_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    import polars as pl
    from pathlib import Path
    from perpscope.store.lake import Lake

    root, tag = sys.argv[1], float(sys.argv[5])
    start, batches, size = (int(a) for a in sys.argv[2:5])
    mode = sys.argv[6] if len(sys.argv) > 6 else ""
    lake = Lake(Path(root))
    t0 = datetime(2020, 1, 1, tzinfo=UTC)  # one row a second: 100M rows end in 2023, in the past
    for b in range(batches):
        first = start + b * size
        frame = pl.DataFrame({
            "venue": ["binance"] * size,
            "instrument": ["BTC-USDT-PERP"] * size,
            "ts": pl.datetime_range(
                t0 + timedelta(seconds=first), t0 + timedelta(seconds=first + size - 1),
                "1s", eager=True, time_zone="UTC",
            ),
            "rate": [tag + b] * size,
            "interval_h": [8.0] * size,
        })
        if mode.startswith("fsize:") and b == int(mode.split(":")[1]):
            # from here on no file may grow past 64 KiB: the kernel kills this process with
            # SIGXFSZ at the first write beyond it, which is inside the next data file
            import resource, signal
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it by default
            resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
            print("armed", flush=True)
        print("writing", b, flush=True)
        lake.ingest("funding", frame)
        if mode == "stepped":  # wait for the test's go-ahead before the next batch
            print("committed", b + 1, flush=True)
            sys.stdin.readline()
    print("done", flush=True)
    """
)


def _writer(
    root: Path, start: int, batches: int, size: int, tag: float, mode: str = ""
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            _WRITER,
            str(root),
            str(start),
            str(batches),
            str(size),
            str(tag),
            mode,
        ],  # fmt: skip
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_two_processes_ingesting_overlapping_keys_at_once_leave_no_duplicate(
    tmp_path: Path,
) -> None:
    root = tmp_path / "s"
    # Both writers cover seconds 0..5999 in 30 batches of 200, with different rates: every key is
    # contested, so a read-check-then-append without a lock would duplicate.
    procs = [_writer(root, 0, 30, 200, 1.0), _writer(root, 0, 30, 200, 100.0)]
    for p in procs:
        assert p.wait(timeout=300) == 0
    frame = Lake(root).read("funding")
    assert frame.height == 6000
    assert frame.select(pl.col("ts").n_unique()).item() == 6000


@pytest.mark.slow
def test_writer_killed_mid_ingest_leaves_no_partial_batch(tmp_path: Path) -> None:
    root = tmp_path / "s"
    size = 200_000
    lake = Lake(root)
    table_dir = lake.table_path("funding")
    # The writer commits batches 0 and 1, then limits its file size: the kernel kills it with
    # SIGXFSZ in the middle of writing batch 2's data file, before that batch can be committed.
    # No race: the kill lands at the same point of every run.
    proc = _writer(root, 0, 4, size, 0.0, mode="fsize:2")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGXFSZ, out
    assert out.splitlines()[-2:] == ["armed", "writing 2"]
    referenced = {Path(u).name for u in DeltaTable(str(table_dir)).file_uris()}
    on_disk = {p.name for p in table_dir.iterdir() if p.is_file()}
    assert len(referenced) == 2
    assert on_disk - referenced, "no partial data file: the kill did not land inside a write"
    frame = lake.read("funding")
    assert frame.height == 2 * size  # whole batches only
    assert sorted(frame.group_by("rate").len()["len"].to_list()) == [size, size]
    assert frame.select(pl.col("ts").n_unique()).item() == frame.height
    # the lock died with the writer: a new ingest goes through
    assert lake.ingest("funding", funding_rows(0, 1, instrument="ETH-USDT-PERP")).rows_written == 1


_READER = textwrap.dedent(
    """
    import select, sys
    from pathlib import Path
    from perpscope.store.lake import Lake
    from perpscope.store.query import run_query

    lake, size = Lake(Path(sys.argv[1])), int(sys.argv[2])

    def read():
        if not lake.has_table("funding"):
            return 0
        query = "SELECT rate, count(*) AS n FROM funding GROUP BY rate"
        rows = run_query(lake, query).table.to_pylist()
        for row in rows:
            if row["n"] != size:
                print("INCONSISTENT", row, flush=True)
                sys.exit(1)
        return sum(row["n"] for row in rows)

    reads = 0
    while True:  # read continuously, also while the writer writes; answer the test's requests
        read()
        reads += 1
        if select.select([sys.stdin], [], [], 0)[0]:
            request = sys.stdin.readline().strip()
            if request == "stop":
                break
            print("seen", read(), flush=True)  # a read that began after the request
    print("reads", reads, flush=True)
    """
)


@pytest.mark.slow
def test_reader_process_sees_only_whole_batches_while_another_process_writes(
    tmp_path: Path,
) -> None:
    root = tmp_path / "s"
    size, batches = 5_000, 20
    writer = _writer(root, 0, batches, size, 0.0, mode="stepped")
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(root), str(size)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None
    assert writer.stdout is not None
    assert reader.stdin is not None
    assert reader.stdout is not None
    seen = []
    for k in range(1, batches + 1):
        # the writer has committed batch k and waits; the reader must see exactly k batches
        while (line := writer.stdout.readline()).startswith("writing"):
            pass
        assert line.split() == ["committed", str(k)], line
        reader.stdin.write("sync\n")
        reader.stdin.flush()
        answer = reader.stdout.readline().split()
        assert answer[0] == "seen", answer
        seen.append(int(answer[1]))
        writer.stdin.write("go\n")
        writer.stdin.flush()
    reader.stdin.write("stop\n")
    reader.stdin.flush()
    out, _ = reader.communicate(timeout=120)
    assert writer.wait(timeout=120) == 0
    assert reader.returncode == 0, out  # no read, during or between writes, saw a partial batch
    assert seen == [k * size for k in range(1, batches + 1)]
    assert Lake(root).read("funding").height == batches * size


def test_info_from_log_statistics_equals_a_full_scan(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "s")
    lake.ingest("funding", funding_rows(0, 50))
    lake.ingest("funding", funding_rows(100, 20, instrument="ETH-USDT-PERP"))
    lake.ingest("funding", funding_rows(40, 30))  # 20 new rows, a third file
    (info,) = lake.info()
    frame = lake.read("funding")  # independent: scan every row
    assert info.rows == frame.height == 90
    assert info.first_ts == frame["ts"].min()
    assert info.last_ts == frame["ts"].max()
    assert info.files == 3
    assert info.version == 2


_INIT_RACE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from perpscope.store.lake import Lake
    start = float(sys.argv[2])
    while time.time() < start:
        pass
    for k in range(300):
        Lake(Path(sys.argv[1]) / str(k)).init()
    """
)


@pytest.mark.slow
def test_processes_creating_the_same_store_at_once_all_succeed(tmp_path: Path) -> None:
    # Regression: a shared temp-file name for the marker made one creator fail with ENOENT.
    # Six processes create the same 300 stores in the same order, at the same moment.
    for attempt in range(2):
        root = tmp_path / f"s{attempt}"
        start = time.time() + 1.0
        procs = [
            subprocess.Popen([sys.executable, "-c", _INIT_RACE, str(root), str(start)])
            for _ in range(6)
        ]
        assert [p.wait(timeout=60) for p in procs] == [0] * 6
        for k in range(300):
            assert Lake(root / str(k)).marker() == {"format": 1, "demo": False}
            assert [p.name for p in (root / str(k)).iterdir() if p.name.endswith(".tmp")] == []


# --------------------------------------------------------------------------- refused values


def _valid_row(spec_name: str) -> dict[str, pa.Array]:
    """One row every rule of the table accepts (the rules are written out in docs/store.md)."""
    row: dict[str, pa.Array] = {}
    for col in TABLES[spec_name].columns:
        if pa.types.is_timestamp(col.type):
            row[col.name] = pa.array([T0], type=col.type)
        elif pa.types.is_string(col.type):
            text = col.choices[0] if col.choices else "1h" if col.pattern else "x"
            row[col.name] = pa.array([text], type=col.type)
        elif pa.types.is_boolean(col.type):
            row[col.name] = pa.array([True])
        else:
            row[col.name] = pa.array([1], type=col.type)
    return row


def _with(row: dict[str, pa.Array], name: str, value: object) -> pa.Table:
    changed = dict(row)
    changed[name] = pa.array([value], type=row[name].type)
    return pa.table(changed)


@pytest.mark.parametrize("table", list(TABLES))
def test_every_table_refuses_nan_inf_and_impossible_timestamps_naming_the_column(
    tmp_path: Path, table: str
) -> None:
    lake = Lake(tmp_path / "s")
    row = _valid_row(table)
    spec = TABLES[table]
    cases: list[tuple[str, object]] = []
    for col in spec.columns:
        if pa.types.is_floating(col.type):
            cases += [(col.name, float("nan")), (col.name, float("inf")), (col.name, -math.inf)]
        elif pa.types.is_timestamp(col.type):
            # mixed seconds/milliseconds land on 1970; 1900 is a typo; and beyond the horizon
            far = datetime(2100, 1, 2, tzinfo=UTC) if col.horizon == "schedule" else None
            far = far or datetime.now(UTC) + timedelta(days=30)
            cases += [
                (col.name, datetime(1970, 1, 21, tzinfo=UTC)),
                (col.name, datetime(1900, 1, 1, tzinfo=UTC)),
                (col.name, datetime(2009, 1, 2, 23, 59, tzinfo=UTC)),
                (col.name, far),
            ]
    assert cases, table
    for name, value in cases:
        with pytest.raises(DataContractError, match=f"row 1: {name} ") as err:
            lake.ingest(table, _with(row, name, value))
        assert "nothing was written" in str(err.value)
    assert not lake.has_table(table)  # not one of them reached the store
    assert lake.ingest(table, pa.table(row)).rows_written == 1  # the valid row does


@pytest.mark.parametrize(
    ("table", "column", "value", "why"),
    [
        ("funding", "interval_h", 0.5, "must be in [1, 24]"),
        ("funding", "interval_h", 25.0, "must be in [1, 24]"),
        ("funding", "interval_h", 1e300, "must be in [1, 24]"),
        ("funding", "interval_h", 1e-7, "must be in [1, 24]"),
        ("funding", "interval_h", 0.0, "must be in [1, 24]"),
        ("funding", "mark_px", 0.0, "must be > 0"),
        ("funding_snapshot", "interval_h", -8.0, "must be in [1, 24]"),
        ("instruments", "funding_interval_h", 48.0, "must be in [1, 24]"),
        ("ohlcv", "o", -1.0, "must be > 0 (unless kind is premium)"),
        ("ohlcv", "volume", -1.0, "must be >= 0"),
        ("ohlcv", "timeframe", "0m", "is not a period"),
        ("ohlcv", "timeframe", "1x", "is not a period"),
        ("ohlcv", "kind", "last", "is not trade | mark | index | premium"),
        ("open_interest", "oi_value", -5.0, "must be >= 0"),
        ("open_interest", "oi_unit", "btc", "is not contracts | base | usd"),
        ("long_short", "long_frac", 1.5, "must be in [0, 1]"),
        ("liquidations", "side", "buy", "is not long | short"),
        ("options_snapshot", "option_type", "X", "is not C | P"),
        ("options_snapshot", "strike_px", 0.0, "must be > 0"),
        ("leverage_tiers", "mmr", 2.0, "must be in [0, 1]"),
    ],
)
def test_domain_impossible_values_are_refused_with_column_and_rule(
    tmp_path: Path, table: str, column: str, value: object, why: str
) -> None:
    lake = Lake(tmp_path / "s")
    with pytest.raises(DataContractError) as err:
        lake.ingest(table, _with(_valid_row(table), column, value))
    assert f"row 1: {column} " in str(err.value)
    assert why in str(err.value)
    assert not lake.has_table(table)


def test_premium_candles_may_be_negative_and_the_bad_row_is_named_by_its_index(
    tmp_path: Path,
) -> None:
    lake = Lake(tmp_path / "s")
    row = _valid_row("ohlcv")
    premium = dict(row)
    premium["kind"] = pa.array(["premium"])
    premium["o"] = premium["l"] = pa.array([-0.0002])  # premium index below zero: allowed
    premium["h"] = premium["c"] = pa.array([0.0001])
    premium = pa.table(premium)
    assert lake.ingest("ohlcv", premium).rows_written == 1
    rows = pa.concat_tables(
        [pa.table(row), _with(row, "ts", T0 + timedelta(hours=1)), _with(row, "c", math.nan)]
    )
    with pytest.raises(DataContractError, match=r"1 of 3 rows .* row 3: c nan is not a finite"):
        lake.ingest("ohlcv", rows)


def test_replace_overwrites_the_batch_keys_in_one_commit_and_inserts_the_rest(
    tmp_path: Path,
) -> None:
    lake = Lake(tmp_path / "s")
    lake.ingest("funding", funding_rows(0, 10, rate=0.0001))
    lake.ingest("funding", funding_rows(0, 10, rate=0.0003, instrument="ETH-USDT-PERP"))
    before = DeltaTable(str(lake.table_path("funding"))).version()
    result = lake.ingest("funding", funding_rows(5, 10, rate=0.0002), replace=True)
    assert DeltaTable(str(lake.table_path("funding"))).version() == before + 1  # one commit
    assert (result.rows_written, result.rows_replaced, result.rows_skipped) == (5, 5, 0)
    btc = lake.read("funding").filter(pl.col("instrument") == "BTC-USDT-PERP").sort("ts")
    assert btc["rate"].to_list() == [0.0001] * 5 + [0.0002] * 10
    eth = lake.read("funding").filter(pl.col("instrument") == "ETH-USDT-PERP")
    assert eth["rate"].to_list() == [0.0003] * 10  # another instrument's same times untouched
    # replacing refuses bad values like any write, and then writes nothing
    with pytest.raises(DataContractError):
        lake.ingest("funding", funding_rows(0, 2, rate=math.inf), replace=True)
    assert DeltaTable(str(lake.table_path("funding"))).version() == before + 1


def test_delete_removes_one_instrument_in_a_time_range_in_one_commit(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "s")
    lake.ingest("funding", funding_rows(0, 12))  # T0 + 0h, 8h, ..., 88h
    lake.ingest("funding", funding_rows(0, 12, instrument="ETH-USDT-PERP"))
    before = DeltaTable(str(lake.table_path("funding"))).version()
    since, until = T0 + timedelta(hours=16), T0 + timedelta(hours=48)
    result = lake.delete(
        "funding", venue="binance", instrument="BTC-USDT-PERP", since=since, until=until
    )
    # by hand: 16, 24, 32, 40 are in [16h, 48h); 48 is not
    assert result.rows_deleted == 4
    assert result.version == before + 1
    btc = lake.read("funding").filter(pl.col("instrument") == "BTC-USDT-PERP")
    hours = sorted(int((t - T0).total_seconds() // 3600) for t in btc["ts"].to_list())
    assert hours == [0, 8, 48, 56, 64, 72, 80, 88]
    assert lake.read("funding").filter(pl.col("instrument") == "ETH-USDT-PERP").height == 12
    # nothing matches: no commit
    none = lake.delete("funding", venue="okx", instrument="BTC-USDT-PERP")
    assert (none.rows_deleted, none.version) == (0, before + 1)
    # a quote in a value cannot escape the predicate
    odd = lake.delete("funding", venue="binance' OR '1'='1", instrument="BTC-USDT-PERP")
    assert odd.rows_deleted == 0
    assert lake.read("funding").height == 20
    whole = lake.delete("funding", venue="binance", instrument="ETH-USDT-PERP")
    assert whole.rows_deleted == 12
    assert lake.read("funding").height == 8
