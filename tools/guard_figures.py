"""How often each reading guard of ``perpscope.analytics.oi`` fires on the real data.

Usage: ``python tools/guard_figures.py [SHARED_DATA_DIR]`` (default ``../shared/data``). Prints one
markdown table per data set (the figures in ``docs/methodology.md``, section "Reading guards"):
each reading counted with the default guards and with the guards off (0), and how many rows each
guard turned into "no reading".

Data (see the data directory's PROVENANCE.md):

- daily: Coinalyze daily OI close of Binance COIN-M perps (USD) 2021-09 .. 2025-10, and for BTC
  and ETH the Binance USDT-M perp daily closes 2024-01 .. 2026-03 (joined on the day);
- 4h: Binance ``openInterestHist`` 4h (USD) 2026-02-20 .. 2026-03-20 for BTC and ETH, with the
  Binance perp 1h closes as of each OI time;
- funding-price divergence: Binance BTC funding 2020-2023 (supervik) as of each Binance spot
  BTCUSDT 1h close (spot as the perp's proxy, as in the funding-fade backtest).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import polars as pl

from perpscope.analytics.funding_series import MIN_HIGHER_HIGH, funding_price_divergence
from perpscope.analytics.oi import (
    MIN_OI_MOVE_24H,
    MIN_OI_USD,
    MIN_PRICE_MOVE_24H,
    MIN_PRICE_MOVE_DIVERGENCE,
    oi_changes,
    oi_divergence,
)

QUADS = ("new_longs", "short_covering", "new_shorts", "long_capitulation", "undefined")


def _candles(path: Path, instrument: str) -> pl.DataFrame:
    return pl.read_csv(path).select(
        pl.lit("binance").alias("venue"),
        pl.lit(instrument).alias("instrument"),
        pl.from_epoch("timestamp", time_unit="ms").dt.replace_time_zone("UTC").alias("ts"),
        pl.col("close").cast(pl.Float64).alias("close_px"),
    )


def daily(data: Path) -> pl.DataFrame:
    """Coinalyze daily OI (all its COIN-M perps) with BTC/ETH daily closes where present."""
    oi = (
        pl.read_csv(data / "open_interest/coinalyze_oi_daily_top10_since2020.csv.gz")
        .filter(pl.col("symbol").str.ends_with("USD_PERP.A"))
        .select(
            pl.lit("binance").alias("venue"),
            (pl.col("coin_symbol") + "-USD-PERP").alias("instrument"),
            pl.from_epoch("timestamp", time_unit="s").dt.replace_time_zone("UTC").alias("ts"),
            pl.col("oi_close").cast(pl.Float64).alias("oi_usd"),
        )
    )
    px = pl.concat(
        _candles(data / f"candles/gravestone_binance_perp_{a}USDT_1d.csv.gz", f"{a}-USD-PERP")
        for a in ("BTC", "ETH")
    )
    return oi.join(px, on=["venue", "instrument", "ts"], how="left")


def four_hourly(data: Path) -> pl.DataFrame:
    """Binance 4h OI history for BTC and ETH with the 1h perp close as of each time."""
    frames = []
    for a in ("BTC", "ETH"):
        inst = f"{a}-USDT-PERP"
        oi = pl.read_csv(data / f"open_interest/gravestone_binance_{a}USDT_oi_4h.csv.gz").select(
            pl.lit("binance").alias("venue"),
            pl.lit(inst).alias("instrument"),
            pl.from_epoch("timestamp", time_unit="ms").dt.replace_time_zone("UTC").alias("ts"),
            pl.col("sum_open_interest_value").cast(pl.Float64).alias("oi_usd"),
        )
        px = _candles(data / f"candles/gravestone_binance_perp_{a}USDT_1h.csv.gz", inst)
        frames.append(
            oi.sort("ts").join_asof(
                px.sort("ts").drop("venue", "instrument"),
                on="ts",
                tolerance=timedelta(hours=2),
            )
        )
    return pl.concat(frames)


def _count(frame: pl.DataFrame, column: str, value: object = True) -> int:
    return int((frame[column] == value).sum())


def figures(name: str, frame: pl.DataFrame) -> None:
    """Print the table of one data set."""
    on = oi_changes(frame)
    off = oi_changes(frame, min_oi_usd=0.0, min_oi_move=0.0, min_price_move=0.0)
    priced = on.filter(
        pl.col("price_change_24h").is_not_null() & pl.col("oi_change_24h").is_finite()
    )
    priced_off = off.filter(
        pl.col("price_change_24h").is_not_null() & pl.col("oi_change_24h").is_finite()
    )
    rows = on.filter(pl.col("oi_change_24h").is_finite()).height
    print(f"\n### {name}: {frame['instrument'].n_unique()} series, {rows} rows with a 24h change\n")
    print("| reading | guards on (default) | guards off | rows the guards silenced |")
    print("|---|---|---|---|")
    for label in QUADS:
        a, b = _count(priced, "quadrant", label), _count(priced_off, "quadrant", label)
        print(f"| quadrant `{label}` (of {priced.height} priced rows) | {a} | {b} | {b - a:+d} |")
    for col in ("wave", "spike", "alert_24h"):
        a, b = _count(on, col), _count(off, col)
        print(f"| `{col}` | {a} | {b} | {b - a} |")
    if priced.height:
        with_px = frame.filter(pl.col("close_px").is_not_null())
        d_on = oi_divergence(with_px)
        d_off = oi_divergence(with_px, min_price_move=0.0, min_oi_usd=0.0)
        for grade in ("moderate", "strong"):
            a = _count(d_on, "oi_divergence_grade", grade)
            b = _count(d_off, "oi_divergence_grade", grade)
            print(f"| OI divergence `{grade}` (72h) | {a} | {b} | {b - a} |")


def funding_divergence(data: Path) -> None:
    """Funding-price divergences of Binance BTC funding 2020-2023 against the spot 1h closes."""
    funding = (
        pl.read_csv(
            data / "funding/supervik_BTC-USDT_binance_2020-01-01_2024-01-01_funding_history.csv.gz"
        )
        .select(
            (
                pl.col("Date").str.to_datetime("%Y-%m-%d %H:%M:%S%.f").dt.replace_time_zone("UTC")
                - timedelta(hours=3)  # the file writes UTC+3 without a zone
            )
            .dt.round("1h")
            .alias("ts"),
            pl.col("Funding Rate").cast(pl.Float64).alias("rate_8h"),
        )
        .sort("ts")
    )
    px = _candles(data / "candles/zxcy_binance_spot_BTCUSDT_1h_2020-2023.csv.gz", "BTC-USDT-PERP")
    frame = px.sort("ts").join_asof(funding, on="ts").drop_nulls("rate_8h")
    on = funding_price_divergence(frame)
    off = funding_price_divergence(frame, min_price_move=0.0)
    print(f"\n### Funding-price divergence, Binance BTC 2020-2023: {frame.height} hourly bars\n")
    print("| reading | guard on (default) | guard off | bars the guard silenced |")
    print("|---|---|---|---|")
    for side in ("bearish", "bullish"):
        a, b = _count(on, "fdiv_divergence", side), _count(off, "fdiv_divergence", side)
        print(f"| `{side}` | {a} | {b} | {b - a} |")


def main() -> None:
    """Print the figures for the daily and the 4h data sets."""
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    print(
        f"guards: quadrant |price| >= {MIN_PRICE_MOVE_24H:.1%} and |OI| >= {MIN_OI_MOVE_24H:.1%}"
        f" over 24h; wave OI >= {MIN_OI_MOVE_24H:.1%}; spike/alert/wave base OI >= "
        f"${MIN_OI_USD / 1e6:g}M; divergence |price| >= {MIN_PRICE_MOVE_DIVERGENCE:.0%} over 72h"
    )
    figures("Daily, Binance COIN-M perps 2021-09 .. 2025-10", daily(data))
    figures("4h, Binance BTC and ETH USDT-M 2026-02-20 .. 2026-03-20", four_hourly(data))
    print(f"\nhigher-high guard of the price-extreme divergences: {MIN_HIGHER_HIGH:.1%}")
    funding_divergence(data)


if __name__ == "__main__":
    main()
