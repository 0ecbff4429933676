"""The cascade detector: hand-built cascades and real BTC candles (the simulator's squeeze presets:
``test_liquidations_cascade_seeds.py``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest
from tests.conftest import require_shared

from perpscope.analytics.liquidations import CASCADE_COLUMNS, CascadeParams, detect_cascades

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _quiet(n: int, px: float = 100.0) -> list[dict[str, float]]:
    return [{"o": px, "h": px * 1.002, "l": px * 0.998, "c": px, "volume": 10.0}] * n


def _frame(rows: list[dict[str, float]]) -> pl.DataFrame:
    return pl.DataFrame([{"ts": T0 + timedelta(hours=i), **r} for i, r in enumerate(rows)])


def _sell_cascade() -> pl.DataFrame:
    rows = _quiet(48)
    rows += [
        {"o": 100.0, "h": 100.1, "l": 98.0, "c": 98.2, "volume": 30.0},  # initiation pushes
        {"o": 98.2, "h": 98.3, "l": 95.0, "c": 95.2, "volume": 40.0},  # acceleration
        # climax: 8x volume, a new low 10% under the prior high, close 50% off the low
        {"o": 95.2, "h": 95.5, "l": 90.0, "c": 92.75, "volume": 80.0},
        {"o": 92.75, "h": 94.0, "l": 92.5, "c": 93.5, "volume": 15.0},  # exhaustion
        *_quiet(6, 94.5),
    ]
    return _frame(rows)


def test_a_hand_built_sell_cascade_is_found_with_its_phases() -> None:
    bars = _sell_cascade()
    liq = pl.DataFrame(
        {
            "ts": [T0 + timedelta(hours=h) for h in (49, 50, 50, 60)],
            "side": ["long", "long", "short", "long"],
            "notional_usd": [1e6, 2e6, 5e5, 9e9],  # the short and the late one are not counted
        }
    )
    out = detect_cascades(bars, liq)
    assert out.columns == list(CASCADE_COLUMNS)
    assert out.height == 1
    c = out.row(0, named=True)
    assert c["climax_ts"] == T0 + timedelta(hours=50)
    assert c["side"] == "long"
    assert c["climax_px"] == 90.0
    # trailing average over the 50 bars before: 48 quiet bars of 10, then 30 and 40
    assert c["volume_x"] == pytest.approx(80.0 / ((48 * 10 + 30 + 40) / 50))
    assert c["initiation_px"] == pytest.approx(100.2)  # the highest high of the 24 bars before
    assert c["acceleration_ts"] == T0 + timedelta(hours=48)
    assert c["exhaustion_ts"] == T0 + timedelta(hours=51)
    assert c["move_pct"] == pytest.approx((90.0 / 100.2 - 1) * 100)
    # 4 h after the climax bar the close is 94.5: (94.5 - 90) / (100.2 - 90) retraced
    assert c["retrace_4h"] == pytest.approx(4.5 / 10.2)
    assert c["liquidated_usd"] == pytest.approx(3e6)
    assert c["liquidated_label"] == "REALISED"


def test_no_reversal_wick_or_no_volume_spike_means_no_climax() -> None:
    bars = _sell_cascade()
    closes_at_low = bars.with_columns(
        c=pl.when(pl.col("l") == 90.0).then(90.1).otherwise(pl.col("c"))
    )
    assert detect_cascades(closes_at_low).is_empty()
    assert detect_cascades(bars, params=CascadeParams(volume_mult=10.0)).is_empty()


def test_a_buy_cascade_is_the_mirror_image() -> None:
    mirrored = _sell_cascade().select(
        "ts",
        "volume",
        o=200.0 - pl.col("o"),
        h=200.0 - pl.col("l"),
        l=200.0 - pl.col("h"),
        c=200.0 - pl.col("c"),
    )
    out = detect_cascades(mirrored)
    assert out.height == 1
    assert out.row(0, named=True)["side"] == "short"
    assert out.row(0, named=True)["climax_px"] == 110.0


def _second_leg(first: pl.DataFrame, at: int) -> pl.DataFrame:
    """``first`` with a second sell climax at hour ``at``: a new low of 85 (15% under the
    24-bar high of 100.2), 100 of volume (about 8x the trailing mean of ~12), closing at 90,
    5 of its 9.5 range off the low; then quiet at 90."""
    rows = first.drop("ts").to_dicts()[:at]
    rows += [{"o": 94.5, "h": 94.5, "l": 85.0, "c": 90.0, "volume": 100.0}, *_quiet(6, 90.0)]
    return _frame(rows)


def test_a_new_climax_after_the_cascade_exhausted_is_a_second_cascade() -> None:
    # the first cascade climaxes at hour 50 and exhausts at 51 (15 of volume, no new low);
    # a second climax 8 h later, inside merge_h (24 h), is a cascade of its own
    out = detect_cascades(_second_leg(_sell_cascade(), 58))
    assert out["climax_ts"].to_list() == [T0 + timedelta(hours=50), T0 + timedelta(hours=58)]
    assert out["climax_px"].to_list() == [90.0, 85.0]
    assert out["side"].to_list() == ["long", "long"]


def test_climax_bars_with_no_exhaustion_between_are_one_cascade() -> None:
    # the second climax bar comes straight after the first (hour 51 replaces the exhaustion
    # bar): one cascade, its climax at the lower low of the two
    out = detect_cascades(_second_leg(_sell_cascade(), 51))
    assert out.height == 1
    assert out["climax_ts"][0] == T0 + timedelta(hours=51)
    assert out["climax_px"][0] == 85.0


@pytest.mark.shared_data
def test_real_btc_candles_list_the_known_cascades_among_the_largest() -> None:
    path = require_shared("candles/zxcy_binance_spot_BTCUSDT_1h_2020-2023.csv.gz")
    candles = pl.read_csv(path).select(
        ts=pl.from_epoch("timestamp", time_unit="ms").dt.replace_time_zone("UTC"),
        o="open",
        h="high",
        l="low",
        c="close",
        volume="volume",
    )
    found = detect_cascades(candles)
    largest = found.sort(pl.col("move_pct").abs(), descending=True).head(5)
    days = largest["climax_ts"].dt.date().to_list()
    # COVID crash: the sell-off of 12 March 2020 bottomed at 3,782 at 02:00 UTC on the 13th
    assert date(2020, 3, 13) in days
    covid = largest.filter(pl.col("climax_ts").dt.date() == date(2020, 3, 13)).row(0, named=True)
    assert covid["climax_px"] == 3782.13
    assert covid["initiation_ts"].date() == date(2020, 3, 12)
    assert date(2021, 5, 19) in days  # the 19 May 2021 crash to 30,000
    assert set(largest["side"].head(2)) == {"long"}
