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
        # a column already in percent is not multiplied again: 0.25 is a quarter of a percent
        ("distance_pct", 0.25, "+0.25%"),
        ("distance_pct", -1.75, "-1.75%"),
        ("zscore", -1.1397, "-1.14"),
        ("zscore", 0.5, "+0.50"),
        ("ts", datetime(2026, 1, 1, 8, tzinfo=UTC), "2026-01-01 08:00"),
        ("rate_8h", None, ""),
        ("rate_8h", float("nan"), "n/a"),
    ],
)
def test_cells_read_as_the_terminal_prints_them(column: str, value: object, text: str) -> None:
    assert cell_text(column, value) == text
