"""The market state the rules read, on hand-built hourly series with known answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from perpscope.alerts.engine import AlertEngine
from perpscope.alerts.metrics import liq_clusters, market_state, with_liq_distance
from perpscope.domain.alert_rules import BUILTINS
from perpscope.sim import SimConfig, run_simulation

T0 = datetime(2026, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)


def series(
    venue: str, hours: int, price: list[float], oi: list[float], rate: float = 0.0001,
    interval_h: float = 8.0, asset: str = "BTC",
) -> tuple[pl.DataFrame, pl.DataFrame]:  # fmt: skip
    """Funding snapshots and OI of one perpetual, one row per hour from T0."""
    inst = f"{asset}-USDT-PERP"
    ts = [T0 + k * H for k in range(hours)]
    funding = pl.DataFrame({"venue": venue, "instrument": inst, "ts": ts, "rate": rate,
                            "interval_h": interval_h, "mark_px": price})  # fmt: skip
    o = pl.DataFrame({"venue": venue, "instrument": inst, "ts": ts, "oi_usd": oi})
    return funding, o


def peaked(hours: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Price rising 1 an hour; OI rising to hour 40, then falling (100 - |h - 40|).

    24h changes: price always up. OI at h vs h-24: |h-40| > |h-64| from h = 53 on, so OI's 24h
    change is negative from hour 53 (zero at 52: no sign, not a divergence). Divergence hours
    at hour h >= 53: h - 53.
    """
    price = [1000.0 + k for k in range(hours)]
    oi = [1e6 * (100 - abs(k - 40)) for k in range(hours)]
    return series("v1", hours, price, oi)


@pytest.mark.parametrize(("hour", "expected"), [(52, 0.0), (53, 0.0), (54, 1.0), (99, 46.0),
                                                (101, 48.0), (102, 49.0)])  # fmt: skip
def test_divergence_hours_count_from_the_first_opposite_hour(hour: int, expected: float) -> None:
    f, o = peaked(110)
    state = market_state(f, o, T0 + hour * H)
    row = state.filter(pl.col("level") == "instrument").row(0, named=True)
    assert row["divergence_hours"] == expected
    assert row["price_change_24h"] == pytest.approx((1000 + hour) / (1000 + hour - 24) - 1)


def test_the_divergence_rule_fires_once_past_48_hours() -> None:
    """48h is not "more than 48 hours": hour 101 (48h) stays quiet, hour 102 (49h) fires."""
    f, o = peaked(110)
    engine = AlertEngine([BUILTINS["oi_divergence"]])
    fired = [h for h in range(60, 110) if engine.evaluate(market_state(f, o, T0 + h * H))]
    assert fired == [102]


def test_only_rows_up_to_now_are_read() -> None:
    """A state at hour 60 is the same with or without the rows after it (no look-ahead)."""
    f, o = peaked(110)
    cut = T0 + 60 * H
    full = market_state(f, o, cut)
    part = market_state(f.filter(pl.col("ts") <= cut), o.filter(pl.col("ts") <= cut), cut)
    assert full.sort("level").equals(part.sort("level"))


def test_oi_surge_sums_the_venues_and_spread_normalises_intervals() -> None:
    """v1: OI 100 -> 105, funding 0.0001 per 8h; v2: OI 100 -> 116, 0.000151 per 4h = 0.000302
    per 8h. Total OI 200 -> 221: +10.5%. Spread 0.000302 - 0.0001 = 0.000202."""
    f1, o1 = series("v1", 25, [100.0] * 25, [100.0] * 24 + [105.0])
    f2, o2 = series("v2", 25, [100.0] * 25, [100.0] * 24 + [116.0], rate=0.000151, interval_h=4.0)
    state = market_state(pl.concat([f1, f2]), pl.concat([o1, o2]), T0 + 24 * H)
    btc = state.filter(pl.col("level") == "asset").row(0, named=True)
    assert (btc["venue"], btc["instrument"]) == ("all", "BTC")
    assert btc["oi_usd_total"] == 221.0
    assert btc["oi_change_24h_total"] == pytest.approx(0.105)
    assert btc["funding_spread_8h"] == pytest.approx(0.000202)
    assert (btc["funding_hi_venue"], btc["funding_lo_venue"]) == ("v2", "v1")
    events = AlertEngine([BUILTINS["oi_surge"], BUILTINS["funding_spread"]]).evaluate(state)
    assert [e.rule for e in events] == ["oi_surge"]  # 0.0202% is not above 0.03%
    assert events[0].message == "BTC open interest +10.5% in 24h ($221, was $200), above +10.0%"


