"""The compiled rolling-percentile kernel equals polars' rolling rank (the reference)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from perpscope.analytics._rolling import add_rolling_percentile, rolling_percentile

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _reference(frame: pl.DataFrame, window_h: float) -> list[float | None]:
    expr = rolling_percentile(pl.col("v"), "ts", window_h, ["_sid"])
    return frame.select(expr.alias("p"))["p"].to_list()


def test_hand_computed_percentiles_with_ties_gaps_and_nulls() -> None:
    # One series, window 3h = (t-3h, t]. By hand:
    # 00:00 v=1 -> {1} -> 1/1; 01:00 v=3 -> {1,3} -> 2/2; 02:00 v=1 -> {1,3,1}: <=1 twice -> 2/3;
    # 03:00 null -> null; 07:00 v=2 (gap: window holds only itself) -> 1/1;
    # 08:00 v=2 -> {2,2} ties count as <= -> 2/2.
    frame = pl.DataFrame(
        {
            "_sid": [0] * 6,
            "ts": [T0 + timedelta(hours=h) for h in (0, 1, 2, 3, 7, 8)],
            "v": [1.0, 3.0, 1.0, None, 2.0, 2.0],
        }
    )
    out = add_rolling_percentile(frame, "v", "p", window_h=3)["p"].to_list()
    assert out == [1.0, 1.0, 2 / 3, None, 1.0, 1.0]
    assert out == _reference(frame, 3)


@st.composite
def panels(draw: st.DrawFn) -> pl.DataFrame:
    n_series = draw(st.integers(1, 4))
    parts = []
    for sid in range(n_series):
        n = draw(st.integers(1, 40))
        steps = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
        values = draw(
            st.lists(st.one_of(st.none(), st.integers(-3, 3).map(float)), min_size=n, max_size=n)
        )
        ts = list(np.cumsum(steps))
        parts.append(
            pl.DataFrame(
                {
                    "_sid": [sid] * n,
                    "ts": [T0 + timedelta(hours=int(h)) for h in ts],
                    "v": values,
                },
                schema={"_sid": pl.Int64, "ts": pl.Datetime("us", "UTC"), "v": pl.Float64},
            )
        )
    return pl.concat(parts)


@settings(max_examples=150)
@given(panels(), st.sampled_from([1.0, 2.5, 6.0, 24.0]))
def test_kernel_equals_polars_rolling_rank(frame: pl.DataFrame, window_h: float) -> None:
    ours = add_rolling_percentile(frame, "v", "p", window_h=window_h)["p"].to_list()
    ref = _reference(frame, window_h)
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref, strict=True):
        assert (a is None and b is None) or (a is not None and b is not None and abs(a - b) < 1e-12)
