"""Total OI per asset across venues, on a hand-built summary with hand-computed answers."""

from __future__ import annotations

import polars as pl
import pytest

from perpscope.services.oi_totals import asset_totals


def test_total_and_change_of_the_total_over_venues() -> None:
    summary = pl.DataFrame(
        {
            "venue": ["a", "b", "a"],
            "instrument": ["BTC-USDT-PERP", "BTC-USDT-PERP", "ETH-USDT-PERP"],
            "oi_usd": [100.0, 50.0, 30.0],
            "oi_change_4h": [0.0, None, 0.5],
            "oi_change_24h": [0.25, -0.5, None],
        }
    )
    out = {r["asset"]: r for r in asset_totals(summary).iter_rows(named=True)}
    btc = out["BTC"]
    # by hand: a held 100 / 1.25 = 80 and b 50 / 0.5 = 100 a day ago: 150 / 180 - 1
    assert btc["oi_usd"] == 150.0
    assert btc["oi_change_24h"] == pytest.approx(150 / 180 - 1)
    # 4h: only a has a change (0%): the total of the venues that have it, 100 / 100 - 1
    assert btc["oi_change_4h"] == pytest.approx(0.0)
    assert (btc["n_venues"], btc["top_venue"]) == (2, "a")
    assert btc["top_share"] == pytest.approx(100 / 150)
    # ETH has no 24h change on any venue: unknown, not zero
    assert out["ETH"]["oi_change_24h"] is None
    assert out["ETH"]["oi_change_4h"] == pytest.approx(30 / 20 - 1)
    assert list(asset_totals(summary)["asset"]) == ["BTC", "ETH"]  # largest total first
