"""Confusion table of the scenario classifier on the simulator's presets.

For each preset and seed, build a demo store (or reuse one in ``--workdir``), read the run's
span from its funding table, and classify every asset at 70% of the run (the build-up; each
preset's event starts at 75%). Prints a markdown table (rows: preset, columns: reading) and, as
its last line, one JSON object with the counts.

    python tools/signals_confusion.py --workdir /tmp/conf --seeds 101,102
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from perpscope.services.demo import build_demo
from perpscope.services.signals import scenario_report
from perpscope.signals import SCENARIOS
from perpscope.store.lake import Lake
from perpscope.venues.sim import SCENARIOS as PRESETS

EXPECTED = {
    "long-squeeze": "long_squeeze",
    "short-squeeze": "short_squeeze",
    "vacuum": "vacuum",
    "healthy-trend": "healthy_trend",
    "exhaustion": "exhaustion",
    "pre-event-build": "pre_event_build",
}


def main() -> None:
    """Build or reuse the stores, classify, print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--seeds", default="101,102")
    ap.add_argument("--frac", type=float, default=0.70)
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    presets = [p for p in PRESETS if p in EXPECTED]
    skipped = [p for p in PRESETS if p not in EXPECTED]
    if skipped:
        print(f"presets without a scenario (not classified): {', '.join(skipped)}")
    counts: dict[str, Counter[str]] = {p: Counter() for p in presets}
    rows = []
    for preset in presets:
        for seed in seeds:
            path = args.workdir / f"h-{preset}-{seed}"
            if not (path / "funding").exists():
                build_demo(path, seed=seed, days=args.days, scenario=preset)
            lake = Lake(path)
            ts = lake.read("funding", columns=["ts"])["ts"]
            start, end = ts.min(), ts.max()
            at = start + (end - start) * args.frac  # type: ignore[operator]
            at = at.replace(minute=0, second=0, microsecond=0)
            for asset in ("BTC", "ETH", "SOL"):
                r = scenario_report(lake, asset, at)
                counts[preset][r.scenario] += 1
                rows.append((preset, seed, asset, r.scenario, r.confidence))
    cols = [s for s in SCENARIOS]
    print("| preset (expected) | " + " | ".join(cols) + " | hit rate |")
    print("|---|" + "---|" * (len(cols) + 1))
    for p in presets:
        n = sum(counts[p].values())
        hit = counts[p][EXPECTED[p]] / n if n else 0.0
        cells = " | ".join(str(counts[p][c]) for c in cols)
        print(f"| {p} ({EXPECTED[p]}) | {cells} | {hit:.0%} |")
    print()
    for row in rows:
        print(f"- {row[0]} seed {row[1]} {row[2]}: {row[3]} ({row[4]:.2f})")
    print(
        json.dumps(
            {"seeds": seeds, "frac": args.frac, "counts": {p: dict(c) for p, c in counts.items()}}
        )
    )


if __name__ == "__main__":
    main()
