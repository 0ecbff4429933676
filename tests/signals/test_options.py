"""Options evidence in the signals, on hand-built chains (``frames.fear_chain`` /
``greed_chain``; every expected number is worked out by hand in their docstrings and below).

Without a usable chain (none, an empty frame, a chain older than a day, a chain after ``at``) the
setups and the classifier give exactly what they give without options."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from perpscope.signals import MarketData, classify, detect_all
from perpscope.signals.options import event_grade, fear_grade, options_reading
from perpscope.signals.setups import funding_fade, max_pain_magnet, pcr_extreme
from tests.signals import frames
from tests.signals import test_scenarios as sc
from tests.signals.frames import N, candles, end, fear_chain, greed_chain
from tests.signals.test_setups import HOT, _rally


def _dump(x: object) -> str:
    return json.dumps(x, sort_keys=True, default=str)


# ----------------------------------------------------------------------------- the reading


def test_reading_of_the_fear_chain() -> None:
    r = options_reading(MarketData("BTC", options=fear_chain(end())), end())
    assert r is not None
    assert r.pcr_oi == pytest.approx(1.5)  # 75 / 50
    assert r.pcr_percentile is None  # one snapshot: no history
    assert r.pcr_extreme == "high"  # 1.5 >= 1.2
    assert r.skew_pts == pytest.approx(-5.0)  # 0.50 - 0.55, in vol points
    assert r.skew_days == pytest.approx(30.0)
    assert r.fear == pytest.approx(1.0)  # mean of 1 (put/call) and 1 (skew)
    assert r.max_pain_px == 105.0
    assert r.max_pain_pct == pytest.approx(5.0)
    assert r.expiry_days == pytest.approx(3.0)
    assert (r.call_wall_px, r.put_wall_px) == (110.0, 95.0)
    assert (r.front_atm_iv, r.back_atm_iv) == (pytest.approx(0.5), pytest.approx(0.5))
    assert r.inverted is False
    assert r.event == pytest.approx(0.5)  # (0.5/0.5 - 0.95) / 0.10


def test_reading_of_the_greed_chain() -> None:
    r = options_reading(MarketData("BTC", options=greed_chain(end())), end())
    assert r is not None
    assert r.pcr_oi == pytest.approx(35 / 180)
    assert r.pcr_extreme == "low"
    assert r.skew_pts == pytest.approx(5.0)
    assert r.fear == 0.0
    assert r.event == 0.0  # front 0.50 / back 0.55 = 0.909 < 0.95


def test_grades_by_hand() -> None:
    # put/call 0.8 without history: (0.8 - 0.4) / 0.8 = 0.5; skew -3 pts: 0.5 + 0.3 = 0.8
    assert fear_grade(0.8, None, -3.0) == pytest.approx((0.5 + 0.8) / 2)
    # a percentile replaces the absolute put/call grade
    assert fear_grade(0.8, 0.9, None) == pytest.approx(0.9)
    assert fear_grade(None, None, None) is None
    assert event_grade(0.6, 0.5) == 1.0  # 1.2 - 0.95 > 0.10
    assert event_grade(0.5, 0.5) == pytest.approx(0.5)
    assert event_grade(None, 0.5) is None


def test_percentile_against_earlier_snapshots() -> None:
    # five earlier hourly snapshots at put/call 1.5, now 35/180: 0 of 5 at or below it
    hist = [fear_chain(end() - timedelta(hours=h)) for h in range(5, 0, -1)]
    snaps = pl.concat([*hist, greed_chain(end())])
    r = options_reading(MarketData("BTC", options=snaps), end())
    assert r is not None
    assert r.pcr_percentile == 0.0
    assert r.pcr_extreme == "low"
    assert r.fear == 0.0  # mean of 0 (percentile) and 0 (skew +5)


def test_history_older_than_45_days_is_not_counted() -> None:
    # the same five snapshots, 46 days earlier: no history left in the 45-day window
    hist = [fear_chain(end() - timedelta(days=46, hours=h)) for h in range(5, 0, -1)]
    r = options_reading(MarketData("BTC", options=pl.concat([*hist, greed_chain(end())])), end())
    assert r is not None
    assert r.pcr_percentile is None
    assert r.pcr_extreme == "low"  # the absolute rule: 0.194 <= 0.4


def test_stale_and_future_chains_are_not_read() -> None:
    stale = fear_chain(end() - timedelta(hours=25))  # older than a day at end()
    assert options_reading(MarketData("BTC", options=stale), end()) is None
    later = fear_chain(end() + timedelta(hours=1))  # not known yet at end()
    assert options_reading(MarketData("BTC", options=later), end()) is None
    day_old = fear_chain(end() - timedelta(hours=24))  # exactly a day: still read
    assert options_reading(MarketData("BTC", options=day_old), end()) is not None


# ----------------------------------------------------------------------------- no options


def _no_options_variants(d: MarketData) -> list[MarketData]:
    empty = fear_chain(end()).clear()
    at = sc.AT
    return [
        replace(d, options=None),
        replace(d, options=empty),
        replace(d, options=pl.DataFrame()),
        replace(d, options=fear_chain(at - timedelta(hours=30))),  # stale
        replace(d, options=fear_chain(at + timedelta(hours=2))),  # after at
    ]


@pytest.mark.parametrize(
    "market",
    [
        sc._market(-0.0006, sc.RISING_OI, sc.FLAT, {104.0: (0.0, 1e6)}),
        sc._market(0.00005, np.linspace(1300.0, 1000.0, sc.H), sc.FLAT, {}),
        sc._market(0.0009, sc.RISING_OI, sc.FLAT, {96.0: (1e6, 0.0)}),
    ],
    ids=["short_squeeze", "vacuum", "long_squeeze"],
)
def test_without_usable_options_outputs_are_identical(market: MarketData) -> None:
    base_r = _dump(classify(market, sc.AT).to_json())
    base_s = _dump([s.to_json() for s in detect_all({"BTC": market}, sc.AT)])
    for d in _no_options_variants(market):
        assert _dump(classify(d, sc.AT).to_json()) == base_r
        assert _dump([s.to_json() for s in detect_all({"BTC": d}, sc.AT)]) == base_s


# ----------------------------------------------------------------------------- scenarios


def _with(m: MarketData, chain: pl.DataFrame) -> MarketData:
    return replace(m, options=chain)


def _chain_at(make, **kw):  # type: ignore[no-untyped-def]
    """A chain snapshot one hour before the scenarios' time."""
    shift = sc.AT - timedelta(hours=1) - end()
    return make(end(), **kw).with_columns(pl.col("ts") + shift, pl.col("expiry_ts") + shift)


