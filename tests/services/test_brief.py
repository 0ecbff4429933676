"""``build_brief`` on small hand-built stores: each panel is what its service computes, a panel
whose data is not stored says what is missing (the brief still builds), and the errors.

The demo-store checks (every panel lit, the JSON schema, the table and the HTML) are in
tests/cli/test_brief_cli.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from perpscope.errors import UsageError
from perpscope.services.brief import brief_assets, build_brief
from perpscope.services.filters import MarketQuery
from perpscope.services.funding_table import funding_table_report
from perpscope.store.lake import Lake

T0 = datetime(2024, 3, 1, tzinfo=UTC)
PANELS = ("price", "funding", "open_interest", "long_short", "cvd", "basis", "liquidations",
          "options", "regime", "scenario", "setups", "alerts")  # fmt: skip


def _funding_lake(root: Path, venues: tuple[str, ...] = ("binance", "bybit")) -> Lake:
    """Funding only: BTC on two venues (8h and 4h intervals), ETH on the first venue."""
    lake = Lake(root)
    lake.init()
    rows = []
    for i in range(12):
        rows.append(
            (venues[0], "BTC-USDT-PERP", T0 + timedelta(hours=8 * i), 0.0001 * (1 + i % 3), 8.0)
        )
        rows.append(
            (venues[1], "BTC-USDT-PERP", T0 + timedelta(hours=4 * i), 0.00004 * (i % 4), 4.0)
        )
        rows.append((venues[0], "ETH-USDT-PERP", T0 + timedelta(hours=8 * i), -0.0002, 8.0))
    lake.ingest(
        "funding",
        pl.DataFrame(
            rows, schema=["venue", "instrument", "ts", "rate", "interval_h"], orient="row"
        ),
    )
    return lake


def test_funding_panel_is_the_funding_table_and_other_panels_say_what_is_missing(
    tmp_path: Path,
) -> None:
    lake = _funding_lake(tmp_path / "store")
    at = T0 + timedelta(hours=50)
    doc = build_brief(lake, ["btc"], at=at)
    assert doc["simulated"] is False  # real venue names, not a demo store
    assert doc["as_of"] == "2024-03-03T02:00:00Z"
    (a,) = doc["assets"]
    assert a["asset"] == "BTC"
    assert set(PANELS) <= set(a)

    table = funding_table_report(lake, MarketQuery.make(assets=["BTC"], until=at), now=at)
    expected = table.venues.sort("venue")
    panel = a["funding"]
    assert panel["available"] is True
    assert [v["venue"] for v in panel["venues"]] == expected["venue"].to_list()
    for v, row in zip(panel["venues"], expected.iter_rows(named=True), strict=True):
        assert v["rate"] == pytest.approx(row["rate"], rel=1e-11)
        assert v["rate_8h"] == pytest.approx(row["rate_8h"], rel=1e-11)
        assert v["annualized"] == pytest.approx(row["annualized"], rel=1e-11)
        assert v["interval_h"] == row["interval_h"]
        assert v["ts"] == row["ts"].strftime("%Y-%m-%dT%H:%M:%SZ")
        assert v["ts"] < doc["as_of"]  # nothing after --at
    agg = table.assets.row(0, named=True)
    assert panel["aggregate_rate_8h"] == pytest.approx(agg["agg_rate_8h"], rel=1e-11)
    assert panel["spread_8h"] == pytest.approx(agg["spread_8h"], rel=1e-11)

    # No OI, candles, options or alerts stored: each of those panels says so, in words.
    for key in ("price", "open_interest", "liquidations", "options", "long_short", "cvd"):
        assert a[key]["available"] is False, key
        assert a[key]["missing"].strip(), key
        assert "Traceback" not in a[key]["missing"]
    assert "option chains" in a["options"]["missing"]
    assert f"options missing for BTC: {a['options']['missing']}" in doc["notes"]
    assert f"price missing for BTC: {a['price']['missing']}" in doc["notes"]


def test_at_moves_the_funding_panel_back_in_time(tmp_path: Path) -> None:
    lake = _funding_lake(tmp_path / "store")
    early = build_brief(lake, ["BTC"], at=T0 + timedelta(hours=17))["assets"][0]["funding"]
    late = build_brief(lake, ["BTC"], at=T0 + timedelta(hours=90))["assets"][0]["funding"]
    binance = [v for v in early["venues"] if v["venue"] == "binance"][0]
    assert binance["ts"] == "2024-03-01T16:00:00Z"  # the settlement at 16h, not later ones
    assert binance["rate"] == pytest.approx(0.0003)
    later = [v for v in late["venues"] if v["venue"] == "binance"][0]
    assert later["ts"] == "2024-03-04T16:00:00Z"  # the last stored one (i = 11)


def test_funding_venues_count_the_current_extreme_run(tmp_path: Path) -> None:
    """The last 4 settlements of binance at +0.06% per 8h (over the playbook's 0.05%): an
    extreme of 32 hours, 4 periods; bybit's latest is not extreme."""
    lake = Lake(tmp_path / "store")
    lake.init()
    rates = [0.0001] * 6 + [0.0006] * 4
    rows = [("binance", "BTC-USDT-PERP", T0 + timedelta(hours=8 * i), r, 8.0)
            for i, r in enumerate(rates)]  # fmt: skip
    rows.append(("bybit", "BTC-USDT-PERP", T0 + timedelta(hours=72), 0.0001, 8.0))
    lake.ingest(
        "funding",
        pl.DataFrame(
            rows, schema=["venue", "instrument", "ts", "rate", "interval_h"], orient="row"
        ),
    )
    panel = build_brief(lake, ["BTC"], at=T0 + timedelta(hours=80))["assets"][0]["funding"]
    by_venue = {v["venue"]: v for v in panel["venues"]}
    assert (by_venue["binance"]["extreme_streak_h"], by_venue["binance"]["extreme_periods"]) == (
        32.0,
        4,
    )
    assert by_venue["bybit"]["extreme_periods"] == 0
    # Two settlements earlier the run was 16 hours long.
    panel = build_brief(lake, ["BTC"], at=T0 + timedelta(hours=57))["assets"][0]["funding"]
    assert [v["extreme_periods"] for v in panel["venues"] if v["venue"] == "binance"] == [2]


def test_default_assets_are_the_stored_ones_btc_first(tmp_path: Path) -> None:
    lake = _funding_lake(tmp_path / "store")
    assert brief_assets(lake) == ["BTC", "ETH"]
    doc = build_brief(lake)
    assert [a["asset"] for a in doc["assets"]] == ["BTC", "ETH"]
    eth = doc["assets"][1]["funding"]
    assert [v["venue"] for v in eth["venues"]] == ["binance"]
    assert eth["venues"][0]["rate_8h"] == pytest.approx(-0.0002)


@pytest.mark.parametrize("venues", [("sim1", "sim2"), ("binance", "sim2")])
def test_sim_venues_make_the_brief_simulated(tmp_path: Path, venues: tuple[str, str]) -> None:
    """As the CLI's banner: any simulator venue in the data makes the brief simulated."""
    lake = _funding_lake(tmp_path / "store", venues=venues)
    assert lake.marker().get("demo") is not True  # not a demo store: the venues decide
    assert build_brief(lake, ["BTC"], at=T0 + timedelta(hours=50))["simulated"] is True


def test_errors_name_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no store at"):
        build_brief(Lake(tmp_path / "nothing"))
    lake = _funding_lake(tmp_path / "store")
    with pytest.raises(UsageError, match=r"no data for DOGE \(assets in the store: BTC, ETH\)"):
        build_brief(lake, ["BTC", "DOGE"])
    with pytest.raises(UsageError, match="no funding before 2024-02-29"):
        build_brief(lake, ["BTC"], at=T0 - timedelta(days=1))  # before the data: nothing to show
    empty = Lake(tmp_path / "empty")
    empty.init()
    with pytest.raises(UsageError, match="nothing to brief"):
        build_brief(empty)
