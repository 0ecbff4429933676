"""Benchmark: perpscope's backtest engine against vectorbt, same signals and bars, same process.

Data: synthetic hourly bars (geometric random walk with fat-tailed shocks, fixed seed) and an
8-hourly funding series (AR(1) around +0.01%, with extremes beyond +-0.05%), 5 years by default;
20 such instruments (different seeds) for the multi-instrument sweep.

Signals: the funding fade (``perpscope.backtest.strategies.funding_fade``) at 10 thresholds;
stops at 10 levels and a single take-profit at 10 R multiples: 1,000 combinations. Both engines
get the same entry/exit arrays, enter at the next bar's open, check the stop and the target
inside each bar against high/low, and pay the same fee and slippage. perpscope closes the whole
position at its one target (scale-out 0/0/100%) and sizes by 1% risk; vectorbt invests a fixed
cash value per trade (its stop/target logic does not size by risk).

Funding: perpscope pays each settlement as a cash flow on the position's notional. vectorbt has
no funding, so it gets funding **as a price adjustment** for comparability: its OHLC are
multiplied by ``prod(1 - rate)`` over the settlements so far (a long loses, a short gains, the
rate times the price at each settlement).

Timed: one 5-year hourly backtest (median of repeated runs; perpscope: ``run_backtest``;
vectorbt: ``Portfolio.from_signals`` with one column), the 1,000-combination sweep on one
instrument (perpscope: ``engine.sweep``, numba-parallel over combinations; vectorbt: 10 calls of
100 columns, which keeps its memory bounded), and the sweep on 20 instruments (both: one sweep
per instrument; vectorbt's takes about a minute per instrument here, so by default it sweeps 2 of
the 20 and its time is scaled linearly, which the output says; ``--vbt-instruments 20`` times all
of them). Compilation is warmed up (and cached) before timing on both sides.

Run: ``python bench/backtest.py`` (``--years 1 --instruments 3`` for a quick run). The last line
is one JSON object; ``speedup`` = vectorbt time / perpscope time of the 1,000-combination sweep on
one instrument.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from perpscope.backtest.engine import run_backtest, sweep
from perpscope.backtest.strategies.funding_fade import FundingFadeParams, funding_fade
from perpscope.backtest.types import EngineConfig, Market, Signals

HOUR_NS = 3_600_000_000_000
THRESHOLDS = np.linspace(0.0002, 0.0011, 10)
STOPS = np.linspace(0.005, 0.05, 10)
TARGETS_R = np.linspace(0.5, 5.0, 10)
FEE, SLIP = 0.0005, 0.0002
CONFIG = EngineConfig(
    taker_fee=FEE, maker_fee=FEE, slippage=SLIP, cascade_slippage=0.0,
    scale_out=(0.0, 0.0, 1.0), breakeven_after_t1=False,
)  # fmt: skip


def make_market(seed: int, years: float) -> Market:
    """Synthetic hourly bars and 8-hourly funding."""
    rng = np.random.default_rng(seed)
    n = int(years * 365.25 * 24)
    ret = rng.standard_t(4, n) * 0.006
    c = 20_000.0 * np.exp(np.cumsum(ret))
    o = np.r_[20_000.0, c[:-1]]
    h = np.maximum(o, c) * (1 + rng.exponential(0.003, n))
    lo = np.minimum(o, c) * (1 - rng.exponential(0.003, n))
    ts = np.arange(n, dtype=np.int64) * HOUR_NS
    fts = ts[::8].copy()
    rate = np.empty(len(fts))
    x = 0.0001
    for k in range(len(fts)):
        x = 0.0001 + 0.9 * (x - 0.0001) + rng.normal(0, 0.00015)
        rate[k] = x
    return Market.from_ohlc(ts, o, h, lo, c, fts, rate, np.full(len(fts), 8.0))


def _params(threshold: float) -> FundingFadeParams:
    """The fade's entry at ``threshold``, re-entering while the streak holds, closing when funding
    normalises (side-agnostic exits, which the vectorbt comparison needs)."""
    return FundingFadeParams(
        threshold=threshold, min_periods=2, entry_window=0, stop_frac=0.02,
        final_target="r", exit_below=0.0001,
    )  # fmt: skip


def signal_rows(market: Market) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    """Entry and exit rows of the funding fade at each threshold."""
    sigs = [funding_fade(market, _params(t)) for t in THRESHOLDS]
    return np.stack([s.entry for s in sigs]), np.stack([s.exit for s in sigs])


def combos() -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[type-arg]
    idx, stop, tgt = np.meshgrid(np.arange(10), STOPS, TARGETS_R, indexing="ij")
    targets = np.full((idx.size, 3), np.nan)
    targets[:, 2] = tgt.ravel()
    return idx.ravel().astype(np.int64), stop.ravel(), targets


def ours_single(market: Market, entries: np.ndarray, exits: np.ndarray) -> Callable[[], Any]:  # type: ignore[type-arg]
    n = len(market.ts)
    tgt = np.full((n, 3), np.nan)
    tgt[:, 2] = 2.0
    sig = Signals(entries[3], exits[3], np.full(n, 0.02), tgt, np.full(n, np.nan))
    return lambda: run_backtest(market, sig, CONFIG)


def ours_sweep(market: Market, entries: np.ndarray, exits: np.ndarray) -> Callable[[], Any]:  # type: ignore[type-arg]
    idx, stop, targets = combos()
    return lambda: sweep(market, entries, exits, idx, stop, targets, CONFIG)


def vbt_inputs(market: Market) -> Any:
    import pandas as pd

    factor = np.ones(len(market.ts))
    k = np.searchsorted(market.ts, market.funding_ts)
    adj = np.zeros(len(market.ts))
    np.add.at(adj, k[k < len(adj)], np.log1p(-market.funding_rate[k < len(adj)]))
    factor = np.exp(np.cumsum(adj))
    index = pd.to_datetime(market.ts, utc=True)
    return {
        name: pd.Series(arr * factor, index=index)
        for name, arr in (
            ("open", market.o),
            ("high", market.h),
            ("low", market.l),
            ("close", market.c),
        )
    }


def vbt_run(
    px: Any, entries: np.ndarray, exits: np.ndarray, cols: list[tuple[int, float, float]]
) -> Any:  # type: ignore[type-arg]
    """One vectorbt call over ``cols`` = (signal row, stop, target R) combinations."""
    import pandas as pd
    import vectorbt as vbt

    idx = [c[0] for c in cols]
    # signals decided at a bar's close are executed at the next bar's open
    ent = np.zeros((len(px["close"]), len(cols)), bool)
    ent[1:] = entries[idx].T[:-1] > 0
    sh = np.zeros_like(ent)
    sh[1:] = entries[idx].T[:-1] < 0
    ex = np.zeros_like(ent)
    ex[1:] = exits[idx].T[:-1]
    frame = lambda a: pd.DataFrame(a, index=px["close"].index)  # noqa: E731
    stop = np.array([c[1] for c in cols])
    tp = np.array([c[1] * c[2] for c in cols])
    pf = vbt.Portfolio.from_signals(
        px["close"], entries=frame(ent), exits=frame(ex), short_entries=frame(sh),
        short_exits=frame(ex), price=px["open"], open=px["open"], high=px["high"],
        low=px["low"], sl_stop=stop, tp_stop=tp, fees=FEE, slippage=SLIP, size=1_000.0,
        size_type="value", init_cash=CONFIG.initial_equity, freq="1h",
    )  # fmt: skip
    return pf.final_value().to_numpy(), pf.trades.count().to_numpy()


def vbt_sweep(px: Any, entries: np.ndarray, exits: np.ndarray) -> Callable[[], Any]:  # type: ignore[type-arg]
    idx, stop, targets = combos()
    all_cols = list(zip(idx.tolist(), stop.tolist(), targets[:, 2].tolist(), strict=True))

    def go() -> Any:
        outs = [vbt_run(px, entries, exits, all_cols[k : k + 100]) for k in range(0, 1000, 100)]
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])

    return go


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--years", type=float, default=5.0)
    ap.add_argument("--instruments", type=int, default=20)
    ap.add_argument(
        "--vbt-instruments",
        type=int,
        default=2,
        help="instruments vectorbt sweeps for the multi-instrument figure (scaled linearly)",
    )
    args = ap.parse_args()

    markets = [make_market(seed, args.years) for seed in range(args.instruments)]
    sig = [signal_rows(m) for m in markets]
    pxs = [vbt_inputs(m) for m in markets]
    m0, (e0, x0), px0 = markets[0], sig[0], pxs[0]
    print(f"{len(m0.ts):,} hourly bars x {args.instruments} instruments; 1,000 combinations")

    # warm-up: compile (cached on disk) both sides on a short slice
    short = make_market(99, 0.05)
    se, sx = signal_rows(short)
    ours_single(short, se, sx)()
    ours_sweep(short, se, sx)()
    vbt_run(vbt_inputs(short), se, sx, [(3, 0.02, 2.0)])
    vbt_run(vbt_inputs(short), se, sx, [(k % 10, 0.01, 2.0) for k in range(100)])

    t_ours1, run1 = timed(ours_single(m0, e0, x0), repeat=50)
    t_vbt1, v1 = timed(lambda: vbt_run(px0, e0, x0, [(3, 0.02, 2.0)]), repeat=5)
    print(
        f"single backtest   perpscope {t_ours1 * 1e3:8.2f} ms   vectorbt {t_vbt1 * 1e3:8.2f} ms"
        f"   ratio {t_vbt1 / t_ours1:6.1f}x   trades {len(run1.trades)} vs {int(v1[1][0])}"
    )

    t_ours_s, (f_ours, n_ours) = timed(ours_sweep(m0, e0, x0), repeat=3)
    t_vbt_s, (f_vbt, n_vbt) = timed(vbt_sweep(px0, e0, x0))
    print(
        f"sweep 1 x 1,000   perpscope {t_ours_s:8.3f} s    vectorbt {t_vbt_s:8.3f} s"
        f"    ratio {t_vbt_s / t_ours_s:6.1f}x   trades {int(n_ours.sum())} vs {int(n_vbt.sum())}"
    )

    t_ours_m, _ = timed(
        lambda: [ours_sweep(m, e, x)() for m, (e, x) in zip(markets, sig, strict=True)]
    )
    k_vbt = max(1, min(args.vbt_instruments, args.instruments))
    t_vbt_k, _ = timed(
        lambda: [vbt_sweep(p, e, x)() for p, (e, x) in zip(pxs[:k_vbt], sig[:k_vbt], strict=True)]
    )
    t_vbt_m = t_vbt_k * args.instruments / k_vbt
    if k_vbt < args.instruments:
        print(
            f"(vectorbt swept {k_vbt} of the {args.instruments} instruments in {t_vbt_k:.1f} s; "
            "its figure below is scaled linearly, as each instrument is an independent sweep)"
        )
    print(
        f"sweep {args.instruments} x 1,000  perpscope {t_ours_m:8.3f} s"
        f"    vectorbt {t_vbt_m:8.3f} s    ratio {t_vbt_m / t_ours_m:6.1f}x"
    )
    print(
        "vectorbt gets funding as a price adjustment (no funding engine); perpscope pays it as "
        "cash flows at each settlement"
    )
    print(
        json.dumps(
            {
                "bars": len(m0.ts),
                "instruments": args.instruments,
                "combinations": 1000,
                "single_ms": round(t_ours1 * 1e3, 3),
                "single_vectorbt_ms": round(t_vbt1 * 1e3, 3),
                "sweep_1_s": round(t_ours_s, 4),
                "sweep_1_vectorbt_s": round(t_vbt_s, 4),
                f"sweep_{args.instruments}_s": round(t_ours_m, 4),
                f"sweep_{args.instruments}_vectorbt_s": round(t_vbt_m, 4),
                "speedup_single": round(t_vbt1 / t_ours1, 2),
                f"speedup_{args.instruments}": round(t_vbt_m / t_ours_m, 2),
                "speedup": round(t_vbt_s / t_ours_s, 2),
                "vectorbt_funding": "price adjustment",
                "vectorbt_instruments_timed": k_vbt,
            }
        )
    )


if __name__ == "__main__":
    main()
