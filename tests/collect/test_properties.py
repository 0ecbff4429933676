"""Property tests: funding-interval inference, page invariance, backoff bounds, gap counting."""

from __future__ import annotations

import random
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from perpscope.collect.gaps import find_gaps
from perpscope.collect.retry import RetryPolicy
from perpscope.store.lake import Lake
from perpscope.venues import binance_parse as bp

H = 3_600_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % H  # a whole hour


def payload(intervals: list[int], jitter: list[int]) -> list[dict[str, object]]:
    """Settlements spaced by ``intervals`` hours (the first entry is the gap before row 0)."""
    t, rows = T0, []
    for i, (step, j) in enumerate(zip(intervals, jitter, strict=True)):
        t += step * H
        rows.append({"symbol": "X", "fundingTime": t + j, "fundingRate": f"{i * 1e-6:.8f}"})
    return rows


schedules = st.lists(st.sampled_from([1, 2, 4, 8]), min_size=2, max_size=60)


@given(schedules, st.data())
def test_interval_of_each_row_is_its_spacing(intervals: list[int], data: st.DataObject) -> None:
    jitter = data.draw(
        st.lists(st.integers(0, 5), min_size=len(intervals), max_size=len(intervals))
    )
    frame = bp.parse_funding_rate(payload(intervals, jitter), "X-USDT-PERP")
    got = frame["interval_h"].to_list()
    assert got[1:] == [float(x) for x in intervals[1:]]
    assert got[0] == float(intervals[1])  # no predecessor: the next row's interval


@given(schedules, st.data())
def test_parsing_in_pages_equals_parsing_at_once(intervals: list[int], data: st.DataObject) -> None:
    rows = payload(intervals, [0] * len(intervals))
    cut = data.draw(st.integers(1, len(rows) - 1))
    whole = bp.parse_funding_rate(rows, "X-USDT-PERP")
    first = bp.parse_funding_rate(rows[:cut], "X-USDT-PERP", fallback_interval_h=intervals[1])
    prev = int(first["ts"][-1].timestamp() * 1000)
    second = bp.parse_funding_rate(rows[cut:], "X-USDT-PERP", prev_ts_ms=prev)
    assert pl.concat([first, second]).equals(whole)


@given(st.integers(1, 12), st.floats(0.01, 5), st.floats(1, 60), st.integers(0, 2**32))
def test_backoff_is_within_half_and_full_ceiling(
    retry: int, base: float, cap: float, seed: int
) -> None:
    policy = RetryPolicy(base_s=base, cap_s=cap)
    ceiling = min(cap, base * 2 ** (retry - 1))
    wait = policy.backoff_s(retry, random.Random(seed))
    assert ceiling / 2 <= wait <= ceiling


@settings(max_examples=25)
@given(st.integers(10, 200), st.data())
def test_gaps_count_exactly_the_rows_removed(n: int, data: st.DataObject) -> None:
    removed = data.draw(st.sets(st.integers(1, n - 2), max_size=n // 3))
    ts = [datetime.fromtimestamp((T0 + i * H) / 1000, UTC) for i in range(n) if i not in removed]
    frame = pl.DataFrame(
        {
            "venue": "v",
            "instrument": "X-USDT-PERP",
            "kind": "trade",
            "timeframe": "1h",
            "ts": ts,
            "o": 1.0,
            "h": 1.0,
            "l": 1.0,
            "c": 1.0,
        },  # fmt: skip
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp))
        lake.ingest("ohlcv", frame)
        holes = find_gaps(lake, table="ohlcv")
    assert holes["missing"].sum() == len(removed)
    # runs of consecutive removed indices make one hole each
    runs = sum(1 for i in removed if i - 1 not in removed)
    assert holes.height == runs
    assert set(holes["series"]) <= {"trade:1h"}
