"""Benchmark: the liquidation-heatmap estimator over one year of 5-minute bars.

Input: 105,120 synthetic 5-minute bars (a BTC-like random walk with OI and taker flow), 5 leverage
tiers x 2 sides, 0.1% price bins, an hourly heatmap row kept (every 12 bars). Ours: the numba
kernel (``perpscope.analytics.liquidations._kernel.heatmap_kernel``), timed on its own and
end-to-end through ``estimate_heatmap`` (input preparation, tier formula, grid). Peer: the
plain-Python loop of the same algorithm (``heatmap_reference``) in this process, on the first
``--peer-bars`` bars and the same grid, extrapolated linearly to the year (its cost per bar is
one pass over the bins, so it is linear in bars). The two are checked to agree on that slice.

    python bench/heatmap.py [--peer-bars 3000] [--repeat 5]

"Cells" are bars x price bins x 2 sides: the time x price state the algorithm evolves.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from perpscope.analytics.liquidations import HeatmapParams, estimate_heatmap, tier_factors
from perpscope.analytics.liquidations._kernel import heatmap_kernel, heatmap_reference

BARS = 105_120  # 365 days x 288 five-minute bars


def synthetic_year(seed: int = 1) -> pl.DataFrame:
    """A year of 5-minute BTC-like bars with OI and taker buy share."""
    rng = np.random.default_rng(seed)
    r = rng.standard_t(4, BARS) * 0.0015
    c = 40_000 * np.exp(np.cumsum(r))
    o = np.concatenate([[40_000.0], c[:-1]])
    h = np.maximum(o, c) * (1 + np.abs(rng.normal(0, 0.0008, BARS)))
    lo = np.minimum(o, c) * (1 - np.abs(rng.normal(0, 0.0008, BARS)))
    oi = 80_000 * np.exp(np.cumsum(rng.normal(0, 0.002, BARS)))
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "ts": pl.datetime_range(t0, t0 + timedelta(minutes=5 * (BARS - 1)), "5m", eager=True),
            "o": o,
            "h": h,
            "l": lo,
            "c": c,
            "oi_base": oi,
            "volume": np.full(BARS, 100.0),
            "taker_buy_volume": rng.uniform(30, 70, BARS),
        }
    )


def _best(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    """Run the benchmark and print its figures, the last line as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer-bars", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    bars = synthetic_year()
    params = HeatmapParams(snap_every=12, turnover_half_life_h=None)  # kargs below: no churn
    hm = estimate_heatmap(bars, params)  # compiles (or loads the cached kernel)
    n_bins = hm.bin_px.size
    # the kernel's own inputs, rebuilt as estimate_heatmap builds them
    typical = ((bars["h"] + bars["l"] + bars["c"]) / 3).to_numpy()
    oi = bars["oi_base"].to_numpy()
    delta = np.diff(oi, prepend=0.0)
    new = np.where(delta > 0, delta * typical, 0.0)
    prev = np.concatenate([[0.0], oi[:-1]])
    keep = np.where((delta < 0) & (prev > 0), oi / np.where(prev > 0, prev, 1.0), 1.0)
    share = (bars["taker_buy_volume"] / bars["volume"]).to_numpy()
    f_long, f_short = tier_factors(params)
    weights = np.asarray(params.weights) / sum(params.weights)
    centers = hm.bin_px
    dlog = math.log1p(params.bin_pct)
    p0 = float(centers[0] / math.exp(0.5 * dlog))
    high, low = bars["h"].to_numpy(), bars["l"].to_numpy()
    half_w = math.ceil(math.log1p(0.3) / dlog) + 1  # heatmap rows: +-30% of each close
    kargs = (typical, new * share, new * (1 - share), keep, high, low, f_long, f_short, weights,
             centers, p0, dlog, 1.0, 12, True, bars["c"].to_numpy(), half_w)  # fmt: skip
    kernel_s = _best(lambda: heatmap_kernel(*kargs), args.repeat)
    full_s = _best(lambda: estimate_heatmap(bars, params), args.repeat)
    k = min(args.peer_bars, BARS)
    sliced = tuple(a[:k] if isinstance(a, np.ndarray) and a.shape == (BARS,) else a for a in kargs)
    t = time.perf_counter()
    ref = heatmap_reference(*sliced)  # type: ignore[arg-type]
    peer_slice_s = time.perf_counter() - t
    fast = heatmap_kernel(*sliced)
    scale = float(max(ref[0].max(), ref[1].max(), 1.0))
    agree = bool(
        np.allclose(fast[0], ref[0], rtol=1e-9, atol=scale * 1e-9)
        and np.allclose(fast[1], ref[1], rtol=1e-9, atol=scale * 1e-9)
    )
    peer_s = peer_slice_s * BARS / k
    cells = BARS * n_bins * 2
    print(f"bars {BARS:,} (5-minute, one year), tiers 5 x 2 sides, bins {n_bins:,} at 0.1%")
    print(f"heatmap rows kept {hm.heat_long.shape[0]:,} (hourly)")
    print(f"numba kernel          {kernel_s * 1e3:8.1f} ms  {cells / kernel_s:,.0f} cells/s")
    print(f"estimate_heatmap      {full_s * 1e3:8.1f} ms  (inputs, tier formula, grid, kernel)")
    print(
        f"pure-Python loop      {peer_s:8.1f} s   (ran {k:,} bars in {peer_slice_s:.2f} s, "
        f"extrapolated linearly to {BARS:,} bars)"
    )
    print(f"kernel and Python loop agree on the slice: {agree}")
    summary = {
        "bench": "heatmap",
        "bars": BARS,
        "bins": n_bins,
        "tiers": 5,
        "kernel_ms": round(kernel_s * 1e3, 1),
        "estimate_ms": round(full_s * 1e3, 1),
        "cells_per_s": round(cells / kernel_s),
        "python_s_extrapolated": round(peer_s, 1),
        "python_bars_run": k,
        "agree": agree,
        "speedup": round(peer_s / kernel_s, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
