"""The six-scenario classifier on hand-built frames: each scenario named where its playbook
conditions hold, and not where a defining condition is broken."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from perpscope.signals import MarketData, classify

T0 = datetime(2024, 3, 1, tzinfo=UTC)
H = 24 * 30
AT = T0 + timedelta(hours=H)


def _market(
    rate: float, oi_path: np.ndarray, closes: np.ndarray, dense: dict[float, tuple[float, float]]
) -> MarketData:
    ts = [T0 + timedelta(hours=i) for i in range(H)]
    c = pl.DataFrame(
        {
            "venue": "v1",
            "instrument": "BTC-USDT-PERP",
            "ts": ts,
            "o": closes,
            "h": closes + 0.5,
            "l": closes - 0.5,
            "c": closes,
            "volume": 100.0,
        }
    )
    f = pl.DataFrame(
        [
            (v, "BTC-USDT-PERP", T0 + timedelta(hours=8 * k), rate, 8.0)
            for v in ("a", "b")
            for k in range(1, H // 8 + 1)
        ],
        schema=["venue", "instrument", "ts", "rate", "interval_h"],
        orient="row",
    )
    o = pl.DataFrame({"ts": [t + timedelta(hours=1) for t in ts], "oi_usd": oi_path})
    price = float(closes[-1])
    pxs = price * (1 + np.arange(-40, 41) * 0.005)
    lv = pl.DataFrame(
        {
            "price": pxs,
            "long_usd": np.where(pxs < price, 1e3, 0.0),
            "short_usd": np.where(pxs > price, 1e3, 0.0),
        }
    )
    if dense:
        lv = pl.concat(
            [
                lv,
                pl.DataFrame(
                    {
                        "price": [p * price / 100 for p in dense],
                        "long_usd": [v[0] for v in dense.values()],
                        "short_usd": [v[1] for v in dense.values()],
                    }
                ),
            ]
        )
    return MarketData("BTC", funding=f, candles=c, oi=o, levels=lv)


FLAT = np.full(H, 100.0)
RISING_OI = np.linspace(1000.0, 1300.0, H)


def test_long_squeeze() -> None:
    # lines 226-230: +0.08%+, OI rising, dense long liquidations 4% below
    r = classify(_market(0.0009, RISING_OI, FLAT, {96.0: (1e6, 0.0)}), AT)
    assert r.scenario == "long_squeeze"
    assert r.confidence >= 0.6


def test_long_squeeze_needs_the_funding_extreme() -> None:
    r = classify(_market(0.0001, RISING_OI, FLAT, {96.0: (1e6, 0.0)}), AT)
    assert r.scenario != "long_squeeze"


def test_short_squeeze() -> None:
    r = classify(_market(-0.0006, RISING_OI, FLAT, {104.0: (0.0, 1e6)}), AT)
    assert r.scenario == "short_squeeze"


def test_short_squeeze_needs_negative_funding() -> None:
    r = classify(_market(0.0006, RISING_OI, FLAT, {104.0: (0.0, 1e6)}), AT)
    assert r.scenario != "short_squeeze"


def test_vacuum() -> None:
    # lines 258-260: funding ~0, OI at its 30-day low and falling, no clusters
    r = classify(_market(0.00005, np.linspace(1300.0, 1000.0, H), FLAT, {}), AT)
    assert r.scenario == "vacuum"


def test_no_vacuum_when_oi_is_high() -> None:
    r = classify(_market(0.00005, RISING_OI, FLAT, {}), AT)
    assert r.scenario != "vacuum"


def test_healthy_trend() -> None:
    # lines 247-249: +0.02% funding in an uptrend (+10% over the month), OI rising, no clusters
    r = classify(_market(0.0002, RISING_OI, np.linspace(90.0, 100.0, H), {}), AT)
    assert r.scenario == "healthy_trend"


def test_no_healthy_trend_without_a_trend() -> None:
    r = classify(_market(0.0002, RISING_OI, FLAT, {}), AT)
    assert r.scenario != "healthy_trend"


def test_pre_event_build() -> None:
    # lines 263-265: +0.03% steady, OI +20% in the last 48h, dense clusters on both sides
    oi_path = np.concatenate([np.full(H - 48, 1000.0), np.linspace(1000.0, 1200.0, 48)])
    r = classify(_market(0.0003, oi_path, FLAT, {98.0: (1e6, 0.0), 102.0: (0.0, 1e6)}), AT)
    assert r.scenario == "pre_event_build"


def test_no_pre_event_build_without_the_oi_surge() -> None:
    r = classify(
        _market(0.0003, np.full(H, 1000.0), FLAT, {98.0: (1e6, 0.0), 102.0: (0.0, 1e6)}), AT
    )
    assert r.scenario != "pre_event_build"


def test_exhaustion() -> None:
    # lines 253-255: +8% uptrend, funding extreme and rising, OI accelerating, longs below
    rate_path = 0.0009
    closes = np.concatenate([np.full(H - 168, 92.0), np.linspace(92.0, 100.0, 168)])  # +8.7%/7d
    oi_path = np.concatenate([np.linspace(1000.0, 1050.0, H - 24), np.linspace(1050.0, 1200.0, 24)])
    m = _market(rate_path, oi_path, closes, {96.0: (1e6, 0.0)})
    assert m.funding is not None
    f = m.funding.with_columns(  # funding climbing into the end: more extreme over the last day
        pl.when(pl.col("ts") > AT - timedelta(hours=20))
        .then(0.0012)
        .otherwise(pl.col("rate"))
        .alias("rate")
    )
    r = classify(MarketData("BTC", funding=f, candles=m.candles, oi=m.oi, levels=m.levels), AT)
    assert r.scenario == "exhaustion"


def test_nothing_fits_is_none() -> None:
    # mild funding, flat OI at mid-range, no trend, one-sided sparse map
    oi_path = 1000.0 + 50.0 * np.sin(np.arange(H) / 24.0)
    r = classify(_market(0.0002, oi_path, FLAT, {}), AT)
    assert r.scenario == "none"


def test_missing_heatmap_is_named_in_the_evidence() -> None:
    m = _market(0.0009, RISING_OI, FLAT, {96.0: (1e6, 0.0)})
    r = classify(MarketData("BTC", funding=m.funding, candles=m.candles, oi=m.oi), AT)
    assert {e.name: e.value for e in r.evidence}["missing inputs"] == "levels"


def _exhaustion_market(oi_path: np.ndarray) -> MarketData:
    """Every exhaustion condition but OI held (lines 253-255): closes flat at 92 then +8.7% over
    the last 7 days (trend grade 1); funding +0.09% rising to +0.12% in the last 20h (extreme
    with the trend and more so: 0.12% / 0.05% clipped, grade 1); dense longs 4% below (density
    far above 2, grade 1). ``oi_path`` decides the OI grade."""
    closes = np.concatenate([np.full(H - 168, 92.0), np.linspace(92.0, 100.0, 168)])
    m = _market(0.0009, oi_path, closes, {96.0: (1e6, 0.0)})
    assert m.funding is not None
    f = m.funding.with_columns(
        pl.when(pl.col("ts") > AT - timedelta(hours=20))
        .then(0.0012)
        .otherwise(pl.col("rate"))
        .alias("rate")
    )
    return MarketData("BTC", funding=f, candles=m.candles, oi=m.oi, levels=m.levels)


def _oi_knots(at_7d: float, at_24h: float, last: float) -> np.ndarray:
    """An OI path whose as-of values 7 days and 24h before ``AT`` and at ``AT`` are the three
    given (OI row i is stamped T0 + (i + 1)h: the 7-day value is row H - 169, the 24h one row
    H - 25), flat before, linear between."""
    return np.concatenate(
        [
            np.full(H - 169, at_7d),
            np.linspace(at_7d, at_24h, 145)[:-1],
            np.linspace(at_24h, last, 25),
        ]
    )


def test_exhaustion_needs_oi_accelerating_not_a_steady_rise() -> None:
    # OI rising all week at a steady pace: rising, not accelerating (L254). 7-day +7%
    # (1000 -> 1070, 1%/day), last 24h 1070/1060 - 1 = +0.94%: 0.94x the daily pace, grade 0.
    # (The old rule graded it 0.94/3 = 0.31 and scored exhaustion (1+1+0.31+1)/4 = 0.83.)
    r = classify(_exhaustion_market(_oi_knots(1000.0, 1060.0, 1070.0)), AT)
    assert r.scores["exhaustion"] == 0.0
    assert r.scenario == "long_squeeze"  # the same crowd without the acceleration


def test_exhaustion_oi_grade_is_half_at_twice_the_weekly_pace() -> None:
    # 7-day +7% (1000 -> 1070, 1%/day); last 24h 1070/(1070/1.02) - 1 = +2%: twice the daily
    # average, grade (2 - 1) / 2 = 0.5; the other three conditions grade 1: (1+1+0.5+1)/4.
    r = classify(_exhaustion_market(_oi_knots(1000.0, 1070.0 / 1.02, 1070.0)), AT)
    assert abs(r.scores["exhaustion"] - 0.875) < 1e-3


def test_exhaustion_at_three_times_the_weekly_pace() -> None:
    # 7-day +7% (1%/day); last 24h +3%: 3x the daily average (L168), grade 1, mean 1.0. On a tie
    # with long_squeeze (1.0) the scenario with more conditions wins.
    r = classify(_exhaustion_market(_oi_knots(1000.0, 1070.0 / 1.03, 1070.0)), AT)
    assert r.scores["exhaustion"] == 1.0
    assert r.scenario == "exhaustion"


def test_exhaustion_not_on_a_rebound_after_a_falling_week() -> None:
    # OI down 10% over the week and +2% in the last 24h: not "accelerating upward" (the old
    # rule divided by a floored weekly pace and graded this 1)
    r = classify(_exhaustion_market(_oi_knots(1000.0, 900.0 / 1.02, 900.0)), AT)
    assert r.scores["exhaustion"] == 0.0
    assert r.scenario != "exhaustion"


def test_exhaustion_is_not_the_oi_divergence() -> None:
    # the simulator's exhaustion preset's shape: price up, funding extreme and rising, OI
    # falling all month (-20%). That is the playbook's bearish OI divergence (L169-175, L350),
    # not scenario 4's "OI: Accelerating upward" (L254); no scenario's OI condition holds.
    r = classify(_exhaustion_market(np.linspace(1250.0, 1000.0, H)), AT)
    assert r.scores["exhaustion"] == 0.0
    assert r.scenario == "none"


def test_exhaustion_oi_falling_today_fails_without_a_week_of_history() -> None:
    # only 100 hours of OI, falling 1200 -> 1100: the 7-day change is unknown, but OI fell over
    # the last 24h, which is not "accelerating upward" whatever the week did: grade 0, not left out
    m = _exhaustion_market(np.linspace(1000.0, 1100.0, H))
    assert m.oi is not None
    short = pl.DataFrame({"ts": m.oi["ts"].tail(100), "oi_usd": np.linspace(1200.0, 1100.0, 100)})
    r = classify(
        MarketData("BTC", funding=m.funding, candles=m.candles, oi=short, levels=m.levels), AT
    )
    assert math.isnan({e.name: e.value for e in r.evidence}["oi_change_168h"])
    assert r.scores["exhaustion"] == 0.0
