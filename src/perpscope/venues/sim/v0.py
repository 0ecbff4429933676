"""Simulator v0: a small, deterministic statistical market for the demo and the tests.

This is *not* the agent-based simulator (a later issue replaces it behind :func:`run_simulation`).
It draws, per asset, one hourly index path with clustered volatility (a GARCH(1,1)-style variance
recursion with Student-t shocks), and per venue a perpetual whose premium to the index follows a
mean-reverting process pushed by a shared sentiment factor that chases recent returns. From those:

- trade candles of the perp and of spot on each venue, and index candles of the perp;
- funding settled by the playbook's formula, rate = P + clamp(I - P, -c, +c), with P the mean
  premium over the interval, I = 0.01% per 8h and c = 0.05% per 8h, both scaled to the interval
  (sim1 and sim2 settle every 8h, sim3 every 4h);
- hourly open interest (base units and USD) that grows with sentiment and shrinks after large moves.

Every number depends only on the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

__all__ = ["ASSETS", "SIM_FUNDING_INTERVAL_H", "SimConfig", "SimResult", "run_simulation"]

ASSETS: dict[str, float] = {"BTC": 60_000.0, "ETH": 3_000.0, "SOL": 150.0}
"""Simulated assets and their starting prices (USD)."""

SIM_FUNDING_INTERVAL_H: dict[str, float] = {"sim1": 8.0, "sim2": 8.0, "sim3": 4.0}
"""Funding interval of each simulated venue."""

_STEPS_PER_HOUR = 12  # 5-minute sub-steps give each hourly bar a high and a low
_INTEREST_8H = 0.0001
_CLAMP_8H = 0.0005


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate."""

    seed: int = 7
    days: int = 30
    end: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    assets: tuple[str, ...] = tuple(ASSETS)
    venues: tuple[str, ...] = tuple(SIM_FUNDING_INTERVAL_H)

    def __post_init__(self) -> None:
        if self.days < 1 or self.days > 3650:
            raise ValueError("days must be between 1 and 3650")
        if self.end.tzinfo is None:
            raise ValueError("end must be timezone-aware")
        unknown = [a for a in self.assets if a not in ASSETS] + [
            v for v in self.venues if v not in SIM_FUNDING_INTERVAL_H
        ]
        if unknown:
            raise ValueError(f"the simulator does not know {', '.join(unknown)}")


@dataclass(frozen=True, slots=True)
class SimResult:
    """Frames shaped like the store tables of the same names (``funding``, ``ohlcv``...)."""

    tables: dict[str, pl.DataFrame]
    config: SimConfig


def _index_path(rng: np.random.Generator, start_px: float, n_steps: int) -> np.ndarray:
    """Log-price path with GARCH(1,1)-style clustered volatility and fat-tailed shocks."""
    omega, alpha, beta = 4e-8, 0.08, 0.90
    var = omega / (1 - alpha - beta)
    shocks = rng.standard_t(df=4, size=n_steps) / np.sqrt(2.0)
    log_ret = np.empty(n_steps)
    for i in range(n_steps):
        r = np.sqrt(var) * shocks[i]
        log_ret[i] = r
        var = omega + alpha * r * r + beta * var
    return np.asarray(start_px * np.exp(np.cumsum(log_ret)))


def _ar1(
    rng: np.random.Generator, n: int, phi: float, sigma: float, drive: np.ndarray
) -> np.ndarray:
    out = np.empty(n)
    x = 0.0
    noise = rng.normal(0.0, sigma, size=n)
    for i in range(n):
        x = phi * x + drive[i] + noise[i]
        out[i] = x
    return out


def _bars(px: np.ndarray, hours: int) -> tuple[np.ndarray, ...]:
    steps = px.reshape(hours, _STEPS_PER_HOUR)
    opens = np.concatenate([[px[0]], steps[:-1, -1]])
    highs = np.maximum(steps.max(axis=1), opens)
    lows = np.minimum(steps.min(axis=1), opens)
    return opens, highs, lows, steps[:, -1]


