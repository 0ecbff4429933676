"""Score the liquidation-heatmap estimator against the simulator's ground truth.

One command regenerates the scores table of ``docs/liquidation-heatmap.md``::

    python tools/score_heatmap.py            # prints the table and rewrites it in the doc
    python tools/score_heatmap.py --no-write --json

For every preset and seed it runs the simulator (``perpscope.venues.sim``), and for every
simulated perpetual and every evaluation time (each ``--every-h`` hours after ``--warmup-days``)
it compares, within +-20% of price in 0.5% bins:

* the ESTIMATED map (:func:`perpscope.analytics.liquidations.estimate_heatmap`, DEFAULT
  parameters, fed only what a venue publishes: candles, mark candles, OI, taker volume and the
  tier table) with the truth (every open trader position at its true liquidation price);
* the naive baseline (all OI at the current price, half long and half short, evenly over
  5/10/20/25/50/100x at ``price x (1 -+ 1/L)``) with the same truth.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from perpscope.analytics.liquidations import (
    HeatmapParams,
    assemble_bars,
    estimate_heatmap,
    naive_map,
    score_map,
    tiers_from_table,
    truth_map,
)
from perpscope.analytics.liquidations.scoring import open_positions
from perpscope.venues.sim import PRESETS, SimConfig, run_simulation

DOC = Path(__file__).resolve().parent.parent / "docs" / "liquidation-heatmap.md"
BEGIN, END = "<!-- scores:begin -->", "<!-- scores:end -->"


def _series(tables: dict[str, pl.DataFrame], venue: str, inst: str) -> dict[str, pl.DataFrame]:
    def sel(name: str) -> pl.DataFrame:
        t = tables[name]
        return t.filter((pl.col("venue") == venue) & (pl.col("instrument") == inst))

    ohlcv = sel("ohlcv").filter(pl.col("timeframe") == "1h")
    return {
        "trade": ohlcv.filter(pl.col("kind") == "trade"),
        "mark": ohlcv.filter(pl.col("kind") == "mark"),
        "oi": sel("open_interest"),
        "tiers": sel("leverage_tiers"),
        "positions": sel("sim_positions"),
    }


def _low_leverage_share(positions: pl.DataFrame, at: datetime) -> float:
    """Share of the open trader notional at ``at`` held at 10x or less (the truth's mix)."""
    open_ = open_positions(positions, at)
    total = float(open_["notional_usd"].sum())
    low = float(open_.filter(pl.col("leverage") <= 10.0)["notional_usd"].sum())
    return low / total if total > 0 else float("nan")


def score_run(
    preset: str, seed: int, days: int, every_h: int, warmup_days: int, params: HeatmapParams
) -> list[dict[str, object]]:
    """Scores of every market and evaluation time of one simulator run."""
    run = run_simulation(
        SimConfig(
            seed=seed,
            days=days,
            scenario=preset,
            assets=("BTC", "ETH"),
            venues=("sim1",),
            options=False,
        )  # fmt: skip
    )
    tables = run.tables
    markets = tables["open_interest"].select("venue", "instrument").unique().sort("instrument")
    rows: list[dict[str, object]] = []
    for venue, inst in markets.iter_rows():
        s = _series(tables, venue, inst)
        bars = assemble_bars(s["trade"], s["oi"], mark=s["mark"])
        tiers = tiers_from_table(s["tiers"])
        start = bars["ts"].min()
        assert start is not None
        n = bars.height
        for h in range(warmup_days * 24, n + 1, every_h):
            at = start + timedelta(hours=h)  # end of bar h - 1
            upto = bars.head(h)
            est = estimate_heatmap(upto, params, tiers=tiers)
            truth = truth_map(s["positions"], at)
            low_lev = _low_leverage_share(s["positions"], at)
            oi_usd = float(upto["oi_base"][-1]) * est.price
            mine = score_map(est.levels(), truth, est.price)
            naive = score_map(naive_map(oi_usd, est.price), truth, est.price)
            rows.append(
                {
                    "preset": preset, "seed": seed, "instrument": inst, "at": at.isoformat(),
                    "spearman": mine.spearman, "hit_rate": mine.hit_rate,
                    "naive_spearman": naive.spearman, "naive_hit_rate": naive.hit_rate,
                    "truth_usd": float((truth["long_usd"] + truth["short_usd"]).sum()),
                    "truth_low_lev": low_lev,
                }
            )  # fmt: skip
    return rows


def _mean(values: list[float]) -> float:
    clean = [v for v in values if v == v]
    return statistics.fmean(clean) if clean else float("nan")


def summarise(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Mean scores per preset and overall."""
    frame = pl.DataFrame(rows)
    out = []
    groups = [
        (p, frame.filter(pl.col("preset") == p))
        for p in frame["preset"].unique(maintain_order=True)
    ]
    for name, g in [*groups, ("all", frame)]:
        est = _mean(g["spearman"].to_list())
        base = _mean(g["naive_spearman"].to_list())
        out.append(
            {
                "preset": name,
                "maps": g.height,
                "seeds": g["seed"].n_unique(),
                "spearman": est,
                "naive_spearman": base,
                "gain": est - base,
                "hit_rate": _mean(g["hit_rate"].to_list()),
                "naive_hit_rate": _mean(g["naive_hit_rate"].to_list()),
                "truth_low_lev": _mean(g["truth_low_lev"].to_list()),
            }
        )
    return out


def table(summary: list[dict[str, object]], args: argparse.Namespace, params: HeatmapParams) -> str:
    """The markdown table written into the doc."""
    w = [x / sum(params.weights) for x in params.weights]
    low = sum(x for x, lev in zip(w, params.leverages, strict=True) if lev <= 10.0)
    lines = [
        f"Simulator runs: presets {', '.join(args.presets)}; seeds "
        f"{', '.join(map(str, args.seeds))}; {args.days} days each; BTC and ETH perpetuals on "
        f"sim1; maps every {args.every_h} h after a {args.warmup_days}-day warm-up. "
        f"Estimator: DEFAULT parameters (frozen before scoring; {low:.0%} of new notional at "
        "10x or less). "
        "Last column: the truth's share of open notional at 10x or less.",
        "",
        "| preset | maps | Spearman (estimate) | Spearman (naive) | gain | top-5 hit rate "
        "(estimate) | top-5 hit rate (naive) | truth at <= 10x |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['preset']} | {r['maps']} | {r['spearman']:.3f} | {r['naive_spearman']:.3f} | "
        f"{r['gain']:+.3f} | {r['hit_rate']:.0%} | {r['naive_hit_rate']:.0%} | "
        f"{r['truth_low_lev']:.0%} |"
        for r in summary
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the scoring; print (and by default write) the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=list(PRESETS))
    # seeds 4-6: held out (the diagnosis that set the defaults looked at seeds 1 and 2)
    ap.add_argument("--seeds", nargs="+", type=int, default=[4, 5, 6])
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--every-h", type=int, default=24)
    ap.add_argument("--warmup-days", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="do not rewrite the doc")
    ap.add_argument("--json", action="store_true", help="print every map's scores as JSON")
    args = ap.parse_args(argv)
    params = HeatmapParams()
    rows: list[dict[str, object]] = []
    for preset in args.presets:
        for seed in args.seeds:
            rows += score_run(preset, seed, args.days, args.every_h, args.warmup_days, params)
            print(f"scored {preset} seed {seed}", file=sys.stderr)
    summary = summarise(rows)
    text = table(summary, args, params)
    print(text)
    if args.json:
        print(json.dumps(rows))
    if not args.no_write:
        doc = DOC.read_text()
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
