"""The funding fade's rules on hand-built markets: entry streak and window (no look-ahead, 8h
normalisation), two venues, ATR stops, the regime overlay and the opposite-extreme exit."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from perpscope.analytics.regime import regime
from perpscope.backtest.engine import run_backtest
from perpscope.backtest.strategies.funding_fade import FundingFadeParams, funding_fade
from perpscope.backtest.types import EXIT_REASONS, EngineConfig, FundingSeries, Market
from tests.backtest._markets import HOUR_NS, flat_market

OLD = FundingFadeParams(entry_window=0, stop_frac=0.02, final_target="r", exit_below=0.0001)
"""The first version's rules: enter whenever the streak holds, fixed 2% stop, normalisation exit."""


def test_three_extreme_settlements_then_fade_from_the_next_close() -> None:
    """+0.06% at 0h, 8h, 16h: the third is known at the close of the 16:00 bar (17:00), not at
    the close of the 15:00 bar (16:00, the same instant): short from bar 16's close on."""
    m = flat_market(30, funding=[(0, 6e-4, 8), (8, 6e-4, 8), (16, 6e-4, 8), (24, 0.5e-4, 8)])
    s = funding_fade(m, OLD)
    assert s.entry[15] == 0
    assert all(s.entry[16:24] == -1)
    # 24h: +0.005% < 0.01%: funding normalised, exit, and no entry
    assert s.entry[24] == 0
    assert s.exit[24]
    assert not s.exit[23]
    assert s.stop_frac[16] == 0.02
    assert list(s.targets_r[16]) == [1.0, 2.6, 5.8]


def test_entry_window_allows_one_setup_per_streak() -> None:
    """Default entry_window=1: entries only while the streak is exactly 3 prints long (bars 16-23
    of 1h bars); the 4th extreme print at 24h is a continuation, not a new setup. A mild print
    at 32h ends the streak."""
    m = flat_market(40, funding=[*((h, 6e-4, 8) for h in (0, 8, 16, 24)), (32, 1e-4, 8)])
    s = funding_fade(m, FundingFadeParams(stop_frac=0.02))
    assert s.entry[15] == 0
    assert all(s.entry[16:24] == -1)
    assert not s.entry[24:].any()
    s2 = funding_fade(m, FundingFadeParams(stop_frac=0.02, entry_window=2))
    assert all(s2.entry[16:32] == -1)
    assert not s2.entry[32:].any()


def test_rates_are_normalised_to_8h_with_the_stored_interval() -> None:
    """-0.03% per 4h is -0.06% per 8h: extreme; three of them -> long."""
    m = flat_market(20, funding=[(0, -3e-4, 4), (4, -3e-4, 4), (8, -3e-4, 4)])
    assert funding_fade(m, OLD).entry[8] == 1
    # the same rates read as 8h rates are not extreme
    m8 = flat_market(20, funding=[(0, -3e-4, 8), (4, -3e-4, 8), (8, -3e-4, 8)])
    assert not funding_fade(m8, OLD).entry.any()


def test_a_sign_flip_or_a_mild_rate_breaks_the_streak() -> None:
    m = flat_market(40, funding=[(0, 6e-4, 8), (8, -6e-4, 8), (16, 6e-4, 8), (24, 6e-4, 8)])
    assert not funding_fade(m, OLD).entry.any()
    assert funding_fade(m, FundingFadeParams(min_periods=2, stop_frac=0.02)).entry[24] == -1


def _with_other(m: Market, other: list[tuple[float, float]]) -> Market:
    fs = FundingSeries(
        "bybit",
        np.array([int(h * HOUR_NS) for h, _ in other], np.int64),
        np.array([r for _, r in other]),
        np.full(len(other), 8.0),
    )
    return Market(*[getattr(m, f) for f in Market.__slots__ if f != "other_funding"][:14],
                  other_funding=(fs,))  # fmt: skip


def test_two_venues_must_agree() -> None:
    """Binance +0.06% x3 (streak complete at 16h). Bybit +0.06% at 16h agrees; Bybit +0.03% or
    -0.06% does not; no Bybit data at all is an error when two_venue is asked for."""
    base = flat_market(30, funding=[(0, 6e-4, 8), (8, 6e-4, 8), (16, 6e-4, 8)])
    p = FundingFadeParams(stop_frac=0.02, two_venue=True)
    agree = _with_other(base, [(0, 1e-4), (8, 1e-4), (16, 6e-4)])
    assert all(funding_fade(agree, p).entry[16:24] == -1)
    for other in ([(16, 3e-4)], [(16, -6e-4)]):
        assert not funding_fade(_with_other(base, other), p).entry.any()
    # the other venue needs two extreme prints in a row with confirm_periods=2
    p2 = FundingFadeParams(stop_frac=0.02, two_venue=True, confirm_periods=2)
    assert not funding_fade(agree, p2).entry.any()
    assert funding_fade(_with_other(base, [(8, 7e-4), (16, 6e-4)]), p2).entry[16] == -1
    with pytest.raises(ValueError, match="another venue"):
        funding_fade(base, p)


