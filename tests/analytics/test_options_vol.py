"""Volatility analytics: IV from venue or Black-76, smile, ATM term structure, 25-delta RR/BF."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from perpscope.analytics.black76 import black76_price
from perpscope.analytics.options_vol import (
    smile,
    term_structure_shape,
    vol_by_expiry,
    with_iv_and_greeks,
)

T0 = datetime(2024, 1, 8, 8, 0, tzinfo=UTC)


def _chain(rows: list[dict[str, object]]) -> pl.DataFrame:
    base = {
        "ts": T0,
        "price_currency": "ETH",
        "mark_price": None,
        "mark_iv": None,
        "delta": None,
        "gamma": None,
        "vega": None,
        "theta": None,
        "days_to_expiry": None,
    }
    frame = pl.DataFrame([{**base, **r} for r in rows], infer_schema_length=None)
    return frame.with_columns(
        pl.col("ts", "expiry_ts").dt.cast_time_unit("us").dt.convert_time_zone("UTC"),
        pl.col("mark_price", "mark_iv", "delta", "gamma", "vega", "theta").cast(pl.Float64),
        pl.col("days_to_expiry").cast(pl.Float64),
    )


def test_iv_is_inverted_from_a_coin_mark_when_the_venue_gives_none() -> None:
    # Deribit marks are in coin: USD = mark x forward. Build marks from Black-76 at 80% vol.
    expiry = T0 + timedelta(days=36.5)  # 0.1 year
    fwd, strikes = 2000.0, [1600.0, 2000.0, 2500.0]
    rows = []
    for k in strikes:
        kind = "P" if k < fwd else "C"
        usd = float(black76_price(fwd, k, 0.1, 0.8, kind == "C"))
        rows.append(
            {
                "expiry_ts": expiry,
                "strike_px": k,
                "option_type": kind,
                "underlying_px": fwd,
                "mark_price": usd / fwd,
            }
        )
    out = with_iv_and_greeks(_chain(rows))
    assert np.allclose(out["iv"].to_numpy(), 0.8, atol=1e-6)
    assert out["iv_source"].to_list() == ["black76"] * 3
    assert out["greeks_source"].to_list() == ["black76"] * 3
    # put delta of the 1600 put is negative, call delta of the 2500 call in (0, 0.5)
    assert out["delta"][0] < 0 < out["delta"][2] < 0.5


def test_venue_iv_and_greeks_win_and_impossible_marks_become_null() -> None:
    expiry = T0 + timedelta(days=30)
    rows = [
        {"expiry_ts": expiry, "strike_px": 2000.0, "option_type": "C", "underlying_px": 2000.0,
         "mark_price": 0.05, "mark_iv": 0.65, "delta": 0.52},
        # a call worth more than the forward cannot be inverted: null, never NaN
        {"expiry_ts": expiry, "strike_px": 2100.0, "option_type": "C", "underlying_px": 2000.0,
         "mark_price": 1.5},
    ]  # fmt: skip
    out = with_iv_and_greeks(_chain(rows))
    assert out["iv"].to_list()[0] == 0.65
    assert out["iv"][1] is None
    assert out["iv_source"].to_list() == ["venue", None]
    assert out["delta"][0] == 0.52
    assert out["greeks_source"][0] == "venue"
    assert not out.select(pl.selectors.float().is_nan().any()).row(0)[0]


def _skew_chain(expiry: datetime, atm_call_iv: float) -> pl.DataFrame:
    # forward 100; venue deltas and IVs given, so the 25-delta points are known by hand
    calls = [(100.0, 0.5, atm_call_iv), (110.0, 0.3, 0.60), (120.0, 0.2, 0.65), (130.0, 0.1, 0.70)]
    puts = [(100.0, -0.5, 0.60), (90.0, -0.3, 0.70), (80.0, -0.2, 0.80), (70.0, -0.1, 0.90)]
    rows = [
        {"expiry_ts": expiry, "strike_px": k, "option_type": t, "underlying_px": 100.0,
         "mark_iv": iv, "delta": d, "days_to_expiry": (expiry - T0).total_seconds() / 86400}
        for t, legs in (("C", calls), ("P", puts))
        for k, d, iv in legs
    ]  # fmt: skip
    return with_iv_and_greeks(_chain(rows))


def test_smile_uses_puts_below_the_forward_and_calls_at_or_above() -> None:
    sm = smile(_skew_chain(T0 + timedelta(days=30), 0.55))
    by_k = dict(zip(sm["strike_px"].to_list(), sm["otm_iv"].to_list(), strict=True))
    assert by_k[90.0] == 0.70  # put side
    assert by_k[100.0] == 0.55  # at the forward: the call
    assert by_k[110.0] == 0.60
    assert sm["log_moneyness"].to_list()[0] == pytest.approx(np.log(70 / 100))


def test_atm_rr_and_butterfly_by_hand() -> None:
    vol = vol_by_expiry(_skew_chain(T0 + timedelta(days=30), 0.55))
    row = vol.row(0, named=True)
    # ATM: OTM IV at log-moneyness 0 is the 100 call: 0.55
    # 25d call: between delta 0.2 (0.65) and 0.3 (0.60) -> 0.625
    # 25d put: between -0.3 (0.70) and -0.2 (0.80) -> 0.75
    # RR = 0.625 - 0.75 = -0.125; BF = (0.625 + 0.75) / 2 - 0.55 = 0.1375
    assert row["atm_iv"] == pytest.approx(0.55)
    assert row["call_25d_iv"] == pytest.approx(0.625)
    assert row["put_25d_iv"] == pytest.approx(0.75)
    assert row["rr_25d"] == pytest.approx(-0.125)
    assert row["bf_25d"] == pytest.approx(0.1375)
    assert row["note"] is None


def test_unbracketed_points_are_null_with_a_note() -> None:
    expiry = T0 + timedelta(days=30)
    rows = [
        {"expiry_ts": expiry, "strike_px": 150.0, "option_type": "C", "underlying_px": 100.0,
         "mark_iv": 0.9, "delta": 0.05},
    ]  # fmt: skip
    row = vol_by_expiry(with_iv_and_greeks(_chain(rows))).row(0, named=True)
    assert row["atm_iv"] is None
    assert row["rr_25d"] is None
    assert row["note"] == "quotes do not bracket ATM, 25d call, 25d put"


def test_term_structure_inversion_flag() -> None:
    front = _skew_chain(T0 + timedelta(days=7), 0.90)
    back = _skew_chain(T0 + timedelta(days=90), 0.55)
    vol = vol_by_expiry(pl.concat([front, back]))
    shape = term_structure_shape(vol)
    assert shape.inverted is True
    assert (shape.front_atm_iv, shape.back_atm_iv) == (pytest.approx(0.9), pytest.approx(0.55))
    normal = term_structure_shape(vol_by_expiry(pl.concat([
        _skew_chain(T0 + timedelta(days=7), 0.50), back
    ])))  # fmt: skip
    assert normal.inverted is False
    single = term_structure_shape(vol_by_expiry(back))
    assert single.inverted is None
    assert single.note == "fewer than two expiries with ATM IV"
