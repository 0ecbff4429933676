"""Real data (../shared/data): OI changes, perp basis and CVD cross-checked against pandas/DuckDB.

* OI: Binance ``futures/data/openInterestHist`` 4h files (BTC and ETH, with the 4h perp closes)
  against pandas ``merge_asof`` and a time-based ``rolling``; the Coinalyze daily COIN-M OI of
  eight perpetuals against DuckDB (``ASOF JOIN`` and an explicit trailing-window self-join).
* Basis: Binance ``GET /fapi/v1/premiumIndex`` for all 521 symbols (mark against index) against
  pandas, and the basis-trade carry on Binance BTC funding 2020-2023 against a pandas rolling mean.
* CVD: real Bybit ``trade.BTCUSD``/``trade.EOSUSD`` WebSocket trades (a cryptofeed recording)
  against DuckDB ``time_bucket`` sums and a ``SUM() OVER`` running total.

The independent side never calls perpscope; both sides read the same parsed input rows.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import polars as pl
import pytest
from tests.conftest import require_shared

from perpscope.analytics.basis import basis_trade_carry, perp_basis
from perpscope.analytics.cvd import cumulative_volume_delta, delta_from_trades
from perpscope.analytics.oi import oi_changes

pytestmark = pytest.mark.shared_data

H = pd.Timedelta(hours=1)


# ------------------------------------------------------------------------------------- OI


def _binance_oi_4h() -> pd.DataFrame:
    """Both 4h OI files with the perp close of the candle that ends at each OI timestamp."""
    frames = []
    for asset in ("BTC", "ETH"):
        oi = pd.read_csv(
            require_shared(f"open_interest/gravestone_binance_{asset}USDT_oi_4h.csv.gz")
        )
        px = pd.read_csv(require_shared(f"candles/gravestone_binance_perp_{asset}USDT_4h.csv.gz"))
        oi["ts"] = pd.to_datetime(oi["timestamp"], unit="ms", utc=True)
        px["ts"] = pd.to_datetime(px["timestamp"], unit="ms", utc=True) + 4 * H  # close time
        both = oi.merge(px[["ts", "close"]], on="ts", how="left")
        frames.append(
            pd.DataFrame(
                {
                    "venue": "binance",
                    "instrument": f"{asset}-USDT-PERP",
                    "ts": both["ts"],
                    "oi_usd": both["sum_open_interest_value"].astype(float),
                    "close_px": both["close"].astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _as_of(series: pd.DataFrame, column: str, lag: pd.Timedelta) -> pd.Series:
    """``column`` at the latest row at or before ts - lag, no more than 2h older (pandas)."""
    left = pd.DataFrame({"target": series["ts"] - lag}).reset_index()
    right = series[["ts", column]].rename(columns={"ts": "target", column: "v"})
    found = pd.merge_asof(
        left.sort_values("target"), right, on="target", direction="backward", tolerance=2 * H
    )
    return found.set_index("index")["v"].reindex(series.index)


def _quadrant(price: float, oi: float) -> str:
    # docs/methodology.md guards: a 24h move under 0.5% (price or OI) is flat: no quadrant
    if np.isnan(price) or np.isnan(oi) or abs(price) < 0.005 or abs(oi) < 0.005:
        return "undefined"
    return {
        (True, True): "new_longs",
        (True, False): "short_covering",
        (False, True): "new_shorts",
        (False, False): "long_capitulation",
    }[(price > 0, oi > 0)]


def _pandas_oi_changes(frame: pd.DataFrame) -> pd.DataFrame:
    """The playbook's rules (docs/methodology.md, oi) written with pandas, per series."""
    out = []
    for _, s in frame.sort_values(["venue", "instrument", "ts"]).groupby(["venue", "instrument"]):
        s = s.reset_index(drop=True)
        s["oi_change_24h"] = s["oi_usd"] / _as_of(s, "oi_usd", 24 * H) - 1
        s["oi_change_4h"] = s["oi_usd"] / _as_of(s, "oi_usd", 4 * H) - 1
        s["price_change_24h"] = s["close_px"] / _as_of(s, "close_px", 24 * H) - 1
        # Trailing 168h window (t - 168h, t], NaN skipped: pandas' time-based rolling.
        s["roc_avg_7d"] = s.set_index("ts")["oi_change_24h"].rolling("168h").mean().to_numpy()
        avg = s["roc_avg_7d"]
        s["roc_ratio"] = (s["oi_change_24h"] / avg).where(avg > 0)
        s["wave"] = (s["roc_ratio"] >= 3.0).fillna(False)
        s["spike"] = (s["oi_change_4h"] >= 0.10).fillna(False)
        s["alert_24h"] = (s["oi_change_24h"] > 0.10).fillna(False)
        s["quadrant"] = [
            _quadrant(p, o) for p, o in zip(s["price_change_24h"], s["oi_change_24h"], strict=True)
        ]
        out.append(s)
    return pd.concat(out, ignore_index=True)


