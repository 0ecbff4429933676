"""Deribit payloads -> store rows: units, names and flags, with hand-computed numbers.

The payloads are hand-made in Deribit's documented shapes (API v2, "Market data"); one test
reads the real recorded response of the shared data (``samples/venues/deribit.json``), whose
numbers arrive as strings.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

from perpscope.domain.symbols import parse_instrument
from perpscope.errors import DataContractError
from perpscope.venues import deribit_parse as dp
from tests.conftest import require_shared

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
H = 3_600_000


def rpc(result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": result, "usIn": 1, "usOut": 2, "usDiff": 1,
            "testnet": False}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("BTC-PERPETUAL", "BTC-USD-PERP"),
        ("ETH-PERPETUAL", "ETH-USD-PERP"),
        ("BTC_USDC-PERPETUAL", "BTC-USDC-PERP"),
        ("BTC-27MAR26", "BTC-USD-27MAR26"),
        ("BTC-9JAN26-100000-C", "BTC-USD-9JAN26-100000-C"),
        ("XRP_USDC-9JAN26-0d625-P", "XRP-USDC-9JAN26-0.625-P"),
    ],
)
def test_names_map_both_ways(name: str, canonical: str) -> None:
    inst = dp.canonical_from_name(name)
    assert str(inst) == canonical
    assert dp.venue_symbol(parse_instrument(canonical)) == name


@pytest.mark.parametrize("name", ["BTC-FS-27MAR26_PERP", "BTC_USDC", "BTC-PERP", "btc-perpetual"])
def test_combos_spot_and_odd_names_have_no_canonical_id(name: str) -> None:
    assert dp.canonical_from_name(name) is None


def test_instruments_inverse_contract_size_lot_and_expiry() -> None:
    rows = [
        {"instrument_name": "BTC-PERPETUAL", "kind": "future", "contract_size": 10.0,
         "min_trade_amount": 10.0, "tick_size": 0.5, "settlement_currency": "BTC",
         "is_active": True},
        {"instrument_name": "BTC-27MAR26-100000-C", "kind": "option", "contract_size": 1.0,
         "min_trade_amount": 0.1, "tick_size": 0.0001, "settlement_currency": "BTC",
         "is_active": False},
        {"instrument_name": "BTC-FS-27MAR26_PERP", "kind": "future_combo", "contract_size": 10.0},
    ]  # fmt: skip
    frame, skipped = dp.parse_instruments(rpc(rows), T0)
    assert skipped == ("BTC-FS-27MAR26_PERP",)
    opt, perp = frame.sort("kind").iter_rows(named=True)  # option < perp
    assert perp["instrument"] == "BTC-USD-PERP"
    assert perp["contract_size"] == 10.0  # 10 USD a contract (inverse)
    assert perp["lot_size"] == 1.0  # min_trade_amount 10 USD = 1 contract
    assert perp["funding_interval_h"] == 8.0
    assert perp["expiry_ts"] is None
    assert opt["instrument"] == "BTC-USD-27MAR26-100000-C"
    assert opt["expiry_ts"] == datetime(2026, 3, 27, 8, tzinfo=UTC)  # Deribit expires at 08:00
    assert opt["lot_size"] == pytest.approx(0.1)
    assert opt["status"] == "halted"
    assert opt["funding_interval_h"] is None


def test_instrument_kind_contradicting_its_name_is_refused() -> None:
    rows = [{"instrument_name": "BTC-PERPETUAL", "kind": "option", "contract_size": 10.0}]
    with pytest.raises(DataContractError, match="kind 'option'"):
        dp.parse_instruments(rpc(rows), T0)


def test_funding_history_stores_the_hour_not_the_trailing_8h() -> None:
    # three hourly rows, sent newest first; interest_8h is the trailing sum (hand-made)
    rows = [
        {"timestamp": T0 + 2 * H, "index_price": 40_010.0, "prev_index_price": 40_005.0,
         "interest_1h": 0.00002, "interest_8h": 0.00016},
        {"timestamp": T0 + H, "index_price": 40_005.0, "prev_index_price": 40_000.0,
         "interest_1h": -0.00001, "interest_8h": 0.00012},
        {"timestamp": T0, "index_price": 40_000.0, "prev_index_price": 39_990.0,
         "interest_1h": "0.0000125", "interest_8h": 0.0001},
    ]  # fmt: skip
    frame = dp.parse_funding_history(rpc(rows), "BTC-USD-PERP")
    assert frame["ts"].dt.epoch("ms").to_list() == [T0, T0 + H, T0 + 2 * H]
    assert frame["rate"].to_list() == [0.0000125, -0.00001, 0.00002]
    assert set(frame["interval_h"]) == {1.0}
    assert frame["mark_px"].null_count() == 3  # the rows carry the index, not the mark
    # 8 h equivalent as every cross-venue table computes it: rate x 8 / interval_h
    assert (frame["rate"] * 8 / frame["interval_h"]).to_list() == [0.0001, -0.00008, 0.00016]


def test_funding_history_without_interest_1h_names_the_field() -> None:
    rows = [{"timestamp": T0, "interest_8h": 0.0001}]
    with pytest.raises(DataContractError, match="get_funding_rate_history.*'interest_1h'"):
        dp.parse_funding_history(rpc(rows), "BTC-USD-PERP")


def test_book_summary_futures_oi_in_usd_and_coin_becomes_one_sided_usd() -> None:
    rows = [
        # inverse: 500,000,000 USD at mark 40,000 -> 12,500 BTC (hand: 5e8 / 4e4)
        {"instrument_name": "BTC-PERPETUAL", "creation_timestamp": T0, "mark_price": 40_000.0,
         "estimated_delivery_price": 39_990.0, "open_interest": 500_000_000.0,
         "current_funding": 0.00012, "funding_8h": 0.0000874},
        # linear USDC perp: 2.5 BTC at mark 40,000 -> 100,000 USD
        {"instrument_name": "BTC_USDC-PERPETUAL", "creation_timestamp": T0,
         "mark_price": 40_000.0, "open_interest": 2.5, "current_funding": 0.0},
        {"instrument_name": "BTC-27MAR26", "creation_timestamp": T0 - 5,
         "mark_price": 40_500.0, "open_interest": 81_000_000.0},
        {"instrument_name": "BTC-FS-27MAR26_PERP", "creation_timestamp": T0,
         "mark_price": 500.0, "open_interest": 0.0},
    ]  # fmt: skip
    funding, oi, unmapped = dp.parse_book_summary_futures(rpc(rows))
    assert unmapped == ("BTC-FS-27MAR26_PERP",)
    by = {r["instrument"]: r for r in oi.iter_rows(named=True)}
    assert by["BTC-USD-PERP"]["oi_unit"] == "usd"
    assert by["BTC-USD-PERP"]["oi_usd"] == 500_000_000.0
    assert by["BTC-USD-PERP"]["oi_base"] == 12_500.0
    assert by["BTC-USDC-PERP"]["oi_unit"] == "base"
    assert by["BTC-USDC-PERP"]["oi_usd"] == 100_000.0
    assert by["BTC-USD-27MAR26"]["oi_base"] == 2_000.0  # 81,000,000 / 40,500
    # funding only for perpetuals: the rate accruing now, per 8 h; no settlement schedule
    assert funding["instrument"].to_list() == ["BTC-USD-PERP", "BTC-USDC-PERP"]
    btc = funding.row(0, named=True)
    assert btc["rate"] == 0.00012
    assert btc["interval_h"] == 8.0
    assert btc["next_funding_ts"] is None
    assert btc["predicted_rate"] is None
    assert btc["index_px"] == 39_990.0


def test_book_summary_options_units_quotes_and_snapshot_time() -> None:
    rows = [
        {"instrument_name": "BTC-27MAR26-100000-C", "base_currency": "BTC",
         "quote_currency": "BTC", "creation_timestamp": T0 - 40, "underlying_price": 101_000.0,
         "mark_price": 0.0625, "mark_iv": 55.5, "bid_iv": 0.0, "ask_iv": 57.25,
         "bid_price": 0.0, "ask_price": 0.065, "open_interest": 1234.5, "volume": 12.0,
         "volume_usd": 75_000.0, "estimated_delivery_price": 100_000.0},
        {"instrument_name": "BTC-27MAR26-90000-P", "base_currency": "BTC",
         "quote_currency": "BTC", "creation_timestamp": T0, "underlying_price": 101_000.0,
         "mark_price": "0.02", "mark_iv": "60", "bid_iv": "59", "ask_iv": "61",
         "bid_price": "0.019", "ask_price": None, "open_interest": "10", "volume": "0",
         "volume_usd": "0", "estimated_delivery_price": "100000"},
        {"instrument_name": "BTC-PERPETUAL", "creation_timestamp": T0, "mark_price": 1.0,
         "open_interest": 1.0, "underlying_price": 1.0},
    ]  # fmt: skip
    frame, unmapped = dp.parse_book_summary_options(rpc(rows))
    assert unmapped == ("BTC-PERPETUAL",)
    assert set(frame["ts"].dt.epoch("ms")) == {T0}  # the snapshot's newest quote
    call, put = frame.sort("option_type").iter_rows(named=True)
    assert call["quote_ts"] == datetime.fromtimestamp((T0 - 40) / 1000, UTC)
    assert call["mark_iv"] == pytest.approx(0.555)
    assert call["bid_iv"] is None  # 0 = no bid
    assert call["ask_iv"] == pytest.approx(0.5725)
    assert call["bid_price"] is None
    assert call["price_currency"] == "BTC"
    assert call["strike_px"] == 100_000.0
    assert call["expiry_ts"] == datetime(2026, 3, 27, 8, tzinfo=UTC)
    assert call["open_interest_contracts"] == 1234.5
    assert call["underlying_px"] == 101_000.0
    assert call["index_px"] == 100_000.0
    assert put["ask_price"] is None
    assert put["bid_iv"] == pytest.approx(0.59)
    assert put["underlying"] == "BTC"


def trade_row(**kw: Any) -> dict[str, Any]:
    row = {"trade_id": "1", "timestamp": T0, "instrument_name": "ETH-27MAR26-2000-C",
           "direction": "buy", "price": 0.05, "amount": 0.5, "iv": 61.5,
           "index_price": 2_000.0, "mark_price": 0.05}  # fmt: skip
    return {**row, **kw}


def test_option_trades_block_and_liquidation_flags() -> None:
    result = {
        "trades": [
            trade_row(trade_id="3", timestamp=T0 + 2, block_trade_id="BLOCK-9"),
            trade_row(trade_id="2", timestamp=T0 + 1, liquidation="MT", direction="sell"),
            trade_row(trade_id="1"),
            trade_row(trade_id="9", instrument_name="ETH-PERPETUAL"),  # not an option
        ],
        "has_more": True,
    }
    frame, more = dp.parse_option_trades(result)
    assert more is True
    assert frame["trade_id"].to_list() == ["1", "2", "3"]  # oldest first, the perp left out
    assert frame["block"].to_list() == [False, False, True]
    assert frame["liquidation"].to_list() == [None, "MT", None]
    assert frame["side"].to_list() == ["buy", "sell", "buy"]
    assert frame["notional_usd"][0] == 1_000.0  # 0.5 ETH x 2,000 USD (hand)
    assert frame["iv"][0] == pytest.approx(0.615)
    assert frame["price_currency"][0] == "ETH"


def test_an_unknown_liquidation_flag_is_a_contract_violation() -> None:
    with pytest.raises(DataContractError, match="unknown liquidation 'X'"):
        dp.parse_option_trades({"trades": [trade_row(liquidation="X")], "has_more": False})


def test_dvol_candles_become_fractions_and_keep_the_continuation() -> None:
    result = {"data": [[T0 + H, 55.3, 56.0, 55.0, 55.5], [T0, 54.0, 55.4, 53.9, 55.3]],
              "continuation": T0 - H}  # fmt: skip
    frame, cont = dp.parse_dvol(result, "BTC", "1h")
    assert cont == T0 - H
    assert frame["ts"].dt.epoch("ms").to_list() == [T0, T0 + H]
    assert frame["o"].to_list() == pytest.approx([0.54, 0.553])
    assert frame["c"].to_list() == pytest.approx([0.553, 0.555])
    assert set(frame["index_name"]) == {"dvol"}
    _, none = dp.parse_dvol({"data": [], "continuation": None}, "BTC", "1h")
    assert none is None


def test_a_non_jsonrpc_answer_is_refused() -> None:
    with pytest.raises(DataContractError, match="JSON-RPC"):
        dp.result_of({"error": {"code": 10028}}, "public/get_instruments")


def test_real_recorded_trade_with_numbers_as_strings_reads_as_ccxt_read_it() -> None:
    """The recorded response (a BTC_USDT spot trade, numbers stored as strings) with its
    instrument renamed to an option, so the option-trade parser reads it: price, amount, time,
    side and id must equal what ccxt parsed from the very same strings."""
    data = json.loads(require_shared("samples/venues/deribit.json").read_text())
    ex = data["methods"]["fetchTrades"][0]
    raw = ex["httpResponse"]["result"]
    renamed = {**raw, "trades": [{**t, "instrument_name": "BTC-27MAR26-100000-C"}
                                 for t in raw["trades"]]}  # fmt: skip
    frame, more = dp.parse_option_trades(renamed)
    assert more is raw["has_more"] is True
    [theirs] = ex["ccxtParsed"]
    row = frame.row(0, named=True)
    assert row["trade_id"] == theirs["id"]
    assert int(row["ts"].timestamp() * 1000) == theirs["timestamp"]
    assert row["price"] == theirs["price"]
    assert row["qty_contracts"] == theirs["amount"]
    assert row["side"] == theirs["side"]
    assert row["index_px"] == float(raw["trades"][0]["index_price"])
    assert row["block"] is False
    assert row["liquidation"] is None
    assert frame.schema["ts"] == pl.Datetime("ms", "UTC")


def test_chart_data_drops_the_open_bar_and_reads_no_data_as_empty() -> None:
    result = {"status": "ok", "ticks": [T0, T0 + H], "open": [1.0, 2.0], "high": [1.5, 2.5],
              "low": [0.5, 1.5], "close": [1.2, 2.2], "volume": [3.0, 4.0],
              "cost": [3.6, 8.8]}  # fmt: skip
    frame = dp.parse_chart(result, "BTC-USD-PERP", "1h", H, now_ms=T0 + H + 1)
    assert frame["ts"].dt.epoch("ms").to_list() == [T0]  # the bar opened at T0 + 1 h is open
    assert frame.row(0, named=True)["quote_volume"] == 3.6
    empty = dp.parse_chart({"status": "no_data"}, "BTC-USD-PERP", "1h", H, T0)
    assert empty.height == 0
    with pytest.raises(DataContractError, match="not as long as 'ticks'"):
        dp.parse_chart({**result, "close": [1.2]}, "BTC-USD-PERP", "1h", H, T0 + 9 * H)
