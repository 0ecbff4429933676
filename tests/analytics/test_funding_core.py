"""Golden tests for the funding core: annualisation, 8h normalisation, latest, cross-venue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpscope.analytics.funding import (
    MIN_WEIGHT,
    accumulated_funding,
    aggregate_funding,
    annualized_rate,
    cross_venue_funding,
    latest_funding,
    rate_8h_equivalent,
)


def _ts(hour: int) -> datetime:
    return datetime(2024, 1, 1, hour, tzinfo=UTC)


def test_annualized_rate_reproduces_playbook_54_75_percent() -> None:
    # Playbook: +0.05% per 8h x 3 x 365 = 54.75%.
    assert annualized_rate(0.0005, 8.0) == pytest.approx(0.5475)


def test_annualized_rate_works_on_expressions() -> None:
    frame = pl.DataFrame({"rate": [0.0005, 0.0001], "interval_h": [8.0, 1.0]})
    out = frame.select(annualized_rate(pl.col("rate"), pl.col("interval_h")).alias("a"))
    # 0.0001 per 1h x 8760 = 0.876 by hand.
    assert out["a"].to_list() == pytest.approx([0.5475, 0.876])


def test_rate_8h_equivalent_of_1h_and_4h_rates() -> None:
    # 0.01% per 1h = 0.08% per 8h; 0.02% per 4h = 0.04% per 8h.
    assert rate_8h_equivalent(0.0001, 1.0) == pytest.approx(0.0008)
    assert rate_8h_equivalent(0.0002, 4.0) == pytest.approx(0.0004)


@given(
    rate=st.floats(-0.05, 0.05, allow_nan=False),
    k=st.floats(-10, 10, allow_nan=False),
    interval_h=st.sampled_from([1.0, 2.0, 4.0, 8.0]),
)
def test_annualisation_is_linear_in_rate_and_inverse_in_interval(
    rate: float, k: float, interval_h: float
) -> None:
    assert annualized_rate(k * rate, interval_h) == pytest.approx(
        k * annualized_rate(rate, interval_h), abs=1e-12
    )
    assert annualized_rate(rate, 2 * interval_h) == pytest.approx(
        annualized_rate(rate, interval_h) / 2, abs=1e-12
    )


def _funding() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "venue": ["binance", "binance", "bybit", "okx", "okx", "binance"],
            "instrument": [
                "BTC-USDT-PERP",
                "BTC-USDT-PERP",
                "BTC-USDT-PERP",
                "BTC-USDT-PERP",
                "BTC-USDT-PERP",
                "ETH-USDT-PERP",
            ],
            "ts": [_ts(0), _ts(8), _ts(8), _ts(4), _ts(0), _ts(8)],
            "rate": [0.0001, 0.0003, 0.00005, 0.0002, 0.0009, 0.0001],
            "interval_h": [8.0, 8.0, 1.0, 4.0, 4.0, 8.0],
            "mark_px": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )


def test_latest_funding_keeps_the_last_settlement_per_venue_and_instrument() -> None:
    out = latest_funding(_funding())
    assert out.columns == _funding().columns
    assert out.select("venue", "instrument", "rate").rows() == [
        ("binance", "BTC-USDT-PERP", 0.0003),
        ("binance", "ETH-USDT-PERP", 0.0001),
        ("bybit", "BTC-USDT-PERP", 0.00005),
        ("okx", "BTC-USDT-PERP", 0.0002),  # 04:00 beats 00:00 although it comes first
    ]


def test_latest_funding_rejects_a_frame_without_rate() -> None:
    with pytest.raises(ValueError, match="rate"):
        latest_funding(_funding().drop("rate"))


def test_cross_venue_funding_oi_weighted_aggregate_and_spread() -> None:
    latest = latest_funding(_funding())
    oi = pl.DataFrame(
        {
            "venue": ["binance", "bybit", "okx"],
            "instrument": ["BTC-USDT-PERP"] * 3,
            "oi_usd": [3e9, 1e9, None],
        }
    )
    result = cross_venue_funding(latest, oi)
    # rate_8h by hand: binance 0.0003; bybit 0.00005*8 = 0.0004; okx 0.0002*2 = 0.0004.
    btc = result.venues.filter(pl.col("asset") == "BTC")
    assert btc["rate_8h"].to_list() == pytest.approx([0.0004, 0.0004, 0.0003])
    assert btc["venue"].to_list() == ["bybit", "okx", "binance"]
    row = result.assets.filter(pl.col("asset") == "BTC").row(0, named=True)
    # okx has a null weight and is left out: (3e9*0.0003 + 1e9*0.0004) / 4e9 = 0.000325.
    assert row["weighting"] == "oi"
    assert row["weight_coverage"] == pytest.approx(2 / 3)
    assert row["agg_rate_8h"] == pytest.approx(0.000325)
    assert row["agg_annualized"] == pytest.approx(0.000325 * 1095)
    # Spread: 0.0004 - 0.0003; the high end ties bybit/okx and goes to bybit (first by venue).
    assert row["spread_8h"] == pytest.approx(0.0001)
    assert row["spread_annualized"] == pytest.approx(0.1095)
    assert (row["high_venue"], row["low_venue"]) == ("bybit", "binance")
    eth = result.assets.filter(pl.col("asset") == "ETH").row(0, named=True)
    # ETH has no weight at all: falls back to the equal-weight mean of its one venue.
    assert eth["weighting"] == "equal"
    assert eth["agg_rate_8h"] == pytest.approx(0.0001)
    # one venue has no cross-venue spread: null, and no ends (never a venue against itself)
    assert eth["spread_8h"] is None
    assert (eth["high_venue"], eth["low_venue"]) == (None, None)


def test_cross_venue_spread_on_a_tie_never_pairs_a_venue_with_itself() -> None:
    # Three venues at the same 8h rate (the default demo): the spread is 0 between two
    # different venues, the first (high end) and the last (low end) by venue.
    latest = pl.DataFrame(
        {
            "venue": ["sim2", "sim1", "sim3"],
            "instrument": ["BTC-USDT-PERP"] * 3,
            "ts": [datetime(2024, 1, 1, tzinfo=UTC)] * 3,
            "rate": [0.0001, 0.0001, 0.00005],
            "interval_h": [8.0, 8.0, 4.0],
        }
    )
    row = cross_venue_funding(latest).assets.row(0, named=True)
    assert row["spread_8h"] == pytest.approx(0.0, abs=1e-18)
    assert (row["high_venue"], row["low_venue"]) == ("sim1", "sim3")


def test_cross_venue_funding_without_oi_uses_equal_weights() -> None:
    result = cross_venue_funding(latest_funding(_funding()))
    row = result.assets.filter(pl.col("asset") == "BTC").row(0, named=True)
    # (0.0003 + 0.0004 + 0.0004) / 3 by hand.
    assert row["weighting"] == "equal"
    assert row["agg_rate_8h"] == pytest.approx(0.0011 / 3)
    assert row["n_venues"] == 3


def test_aggregate_funding_oi_and_volume_weighted_over_time() -> None:
    frame = pl.DataFrame(
        {
            "venue": ["binance", "bybit", "binance", "bybit"],
            "instrument": ["BTC-USDT-PERP", "BTC-USD-PERP", "BTC-USDT-PERP", "BTC-USDT-PERP"],
            "ts": [_ts(0), _ts(0), _ts(8), _ts(8)],
            "rate": [0.0001, 0.00005, 0.0002, 0.0004],
            "interval_h": [8.0, 1.0, 8.0, 8.0],
            "oi_usd": [3.0, 1.0, None, None],
            "volume_usd": [1.0, 1.0, 1.0, 3.0],
        }
    )
    by_oi = aggregate_funding(frame)
    # 00:00: (3 x 0.0001 + 1 x 0.0004) / 4 = 0.000175; 08:00 has no OI -> equal mean 0.0003.
    assert by_oi["agg_rate_8h"].to_list() == pytest.approx([0.000175, 0.0003])
    assert by_oi["agg_annualized"][0] == pytest.approx(0.000175 * 1095)
    by_volume = aggregate_funding(frame, weight_column="volume_usd")
    # 08:00 by volume: (1 x 0.0002 + 3 x 0.0004) / 4 = 0.00035.
    assert by_volume["agg_rate_8h"].to_list() == pytest.approx([0.00025, 0.00035])
    equal = aggregate_funding(frame, weight_column=None)
    assert equal["n_venues"].to_list() == [2, 2]
    assert equal["agg_rate_8h"].to_list() == pytest.approx([0.00025, 0.0003])


def test_cross_venue_funding_volume_weighting_is_labelled() -> None:
    latest = latest_funding(_funding())
    volume = pl.DataFrame(
        {"venue": ["binance", "okx"], "instrument": ["BTC-USDT-PERP"] * 2, "volume_usd": [1.0, 1.0]}
    )
    row = cross_venue_funding(latest, volume, weight_column="volume_usd").assets.row(0, named=True)
    # binance 0.0003 and okx 0.0004 weigh 1 each, bybit has no volume: 0.00035.
    assert row["weighting"] == "volume"
    assert row["agg_rate_8h"] == pytest.approx(0.00035)


def test_accumulated_funding_reproduces_the_playbook_week() -> None:
    # 21 settlements of +0.05%: 0.0105 of notional, i.e. $1,050 on $100,000 (playbook L21).
    frame = pl.DataFrame(
        {
            "venue": "binance",
            "instrument": "BTC-USDT-PERP",
            "ts": [_ts(0) + timedelta(hours=8 * i) for i in range(21)],
            "rate": [0.0005] * 21,
            "interval_h": 8.0,
        }
    )
    out = accumulated_funding(frame)
    assert out["cum_rate"][-1] * 100_000 == pytest.approx(1050.0)


@settings(max_examples=50)
@given(
    st.lists(
        st.tuples(
            st.floats(-0.003, 0.003, allow_nan=False),
            st.sampled_from([1.0, 4.0, 8.0]),
            st.one_of(st.none(), st.floats(0, 1e10, allow_nan=False)),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_weighted_aggregate_lies_between_the_venues_and_spread_is_max_minus_min(
    rows: list[tuple[float, float, float | None]],
) -> None:
    latest = pl.DataFrame(
        {
            "venue": [f"v{i}" for i in range(len(rows))],
            "instrument": "BTC-USDT-PERP",
            "ts": _ts(0),
            "rate": [r for r, _, _ in rows],
            "interval_h": [h for _, h, _ in rows],
        }
    )
    oi = latest.select("venue", "instrument").with_columns(
        pl.Series("oi_usd", [w for _, _, w in rows], dtype=pl.Float64)
    )
    row = cross_venue_funding(latest, oi).assets.row(0, named=True)
    r8 = [r * 8 / h for r, h, _ in rows]
    assert min(r8) - 1e-15 <= row["agg_rate_8h"] <= max(r8) + 1e-15
    if len(rows) == 1:  # one venue: no cross-venue spread
        assert row["spread_8h"] is None
    else:
        assert row["spread_8h"] == pytest.approx(max(r8) - min(r8), abs=1e-15)
        assert (row["high_venue"], row["high_instrument"]) != (
            row["low_venue"],
            row["low_instrument"],
        )
    usable = any(w is not None and w >= MIN_WEIGHT for _, _, w in rows)
    assert row["weighting"] == ("oi" if usable else "equal")
    # The over-time aggregate agrees with the snapshot one on the same rows.
    over_time = aggregate_funding(latest.join(oi, on=["venue", "instrument"]))
    assert over_time["agg_rate_8h"][0] == pytest.approx(row["agg_rate_8h"], abs=1e-15)
