"""The reading guards of ``analytics/oi.py`` at their boundaries: just below, at and above.

Every expected value is computed by hand in the comment beside it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from perpscope.analytics.oi import (
    MIN_OI_MOVE_24H,
    MIN_OI_USD,
    MIN_PRICE_MOVE_24H,
    MIN_PRICE_MOVE_DIVERGENCE,
    oi_changes,
    oi_divergence,
    price_oi_quadrant,
)

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def test_guard_defaults_are_the_documented_ones() -> None:
    assert (MIN_PRICE_MOVE_24H, MIN_OI_MOVE_24H) == (0.005, 0.005)
    assert (MIN_OI_USD, MIN_PRICE_MOVE_DIVERGENCE) == (1e6, 0.02)


def _quadrants(p: list[float], o: list[float]) -> list[str]:
    frame = pl.DataFrame({"p": p, "o": o})
    return frame.select(price_oi_quadrant(pl.col("p"), pl.col("o")).alias("q"))["q"].to_list()


def test_quadrant_price_guard_below_at_above() -> None:
    # OI +2% (well past its guard); price 0.499%, 0.5%, 0.501% up and the same down.
    p = [0.00499, 0.005, 0.00501, -0.00499, -0.005, -0.00501]
    assert _quadrants(p, [0.02] * 6) == [
        "undefined",
        "new_longs",
        "new_longs",
        "undefined",
        "new_shorts",
        "new_shorts",
    ]


def test_quadrant_oi_guard_below_at_above() -> None:
    # price -2%; OI -0.499%, -0.5%, -0.501%.
    assert _quadrants([-0.02] * 3, [-0.00499, -0.005, -0.00501]) == [
        "undefined",
        "long_capitulation",
        "long_capitulation",
    ]


def test_a_price_move_of_four_millionths_is_no_capitulation() -> None:
    # The issue's case: price -0.0004% with OI falling 3% was labelled long_capitulation.
    assert _quadrants([-0.000004], [-0.03]) == ["undefined"]


def _daily(oi: list[float], close: list[float] | None = None) -> pl.DataFrame:
    data: dict[str, object] = {
        "venue": "binance",
        "instrument": "BTC-USDT-PERP",
        "ts": [T0 + timedelta(hours=24 * i) for i in range(len(oi))],
        "oi_usd": oi,
    }
    if close is not None:
        data["close_px"] = close
    return pl.DataFrame(data)


@pytest.mark.parametrize(
    ("close_1", "expected"),
    [(100.49, "undefined"), (100.5, "new_longs"), (100.51, "new_longs")],
)
def test_quadrant_guard_through_oi_changes(close_1: float, expected: str) -> None:
    # Day 0 -> day 1: price 100 -> close_1 (+0.49%, +0.50%, +0.51%), OI $100M -> $102M (+2%).
    out = oi_changes(_daily([100e6, 102e6], [100.0, close_1]))
    assert out["quadrant"][1] == expected


def _hourly(oi: list[float]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "venue": "binance",
            "instrument": "X-USDT-PERP",
            "ts": [T0 + timedelta(hours=i) for i in range(len(oi))],
            "oi_usd": oi,
        }
    )


@pytest.mark.parametrize(
    ("base", "spike"),
    [(999_999.0, False), (1_000_000.0, True), (1_000_001.0, True)],
)
def test_spike_needs_a_base_of_at_least_one_million(base: float, spike: bool) -> None:
    # +10% in 4h from the base (the spike threshold exactly): 4h later OI = 1.1 x base.
    out = oi_changes(_hourly([base, base, base, base, base * 1.1]))
    assert out["oi_change_4h"][4] == pytest.approx(0.10)
    assert out["spike"][4] is spike


def test_the_issues_small_base_spike_is_silenced_and_alert_too() -> None:
    # OI +608% on a $0.33M base: 0.33M -> 2.3364M over 4h and 24h.
    oi = [0.33e6] * 24 + [0.33e6 * 7.08]
    out = oi_changes(_hourly(oi))
    assert out["oi_change_4h"][-1] == pytest.approx(6.08)
    assert (out["spike"][-1], out["alert_24h"][-1]) == (False, False)
    loose = oi_changes(_hourly(oi), min_oi_usd=0.0)
    assert (loose["spike"][-1], loose["alert_24h"][-1]) == (True, True)


@pytest.mark.parametrize(
    ("last", "wave"),
    [(100.499e6, False), (100.5e6, True), (100.501e6, True)],
)
def test_wave_needs_a_24h_rise_of_at_least_half_a_percent(last: float, wave: bool) -> None:
    # Daily OI $100M for 7 days then `last`: the 7-day mean of daily changes is change / 7
    # (six zeros and the last change in the trailing 168h window), so roc_ratio = 7 >= 3 for
    # any rise; only the guard (0.5%) decides: 0.499% no, 0.5% and 0.501% yes.
    out = oi_changes(_daily([100e6] * 8 + [last]))
    assert out["roc_ratio"][-1] == pytest.approx(7.0)
    assert out["wave"][-1] is wave


def _window(price_end: float, oi_start: float = 100e6) -> pl.DataFrame:
    # 73 hourly bars (a full 72h window): price 100 -> price_end, OI falls 10% steadily.
    n = 73
    return pl.DataFrame(
        {
            "venue": "binance",
            "instrument": "X-USDT-PERP",
            "ts": [T0 + timedelta(hours=i) for i in range(n)],
            "close_px": np.linspace(100.0, price_end, n),
            "oi_usd": np.linspace(oi_start, oi_start * 0.9, n),
        }
    )


@pytest.mark.parametrize(
    ("price_end", "label", "grade"),
    [(101.99, None, None), (102.0, "bearish", "strong"), (102.01, "bearish", "strong")],
)
def test_divergence_needs_a_price_move_of_two_percent(
    price_end: float, label: str | None, grade: str | None
) -> None:
    # price +1.99% / +2% / +2.01% over 72h while OI falls 10%: ratio 0.10 / 0.02 = 5 (strong)
    # once the price guard lets it through.
    last = oi_divergence(_window(price_end)).row(-1, named=True)
    assert last["oi_change_w"] == pytest.approx(-0.10)
    assert (last["oi_divergence"], last["oi_divergence_grade"]) == (label, grade)


def test_the_issues_noise_divergence_is_not_graded() -> None:
    # price +0.0146% while OI -47.8%: ratio 0.478 / 0.000146 = 3274, graded strong before.
    frame = _window(100.0146).with_columns(pl.Series("oi_usd", np.linspace(100e6, 52.2e6, 73)))
    last = oi_divergence(frame).row(-1, named=True)
    assert last["divergence_ratio"] == pytest.approx(0.478 / 0.000146, rel=1e-3)
    assert (last["price_moved"], last["oi_divergence"]) == (False, None)
    loose = oi_divergence(frame, min_price_move=0.0).row(-1, named=True)
    assert loose["oi_divergence_grade"] == "strong"


@pytest.mark.parametrize(("oi_start", "live"), [(0.99e6, False), (1e6, True), (1.01e6, True)])
def test_divergence_needs_one_million_of_oi(oi_start: float, live: bool) -> None:
    last = oi_divergence(_window(105.0, oi_start)).row(-1, named=True)
    assert (last["oi_divergence"] is not None) is live
