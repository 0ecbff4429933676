"""OKX parsers on their own: the envelope, closed enums, contract sizes, newest-first rows, the
ratio-only statistics, and malformed payloads (one clear error naming endpoint and field).

Payloads: the real recorded open interest and candles of ``samples/venues/okx.json`` (ccxt's
static fixtures) and the hand-made ``tests/fixtures/okx`` (see its README). Expected numbers are
worked out by hand in the comments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from perpscope.errors import DataContractError
from perpscope.venues import okx_parse as op
from perpscope.venues.units import normalise_oi
from tests.conftest import require_shared

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "okx"
READ_MS = 1_767_225_600_000


def load(name: str) -> list[Any]:
    return op.data_list(json.loads((FIX / name).read_text()), name)


def sample(method: str, index: int = 0) -> dict[str, Any]:
    data = json.loads(require_shared("samples/venues/okx.json").read_text())
    example: dict[str, Any] = data["methods"][method][index]
    return example


def test_an_error_envelope_is_a_contract_error_naming_the_code() -> None:
    with pytest.raises(DataContractError, match=r"okx x: code '51001': 'Instrument ID does not"):
        op.data_list({"code": "51001", "msg": "Instrument ID does not exist", "data": []}, "x")
    with pytest.raises(DataContractError, match="expected a v5 envelope"):
        op.data_list([["1", "2"]], "x")
    with pytest.raises(DataContractError, match="no 'data' array"):
        op.data_list({"code": 0, "msg": ""}, "x")  # code as a number is accepted


def test_instruments_contract_sizes_states_and_skipped_preopen() -> None:
    frame, skipped = op.parse_instruments(load("public_instruments.json"), READ_MS)
    rows = {r["venue_symbol"]: r for r in frame.iter_rows(named=True)}
    assert skipped == ("NEWCOIN-USDT-SWAP",)  # announced by id only
    assert rows["BTC-USDT-SWAP"]["instrument"] == "BTC-USDT-PERP"
    assert rows["BTC-USDT-SWAP"]["contract_size"] == 0.01  # BTC per contract
    assert rows["BTC-USD-SWAP"]["instrument"] == "BTC-USD-PERP"
    assert rows["BTC-USD-SWAP"]["contract_size"] == 100.0  # USD per contract (inverse)
    assert rows["BTC-USD-SWAP"]["settle"] == "BTC"
    # ctVal 0.1 x ctMult 10 = 1 PEPE a contract
    assert rows["PEPE-USDT-SWAP"]["contract_size"] == pytest.approx(1.0, rel=1e-12)
    assert rows["PEPE-USDT-SWAP"]["status"] == "halted"  # suspend
    assert rows["BTC-USDT-SWAP"]["status"] == "trading"
    assert frame["funding_interval_h"].null_count() == 3  # not in this answer


def test_instruments_refuse_unknown_enums_and_missing_contract_value() -> None:
    rows = load("public_instruments.json")
    rows[0]["ctType"] = "quanto"
    with pytest.raises(DataContractError, match="unknown ctType 'quanto'"):
        op.parse_instruments(rows, READ_MS)
    rows = load("public_instruments.json")
    rows[1]["instType"] = "SPOTX"
    with pytest.raises(DataContractError, match="unknown instType 'SPOTX'"):
        op.parse_instruments(rows, READ_MS)
    rows = load("public_instruments.json")
    rows[0]["ctVal"] = ""
    with pytest.raises(DataContractError, match="BTC-USDT-SWAP.*no positive ctVal"):
        op.parse_instruments(rows, READ_MS)


def test_funding_history_stores_the_realised_rate_with_intervals_from_the_gaps() -> None:
    frame = op.parse_funding_history(load("public_funding_rate_history.json"), "BTC-USDT-PERP", 8.0)
    assert frame["ts"].is_sorted()  # OKX sends newest first
    assert frame["rate"].to_list() == [0.0002093, 0.00012, -0.0000501, 0.0000998]  # realizedRate
    # gaps 4 h, 8 h, 8 h; the first row has no predecessor and takes its follower's
    assert frame["interval_h"].to_list() == [4.0, 4.0, 8.0, 8.0]
    assert frame["mark_px"].null_count() == 4


def test_a_lone_funding_row_takes_the_current_interval_or_stays_null() -> None:
    one = load("public_funding_rate_history.json")[:1]
    assert op.parse_funding_history(one, "X", 4.0)["interval_h"].to_list() == [4.0]
    assert op.parse_funding_history(one, "X", None)["interval_h"].to_list() == [None]
    # with the previous stored settlement 8 h earlier the gap decides
    prev = 1_767_196_800_000 - 8 * 3_600_000
    assert op.parse_funding_history(one, "X", 4.0, prev)["interval_h"].to_list() == [8.0]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"fundingTime": "2025-12-31"}, "'t' holds a non-integer time '2025-12-31'"),
        ({"realizedRate": "n/a"}, "'rate' holds a non-number 'n/a'"),
    ],
    ids=["iso-time", "text-rate"],
)
def test_malformed_funding_rows_fail_naming_endpoint_and_field(
    change: dict[str, str], needle: str
) -> None:
    rows = load("public_funding_rate_history.json")
    rows[2].update(change)
    with pytest.raises(DataContractError, match="okx api/v5/public/funding-rate-history") as err:
        op.parse_funding_history(rows, "X", 8.0)
    assert needle in str(err.value)
    rows = load("public_funding_rate_history.json")
    del rows[1]["fundingTime"]
    with pytest.raises(DataContractError, match=r"data\[1\] has no field 'fundingTime'"):
        op.parse_funding_history(rows, "X", 8.0)


def test_real_candles_newest_first_become_oldest_first() -> None:
    raw = sample("fetchOHLCV")["httpResponse"]["data"]
    frame = op.parse_candles(raw, "BTC-USDT-PERP", "trade", 3_600_000, "1h", now_ms=READ_MS)
    assert frame["ts"].dt.epoch("ms").to_list() == [1706630400000, 1706634000000, 1706637600000]
    assert frame["o"].to_list() == [43377.1, 43495.9, 43398.6]
    # volume is field 6 (volCcy: base coin for a swap), quote volume field 7 (volCcyQuote)
    assert frame["volume"][0] == float(raw[-1][6])
    assert frame["quote_volume"][0] == float(raw[-1][7])
    assert frame["taker_buy_volume"].null_count() == 3


def test_candles_drop_the_unconfirmed_bar_and_refuse_short_rows() -> None:
    rows = [["7200000", "3", "4", "2", "3.5", "0"],
            ["3600000", "2", "3", "1", "3", "1"],
            ["0", "1", "2", "0.5", "2", "1"]]  # fmt: skip
    frame = op.parse_candles(rows, "X", "mark", 3_600_000, "1h", now_ms=10**13)
    assert frame["ts"].dt.epoch("ms").to_list() == [0, 3_600_000]  # confirm "0" dropped
    assert frame["volume"].null_count() == 2
    with pytest.raises(DataContractError, match=r"history-candles: data\[0\] is not an array of 9"):
        op.parse_candles([["0", "1", "2", "0.5", "2", "1"]], "X", "trade", 1, "1h", now_ms=10)


def test_long_short_shares_follow_from_the_ratio() -> None:
    frame = op.parse_long_short(load("rubik_long_short.json"), "X", "global_account", "1h")
    assert frame["ts"].is_sorted()
    # r = 1 -> 1/2 each; r = 1.5 -> long 1.5/2.5 = 0.6, short 1/2.5 = 0.4
    assert frame["long_frac"].to_list()[0] == 0.5
    assert frame["long_frac"][2] == pytest.approx(0.6, rel=1e-12)
    assert frame["short_frac"][2] == pytest.approx(0.4, rel=1e-12)
    assert frame["long_short_ratio"].to_list() == [1.0, 0.9398602814619824, 1.5]
    with pytest.raises(DataContractError, match="negative long/short ratio"):
        op.parse_long_short([["0", "-1"]], "X", "top_account", "1h")


def test_taker_volume_reads_sell_before_buy() -> None:
    frame = op.parse_taker_volume(load("rubik_taker_volume.json"), "X", "1h")
    last = frame.row(2, named=True)  # ["1767222000000", "380", "400"]: sell 380, buy 400
    assert (last["sell_volume_base"], last["buy_volume_base"]) == (380.0, 400.0)
    assert last["buy_sell_ratio"] == pytest.approx(400 / 380, rel=1e-12)


def test_oi_history_keeps_contracts_coin_and_usd() -> None:
    frame = op.parse_oi_history(load("rubik_open_interest_history.json"), "X", "hist_1h")
    last = frame.row(2, named=True)
    assert (last["oi_value"], last["oi_unit"], last["oi_base"], last["oi_usd"]) == (
        2800476.45, "contracts", 28004.7645, 2360916466.88
    )  # fmt: skip
    with pytest.raises(DataContractError, match="not an array of 4 fields"):
        op.parse_oi_history([["1", "2", "3"]], "X", "hist_1h")


def test_real_open_interest_contracts_to_coin_to_usd_by_hand() -> None:
    ex = sample("fetchOpenInterest")
    frame = op.parse_oi_snapshot(
        op.data_list(ex["httpResponse"], "oi"), {"BTC-USDT-SWAP": "BTC-USDT-PERP"}.get, READ_MS
    )
    row = frame.row(0, named=True)
    assert row["oi_unit"] == "contracts"
    assert row["oi_value"] == 2663107.29999999861  # as sent; ccxt: openInterestAmount
    assert row["oi_value"] == ex["ccxtParsed"]["openInterestAmount"]
    assert row["oi_base"] == ex["ccxtParsed"]["baseVolume"]
    assert row["oi_usd"] == ex["ccxtParsed"]["openInterestValue"]
    # by hand: 2,663,107.3 contracts x 0.01 BTC = 26,631.073 BTC, OKX's own oiCcy; at the
    # price OKX used (oiUsd / oiCcy = 1,676,426,045.35 / 26,631.073 = 62,949.7...) that is
    # oiUsd again. normalise_oi recomputes both from the contracts alone.
    px = 1_676_426_045.349999124995 / 26_631.0729999999861
    again = normalise_oi(
        frame.drop("oi_base", "oi_usd").with_columns(
            px=pl.lit(px), contract_size=pl.lit(0.01), inverse=pl.lit(False)
        )
    ).row(0, named=True)
    assert again["oi_base"] == pytest.approx(26_631.073, rel=1e-12)
    assert again["oi_usd"] == pytest.approx(1_676_426_045.35, rel=1e-12)


def test_inverse_open_interest_by_hand() -> None:
    # BTC-USD-SWAP: 50,000 contracts of 100 USD = 5,000,000 USD; at 50,000 USD a BTC = 100 BTC
    rows = [{"instId": "BTC-USD-SWAP", "instType": "SWAP", "oi": "50000", "oiCcy": "100",
             "oiUsd": "5000000", "ts": "1767225600000"}]  # fmt: skip
    frame = op.parse_oi_snapshot(rows, {"BTC-USD-SWAP": "BTC-USD-PERP"}.get, READ_MS)
    again = normalise_oi(
        frame.drop("oi_base", "oi_usd").with_columns(
            px=pl.lit(50_000.0), contract_size=pl.lit(100.0), inverse=pl.lit(True)
        )
    ).row(0, named=True)
    assert (again["oi_usd"], again["oi_base"]) == (5_000_000.0, 100.0)
    assert (frame["oi_usd"][0], frame["oi_base"][0]) == (5_000_000.0, 100.0)  # OKX's own


def test_funding_rates_snapshot_interval_and_unpublished_prediction() -> None:
    ids = {"BTC-USDT-SWAP": "BTC-USDT-PERP", "ETH-USDT-SWAP": "ETH-USDT-PERP"}
    frame, unmapped = op.parse_funding_rates(
        load("public_funding_rate.json"), ids.get, {"BTC-USDT-PERP": 40_000.0}, READ_MS
    )
    assert unmapped == ()
    btc, eth = frame.row(0, named=True), frame.row(1, named=True)
    assert btc["rate"] == 0.0000765
    assert btc["predicted_rate"] == 0.0001
    assert eth["predicted_rate"] is None  # "" = not published
    assert btc["interval_h"] == 8.0  # (1767283200000 - 1767254400000) / 3,600,000
    assert btc["next_funding_ts"].timestamp() * 1000 == 1_767_254_400_000
    assert btc["ts"].timestamp() * 1000 == 1_767_225_600_123  # the row's own ts
    assert (btc["mark_px"], eth["mark_px"], btc["index_px"]) == (40_000.0, None, None)


def test_position_tiers_bounds_in_coin_for_linear_and_usd_for_inverse() -> None:
    rows = load("public_position_tiers.json")
    linear = op.parse_position_tiers(rows, "BTC-USDT-PERP", READ_MS, 0.01, inverse=False)
    # 20,000 contracts x 0.01 BTC = 200 BTC; 50,000 -> 500 BTC; 100,000 -> 1,000 BTC
    assert linear["notional_floor_usd"].to_list() == [0.0, 200.0, 500.0]
    assert linear["notional_cap_usd"].to_list() == [200.0, 500.0, 1000.0]
    assert set(linear["bound_unit"]) == {"base"}
    assert linear["mmr"].to_list() == [0.004, 0.005, 0.01]
    assert linear["maint_amount_usd"].to_list() == [0.0, 0.0, 0.0]
    inverse = op.parse_position_tiers(rows, "BTC-USD-PERP", READ_MS, 100.0, inverse=True)
    assert inverse["notional_cap_usd"].to_list() == [2_000_000.0, 5_000_000.0, 10_000_000.0]
    assert set(inverse["bound_unit"]) == {"usd"}
    rows[1]["mmr"] = "1.5"
    with pytest.raises(DataContractError, match="'mmr' must be a fraction"):
        op.parse_position_tiers(rows, "X", READ_MS, 0.01, inverse=False)
