"""Liquidation use-cases on a real store: the ESTIMATED map, cascades, REALISED flows, pictures."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from perpscope.analytics.liquidations import score_map, truth_map
from perpscope.errors import UsageError
from perpscope.services.liq_render import render_heatmap
from perpscope.services.liquidations import (
    cascades_report,
    heatmap_report,
    liquidations_report,
    timeframe_hours,
)
from perpscope.store.lake import Lake
from tests.services.liq_store import BINANCE_T, SHOCK, SIM, build_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, dict[str, pl.DataFrame]]:
    root = tmp_path_factory.mktemp("liq") / "store"
    tables = build_store(root)
    return Lake(root), tables


def test_heatmap_report_maps_the_stored_series_and_ranks_the_true_notional(
    store: tuple[Lake, dict[str, pl.DataFrame]],
) -> None:
    lake, tables = store
    report = heatmap_report(lake, "sim1", "btc-usdt-perp")
    assert report.ts == SIM.end  # the end of the last hourly bar
    assert report.label == "ESTIMATED"
    doc = report.to_json()
    assert doc["estimated"] is True
    assert set(doc["levels"][0]) == {"price", "long_usd", "short_usd"}
    below = [lv for lv in doc["levels"] if lv["price"] < report.price]
    assert all(lv["short_usd"] == 0 for lv in below)  # long liquidations below, shorts above
    assert report.notes == ()  # taker volume, mark candles and tiers are all stored
    # end to end through the store: the estimate ranks the true liquidation notional well
    truth = truth_map(tables["sim_positions"], SIM.end)
    assert score_map(report.levels, truth, report.price).spearman > 0.4


def test_heatmap_at_a_time_uses_only_bars_that_ended_by_then(
    store: tuple[Lake, dict[str, pl.DataFrame]],
) -> None:
    lake, tables = store
    at = SHOCK - timedelta(minutes=30)
    report = heatmap_report(lake, "sim1", "BTC-USDT-PERP", at=at)
    assert report.ts == SHOCK - timedelta(hours=1)
    closes = tables["ohlcv"].filter(kind="trade", timeframe="1h").sort("ts")
    expected = closes.filter(pl.col("ts") == SHOCK - timedelta(hours=2))["c"][0]
    assert report.price == expected


def test_cascades_report_finds_the_squeeze_with_its_realised_notional(
    store: tuple[Lake, dict[str, pl.DataFrame]],
) -> None:
    lake, tables = store
    found = cascades_report(lake, "sim1", "BTC-USDT-PERP")
    near = found.filter((pl.col("climax_ts") - SHOCK).abs() <= timedelta(hours=3))
    assert near.height == 1
    c = near.row(0, named=True)
    # independent total: the simulator's long liquidations from initiation to exhaustion's end
    liq = tables["liquidations"].filter(
        (pl.col("side") == "long")
        & (pl.col("ts") >= c["initiation_ts"])
        & (pl.col("ts") < c["exhaustion_ts"] + timedelta(hours=1))
    )
    assert c["liquidated_usd"] == pytest.approx(liq["notional_usd"].sum())
    assert cascades_report(lake, "sim1", "BTC-USDT-PERP", since=SIM.end).is_empty()


def test_realised_flows_flag_binance_as_a_lower_bound(
    store: tuple[Lake, dict[str, pl.DataFrame]],
) -> None:
    lake, _ = store
    flows = liquidations_report(lake, ["binance"], "BTC-USDT-PERP", window="1h")
    rows = {r["side"]: r for r in flows.iter_rows(named=True)}
    # the window ends at the latest event (23:30) and starts an hour earlier
    assert rows["long"]["notional_usd"] == pytest.approx(60_000.0 + 119_800.0)
    assert rows["long"]["events"] == 2
    assert rows["short"]["notional_usd"] == pytest.approx(30_050.0)
    assert rows["long"]["long_share"] == pytest.approx(179_800.0 / 209_850.0)
    assert flows["lower_bound"].all()
    assert flows["to_ts"][0] == BINANCE_T + timedelta(minutes=30)
    sim = liquidations_report(lake, ["sim1"], window="24h")
    assert sim.height > 0
    assert not sim["lower_bound"].any()
    assert set(sim["label"]) == {"REALISED"}


def test_user_errors_are_usage_errors(store: tuple[Lake, dict[str, pl.DataFrame]]) -> None:
    lake, _ = store
    with pytest.raises(UsageError, match="no 1h candles"):
        heatmap_report(lake, "sim2", "BTC-USDT-PERP")
    with pytest.raises(UsageError, match="--window"):
        liquidations_report(lake, window="2h")
    with pytest.raises(UsageError, match="timeframe"):
        timeframe_hours("hourly")
    assert timeframe_hours("5m") == pytest.approx(1 / 12)


def test_pictures_are_a_png_and_a_self_contained_html(
    store: tuple[Lake, dict[str, pl.DataFrame]], tmp_path: Path
) -> None:
    lake, _ = store
    report = heatmap_report(lake, "sim1", "BTC-USDT-PERP")
    png = render_heatmap(report, tmp_path / "map.png", days=7)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = render_heatmap(report, tmp_path / "map.html").read_text()
    assert "ESTIMATED liquidation heatmap" in html
    assert "Plotly.newPlot" in html
    assert '<script src="http' not in html  # plotly.js is inline: works offline
    with pytest.raises(UsageError, match=".png or .html"):
        render_heatmap(report, tmp_path / "map.svg")
