"""The six-scenario classifier on hand-built frames: each scenario named where its playbook
conditions hold, and not where a defining condition is broken."""

from __future__ import annotations

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
