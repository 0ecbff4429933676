"""The presets of the playbook's scenarios 3, 4 and 6 and of the basis trade, read from outputs.

Every reading comes from the output tables only (``ohlcv``, ``open_interest``, ``funding``,
``liquidations``, ``sim_positions``), aggregated over BTC's three venues. Each run is 12 days;
its build-up is the first 75% (hours 0-216) and its event starts at 75% (hour 216), as in the
squeeze presets. Thresholds were set after measuring seeds 7, 11 and 23 and checked on seeds 1-5
(``PERPSCOPE_SIM_SEEDS=1,2,3,4,5``): each test names the figures of seeds 7 / 11 / 23 and the
range over all eight where a bound was loosened for it (docs/simulator.md has them per preset).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from perpscope.sim import PRESETS
from perpscope.sim.constants import CAP_8H
from tests.sim.conftest import PLAYBOOK_DAYS, PLAYBOOK_PRESETS
from tests.sim.helpers import open_book, rate_8h

EVENT_H = 0.75 * PLAYBOOK_DAYS * 24  # hour 216


def _start(t: dict[str, pl.DataFrame]) -> datetime:
    start: datetime = t["ohlcv"]["ts"].min()
    return start


def _at(t: dict[str, pl.DataFrame], hours: float) -> datetime:
    return _start(t) + timedelta(hours=hours)


def _window(frame: pl.DataFrame, t: dict[str, pl.DataFrame], h0: float, h1: float) -> pl.DataFrame:
    return frame.filter(pl.col("ts") >= _at(t, h0), pl.col("ts") < _at(t, h1))


def _price(t: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Hourly BTC perp bars of sim1 (``ts`` = the bar's open)."""
    return t["ohlcv"].filter(venue="sim1", instrument="BTC-USDT-PERP", kind="trade").sort("ts")


