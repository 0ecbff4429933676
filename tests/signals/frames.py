"""Hand-built frames for the signals tests (every number is chosen, none is simulated)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

T0 = datetime(2024, 1, 1, tzinfo=UTC)
N = 200
"""Hourly bars in a hand-built candle series."""


def end() -> datetime:
    """The close of the last bar of an ``N``-bar series."""
    return T0 + timedelta(hours=N)


def funding(
    rates: dict[str, list[float]],
    *,
    asset: str = "BTC",
    interval_h: float = 8.0,
    last: datetime | None = None,
) -> pl.DataFrame:
    """Settlements every ``interval_h`` hours per venue, the last one at ``last`` (default
    :func:`end`)."""
    last = last or end()
    rows = []
    for venue, rs in rates.items():
        for i, r in enumerate(rs):
            ts = last - timedelta(hours=interval_h * (len(rs) - 1 - i))
            rows.append((venue, f"{asset}-USDT-PERP", ts, r, interval_h))
    return pl.DataFrame(
        rows, schema=["venue", "instrument", "ts", "rate", "interval_h"], orient="row"
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))


def candles(
    close: np.ndarray,
    *,
    high: np.ndarray | None = None,
    low: np.ndarray | None = None,
    taker_buy_share: np.ndarray | None = None,
    asset: str = "BTC",
) -> pl.DataFrame:
    """Hourly trade candles from closes (``h = c + 0.5``, ``l = c - 0.5`` unless given)."""
    n = len(close)
    h = close + 0.5 if high is None else high
    lo = close - 0.5 if low is None else low
    vol = np.full(n, 100.0)
    share = np.full(n, 0.5) if taker_buy_share is None else taker_buy_share
    return pl.DataFrame(
        {
            "venue": "v1",
            "instrument": f"{asset}-USDT-PERP",
            "ts": [T0 + timedelta(hours=i) for i in range(n)],
            "o": close,
            "h": h,
            "l": lo,
            "c": close,
            "volume": vol,
            "taker_buy_volume": vol * share,
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))


def rally_with_sfp() -> tuple[np.ndarray, np.ndarray]:
    """Closes rising 90 -> 102, a wick to 103.5 eight bars from the end (a swing high), six
    quiet bars at 101.5, and a last bar that wicks to 104 and closes at 103: above every earlier
    close (a new high) but back below the swing high (a bearish swing failure)."""
    c = np.linspace(90.0, 102.0, N)
    h = c + 0.5
    c[N - 7 : N - 1] = 101.5
    h[N - 7 : N - 1] = 102.0
    h[N - 8] = 103.5
    c[N - 1], h[N - 1] = 103.0, 104.0
    return c, h


def oi(values: np.ndarray) -> pl.DataFrame:
    """Aggregate OI per bar close."""
    n = len(values)
    return pl.DataFrame(
        {"ts": [T0 + timedelta(hours=i + 1) for i in range(n)], "oi_usd": values}
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))


def levels(price: float, dense: dict[float, tuple[float, float]] | None = None) -> pl.DataFrame:
    """A liquidation map: $1,000 of each side every 0.5% of ``price`` from -20% to +20% (longs
    below, shorts above), plus ``dense`` {price: (long_usd, short_usd)}."""
    pxs = price * (1 + np.arange(-40, 41) * 0.005)
    long_usd = np.where(pxs < price, 1000.0, 0.0)
    short_usd = np.where(pxs > price, 1000.0, 0.0)
    frame = pl.DataFrame({"price": pxs, "long_usd": long_usd, "short_usd": short_usd})
    if dense:
        extra = pl.DataFrame(
            {
                "price": list(dense),
                "long_usd": [v[0] for v in dense.values()],
                "short_usd": [v[1] for v in dense.values()],
            }
        )
        frame = pl.concat([frame, extra])
    return frame
