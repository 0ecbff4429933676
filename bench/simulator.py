"""Benchmark: the simulator's 90-day, 3-venue, 3-asset default run, and the demo store it builds.

Run: ``.venv/bin/python bench/simulator.py``. Prints the simulation's wall time and agent-steps per
second (agent-steps: each market's eight agent populations plus every open leveraged position,
per 5-minute step), then the time to build a 90-day demo store (simulation + writing every table),
then the same run without the options market (``SimConfig(options=False)``) to show what the
options market costs. The last line is one JSON object. There is no outside peer to compare
against; ``options_speedup`` is the run without options against the run with them. No cached
kernels are compiled (the engine is numpy), so nothing is excluded from the timings.

Each timing is printed as wall time and as this process's CPU time (user + system, all threads):
on a machine loaded by other work the wall time also counts waiting for a core, while the CPU
time stays close to what a quiet machine's wall time would be. The load average is printed too.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from perpscope.services.demo import build_demo
from perpscope.sim import SimConfig, run_simulation


def main() -> None:
    """Time the default run and the 90-day demo build; print figures and a JSON line."""
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_simulation(SimConfig(seed=7, days=90))
    sim_s, sim_cpu = time.perf_counter() - t0, time.process_time() - c0
    rate = result.agent_steps / sim_s
    rows = sum(f.height for f in result.tables.values())
    print(
        f"simulation: 90 days, 3 venues x 3 assets, {rows:,} rows in {sim_s:.2f} s"
        f" ({sim_cpu:.2f} s CPU)"
    )
    print(f"agent-steps: {result.agent_steps:,} ({rate:,.0f} agent-steps/s)")
    with tempfile.TemporaryDirectory() as tmp:
        t1, c1 = time.perf_counter(), time.process_time()
        demo = build_demo(Path(tmp) / "demo", seed=7, days=90)
        demo_s, demo_cpu = time.perf_counter() - t1, time.process_time() - c1
    print(
        f"demo store (90 days): {sum(demo.rows.values()):,} rows built in {demo_s:.2f} s"
        f" ({demo_cpu:.2f} s CPU)"
    )
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
                "cpu_s": round(sim_cpu, 3),
                "demo_90d_build_s": round(demo_s, 3),
                "demo_90d_build_cpu_s": round(demo_cpu, 3),
                "load_average_after": round(os.getloadavg()[0], 2),
                "rows": rows,
                "no_options_wall_s": round(off_s, 3),
                "option_rows": option_rows,
                "options_speedup": round(sim_s / off_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
