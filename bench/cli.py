"""Benchmark: how long the ``perpscope`` command takes to start, side by side with its libraries.

Three pairs, each run as fresh subprocesses (a command's start-up is the whole point), several
repetitions interleaved (ours, peer, ours, peer ...) so a load spike from other processes hits
both sides alike; the median of each side is reported:

Our side runs what the ``perpscope`` console script runs (import the entry point, call it).

- ``perpscope --version`` against ``python -c "import typer, rich"`` (the CLI framework alone);
- ``perpscope --help`` against the same;
- ``perpscope funding table`` on a demo store (built by this benchmark in a temporary directory)
  against ``python -c "import polars, deltalake, duckdb"`` (the data libraries alone, no work).

Targets (issue 10): each ratio ours / peer <= 1.5, in wall time. The machine is shared, so absolute
times vary; the ratios, measured in the same run, hold better. The CPU time of each side (user +
system, from ``getrusage`` of the finished child) is printed beside it: on a loaded machine a
process also waits for a core, which its CPU time does not count, so the CPU ratio shows what a
quiet machine's wall ratio would be. The load average is printed before and after.

Run: ``.venv/bin/python bench/cli.py [--reps 7] [--days 30]``. The last line printed is one JSON
object with the medians, the ratios and ``speedup`` = peer time / our time for ``funding table``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.5


def _time(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, all threads) of one subprocess run.

    Its output is discarded; it fails loudly if it fails. CPU time is what the command itself
    spent: on a loaded machine it stays close to its quiet-machine wall time, while the wall
    time also counts the time spent waiting for a core.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def _pair(
    ours: list[str], peer: list[str], reps: int, env: dict[str, str]
) -> tuple[float, float, float, float]:
    """Medians of ``reps`` interleaved runs of each command, after one warm-up run of each.

    Returns our wall time, the peer's wall time, our CPU time and the peer's CPU time.
    """
    _time(ours, env)
    _time(peer, env)
    runs: list[tuple[float, float, float, float]] = []
    for _ in range(reps):
        wall_a, cpu_a = _time(ours, env)
        wall_b, cpu_b = _time(peer, env)
        runs.append((wall_a, wall_b, cpu_a, cpu_b))
    w_a, w_b, c_a, c_b = (statistics.median(col) for col in zip(*runs, strict=True))
    return w_a, w_b, c_a, c_b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=7, help="runs of each side per pair")
    parser.add_argument("--days", type=int, default=30, help="days of the demo store")
    args = parser.parse_args()

    env = dict(os.environ)
    # an installed console script runs from compiled bytecode (pip compiles on install): let the
    # warm-up runs write it, or every run would pay for compiling perpscope's sources again
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    src = Path(__file__).resolve().parents[1] / "src"
    if src.is_dir():  # run the checkout's code, as the tests do
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    py = sys.executable
    # what the installed ``perpscope`` console script runs (``python -m`` adds runpy's cost)
    ours = [py, "-c", "import sys; from perpscope.cli.main import run; sys.exit(run())"]
    cli_peer = [py, "-c", "import typer, rich"]
    data_peer = [py, "-c", "import polars, deltalake, duckdb"]

    with tempfile.TemporaryDirectory(prefix="perpscope-bench-cli-") as tmp:
        store = str(Path(tmp) / "demo")
        print(f"building a {args.days}-day demo store ...", flush=True)
        _time([*ours, "demo", "--store", store, "--days", str(args.days), "--format", "json"], env)
        pairs = {
            "version": (
                [*ours, "--version"],
                cli_peer,
            ),
            "help": ([*ours, "--help"], cli_peer),
            "funding_table": ([*ours, "--store", store, "funding", "table"], data_peer),
        }
        result: dict[str, object] = {"reps": args.reps, "target_ratio": TARGET_RATIO}
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        print(
            f"{'case':<15} {'perpscope s':>12} {'peer s':>8} {'ratio':>6}"
            f" {'cpu s':>7} {'peer cpu':>8} {'cpu ratio':>9}  peer"
        )
        for name, (mine, peer) in pairs.items():
            t_ours, t_peer, c_ours, c_peer = _pair(mine, peer, args.reps, env)
            ratio = t_ours / t_peer
            result[f"{name}_s"] = round(t_ours, 3)
            result[f"{name}_peer_s"] = round(t_peer, 3)
            result[f"{name}_ratio"] = round(ratio, 2)
            result[f"{name}_cpu_ratio"] = round(c_ours / c_peer, 2)
            print(
                f"{name:<15} {t_ours:>12.3f} {t_peer:>8.3f} {ratio:>6.2f}"
                f" {c_ours:>7.3f} {c_peer:>8.3f} {c_ours / c_peer:>9.2f}  {' '.join(peer[1:])}"
            )
        result["load_average_after"] = round(os.getloadavg()[0], 2)
    result["speedup"] = round(
        float(result["funding_table_peer_s"]) / float(result["funding_table_s"]),  # type: ignore[arg-type]
        2,
    )
    result["targets_met"] = all(
        float(result[f"{n}_ratio"]) <= TARGET_RATIO  # type: ignore[arg-type]
        for n in ("version", "help", "funding_table")
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