def test_the_spread_needs_two_venues_and_the_boundary_does_not_fire() -> None:
    """0.0004 - 0.0001 = 0.0003 exactly: not above 0.03%."""
    f1, o1 = series("v1", 2, [100.0] * 2, [1.0] * 2, rate=0.0001)
    f2, o2 = series("v2", 2, [100.0] * 2, [1.0] * 2, rate=0.0004)
    both = market_state(pl.concat([f1, f2]), pl.concat([o1, o2]), T0 + H)
    assert both.filter(pl.col("level") == "asset")["funding_spread_8h"][0] == pytest.approx(3e-4)
    assert AlertEngine([BUILTINS["funding_spread"]]).evaluate(both) == []
    one = market_state(f1, o1, T0 + H)
    assert one.filter(pl.col("level") == "asset")["funding_spread_8h"][0] is None


def test_a_series_that_stopped_is_left_out() -> None:
    """Rows end at hour 10; at hour 12 the series is still read, at hour 14 it is stale."""
    f, o = series("v1", 11, [100.0] * 11, [1.0] * 11)
    assert market_state(f, o, T0 + 12 * H).filter(pl.col("level") == "instrument").height == 1
    assert market_state(f, o, T0 + 14 * H).filter(pl.col("level") == "instrument").height == 0


def test_liquidation_distance_is_measured_from_the_current_price() -> None:
    """Clusters at 98 and 103 with price 100: nearest is 98, 2% below (long liquidations)."""
    state = pl.DataFrame({"level": ["instrument"], "asset": ["BTC"], "venue": ["v1"],
                          "instrument": ["BTC-USDT-PERP"], "ts": [T0],
                          "price": [100.0]})  # fmt: skip
    clusters = pl.DataFrame({"venue": ["v1", "v1"], "instrument": ["BTC-USDT-PERP"] * 2,
                             "liq_cluster_px": [103.0, 98.0],
                             "liq_cluster_usd": [5e6, 7e6]})  # fmt: skip
    row = with_liq_distance(state, clusters).row(0, named=True)
    assert row["liq_cluster_distance"] == pytest.approx(0.02)
    assert (row["liq_cluster_px"], row["liq_cluster_side"], row["liq_cluster_usd"]) == (
        98.0, "long", 7e6
    )  # fmt: skip
    (event,) = AlertEngine([BUILTINS["liq_proximity"]]).evaluate(with_liq_distance(state, clusters))
    assert event.message == (
        "v1 BTC-USDT-PERP at 100.00 is 2.00% from a dense long-liquidation cluster at 98.00 "
        "($7.00M, ESTIMATED)"
    )


def test_liquidation_clusters_of_a_simulated_market_are_dense_and_near_price() -> None:
    """On a simulated week, every series with enough bars gets clusters within the 20% window,
    each at least 3x the window's mean bin (the density the rule calls dense)."""
    sim = run_simulation(SimConfig(seed=11, days=7, assets=("BTC",), venues=("sim1",)))
    candles = sim.tables["ohlcv"].filter(pl.col("kind") == "trade")
    oi = sim.tables["open_interest"]
    now = candles["ts"].max() + H
    clusters = liq_clusters(candles, oi, now)
    assert clusters.height >= 1
    last = candles.sort("ts")["c"][-1]
    assert ((clusters["liq_cluster_px"] / last - 1).abs() <= 0.2).all()
    strict = liq_clusters(candles, oi, now, min_density=1e9)
    assert strict.is_empty()


@pytest.mark.slow
def test_carrying_the_previous_state_gives_the_whole_window_answer() -> None:
    """Hour by hour on a simulated market and on the hand-built one, the state computed from
    the previous tick's state equals the state computed from the whole 96h window."""
    sim = run_simulation(SimConfig(seed=23, days=6))
    markets = [
        (
            sim.tables["funding_snapshot"],
            sim.tables["open_interest"],
            sim.tables["funding_snapshot"]["ts"].min(),
        ),
        (*peaked(110), T0),
    ]
    for funding, oi, t0 in markets:
        previous = None
        for k in range(1, 110):
            now = t0 + k * H
            full = market_state(funding, oi, now)
            step = market_state(funding, oi, now, previous)
            cols = full.columns
            order = ["level", "venue", "instrument"]
            assert step.select(cols).sort(order).equals(full.sort(order)), now
            previous = step
