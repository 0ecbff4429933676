"""Readings computed from the simulator's output tables only, independently of its code."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl


def hourly_returns(tables: dict[str, pl.DataFrame], venue: str, instrument: str) -> np.ndarray:
    """Hourly log returns of a perp's trade closes."""
    c = (
        tables["ohlcv"]
        .filter(venue=venue, instrument=instrument, kind="trade")
        .sort("ts")["c"]
        .to_numpy()
    )
    return np.diff(np.log(c))


def excess_kurtosis(x: np.ndarray) -> float:
    """Fourth standardised moment minus 3 (population form)."""
    d = x - x.mean()
    return float((d**4).mean() / (d**2).mean() ** 2 - 3.0)


def open_book(positions: pl.DataFrame, at: datetime) -> pl.DataFrame:
    """Positions open at ``at``: the state after every event stamped strictly before ``at``.

    A position's last event is its last by ``(ts, seq)``, the order the table documents.
    """
    last = (
        positions.filter(pl.col("ts") < at)
        .sort("ts", "seq")
        .group_by("venue", "instrument", "position_id")
        .agg(pl.all().last())
    )
    return last.filter(pl.col("event").is_in(["open", "change"]))


def rate_8h(funding: pl.DataFrame) -> pl.DataFrame:
    """Funding with the rate scaled to 8 hours."""
    return funding.with_columns(r8=pl.col("rate") * 8.0 / pl.col("interval_h"))


def cascade_hours(tables: dict[str, pl.DataFrame], top: int) -> pl.DataFrame:
    """The ``top`` (venue, instrument, hour) cells with the most liquidated notional."""
    return (
        tables["liquidations"]
        .group_by("venue", "instrument", pl.col("ts").dt.truncate("1h").alias("hour"))
        .agg(
            pl.col("notional_usd").sum().alias("liq_usd"),
            pl.col("notional_usd").filter(pl.col("side") == "long").sum().alias("long_usd"),
            pl.col("notional_usd").filter(pl.col("side") == "short").sum().alias("short_usd"),
        )
        .sort("liq_usd", "venue", "instrument", "hour", descending=True)
        .head(top)
    )


def cascade_bars(
    tables: dict[str, pl.DataFrame], top: int, min_oi_share: float = 0.01
) -> pl.DataFrame:
    """The ``top`` largest cascades, one row each: the hour of the cascade with most liquidations.

    A cascade is a run of consecutive hours of one market (venue, perp) in each of which the
    liquidated notional is at least ``min_oi_share`` of the market's open interest at the
    hour's start (the OI snapshot stamped at that hour). Its bar is its hour with the most
    liquidated notional; cascades are ranked by that notional. Unlike :func:`cascade_hours`,
    two hours of one cascade never both count.
    """
    oi = tables["open_interest"].select("venue", "instrument", pl.col("ts").alias("hour"), "oi_usd")
    hours = (
        cascade_hours(tables, tables["liquidations"].height)
        .join(oi, on=["venue", "instrument", "hour"])
        .filter(pl.col("liq_usd") >= min_oi_share * pl.col("oi_usd"))
        .sort("venue", "instrument", "hour")
        .with_columns(
            new=(pl.col("hour").diff() != pl.duration(hours=1))
            .fill_null(True)
            .over("venue", "instrument")
        )
        .with_columns(cascade=pl.col("new").cum_sum().over("venue", "instrument"))
    )
    return (
        hours.sort("liq_usd", "hour", descending=True)
        .group_by("venue", "instrument", "cascade")
        .agg(pl.all().first())
        .sort("liq_usd", "venue", "instrument", descending=True)
        .head(top)
        .drop("new", "cascade")
    )
