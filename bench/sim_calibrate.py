"""Benchmark-style calibration check: ``perpscope sim calibrate --seeds 5 --days 90``.

Run: ``.venv/bin/python bench/sim_calibrate.py``. Builds the same report as the command (5
default seeds x 90 days, sim1 BTC, against the real files in ``$PERPSCOPE_SHARED_DATA`` when it
is set, as the command's ``--real-dir`` reads it) and prints it with the command's own table
renderer, then times one 90-day default run on its own. The last line is one JSON object:
``bands_met`` of ``bands_total`` (the issue's bands, median over seeds unless a band says
otherwise), ``sim_90d_s`` and the table's time. There is no peer to compare against
(``speedup`` is null); the figures before the calibration are in docs/simulator.md.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from perpscope.cli.sim_cmd import render
from perpscope.services.sim_calibrate import calibrate, real_facts_from_files
from perpscope.sim import SimConfig, run_simulation


def main() -> None:
    """Print the calibration table, then time a 90-day run; print a JSON line last."""
    days = 90
    shared = os.environ.get("PERPSCOPE_SHARED_DATA")
    real = None
    if shared:
        values, notes = real_facts_from_files(Path(shared), days)
        real = (values, notes, "files")
    t0 = time.perf_counter()
    report = calibrate(5, days, "default", real)
    calib_s = time.perf_counter() - t0
    render(report)
    t1 = time.perf_counter()
    run_simulation(SimConfig(seed=7, days=days))
    sim_s = time.perf_counter() - t1
    print(f"90-day default run (seed 7): {sim_s:.2f} s; calibration table: {calib_s:.1f} s")
    print(
        json.dumps(
            {
                "bands_met": report.held,
                "bands_total": len(report.rows),
                "failing": [r.fact.key for r in report.rows if not r.holds],
                "sim_90d_s": round(sim_s, 3),
                "calibrate_s": round(calib_s, 1),
                "speedup": None,
            }
        )
    )


if __name__ == "__main__":
    main()