def test_short_squeeze_confirmed_by_fear_and_contradicted_by_greed() -> None:
    m = sc._market(-0.0006, sc.RISING_OI, sc.FLAT, {104.0: (0.0, 1e6)})
    base = classify(m, sc.AT)
    s = base.scores["short_squeeze"]  # mean of its 3 perp conditions
    assert base.scenario == "short_squeeze"
    fear = classify(_with(m, _chain_at(fear_chain)), sc.AT)
    greed = classify(_with(m, _chain_at(greed_chain)), sc.AT)
    # a 4th condition: fear grade 1 (confirms) or 0 (contradicts): (3 s + o) / 4
    assert fear.scores["short_squeeze"] == pytest.approx((3 * s + 1.0) / 4, abs=1e-4)
    assert greed.scores["short_squeeze"] == pytest.approx(3 * s / 4, abs=1e-4)
    # here every perp condition holds fully (s = 1): fear keeps 1, greed lowers to 3/4
    assert s == 1.0
    assert (fear.scores["short_squeeze"], greed.scores["short_squeeze"]) == (1.0, 0.75)
    names = {e.name: e for e in fear.evidence}
    assert names["options put/call OI"].value == pytest.approx(1.5)
    assert names["options 25d skew vol pts"].value == pytest.approx(-5.0)
    assert names["short_squeeze: options"].ok is True
    assert {e.name: e for e in greed.evidence}["short_squeeze: options"].ok is False
    # the options condition never disqualifies on its own: greed lowers but keeps a score
    assert greed.scores["short_squeeze"] > 0


