"""Bybit parsers on their own: the envelope, closed enums, and both number spellings."""

from __future__ import annotations

import pytest

from perpscope.errors import DataContractError
from perpscope.venues import bybit_parse as yp
from tests.fakex import bybit as fb


def test_an_error_envelope_is_a_contract_error_naming_the_code() -> None:
    with pytest.raises(DataContractError, match="retCode 10001"):
        yp.result_list(fb.params_error("symbol invalid"), "v5/market/kline")
    with pytest.raises(DataContractError, match="v5 envelope"):
        yp.result_list([1, 2], "v5/market/kline")


def test_ret_code_and_times_as_strings_or_numbers() -> None:
    # the recorded fixtures spell retCode/time both ways; both parse the same
    for code, t in ((0, 1767225600000), ("0", "1767225600000")):
        payload = {"retCode": code, "result": {"list": fb.tickers_rows_for_test()}, "time": t}
        funding, oi, unmapped = yp.parse_tickers(
            payload, lambda s: {"BTCUSDT": "BTC-USDT-PERP"}.get(s), {"BTC-USDT-PERP": 8.0}
        )
        assert funding["instrument"].to_list() == ["BTC-USDT-PERP"]
        assert funding["ts"].dt.epoch("ms").to_list() == [1767225600000]
        assert unmapped == ("ETHUSDT", "XYZUSDT")
        assert oi["oi_usd"][0] == pytest.approx(oi["oi_base"][0] * funding["mark_px"][0])


def test_an_unknown_contract_type_raises_and_funding_interval_is_minutes() -> None:
    rows = fb.instrument_rows()
    frame, skipped = yp.parse_instruments(rows, 1767225600000)
    assert dict(zip(frame["venue_symbol"], frame["funding_interval_h"], strict=True)) == {
        "BTCUSDT": 8.0, "ETHUSDT": 8.0, "XYZUSDT": 4.0,
    }  # fmt: skip
    assert skipped == ()
    rows[0]["contractType"] = "LinearSwapish"
    with pytest.raises(DataContractError, match="unknown contractType 'LinearSwapish'"):
        yp.parse_instruments(rows, 1767225600000)


def test_klines_newest_first_become_oldest_first_without_the_open_bar() -> None:
    rows = [["7200000", "3", "4", "2", "3.5", "10", "35"],
            ["3600000", "2", "3", "1", "3", "20", "50"],
            ["0", "1", "2", "0.5", "2", "30", "45"]]  # fmt: skip
    frame = yp.parse_klines(rows, "BTC-USDT-PERP", "trade", 3_600_000, "1h", now_ms=7_200_000)
    assert frame["ts"].dt.epoch("ms").to_list() == [0, 3_600_000]  # 2h bar still open
    assert frame["volume"].to_list() == [30.0, 20.0]
    assert frame["quote_volume"].to_list() == [45.0, 50.0]
    with pytest.raises(DataContractError, match="5 fields"):
        yp.parse_klines([["0", "1"]], "BTC-USDT-PERP", "mark", 3_600_000, "1h", now_ms=0)
