"""Bybit's insurance fund (``/v5/market/insurance``): the parser on hand-made payloads, malformed
payloads refused with one clear error, and ``collect insurance --venue bybit`` on the fake
exchange: pool-level rows, an idempotent re-run, the coin filter, retried faults and a broken
answer that stores nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from perpscope.collect.retry import RetryPolicy
from perpscope.errors import DataContractError, PerpscopeError, UsageError
from perpscope.services.collection import run_insurance
from perpscope.store.lake import Lake
from perpscope.venues.bybit_parse import parse_insurance
from tests.conftest import CliResult
from tests.fakex import bybit as fb
from tests.fakex.server import FakeBinance, Fault

UPDATE_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
POLICY = RetryPolicy(attempts=4, base_s=0.01, default_retry_after_s=0.01)


def _answer(rows: list[Any], update: object = str(UPDATE_MS)) -> dict[str, Any]:
    return {"retCode": 0, "retMsg": "OK", "time": UPDATE_MS + 5,
            "result": {"updateTime": update, "list": rows}}  # fmt: skip


def _pool(coin: str, symbols: str, balance: str, value: str = "1") -> dict[str, str]:
    return {"coin": coin, "symbols": symbols, "balance": balance, "value": value}


def test_pools_become_one_row_each_keyed_by_coin_and_sorted_symbols() -> None:
    frame = parse_insurance(
        _answer([
            _pool("USDT", "SOLUSDT, BTCUSDT,ETHUSDT", "1000.5", "1000.4"),
            _pool("USDT", "GRIFFAINUSDT", "25614.92972633", "25617.1"),
            _pool("BTC", "BTCUSD", "-0.25", "-10000"),  # a depleted pool: kept, negative
        ])
    )  # fmt: skip
    assert frame.columns == ["venue", "coin", "symbols", "ts", "shared", "balance_coin",
                             "value_usd"]  # fmt: skip
    # sorted by coin, then symbols; a shared pool's symbols are stripped and sorted
    assert frame["coin"].to_list() == ["BTC", "USDT", "USDT"]
    assert frame["symbols"].to_list() == ["BTCUSD", "BTCUSDT,ETHUSDT,SOLUSDT", "GRIFFAINUSDT"]
    assert frame["shared"].to_list() == [False, True, False]
    assert frame["balance_coin"].to_list() == [-0.25, 1000.5, 25614.92972633]
    assert frame["value_usd"].to_list() == [-10000.0, 1000.4, 25617.1]
    assert set(frame["venue"]) == {"bybit"}
    assert set(frame["ts"]) == {datetime(2026, 1, 1, tzinfo=UTC)}  # updateTime, not "time"


def test_a_number_update_time_and_an_empty_value_are_accepted() -> None:
    frame = parse_insurance(_answer([_pool("USDC", "BTCPERP", "80000", "")], update=UPDATE_MS))
    assert frame["ts"].to_list() == [datetime(2026, 1, 1, tzinfo=UTC)]
    assert frame["value_usd"].to_list() == [None]
    assert parse_insurance(_answer([])).height == 0  # no pool of the coin asked: no row


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_answer([_pool("USDT", "BTCUSDT", "lots")]), "field 'balance' holds a non-number"),
        (_answer([_pool("USDT", "BTCUSDT", "")]), "field 'balance' is empty"),
        (_answer([_pool("USDT", "BTCUSDT", "1", "x")]), "field 'value' holds a non-number"),
        (_answer([_pool("USDT", " , ", "1")]), "row 0 names no coin or no symbols"),
        (_answer([_pool("", "BTCUSDT", "1")]), "row 0 names no coin or no symbols"),
        (_answer([{"coin": "USDT", "balance": "1"}]), "row 0 has no field 'symbols'"),
        (_answer([_pool("USDT", "A,B", "1"), _pool("USDT", "B,A", "2")]), "describe one pool"),
        (_answer([_pool("USDT", "BTCUSDT", "1")], update=None), "no 'updateTime'"),
        (_answer([_pool("USDT", "BTCUSDT", "1")], update="soon"), "non-integer time"),
        (_answer(["x"]), "row 0 is a str"),
        ({"retCode": 10001, "retMsg": "params error", "result": {}}, "retCode 10001"),
        ([1, 2], "expected a v5 envelope"),
    ],
    ids=["balance-text", "balance-empty", "value-text", "no-symbols", "no-coin", "no-field",
         "one-pool-twice", "no-update", "bad-update", "row-str", "ret-code", "not-envelope"],
)  # fmt: skip
def test_a_malformed_insurance_answer_is_refused_naming_the_field(
    payload: object, message: str
) -> None:
    with pytest.raises(DataContractError) as err:
        parse_insurance(payload)
    assert str(err.value).startswith("bybit v5/market/insurance: ")
    assert message in str(err.value)


def test_collect_insurance_stores_pools_once_and_a_rerun_adds_nothing(
    tmp_path: Path, fake_binance: FakeBinance, cli: Callable[..., CliResult]
) -> None:
    store = tmp_path / "store"
    args = ("--store", str(store), "collect", "insurance", "--venue", "bybit", "--api-url",
            fake_binance.url, "--format", "json")  # fmt: skip
    first = cli(*args)
    assert first.code == 0, first.err
    d = first.json()
    assert (d["venue"], d["level"], d["rows_written"]) == ("bybit", "pool", 4)
    assert d["ts"] == "2025-12-31T23:59:00Z"  # the fake's updateTime: END - 1 minute
    shared = next(p for p in d["pools"] if p["shared"])
    # the fake lists the shared pool as "ETHUSDT,BTCUSDT,XYZUSDT": stored sorted
    assert shared == {"coin": "USDT", "symbols": "BTCUSDT,ETHUSDT,XYZUSDT", "shared": True,
                      "balance": 1_250_000.5, "value_usd": 1_250_100.25}  # fmt: skip
    assert len(fake_binance.requests("/v5/market/insurance")) == 1  # one request for all pools

    again = cli(*args)  # Bybit has not updated its figures: nothing new
    assert again.code == 0, again.err
    assert again.json()["rows_written"] == 0
    table = cli(*args[:-2])  # the table says the figures are per pool, not per instrument
    assert table.code == 0, table.err
    assert "insurance bybit (pool-level)" in table.out
    assert "BTCUSDT,ETHUSDT,XYZUSDT" in table.out
    stored = Lake(store).read("insurance_pool").sort("coin", "symbols")
    assert stored.height == 4  # no duplicate rows
    assert stored["coin"].to_list() == ["BTC", "USDC", "USDT", "USDT"]
    assert stored["balance_coin"].to_list() == [12.5, 80_000.0, 25_614.92972633, 1_250_000.5]


def test_the_coin_filter_reaches_bybit_and_keeps_its_pools_only(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    res = run_insurance(lake, "bybit", "usdt", api_url=fake_binance.url, rate_limit_ms=1)
    [req] = fake_binance.requests("/v5/market/insurance")
    assert req.params == {"coin": "USDT"}
    assert [p["symbols"] for p in res["pools"]] == ["ABCUSDT", "BTCUSDT,ETHUSDT,XYZUSDT"]
    assert res["rows_written"] == 2
    assert set(lake.read("insurance_pool")["coin"]) == {"USDT"}


def test_a_503_and_bybits_in_body_limit_are_retried(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    for kind in ("503", "10006"):
        fake_binance.inject(Fault("/v5/market/insurance", kind))
    lake = Lake(tmp_path / "store")
    res = run_insurance(lake, "bybit", api_url=fake_binance.url, policy=POLICY, rate_limit_ms=1)
    statuses = [r.status for r in fake_binance.requests("/v5/market/insurance")]
    assert statuses == [503, 200, 200]  # the 10006 answer is HTTP 200 with retCode 10006
    assert res["rows_written"] == len(fb.INSURANCE_POOLS)
    assert lake.read("insurance_pool").height == len(fb.INSURANCE_POOLS)


def test_an_ip_ban_is_not_retried_and_stores_nothing(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    fake_binance.set_budget("bybit_ip", 0, 60.0)
    lake = Lake(tmp_path / "store")
    with pytest.raises(PerpscopeError, match=r"IP banned \(HTTP 403\)"):
        run_insurance(lake, "bybit", api_url=fake_binance.url, policy=POLICY, rate_limit_ms=1)
    assert len(fake_binance.requests("/v5/market/insurance")) == 1
    assert not lake.has_table("insurance_pool")


@pytest.mark.parametrize(
    ("fault", "needle"),
    [
        (Fault("/v5/market/insurance", "rename", field=("balance", "amount")),
         "row 0 has no field 'balance'"),
        (Fault("/v5/market/insurance", "truncated"), "expected a v5 envelope"),
    ],
    ids=["renamed-field", "truncated"],
)  # fmt: skip
def test_a_broken_answer_fails_in_one_line_and_stores_nothing(
    tmp_path: Path,
    fake_binance: FakeBinance,
    cli: Callable[..., CliResult],
    fault: Fault,
    needle: str,
) -> None:
    fake_binance.inject(fault)
    store = tmp_path / "store"
    done = cli("--store", str(store), "collect", "insurance", "--venue", "bybit", "--api-url",
               fake_binance.url)  # fmt: skip
    assert done.code == 1
    [line] = done.err.strip().splitlines()  # one line, no traceback
    assert "bybit v5/market/insurance" in line
    assert needle in line
    lake = Lake(store)
    assert not lake.exists() or not lake.has_table("insurance_pool")


def test_a_venue_without_an_insurance_collector_and_a_bad_coin_are_usage_errors(
    tmp_path: Path,
) -> None:
    lake = Lake(tmp_path / "store")
    with pytest.raises(UsageError, match="no insurance-fund collector for venue 'okx'"):
        run_insurance(lake, "okx", api_url="http://127.0.0.1:9")
    with pytest.raises(UsageError, match="--coin must be a coin name"):
        run_insurance(lake, "bybit", "US DT", api_url="http://127.0.0.1:9")
    assert not lake.exists()