def _oi(t: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Aggregate OI (USD) over the venues, per hourly snapshot."""
    return t["open_interest"].group_by("ts").agg(pl.col("oi_usd").sum()).sort("ts")


def _volume(t: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Perp traded notional (USD) summed over the venues, per hour."""
    perps = t["ohlcv"].filter(pl.col("instrument").str.ends_with("-PERP"), kind="trade")
    return perps.group_by("ts").agg(pl.col("quote_volume").sum()).sort("ts")


def _premium(t: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Mark over index minus 1 at each hourly close, per venue."""
    bars = t["ohlcv"].filter(instrument="BTC-USDT-PERP")
    mark = bars.filter(kind="mark").select("ts", "venue", pl.col("c").alias("mark"))
    index = bars.filter(kind="index").select("ts", "venue", pl.col("c").alias("index"))
    return mark.join(index, on=["ts", "venue"]).with_columns(p=pl.col("mark") / pl.col("index") - 1)


def _mean(frame: pl.DataFrame, t: dict[str, pl.DataFrame], col: str, h0: float, h1: float) -> float:
    return float(_window(frame, t, h0, h1)[col].mean())  # type: ignore[arg-type]


def _liq(t: dict[str, pl.DataFrame], h0: float, h1: float, side: str | None = None) -> float:
    liq = _window(t["liquidations"], t, h0, h1)
    if side is not None:
        liq = liq.filter(side=side)
    return float(liq["notional_usd"].sum())


def _rise(frame: pl.DataFrame, t: dict[str, pl.DataFrame], col: str, h0: float, h1: float) -> float:
    """Mean over the last 36 hours of ``[h0, h1)`` over the mean over its first 36 hours."""
    return _mean(frame, t, col, h1 - 36, h1) / _mean(frame, t, col, h0, h0 + 36)


def healthy_trend(t: dict[str, pl.DataFrame]) -> dict[str, float]:
    r8 = _window(rate_8h(t["funding"]), t, 0, EVENT_H)["r8"]
    px0 = float(_window(_price(t), t, EVENT_H - 1, EVENT_H)["c"][0])
    oi_event = float(_window(_oi(t), t, EVENT_H - 1, EVENT_H + 1)["oi_usd"][0])
    return {
        "price_rise": _rise(_price(t), t, "c", 0, EVENT_H),
        "oi_rise": _rise(_oi(t), t, "oi_usd", 0, EVENT_H),
        "volume_rise": _rise(_volume(t), t, "quote_volume", 0, EVENT_H),
        "r8_mean": float(r8.mean()),  # type: ignore[arg-type]
        "r8_positive": float((r8 > 0).mean()),
        "r8_extreme": float((r8 > 0.0005).mean()),
        "pullback": float(_window(_price(t), t, EVENT_H, EVENT_H + 6)["l"].min()) / px0 - 1,
        "pullback_liq_share": _liq(t, EVENT_H, EVENT_H + 6) / oi_event,
    }


def exhaustion(t: dict[str, pl.DataFrame]) -> dict[str, float]:
    late = (0.375 * PLAYBOOK_DAYS * 24, EVENT_H)  # hours 108-216: the late build-up
    f = rate_8h(t["funding"])
    px = _price(t)
    px0 = float(_window(px, t, EVENT_H - 1, EVENT_H)["c"][0])
    return {
        "price_rise": _rise(px, t, "c", *late),
        "oi_rise": _rise(_oi(t), t, "oi_usd", *late),
        "r8_first": _mean(f, t, "r8", late[0], late[0] + 36),
        "r8_last": _mean(f, t, "r8", late[1] - 36, late[1]),
        "drop_12h": float(_window(px, t, EVENT_H + 11, EVENT_H + 12)["c"][0]) / px0 - 1,
        "long_liq_12h": _liq(t, EVENT_H, EVENT_H + 12, "long"),
        "short_liq_12h": _liq(t, EVENT_H, EVENT_H + 12, "short"),
    }


def pre_event_build(t: dict[str, pl.DataFrame]) -> dict[str, float]:
    oi = _oi(t)
    before = oi.filter(pl.col("ts") <= _at(t, EVENT_H))["oi_usd"].to_numpy()
    # 48-hour changes (hourly snapshots) ending at or before the event
    oi48 = before[48:] / before[:-48] - 1.0
    blocks = [_liq(t, h, h + 6) for h in range(0, int(EVENT_H) - 5, 6)]
    at = _at(t, EVENT_H - 1)
    book = open_book(t["sim_positions"], at).filter(pl.col("agent") != "market_maker")
    marks = (
        t["ohlcv"]
        .filter(kind="mark", instrument="BTC-USDT-PERP", ts=at)
        .select("venue", pl.col("c").alias("mark"))
    )
    d = book.join(marks, on="venue").with_columns(
        dist=pl.col("liquidation_px") / pl.col("mark") - 1
    )
    total = float(d["notional_usd"].sum())
    near_long = d.filter(side="long").filter(pl.col("dist") > -0.05)["notional_usd"].sum()
    near_short = d.filter(side="short").filter(pl.col("dist") < 0.05)["notional_usd"].sum()
    px = _price(t)
    px0 = float(_window(px, t, EVENT_H - 1, EVENT_H)["c"][0])
    w = _window(px, t, EVENT_H, EVENT_H + 6)
    move = max(abs(float(w["l"].min()) / px0 - 1), abs(float(w["h"].max()) / px0 - 1))
    r8 = _window(rate_8h(t["funding"]), t, EVENT_H - 48, EVENT_H)["r8"]
    last3 = _window(px, t, EVENT_H - 72, EVENT_H)
    return {
        "r8_48h_mean": float(r8.mean()),  # type: ignore[arg-type]
        "r8_48h_positive": float((r8 > 0).mean()),
        "range_72h": float(last3["h"].max()) / float(last3["l"].min()) - 1,  # type: ignore[operator]
        "oi48_max": float(oi48.max()),
        "oi48_last": float(oi48[-1]),
        "cluster_long": float(near_long) / total,
        "cluster_short": float(near_short) / total,
        "catalyst_move": move,
        "catalyst_liq_share": _liq(t, EVENT_H, EVENT_H + 6) / float(before[-1]),
        "liq_6h_median_before": float(np.median(blocks)),
        "catalyst_liq": _liq(t, EVENT_H, EVENT_H + 6),
    }


def basis_bull(t: dict[str, pl.DataFrame]) -> dict[str, float]:
    r8 = rate_8h(t["funding"])
    build = _window(r8, t, 0, EVENT_H)["r8"]
    prem = _premium(t)
    pb = _window(prem, t, 0, EVENT_H)["p"]
    return {
        "r8_positive": float((build > 0).mean()),
        "r8_mean": float(build.mean()),  # type: ignore[arg-type]
        "r8_7d_min": float(build.rolling_mean(21 * 3).min()),  # type: ignore[arg-type]
        "prem_positive": float((pb > 0).mean()),
        "prem_mean": float(pb.mean()),  # type: ignore[arg-type]
        "prem_after": _mean(prem, t, "p", EVENT_H + 12, PLAYBOOK_DAYS * 24),
        "r8_after": _mean(r8, t, "r8", EVENT_H + 12, PLAYBOOK_DAYS * 24),
    }


def test_healthy_trend_price_oi_and_volume_rise_with_mild_funding_and_no_cascade(
    playbook_runs: dict[str, dict[str, pl.DataFrame]],
) -> None:
    m = healthy_trend(playbook_runs["healthy-trend"])
    # Over the build-up (last 36 h over first 36 h): price +4% / +9% / +41% on seeds 7 / 11 /
    # 23, OI x1.80 / x1.92 / x2.01, perp volume x1.93 / x1.91 / x1.24.
    assert m["price_rise"] > 1.02, m
    assert m["oi_rise"] > 1.3, m
    assert m["volume_rise"] > 1.15, m
    # Funding "mild positive in uptrend (0.01-0.03%)" (playbook L247): positive at (nearly)
    # every settlement (100% / 100% / 96%), mean above the 0.01% baseline and within the mild
    # band (0.014% / 0.015% / 0.016% per 8h; 0.012-0.020% on seeds 1-5), far under the
    # playbook's 0.05% extreme.
    assert m["r8_positive"] >= 0.9, m
    assert 0.0001 < m["r8_mean"] <= 0.0003, m
    # The event: a pullback (bar lows -1.5% / -1.7% / -1.0% below the close before it) that
    # hits no dense cluster: liquidations over its 6 hours are 0.08% / 0.15% / 0.02% of OI
    # (at most 2.8% over seeds 1-5; the pre-event catalyst liquidates 19-22%).
    assert m["pullback"] < -0.005, m
    assert m["pullback_liq_share"] < 0.05, m


def test_exhaustion_price_grinds_up_on_falling_oi_and_rising_funding_then_reverses(
    playbook_runs: dict[str, dict[str, pl.DataFrame]],
) -> None:
    m = exhaustion(playbook_runs["exhaustion"])
    # Late build-up (hours 108-216), last 36 h over first 36 h: price +0.9% / +4.6% / +7.8%
    # on seeds 7 / 11 / 23 while OI falls to x0.77 / x0.78 / x0.88 (x0.75-0.86 on seeds 1-5)...
    assert m["price_rise"] > 1.0, m
    assert m["oi_rise"] < 0.95, m
    # ...and funding rises (mean per 8h 0.027% -> 0.042%, -0.004% -> 0.047%, 0.067% -> 0.113%;
    # the rise is 0.012% at the least, on seed 2).
    assert m["r8_last"] - m["r8_first"] >= 0.0001, m
    # The event: the reversal, -7.5% / -7.9% / -6.8% twelve hours after it starts (-3.3% to
    # -11.4% over seeds 1-5), with long liquidations (the crowded side) all but alone (at
    # least 6x the shorts' on all eight seeds, 47x on seed 23, none short on most).
    assert m["drop_12h"] < -0.03, m
    assert m["long_liq_12h"] > 5.0 * m["short_liq_12h"], m


def test_pre_event_build_oi_jumps_clusters_form_on_both_sides_then_the_catalyst_cascades(
    playbook_runs: dict[str, dict[str, pl.DataFrame]],
) -> None:
    m = pre_event_build(playbook_runs["pre-event-build"])
    # OI over the 48 hours ending at the event: +92% / +38% / +42% on seeds 7 / 11 / 23 (the
    # playbook's "15%+ in 48 hours"; the default market's largest 48-hour rise in 12 days is
    # about 15%, so the test reads the window right before the event, not any window); +54% to
    # +102% on seeds 1-5.
    assert m["oi48_last"] >= 0.15, m
    assert m["oi48_max"] >= m["oi48_last"], m
    # Funding "moderate but directional (e.g., +0.03% steady)" (L264): over the 48 hours before
    # the event positive at every settlement, mean 0.026% / 0.032% / 0.032% per 8h
    # (0.023-0.039% on seeds 1-5).
    assert m["r8_48h_positive"] == 1.0, m
    assert 0.0002 <= m["r8_48h_mean"] <= 0.0004, m
    # A quiet market waiting for its catalyst: the last 72 hours' high is 0.8% / 0.7% / 1.0%
    # above their low (0.7-1.1% on seeds 1-5).
    assert m["range_72h"] < 0.02, m
    # Clusters on both sides, close to price: of the open notional an hour before the event,
    # 13% / 13% / 13% is longs liquidated within 5% below the mark and 16% / 13% / 13% shorts
    # within 5% above it (13-16% each side over seeds 1-5; under 1.2% for longs in the
    # healthy-trend runs of the same seeds, 0.5-1.3%).
    assert m["cluster_long"] >= 0.03, m
    assert m["cluster_short"] >= 0.03, m
    # The catalyst: a 5.7% / 5.8% / 5.3% move within 6 hours (5.1-6.0% over seeds 1-5),
    # liquidating 19% / 21% / 19% of OI (19-22%), far more than the build-up's median 6-hour
    # block (no liquidation at all in most blocks of this quiet build-up).
    assert m["catalyst_move"] >= 0.03, m
    assert m["catalyst_liq_share"] >= 0.08, m
    assert m["catalyst_liq"] > 5.0 * m["liq_6h_median_before"], m


def test_basis_bull_funding_is_persistently_positive_on_a_wide_premium_until_the_event(
    playbook_runs: dict[str, dict[str, pl.DataFrame]],
) -> None:
    m = basis_bull(playbook_runs["basis-bull"])
    # Build-up: funding positive at every settlement on every seed, mean 0.091% / 0.050% /
    # 0.104% per 8h on seeds 7 / 11 / 23, and its 7-day average never under 0.035% (the
    # playbook's "7-day average exceeds +0.03%": conditions favourable).
    assert m["r8_positive"] >= 0.95, m
    assert m["r8_7d_min"] > 0.0003, m
    # Perp premium (mark over index at each hourly close): positive in 100% / 97% / 96% of
    # hours, mean 0.090% / 0.060% / 0.091% (the default market's is near zero).
    assert m["prem_positive"] >= 0.9, m
    assert m["prem_mean"] > 0.0003, m
    # The event: the premium goes (from 12 hours after it: 0.005% / -0.031% / 0.057%).
    assert m["prem_after"] < 0.75 * m["prem_mean"], m
    assert m["r8_after"] < m["r8_mean"], m


def _peak_r8(t: dict[str, pl.DataFrame]) -> float:
    return float(rate_8h(t["funding"])["r8"].abs().max())  # type: ignore[arg-type]


# The simulated venue caps funding at +-0.3% per 8h (scaled to its interval): no preset, old
# or new, prints beyond it. (Two tests, one per fixture: a test taking both session fixtures
# would rebuild them for every pair of seeds.)
def test_the_new_presets_keep_funding_within_the_venue_cap(
    playbook_runs: dict[str, dict[str, pl.DataFrame]],
) -> None:
    assert set(playbook_runs) == set(PLAYBOOK_PRESETS)
    peaks = {name: _peak_r8(t) for name, t in playbook_runs.items()}
    assert all(v <= CAP_8H * (1 + 1e-9) for v in peaks.values()), peaks
    # basis-bull and exhaustion come near or onto it on seed 23 (0.296% / 0.300%).
    assert max(peaks.values()) > 0.001, peaks


def test_the_older_presets_keep_funding_within_the_venue_cap(
    preset_runs: dict[str, dict[str, pl.DataFrame]],
) -> None:
    assert set(preset_runs) | set(PLAYBOOK_PRESETS) == set(PRESETS)
    peaks = {name: _peak_r8(t) for name, t in preset_runs.items()}
    assert all(v <= CAP_8H * (1 + 1e-9) for v in peaks.values()), peaks
    # The squeeze presets' uncapped peak was 0.53%: the cap binds there.
    assert peaks["long-squeeze"] > 0.001, peaks


@pytest.mark.parametrize("name", PLAYBOOK_PRESETS)
def test_playbook_presets_end_their_build_up_at_three_quarters(name: str) -> None:
    # Parameters, not outputs: the event of each new preset is at 75% of the run, as the
    # squeeze presets'; the outputs above show what happens there.
    p = PRESETS[name]
    ends = [s.at_frac for s in p.shocks] + ([p.build_frac] if p.build_frac is not None else [])
    assert ends
    assert min(ends) == 0.75
    assert np.isclose(EVENT_H, 216.0)
