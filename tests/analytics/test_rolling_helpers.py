"""The shared series helpers: sortedness check, in-series shift and as-of lags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from perpscope.analytics._rolling import (
    add_rolling_percentile,
    lagged,
    rolling_percentile,
    series_id,
    shift_in_series,
    sort_series,
)
from perpscope.analytics.funding import normalised_funding

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _frame(venues: list[str], hours: list[int], values: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "venue": venues,
            "instrument": "BTC-USDT-PERP",
            "ts": [T0 + timedelta(hours=h) for h in hours],
            "v": values,
        }
    )


def test_sort_series_returns_a_sorted_frame_as_is_and_sorts_otherwise() -> None:
    ordered = _frame(["a", "a", "b"], [0, 1, 0], [1.0, 2.0, 3.0])
    assert sort_series(ordered, ["venue", "instrument"]) is ordered
    shuffled = _frame(["b", "a", "a"], [0, 1, 0], [3.0, 2.0, 1.0])
    out = sort_series(shuffled, ["venue", "instrument"])
    assert out["v"].to_list() == [1.0, 2.0, 3.0]
    # a series split into two blocks (a, b, a) is not sorted even though each block is.
    split = _frame(["a", "b", "a"], [0, 0, 1], [1.0, 3.0, 2.0])
    assert sort_series(split, ["venue", "instrument"])["v"].to_list() == [1.0, 2.0, 3.0]
    # equal timestamps within a series are not "sorted" (strictly increasing ts is required).
    dup = _frame(["a", "a"], [0, 0], [1.0, 2.0])
    assert sort_series(dup, ["venue", "instrument"]) is not dup


def test_shift_in_series_never_crosses_into_the_previous_series() -> None:
    frame = _frame(["a", "a", "b", "b"], [0, 1, 0, 1], [1.0, 2.0, 3.0, 4.0]).with_columns(
        series_id(["venue", "instrument"]).alias("_sid")
    )
    out = frame.select(shift_in_series(pl.col("v")).alias("p"))["p"].to_list()
    assert out == [None, 1.0, None, 3.0]


def test_lagged_takes_the_last_value_within_tolerance_only() -> None:
    # Series a: values at h0, h1, h30; series b at h24. Lag 24h, tolerance 2h.
    frame = _frame(["a", "a", "a", "b"], [0, 1, 30, 24], [10.0, 11.0, 12.0, 99.0])
    out = lagged(
        frame, keys=["venue", "instrument"], columns=["v"], lag_h=24, tolerance_h=2, suffix="_ago"
    )
    # a@h30: target h6, latest <= h6 is h1 but 5h older than the target -> null (never stale).
    # b@h24: target h0, its own series has nothing -> null (never series a's h0).
    assert out["v_ago"].to_list() == [None, None, None, None]
    out = lagged(
        frame, keys=["venue", "instrument"], columns=["v"], lag_h=29, tolerance_h=2, suffix="_ago"
    )
    # a@h30: target h1 -> 11.0.
    assert out["v_ago"].to_list() == [None, None, 11.0, None]


def test_normalised_funding_adds_the_8h_and_annual_rates() -> None:
    frame = pl.DataFrame(
        {
            "venue": "okx",
            "instrument": "ETH-USDT-PERP",
            "ts": [T0],
            "rate": [0.0001],
            "interval_h": [4.0],
        }
    )
    out = normalised_funding(frame)
    assert out["rate_8h"][0] == pytest.approx(0.0002)
    assert out["annualized"][0] == pytest.approx(0.219)


def test_kernel_percentile_equals_the_one_pass_expression() -> None:
    # Seven series of uneven length through the compiled kernel; the result must equal the
    # single polars expression, row for row.
    rng = np.random.default_rng(5)
    parts = []
    for k, n in enumerate([40, 90, 10, 120, 60, 75, 33]):
        parts.append(
            pl.DataFrame(
                {
                    "venue": f"v{k}",
                    "instrument": "BTC-USDT-PERP",
                    "ts": [T0 + timedelta(hours=i) for i in range(n)],
                    "x": rng.normal(size=n),
                }
            )
        )
    frame = pl.concat(parts).with_columns(series_id(["venue", "instrument"]).alias("_sid"))
    threaded = add_rolling_percentile(frame, "x", "p", window_h=24)
    one_pass = frame.with_columns(rolling_percentile(pl.col("x"), "ts", 24, ["_sid"]).alias("p"))
    assert threaded["p"].to_list() == one_pass["p"].to_list()
    assert threaded.columns == [*frame.columns, "p"]