def _trend_then_chop(n_trend: int = 200, n_calm: int = 400, n_chop: int = 200) -> Market:
    """1h bars: a steady rise (ADX 100: trending), a calm random stretch, then swings of +-3% a
    bar (volatility far above its trailing mean)."""
    rng = np.random.default_rng(3)
    up = 100 * np.exp(np.cumsum(np.full(n_trend, 0.004)))
    calm = up[-1] * np.exp(np.cumsum(rng.normal(0, 0.001, n_calm)))
    chop = calm[-1] * np.exp(np.cumsum(np.tile([0.03, -0.03], n_chop // 2)))
    c = np.r_[up, calm, chop]
    o = np.r_[100.0, c[:-1]]
    h, lo = np.maximum(o, c) * 1.001, np.minimum(o, c) * 0.999
    n = len(c)
    ts = np.arange(n, dtype=np.int64) * HOUR_NS
    fts = np.arange(0, n, 8, dtype=np.int64) * HOUR_NS
    return Market.from_ohlc(ts, o, h, lo, c, fts, np.full(len(fts), 6e-4))


def test_regime_overlay_follows_the_regime_labels() -> None:
    """The overlay reads perpscope.analytics.regime.regime on the same bars (the oracle here):
    half size or no entry exactly where it says trending, 1 ATR stops and the faster targets
    exactly where it says volatile, 2 ATRs elsewhere; no stop (so no entry) in the ATR warm-up."""
    m = _trend_then_chop()
    frame = pl.DataFrame(
        {"venue": "x", "instrument": "y", "ts": m.ts, "h": m.h, "l": m.l, "c": m.c}
    )
    lab = regime(frame, "1h")
    trending = (lab["regime"] == "trending").fill_null(False).to_numpy()
    volatile = (lab["regime"] == "volatile").fill_null(False).to_numpy()
    atr_frac = lab["atr_pct"].fill_null(np.nan).to_numpy()
    assert trending[150]
    assert trending.sum() > 100
    assert volatile.sum() > 100
    off = funding_fade(m, FundingFadeParams(entry_window=0))
    half = funding_fade(m, FundingFadeParams(entry_window=0, regime_filter="half"))
    skip = funding_fade(m, FundingFadeParams(entry_window=0, regime_filter="skip"))
    chop = funding_fade(m, FundingFadeParams(entry_window=0, choppy_rules=True))
    assert off.size is not None
    assert half.size is not None
    assert skip.size is not None
    assert (off.size == 1).all()
    np.testing.assert_array_equal(half.size, np.where(trending, 0.5, 1.0))
    np.testing.assert_array_equal(skip.size, np.where(trending, 0.0, 1.0))
    np.testing.assert_allclose(off.stop_frac, 2 * atr_frac)
    np.testing.assert_allclose(chop.stop_frac, np.where(volatile, 1.0, 2.0) * atr_frac)
    assert np.isnan(off.stop_frac[:14]).all()
    assert not np.isnan(off.stop_frac[14])
    assert (chop.targets_r[volatile] == [1.0, 1.5, 2.0]).all()
    normal = chop.targets_r[~volatile]
    assert (normal[:, :2] == [1.0, 2.6]).all()
    assert np.isnan(normal[:, 2]).all()
    # the steady rise, by hand: each true range is h - l = c (1.001 - 0.999 e^-0.004) = k c, and
    # Wilder's average of k c_t e^(-0.004 j) weights (1/14)(13/14)^j settles at
    # k c (1/14) / (1 - (13/14) e^-0.004)
    k = 1.001 - 0.999 * np.exp(-0.004)
    assert atr_frac[150] == pytest.approx(k / 14 / (1 - 13 / 14 * np.exp(-0.004)), rel=1e-6)


def test_final_tranche_closes_at_the_opposite_funding_extreme() -> None:
    """Short from +0.06% x3 on flat 100 prices with a 2% stop: no target is reached; funding at
    -0.06% (the opposite extreme) at 40h is known at the 40:00 close: out at the 41:00 open. A
    merely negative -0.02% at 32h does not end it."""
    m = flat_market(
        60, funding=[(0, 6e-4, 8), (8, 6e-4, 8), (16, 6e-4, 8), (24, 1e-4, 8), (32, -2e-4, 8),
                     (40, -6e-4, 8)],
    )  # fmt: skip
    s = funding_fade(m, FundingFadeParams(stop_frac=0.02))
    assert s.exit_side is not None
    assert s.exit_side[40] == -1
    assert not s.exit_side[32:40].any()
    cfg = EngineConfig(taker_fee=0.0, maker_fee=0.0, slippage=0.0, cascade_slippage=0.0)
    run = run_backtest(m, s, cfg)
    assert len(run.trades) == 1
    assert run.column("side")[0] == -1
    assert (run.column("entry_bar")[0], run.column("exit_bar")[0]) == (17, 41)
    assert EXIT_REASONS[int(run.column("exit_reason")[0])] == "signal"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"min_periods": 0}, "min_periods"),
        ({"stop_frac": 1.5}, "stop_frac"),
        ({"targets_r": (2.0, 1.0, 3.0)}, "increasing"),
        ({"regime_filter": "maybe"}, "regime_filter"),
        ({"final_target": "moon"}, "final_target"),
        ({"entry_window": -1}, "entry_window"),
        ({"stop_atr": 0.0}, "stop_atr"),
    ],
)
def test_parameters_are_validated(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FundingFadeParams(**kwargs).validate()  # type: ignore[arg-type]


# ---------------------------------------------------------------- structure and OI confirmation


def test_structure_confirmation_enters_at_the_swing_failure_with_a_structural_stop() -> None:
    """The triple-confluence market (tests/backtest/test_triple_confluence.py): +0.1% funding at
    296, 304, 312 and 320h, so the streak reaches 3 at bar 312 and stays 4 from 320 on (no later
    settlement); the bearish swing failure is bar 324 (high 110.5, close 109.5). With
    ``structure`` and entries allowed while the streak holds, the only entries are bearish
    triggers from 312 on, the first at 324, its stop 0.1% above the high:
    (110.5 x 1.001 - 109.5) / 109.5 of the close."""
    from tests.backtest.test_triple_confluence import _market

    m = _market()
    plain = funding_fade(m, FundingFadeParams(entry_window=0))
    assert np.flatnonzero(plain.entry)[0] == 312
    s = funding_fade(m, FundingFadeParams(entry_window=0, structure=True))
    hits = np.flatnonzero(s.entry)
    assert hits[0] == 324
    assert set(s.entry[hits].tolist()) == {-1}
    assert s.stop_frac[324] == pytest.approx((110.5 * 1.001 - 109.5) / 109.5)
    # the playbook's one setup per streak: the trigger comes after the third print's 8 hours
    fresh = funding_fade(m, FundingFadeParams(structure=True))
    assert not fresh.entry.any()


def test_oi_confirmation_needs_a_recent_divergence_the_same_way() -> None:
    """Same market: OI falls from hour 192 while price makes new highs, so the bearish OI
    divergence holds on bars 235-319 or so. With ``oi_confirm`` each entry bar has a bearish
    divergence on it or on one of the 23 bars before it (checked bar by bar here), entries stop
    24 bars after the divergence's last bar, and with flat OI (no divergence) nothing enters."""
    from perpscope.backtest.strategies.oi_divergence import divergence_sides
    from tests.backtest.test_triple_confluence import _market

    m = _market()
    plain = np.flatnonzero(funding_fade(m, FundingFadeParams(entry_window=0)).entry)
    hits = np.flatnonzero(funding_fade(m, FundingFadeParams(entry_window=0, oi_confirm=True)).entry)
    bearish = divergence_sides(m, 120.0, 0.03, 0.5) == -1
    expected = [i for i in plain if bearish[max(0, i - 23) : i + 1].any()]
    assert hits.tolist() == expected
    assert 0 < len(expected) < len(plain)
    flat = _market(oi_end=1.0)
    assert not funding_fade(flat, FundingFadeParams(entry_window=0, oi_confirm=True)).entry.any()
    assert funding_fade(flat, FundingFadeParams(entry_window=0)).entry.any()
    no_oi = dataclasses.replace(m, oi_ts=None, oi=None)
    with pytest.raises(ValueError, match="--oi-market"):
        funding_fade(no_oi, FundingFadeParams(oi_confirm=True))


@pytest.mark.parametrize(
    ("field", "value"), [("swing_width", 0), ("stop_buffer", 0.5), ("oi_within_h", 0.0)]
)
def test_bad_confirmation_parameters_are_named(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        FundingFadeParams(**{field: value}).validate()  # type: ignore[arg-type]
