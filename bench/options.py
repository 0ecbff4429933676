"""Benchmark: max pain and put/call ratios of a 5,000-instrument, 40-expiry chain vs pandas.

Both sides compute the same outputs from the same generated chain, in the same run: per expiry the
put/call OI and volume ratios, the aggregate ratios, and max pain (the listed strike minimising
the total payout to holders, ties to the strike nearest spot). pandas uses its best idioms: no
Python loop over rows or expiries, vectorised groupby aggregations, and the same O(n log n)
running-sum payout (groupby + cumsum) as perpscope. A second pandas figure, the strike-by-option
cross merge that most max-pain write-ups use, is printed for reference. The results are checked
equal before timing.

Run: ``.venv/bin/python bench/options.py`` (needs the ``bench`` extra: pandas). The last line is
one JSON object: ``ours_ms`` and ``pandas_ms`` are medians over warm blocks of calls (the two
sides take turns, three rounds), ``speedup`` = pandas_ms / ours_ms.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from perpscope.analytics.options import max_pain, put_call_ratios, put_call_totals

N_INSTRUMENTS = 5_000
N_EXPIRIES = 40
SPOT = 50_000.0
REPEATS = 50


def make_chain(seed: int = 7) -> pl.DataFrame:
    """A Deribit-like chain: 40 expiries x 125 options (a call and a put per strike)."""
    rng = np.random.default_rng(seed)
    t0 = datetime(2024, 1, 8, 12, tzinfo=UTC)
    per_expiry = N_INSTRUMENTS // N_EXPIRIES
    rows: dict[str, list[Any]] = {k: [] for k in ("expiry_ts", "strike_px", "option_type")}
    for e in range(N_EXPIRIES):
        expiry = t0 + timedelta(days=1 + 7 * e, hours=-4)
        strikes = SPOT * np.exp(np.linspace(-1.0, 1.0, (per_expiry + 1) // 2))
        strikes = np.round(strikes / 500) * 500
        strikes = np.unique(strikes)
        legs = [(k, t) for k in strikes for t in ("C", "P")][:per_expiry]
        for k, t in legs:
            rows["expiry_ts"].append(expiry)
            rows["strike_px"].append(float(k))
            rows["option_type"].append(t)
    n = len(rows["strike_px"])
    return pl.DataFrame(
        {
            **rows,
            "open_interest_contracts": np.round(rng.lognormal(4, 1.5, n), 1),
            "volume_contracts": np.round(rng.lognormal(1, 1.5, n) * (rng.random(n) < 0.6), 1),
            "contract_size_base": np.ones(n),
        }
    ).with_columns(pl.col("expiry_ts").dt.cast_time_unit("us").dt.replace_time_zone("UTC"))


def ours(chain: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, float | None]:
    """perpscope: max pain, per-expiry ratios and the aggregate OI ratio."""
    return max_pain(chain, SPOT), put_call_ratios(chain), put_call_totals(chain).pcr_oi


def pandas_cumsum(df: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame, float]:
    """pandas, best idioms: pivot_table-free groupby sums and a grouped running-sum payout."""
    oi = df["open_interest_contracts"] * df["contract_size_base"]
    is_call = df["option_type"] == "C"
    by = (
        df.assign(c=oi.where(is_call, 0.0), p=oi.where(~is_call, 0.0))
        .groupby(["expiry_ts", "strike_px"], sort=True)[["c", "p"]]
        .sum()
        .reset_index()
    )
    g = by.groupby("expiry_ts", sort=False)
    k = by["strike_px"]
    ck = by["c"] * k
    call_pay = k * g["c"].cumsum() - ck.groupby(by["expiry_ts"]).cumsum()
    rev = by.iloc[::-1]
    rg = rev.groupby("expiry_ts", sort=False)
    put_pay = (
        (rev["p"] * rev["strike_px"]).groupby(rev["expiry_ts"]).cumsum()
        - rev["strike_px"] * rg["p"].cumsum()
    ).iloc[::-1]
    by["pay"] = call_pay.clip(lower=0) + put_pay.clip(lower=0)
    by["dist"] = (by["strike_px"] - SPOT).abs()
    by["min"] = by.groupby("expiry_ts", sort=False)["pay"].transform("min")
    best = (
        by[by["pay"] <= by["min"] + 1e-12 * by["min"].abs()]
        .sort_values(["expiry_ts", "dist", "strike_px"])
        .drop_duplicates("expiry_ts")
        .set_index("expiry_ts")["strike_px"]
    )
    put = ~is_call
    sums = (
        df.assign(
            put_oi=df["open_interest_contracts"].where(put, 0.0),
            call_oi=df["open_interest_contracts"].where(is_call, 0.0),
            put_vol=df["volume_contracts"].where(put, 0.0),
            call_vol=df["volume_contracts"].where(is_call, 0.0),
        )
        .groupby("expiry_ts", sort=True)[["put_oi", "call_oi", "put_vol", "call_vol"]]
        .sum()
    )
    sums["pcr_oi"] = sums["put_oi"] / sums["call_oi"].where(sums["call_oi"] > 0)
    sums["pcr_volume"] = sums["put_vol"] / sums["call_vol"].where(sums["call_vol"] > 0)
    total = sums["put_oi"].sum() / sums["call_oi"].sum()
    return best, sums, float(total)


def pandas_cross(df: pd.DataFrame) -> pd.Series:
    """pandas, the common write-up: every listed strike against every option of its expiry."""
    strikes = df[["expiry_ts", "strike_px"]].drop_duplicates().rename(columns={"strike_px": "s"})
    grid = df.merge(strikes, on="expiry_ts")
    diff = grid["s"] - grid["strike_px"]
    intrinsic = np.where(grid["option_type"] == "C", diff.clip(lower=0), (-diff).clip(lower=0))
    grid["pay"] = intrinsic * grid["open_interest_contracts"] * grid["contract_size_base"]
    pay = grid.groupby(["expiry_ts", "s"], sort=True)["pay"].sum().reset_index()
    pay["min"] = pay.groupby("expiry_ts")["pay"].transform("min")
    pay["dist"] = (pay["s"] - SPOT).abs()
    return (
        pay[pay["pay"] <= pay["min"] + 1e-12 * pay["min"].abs()]
        .sort_values(["expiry_ts", "dist", "s"])
        .drop_duplicates("expiry_ts")
        .set_index("expiry_ts")["s"]
    )


def _timed_ms(
    fns: dict[str, Callable[[], object]], repeats: int, rounds: int = 3
) -> dict[str, float]:
    """Median call time of each function: warm blocks of ``repeats`` calls, the sides taking
    turns for ``rounds`` rounds so both see the same machine load."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            fn()  # warm the block
            for _ in range(repeats):
                t = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t) * 1e3)
    return {name: statistics.median(v) for name, v in times.items()}


