"""Benchmark: every setup and the scenario classifier for 100 instruments x 1 year of hourly data.

Synthetic data (seeded): per asset a year of 1h candles (random walk with taker volume), 8h
funding on two venues, hourly aggregate OI and a liquidation map around the last close; the first
``OPTION_ASSETS`` assets (BTC and ETH's place: the venues list options on a few underlyings) also
have a year of hourly option chain snapshots (4 weekly expiries x 11 strikes x call/put). Times
``detect_all`` (all setups, the BTC-vs-alt rotation included) plus ``classify`` for every asset at
the last hour, ``RUNS`` times on fresh bundles (nothing computed is carried from one pass to the
next); ``seconds`` is the median pass. Target: under 2 s. Last line: one JSON object.

    python bench/signals.py [--option-assets N]   (default 2; 0 = the perp-only workload)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from perpscope.signals import MarketData, classify, detect_all

ASSETS = 100
HOURS = 365 * 24
RUNS = 3
OPTION_ASSETS = 2
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _chains(inst: str, ts: pl.Series, c: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """Hourly snapshots: 4 Friday-08:00 expiries ahead, 11 strikes 5% apart around the close,
    calls and puts, with OI, volume, IV and delta."""
    n = ts.len()
    hours = np.arange(n)
    first_friday = (4 - T0.weekday()) % 7 * 24 + 8  # T0 is a Monday 00:00
    week = 168
    nxt = first_friday + np.maximum(np.ceil((hours - first_friday + 1) / week), 0) * week
    exp_h = (nxt[:, None] + week * np.arange(4)[None, :]).astype(np.int64)  # n x 4
    atm = np.round(c)
    k = atm[:, None] * (1 + 0.05 * np.arange(-5, 6))[None, :]  # n x 11
    shape = (n, 4, 11, 2)
    snap = np.broadcast_to(hours[:, None, None, None], shape).ravel()
    e = np.broadcast_to(exp_h[:, :, None, None], shape).ravel()
    strike = np.broadcast_to(k[:, None, :, None], shape).ravel()
    is_call = np.broadcast_to(np.array([True, False])[None, None, None, :], shape).ravel()
    m = np.log(strike / np.repeat(c, 88))
    iv = 0.5 + 0.3 * m**2 + np.where(is_call, 0.0, 0.02)  # puts richer
    delta = np.where(is_call, 1.0, 0.0) - 1 / (1 + np.exp(-m / 0.1))
    t0 = ts.dt.epoch("us").to_numpy()[0]
    return pl.DataFrame(
        {
            "venue": "o1",
            "ts": t0 + snap * 3_600_000_000 + 3_600_000_000,
            "underlying": inst.split("-")[0],
            "expiry_ts": t0 + e * 3_600_000_000,
            "strike_px": strike,
            "option_type": np.where(is_call, "C", "P"),
            "contract_size_base": 1.0,
            "open_interest_contracts": rng.gamma(2.0, 50.0, snap.size),
            "volume_contracts": rng.gamma(2.0, 5.0, snap.size),
            "mark_iv": iv,
            "delta": delta,
            "underlying_px": np.repeat(c, 88),
            "index_px": np.repeat(c, 88),
        }
    ).with_columns(
        pl.col("ts").cast(pl.Datetime("us", "UTC")),
        pl.col("expiry_ts").cast(pl.Datetime("us", "UTC")),
    ).with_columns(
        # one instrument name per (expiry, strike, type), as a venue lists it
        pl.format(
            "{}-{}-{}-{}", "underlying", pl.col("expiry_ts").dt.strftime("%y%m%d"),
            pl.col("strike_px").round(0), "option_type",
        ).alias("instrument"),
    )  # fmt: skip


def _asset(i: int, rng: np.random.Generator, option_assets: int = OPTION_ASSETS) -> MarketData:
    name = "BTC" if i == 0 else f"A{i:03d}"
    inst = f"{name}-USDT-PERP"
    ts = pl.datetime_range(T0, T0 + timedelta(hours=HOURS - 1), "1h", eager=True, time_zone="UTC")
    c = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.006, HOURS)))
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
    rate = np.clip(np.cumsum(rng.normal(0, 0.00005, len(fts))), -0.002, 0.002)
    funding = pl.concat(
        [
            pl.DataFrame(
                {"venue": v, "instrument": inst, "ts": fts, "rate": rate + off, "interval_h": 8.0}
            )
            for v, off in (("v1", 0.0), ("v2", 0.00002))
        ]
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    oi = pl.DataFrame(
        {
            "ts": ts + timedelta(hours=1),
            "oi_usd": 1e8 * np.exp(np.cumsum(rng.normal(0, 0.01, HOURS))),
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
    # its own generator: the perp data are the same with or without chains
    options = _chains(inst, ts, c, np.random.default_rng(1000 + i)) if i < option_assets else None
    return MarketData(name, funding=funding, candles=candles, oi=oi, levels=levels, options=options)


def _pass(data: dict[str, MarketData], at: datetime) -> tuple[float, int, int]:
    """One timed pass on copies of the bundles (a copy starts with no shared computations)."""
    assets = {k: replace(d) for k, d in data.items()}
    t = time.perf_counter()
    found = detect_all(assets, at)
    readings = [classify(d, at) for d in assets.values()]
    return time.perf_counter() - t, len(found), len(readings)


def main() -> None:
    """Build the data, run once on two assets to warm up (numba, polars), then time full
    passes."""
    ap = argparse.ArgumentParser(description="signals benchmark")
    ap.add_argument("--option-assets", type=int, default=OPTION_ASSETS)
    n_opt = ap.parse_args().option_assets
    rng = np.random.default_rng(7)
    assets = {d.asset: d for d in (_asset(i, rng, n_opt) for i in range(ASSETS))}
    at = T0 + timedelta(hours=HOURS)
    _pass(dict(list(assets.items())[:2]), at)
    passes = [_pass(assets, at) for _ in range(RUNS)]
    seconds = statistics.median(p[0] for p in passes)
    found, readings = passes[0][1], passes[0][2]
    print(
        f"{ASSETS} instruments x {HOURS} hours ({n_opt} with option chains): "
        f"{found} signals, {readings} scenario readings "
        f"in {seconds:.2f} s, median of {RUNS} passes "
        f"({', '.join(f'{p[0]:.2f}' for p in passes)}; target < 2 s)"
    )
    print(
        json.dumps(
            {
                "instruments": ASSETS,
                "hours": HOURS,
                "signals": found,
                "option_assets": n_opt,
                "seconds": round(seconds, 3),
                "runs": RUNS,
                "seconds_each": [round(p[0], 3) for p in passes],
                "target_s": 2.0,
                "met": seconds < 2.0,
            }
        )
    )


if __name__ == "__main__":
    main()
