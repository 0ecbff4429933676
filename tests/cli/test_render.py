"""The presentation layer's formats, colours and JSON rounding, against strings written by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from rich.console import Console

from perpscope.cli._render import (
    Col,
    Kind,
    fmt_annual,
    fmt_change,
    fmt_count,
    fmt_number,
    fmt_price,
    fmt_rate,
    fmt_time,
    fmt_usd,
    fmt_value,
    infer_kind,
    json_value,
    render_record,
    render_rows,
    style_of,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0001, "+0.0100%"),
        (9.999999999999999e-05, "+0.0100%"),  # float noise prints as the rate it is
        (-0.00024110030457, "-0.0241%"),
        (1.3552527156068805e-20, "0.0000%"),  # a zero spread has no sign
        (-0.00005, "-0.0050%"),
    ],
)
def test_rate_is_a_signed_percent_with_four_decimals(value: float, text: str) -> None:
    assert fmt_rate(value) == text


def test_annualised_and_change_formats() -> None:
    assert fmt_annual(0.1095) == "+10.95%"
    assert fmt_annual(-0.2511) == "-25.11%"
    assert fmt_change(-0.218421) == "-21.8%"
    assert fmt_change(6.08) == "+608.0%"
    assert fmt_value(Kind.SHARE, 0.388) == "38.8%"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (4418215.18, "$4.42M"),
        (19_300_000.0, "$19.3M"),
        (950.0, "$950"),
        (2.5, "$2.50"),
        (12_345.0, "$12.3K"),
        (-3_100_000.0, "-$3.10M"),
        (1_050_000_000.0, "$1.05B"),
        (999_600.0, "$1.00M"),  # rounds up into the next unit, not "$1000K"
    ],
)
def test_usd_is_compact(value: float, text: str) -> None:
    assert fmt_usd(value) == text


def test_price_precision_follows_magnitude() -> None:
    assert fmt_price(60292.76956428934) == "60,292.77"
    assert fmt_price(2956.0864119169505) == "2,956.09"
    assert fmt_price(95.0) == "95.00"
    assert fmt_price(1.23456) == "1.235"
    assert fmt_price(0.000123456) == "0.0001235"


def test_counts_numbers_and_times() -> None:
    assert fmt_count(1234567) == "1,234,567"
    assert fmt_number(-35.35891473784067) == "-35.3589"
    assert fmt_number(4.714338116361048) == "4.71434"
    assert fmt_number(1_760_123.4) == "1,760,123"
    assert fmt_number(3_210_000_000.0) == "3.21B"
    assert fmt_number(0.0) == "0"
    assert fmt_time(datetime(2026, 12, 3, 8, 0, tzinfo=UTC)) == "2026-12-03 08:00"
    assert fmt_time(datetime(2026, 12, 3, 8, 0, 5, tzinfo=UTC)) == "2026-12-03 08:00:05"
    plus2 = timezone(timedelta(hours=2))
    assert fmt_time(datetime(2026, 12, 3, 10, 0, tzinfo=plus2)) == "2026-12-03 08:00"


def test_other_kinds_and_missing_values() -> None:
    assert fmt_value(Kind.PCTL, 0.388) == "39"
    assert fmt_value(Kind.HOURS, 8.0) == "8h"
    assert fmt_value(Kind.SCORE, 1.234) == "+1.23"
    assert fmt_value(Kind.FLOW, -1035.3589) == "-1,035.36"
    assert fmt_value(Kind.FLOW, 0.001) == "0.00"
    assert fmt_value(Kind.RATIO, 136.7037999) == "136.70"
    assert fmt_value(Kind.ALERT, True) == "ALERT"
    assert fmt_value(Kind.ALERT, False) == ""
    assert fmt_value(Kind.FLAG, True) == "yes"
    assert fmt_value(Kind.RATE, None) == ""
    assert fmt_value(Kind.RATE, float("nan")) == ""
    assert fmt_value(Kind.TEXT, "short_covering") == "short_covering"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("oi_usd", Kind.USD),
        ("agg_annualized", Kind.ANNUAL),
        ("close_px", Kind.PRICE),
        ("oi_change_24h", Kind.CHANGE),
        ("spread_8h", Kind.RATE),
        ("mean_rate_8h", Kind.RATE),
        ("interval_h", Kind.HOURS),
        ("oi_percentile", Kind.PCTL),
        ("divergence_ratio", Kind.RATIO),
        ("year", Kind.TEXT),
        ("share", Kind.SHARE),
        ("pcr_oi", Kind.RATIO),
        ("atm_iv", Kind.SHARE),
    ],
)
def test_kind_from_the_unit_in_the_name(name: str, kind: Kind) -> None:
    assert infer_kind(name, [1.0]) is kind


def test_kind_from_the_values_when_the_name_says_nothing() -> None:
    assert infer_kind("when", [None, datetime(2026, 1, 1, tzinfo=UTC)]) is Kind.TIME
    assert infer_kind("rows", [3]) is Kind.COUNT
    assert infer_kind("label", ["x"]) is Kind.TEXT
    assert infer_kind("migration", [True]) is Kind.FLAG


def test_signed_colours_and_bold_extremes() -> None:
    col = Col("rate_8h", kind=Kind.RATE, extreme=0.0005)
    assert style_of(col, Kind.RATE, 0.0001) == "green"
    assert style_of(col, Kind.RATE, -0.0001) == "red"
    assert style_of(col, Kind.RATE, 0.0006) == "bold green"
    assert style_of(col, Kind.RATE, -0.0005) == "bold red"
    assert style_of(col, Kind.RATE, 1e-20) == "dim"  # prints as 0.0000%: no colour
    assert style_of(Col("alert"), Kind.ALERT, True) == "bold red"
    assert style_of(Col("oi_usd"), Kind.USD, 1e6) == ""  # unsigned kinds are not coloured


def test_json_rounds_by_kind_without_float_noise() -> None:
    assert json_value(9.999999999999999e-05, Kind.RATE) == 0.0001
    assert json_value(1.3552527156068805e-20, Kind.RATE) == 0.0
    assert json_value(0.10949999999999999, Kind.ANNUAL) == 0.1095
    assert json_value(4418215.184004745, Kind.USD) == 4418215.18
    assert json_value(0.1 + 0.2) == 0.3  # 12 significant digits for anything else
    assert json_value(float("inf")) is None
    assert json_value(datetime(2026, 12, 3, 8, 0, tzinfo=UTC)) == "2026-12-03T08:00:00Z"
    # rows: each column's kind comes from its name, fractions stay fractions
    rows = [{"rate": 9.999999999999999e-05, "oi_change_24h": -0.21842111453430602, "n": 3}]
    assert json_value(rows) == [{"rate": 0.0001, "oi_change_24h": -0.21842111, "n": 3}]
    with pytest.raises(ValueError, match="naive"):
        json_value(datetime(2026, 12, 3))  # noqa: DTZ001 - the point of the test


def _console(width: int) -> Console:
    return Console(width=width, record=True, color_system=None, force_terminal=False)


def test_narrow_table_drops_low_priority_columns_and_says_so() -> None:
    rows = [{f"wide_column_{i}": i + 0.123456 for i in range(12)} for _ in range(3)]
    con = _console(80)
    render_rows(con, rows, spec=[Col("wide_column_11", prio=0)])
    lines = con.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    header = next(line for line in lines if "wide column" in line)
    assert header.split()[:3] == ["wide", "column", "11"]  # the spec's prio-0 column leads
    assert lines[-1].startswith("(")
    assert "more columns with --wide" in lines[-1]
    assert sum("0.123456" in line for line in lines) == 3  # one line per row


def test_wide_shows_every_column_on_one_line_per_row() -> None:
    rows = [{f"wide_column_{i}": i + 0.123456 for i in range(12)} for _ in range(3)]
    con = _console(80)
    render_rows(con, rows, wide=True)
    lines = con.export_text().splitlines()
    assert sum(line.count("wide column") for line in lines) == 12
    assert sum("11.1235" in line for line in lines) == 3


def test_long_results_are_cut_with_a_count_of_the_rest() -> None:
    rows = [{"venue": "sim1", "n": i} for i in range(100)]
    con = _console(80)
    render_rows(con, rows, max_rows=60)
    lines = con.export_text().splitlines()
    assert sum(line.startswith("sim1") for line in lines) == 60
    assert lines[-1] == "… 40 more rows (all of them with --format json)"


def test_a_record_shows_usd_exactly_and_fractions_as_percent() -> None:
    con = _console(80)
    render_record(con, {"notional_usd": 2000.0, "distance_frac": 0.096386, "qty": 20})
    lines = [line.split() for line in con.export_text().splitlines() if line.strip()]
    assert lines == [["notional", "usd", "$2,000.00"], ["distance", "frac", "+9.6%"],
                     ["qty", "20"]]  # fmt: skip


def test_a_record_says_yes_and_no_for_booleans() -> None:
    # a field alone on its line: a blank for False would read as "unknown"
    con = _console(80)
    render_record(con, {"tier_changed": False, "term_structure_inverted": True})
    lines = [line.split() for line in con.export_text().splitlines() if line.strip()]
    assert lines == [["tier", "changed", "no"], ["term", "structure", "inverted", "yes"]]


def test_empty_results_print_one_line_with_the_columns() -> None:
    con = _console(80)
    render_rows(con, [], title="futures")
    assert con.export_text() == "futures: no rows\n"


def test_label_values_read_as_words_and_undefined_as_no_reading() -> None:
    assert fmt_value(Kind.LABEL, "short_covering") == "short covering"
    assert fmt_value(Kind.LABEL, "new_longs") == "new longs"
    assert fmt_value(Kind.LABEL, "undefined") == "no reading"
    assert fmt_value(Kind.LABEL, None) == ""
    # a plain text column keeps the label as stored (JSON and TEXT are not translated)
    assert fmt_value(Kind.TEXT, "undefined") == "undefined"
