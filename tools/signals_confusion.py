"""Confusion table of the scenario classifier on the simulator's presets.

For each preset and seed, build a demo store (or reuse one in ``--workdir``), read the run's
span from its funding table, and classify every asset at 70% of the run (the build-up; each
preset's event starts at 75%). Every preset is a row: the six with a scenario of their own
(``long-squeeze`` -> ``long_squeeze`` ...) and ``default`` and ``basis-bull``, which have none
(expected ``none``). Prints a markdown table (rows: preset, columns: reading), then each reading
with the classifier's inputs and the setups that fired at the same time, and as its last line
one JSON object with the counts.

    python tools/signals_confusion.py --workdir /tmp/conf --seeds 101,102,103
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from perpscope.errors import PerpscopeError
from perpscope.services.demo import build_demo
from perpscope.services.signals import asset_readings, load_asset
from perpscope.signals import SCENARIOS
from perpscope.signals.setups import oi_divergence_setup, triple_confluence
from perpscope.store.lake import Lake
from perpscope.venues.sim import SCENARIOS as PRESETS

EXPECTED = {
    "long-squeeze": "long_squeeze",
    "short-squeeze": "short_squeeze",
    "vacuum": "vacuum",
    "healthy-trend": "healthy_trend",
    "exhaustion": "exhaustion",
    "pre-event-build": "pre_event_build",
    "default": "none",
    "basis-bull": "none",
}
"""Preset -> the reading expected in its build-up (``none``: the preset is no scenario)."""

ASSETS = ("BTC", "ETH", "SOL")
INPUTS = (
    ("funding_8h", "f8h", 1e4, "bp"),
    ("funding_change_24h", "df24h", 1e4, "bp"),
    ("funding_change_72h", "df72h", 1e4, "bp"),
    ("oi_change_24h", "oi24h", 100, "%"),
    ("oi_change_48h", "oi48h", 100, "%"),
    ("oi_change_120h", "oi5d", 100, "%"),
    ("oi_change_168h", "oi7d", 100, "%"),
    ("oi_pct_30d", "oi_pct30", 1, ""),
    ("price_change_7d", "p7d", 100, "%"),
    ("price_off_7d_high", "off_hi", 100, "%"),
    ("price_off_7d_low", "off_lo", 100, "%"),
    ("long_cluster_below", "long_below", 1, ""),
    ("short_cluster_above", "short_above", 1, ""),
    ("long_near_3", "long3", 1, ""),
    ("short_near_3", "short3", 1, ""),
    ("long_near_5", "long5", 1, ""),
    ("short_near_5", "short5", 1, ""),
    ("clusters_near", "near5", 1, ""),
)
"""The classifier's inputs shown per reading: (evidence name, label, scale, unit)."""


def _inputs(values: dict[str, object]) -> str:
    out = []
    for name, label, scale, unit in INPUTS:
        v = values.get(name)
        if isinstance(v, float) and math.isfinite(v):
            out.append(f"{label} {v * scale:+.2f}{unit}" if unit else f"{label} {v:.2f}")
        else:
            out.append(f"{label} n/a")
    return ", ".join(out)


def _divergence_hours(lake: Lake, asset: str, at: datetime) -> tuple[int, int]:
    """Of the 72 hours up to ``at``, how many had an OI divergence (``oi_divergence``) and how
    many a triple confluence (the playbook's reading of price up on falling OI with crowded
    funding, lines 347-354)."""
    data = load_asset(lake, asset, at)
    hours = [at - timedelta(hours=h) for h in range(72)]
    div = sum(bool(oi_divergence_setup(data, t)) for t in hours)
    tri = sum(bool(triple_confluence(data, t)) for t in hours)
    return div, tri


def main() -> None:
    """Build or reuse the stores, classify, print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--seeds", default="101,102,103")
    ap.add_argument("--frac", type=float, default=0.70)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--presets", default=",".join(p for p in PRESETS if p in EXPECTED))
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    presets = [p for p in args.presets.split(",") if p]
    unknown = [p for p in presets if p not in EXPECTED]
    if unknown:
        raise SystemExit(f"error: no expected reading for preset(s) {', '.join(unknown)}")
    counts: dict[str, Counter[str]] = {p: Counter() for p in presets}
    failed: list[str] = []
    rows = []
    for preset in presets:
        for seed in seeds:
            path = args.workdir / f"h-{preset}-{seed}"
            done = path / ".built"  # a build that failed half-way is rebuilt, never read
            if not done.exists():
                try:
                    build_demo(path, seed=seed, days=args.days, scenario=preset)
                except PerpscopeError as e:
                    failed.append(f"{preset} seed {seed}: {e}")
                    continue
                done.write_text(f"{preset} {seed} {args.days}\n")
            lake = Lake(path)
            ts = lake.read("funding", columns=["ts"])["ts"]
            start, end = ts.min(), ts.max()
            at = start + (end - start) * args.frac  # type: ignore[operator]
            at = at.replace(minute=0, second=0, microsecond=0)
            for asset in ASSETS:
                r, found = asset_readings(lake, asset, at)
                counts[preset][r.scenario] += 1
                ev = {e.name: e.value for e in r.evidence}
                best = max(r.scores, key=lambda k: r.scores[k])
                setups = sorted({f"{s.setup}/{s.direction}" for s in found})
                div, tri = _divergence_hours(lake, asset, at)
                rows.append(
                    f"- {preset} seed {seed} {asset}: **{r.scenario}** ({r.confidence:.2f}; "
                    f"best score {best} {r.scores[best]:.2f}) | {_inputs(ev)} | setups: "
                    f"{', '.join(setups) or '-'} | last 72h: oi_divergence {div}h, "
                    f"triple_confluence {tri}h"
                )
    cols = list(SCENARIOS)
    print(f"seeds {','.join(map(str, seeds))}, {args.days} days, at {args.frac:.0%} of each run")
    print()
    print("| preset (expected) | " + " | ".join(cols) + " | hit rate |")
    print("|---|" + "---|" * (len(cols) + 1))
    for p in presets:
        n = sum(counts[p].values())
        hit = f"{counts[p][EXPECTED[p]] / n:.0%}" if n else "n/a"
        cells = " | ".join(str(counts[p][c]) for c in cols)
        print(f"| {p} ({EXPECTED[p]}) | {cells} | {hit} |")
    print()
    for line in rows:
        print(line)
    for line in failed:
        print(f"- build failed: {line}")
    print(
        json.dumps(
            {
                "seeds": seeds,
                "frac": args.frac,
                "days": args.days,
                "counts": {p: dict(c) for p, c in counts.items()},
                "failed": failed,
            }
        )
    )


if __name__ == "__main__":
    main()