def test_long_squeeze_confirmed_by_greed() -> None:
    m = sc._market(0.0009, sc.RISING_OI, sc.FLAT, {96.0: (1e6, 0.0)})
    s = classify(m, sc.AT).scores["long_squeeze"]
    greed = classify(_with(m, _chain_at(greed_chain)), sc.AT)
    fear = classify(_with(m, _chain_at(fear_chain)), sc.AT)
    assert greed.scores["long_squeeze"] == pytest.approx((3 * s + 1.0) / 4, abs=1e-4)
    assert fear.scores["long_squeeze"] == pytest.approx(3 * s / 4, abs=1e-4)


def test_pre_event_build_and_vacuum_read_the_term_structure() -> None:
    oi_path = np.concatenate([np.full(sc.H - 48, 1000.0), np.linspace(1000.0, 1200.0, 48)])
    m = sc._market(0.0003, oi_path, sc.FLAT, {98.0: (1e6, 0.0), 102.0: (0.0, 1e6)})
    base = classify(m, sc.AT)
    s = base.scores["pre_event_build"]
    assert base.scenario == "pre_event_build"
    inverted = classify(_with(m, _chain_at(fear_chain, front_iv=0.6)), sc.AT)  # event 1
    assert inverted.scores["pre_event_build"] == pytest.approx((3 * s + 1.0) / 4, abs=1e-4)
    upward = classify(_with(m, _chain_at(greed_chain)), sc.AT)  # event 0
    assert upward.scores["pre_event_build"] == pytest.approx(3 * s / 4, abs=1e-4)
    v = sc._market(0.00005, np.linspace(1300.0, 1000.0, sc.H), sc.FLAT, {})
    sv = classify(v, sc.AT).scores["vacuum"]
    assert sv > 0
    # an inverted term structure (event 1) contradicts the vacuum: 1 - 1 = 0
    vi = classify(_with(v, _chain_at(fear_chain, front_iv=0.6)), sc.AT)
    assert vi.scores["vacuum"] == pytest.approx(3 * sv / 4, abs=1e-4)


def test_healthy_trend_has_no_options_condition() -> None:
    m = sc._market(0.0009, sc.RISING_OI, sc.FLAT, {96.0: (1e6, 0.0)})
    a = classify(m, sc.AT).scores["healthy_trend"]
    b = classify(_with(m, _chain_at(fear_chain)), sc.AT).scores["healthy_trend"]
    assert a == b


# ----------------------------------------------------------------------------- setups


FALLING = np.linspace(110.0, 100.0, N)  # the last close is the 30-day low
RISING = np.linspace(90.0, 100.0, N)  # the last close is the 30-day high


def test_pcr_extreme_long_at_lows_on_fear() -> None:
    d = MarketData("BTC", candles=candles(FALLING), options=fear_chain(end()))
    [s] = pcr_extreme(d, end())
    assert s.setup == "pcr_extreme"
    assert s.direction == "long"
    assert s.stage == "watch"  # no structural trigger in a smooth decline
    # 0.5 + 0.3 x trigger (0) + 0.2 x skew agrees (-5 < 0 for a long)
    assert s.strength == pytest.approx(0.7)
    ev = {e.name: e for e in s.evidence}
    assert ev["close within 3% of 30d low"].ok is True
    assert ev["options put/call OI"].ok is True


