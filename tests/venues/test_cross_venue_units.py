"""Across venues: open interest in every unit becomes the same one-sided USD figure, and funding
collected from Binance, Bybit and OKX (8 h and 4 h symbols) compares on an 8 h basis."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from perpscope.analytics.funding import cross_venue_funding, latest_funding
from perpscope.collect.retry import RetryPolicy
from perpscope.errors import DataContractError
from perpscope.services.collection import run_backfill
from perpscope.store.lake import Lake
from perpscope.venues.units import normalise_oi
from tests.fakex.market import END_MS, funding_times
from tests.fakex.server import FakeBinance


def test_oi_in_every_unit_is_the_same_one_sided_usd() -> None:
    # one market, BTC at 50,000 USD, 100 BTC open on one side, stated as each venue states it
    # (hand-computed): base 100 BTC; USD 5,000,000; OKX linear 0.01 BTC a contract ->
    # 10,000 contracts; OKX inverse / Binance COIN-M 100 USD a contract -> 50,000 contracts
    rows = pl.DataFrame(
        {
            "venue": ["binance", "bybit", "bybit", "deribit", "okx", "okx", "binance"],
            "instrument": ["BTC-USDT-PERP", "BTC-USDT-PERP", "BTC-USD-PERP", "BTC-USD-PERP",
                           "BTC-USDT-PERP", "BTC-USD-PERP", "BTC-USD-PERP"],
            "oi_value": [100.0, 100.0, 5_000_000.0, 5_000_000.0, 10_000.0, 50_000.0, 50_000.0],
            "oi_unit": ["base", "base", "usd", "usd", "contracts", "contracts", "contracts"],
            "contract_size": [None, None, None, None, 0.01, 100.0, 100.0],
            "inverse": [False, False, True, True, False, True, True],
            "px": [50_000.0] * 7,
        }
    )  # fmt: skip
    out = normalise_oi(rows)
    assert out["oi_usd"].to_list() == [5_000_000.0] * 7
    assert out["oi_base"].to_list() == [100.0] * 7


def test_oi_values_a_venue_sent_are_kept_and_unknown_units_refused() -> None:
    rows = pl.DataFrame({"oi_value": [2.0], "oi_unit": ["base"], "px": [10.0], "oi_usd": [21.0]})
    out = normalise_oi(rows)
    assert out["oi_usd"].to_list() == [21.0]  # the venue's own USD value wins
    assert out["oi_base"].to_list() == [2.0]
    with pytest.raises(DataContractError, match="lots"):
        normalise_oi(pl.DataFrame({"oi_value": [1.0], "oi_unit": ["lots"], "px": [1.0]}))


VENUES = ("binance", "bybit", "okx")


def fake_rate(i: int) -> float:
    """The fake market's rate of settlement ``i`` (tests/fakex/market.py), recomputed here."""
    return 0.0001 + 0.00005 * (((i * 7) % 11) - 5) / 5


def test_cross_venue_funding_normalises_8h_and_4h(
    tmp_path: Path, fake_binance: FakeBinance
) -> None:
    lake = Lake(tmp_path / "store")
    until = datetime.fromtimestamp(END_MS / 1000, UTC)
    since = datetime(2025, 12, 20, tzinfo=UTC)
    for venue in VENUES:
        results = run_backfill(
            lake, venue, ["BTC-USDT-PERP", "XYZ-USDT-PERP"], ["funding"], since=since,
            until=until, api_url=fake_binance.url, policy=RetryPolicy(attempts=2, base_s=0.01),
            pace=False, rate_limit_ms=1,
        )  # fmt: skip
        assert all(r.status == "ok" for r in results), [r.error for r in results]
    table = cross_venue_funding(latest_funding(lake.read("funding")))
    venues = {(r["venue"], r["asset"]): r for r in table.venues.iter_rows(named=True)}
    # the last settlements before END: BTC every 8 h, XYZ every 4 h (after its switch)
    btc = fake_rate(len(funding_times("BTCUSDT")) - 1)
    xyz = fake_rate(len(funding_times("XYZUSDT")) - 1)
    for venue in VENUES:
        assert venues[(venue, "BTC")]["interval_h"] == 8.0
        assert venues[(venue, "XYZ")]["interval_h"] == 4.0
        assert venues[(venue, "BTC")]["rate_8h"] == pytest.approx(btc, rel=1e-9)
        assert venues[(venue, "XYZ")]["rate_8h"] == pytest.approx(2 * xyz, rel=1e-9)
        assert venues[(venue, "XYZ")]["annualized"] == pytest.approx(xyz * 8760 / 4, rel=1e-9)
    assets = {r["asset"]: r for r in table.assets.iter_rows(named=True)}
    assert assets["XYZ"]["n_venues"] == 3
    assert assets["XYZ"]["agg_rate_8h"] == pytest.approx(2 * xyz, rel=1e-9)
    assert assets["XYZ"]["spread_8h"] == pytest.approx(0.0, abs=1e-15)  # one market, 3 venues
    # each venue's own interval source: Binance fundingInfo, Bybit fundingInterval minutes,
    # OKX the gaps between settlements (its rows carry none)
    stored = lake.read("funding").filter(pl.col("instrument") == "XYZ-USDT-PERP")
    assert dict(stored.group_by("venue").agg(pl.col("interval_h").unique()).iter_rows()) == {
        v: [4.0] for v in VENUES
    }
