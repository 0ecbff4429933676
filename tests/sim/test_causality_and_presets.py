"""Causality (liquidation engine on/off, funding vs premium) and the scenario presets."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from perpscope.sim import PRESETS, SimConfig, run_simulation
from tests.sim.conftest import PRESET_DAYS
from tests.sim.helpers import cascade_hours, hourly_returns, rate_8h


def _biggest_cascade(tables: dict[str, pl.DataFrame]) -> dict[str, object]:
    return cascade_hours(tables, 1).row(0, named=True)


def _perp_closes(tables: dict[str, pl.DataFrame], venue: str, instrument: str) -> pl.DataFrame:
    return tables["ohlcv"].filter(venue=venue, instrument=instrument, kind="trade").sort("ts")


def test_a_cascade_moves_price_further_with_the_liquidation_engine_on() -> None:
    on = run_simulation(SimConfig(seed=5, days=14, scenario="long-squeeze")).tables
    off = run_simulation(
        SimConfig(seed=5, days=14, scenario="long-squeeze", liquidations=False)
    ).tables
    assert off["liquidations"].height == 0
    c = _biggest_cascade(on)
    hour: datetime = c["hour"]  # type: ignore[assignment]
    moves = []
    for tables in (on, off):
        bars = _perp_closes(tables, str(c["venue"]), str(c["instrument"]))
        before = bars.filter(pl.col("ts") < hour)["c"][-1]
        window = bars.filter(pl.col("ts") >= hour, pl.col("ts") < hour + pl.duration(hours=3))
        extreme = window["l"].min() if c["long_usd"] > c["short_usd"] else window["h"].max()
        moves.append(abs(np.log(extreme / before)))
    assert moves[0] > 1.2 * moves[1]


@pytest.mark.slow
def test_funding_is_positive_above_the_index_and_negative_well_below(
    default_run: dict[str, pl.DataFrame],
) -> None:
    # The premium bars hold every step's premium (perp / index - 1) in their high and low, so
    # "the perp traded above the index all interval" is: every bar low of the interval > 0.
    # By the formula a positive mean premium gives a positive rate, and a mean premium below
    # -0.05% per 8h (scaled) a negative one.
    prem = default_run["ohlcv"].filter(kind="premium").select("venue", "instrument", "ts", "h", "l")
    per_interval = (
        default_run["funding"]
        .join(prem, on=["venue", "instrument"], suffix="_bar")
        .filter(
            pl.col("ts_bar") < pl.col("ts"),
            pl.col("ts_bar") >= pl.col("ts") - pl.duration(hours=1) * pl.col("interval_h"),
        )
        .group_by("venue", "instrument", "ts")
        .agg(pl.col("l").min().alias("lo"), pl.col("h").max().alias("hi"),
             pl.col("rate").first(), pl.col("interval_h").first())
    )  # fmt: skip
    above = per_interval.filter(pl.col("lo") > 0)
    under = per_interval.filter(pl.col("hi") < 0)
    below = per_interval.filter(pl.col("hi") < -0.0005 * pl.col("interval_h") / 8.0)
    assert above.height > 20
    assert under.height > 20
    # A whole 8h interval with every premium bar below -0.05% is rare in the calibrated market
    # (seed 11 has 2 in 90 days since the default market holds position traders): the sign
    # check needs a few, not many.
    assert below.height >= 2
    assert (above["rate"] > 0).all()
    # a premium below zero all interval never pays more than the interest rate's 0.01% / 8h
    assert (under["rate"] <= 0.0001 * under["interval_h"] / 8.0 + 1e-15).all()
    assert (below["rate"] < 0).all()


def _oi_total(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return tables["open_interest"].group_by("ts").agg(pl.col("oi_usd").sum()).sort("ts")


@pytest.mark.parametrize(
    ("scenario", "side", "sign"), [("long-squeeze", "long", 1.0), ("short-squeeze", "short", -1.0)]
)
def test_squeeze_presets_build_extreme_funding_and_oi_before_a_one_sided_cascade(
    preset_runs: dict[str, dict[str, pl.DataFrame]], scenario: str, side: str, sign: float
) -> None:
    t = preset_runs[scenario]
    # The market-wide hour with the most liquidations of the crowded side...
    by_hour = (
        t["liquidations"]
        .group_by(pl.col("ts").dt.truncate("1h").alias("hour"))
        .agg(
            pl.col("notional_usd").filter(pl.col("side") == side).sum().alias("crowded"),
            pl.col("notional_usd").sum().alias("total"),
        )
    )
    c = by_hour.sort("crowded", "hour", descending=True).row(0, named=True)
    hour: datetime = c["hour"]
    # ...is a cascade: one-sided, and the largest liquidation hour of the whole run.
    assert c["crowded"] > 3.0 * (c["total"] - c["crowded"])
    assert c["total"] == by_hour["total"].max()
    # ...at the preset's shock (the first bar opens at the run's start).
    at = PRESETS[scenario].shocks[0].at_frac * PRESET_DAYS * 24
    shock = t["ohlcv"]["ts"].min() + timedelta(hours=at)
    assert abs((hour - shock).total_seconds()) <= 3 * 3600
    # Before it: the playbook's scenario 1/2 funding, "+0.08% or higher" (mirrored for the
    # short squeeze), as the mean per 8h over the two days before...
    before = rate_8h(t["funding"]).filter(
        pl.col("ts") <= hour, pl.col("ts") > hour - pl.duration(hours=48)
    )
    assert sign * before["r8"].mean() >= 0.0008
    # ...and "OI rising or elevated": the last reading before the cascade is well above the
    # first day's. (It is not always near its high so far: on some seeds an organic squeeze
    # of the crowd a day or two before the shock has already cut it; docs/simulator.md gives
    # the figures over more seeds.)
    oi = _oi_total(t).filter(pl.col("ts") <= hour)
    assert oi["oi_usd"][-1] > 1.5 * oi["oi_usd"].head(24).median()


def test_vacuum_oi_retreats_to_its_lows_on_neutral_funding_calm_prices_and_no_cascade(
    preset_runs: dict[str, dict[str, pl.DataFrame]],
) -> None:
    # The playbook's scenario 5 (L257-261) read from the tables of the 14-day run: the build-up
    # is the first 75% (hour 252); the last hour before it is the reading.
    vac, base = preset_runs["vacuum"], preset_runs["default"]
    oi = _oi_total(vac)["oi_usd"].to_numpy()
    end = int(0.75 * PRESET_DAYS * 24) - 1
    # "At or near 30-day lows and declining": OI at the end of the build-up is x0.68 / x0.66
    # / x0.75 the first day's median on seeds 7 / 11 / 23 (x0.75 / x0.79 on seeds 1, 2), the
    # lowest of all hours so far on every seed, and 16% / 25% / 19% under its level 48 hours
    # earlier (15-18% on seeds 1, 2).
    assert oi[end] < 0.85 * float(np.median(oi[:24]))
    assert (oi[: end + 1] <= oi[end]).mean() <= 0.05
    assert oi[end] / oi[end - 48] - 1.0 < -0.1
    # ...and it rebuilds once traders return (x1.45 / x1.47 / x1.41 by the run's end).
    assert oi[-1] > 1.2 * oi[end]
    # "Near 0% (+/- 0.01%)": funding prints the interest rate, 0.01% per 8h, at the median,
    # and within a bp of it at 97% / 90% / 82% of the build-up's settlements (93% / 87% on
    # seeds 1, 2; a thin maker lets sim3's 4-hour print, whose clamp is half as wide, drift).
    cut = _oi_total(vac)["ts"][end]
    r8 = rate_8h(vac["funding"]).filter(pl.col("ts") <= cut)["r8"]
    assert r8.median() == pytest.approx(0.0001, abs=1e-9)
    assert ((r8 - 0.0001).abs() <= 0.0001).mean() >= 0.75
    # "A low-volatility environment": BTC's hourly returns over the build-up have 0.73 / 0.57
    # / 0.47 times the default market's standard deviation on the same seed.
    n = end + 1
    calm = hourly_returns(vac, "sim1", "BTC-USDT-PERP")[:n].std()
    assert calm < 0.8 * hourly_returns(base, "sim1", "BTC-USDT-PERP")[:n].std()
    # "No liquidation fuel" (5x and 10x positions only): no hour liquidates 1% of OI (the
    # largest is 0.04% / 0.04% / 0.64% of the run's largest OI).
    hourly = (
        vac["liquidations"]
        .group_by(pl.col("ts").dt.truncate("1h"))
        .agg(pl.col("notional_usd").sum())
    )
    assert hourly.height == 0 or hourly["notional_usd"].max() < 0.01 * oi.max()


def test_same_seed_same_tables_and_different_seed_different_tables() -> None:
    a = run_simulation(SimConfig(seed=3, days=2)).tables
    b = run_simulation(SimConfig(seed=3, days=2)).tables
    c = run_simulation(SimConfig(seed=4, days=2)).tables
    assert a.keys() == b.keys() == c.keys()
    for name in a:
        assert a[name].equals(b[name]), name
    for name in ("ohlcv", "funding_snapshot", "open_interest", "sim_positions"):
        assert not a[name].equals(c[name]), name


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenario 'melt-up'"):
        SimConfig(scenario="melt-up")