def test_binance_4h_oi_changes_match_pandas() -> None:
    raw = _binance_oi_4h()
    # The last ETH OI row has no finished candle yet (its close is null on both sides).
    assert len(raw) == 2 * 168
    assert raw["close_px"].notna().sum() >= 2 * 168 - 2
    ours = oi_changes(pl.from_pandas(raw)).to_pandas()
    indep = _pandas_oi_changes(raw)
    assert list(ours["ts"]) == list(indep["ts"])
    for col in ("oi_change_24h", "oi_change_4h", "price_change_24h", "roc_avg_7d", "roc_ratio"):
        np.testing.assert_allclose(
            ours[col].astype(float), indep[col].astype(float), rtol=1e-12, equal_nan=True
        )
        assert ours[col].notna().sum() > 100, col  # the real series is mostly defined
    for col in ("wave", "spike", "alert_24h"):
        assert list(ours[col]) == list(indep[col]), col
    assert list(ours["quadrant"].astype(str)) == list(indep["quadrant"])
    # Four readings occur in a month of real data; the first 24h have no reading.
    assert set(indep["quadrant"]) == {
        "new_longs",
        "short_covering",
        "new_shorts",
        "long_capitulation",
        "undefined",
    }


def _coinalyze() -> pd.DataFrame:
    raw = pd.read_csv(require_shared("open_interest/coinalyze_oi_daily_top10_since2020.csv.gz"))
    return pd.DataFrame(
        {
            "venue": "binance",
            "instrument": raw["symbol"].str.replace("_PERP.A", "-PERP", regex=False),
            "ts": pd.to_datetime(raw["timestamp"], unit="s", utc=True),
            "oi_usd": raw["oi_close"].astype(float),
        }
    )


_DUCKDB_OI = """
WITH s AS (SELECT * FROM oi),
lag24 AS (
    SELECT a.instrument, a.ts, a.oi_usd / b.oi_usd - 1 AS ch
    FROM s a ASOF LEFT JOIN s b
      ON a.instrument = b.instrument AND b.ts <= a.ts - INTERVAL 24 HOUR
),
ok AS (  -- the as-of value only counts if it is at most 2h older than ts - 24h
    SELECT l.instrument, l.ts,
           CASE WHEN EXISTS (
               SELECT 1 FROM s b WHERE b.instrument = l.instrument
                 AND b.ts <= l.ts - INTERVAL 24 HOUR AND b.ts >= l.ts - INTERVAL 26 HOUR
           ) THEN l.ch END AS ch
    FROM lag24 l
)
SELECT a.instrument, a.ts, a.ch AS oi_change_24h,
       (SELECT avg(b.ch) FROM ok b WHERE b.instrument = a.instrument
          AND b.ts > a.ts - INTERVAL 168 HOUR AND b.ts <= a.ts) AS roc_avg_7d
FROM ok a ORDER BY a.instrument, a.ts
"""


def test_coinalyze_daily_oi_changes_match_duckdb() -> None:
    raw = _coinalyze()
    assert raw["instrument"].nunique() == 10
    assert len(raw) == 13_047
    ours = oi_changes(pl.from_pandas(raw)).sort("instrument", "ts")
    con = duckdb.connect()
    con.register("oi", raw)
    indep = con.execute(_DUCKDB_OI).df()
    assert ours.height == len(indep)
    for col in ("oi_change_24h", "roc_avg_7d"):
        np.testing.assert_allclose(
            ours[col].to_numpy(), indep[col].to_numpy(dtype=float), rtol=1e-10, equal_nan=True
        )
    # Daily rows have no observation 4h earlier: no 4h change and so no spike, on any row.
    assert ours["oi_change_4h"].null_count() == ours.height
    assert not ours["spike"].any()
    alerts = indep["oi_change_24h"] > 0.10
    assert ours["alert_24h"].to_list() == alerts.fillna(False).tolist()


# ---------------------------------------------------------------------------------- basis


