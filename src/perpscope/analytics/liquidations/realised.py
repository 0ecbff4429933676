"""REALISED liquidations: flows by venue, instrument, side and window from the stored events.

Input: ``liquidations`` rows (``venue``, ``instrument``, ``ts``, ``side`` = the liquidated
position's side, ``qty_base``, ``notional_usd``). Some venues' feeds are sampled (Binance sends at
most one liquidation per symbol per second), so their totals are a lower bound: the caller names
those venues.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Final

import polars as pl

__all__ = ["REALISED", "WINDOWS_H", "realised_flows"]

REALISED: Final = "REALISED"
"""Label of every realised-liquidation output."""

WINDOWS_H: Final = {"1h": 1, "4h": 4, "24h": 24}
"""The windows the command offers."""


def realised_flows(
    liquidations: pl.DataFrame,
    window_h: float,
    *,
    as_of: datetime | None = None,
    sampled_venues: Collection[str] = (),
) -> pl.DataFrame:
    """Realised liquidations in ``(as_of - window_h, as_of]`` by venue, instrument and side.

    Args:
        liquidations: the events (any venues and instruments).
        window_h: window length in hours.
        as_of: end of the window (default: the latest event, so a store that is not live still
            shows its last window).
        sampled_venues: venues whose feed is sampled; their rows get ``lower_bound = true``.

    Returns:
        Columns ``venue, instrument, side, events, qty_base, notional_usd, long_share,
        from_ts, to_ts, lower_bound, label`` (``long_share``: the long side's share of the
        series' notional in the window), largest notional first.
    """
    utc = pl.Datetime("us", "UTC")
    schema = pl.Schema(
        [
            ("venue", pl.String()),
            ("instrument", pl.String()),
            ("side", pl.String()),
            ("events", pl.UInt32()),
            ("qty_base", pl.Float64()),
            ("notional_usd", pl.Float64()),
            ("long_share", pl.Float64()),
            ("from_ts", utc),
            ("to_ts", utc),
            ("lower_bound", pl.Boolean()),
            ("label", pl.String()),
        ]
    )
    if window_h <= 0:
        raise ValueError("window_h must be positive")
    if liquidations.is_empty():
        return pl.DataFrame(schema=schema)
    end = as_of if as_of is not None else liquidations["ts"].max()
    assert isinstance(end, datetime)
    start = end - timedelta(hours=window_h)
    inside = liquidations.filter((pl.col("ts") > start) & (pl.col("ts") <= end))
    if inside.is_empty():
        return pl.DataFrame(schema=schema)
    series = ["venue", "instrument"]
    out = (
        inside.group_by(*series, "side")
        .agg(
            events=pl.len(),
            qty_base=pl.col("qty_base").sum(),
            notional_usd=pl.col("notional_usd").sum(),
        )
        .with_columns(
            long_share=pl.col("notional_usd").filter(pl.col("side") == "long").sum().over(series)
            / pl.col("notional_usd").sum().over(series),
            from_ts=pl.lit(start).cast(pl.Datetime("us", "UTC")),
            to_ts=pl.lit(end).cast(pl.Datetime("us", "UTC")),
            lower_bound=pl.col("venue").is_in(list(sampled_venues)),
            label=pl.lit(REALISED),
        )
    )
    return out.select(schema.names()).cast(schema).sort("notional_usd", descending=True)
