"""Each setup on hand-built frames: one case where it must fire, one where it must not."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from perpscope.signals import MarketData
from perpscope.signals.setups import (
    basis_trade,
    cvd_divergence,
    funding_acceleration_setup,
    funding_divergence,
    funding_fade,
    funding_rotation,
    liquidation_magnet,
    oi_divergence_setup,
    triple_confluence,
)
from tests.signals.frames import N, candles, end, funding, levels, oi, rally_with_sfp

HOT = [0.0001, 0.0006, 0.0006, 0.0006, 0.0007]
"""Four settlements at +0.06-0.07% per 8h: 32h above the playbook's +0.05%."""


def _rally() -> MarketData:
    c, h = rally_with_sfp()
    return MarketData("BTC", candles=candles(c, high=h))


def test_fade_short_fires_on_two_venues_24h_and_an_sfp() -> None:
    data = MarketData("BTC", funding=funding({"a": HOT, "b": HOT}), candles=_rally().candles)
    [s] = funding_fade(data, end())
    assert (s.direction, s.stage) == ("short", "entry")
    # the SFP's wick is 104: the stop sits above it, the entry zone below it, T1 is 1R lower
    assert s.invalidation_px is not None
    assert s.invalidation_px > 104.0
    assert s.entry_high_px is not None
    assert s.entry_high_px < s.invalidation_px
    risk = s.invalidation_px - s.entry_high_px
    assert s.targets_px[0] == pytest.approx(s.entry_high_px - risk)
    names = {e.name: e for e in s.evidence}
    assert names["venues at positive extreme"].value == 2
    assert names["venues extreme for 24h+"].ok is True


def test_fade_needs_two_venues() -> None:
    data = MarketData(
        "BTC", funding=funding({"a": HOT, "b": [0.0001] * 5}), candles=_rally().candles
    )
    assert funding_fade(data, end()) == []


def test_fade_needs_24_hours() -> None:
    short_run = [0.0001, 0.0001, 0.0001, 0.0006, 0.0006]  # 16h: two periods
    data = MarketData(
        "BTC", funding=funding({"a": short_run, "b": short_run}), candles=_rally().candles
    )
    assert funding_fade(data, end()) == []


def test_fade_long_without_candles_degrades_to_watch() -> None:
    cold = [-r for r in HOT]
    [s] = funding_fade(MarketData("ETH", funding=funding({"a": cold, "b": cold})), end())
    assert (s.direction, s.stage, s.missing) == ("long", "watch", ("candles",))
    assert s.entry_low_px is None
    assert s.invalidation_px is None


def test_funding_divergence_bearish_when_funding_mean_falls_into_new_highs() -> None:
    c = np.linspace(90.0, 110.0, N)
    falling = list(np.linspace(0.001, 0.0001, 30))
    data = MarketData("BTC", funding=funding({"a": falling}), candles=candles(c))
    [s] = funding_divergence(data, end())
    assert s.direction == "short"


def test_funding_divergence_absent_when_funding_rises_with_price() -> None:
    c = np.linspace(90.0, 110.0, N)
    rising = list(np.linspace(0.0001, 0.001, 30))
    data = MarketData("BTC", funding=funding({"a": rising}), candles=candles(c))
    assert funding_divergence(data, end()) == []


def test_acceleration_strong_is_a_short_watch_without_trigger() -> None:
    # playbook line 70: +0.02% -> +0.04% -> +0.07%: a +0.03% change per period is "strong"
    data = MarketData("BTC", funding=funding({"a": [0.0002, 0.0004, 0.0007]}))
    [s] = funding_acceleration_setup(data, end())
    assert (s.direction, s.stage) == ("short", "watch")


def test_acceleration_absent_on_flat_funding() -> None:
    data = MarketData("BTC", funding=funding({"a": [0.0002, 0.0002, 0.0002]}))
    assert funding_acceleration_setup(data, end()) == []


def test_oi_divergence_bearish_when_oi_falls_into_new_highs() -> None:
    d = _rally()
    data = MarketData("BTC", candles=d.candles, oi=oi(np.linspace(1000.0, 700.0, N) * 1e6))
    [s] = oi_divergence_setup(data, end())
    assert (s.direction, s.stage) == ("short", "entry")  # the last bar is also an SFP
    ratio = {e.name: e.value for e in s.evidence}["divergence ratio"]
    assert isinstance(ratio, float)
    assert ratio >= 0.5


def test_oi_divergence_absent_when_oi_rises() -> None:
    data = MarketData("BTC", candles=_rally().candles, oi=oi(np.linspace(700.0, 1000.0, N) * 1e6))
    assert oi_divergence_setup(data, end()) == []


