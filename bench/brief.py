"""Benchmark: the morning brief of 3 assets from a warm store.

A 30-day long-squeeze demo store (3 assets x 3 simulated venues) is built in a temporary
directory; the brief is built once to warm it (numba kernels compiled, files cached by the OS),
then timed over 5 runs (median). No peer: nothing else computes this brief. Target: under 1 s.
Then the dashboard's overview API on the same store under 20 concurrent clients
(``bench/dashboard.py``'s load; target p95 under 300 ms). The last line is one JSON object with
``brief_ms`` and ``p95_ms``.

    python bench/brief.py
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from perpscope.services.brief import build_brief
from perpscope.store.lake import Lake

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dashboard  # noqa: E402  (bench/dashboard.py: the dashboard's load)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "demo"
        dashboard.build_demo(store)
        lake = Lake(store)
        build_brief(lake, ["BTC", "ETH", "SOL"])  # warm
        times = []
        for _ in range(5):
            start = time.perf_counter()
            doc = build_brief(lake, ["BTC", "ETH", "SOL"])
            times.append(time.perf_counter() - start)
        ms = statistics.median(times) * 1000
        panels = sum(
            1 for a in doc["assets"] for k, v in a.items() if k != "asset" and v["available"]
        )
        print(f"brief of 3 assets: median {ms:.0f} ms over 5 runs (min {min(times) * 1000:.0f} ms, "
              f"max {max(times) * 1000:.0f} ms); {panels} panels with data")  # fmt: skip
        web = dashboard.measure(store)
    figures = {
        "bench": "brief",
        "assets": 3,
        "brief_ms": round(ms, 1),
        "brief_ms_min": round(min(times) * 1000, 1),
        "target_ms": 1000,
        "target_met": ms < 1000,
        "panels_with_data": panels,
        "p95_ms": web["p95_ms"],
        "p50_ms": web["p50_ms"],
        "p95_target_ms": web["target_ms"],
        "p95_target_met": web["target_met"],
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
