"""Dashboard cells read as the terminal prints them (golden strings, written by hand)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from perpscope.web.values import cell_text


@pytest.mark.parametrize(
    ("column", "value", "text"),
    [
        ("rate_8h", 0.0001, "+0.0100%"),
        ("annualized", 0.1095, "+10.95%"),
        ("notional_usd", 4_420_000.0, "$4.42M"),
        ("oi_change_24h", -0.218, "-21.8%"),
        # *_pct columns are signed fractions, as the CLI reads them (max pain 0.97% below spot)
        ("distance_pct", -0.0097, "-1.0%"),
        ("strike_distance_pct", 0.17, "+17.0%"),
        ("zscore", -1.1397, "-1.14"),
        ("pcr_oi", 1.15104, "1.15"),
        ("pcr_oi_percentile", 0.748691, "75"),
        ("percentile", 0.39, "39"),
        ("long_short_ratio", 1.2, "1.20"),
        ("days_to_expiry", 0.333333, "0.3"),
        ("zscore", 0.5, "+0.50"),
        ("ts", datetime(2026, 1, 1, 8, tzinfo=UTC), "2026-01-01 08:00"),
        # the signals page: an IV is a share, a confidence and a strength whole percents (as
        # `perpscope scenario` and `perpscope signals` print them), a skew in vol points, the
        # put/call OI ratio and the grades with two decimals
        ("front_atm_iv", 0.159884, "16.0%"),
        ("back_atm_iv", 0.42918, "42.9%"),
        ("confidence", 1.0, "100%"),
        ("strength", 0.4294, "43%"),
        ("skew_25d_vol_pts", -2.85572, "-2.9"),
        ("put_call_oi", 1.16558, "1.17"),
        ("fear_grade", 0.758572, "0.76"),
        ("put_call_percentile", 0.73, "73"),
        ("rate_8h", None, ""),
        ("rate_8h", float("nan"), "n/a"),
    ],
)
def test_cells_read_as_the_terminal_prints_them(column: str, value: object, text: str) -> None:
    assert cell_text(column, value) == text


def test_quadrant_labels_read_as_the_terminal_prints_them() -> None:
    assert cell_text("quadrant", "long_liquidation") == "long liquidation"
    assert cell_text("quadrant", "undefined") == "no reading"
    assert cell_text("side", "long_only") == "long_only"  # other text columns are left as stored