def test_pcr_extreme_short_at_highs_on_greed() -> None:
    d = MarketData("BTC", candles=candles(RISING), options=greed_chain(end()))
    [s] = pcr_extreme(d, end())
    assert s.direction == "short"
    assert s.strength == pytest.approx(0.7)  # skew +5 > 0 agrees with the short


def test_pcr_extreme_needs_the_price_extreme_and_the_ratio_extreme() -> None:
    # fear (contrarian long) at the highs: not "at market lows"
    assert pcr_extreme(MarketData("BTC", candles=candles(RISING), options=fear_chain(end())),
                       end()) == []  # fmt: skip
    # a put/call of 1.0 (50 / 50) is no extreme: 30d puts 15 instead of 40 -> 50 / 50
    mid = frames.chain(end(), {3.0: (0.5, 0.5, *frames.NEAR_OI),
                               30.0: (0.5, 0.5, {100.0: 20.0}, {100.0: 15.0})})  # fmt: skip
    r = options_reading(MarketData("BTC", options=mid), end())
    assert r is not None
    assert r.pcr_oi == pytest.approx(1.0)
    assert pcr_extreme(MarketData("BTC", candles=candles(FALLING), options=mid), end()) == []
    # no options: nothing
    assert pcr_extreme(MarketData("BTC", candles=candles(FALLING)), end()) == []


def test_pcr_extreme_without_candles_is_a_watch() -> None:
    [s] = pcr_extreme(MarketData("BTC", options=fear_chain(end())), end())
    assert s.stage == "watch"
    assert s.missing == ("candles",)
    assert s.entry_low_px is None


def test_max_pain_magnet_long_toward_max_pain() -> None:
    d = MarketData("BTC", candles=candles(np.full(N, 100.0)), options=fear_chain(end()))
    [s] = max_pain_magnet(d, end())
    assert s.direction == "long"  # max pain 105 above spot 100
    assert s.stage == "watch"
    assert (s.entry_low_px, s.entry_high_px) == (100.0, 100.0)
    assert s.targets_px == (105.0,)
    assert s.invalidation_px == pytest.approx(97.5)  # 100 - (105 - 100) / 2
    # 0.4 + 0.3 x (7 - 3) / 7 + 0.3 x trigger (0)
    assert s.strength == pytest.approx(round(0.4 + 0.3 * 4 / 7, 4))
    ev = {e.name: e.value for e in s.evidence}
    assert ev["options call wall px"] == 110.0
    assert ev["options put wall px"] == 95.0


def test_max_pain_magnet_needs_a_near_expiry_and_a_distance() -> None:
    flat = candles(np.full(N, 100.0))
    # spot 104.5: max pain 105 is (105 - 104.5) / 104.5 = 0.48% away, under 1%
    close = frames.chain(end(), {3.0: (0.5, 0.5, *frames.NEAR_OI)}, spot=104.5)
    assert max_pain_magnet(MarketData("BTC", candles=flat, options=close), end()) == []
    # the same OI expiring in 10 days: no expiry within 7 days
    far = frames.chain(end(), {10.0: (0.5, 0.5, *frames.NEAR_OI)})
    assert max_pain_magnet(MarketData("BTC", candles=flat, options=far), end()) == []
    assert max_pain_magnet(MarketData("BTC", candles=flat), end()) == []


def test_detect_all_includes_the_options_setups() -> None:
    d = MarketData("BTC", candles=candles(FALLING), options=fear_chain(end()))
    names = {s.setup for s in detect_all({"BTC": d}, end())}
    assert {"pcr_extreme", "max_pain_magnet"} <= names


