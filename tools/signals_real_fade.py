"""The funding-rate fade on real BTC and ETH funding 2020-2023 (``../shared/data``), by year.

Funding: the supervik files of binance, bybit, htx, kucoin, mexc (``Date`` in UTC+3: 3 hours are
subtracted) and gate (already UTC); dYdX is left out (its time zone is not established).
Candles: Binance spot BTCUSDT 1h (zxcy) for BTC, Binance USDT-M perp ETHUSDT 1h (tjf) for ETH.

The fade is evaluated at every hour where its funding condition can hold (two venues past
+-0.05% for 24h+; found first with ``extreme_persistence`` so the detector is not run on every
hour); one signal per episode is kept: the first at stage ``entry`` (a reversal trigger within the
last 6 bars), else the episode's first ``watch``. Forward returns at 4h/24h/72h and the first hit
(invalidation or T1) come from :func:`perpscope.services.signals.outcome`. Prints markdown tables
and, last, one JSON line.

    PERPSCOPE_SHARED_DATA=../shared/data python tools/signals_real_fade.py
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import polars as pl

from perpscope.analytics.funding_series import extreme_persistence
from perpscope.services.signals import outcome
from perpscope.signals import MarketData
from perpscope.signals.setups import funding_fade

VENUES = {"binance": 3, "bybit": 3, "htx": 3, "kucoin": 3, "mexc": 3, "gate": 0}


def _root() -> Path:
    return Path(os.environ.get("PERPSCOPE_SHARED_DATA", "../shared/data"))


def load_funding(asset: str) -> pl.DataFrame:
    """Every venue's settlements of ``asset`` as ``venue instrument ts rate interval_h`` (UTC)."""
    parts = []
    for venue, shift in VENUES.items():
        found = sorted((_root() / "funding").glob(f"supervik_{asset}-USDT_{venue}_*.csv.gz"))
        for path in found:
            raw = pl.read_csv(path)
            parts.append(
                raw.select(
                    pl.lit(venue).alias("venue"),
                    pl.lit(f"{asset}-USDT-PERP").alias("instrument"),
                    (
                        pl.col("Date").str.to_datetime(time_unit="us").dt.replace_time_zone("UTC")
                        - timedelta(hours=shift)
                    ).alias("ts"),
                    pl.col("Funding Rate").cast(pl.Float64).alias("rate"),
                    pl.lit(8.0).alias("interval_h"),
                )
            )
    return pl.concat(parts).unique(["venue", "ts"]).sort("venue", "ts")


def load_candles(asset: str) -> pl.DataFrame:
    """1h candles ``venue instrument ts o h l c volume`` (BTC spot, ETH perp), Binance."""
    if asset == "BTC":
        raw = pl.read_csv(_root() / "candles/zxcy_binance_spot_BTCUSDT_1h_2020-2023.csv.gz")
        inst = "BTC-USDT"
    else:
        raw = pl.read_csv(_root() / "candles/tjf_binance_perp_ETHUSDT_1h_2020-2026.csv.gz")
        inst = "ETH-USDT-PERP"
    return (
        raw.select(
            pl.lit("binance").alias("venue"),
            pl.lit(inst).alias("instrument"),
            pl.from_epoch(pl.col("timestamp"), time_unit="ms")
            .dt.replace_time_zone("UTC")
            .dt.cast_time_unit("us")
            .alias("ts"),
            pl.col("open").alias("o"),
            pl.col("high").alias("h"),
            pl.col("low").alias("l"),
            pl.col("close").alias("c"),
            pl.col("volume"),
        )
        .unique("ts")
        .sort("ts")
    )


def run(asset: str) -> pl.DataFrame:
    """One row per fade episode with its outcome."""
    funding = load_funding(asset)
    candles = load_candles(asset)
    ext = extreme_persistence(funding).filter(
        (pl.col("extreme_side") != 0) & (pl.col("extreme_streak_h") >= 24.0)
    )
    # settlement times where at least two venues qualify on the same side
    times = (
        ext.group_by("ts", "extreme_side")
        .agg(pl.len().alias("n"))
        .filter(pl.col("n") >= 2)
        .sort("ts")
    )
    data = MarketData(asset, funding=funding, candles=candles)
    rows = []
    last_ep_end = None
    episode: list[dict[str, object]] = []

    def flush() -> None:
        if not episode:
            return
        entries = [e for e in episode if e["stage"] == "entry"]
        rows.append((entries or episode)[0])
        episode.clear()

    for ts in times["ts"].to_list():
        if ts.year > 2023 or ts < candles["ts"][0] + timedelta(days=46):
            continue
        if last_ep_end is not None and ts - last_ep_end > timedelta(hours=24):
            flush()
        last_ep_end = ts
        for hour in range(0, 8):  # each hour until the next settlement: a trigger may come
            at = ts + timedelta(hours=hour)
            sig = funding_fade(data.window(at), at)
            if not sig:
                continue
            s = sig[0]
            entry = s.entry_high_px if s.direction == "short" else s.entry_low_px
            after = candles.filter(pl.col("ts") >= s.ts)
            o = outcome(
                s.direction,
                entry,
                s.invalidation_px,
                s.targets_px[0] if s.targets_px else None,
                after,
            )
            episode.append(
                {
                    "asset": asset,
                    "ts": s.ts,
                    "year": s.ts.year,
                    "direction": s.direction,
                    "stage": s.stage,
                    "entry_px": entry,
                    **o,
                }
            )
            if s.stage == "entry":
                break
    flush()
    return pl.DataFrame(rows)


def main() -> None:
    """Both assets, tables by year, last line JSON."""
    frames = [run(a) for a in ("BTC", "ETH")]
    allx = pl.concat([f for f in frames if f.height], how="diagonal_relaxed")
    per = (
        allx.group_by("asset", "year", "direction", "stage")
        .agg(
            pl.len().alias("n"),
            (pl.col("ret_24h").mean() * 100).round(2).alias("mean_ret_24h_pct"),
            (pl.col("ret_72h").mean() * 100).round(2).alias("mean_ret_72h_pct"),
            (pl.col("ret_72h") > 0).mean().round(2).alias("share_72h_positive"),
            (pl.col("first_hit") == "target").sum().alias("t1_first"),
            (pl.col("first_hit") == "invalidation").sum().alias("stop_first"),
            pl.col("r").mean().round(2).alias("mean_r"),
        )
        .sort("asset", "year", "direction", "stage")
    )
    with pl.Config(
        tbl_formatting="MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_rows=200,
        tbl_cols=20,
        tbl_width_chars=400,
        float_precision=4,
    ):
        print(per)
        print()
        print(
            allx.select(
                "asset",
                pl.col("ts").dt.strftime("%Y-%m-%d %H:%MZ"),
                "direction",
                "stage",
                pl.col("entry_px").round(2),
                *((pl.col(f"ret_{h}h") * 100).round(2).alias(f"ret_{h}h_pct") for h in (4, 24, 72)),
                "first_hit",
                pl.col("r").round(2),
            )
        )
    print(json.dumps({"episodes": allx.height, "entries": int((allx["stage"] == "entry").sum())}))


if __name__ == "__main__":
    main()
