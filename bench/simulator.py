"""Benchmark: the simulator's 90-day, 3-venue, 3-asset default run, and the demo store it builds.

Run: ``.venv/bin/python bench/simulator.py``. Prints the simulation's wall time and agent-steps per
second (agent-steps: each market's eight agent populations plus every open leveraged position,
per 5-minute step), then the time to build a 90-day demo store (simulation + writing every table),
then the same run without the options market (``SimConfig(options=False)``) to show what the
options market costs. The last line is one JSON object. There is no outside peer to compare
against; ``options_speedup`` is the run without options against the run with them. No cached
kernels are compiled (the engine is numpy), so nothing is excluded from the timings.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from perpscope.services.demo import build_demo
from perpscope.sim import SimConfig, run_simulation


def main() -> None:
    """Time the default run and the 90-day demo build; print figures and a JSON line."""
    t0 = time.perf_counter()
    result = run_simulation(SimConfig(seed=7, days=90))
    sim_s = time.perf_counter() - t0
    rate = result.agent_steps / sim_s
    rows = sum(f.height for f in result.tables.values())
    print(f"simulation: 90 days, 3 venues x 3 assets, {rows:,} rows in {sim_s:.2f} s")
    print(f"agent-steps: {result.agent_steps:,} ({rate:,.0f} agent-steps/s)")
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        demo = build_demo(Path(tmp) / "demo", seed=7, days=90)
        demo_s = time.perf_counter() - t1
    print(f"demo store (90 days): {sum(demo.rows.values()):,} rows built in {demo_s:.2f} s")
    t2 = time.perf_counter()
    run_simulation(SimConfig(seed=7, days=90, options=False))
    off_s = time.perf_counter() - t2
    option_rows = sum(
        result.tables[t].height
        for t in ("options_snapshot", "option_trades", "sim_option_positions")
    )
    print(
        f"without the options market: {off_s:.2f} s (the options market: {sim_s - off_s:+.2f} s, "
        f"{option_rows:,} rows)"
    )
    print(
        json.dumps(
            {
                "wall_s": round(sim_s, 3),
                "agent_steps": result.agent_steps,
                "agent_steps_per_s": round(rate),
                "demo_90d_build_s": round(demo_s, 3),
                "rows": rows,
                "no_options_wall_s": round(off_s, 3),
                "option_rows": option_rows,
                "options_speedup": round(sim_s / off_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