def run_simulation(config: SimConfig) -> SimResult:
    """Simulate ``config.days`` of hourly data up to ``config.end`` for every asset and venue."""
    rng = np.random.default_rng(config.seed)
    hours = config.days * 24
    n = hours * _STEPS_PER_HOUR
    start = config.end - timedelta(hours=hours)
    bar_ts = [start + timedelta(hours=h) for h in range(hours)]
    ohlcv, funding, oi = [], [], []
    for asset in config.assets:
        index = _index_path(rng, ASSETS[asset], n)
        hourly_ret = np.diff(np.log(index[::_STEPS_PER_HOUR]), prepend=np.log(index[0]))
        momentum = np.convolve(hourly_ret, np.ones(24) / 24, mode="full")[:hours]
        sentiment = _ar1(rng, hours, 0.98, 0.00005, momentum * 0.01)
        for venue in config.venues:
            interval = SIM_FUNDING_INTERVAL_H[venue]
            premium_h = sentiment + _ar1(rng, hours, 0.8, 0.00005, np.zeros(hours)) + 0.00005
            premium = np.repeat(premium_h, _STEPS_PER_HOUR)
            perp = index * (1.0 + premium)
            spot = index * (1.0 + rng.normal(0.0, 0.00005, size=n))
            volume = np.abs(hourly_ret) * 4e4 + rng.gamma(2.0, 50.0, size=hours)
            volume *= 60_000.0 / ASSETS[asset]
            instrument = f"{asset}-USDT"
            for inst, kind, path in (
                (f"{instrument}-PERP", "trade", perp),
                (f"{instrument}-PERP", "index", index),
                (instrument, "trade", spot),
            ):
                o, h, lo, c = _bars(path, hours)
                has_vol = kind == "trade"
                ohlcv.append(
                    pl.DataFrame(
                        {
                            "ts": bar_ts,
                            "o": o,
                            "h": h,
                            "l": lo,
                            "c": c,
                            "volume": volume if has_vol else None,
                            "quote_volume": volume * c if has_vol else None,
                        }
                    ).with_columns(
                        venue=pl.lit(venue),
                        instrument=pl.lit(inst),
                        kind=pl.lit(kind),
                        timeframe=pl.lit("1h"),
                    )
                )
            step = int(interval)
            settle_idx = np.arange(step, hours + 1, step)
            scale = interval / 8.0
            mean_premium = np.array([premium_h[i - step : i].mean() for i in settle_idx])
            rate = mean_premium + np.clip(
                _INTEREST_8H * scale - mean_premium, -_CLAMP_8H * scale, _CLAMP_8H * scale
            )
            funding.append(
                pl.DataFrame(
                    {
                        "ts": [start + timedelta(hours=int(i)) for i in settle_idx],
                        "rate": np.round(rate, 8),
                        "interval_h": np.full(len(settle_idx), interval),
                        "mark_px": perp[np.minimum(settle_idx * _STEPS_PER_HOUR, n - 1)],
                    }
                ).with_columns(venue=pl.lit(venue), instrument=pl.lit(f"{instrument}-PERP"))
            )
            base_oi = 2e9 / ASSETS[asset] * (1.0 + rng.uniform(-0.4, 0.4))
            oi_growth = 20.0 * sentiment - 0.5 * np.abs(hourly_ret) + rng.normal(0, 0.002, hours)
            oi_base = base_oi * np.exp(_ar1(rng, hours, 0.995, 0.0, oi_growth))
            close_px = perp[_STEPS_PER_HOUR - 1 :: _STEPS_PER_HOUR]
            oi.append(
                pl.DataFrame(
                    {
                        "ts": [t + timedelta(hours=1) for t in bar_ts],
                        "oi_value": oi_base,
                        "oi_base": oi_base,
                        "oi_usd": oi_base * close_px,
                    }
                ).with_columns(
                    venue=pl.lit(venue),
                    instrument=pl.lit(f"{instrument}-PERP"),
                    source=pl.lit("snapshot"),
                    oi_unit=pl.lit("base"),
                )
            )
    tables = {
        "ohlcv": pl.concat(ohlcv, how="diagonal_relaxed"),
        "funding": pl.concat(funding),
        "open_interest": pl.concat(oi),
    }
    return SimResult(
        {k: v.with_columns(pl.col("ts").dt.cast_time_unit("us")) for k, v in tables.items()},
        config,
    )
