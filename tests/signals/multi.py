"""A seeded multi-asset market for the batch-equivalence tests (simulated, like the benchmark's,
but short and with wider moves so that every setup fires at one of :func:`times`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from perpscope.signals import MarketData
from tests.signals import frames

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOURS = 60 * 24
ASSETS = 16


def _asset(i: int, rng: np.random.Generator) -> MarketData:
    name = "BTC" if i == 0 else f"A{i:03d}"
    inst = f"{name}-USDT-PERP"
    ts = pl.datetime_range(T0, T0 + timedelta(hours=HOURS - 1), "1h", eager=True, time_zone="UTC")
    c = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.008, HOURS)))
    wick = np.abs(rng.normal(0, 0.003, HOURS)) * c
    vol = rng.gamma(2.0, 50.0, HOURS)
    candles = pl.DataFrame(
        {
            "venue": "v1",
            "instrument": inst,
            "ts": ts,
            "o": np.roll(c, 1),
            "h": c + wick,
            "l": c - wick,
            "c": c,
            "volume": vol,
            "taker_buy_volume": vol * rng.uniform(0.3, 0.7, HOURS),
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    fts = ts.gather_every(8)
    drift = 0.0002 if i == 0 else 0.0004 if i % 2 == 1 else 0.0
    rate = np.clip(drift + np.cumsum(rng.normal(0, 0.0001, len(fts))), -0.002, 0.002)
    venues = [("v1", inst, 0.0, 8.0), ("v2", inst, 0.00002, 8.0)]
    if i % 5 == 3:  # a third venue on another instrument, settling every 4h
        venues.append(("v3", f"{name}-USD-PERP", -0.00001, 8.0))
    funding = pl.concat(
        [
            pl.DataFrame(
                {"venue": v, "instrument": ins, "ts": fts, "rate": rate + off, "interval_h": ih}
            )
            for v, ins, off, ih in venues
        ]
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    oi_usd = 1e8 * np.exp(np.cumsum(rng.normal(0, 0.02, HOURS)))
    if i % 2 == 1:  # OI falling into price extremes: the OI divergence
        oi_usd = 1e8 * (c / 100.0) ** -4.0 * np.exp(rng.normal(0, 0.001, HOURS))
    oi = pl.DataFrame(
        {
            "ts": ts + timedelta(hours=1),
            "oi_usd": oi_usd,
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    px = float(c[-1])
    grid = px * (1 + np.arange(-60, 61) * 0.005)
    levels = pl.DataFrame(
        {
            "price": grid,
            "long_usd": np.where(grid < px, rng.gamma(1.0, 1e5, grid.size), 0.0),
            "short_usd": np.where(grid > px, rng.gamma(1.0, 1e5, grid.size), 0.0),
        }
    )
    return MarketData(
        name,
        funding=funding,
        candles=None if i % 7 == 6 else candles,
        oi=None if i % 4 == 2 else oi,
        levels=None if i % 3 == 1 else levels,
    )


def _triple() -> MarketData:
    """The hand-built triple confluence of ``test_setups``, moved to end at the market's end."""
    shift = T0 + timedelta(hours=HOURS) - frames.end()
    hot = [0.0001, 0.0006, 0.0006, 0.0006, 0.0007]
    c, h = frames.rally_with_sfp()

    def moved(f: pl.DataFrame) -> pl.DataFrame:
        return f.with_columns(pl.col("ts") + shift)

    return MarketData(
        "TRI",
        funding=moved(frames.funding({"a": hot, "b": hot}, asset="TRI")),
        candles=moved(frames.candles(c, high=h, asset="TRI")),
        oi=moved(frames.oi(np.linspace(1000.0, 700.0, frames.N) * 1e6)),
        levels=frames.levels(103.0, {100.0: (5e4, 0.0)}),
    )


def market(seed: int = 11) -> dict[str, MarketData]:
    """``ASSETS`` simulated assets (BTC first; some without candles, OI or a liquidation map)
    and the hand-built ``TRI``."""
    rng = np.random.default_rng(seed)
    out = {d.asset: d for d in (_asset(i, rng) for i in range(ASSETS))}
    out["TRI"] = _triple()
    return out


def times() -> list[datetime]:
    """Evaluation times: the end, and earlier hours (mid-bar and on a settlement included)."""
    end = T0 + timedelta(hours=HOURS)
    back = ((0, 0), (13, 0), (186, 0), (200, 30), (334, 0), (454, 0), (700, 0))
    return [end - timedelta(hours=h, minutes=m) for h, m in back]
