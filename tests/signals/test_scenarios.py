"""The six-scenario classifier on hand-built frames: each scenario named where its playbook
conditions hold, and not where a defining condition is broken."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from perpscope.signals import MarketData, classify
from perpscope.signals.scenarios import ScenarioReading

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


PRE_EVENT_OI = np.concatenate([np.full(H - 48, 1000.0), np.linspace(1000.0, 1200.0, 48)])


def _evidence(r: ScenarioReading) -> dict[str, object]:
    return {e.name: e.value for e in r.evidence}


def test_pre_event_build_reads_clusters_up_to_5_percent_away_on_both_sides() -> None:
    # "close to current price" (L265) is within 5%. The map's bins are 0.5% of price from it:
    # a level at 95.0 falls in the bin [95.0, 95.5), centre -4.75%; one at 104.9 in [104.5,
    # 105.0), centre +4.75%: both within 5%, neither within 3%.
    r = classify(_market(0.0003, PRE_EVENT_OI, FLAT, {95.0: (1e6, 0.0), 104.9: (0.0, 1e6)}), AT)
    ev = _evidence(r)
    assert (ev["long_near_5"], ev["short_near_5"]) == (1.0, 1.0)
    assert (ev["long_near_3"], ev["short_near_3"]) == (0.0, 0.0)
    assert r.scenario == "pre_event_build"


def test_no_pre_event_build_when_one_side_is_beyond_5_percent() -> None:
    # a level at 105.0 falls in the bin [105.0, 105.5), centre +5.25%: no short cluster within 5%
    r = classify(_market(0.0003, PRE_EVENT_OI, FLAT, {95.0: (1e6, 0.0), 105.0: (0.0, 1e6)}), AT)
    ev = _evidence(r)
    assert (ev["long_near_5"], ev["short_near_5"]) == (1.0, 0.0)
    assert r.scores["pre_event_build"] == 0.0
    assert r.scenario != "pre_event_build"


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
    # rule divided by a floored weekly pace and graded this 1). With price 5% off its high the
    # divergence form does not apply either (at the high it would: see below).
    rebound = _oi_knots(1000.0, 900.0 / 1.02, 900.0)
    r = classify(_off_the_high(0.05, rebound), AT)
    assert r.scores["exhaustion"] == 0.0
    assert r.scenario != "exhaustion"
    # at its high, the week's -10% OI under +8.7% price is a full divergence (ratio 1.15)
    assert classify(_exhaustion_market(rebound), AT).scenario == "exhaustion"


def test_exhaustion_reads_the_oi_divergence_form() -> None:
    # the simulator's exhaustion preset's shape: price up to its high, funding extreme and
    # rising, OI falling all month (1250 -> 1000). The playbook's OI divergence ("Price is making
    # new highs, but OI is declining", L169-171; "the move may exhaust", L150-152) is
    # exhaustion's second OI form. By hand: price over 7 days 92 -> 100, +8.6957%; OI 7 days
    # before AT is row H - 169: 1250 - 250 x 551 / 719 = 1058.4145, so OI -5.5191%; ratio
    # 5.5191 / 8.6957 = 0.6347 (>= 0.5: graded by the ratio itself); the other three grade 1:
    # (1 + 1 + 0.6347 + 1) / 4 = 0.9087.
    r = classify(_exhaustion_market(np.linspace(1250.0, 1000.0, H)), AT)
    assert r.scores["exhaustion"] == 0.9087
    assert r.scenario == "exhaustion"
    ev = {e.name: e.value for e in r.evidence}
    assert ev["exhaustion: oi"] == pytest.approx(0.6347, abs=5e-5)


P7D = 100.0 / 92.0 - 1.0
"""The exhaustion market's 7-day price change (closes 92 -> 100)."""


def test_exhaustion_divergence_ratio_edges() -> None:
    # OI 1000 seven days before, falling to 1000 x (1 - ratio x P7D) at AT (no acceleration:
    # it fell over the last day too); the ratio is the OI grade from 0.5, 0 below it
    def score(ratio: float) -> float:
        last = 1000.0 * (1.0 - ratio * P7D)
        return classify(_exhaustion_market(_oi_knots(1000.0, last + 1.0, last)), AT).scores[
            "exhaustion"
        ]

    assert score(0.49) == 0.0  # under 0.5: no divergence (L181)
    assert abs(score(0.51) - (3.0 + 0.51) / 4) < 1e-4
    assert abs(score(0.8) - (3.0 + 0.8) / 4) < 1e-4
    assert score(1.5) == 1.0  # past a full divergence the grade stays 1


def _off_the_high(off: float, oi_path: np.ndarray | None = None) -> MarketData:
    """The exhaustion market (OI ``oi_path``, default -20% over the month: the divergence) with
    the last 12 closes falling from the 13th-last (the week's high close) to ``off`` below it."""
    m = _exhaustion_market(np.linspace(1250.0, 1000.0, H) if oi_path is None else oi_path)
    assert m.candles is not None
    c = m.candles["c"].to_numpy().copy()
    c[-12:] = np.linspace(c[-13], c[-13] * (1.0 - off), 13)[1:]
    candles = m.candles.with_columns(pl.Series("c", c), pl.Series("h", c + 0.5),
                                     pl.Series("l", c - 0.5))  # fmt: skip
    # the dense longs stay 4% below the last close (the heatmap condition held)
    assert m.levels is not None
    dense = pl.DataFrame({"price": [c[-1] * 0.96], "long_usd": [1e6], "short_usd": [0.0]})
    levels = pl.concat([m.levels, dense])
    return MarketData("BTC", funding=m.funding, candles=candles, oi=m.oi, levels=levels)


def test_exhaustion_divergence_needs_price_at_its_highs() -> None:
    # 2.9% below the 7-day high close: still "making new highs" (within 3%); 3.1%: not, and
    # without its OI form nothing else holds the exhaustion up
    near = classify(_off_the_high(0.029), AT)
    assert {e.name: e.value for e in near.evidence}["price_off_7d_high"] == pytest.approx(0.029)
    assert near.scenario == "exhaustion"
    far = classify(_off_the_high(0.031), AT)
    assert far.scores["exhaustion"] == 0.0
    assert far.scenario == "none"


def test_exhaustion_funding_more_extreme_than_a_day_or_three_days_before() -> None:
    # the divergence market's funding: +0.09% until 20h before AT, then +0.12% (more extreme
    # over 24h and 72h). Falling back to +0.10% in the last 4h: lower than 24h before (0.12%)
    # but higher than 72h before (0.09%): still getting more extreme over three days.
    m = _exhaustion_market(np.linspace(1250.0, 1000.0, H))
    assert m.funding is not None

    def with_last(rate: float, hours: float) -> float:
        f = m.funding.with_columns(  # type: ignore[union-attr]
            pl.when(pl.col("ts") > AT - timedelta(hours=hours))
            .then(rate)
            .otherwise(pl.col("rate"))
            .alias("rate")
        )
        d = MarketData("BTC", funding=f, candles=m.candles, oi=m.oi, levels=m.levels)
        return classify(d, AT).scores["exhaustion"]

    assert with_last(0.0010, 4.0) > 0.6
    # down to +0.085% in the last 4h: below both the 24h (0.12%) and the 72h (0.09%) readings
    assert with_last(0.00085, 4.0) == 0.0


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
