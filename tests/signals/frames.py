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


STRIKES = (90.0, 95.0, 100.0, 105.0, 110.0)
CALL_DELTAS = (0.85, 0.7, 0.5, 0.3, 0.2)
PUT_DELTAS = (-0.15, -0.3, -0.5, -0.7, -0.85)


def chain(
    ts: datetime,
    expiries: dict[float, tuple[float, float, dict[float, float], dict[float, float]]],
    *,
    spot: float = 100.0,
    asset: str = "BTC",
) -> pl.DataFrame:
    """One option chain snapshot at ``ts``: every expiry (days from ``ts``) lists calls and puts
    at :data:`STRIKES` with flat IVs ``(call_iv, put_iv, call_oi, put_oi)`` (OI {strike:
    contracts}, 0 elsewhere), venue deltas :data:`CALL_DELTAS` / :data:`PUT_DELTAS`, forward
    and index ``spot``. With flat IVs the 25-delta call IV is ``call_iv``, the 25-delta put IV
    ``put_iv``, and the ATM IV (the call at the forward, strike 100) ``call_iv``."""
    rows = []
    for days, (civ, piv, c_oi, p_oi) in expiries.items():
        exp = ts + timedelta(days=days)
        for k, cd, pd in zip(STRIKES, CALL_DELTAS, PUT_DELTAS, strict=True):
            for side, iv, d, oi_ in (("C", civ, cd, c_oi), ("P", piv, pd, p_oi)):
                rows.append(
                    {
                        "venue": "opt1",
                        "instrument": f"{asset}-{days:g}D-{k:g}-{side}",
                        "ts": ts,
                        "underlying": asset,
                        "expiry_ts": exp,
                        "strike_px": k,
                        "option_type": side,
                        "contract_size_base": 1.0,
                        "open_interest_contracts": oi_.get(k, 0.0),
                        "volume_contracts": 1.0,
                        "mark_iv": iv,
                        "delta": d,
                        "underlying_px": spot,
                        "index_px": spot,
                    }
                )
    return pl.DataFrame(rows).with_columns(
        pl.col("ts").dt.cast_time_unit("us"), pl.col("expiry_ts").dt.cast_time_unit("us")
    )


NEAR_OI = ({105.0: 10.0, 110.0: 20.0}, {95.0: 5.0, 105.0: 30.0})
"""The 3-day expiry's OI (calls, puts). Payout to holders at each strike S,
sum of calls OI x (S - K)+ and puts OI x (K - S)+: S=90: puts 5x5 + 30x15 = 475; 95: 30x10 =
300; 100: 30x5 = 150; 105: 0; 110: calls 10x5 = 50. Max pain 105 (+5% from spot 100); call
wall (most call OI at or above spot) 110, put wall (most put OI at or below spot) 95."""


def fear_chain(ts: datetime, *, front_iv: float = 0.5) -> pl.DataFrame:
    """Put-heavy and put-skewed. OI: calls 10 + 20 (3d) + 20 (30d) = 50, puts 5 + 30 + 40 = 75:
    put/call 1.5 (>= 1.2, extreme high; grade (1.5 - 0.4) / 0.8 clipped = 1). 30-day skew
    0.50 - 0.55 = -5 vol pts (grade 0.5 + 0.5 = 1). Fear 1.0. ATM IV front (3d) ``front_iv``,
    back (30d) 0.50."""
    return chain(
        ts,
        {
            3.0: (front_iv, front_iv, *NEAR_OI),
            30.0: (0.50, 0.55, {100.0: 20.0}, {100.0: 40.0}),
        },
    )


def greed_chain(ts: datetime) -> pl.DataFrame:
    """Call-heavy and call-skewed. OI: calls 30 + 150 = 180, puts 35: put/call 35/180 = 0.1944
    (<= 0.4, extreme low; grade 0). 30-day skew 0.55 - 0.50 = +5 vol pts (grade 0). Fear 0."""
    return chain(
        ts,
        {
            3.0: (0.5, 0.5, *NEAR_OI),
            30.0: (0.55, 0.50, {100.0: 150.0}, {}),
        },
    )
