"""Filters of the market commands: times, percents, ids, and what an empty result says."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from perpscope.errors import UsageError
from perpscope.services._market_read import explain_empty, resolve
from perpscope.services.filters import (
    TIMEFRAMES,
    MarketQuery,
    check_timeframe,
    parse_percent,
    parse_time,
    split_ids,
)
from perpscope.services.markets import funding_history_report, funding_table_report
from perpscope.store.lake import Lake

LATEST = datetime(2023, 12, 31, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", LATEST - timedelta(days=7)),
        ("24h", LATEST - timedelta(hours=24)),
        ("90m", LATEST - timedelta(minutes=90)),
        ("2w", LATEST - timedelta(days=14)),
        ("1.5h", LATEST - timedelta(minutes=90)),
        ("now", LATEST),
        ("today", datetime(2023, 12, 31, tzinfo=UTC)),
        ("yesterday", datetime(2023, 12, 30, tzinfo=UTC)),
        ("2024-01-05", datetime(2024, 1, 5, tzinfo=UTC)),
        ("2024-01-05T08:00Z", datetime(2024, 1, 5, 8, tzinfo=UTC)),
        ("2024-01-05T08:00", datetime(2024, 1, 5, 8, tzinfo=UTC)),  # naive means UTC
        ("2024-01-05T11:00+03:00", datetime(2024, 1, 5, 8, tzinfo=UTC)),
    ],
)
def test_since_forms_resolve_against_the_datas_latest_timestamp(
    text: str, expected: datetime
) -> None:
    assert parse_time(text, "--since").resolve(LATEST) == expected


def test_until_reads_a_day_as_through_its_end() -> None:
    # --since yesterday --until yesterday is the whole of yesterday.
    assert parse_time("yesterday", "--until").resolve(LATEST) == datetime(2023, 12, 31, tzinfo=UTC)
    assert parse_time("2024-01-05", "--until").resolve(None) == datetime(2024, 1, 6, tzinfo=UTC)
    # a time is exact
    assert parse_time("24h", "--until").resolve(LATEST) == LATEST - timedelta(hours=24)


@pytest.mark.parametrize("text", ["last tuesday", "7x", "2024-13-01", "", "-7d"])
def test_bad_times_are_usage_errors_that_list_the_forms(text: str) -> None:
    with pytest.raises(UsageError, match=r"bad --until .*7d, 2w, today, yesterday"):
        parse_time(text, "--until")


@pytest.mark.parametrize(
    ("text", "fraction"),
    [("0.05", 0.0005), ("0.05%", 0.0005), (" 0.05 % ", 0.0005), ("8", 0.08), ("0", 0.0)],
)
def test_percent_options_read_a_bare_number_as_percent(text: str, fraction: float) -> None:
    assert parse_percent(text, "--threshold") == pytest.approx(fraction)


@pytest.mark.parametrize("text", ["abc", "-0.05", "nan", "inf", "%"])
def test_bad_percents_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="bad --threshold"):
        parse_percent(text, "--threshold")


def test_ids_are_repeatable_and_comma_separated_keeping_all() -> None:
    assert split_ids(["BTC", "ETH"]) == ["BTC", "ETH"]
    assert split_ids(["BTC,ETH", " SOL ", "BTC"]) == ["BTC", "ETH", "SOL"]
    q = MarketQuery.make(["sim1,sim2", "SIM3"], None, ["btc,eth"], "7d", None)
    assert q.venues == ("sim1", "sim2", "sim3")
    assert q.assets == ("BTC", "ETH")


def test_timeframes_are_checked_against_the_known_list() -> None:
    assert check_timeframe("4h") == "4h"
    with pytest.raises(UsageError, match=r"bad --timeframe 'banana': choose one of 1m, .*1w"):
        check_timeframe("banana")
    assert "1h" in TIMEFRAMES


def test_until_before_since_is_refused() -> None:
    with pytest.raises(UsageError, match="--until"):
        MarketQuery.make(None, None, None, "2024-01-05", "2024-01-01")


def _funding_store(root: Path) -> Lake:
    lake = Lake(root)
    lake.init()
    rows = [
        (v, f"{a}-USDT-PERP", datetime(2023, 12, 1, tzinfo=UTC) + timedelta(hours=8 * i), 1e-4, 8.0)
        for v in ("sim1", "sim2", "sim3")
        for a in ("BTC", "ETH")
        for i in range(91)  # 2023-12-01 00:00 .. 2023-12-31 00:00
    ]
    lake.ingest(
        "funding",
        pl.DataFrame(
            rows, schema=["venue", "instrument", "ts", "rate", "interval_h"], orient="row"
        ),
    )
    return lake


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return _funding_store(tmp_path / "store")


def _why(lake: Lake, **kw: object) -> str:
    q = MarketQuery.make(**kw)  # type: ignore[arg-type]
    return explain_empty(lake, "funding", resolve(lake, "funding", q), "funding")


def test_empty_result_names_the_venues_in_the_store(lake: Lake) -> None:
    assert _why(lake, venues=["sim9"]) == (
        "no funding for venue sim9; venues in the store: sim1, sim2, sim3"
    )


def test_empty_result_names_the_assets_and_instruments(lake: Lake) -> None:
    assert _why(lake, assets="XRP") == "no funding for asset XRP; assets in the store: BTC, ETH"
    assert _why(lake, venues=["sim1"], assets="XRP") == (
        "no funding for asset XRP on sim1; assets on sim1: BTC, ETH"
    )
    assert _why(lake, instrument="BTC-USD-PERP") == (
        "no funding for instrument BTC-USD-PERP; instruments in the store: "
        "BTC-USDT-PERP, ETH-USDT-PERP"
    )


def test_empty_result_names_the_span_of_the_data(lake: Lake) -> None:
    assert _why(lake, since="2026-01-05") == "no funding after 2026-01-05; the data ends 2023-12-31"
    assert _why(lake, until="2023-11-30") == (
        "no funding before 2023-12-01; the data starts 2023-12-01"
    )


def test_empty_result_on_a_table_never_written(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "s")
    lake.init()
    assert _why(lake).startswith("no funding in the store at ")


def test_reports_raise_the_explanation(lake: Lake) -> None:
    with pytest.raises(UsageError, match="venues in the store: sim1, sim2, sim3"):
        funding_table_report(lake, MarketQuery.make(["sim9"]))


def test_relative_since_counts_back_from_the_latest_settlement(lake: Lake) -> None:
    # The data ends 2023-12-31 00:00; --since 1d keeps 2023-12-30 00:00 .. 2023-12-31 00:00, i.e.
    # four 8h settlements per series (00, 08, 16, 00), whatever today's date is.
    frame = funding_history_report(lake, MarketQuery.make(["sim1"], None, "BTC", "1d"))
    assert frame["ts"].to_list() == [datetime(2023, 12, 30, h, tzinfo=UTC) for h in (0, 8, 16)] + [
        datetime(2023, 12, 31, tzinfo=UTC)
    ]
    # --until is exclusive: the window [yesterday, today) of the data's clock is 2023-12-30.
    day = funding_history_report(
        lake, MarketQuery.make(["sim1"], None, "BTC", "yesterday", "yesterday")
    )
    assert day["ts"].dt.date().unique().to_list() == [date(2023, 12, 30)]
    assert day.height == 3


def test_assets_repeatable_keep_every_asset(lake: Lake) -> None:
    both = funding_table_report(lake, MarketQuery.make(None, None, ["BTC", "ETH"]))
    assert both.assets["asset"].to_list() == ["BTC", "ETH"]
    one = funding_table_report(lake, MarketQuery.make(None, None, ["ETH"]))
    assert one.assets["asset"].to_list() == ["ETH"]
