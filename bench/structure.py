"""Benchmark: the chart-reading rules (regime, structure, zones, volume profile, VWAP).

100 instruments x 5 years of hourly candles (4.38 million rows), random walks with volume
spikes, generated with a fixed seed. perpscope runs every rule over all of it:
ATR and ADX (Wilder, TA-Lib-exact), realised volatility and the regime label, the structure walk
(swings, SFP, BOS/CHoCH, springs/UTADs) and its event list, S/R zones over each series' last 500
bars, a volume profile of each series' last 30 days and the session VWAP.

The peer is the same rules written with pandas as one would without perpscope: ATR/ADX with
``ewm`` (Wilder's smoothing seeded like TA-Lib), ``groupby().rolling()`` for volatility and
volume averages, groupby ``cumsum`` for the VWAP, ``np.histogram``-style loops for the profile,
and the structure walk as a plain Python loop over each series' rows (the walk is path-dependent:
pandas has no vectorised form of it). The peer does not cluster S/R zones (ours does, so its
time is the smaller job and ``speedup`` understates ours). The peer runs on
``--peer-instruments`` instruments (10 by default) and its time is scaled linearly to 100 (the
work is per series, so linear is exact up to noise); both sides' event counts on those instruments
are compared so the timings are of the same work.

Run: ``.venv/bin/python bench/structure.py`` (``--years 1`` for a quick run). The last line is
one JSON object; ``speedup`` = the peer's (scaled) time / perpscope's time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' reference walk


def generate(n_instruments: int, years: float, seed: int = 7) -> Any:
    """The synthetic hourly candles (polars), sorted by venue, instrument, ts."""
    import polars as pl

    rng = np.random.default_rng(seed)
    n = int(years * 8760)
    ts = np.datetime64("2020-01-01T00:00:00", "us") + np.arange(n).astype("timedelta64[h]")
    frames = []
    for k in range(n_instruments):
        close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.006, n)))
        wick = np.abs(rng.normal(0, 0.003, (2, n)))
        spikes = np.where(rng.random(n) < 0.02, rng.uniform(3, 6, n), 1.0)
        frames.append(
            pl.DataFrame(
                {
                    "venue": "binance",
                    "instrument": f"A{k:03d}-USDT-PERP",
                    "ts": ts,
                    "o": np.concatenate(([close[0]], close[:-1])),
                    "h": close * (1 + wick[0]),
                    "l": close * (1 - wick[1]),
                    "c": close,
                    "volume": rng.lognormal(0, 0.3, n) * 100 * spikes,
                }
            )
        )
    return pl.concat(frames).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))


def ours(candles: Any) -> dict[str, int]:
    """Every rule with perpscope; returns counts used to check both sides did the same work."""
    from perpscope.analytics._chart_kernels import series_bounds
    from perpscope.analytics.regime import regime
    from perpscope.analytics.structure import structure, structure_events, zones
    from perpscope.analytics.volume_profile import session_vwap, volume_profile

    reg = regime(candles, "1h")
    frame = structure(candles)
    events = structure_events(frame)
    zone = zones(frame, last_bars=500)
    vwap = session_vwap(candles)
    bounds = series_bounds(frame, ["venue", "instrument"])
    pocs = [
        volume_profile(frame.slice(max(start, end - 720), end - max(start, end - 720))).poc_px
        for start, end in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    counts = events.group_by("event").len()
    out = {str(e): int(n) for e, n in counts.iter_rows()}
    out["trending"] = int((reg["regime"] == "trending").sum())
    out["zones"] = zone.height
    out["vwap"] = int(vwap["vwap"].is_not_null().sum())
    out["profiles"] = len(pocs)
    return out


def peer(candles: Any, n_period: int = 14) -> dict[str, int]:
    """The same rules with pandas (and a Python loop for the path-dependent walk)."""
    import pandas as pd
    from tests.analytics.chart_reference import reference_structure

    df = candles.to_pandas()
    counts: dict[str, int] = {"trending": 0, "vwap": 0, "profiles": 0}  # no S/R zones
    for _, g in df.groupby(["venue", "instrument"], sort=False):
        h, low, c, v = g["h"], g["l"], g["c"], g["volume"]
        prev_c = c.shift(1)
        tr = pd.concat([h - low, (h - prev_c).abs(), (low - prev_c).abs()], axis=1).max(axis=1)
        up, down = h.diff(), -low.diff()
        plus_dm = up.where((up > down) & (up > 0), 0.0)
        minus_dm = down.where((down > up) & (down > 0), 0.0)

        def wilder_sum(x: pd.Series) -> pd.Series:
            # TA-Lib: the sum of the first n-1 moves, then s_t = s_{t-1} (n-1)/n + x_t
            vals = x.to_numpy().copy()
            vals[n_period - 1] = x.iloc[1:n_period].sum()
            return _wilder(vals, n_period, x.index)

        tr_s, p_s, m_s = wilder_sum(tr), wilder_sum(plus_dm), wilder_sum(minus_dm)
        pdi, mdi = 100 * p_s / tr_s, 100 * m_s / tr_s
        dx = 100 * (pdi - mdi).abs() / (pdi + mdi)
        adx = dx.copy() * np.nan
        first = 2 * n_period - 1
        if len(dx) > first:
            adx.iloc[first] = dx.iloc[n_period : first + 1].mean()
            adx.iloc[first:] = (
                pd.concat([adx.iloc[first : first + 1], dx.iloc[first + 1 :]])
                .ewm(alpha=1 / n_period, adjust=False)
                .mean()
                .to_numpy()
            )
        logret = np.log(c).diff()
        rv = logret.rolling(24).std() * np.sqrt(8760)
        rv_mean = rv.rolling(720, min_periods=180).mean()
        trending = adx > 30
        counts["trending"] += int(trending.sum())
        _ = (rv / rv_mean >= 1.3) & ~trending
        ev = reference_structure(
            h.tolist(),
            low.tolist(),
            c.tolist(),
            v.tolist(),
            width=3,
            max_age=500,
            reclaim_bars=3,
            vol_mult=2.0,
            vol_window=20,
        )
        for name, found in (("sfp", ev.sfp), ("spring", ev.spring)):
            for sign, *_rest in found.values():
                key = name if name == "sfp" else ("spring" if sign > 0 else "utad")
                counts[key] = counts.get(key, 0) + 1
        for _sign, kind, _lvl in ev.brk.values():
            counts[kind] = counts.get(kind, 0) + 1
        typical = (h + low + c) / 3
        day = g["ts"].dt.floor("D")
        vwap = (typical * v).groupby(day).cumsum() / v.groupby(day).cumsum()
        counts["vwap"] += int(vwap.notna().sum())
        tail = g.tail(720)
        edges = np.linspace(tail["l"].min(), tail["h"].max(), 51)
        hist = np.zeros(50)
        for hi, lo, vol in zip(tail["h"], tail["l"], tail["volume"], strict=True):
            overlap = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0, None)
            hist += vol * overlap / (hi - lo) if hi > lo else 0
        counts["profiles"] += 1
    return counts


def _wilder(vals: np.ndarray, n: int, index: Any) -> Any:
    import pandas as pd

    out = np.full(vals.size, np.nan)
    if vals.size >= n:
        acc = vals[n - 1]
        out[n - 1] = acc
        for i in range(n, vals.size):
            acc = acc - acc / n + vals[i]
            out[i] = acc
    return pd.Series(out, index=index)


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=float, default=5.0)
    parser.add_argument("--instruments", type=int, default=100)
    parser.add_argument("--peer-instruments", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    candles = generate(args.instruments, args.years)
    ours(candles.head(5000))  # compile the kernels (cached on disk) before timing
    runs = [timed(ours, candles) for _ in range(args.repeat)]
    ours_s = min(t for t, _ in runs)
    subset = candles.filter(
        candles["instrument"].is_in(
            candles["instrument"].unique(maintain_order=True).head(args.peer_instruments).implode()
        )
    )
    ours_sub_s, ours_counts = timed(ours, subset)
    peer_sub_s, peer_counts = timed(peer, subset)
    scale = args.instruments / args.peer_instruments
    peer_s = peer_sub_s * scale
    same = {
        k: ours_counts.get(k) == peer_counts.get(k)
        for k in ("sfp", "bos", "choch", "spring", "utad")
    }
    print(
        f"rows: {candles.height:,} ({args.instruments} instruments x {args.years:g} years hourly)"
    )
    print(
        f"perpscope: {ours_s:.3f} s (best of {args.repeat}); {candles.height / ours_s:,.0f} rows/s"
    )
    print(
        f"pandas peer: {peer_sub_s:.2f} s on {args.peer_instruments} instruments, "
        f"scaled x{scale:g} to {peer_s:.1f} s"
    )
    print(f"event counts on the peer's instruments: ours {ours_counts}, peer {peer_counts}")
    print(
        json.dumps(
            {
                "bench": "structure",
                "rows": candles.height,
                "ours_s": round(ours_s, 4),
                "peer_s_scaled": round(peer_s, 2),
                "peer_instruments": args.peer_instruments,
                "same_events": all(same.values()),
                "target_s": 2.0,
                "speedup": round(peer_s / ours_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
