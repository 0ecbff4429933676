"""How often each chart-reading rule fires on real candles, per year (docs/chart-reading.md).

Run: ``python tools/chart_rule_frequencies.py CANDLES.csv.gz [--write]`` with Binance 1h candles
(columns ``timestamp`` in ms, ``open high low close volume``), e.g. the BTC spot file
``zxcy_binance_spot_BTCUSDT_1h_2020-2023.csv.gz`` of the shared data. It prints the Markdown table;
``--write`` puts it between the markers of docs/chart-reading.md. Default parameters throughout.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

from perpscope.analytics.regime import regime
from perpscope.analytics.structure import structure, structure_events

DOC = Path(__file__).resolve().parent.parent / "docs" / "chart-reading.md"
BEGIN, END = "<!-- frequencies:begin -->", "<!-- frequencies:end -->"
EVENTS = ("sfp", "bos", "choch", "spring", "utad")


def load(path: Path) -> pl.DataFrame:
    """The candles of a Binance kline CSV as the analytics expect them."""
    raw = pl.read_csv(path)
    return raw.select(
        pl.lit("binance").alias("venue"),
        pl.lit("BTC-USDT").alias("instrument"),
        pl.from_epoch(raw.columns[0], time_unit="ms").dt.replace_time_zone("UTC").alias("ts"),
        pl.col("high").alias("h"),
        pl.col("low").alias("l"),
        pl.col("close").alias("c"),
        pl.col("volume"),
    ).filter(pl.col("ts").dt.year().is_between(2020, 2023))


def frequencies(candles: pl.DataFrame) -> pl.DataFrame:
    """Per year: bars, the regime shares (of labelled bars) and the count of each event."""
    reg = regime(candles, "1h").with_columns(pl.col("ts").dt.year().alias("year"))
    shares = (
        reg.filter(pl.col("regime").is_not_null())
        .group_by("year")
        .agg(
            *(
                ((pl.col("regime") == name).mean() * 100).round(1).alias(f"{name}_%")
                for name in ("trending", "ranging", "volatile")
            )
        )
    )
    bars = reg.group_by("year").agg(pl.len().alias("bars"))
    events = structure_events(structure(candles)).with_columns(pl.col("ts").dt.year().alias("year"))
    counts = events.group_by("year").agg(*((pl.col("event") == e).sum().alias(e) for e in EVENTS))
    return bars.join(shares, on="year").join(counts, on="year").sort("year")


def render(table: pl.DataFrame) -> str:
    """The table in Markdown."""
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * table.width]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.iter_rows()]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candles", type=Path)
    parser.add_argument("--write", action="store_true", help="update docs/chart-reading.md")
    args = parser.parse_args()
    text = render(frequencies(load(args.candles)))
    print(text)
    if args.write:
        doc = DOC.read_text(encoding="utf-8")
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