def test_other_setups_carry_the_options_context_and_max_pain_target() -> None:
    # the 3-day expiry holds only 10 calls at 90: payout 10 x (S - 90) is 0 at 90, 50 at 95:
    # max pain 90, below the short fade's T1 (about 101.5), so it becomes its last target
    ch = frames.chain(end(), {3.0: (0.5, 0.5, {90.0: 10.0}, {})}, spot=103.0)
    base = MarketData("BTC", funding=frames.funding({"a": HOT, "b": HOT}), candles=_rally().candles)
    [plain] = funding_fade(base, end())
    [s] = funding_fade(replace(base, options=ch), end())
    assert (s.direction, s.stage) == ("short", "entry")
    assert 90.0 not in plain.targets_px
    assert s.targets_px == (*plain.targets_px, 90.0)
    ev = {e.name: e.value for e in s.evidence}
    assert ev["options max pain px"] == 90.0
    assert ev["options put/call OI"] == 0.0  # no puts
    assert not [e for e in plain.evidence if e.name.startswith("options")]


# ----------------------------------------------------------------------------- unusual activity


def _trades(*rows: tuple[str, float, str, float]) -> pl.DataFrame:
    """Option trades ``(instrument, hours before end(), taker side, notional USD)`` at index 100
    (the fear chain's spot), one contract per $100 of notional."""
    return pl.DataFrame(
        {
            "venue": "opt1",
            "instrument": [r[0] for r in rows],
            "ts": [end() - timedelta(hours=r[1]) for r in rows],
            "trade_id": [str(i) for i in range(len(rows))],
            "side": [r[2] for r in rows],
            "qty_contracts": [r[3] / 100.0 for r in rows],
            "notional_usd": [r[3] for r in rows],
            "index_px": 100.0,
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))


QUIET = [0.00005, 0.00005, 0.00005]
"""Three settlements at +0.005% per 8h: within the neutral +/-0.01%."""


def _flow_market(trades: pl.DataFrame, *, rates: list[float] = QUIET, oi_last: float = 100.0,
                 ) -> MarketData:  # fmt: skip
    """Flat candles at 100 (no structural trigger), funding ``rates`` on two venues, OI 100
    throughout but ``oi_last`` on the last bar, the fear chain (30-day calls and puts at
    90-110) and ``trades``."""
    oi = np.full(N, 100.0)
    oi[-1] = oi_last
    return MarketData(
        "BTC",
        funding=frames.funding({"a": rates, "b": rates}),
        candles=candles(np.full(N, 100.0)),
        oi=frames.oi(oi),
        options=fear_chain(end()),
        option_trades=trades,
    )


def test_unusual_call_purchase_on_a_quiet_perp_market_is_a_long() -> None:
    from perpscope.signals.setups import unusual_options

    d = _flow_market(_trades(("BTC-30D-110-C", 2.0, "buy", 16e6)))
    [s] = unusual_options(d, end())
    assert (s.setup, s.direction, s.stage) == ("unusual_options", "long", "watch")
    # by hand: 0.4 + 0.2 x (16M - 10M) / 20M + 0.2 x strike (110 - 100) / 100 = 10% of the 20%
    # + 0.2 x quiet (funding +0.005% <= 0.01%, OI 24h change 0) = 0.4 + 0.06 + 0.1 + 0.2
    assert s.strength == pytest.approx(0.76)
    ev = {e.name: e for e in s.evidence}
    assert ev["unusual call buys USD 24h"].value == 16e6
    assert ev["unusual put buys USD 24h"].value == 0.0
    assert ev["strike out of the money"].value == pytest.approx(0.10)
    assert ev["perp funding neutral (mean rate_8h)"].ok is True
    assert ev["perp OI flat (24h change)"].value == 0.0
    assert ev["structural trigger"].ok is False