def main() -> None:
    chain = make_chain()
    df = chain.to_pandas()
    mp, ratios, total = ours(chain)
    best, sums, p_total = pandas_cumsum(df)
    cross = pandas_cross(df)
    ours_mp = mp["max_pain_px"].to_numpy()
    if not (np.array_equal(ours_mp, best.to_numpy()) and np.array_equal(ours_mp, cross.to_numpy())):
        sys.exit("max pain differs between perpscope and pandas")
    if not np.allclose(ratios["pcr_oi"].to_numpy(), sums["pcr_oi"].to_numpy(), rtol=1e-12):
        sys.exit("put/call ratios differ between perpscope and pandas")
    if total is None or abs(total - p_total) > 1e-12 * p_total:
        sys.exit("aggregate put/call ratio differs")
    timed = _timed_ms({"ours": lambda: ours(chain), "pandas": lambda: pandas_cumsum(df)}, REPEATS)
    ours_ms, pandas_ms = timed["ours"], timed["pandas"]
    cross = {"cross": lambda: (pandas_cross(df), pandas_cumsum(df)[1:])}
    cross_ms = _timed_ms(cross, 10, rounds=1)["cross"]
    print(f"chain: {chain.height} instruments, {chain['expiry_ts'].n_unique()} expiries")
    print(f"perpscope (polars)      {ours_ms:8.2f} ms")
    print(f"pandas (groupby cumsum) {pandas_ms:8.2f} ms")
    print(f"pandas (cross merge)    {cross_ms:8.2f} ms")
    result = {
        "bench": "options_maxpain_pcr",
        "instruments": chain.height,
        "expiries": int(chain["expiry_ts"].n_unique()),
        "ours_ms": round(ours_ms, 3),
        "pandas_ms": round(pandas_ms, 3),
        "pandas_cross_merge_ms": round(cross_ms, 3),
        "speedup": round(pandas_ms / ours_ms, 2),
        "speedup_vs_cross_merge": round(cross_ms / ours_ms, 2),
        "target_ms": 50,
        "met_target_ms": ours_ms < 50,
        "met_speedup_10": pandas_ms / ours_ms >= 10,
        "polars": pl.__version__,
        "pandas": pd.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