def test_premium_of_mark_over_index_matches_pandas_on_every_binance_symbol() -> None:
    path = require_shared("samples/binance_rest_real/fapi_v1_premiumIndex_all_2025-06-17.json.gz")
    rows = json.loads(gzip.decompress(path.read_bytes()))
    raw = pd.DataFrame(rows)
    raw = raw[raw["indexPrice"].astype(float) > 0]
    frame = pl.DataFrame(
        {
            "ts": [datetime.fromtimestamp(t / 1000, tz=UTC) for t in raw["time"]],
            "symbol": raw["symbol"].tolist(),
            "perp_px": raw["markPrice"].astype(float).tolist(),
            "index_px": raw["indexPrice"].astype(float).tolist(),
        }
    )
    ours = perp_basis(frame)
    expected = raw["markPrice"].astype(float) / raw["indexPrice"].astype(float) - 1
    np.testing.assert_allclose(ours["premium_index"].to_numpy(), expected.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        ours["premium_index_annualized"].to_numpy(), expected.to_numpy() * 3 * 365, rtol=1e-12
    )
    assert ours["premium_spot"].null_count() == ours.height  # no spot column given
    btc = ours.filter(pl.col("symbol") == "BTCUSDT").row(0, named=True)
    # PROVENANCE.md: BTCUSDT mark 106,599.9 in this snapshot.
    assert btc["perp_px"] == 106_599.9


def test_basis_trade_carry_on_real_funding_matches_a_pandas_rolling_mean() -> None:
    path = require_shared(
        "funding/supervik_BTC-USDT_binance_2020-01-01_2024-01-01_funding_history.csv.gz"
    )
    raw = pd.read_csv(path)
    ts = pd.to_datetime(raw["Date"]).dt.tz_localize("UTC") - pd.Timedelta(hours=3)
    rate = raw["Funding Rate"].astype(float)
    frame = pl.DataFrame(
        {
            "venue": "binance",
            "instrument": "BTC-USDT-PERP",
            "ts": ts.dt.to_pydatetime().tolist(),
            "rate": rate.tolist(),
            "interval_h": 8.0,
        }
    )
    ours = basis_trade_carry(frame)
    series = pd.Series(rate.to_numpy(), index=ts).sort_index()
    mean = series.rolling("168h").mean()
    np.testing.assert_allclose(ours["mean_rate_8h"].to_numpy(), mean.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours["carry_annualized"].to_numpy(), mean.to_numpy() * 1095)
    status = np.where(
        series.to_numpy() < 0.0001, "exit", np.where(mean.to_numpy() > 0.0003, "favorable", "hold")
    )
    assert ours["status"].to_list() == status.tolist()
    assert set(status) == {"exit", "favorable", "hold"}


# ------------------------------------------------------------------------------------ CVD


def _bybit_row(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "venue": "bybit",
        "instrument": t["symbol"].removesuffix("USD") + "-USD-PERP",
        "ts": datetime.fromtimestamp(t["trade_time_ms"] / 1000, tz=UTC),
        "side": t["side"].lower(),
        # Inverse contracts are 1 USD each: base size = contracts / price.
        "qty_base": t["size"] / t["price"],
    }


def _bybit_trades() -> pd.DataFrame:
    """Trades of the Bybit inverse WebSocket recording: one row per trade, size in base units."""
    path = require_shared("samples/cryptofeed_recordings/BYBIT.ws.26.0.gz")
    rows = []
    for line in gzip.decompress(path.read_bytes()).decode("utf-8").splitlines():
        _, sep, body = line.partition(": ")
        if sep and body.startswith("{") and '"topic":"trade.' in body:
            rows += [_bybit_row(t) for t in json.loads(body)["data"]]
    return pd.DataFrame(rows)


_DUCKDB_CVD = """
SELECT instrument, bar,
       sum(CASE side WHEN 'buy' THEN qty_base ELSE -qty_base END) AS delta_base,
       sum(sum(CASE side WHEN 'buy' THEN qty_base ELSE -qty_base END))
           OVER (PARTITION BY instrument ORDER BY bar) AS cvd_base
FROM (SELECT *, time_bucket(INTERVAL 10 SECOND, ts) AS bar FROM trades)
GROUP BY instrument, bar ORDER BY instrument, bar
"""


def test_cvd_from_real_bybit_trades_matches_duckdb() -> None:
    trades = _bybit_trades()
    assert len(trades) > 100
    assert set(trades["side"]) == {"buy", "sell"}
    ours = cumulative_volume_delta(delta_from_trades(pl.from_pandas(trades), bar="10s"))
    con = duckdb.connect()
    con.register("trades", trades)
    indep = con.execute(_DUCKDB_CVD).df()
    assert ours["instrument"].to_list() == indep["instrument"].tolist()
    bars = [b.to_pydatetime().astimezone(UTC) for b in indep["bar"]]
    assert ours["ts"].to_list() == bars
    np.testing.assert_allclose(ours["delta_base"].to_numpy(), indep["delta_base"], rtol=1e-9)
    np.testing.assert_allclose(ours["cvd_base"].to_numpy(), indep["cvd_base"], rtol=1e-9)
    assert ours["instrument"].n_unique() == 2
    span = max(trades["ts"]) - min(trades["ts"])
    assert span > timedelta(seconds=20)  # several bars per series
