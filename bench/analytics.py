"""Benchmark: perpscope's market analytics (polars) against pandas computing the same metrics.

100 instruments (25 assets x 4 venues) x 5 years of hourly rows (about 4.4 million rows) of
funding rate, OI and price, generated with a fixed seed and written once to Parquet. Each side
then runs in its own subprocess, reads the file, computes the same ten metrics and reports its
time and peak RSS:

annualised rate, OI-weighted aggregate per asset and hour, 7-day z-score and 30-day percentile
of the 8h-equivalent rate, extreme persistence (streak hours), acceleration (change, its change,
level), OI 24h change, the 24h / 7-day rate ratio, price/OI quadrant and the 72h divergence ratio.

pandas uses its best idioms: vectorised columns, ``groupby().rolling(<time offset>)`` (time windows
as ours), ``Rolling.rank(pct=True)``, ``merge_asof(by=...)`` for the lagged values, groupby
``cumsum`` for runs. No Python loop touches rows on either side. A checksum of every metric is
compared across all runs so the timings are of the same work.

Each side runs in its own subprocess and computes the metrics one after the other. Both use the
machine's cores as their library does: polars runs its kernels on its thread pool, and
perpscope's rolling percentile is a compiled O(n log n) kernel over the series in parallel
(polars' rolling rank costs O(window) a row on one core); pandas runs on one core. The kernel's
one-time compile is cached on disk and happens in a warm-up call before timing.

Run: ``.venv/bin/python bench/analytics.py`` (``--years 1`` for a quick run). The last line
printed is one JSON object with ``speedup`` = pandas time / perpscope time (compute only: from
the file in memory to every metric).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

N_ASSETS = 25
VENUES = ("binance", "bybit", "okx", "gate")
INTERVALS_H = (8.0, 8.0, 8.0, 4.0)


def generate(path: Path, years: float, seed: int = 42) -> int:
    """Write the synthetic hourly panel to ``path`` (Parquet); return the row count."""
    import polars as pl

    rng = np.random.default_rng(seed)
    n_h = int(years * 8760)
    start = np.datetime64("2020-01-01T00:00:00", "us")
    ts = start + np.arange(n_h).astype("timedelta64[h]")
    frames = []
    for a in range(N_ASSETS):
        px = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.006, n_h)))
        common = np.cumsum(rng.normal(0, 0.00002, n_h))
        common = common - np.convolve(common, np.ones(500) / 500, mode="same")
        for v, venue in enumerate(VENUES):
            rate = 0.0001 + common + rng.normal(0, 0.0001, n_h)
            oi = 1e8 * (1 + v) * np.exp(np.cumsum(rng.normal(0, 0.004, n_h)))
            frames.append(
                pl.DataFrame(
                    {
                        "venue": venue,
                        "instrument": f"A{a:02d}-USDT-PERP",
                        "ts": ts,
                        "rate": rate,
                        "interval_h": INTERVALS_H[v],
                        "oi_usd": oi,
                        "close_px": px * (1 + rng.normal(0, 0.0005, n_h)),
                    }
                )
            )
    # Stored in the store's natural key order (venue, instrument, ts), as a Delta table read is.
    frame = (
        pl.concat(frames)
        .with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
        .sort("venue", "instrument", "ts")
    )
    frame.write_parquet(path)
    return frame.height


Checksum = dict[str, float]
Group = Callable[[], Checksum]


def polars_groups(path: Path) -> tuple[float, int, list[Group]]:
    """Our side: read the file, return (read time, rows, the two metric groups)."""
    import polars as pl

    from perpscope.analytics.funding import aggregate_funding, annualized_rate
    from perpscope.analytics.funding_series import (
        extreme_persistence,
        funding_acceleration,
        funding_statistics,
    )
    from perpscope.analytics.oi import oi_changes, oi_divergence

    t0 = time.perf_counter()
    frame = pl.read_parquet(path)
    read_s = time.perf_counter() - t0
    # Each function sorts by (venue, instrument, ts) when needed; this file is already in that
    # order, which they detect in one pass.

    def statistics() -> Checksum:
        stats = funding_statistics(frame, zscore_window_h=168, percentile_window_h=720)
        return {
            "zscore": float(stats["zscore"].sum()),
            "percentile": float(stats["percentile"].sum()),
        }

    def rest() -> Checksum:
        out: Checksum = {}
        ann = frame.select(annualized_rate(pl.col("rate"), pl.col("interval_h"))).to_series()
        out["annualized"] = float(ann.sum())
        out["agg_rate_8h"] = float(aggregate_funding(frame)["agg_rate_8h"].sum())
        out["streak_h"] = float(extreme_persistence(frame)["extreme_streak_h"].sum())
        acc = funding_acceleration(frame)
        out["accel_8h"] = float(acc["accel_8h"].sum())
        out["strong"] = float((acc["accel_level"] == "strong").sum())
        del acc
        market = frame.select("venue", "instrument", "ts", "oi_usd", "close_px")
        oi = oi_changes(market)
        out["oi_change_24h"] = float(oi["oi_change_24h"].sum())
        out["roc_ratio"] = float(oi["roc_ratio"].sum())
        out["new_longs"] = float((oi["quadrant"] == "new_longs").sum())
        del oi
        out["divergence_ratio"] = float(oi_divergence(market)["divergence_ratio"].sum())
        return out

    return read_s, frame.height, [statistics, rest]


def pandas_groups(
    path: Path,
) -> tuple[float, int, Callable[[], Any], list[Callable[[Any], Checksum]]]:
    """The peer: the same metrics with pandas' vectorised idioms.

    Returns (read time, rows, the shared preparation, the two metric groups taking its result).
    """
    import pandas as pd

    t0 = time.perf_counter()
    raw = pd.read_parquet(path)
    read_s = time.perf_counter() - t0
    keys = ["venue", "instrument"]

    def prepare() -> Any:
        df = raw.sort_values([*keys, "ts"], kind="stable").reset_index(drop=True)
        df["rate_8h"] = df["rate"] * 8.0 / df["interval_h"]
        return df

    def statistics(df: Any) -> Checksum:
        # 7-day z-score and 30-day percentile on time windows (t - w, t].
        roll = df.groupby(keys, sort=False).rolling("168h", on="ts")["rate_8h"]
        mean = roll.mean().to_numpy()
        std = roll.std().to_numpy()
        cnt = roll.count().to_numpy()
        flat = std <= np.abs(mean) * 1e-9 + 1e-15
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(flat | (cnt < 3), np.nan, (df["rate_8h"].to_numpy() - mean) / std)
        pct = (
            df.groupby(keys, sort=False)
            .rolling("720h", on="ts")["rate_8h"]
            .rank(method="max", pct=True)
            .to_numpy()
        )
        return {"zscore": float(np.nansum(z)), "percentile": float(np.nansum(pct))}

    def rest(shared: Any) -> Checksum:
        df = shared.copy(deep=False)  # new columns stay local to this group
        annualized = df["rate"] * 8760.0 / df["interval_h"]
        df["asset"] = df["instrument"].str.split("-").str[0]
        # OI-weighted aggregate per (asset, ts).
        df["_wr"] = df["oi_usd"] * df["rate_8h"]
        g = df.groupby(["asset", "ts"], sort=True)[["_wr", "oi_usd"]].sum()
        agg = g["_wr"] / g["oi_usd"]
        # Extreme persistence: runs of same-side extremes, broken by gaps > 1.5 x interval.
        side = np.where(df["rate_8h"] >= 0.0005, 1, np.where(df["rate_8h"] <= -0.0005, -1, 0))
        df["_side"] = side
        grp = df.groupby(keys, sort=False)
        gap_h = grp["ts"].diff().dt.total_seconds() / 3600.0
        new_run = (df["_side"] != grp["_side"].shift(1)) | (gap_h > 1.5 * df["interval_h"])
        df["_run"] = new_run.astype(np.int64).groupby([df["venue"], df["instrument"]]).cumsum()
        streak = df.groupby([*keys, "_run"], sort=False)["interval_h"].cumsum()
        streak = np.where(side != 0, streak, 0.0)
        # Acceleration.
        r = df["rate_8h"]
        change = r - grp["rate_8h"].shift(1)
        df["_change"] = change
        accel = change - df.groupby(keys, sort=False)["_change"].shift(1)
        away = ((change > 0) & (r > 0)) | ((change < 0) & (r < 0))
        strong = float((away & (change.abs() >= 0.0003 - 1e-12)).sum())

        # Lagged values as of t - lag with a 2h tolerance (merge_asof by series).
        def as_of(cols: list[str], lag_h: float, suffix: str) -> Any:
            left = df[[*keys, "ts"]].copy()
            left["_t"] = left["ts"] - pd.Timedelta(hours=lag_h)
            left["_i"] = np.arange(len(left))
            right = df[[*keys, "ts", *cols]].rename(columns={c: c + suffix for c in cols})
            right = right.rename(columns={"ts": "_t"})
            out = pd.merge_asof(
                left.sort_values("_t"),
                right.sort_values("_t"),
                on="_t",
                by=keys,
                tolerance=pd.Timedelta(hours=2),
            )
            return out.sort_values("_i").reset_index(drop=True)

        d24 = as_of(["oi_usd", "close_px"], 24.0, "_24")
        oi_ch = df["oi_usd"].to_numpy() / d24["oi_usd_24"].to_numpy() - 1
        px_ch = df["close_px"].to_numpy() / d24["close_px_24"].to_numpy() - 1
        df["_oich"] = oi_ch
        avg = df.groupby(keys, sort=False).rolling("168h", on="ts")["_oich"].mean().to_numpy()
        ratio = np.where(avg > 0, oi_ch / np.where(avg > 0, avg, 1.0), np.nan)
        new_longs = float(((px_ch > 0) & (oi_ch > 0)).sum())
        d72 = as_of(["oi_usd", "close_px"], 72.0, "_72")
        pc = df["close_px"].to_numpy() / d72["close_px_72"].to_numpy() - 1
        oc = df["oi_usd"].to_numpy() / d72["oi_usd_72"].to_numpy() - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            div_ratio = np.where(pc != 0, -oc / np.abs(pc), np.nan)
        return {
            "annualized": float(annualized.sum()),
            "agg_rate_8h": float(agg.sum()),
            "streak_h": float(np.sum(streak)),
            "accel_8h": float(np.nansum(accel)),
            "strong": strong,
            "oi_change_24h": float(np.nansum(oi_ch)),
            "roc_ratio": float(np.nansum(ratio)),
            "new_longs": new_longs,
            "divergence_ratio": float(np.nansum(div_ratio)),
        }

    return read_s, len(raw), prepare, [statistics, rest]


def _warm_up_kernels() -> None:
    """Load (or on a first run, compile and cache) the compiled kernels on a tiny input."""
    from datetime import UTC, datetime

    import polars as pl

    from perpscope.analytics._rolling import add_rolling_percentile

    tiny = pl.DataFrame(
        {"_sid": [0, 0], "ts": [datetime(2024, 1, 1, tzinfo=UTC)] * 2, "v": [1.0, 2.0]}
    )
    add_rolling_percentile(tiny, "v", "p", window_h=1.0)


def run_side(name: str, path: Path) -> dict[str, Any]:
    """Read the file, then compute every metric, one group after the other."""
    if name == "polars":
        read_s, rows, groups = polars_groups(path)
        _warm_up_kernels()
        prepare: Callable[[], Any] = lambda: None  # noqa: E731 - each function prepares itself
        calls = [lambda _shared, g=g: g() for g in groups]
    else:
        read_s, rows, prepare, pandas_calls = pandas_groups(path)
        calls = list(pandas_calls)
    t0 = time.perf_counter()
    shared = prepare()
    checksum: Checksum = {}
    for call in calls:
        checksum.update(call(shared))
    compute_s = time.perf_counter() - t0
    return {"read_s": read_s, "compute_s": compute_s, "rows": rows, "checksum": checksum}


def _side(name: str, path: Path) -> None:
    result = run_side(name, path)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(result))


def _spawn(name: str, path: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--side", name, "--data", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _agree(a: Checksum, b: Checksum) -> bool:
    return a.keys() == b.keys() and all(
        abs(a[k] - b[k]) <= 1e-6 * max(1.0, abs(a[k]), abs(b[k])) for k in a
    )


def main() -> None:
    """Generate the data, run each side in its own subprocess, print the comparison."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--years", type=float, default=5.0)
    parser.add_argument("--side", choices=["polars", "pandas"])
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    if args.side:
        _side(args.side, args.data)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "panel.parquet"
        rows = generate(path, args.years)
        n_inst = N_ASSETS * len(VENUES)
        print(f"data: {rows:,} rows ({n_inst} instruments x {args.years} years, hourly)")
        ours = _spawn("polars", path)
        peer = _spawn("pandas", path)
    for name, r in (("perpscope (polars)", ours), ("pandas", peer)):
        print(
            f"{name:20s} compute {r['compute_s']:6.2f} s  read {r['read_s']:5.2f} s  "
            f"peak RSS {r['peak_rss_mib']:6.0f} MiB"
        )
    same = _agree(ours["checksum"], peer["checksum"])
    print(f"checksums agree: {same}")
    if not same:
        for k in sorted(set(ours["checksum"]) | set(peer["checksum"])):
            print(f"  {k}: ours {ours['checksum'].get(k)!r} pandas {peer['checksum'].get(k)!r}")
    summary = {
        "bench": "analytics",
        "rows": rows,
        "ours_s": round(ours["compute_s"], 3),
        "pandas_s": round(peer["compute_s"], 3),
        "ours_read_s": round(ours["read_s"], 3),
        "pandas_read_s": round(peer["read_s"], 3),
        "ours_peak_rss_mib": round(ours["peak_rss_mib"], 1),
        "pandas_peak_rss_mib": round(peer["peak_rss_mib"], 1),
        "checksums_agree": same,
        "speedup": round(peer["compute_s"] / ours["compute_s"], 2),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