def test_unusual_put_purchases_outweigh_calls_on_a_busy_market() -> None:
    from perpscope.signals.setups import unusual_options

    trades = _trades(
        ("BTC-30D-90-P", 3.0, "buy", 18e6),
        ("BTC-30D-95-P", 1.0, "buy", 12e6),
        ("BTC-30D-105-C", 2.0, "buy", 12e6),
        ("BTC-30D-100-C", 2.0, "sell", 50e6),  # a sale: evidence, not direction
    )
    d = _flow_market(trades, rates=HOT[-3:], oi_last=110.0)
    [s] = unusual_options(d, end())
    assert s.direction == "short"  # puts 30M > calls 12M
    # by hand: size (30M - 10M) / 20M = 1 -> 0.2; the largest put (90, 18M) is
    # (100 - 90) / 100 = 10% out of the money for a short -> 0.1; funding hot, OI +10%: not quiet
    assert s.strength == pytest.approx(0.7)
    ev = {e.name: e for e in s.evidence}
    assert ev["unusual put buys USD 24h"].value == 30e6
    assert ev["unusual sells USD 24h"].value == 50e6
    assert ev["unusual trades 24h"].value == 4
    assert ev["largest purchase"].value.startswith("BTC-30D-90-P at ")
    assert ev["perp OI flat (24h change)"].value == pytest.approx(0.10)
    assert ev["perp OI flat (24h change)"].ok is False


def test_unusual_options_quiet_market_edges() -> None:
    from perpscope.signals.setups import unusual_options

    buy = _trades(("BTC-30D-110-C", 2.0, "buy", 10e6))  # size grade 0, strike grade 0.5

    def strength(**kw: object) -> float:
        [s] = unusual_options(_flow_market(buy, **kw), end())  # type: ignore[arg-type]
        return s.strength

    assert strength(rates=[0.0001] * 3) == pytest.approx(0.7)  # exactly +0.01%: neutral
    assert strength(rates=[0.00011] * 3) == pytest.approx(0.5)  # past it: not
    assert strength(rates=[-0.0001] * 3) == pytest.approx(0.7)
    assert strength(oi_last=102.9) == pytest.approx(0.7)  # +2.9%: flat
    assert strength(oi_last=103.1) == pytest.approx(0.5)  # +3.1%: not
    assert strength(oi_last=97.1) == pytest.approx(0.7)


def test_unusual_options_does_not_fire() -> None:
    from perpscope.signals.setups import unusual_options

    def fires(trades: pl.DataFrame, **kw: object) -> bool:
        d = replace(_flow_market(trades), **kw)  # type: ignore[arg-type]
        return bool(unusual_options(d, end()))

    call = ("BTC-30D-110-C", 2.0, "buy", 16e6)
    assert fires(_trades(call))
    assert not fires(_trades(("BTC-30D-110-C", 2.0, "buy", 9_999_999.0)))  # under $10M
    assert not fires(_trades(("BTC-30D-110-C", 2.0, "sell", 40e6)))  # a sale
    assert not fires(_trades(("BTC-30D-110-C", 24.0, "buy", 16e6)))  # 24h old: out
    assert fires(_trades(("BTC-30D-110-C", 23.99, "buy", 16e6)))  # just inside
    assert not fires(_trades(("BTC-30D-110-C", -1.0, "buy", 16e6)))  # after at: unknown
    assert not fires(_trades(call, ("BTC-30D-90-P", 1.0, "buy", 16e6)))  # a tie
    assert not fires(_trades(("BTC-30D-120-C", 2.0, "buy", 16e6)))  # no such strike listed
    assert not fires(_trades(call), options=None)  # no chain to name the option
    assert not fires(_trades(call), option_trades=None)


def test_unusual_options_is_in_detect_all_with_a_trigger_for_entry() -> None:
    from perpscope.signals.setups import unusual_options

    c, h = frames.rally_with_sfp()  # a bearish swing failure on the last bar
    d = replace(
        _flow_market(_trades(("BTC-30D-90-P", 2.0, "buy", 16e6))), candles=candles(c, high=h)
    )
    [s] = unusual_options(d, end())
    assert (s.direction, s.stage) == ("short", "entry")
    assert s.invalidation_px is not None
    assert s.entry_high_px is not None
    assert s.invalidation_px > s.entry_high_px
    assert "unusual_options" in {x.setup for x in detect_all({"BTC": d}, end())}
