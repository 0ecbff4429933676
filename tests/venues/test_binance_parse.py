"""perpscope's Binance parsers on hand-made fixtures (expected values worked out by hand) and on
the real payloads of ../shared/data/samples."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from perpscope.domain.schema import table_spec
from perpscope.errors import DataContractError
from perpscope.store.lake import conform
from perpscope.venues import binance_parse as bp
from tests.conftest import require_shared

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "binance"


def load(name: str) -> Any:
    return json.loads((FIX / name).read_text())


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_funding_rows_carry_interval_from_settlement_spacing_across_8h_to_4h_change() -> None:
    frame = bp.parse_funding_rate(load("fapi_v1_fundingRate.json"), "XYZ-USDT-PERP")
    # times: 2025-09-01 00:00:00.001, 08:00, 12:00:00.003, 16:00 -> snapped to the minute
    assert frame["ts"].to_list() == [utc(2025, 9, 1, h) for h in (0, 8, 12, 16)]
    # gaps 8h, 4h, 4h; the first row has no predecessor and takes the next row's interval (8h)
    assert frame["interval_h"].to_list() == [8.0, 8.0, 4.0, 4.0]
    assert frame["rate"].to_list() == [0.0001, -0.00025, 0.0005, 0.000075]
    assert frame["mark_px"].to_list() == [1.2345, 1.22, 1.2501, None]  # "" -> null
    conform(table_spec("funding"), frame)  # fits the store schema


def test_funding_annualisation_uses_each_rows_interval() -> None:
    frame = bp.parse_funding_rate(load("fapi_v1_fundingRate.json"), "XYZ-USDT-PERP")
    annual = frame.select(pl.col("rate") * 8760 / pl.col("interval_h"))["rate"].to_list()
    # by hand: -0.00025 * 8760 / 8 = -0.27375 ; 0.0005 * 8760 / 4 = 1.095
    assert annual[1] == pytest.approx(-0.27375)
    assert annual[2] == pytest.approx(1.095)


def test_funding_first_row_uses_the_stored_predecessor() -> None:
    rows = load("fapi_v1_fundingRate.json")[2:3]  # the 12:00 settlement alone
    prev = int(utc(2025, 9, 1, 8).timestamp() * 1000)
    frame = bp.parse_funding_rate(rows, "XYZ-USDT-PERP", prev_ts_ms=prev)
    assert frame["interval_h"].to_list() == [4.0]
    alone = bp.parse_funding_rate(rows, "XYZ-USDT-PERP", fallback_interval_h=4.0)
    assert alone["interval_h"].to_list() == [4.0]


def test_trade_klines_keep_volumes_and_drop_the_open_bar() -> None:
    rows = load("fapi_v1_klines.json")
    second_close = rows[1][6]
    frame = bp.parse_klines(rows, "BTC-USDT-PERP", "trade", "1h", now_ms=second_close)
    assert frame.height == 1  # the second bar closes at now: still open
    row = frame.row(0, named=True)
    assert row["ts"] == utc(2025, 12, 31, 0)
    assert (row["o"], row["h"], row["l"], row["c"]) == (87500.10, 87920.00, 87410.50, 87800.00)
    assert (row["volume"], row["quote_volume"], row["taker_buy_volume"]) == (
        1520.345, 133178921.52, 801.112,
    )  # fmt: skip
    conform(table_spec("ohlcv"), frame)


def test_mark_klines_store_null_volume_not_zero() -> None:
    frame = bp.parse_klines(
        load("fapi_v1_markPriceKlines.json"), "BTC-USDT-PERP", "mark", "1h", now_ms=2**62
    )
    assert frame.height == 2
    assert frame["volume"].null_count() == 2
    assert frame["c"].to_list() == [87799.20, 87120.00]


def test_premium_index_snapshot_maps_symbols_and_blanks() -> None:
    frame, unmapped = bp.parse_premium_index(
        load("fapi_v1_premiumIndex.json"), bp.canonical_from_symbol, {"XYZ-USDT-PERP": 4.0}
    )
    assert unmapped == ()
    by = {r["instrument"]: r for r in frame.iter_rows(named=True)}
    assert set(by) == {"BTC-USDT-PERP", "XYZ-USDT-PERP", "BTC-USDT-27MAR26"}
    assert by["BTC-USDT-PERP"]["rate"] == 0.000045
    assert by["BTC-USDT-PERP"]["next_funding_ts"] == utc(2026, 1, 1, 8)
    assert by["XYZ-USDT-PERP"]["interval_h"] == 4.0
    dated = by["BTC-USDT-27MAR26"]
    assert dated["rate"] is None
    assert dated["next_funding_ts"] is None  # nextFundingTime 0
    conform(table_spec("funding_snapshot"), frame)


def test_open_interest_snapshot_and_history() -> None:
    snap = bp.parse_open_interest(load("fapi_v1_openInterest.json"), "BTC-USDT-PERP")
    assert snap.row(0, named=True)["oi_base"] == 81234.567
    assert snap.row(0, named=True)["source"] == "snapshot"
    hist = bp.parse_open_interest_hist(
        load("futures_data_openInterestHist.json"), "BTC-USDT-PERP", "5m"
    )
    assert hist["source"].to_list() == ["hist_5m", "hist_5m"]
    assert hist["oi_usd"].to_list() == [7129370799.4, 7132390982.6]
    assert hist["ts"].to_list() == [utc(2025, 12, 31, 23, 55), utc(2026, 1, 1)]
    conform(table_spec("open_interest"), hist)


@pytest.mark.parametrize(
    ("kind", "fixture", "first"),
    [
        ("global_account", "futures_data_globalLongShortAccountRatio.json", (0.685, 0.315, 2.1739)),
        ("top_account", "futures_data_topLongShortAccountRatio.json", (0.6, 0.4, 1.5)),
        ("top_position", "futures_data_topLongShortPositionRatio.json", (0.45, 0.55, 0.8182)),
    ],
)
def test_long_short_ratios(kind: str, fixture: str, first: tuple[float, float, float]) -> None:
    frame = bp.parse_long_short(load(fixture), "BTC-USDT-PERP", kind, "5m")
    row = frame.row(0, named=True)
    assert (row["long_frac"], row["short_frac"], row["long_short_ratio"]) == first
    assert row["kind"] == kind
    conform(table_spec("long_short"), frame)


def test_taker_volume() -> None:
    frame = bp.parse_taker_volume(
        load("futures_data_takerlongshortRatio.json"), "BTC-USDT-PERP", "5m"
    )
    assert frame["buy_volume_base"].to_list() == [500.0, 320.0]
    # ratio as sent: 500/400 = 1.25 and 320/400 = 0.8
    assert frame["buy_sell_ratio"].to_list() == [1.25, 0.8]
    conform(table_spec("taker_volume"), frame)


def test_exchange_info_instruments_intervals_and_skips() -> None:
    frame, skipped = bp.parse_exchange_info(
        load("fapi_v1_exchangeInfo.json"), load("fapi_v1_fundingInfo.json"), 1767225600000
    )
    assert skipped == ("OLDUSDT",)  # empty contractType
    by = {r["instrument"]: r for r in frame.iter_rows(named=True)}
    assert set(by) == {"BTC-USDT-PERP", "ETH-USDT-PERP", "XYZ-USDT-PERP", "BTC-USDT-27MAR26"}
    assert by["XYZ-USDT-PERP"]["funding_interval_h"] == 4.0  # fundingInfo
    assert by["BTC-USDT-PERP"]["funding_interval_h"] == 8.0  # default
    assert by["BTC-USDT-27MAR26"]["funding_interval_h"] is None
    assert by["BTC-USDT-27MAR26"]["expiry_ts"] == utc(2026, 3, 27, 8)
    assert by["ETH-USDT-PERP"]["tick_size_px"] == 0.01
    assert by["XYZ-USDT-PERP"]["lot_size"] == 1.0
    conform(table_spec("instruments"), frame)


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ('[{"symbol": "X", "fundingRat": "0.1", "fundingTime": 1}]', "no field 'fundingRate'"),
        ('[{"symbol": "X", "fundingRate": "abc", "fundingTime": 1}]', "non-number 'abc'"),
        ('[{"symbol": "X", "fundingRate": "0.1", "fundingTi', "expected a JSON list"),
        ('{"code": -1121, "msg": "Invalid symbol."}', "expected a JSON list"),
    ],
)
def test_funding_contract_violations_raise_one_clear_error(payload: str, needle: str) -> None:
    try:
        decoded: Any = json.loads(payload)
    except json.JSONDecodeError:
        decoded = payload  # ccxt hands over the raw text of a body that is not JSON
    with pytest.raises(DataContractError, match="fapi/v1/fundingRate") as err:
        bp.parse_funding_rate(decoded, "BTC-USDT-PERP")
    assert needle in str(err.value)


def test_unknown_contract_type_fails_loudly() -> None:
    info = load("fapi_v1_exchangeInfo.json")
    info["symbols"][0]["contractType"] = "PERPETUAL_V2"
    with pytest.raises(DataContractError, match="unknown contractType 'PERPETUAL_V2'"):
        bp.parse_exchange_info(info, [], 0)


def test_unknown_status_is_kept_not_dropped() -> None:
    info = load("fapi_v1_exchangeInfo.json")
    info["symbols"][0]["status"] = "AUCTION"
    frame, _ = bp.parse_exchange_info(info, [], 0)
    assert frame.filter(pl.col("venue_symbol") == "BTCUSDT")["status"].item() == "auction"


def test_short_kline_row_is_a_contract_violation() -> None:
    with pytest.raises(DataContractError, match="row 0 has 5 fields"):
        bp.parse_klines([[1, "1", "2", "0", "1"]], "BTC-USDT-PERP", "trade", "1h", now_ms=10)


def test_symbol_round_trip() -> None:
    from perpscope.domain.symbols import parse_instrument

    for text in ("BTC-USDT-PERP", "1000PEPE-USDT-PERP", "BTC-USDT-27MAR26"):
        inst = parse_instrument(text)
        assert bp.canonical_from_symbol(bp.venue_symbol(inst)) == text
    assert bp.canonical_from_symbol("币安人生USDT") is None


@pytest.mark.shared_data
def test_real_premium_index_all_symbols() -> None:
    path = require_shared("samples/binance_rest_real/fapi_v1_premiumIndex_all_2025-06-17.json.gz")
    payload = json.loads(gzip.decompress(path.read_bytes()))
    frame, unmapped = bp.parse_premium_index(payload, bp.canonical_from_symbol, {})
    assert frame.height + len(unmapped) == 521  # PROVENANCE: all 521 symbols
    btc = frame.filter(pl.col("instrument") == "BTC-USDT-PERP").row(0, named=True)
    assert btc["mark_px"] == 106599.9  # PROVENANCE.md: BTCUSDT mark 106,599.9
    assert btc["rate"] == 0.00004758  # and lastFundingRate 0.00004758
    assert btc["ts"] == datetime.fromtimestamp(1750149488, UTC)
    assert frame["rate"].drop_nulls().abs().max() < 0.05  # fractions, not percent
    conform(table_spec("funding_snapshot"), frame)


@pytest.mark.shared_data
def test_real_exchange_info_recording() -> None:
    path = require_shared("samples/cryptofeed_recordings/BINANCE_FUTURES.0.gz")
    line = gzip.decompress(path.read_bytes()).decode().splitlines()[0]
    # cryptofeed's line format: "<url> -> <unix ts>: <raw body>"
    body = json.loads(line.split(": ", 1)[1])
    frame, skipped = bp.parse_exchange_info(body, [], 1626992740175)
    # 119 perps, 2 quarterlies, and BTCSTUSDT: no contract type, far-future delivery = a perp
    assert frame.height == 122
    assert skipped == ()
    btcst = frame.filter(pl.col("venue_symbol") == "BTCSTUSDT").row(0, named=True)
    assert (btcst["instrument"], btcst["status"]) == ("BTCST-USDT-PERP", "pending")
    btc = frame.filter(pl.col("instrument") == "BTC-USDT-PERP").row(0, named=True)
    assert (btc["tick_size_px"], btc["lot_size"], btc["status"]) == (0.01, 0.001, "trading")
    assert frame.filter(pl.col("kind") == "perp").height == 120
    assert frame.filter(pl.col("kind") == "future").height == 2


def test_empty_contract_type_with_far_future_delivery_is_a_perpetual() -> None:
    info = load("fapi_v1_exchangeInfo.json")
    eth = next(s for s in info["symbols"] if s["symbol"] == "ETHUSDT")
    eth["contractType"] = ""  # deliveryDate stays 4133404800000
    frame, skipped = bp.parse_exchange_info(info, [], 0)
    assert skipped == ("OLDUSDT",)  # "" with a real delivery date
    assert "ETH-USDT-PERP" in frame["instrument"].to_list()
