"""Importing public files: real files from ../shared/data and hand-made edge cases."""

from __future__ import annotations

import csv
import gzip
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpscope.errors import BadInputError, BadRowsError, ConflictingRowsError, UsageError
from perpscope.services.importer import (
    FileOptions,
    import_funding,
    import_ohlcv,
    import_open_interest,
    infer_intervals,
)
from perpscope.store.lake import Lake
from tests.conftest import require_shared

SUPERVIK_BTC = "funding/supervik_BTC-USDT_binance_2020-01-01_2024-01-01_funding_history.csv.gz"
ETH_PERP_1H = "candles/tjf_binance_perp_ETHUSDT_1h_2020-2026.csv.gz"


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.mark.shared_data
def test_supervik_binance_btc_funding_imports_4383_settlements_from_utc_plus_3(
    tmp_path: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    src = require_shared(SUPERVIK_BTC)
    args = [
        "--store",
        str(tmp_path / "s"),
        "import",
        "funding",
        str(src),
        "--venue",
        "binance",
        "--instrument",
        "BTC-USDT-PERP",
        "--ts-col",
        "Date",
        "--value-col",
        "Funding Rate",
        "--ts-unit",
        "iso",
        "--tz-offset-h",
        "3",
        "--format",
        "json",
    ]
    first = cli(*args)
    assert first.code == 0, first.err
    assert first.json()["rows_written"] == 4383
    lake = Lake(tmp_path / "s")
    stored = lake.read("funding").sort("ts")
    # Independent check: the file's first row is "2020-01-01 03:00:00.000" in UTC+3.
    with gzip.open(src, "rt") as f:
        raw = list(csv.DictReader(f))
    assert len(raw) == 4383
    assert raw[0]["Date"].startswith("2020-01-01 03:00")
    assert stored.height == 4383
    assert stored["ts"][0] == datetime(2020, 1, 1, 0, 0, tzinfo=UTC)
    assert stored["rate"][0] == pytest.approx(-0.00012359)
    assert stored["interval_h"][0] == 8.0
    assert set(stored["interval_h"].to_list()) == {8.0}
    # every settlement lands on a whole minute of 00/08/16 UTC
    assert set(stored["ts"].dt.hour().unique().to_list()) == {0, 8, 16}
    version = lake.info()[0].version
    again = cli(*args)
    assert again.code == 0
    assert again.json()["rows_written"] == 0
    assert again.json()["rows_already_stored"] == 4383
    assert lake.read("funding").sort("ts").equals(stored)  # the rows stored by the first run
    assert lake.info()[0].version == version


@pytest.mark.shared_data
def test_eth_perp_candles_import_as_53308_hourly_bars(tmp_path: Path) -> None:
    src = require_shared(ETH_PERP_1H)
    lake = Lake(tmp_path / "s")
    report = import_ohlcv(
        lake,
        src,
        venue="binance",
        instrument="ETH-USDT-PERP",
        timeframe="1h",
        kind="trade",
        opts=FileOptions(),
    )
    assert report.rows_written == 53308
    bars = lake.read("ohlcv").sort("ts")
    assert bars.height == 53308
    # independent check against the raw file: first bar 2020-03-01 00:00 UTC, o=217.37 h=221.46
    assert bars.row(0, named=True)["ts"] == datetime(2020, 3, 1, tzinfo=UTC)
    assert (bars["o"][0], bars["h"][0], bars["l"][0], bars["c"][0]) == (
        217.37,
        221.46,
        217.07,
        218.59,
    )
    diffs = bars["ts"].diff().drop_nulls().dt.total_hours().unique().to_list()
    assert diffs == [1]


@pytest.mark.shared_data
def test_parquet_file_with_a_symbol_filter_and_interval_column(tmp_path: Path) -> None:
    src = require_shared("funding/zushen_bybit_funding_2025-08_2026-08.parquet")
    raw = pl.read_parquet(src).filter(pl.col("venue_symbol") == "ETHUSDT")
    lake = Lake(tmp_path / "s")
    report = import_funding(
        lake,
        src,
        venue="bybit",
        instrument="ETH-USDT-PERP",
        opts=FileOptions(ts_col="settlement_ts", filters=(("venue_symbol", "ETHUSDT"),)),
        value_col="rate_raw",
        interval_col="interval_hours",
    )
    assert report.rows_written == raw.height == 1095
    stored = lake.read("funding").sort("ts")
    assert stored["rate"].to_list() == raw.sort("settlement_ts")["rate_raw"].to_list()


def test_bad_rows_are_reported_with_line_numbers_and_nothing_is_written(tmp_path: Path) -> None:
    f = _write_csv(
        tmp_path / "f.csv",
        ["time", "rate"],
        [
            ["2024-01-01T00:00:00Z", "0.0001"],
            ["not a time", "0.0001"],  # line 3
            ["2024-01-01T16:00:00Z", "abc"],  # line 4
            ["2024-01-02T00:00:00Z", "0.05"],  # line 5: percent, not a fraction
            ["2024-01-02T08:00:00Z", "0.0002"],
        ],
    )
    lake = Lake(tmp_path / "s")
    with pytest.raises(BadRowsError) as err:
        import_funding(
            lake, f, venue="gate", instrument="BTC-USDT-PERP", opts=FileOptions(), interval_h=8
        )
    assert [(b.line, b.reason.split()[0]) for b in err.value.bad] == [
        (3, "unparsable"),
        (4, "rate"),
    ] + [(5, "|rate|")]
    assert "line 3" in str(err.value)
    assert "nothing was written" in str(err.value)
    assert not lake.has_table("funding")
    report = import_funding(
        lake,
        f,
        venue="gate",
        instrument="BTC-USDT-PERP",
        opts=FileOptions(skip_bad=True),
        interval_h=8,
    )
    assert (report.rows_written, report.rows_bad) == (2, 3)


def test_interval_is_inferred_per_row_when_a_file_changes_interval(tmp_path: Path) -> None:
    # 8h settlements, then the venue moves the symbol to 4h, with one missing 4h settlement
    times = [
        "2024-01-01 00:00",
        "2024-01-01 08:00",
        "2024-01-01 16:00",
        "2024-01-01 20:00",
        "2024-01-02 00:00",
        "2024-01-02 08:00",
        "2024-01-02 12:00",
    ]
    f = _write_csv(tmp_path / "f.csv", ["ts", "rate"], [[t, "0.0001"] for t in times])
    lake = Lake(tmp_path / "s")
    report = import_funding(lake, f, venue="okx", instrument="ETH-USDT-PERP", opts=FileOptions())
    stored = lake.read("funding").sort("ts")
    # by hand, from the rule "a row's interval is the spacing to the previous settlement when it
    # is 1, 2, 4 or 8 h; the first row takes the next spacing":
    #   00:00 -> 8 (next spacing), 08:00 -> 8, 16:00 -> 8, 20:00 -> 4, 00:00 -> 4,
    #   08:00 -> 8 (the missing 04:00 makes an 8h spacing, itself an allowed interval), 12:00 -> 4
    assert stored["interval_h"].to_list() == [8.0, 8.0, 8.0, 4.0, 4.0, 8.0, 4.0]
    assert report.notes == []


def test_irregular_spacing_carries_the_last_interval_forward() -> None:
    ts = pl.Series(
        [datetime(2024, 1, 1, h, tzinfo=UTC) for h in (0, 8, 16)]
        + [datetime(2024, 1, 1, 21, tzinfo=UTC), datetime(2024, 1, 2, 0, tzinfo=UTC)]
    )
    intervals, irregular = infer_intervals(ts)
    # 0->8->16 are 8h; 16->21 is 5h (off-schedule) and 21->24 is 3h: both keep 8
    assert intervals.to_list() == [8.0, 8.0, 8.0, 8.0, 8.0]
    assert irregular == 2


def test_millisecond_jitter_is_snapped_to_the_minute_and_seconds_unit(tmp_path: Path) -> None:
    f = _write_csv(
        tmp_path / "f.csv",
        ["fundingTime", "fundingRate"],
        [[1704067200002, "0.0001"], [1704096000001, "0.0002"]],
    )
    lake = Lake(tmp_path / "s")
    import_funding(lake, f, venue="binance", instrument="BTC-USDT-PERP", opts=FileOptions())
    ts = lake.read("funding").sort("ts")["ts"].to_list()
    assert ts == [datetime(2024, 1, 1, 0, 0, tzinfo=UTC), datetime(2024, 1, 1, 8, 0, tzinfo=UTC)]
    g = _write_csv(
        tmp_path / "g.csv", ["ts", "rate"], [[1704067200, "0.0001"], [1704096000, "0.0001"]]
    )
    import_funding(lake, g, venue="gate", instrument="BTC-USDT-PERP", opts=FileOptions(ts_unit="s"))
    gate = lake.read("funding").filter(pl.col("venue") == "gate")
    assert gate["ts"].min() == datetime(2024, 1, 1, tzinfo=UTC)


def test_ohlcv_validation_catches_impossible_bars(tmp_path: Path) -> None:
    f = _write_csv(
        tmp_path / "c.csv",
        ["timestamp", "open", "high", "low", "close", "volume"],
        [
            [1704067200000, 10, 12, 9, 11, 5],
            [1704070800000, 10, 9, 8, 9.5, 5],  # high below open
            [1704074400000, 10, 12, 9, 11, -1],  # negative volume
        ],
    )
    with pytest.raises(BadRowsError, match="line 3: high is below"):
        import_ohlcv(
            Lake(tmp_path / "s"),
            f,
            venue="binance",
            instrument="BTC-USDT",
            timeframe="1h",
            kind="trade",
            opts=FileOptions(),
        )


def test_open_interest_import_records_unit_and_source(tmp_path: Path) -> None:
    f = _write_csv(
        tmp_path / "oi.csv",
        ["timestamp", "sum_open_interest_value"],
        [[1771560000000, "5419496040.18"]],
    )
    lake = Lake(tmp_path / "s")
    import_open_interest(
        lake,
        f,
        venue="binance",
        instrument="BTC-USDT-PERP",
        unit="usd",
        opts=FileOptions(),
        value_col="sum_open_interest_value",
    )
    row = lake.read("open_interest").row(0, named=True)
    assert (row["source"], row["oi_unit"], row["oi_usd"], row["oi_base"]) == (
        "import",
        "usd",
        5419496040.18,
        None,
    )


def test_usage_errors_name_what_is_wrong(tmp_path: Path) -> None:
    f = _write_csv(tmp_path / "f.csv", ["when", "x"], [["2024-01-01", "1"]])
    lake = Lake(tmp_path / "s")
    with pytest.raises(UsageError, match="no timestamp column found"):
        import_funding(
            lake, f, venue="gate", instrument="BTC-USDT-PERP", opts=FileOptions(), interval_h=8
        )
    with pytest.raises(UsageError, match="unknown instrument"):
        import_funding(lake, f, venue="gate", instrument="BTCUSDT", opts=FileOptions())
    with pytest.raises(UsageError, match="funding applies to perpetuals"):
        import_funding(lake, f, venue="gate", instrument="BTC-USDT", opts=FileOptions())
    with pytest.raises(UsageError, match="no such file"):
        import_funding(
            lake,
            tmp_path / "missing.csv",
            venue="gate",
            instrument="BTC-USDT-PERP",
            opts=FileOptions(),
        )
    with pytest.raises(UsageError, match="--filter column 'sym'"):
        import_funding(
            lake,
            f,
            venue="gate",
            instrument="BTC-USDT-PERP",
            opts=FileOptions(ts_col="when", filters=(("sym", "BTC"),)),
            value_col="x",
        )


# --------------------------------------------------------------------------- open interest units

GRAVESTONE_BTC_OI_4H = "open_interest/gravestone_binance_BTCUSDT_oi_4h.csv.gz"


def _raw_oi(src: Path) -> list[dict[str, str]]:
    with gzip.open(src, "rt") as f:
        return list(csv.DictReader(f))


@pytest.mark.shared_data
def test_oi_in_usd_takes_the_value_column_never_the_btc_column(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    src = require_shared(GRAVESTONE_BTC_OI_4H)
    raw = _raw_oi(src)
    store = str(tmp_path / "s")
    base = ["--store", store, "import", "open-interest", str(src), "--venue", "binance"]
    res = cli(*base, "--instrument", "BTC-USDT-PERP", "--unit", "usd", "--format", "json")
    assert res.code == 0, res.err
    stored = Lake(tmp_path / "s").read("open_interest").sort("ts")
    # independent: the file's own sum_open_interest_value column, row by row (about $5.4B, not
    # the 80,486 BTC of sum_open_interest)
    assert stored["oi_usd"].to_list() == [float(r["sum_open_interest_value"]) for r in raw]
    assert stored["oi_usd"].min() > 1e9
    # base units: both columns could be base (COIN-M's value column is in coin): refuse, list both
    res = cli(*base, "--instrument", "ETH-USDT-PERP", "--unit", "base")
    assert res.code == 2
    assert "Traceback" not in res.err
    line = res.err.strip()
    assert "\n" not in line
    assert "sum_open_interest (base or contracts)" in line
    assert "sum_open_interest_value (usd or base)" in line
    assert "--value-col" in line
    assert (
        not Lake(tmp_path / "s")
        .read("open_interest")
        .filter(pl.col("instrument") == "ETH-USDT-PERP")
        .height
    )


def test_oi_unit_that_no_column_name_allows_is_refused(tmp_path: Path) -> None:
    f = _write_csv(
        tmp_path / "oi.csv", ["timestamp", "sum_open_interest_value"], [[1771560000000, "5.4e9"]]
    )
    with pytest.raises(
        UsageError,
        match=r"no open-interest column looks like contracts: "
        r"sum_open_interest_value \(usd or base\)",
    ):
        import_open_interest(
            Lake(tmp_path / "s"),
            f,
            venue="binance",
            instrument="BTC-USDT-PERP",
            unit="contracts",
            opts=FileOptions(),
        )


@pytest.mark.shared_data
def test_a_wrong_import_is_corrected_by_replace_or_by_store_delete(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    src = require_shared(GRAVESTONE_BTC_OI_4H)
    raw = _raw_oi(src)
    usd = [float(r["sum_open_interest_value"]) for r in raw]
    store = str(tmp_path / "s")
    args = [
        "--store",
        store,
        "import",
        "open-interest",
        str(src),
        "--venue",
        "binance",
        "--instrument",
        "BTC-USDT-PERP",
        "--unit",
        "usd",
        "--format",
        "json",
    ]
    # the wrong import of the issue, now only possible by naming the BTC column explicitly
    wrong = cli(*args, "--value-col", "sum_open_interest")
    assert wrong.code == 0, wrong.err
    lake = Lake(tmp_path / "s")
    assert lake.read("open_interest")["oi_usd"].max() < 1e6  # BTC counts stored as USD
    plain = cli(*args, "--value-col", "sum_open_interest_value")
    assert (plain.json()["rows_written"], plain.json()["rows_already_stored"]) == (0, 168)
    version = lake.info()[0].version
    fixed = cli(*args, "--value-col", "sum_open_interest_value", "--replace")
    assert fixed.code == 0, fixed.err
    report = fixed.json()
    assert (report["rows_replaced"], report["rows_written"]) == (168, 0)
    assert lake.info()[0].version == version + 1  # one atomic commit
    assert lake.read("open_interest").sort("ts")["oi_usd"].to_list() == usd
    # the other way: delete the instrument's rows (one commit), then import again
    gone = cli(
        "--store",
        store,
        "store",
        "delete",
        "--table",
        "open_interest",
        "--venue",
        "binance",
        "--instrument",
        "BTC-USDT-PERP",
        "--format",
        "json",
    )
    assert gone.code == 0, gone.err
    assert gone.json()["rows_deleted"] == 168
    assert lake.read("open_interest").height == 0
    again = cli(*args)
    assert again.json()["rows_written"] == 168
    assert lake.read("open_interest").sort("ts")["oi_usd"].to_list() == usd


def test_store_delete_refuses_unknown_tables_and_bad_times_in_one_line(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    store = str(tmp_path / "s")
    Lake(tmp_path / "s").init()
    base = ["--store", store, "store", "delete", "--venue", "binance", "--instrument", "X"]
    for extra, words in [
        (["--table", "fundings"], "unknown table 'fundings'"),
        (["--table", "funding", "--since", "yesterday"], "bad --since 'yesterday'"),
        (
            ["--table", "funding", "--since", "2024-02-01", "--until", "2024-01-01"],
            "range is empty",
        ),
    ]:
        res = cli(*base, *extra)
        assert res.code == 2, res.err
        assert words in res.err
        assert len(res.err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- duplicates in a file


def test_identical_repeats_are_counted_and_conflicting_repeats_are_refused(tmp_path: Path) -> None:
    f = _write_csv(
        tmp_path / "f.csv",
        ["ts", "rate"],
        [
            ["2024-01-01 00:00", "0.0001"],  # line 2
            ["2024-01-01 08:00", "0.0001"],  # line 3
            ["2024-01-01 08:00", "0.0002"],  # line 4: same key as line 3, another rate
            ["2024-01-01 16:00", "0.0003"],  # line 5
            ["2024-01-01 16:00", "0.0003"],  # line 6: identical to line 5
        ],
    )
    lake = Lake(tmp_path / "s")
    kw = {"venue": "gate", "instrument": "BTC-USDT-PERP", "interval_h": 8.0}
    with pytest.raises(ConflictingRowsError) as err:
        import_funding(lake, f, opts=FileOptions(), **kw)  # type: ignore[arg-type]
    assert err.value.conflicts[0][:2] == (3, 4)
    assert "rate 0.0001 vs 0.0002" in str(err.value)
    assert "--on-conflict" in str(err.value)
    assert err.value.exit_code == 2
    assert not lake.has_table("funding")
    first = import_funding(lake, f, opts=FileOptions(on_conflict="first"), **kw)  # type: ignore[arg-type]
    # read 5 = written 3 + duplicate 1 + conflicting 1
    assert (first.rows_read, first.rows_written, first.rows_duplicate, first.rows_conflicting) == (
        5,
        3,
        1,
        1,
    )
    assert first.rows_accounted == first.rows_read
    assert lake.read("funding").sort("ts")["rate"].to_list() == [0.0001, 0.0001, 0.0003]
    last = import_funding(lake, f, opts=FileOptions(on_conflict="last", replace=True), **kw)  # type: ignore[arg-type]
    assert (last.rows_replaced, last.rows_accounted) == (3, 5)
    assert lake.read("funding").sort("ts")["rate"].to_list() == [0.0001, 0.0002, 0.0003]


def test_ohlcv_conflicts_are_not_reported_as_already_stored(tmp_path: Path) -> None:
    f = _write_csv(
        tmp_path / "c.csv",
        ["timestamp", "open", "high", "low", "close", "volume"],
        [
            [1704067200000, 10, 12, 9, 11, 5],
            [1704070800000, 11, 12, 10, 11, 5],
            [1704070800000, 11, 13, 10, 12, 6],  # line 4: the 01:00 bar again, other values
            [1704074400000, 11, 12, 10, 11, 5],
        ],
    )
    kw = {"venue": "binance", "instrument": "BTC-USDT", "timeframe": "1h", "kind": "trade"}
    lake = Lake(tmp_path / "s")
    with pytest.raises(ConflictingRowsError, match="lines 3 and 4"):
        import_ohlcv(lake, f, opts=FileOptions(), **kw)  # type: ignore[arg-type]
    report = import_ohlcv(lake, f, opts=FileOptions(on_conflict="last"), **kw)  # type: ignore[arg-type]
    assert (report.rows_written, report.rows_already_stored, report.rows_conflicting) == (3, 0, 1)
    assert report.rows_accounted == report.rows_read == 4
    assert lake.read("ohlcv").sort("ts")["c"].to_list() == [11.0, 12.0, 11.0]


# --------------------------------------------------------------------------- timeframes and gaps


def _bars(path: Path, hours: list[float]) -> Path:
    t0 = 1704067200000
    return _write_csv(
        path,
        ["timestamp", "open", "high", "low", "close"],
        [[int(t0 + h * 3_600_000), 10, 12, 9, 11] for h in hours],
    )


@pytest.mark.parametrize(
    ("timeframe", "hours", "message"),
    [
        ("0m", [0, 1, 2], "bad --timeframe '0m'"),
        (
            "1d",
            [0, 1, 2, 3],
            "bars are 1h apart (lines 2 and 3: 2024-01-01 00:00, 2024-01-01 01:00) but "
            "--timeframe is 1d",
        ),
        ("1h", [0, 24, 48, 72], "most bars are 1d apart but --timeframe is 1h"),
        ("4h", [0, 4, 6, 8], "bars are 2h apart"),
    ],
)
def test_bars_whose_spacing_contradicts_the_timeframe_are_refused(
    tmp_path: Path, timeframe: str, hours: list[float], message: str
) -> None:
    lake = Lake(tmp_path / "s")
    with pytest.raises((UsageError, BadInputError)) as err:
        import_ohlcv(
            lake,
            _bars(tmp_path / "b.csv", hours),
            venue="binance",
            instrument="BTC-USDT",
            timeframe=timeframe,
            kind="trade",
            opts=FileOptions(),
        )
    assert message in str(err.value)
    assert err.value.exit_code == 2
    assert not lake.has_table("ohlcv")


def test_hourly_bars_with_gaps_are_fine(tmp_path: Path) -> None:
    report = import_ohlcv(
        Lake(tmp_path / "s"),
        _bars(tmp_path / "b.csv", [0, 1, 2, 5, 6, 30]),
        venue="binance",
        instrument="BTC-USDT",
        timeframe="1h",
        kind="trade",
        opts=FileOptions(),
    )
    assert report.rows_written == 6


def test_a_16h_gap_between_the_only_settlements_is_named_not_a_null_interval(
    tmp_path: Path,
) -> None:
    f = _write_csv(
        tmp_path / "f.csv",
        ["ts", "rate"],
        [["2024-01-01 00:00", "0.0001"], ["2024-01-01 16:00", "0.0001"]],
    )
    with pytest.raises(BadInputError) as err:
        import_funding(
            Lake(tmp_path / "s"), f, venue="gate", instrument="BTC-USDT-PERP", opts=FileOptions()
        )
    text = str(err.value)
    assert "16h between 2024-01-01 00:00 (line 2) and 2024-01-01 16:00 (line 3)" in text
    assert "--interval-h" in text
    assert "null" not in text


def test_irregular_gaps_are_noted_with_their_times(tmp_path: Path) -> None:
    times = ["2024-01-01 00:00", "2024-01-01 08:00", "2024-01-02 00:00", "2024-01-02 08:00"]
    f = _write_csv(tmp_path / "f.csv", ["ts", "rate"], [[t, "0.0001"] for t in times])
    report = import_funding(
        Lake(tmp_path / "s"), f, venue="gate", instrument="BTC-USDT-PERP", opts=FileOptions()
    )
    assert report.rows_written == 4
    assert "16h between 2024-01-01 08:00 (line 3) and 2024-01-02 00:00 (line 4)" in report.notes[0]


# --------------------------------------------------------------------------- values never stored


def _funding_args(tmp_path: Path, f: Path, *extra: str) -> list[str]:
    return [
        "--store",
        str(tmp_path / "s"),
        "import",
        "funding",
        str(f),
        "--venue",
        "gate",
        "--instrument",
        "BTC-USDT-PERP",
        *extra,
    ]


def _one_error_line(res) -> str:  # type: ignore[no-untyped-def]
    assert res.code == 2, (res.code, res.err)
    assert "Traceback" not in res.err
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert len(lines) == 1, res.err
    return lines[0]


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--tz-offset-h", "30", "bad --tz-offset-h 30"),
        ("--tz-offset-h", "-15", "bad --tz-offset-h -15"),
        # NaN and infinities are refused by the CLI for every number option (cli/main.py)
        ("--tz-offset-h", "nan", "'--tz-offset-h': nan is not a finite number"),
        ("--tz-offset-h", "inf", "'--tz-offset-h': inf is not a finite number"),
        ("--tz-offset-h", "1e20", "bad --tz-offset-h 1e+20"),
        ("--interval-h", "nan", "'--interval-h': nan is not a finite number"),
        ("--interval-h", "inf", "'--interval-h': inf is not a finite number"),
        ("--interval-h", "0.5", "bad --interval-h 0.5"),
    ],
)
def test_impossible_options_are_one_line_exit_2(
    tmp_path: Path, cli, option: str, value: str, words: str
) -> None:  # type: ignore[no-untyped-def]
    f = _write_csv(
        tmp_path / "f.csv",
        ["ts", "rate"],
        [["2024-01-01 00:00", "0.0001"], ["2024-01-01 08:00", "0.0001"]],
    )
    extra = [option, value] if option == "--interval-h" else [option, value, "--interval-h", "8"]
    assert words in _one_error_line(cli(*_funding_args(tmp_path, f, *extra)))
    assert not Lake(tmp_path / "s").has_table("funding")


@pytest.mark.parametrize(
    ("header", "rows", "extra", "expected"),
    [
        # mixed seconds and milliseconds: the seconds row would land on 1970-01-20
        (
            ["ts", "rate"],
            [[1704067200000, "0.0001"], [1704096000, "0.0001"], [1704124800000, "0.0001"]],
            ["--interval-h", "8"],
            "line 3: looks like seconds while most timestamps are in ms",
        ),
        (
            ["ts", "rate"],
            [[253402300800000, "0.0001"], [1704096000000, "0.0001"]],
            ["--interval-h", "8"],
            "line 2: timestamp out of range",
        ),  # year 10000 in ms
        (
            ["ts", "rate"],
            [["1900-01-01 00:00", "0.0001"], ["2024-01-01 08:00", "0.0001"]],
            ["--interval-h", "8"],
            "line 2: ts 1900-01-01 00:00:00.000000Z is before 2009-01-03",
        ),
        (
            ["ts", "rate"],
            [["2024-01-01 00:00", "0.0001"], ["2099-01-01 08:00", "0.0001"]],
            ["--interval-h", "8"],
            "line 3: ts 2099-01-01 08:00:00.000000Z is more than 3 days in the future",
        ),
        (
            ["ts", "rate", "iv"],
            [["2024-01-01 00:00", "0.0001", "8"], ["2024-01-01 08:00", "0.0001", "inf"]],
            ["--interval-col", "iv"],
            "line 3: interval_h inf is not a finite number",
        ),
        (
            ["ts", "rate", "iv"],
            [["2024-01-01 00:00", "0.0001", "1e300"], ["2024-01-01 08:00", "0.0001", "8"]],
            ["--interval-col", "iv"],
            "line 2: interval_h 1e+300 must be in [1, 24]",
        ),
        (
            ["ts", "rate", "iv"],
            [["2024-01-01 00:00", "0.0001", "8"], ["2024-01-01 08:00", "0.0001", "1e-7"]],
            ["--interval-col", "iv"],
            "line 3: interval_h 1e-7 must be in [1, 24]",
        ),
    ],
)
def test_funding_values_the_store_refuses_name_line_and_column(
    tmp_path: Path,
    cli,
    header: list[str],
    rows: list[list[object]],
    extra: list[str],
    expected: str,  # type: ignore[no-untyped-def]
) -> None:
    f = _write_csv(tmp_path / "f.csv", header, rows)
    line = _one_error_line(cli(*_funding_args(tmp_path, f, *extra)))
    assert expected in line
    assert "nothing was written" in line
    assert not Lake(tmp_path / "s").has_table("funding")


def test_ohlcv_inf_prices_and_nan_volume_and_oi_inf_are_refused(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    store = str(tmp_path / "s")
    c = _write_csv(
        tmp_path / "c.csv",
        ["timestamp", "open", "high", "low", "close", "volume"],
        [
            [1704067200000, 10, 12, 9, 11, 5],
            [1704070800000, "inf", "inf", "inf", "inf", 5],  # line 3
            [1704074400000, 10, 12, 9, 11, "nan"],  # line 4
        ],
    )
    line = _one_error_line(
        cli(
            "--store",
            store,
            "import",
            "ohlcv",
            str(c),
            "--venue",
            "binance",
            "--instrument",
            "BTC-USDT",
            "--timeframe",
            "1h",
        )
    )
    assert "2 of 3 rows are invalid" in line
    assert "line 3: o inf is not a finite number" in line
    assert "line 4: volume nan is not a finite number" in line
    oi = _write_csv(tmp_path / "oi.csv", ["timestamp", "open_interest"], [[1704067200000, "inf"]])
    line = _one_error_line(
        cli(
            "--store",
            store,
            "import",
            "open-interest",
            str(oi),
            "--venue",
            "binance",
            "--instrument",
            "BTC-USDT-PERP",
            "--unit",
            "contracts",
        )
    )
    assert "line 2: oi_value inf is not a finite number" in line
    assert not Lake(tmp_path / "s").exists() or Lake(tmp_path / "s").tables() == []


_BOOK = [
    "instrument_name",
    "creation_timestamp",
    "open_interest",
    "volume",
    "mark_price",
    "underlying_price",
    "estimated_delivery_price",
    "bid_price",
    "ask_price",
    "mark_iv",
]


def test_options_oi_inf_and_an_overflowing_creation_timestamp_are_one_line(
    tmp_path: Path, cli
) -> None:  # type: ignore[no-untyped-def]
    f = _write_csv(
        tmp_path / "chain.csv",
        _BOOK,
        [
            ["BTC-29MAR24-50000-C", 1704067200000, "inf", 1, 0.05, 42000, 42000, 0.04, 0.06, 55],
            ["BTC-29MAR24-60000-C", 99999999999999999, 10, 1, 0.02, 42000, 42000, 0.01, 0.03, 60],
            ["BTC-29MAR24-40000-P", 1704067200000, 10, 1, 0.02, 42000, 42000, 0.01, 0.03, 60],
        ],
    )
    line = _one_error_line(
        cli("--store", str(tmp_path / "s"), "import", "options", str(f), "--venue", "deribit")
    )
    assert "line 2: open_interest is not a finite number" in line
    assert "line 3: quote timestamp out of range" in line
    assert not Lake(tmp_path / "s").has_table("options_snapshot")


@settings(max_examples=20)
@given(
    cells=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=9),  # settlement number: repeats make duplicates
            st.sampled_from(["0.0001", "0.0002", "nan", "abc", "0.07"]),
        ),
        min_size=1,
        max_size=25,
    ),
    stored=st.integers(min_value=0, max_value=9),
    policy=st.sampled_from(["first", "last"]),
)
def test_the_report_adds_up_for_any_mix_of_rows(
    tmp_path_factory: pytest.TempPathFactory, cells: list[tuple[int, str]], stored: int, policy: str
) -> None:
    tmp = tmp_path_factory.mktemp("adds")
    lake = Lake(tmp / "s")
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    # settlements 0..stored-1 are in the store already
    if stored:
        lake.ingest(
            "funding",
            pl.DataFrame(
                {
                    "venue": ["gate"] * stored,
                    "instrument": ["BTC-USDT-PERP"] * stored,
                    "ts": [t0 + timedelta(hours=8 * k) for k in range(stored)],
                    "rate": [0.0003] * stored,
                    "interval_h": [8.0] * stored,
                }
            ),
        )
    rows = [[(t0 + timedelta(hours=8 * k)).strftime("%Y-%m-%d %H:%M"), r] for k, r in cells]
    f = _write_csv(tmp / "f.csv", ["ts", "rate"], rows)
    opts = FileOptions(skip_bad=True, on_conflict=policy)  # type: ignore[arg-type]
    report = import_funding(
        lake, f, venue="gate", instrument="BTC-USDT-PERP", opts=opts, interval_h=8
    )
    assert report.rows_read == len(cells)
    assert report.rows_accounted == report.rows_read
    # independent count: valid rows are the numeric rates below 0.05; each distinct settlement
    # among them is either new or already stored
    valid = [(k, r) for k, r in cells if r in ("0.0001", "0.0002")]
    assert report.rows_bad == len(cells) - len(valid)
    keys = {k for k, _ in valid}
    assert report.rows_written == len(keys - set(range(stored)))
    assert report.rows_already_stored == len(keys & set(range(stored)))
    assert report.rows_duplicate == len(valid) - len(set(valid))
    assert report.rows_conflicting == len(set(valid)) - len(keys)