def test_triple_confluence_needs_all_three() -> None:
    full = MarketData(
        "BTC",
        funding=funding({"a": HOT, "b": HOT}),
        candles=_rally().candles,
        oi=oi(np.linspace(1000.0, 700.0, N) * 1e6),
    )
    [s] = triple_confluence(full, end())
    assert s.direction == "short"
    # no OI divergence (OI rising) -> nothing
    no_div = MarketData(
        "BTC",
        funding=full.funding,
        candles=full.candles,
        oi=oi(np.linspace(700.0, 1000.0, N) * 1e6),
    )
    assert triple_confluence(no_div, end()) == []
    # missing OI -> nothing, not an error
    assert (
        triple_confluence(MarketData("BTC", funding=full.funding, candles=full.candles), end())
        == []
    )


def test_liquidation_magnet_short_toward_dense_longs_below() -> None:
    c = np.full(N, 100.0)
    data = MarketData("BTC", candles=candles(c), levels=levels(100.0, {97.0: (1e6, 0.0)}))
    [s] = liquidation_magnet(data, end())
    assert s.direction == "short"
    assert s.targets_px[0] < 97.0 < s.entry_low_px  # type: ignore[operator]
    # the stop is half the target distance above: the target is 2R
    assert (s.entry_low_px - s.targets_px[0]) == pytest.approx(  # type: ignore[operator]
        2 * (s.invalidation_px - s.entry_low_px)  # type: ignore[operator]
    )


def test_liquidation_magnet_absent_on_a_flat_map() -> None:
    data = MarketData("BTC", candles=candles(np.full(N, 100.0)), levels=levels(100.0))
    assert liquidation_magnet(data, end()) == []


def test_cvd_divergence_bearish_when_buying_fades_into_new_highs() -> None:
    c = np.linspace(90.0, 110.0, N)
    share = np.where(np.arange(N) < 150, 0.8, 0.2)  # CVD rises, then falls
    [s] = cvd_divergence(MarketData("BTC", candles=candles(c, taker_buy_share=share)), end())
    assert s.direction == "short"


def test_cvd_divergence_absent_when_buying_persists() -> None:
    c = np.linspace(90.0, 110.0, N)
    data = MarketData("BTC", candles=candles(c, taker_buy_share=np.full(N, 0.8)))
    assert cvd_divergence(data, end()) == []


def test_basis_trade_entry_and_exit() -> None:
    week = [0.0004] * 21
    [s] = basis_trade(MarketData("BTC", funding=funding({"a": week})), end())
    assert (s.stage, s.direction) == ("entry", "neutral")
    [x] = basis_trade(MarketData("BTC", funding=funding({"a": [0.0006] * 21 + [-0.0001]})), end())
    assert x.stage == "exit"
    assert basis_trade(MarketData("BTC", funding=funding({"a": [0.0001] * 21})), end()) == []


def test_rotation_long_alt_when_btc_hot_and_alt_cold() -> None:
    btc = MarketData("BTC", funding=funding({"a": [0.0005] * 4}))
    alt = MarketData("SOL", funding=funding({"a": [0.0] * 4}, asset="SOL"))
    [s] = funding_rotation(btc, alt, end())
    assert (s.asset, s.direction) == ("SOL", "long")
    hot_alt = MarketData("SOL", funding=funding({"a": [0.0005] * 4}, asset="SOL"))
    assert funding_rotation(btc, hot_alt, end()) == []


def test_detectors_ignore_data_after_at() -> None:
    """The fade at a time before the extreme began sees nothing, even with the data present."""
    data = MarketData("BTC", funding=funding({"a": HOT, "b": HOT}), candles=_rally().candles)
    assert funding_fade(data, end() - timedelta(hours=20)) == []


def test_fade_worked_example_feb_2025() -> None:
    """Playbook L92-96: Binance +0.07%, Bybit +0.08%, OKX +0.06%, "elevated for the third
    consecutive period" (3 x 8h = 24h), and an SFP at the supply zone: a short entry."""
    rates = {"binance": [0.0001, 0.0007, 0.0007, 0.0007], "bybit": [0.0001, 0.0008, 0.0008, 0.0008],
             "okx": [0.0001, 0.0006, 0.0006, 0.0006]}  # fmt: skip
    [s] = funding_fade(MarketData("BTC", funding=funding(rates), candles=_rally().candles), end())
    assert s.direction == "short"
    assert s.stage == "entry"
    mean = {e.name: e.value for e in s.evidence}["mean extreme rate_8h"]
    assert mean == pytest.approx(0.0007)  # (0.07 + 0.08 + 0.06) / 3, L94
