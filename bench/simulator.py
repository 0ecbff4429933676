"""Benchmark: the simulator's 90-day, 3-venue, 3-asset default run, and its numba kernels' gain.

Run: ``.venv/bin/python bench/simulator.py``. Prints, in this order:

* the first run in the process (one day): it loads the kernels from numba's cache, or compiles
  them if there is no cache yet (the first run after an install or a kernel change);
* the 90-day default run (seed 7, options market on), done as :func:`run_simulation` does it and
  timed by stage: the 5-minute step loop, the store-shaped tables, the options market; the
  agent-steps per second (agent-steps: each market's eight agent populations plus every open
  leveraged position, per 5-minute step);
* the peer: the same engine with each numba kernel swapped for the numpy code it replaced
  (``bench/_sim_numpy_path.py``), on a 14-day default run, against the kernels on the same run,
  in turns; ``speedup`` = numpy path / kernels. The two runs' tables are compared twice:
  ``identical`` in this process, false where numpy's own vectorised ``exp`` differs in the last
  bit from the C library's (which numba calls) and the two markets drift apart; and
  ``identical_without_simd`` in a subprocess whose numpy uses none of its SIMD extensions beyond
  the baseline, so both paths' ``exp`` is the C library's: the kernels' own check.

Each timing is wall time and this process's CPU time (user + system, all threads): on a machine
loaded by other work the wall time also counts waiting for a core, while the CPU time stays
close to what a quiet machine's wall time would be. The load average is printed before and after.
The last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from _sim_numpy_path import numpy_path
from perpscope.sim import SimConfig, run_simulation
from perpscope.sim.engine import simulate
from perpscope.sim.options import options_tables
from perpscope.sim.presets import PRESETS
from perpscope.sim.tables import build_tables

T = TypeVar("T")
PEER_DAYS = 14
_OPTION_SERIES = ("index_o", "index_c", "mark_c")  # what run_simulation passes the options market


def timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """``fn()``, its wall time and its CPU time (s)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


_IDENTITY_RUN = """
import json
from _sim_numpy_path import numpy_path
from perpscope.sim import SimConfig, run_simulation
peer = SimConfig(seed=7, days={days}, options=False)
fast = run_simulation(peer)
with numpy_path():
    slow = run_simulation(peer)
print(json.dumps({{"identical": all(fast.tables[n].equals(slow.tables[n]) for n in fast.tables)}}))
"""


def identical_without_simd(days: int) -> bool | None:
    """Whether the kernels and the numpy path give equal tables on a ``days``-day run, in a
    process whose numpy dispatches to none of its SIMD extensions beyond the baseline. There
    numpy's ``exp`` is the C library's, the one numba calls; numpy's own vectorised ``exp``
    differs from it in the last bit on some inputs, and one bit is enough for two markets to
    drift apart. None when this numpy does not list its extensions."""
    try:
        from numpy._core import _multiarray_umath as umath

        found = [f for f in umath.__cpu_dispatch__ if umath.__cpu_features__.get(f)]
    except (ImportError, AttributeError):
        return None
    env = dict(os.environ, NPY_DISABLE_CPU_FEATURES=",".join(found))
    out = subprocess.run(
        [sys.executable, "-c", _IDENTITY_RUN.format(days=days)],
        env=env,
        cwd=Path(__file__).resolve().parent,
        capture_output=True,
        text=True,
        check=True,
    )
    return bool(json.loads(out.stdout.splitlines()[-1])["identical"])


def main() -> None:
    """Time the first run, the 90-day default run by stage and the numpy peer; print JSON."""
    load0 = os.getloadavg()[0]
    print(f"load average before: {load0:.2f}")
    _, warm_s, _ = timed(lambda: run_simulation(SimConfig(seed=7, days=1)))
    print(f"first run (1 day; numba cache load or compile): {warm_s:.2f} s")

    cfg = SimConfig(seed=7, days=90)
    t0, c0 = time.perf_counter(), time.process_time()
    (rec, book), loop_s, loop_cpu = timed(lambda: simulate(cfg, PRESETS[cfg.scenario]))
    tables, tab_s, tab_cpu = timed(lambda: build_tables(cfg, rec, book))
    start = cfg.end - timedelta(days=cfg.days)
    series = rec.series
    opt, opt_s, opt_cpu = timed(
        lambda: options_tables(
            cfg.assets, cfg.venues, start, cfg.seed, *(series[k] for k in _OPTION_SERIES)
        )
    )
    sim_s, sim_cpu = time.perf_counter() - t0, time.process_time() - c0
    tables.update(opt)
    rows = sum(f.height for f in tables.values())
    rate = rec.agent_steps / sim_s
    print(
        f"90-day default run, 3 venues x 3 assets: {sim_s:.2f} s ({sim_cpu:.2f} s CPU), "
        f"{rows:,} rows"
    )
    print(
        f"  step loop {loop_s:.2f} s ({loop_cpu:.2f} CPU); tables {tab_s:.2f} s ({tab_cpu:.2f});"
        f" options market {opt_s:.2f} s ({opt_cpu:.2f})"
    )
    cpu_rate = rec.agent_steps / sim_cpu
    print(
        f"  agent-steps: {rec.agent_steps:,} ({rate:,.0f} agent-steps/s,"
        f" {cpu_rate:,.0f} per CPU second)"
    )

    peer = SimConfig(seed=7, days=PEER_DAYS, options=False)
    kern_cpu, numpy_cpu = [], []
    identical = True
    for _ in range(2):
        fast, _, c_fast = timed(lambda: run_simulation(peer))
        with numpy_path():
            slow, _, c_slow = timed(lambda: run_simulation(peer))
        kern_cpu.append(c_fast)
        numpy_cpu.append(c_slow)
        identical &= all(fast.tables[n].equals(slow.tables[n]) for n in fast.tables)
    speedup = min(numpy_cpu) / min(kern_cpu)
    same = identical_without_simd(PEER_DAYS)
    print(
        f"peer ({PEER_DAYS} days, no options, best of 2 CPU): kernels {min(kern_cpu):.2f} s, "
        f"numpy path {min(numpy_cpu):.2f} s, x{speedup:.2f}; identical tables: {identical} "
        f"(with numpy's SIMD off, its exp the C library's as in numba: {same})"
    )
    load1 = os.getloadavg()[0]
    print(f"load average after: {load1:.2f}")
    print(
        json.dumps(
            {
                "wall_s": round(sim_s, 3),
                "cpu_s": round(sim_cpu, 3),
                "step_loop_cpu_s": round(loop_cpu, 3),
                "tables_cpu_s": round(tab_cpu, 3),
                "options_cpu_s": round(opt_cpu, 3),
                "first_run_s": round(warm_s, 3),
                "agent_steps": rec.agent_steps,
                "agent_steps_per_s": round(rate),
                "agent_steps_per_cpu_s": round(cpu_rate),
                "rows": rows,
                "load_average_before": round(load0, 2),
                "load_average_after": round(load1, 2),
                "peer_days": PEER_DAYS,
                "kernels_cpu_s": round(min(kern_cpu), 3),
                "numpy_path_cpu_s": round(min(numpy_cpu), 3),
                "identical": identical,
                "identical_without_simd": same,
                "speedup": round(speedup, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
