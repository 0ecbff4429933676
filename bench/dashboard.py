"""Benchmark: the dashboard's overview API (``/api/brief``) under 20 concurrent clients.

A 30-day long-squeeze demo store is built in a temporary directory and ``perpscope serve`` is
started on a free port of 127.0.0.1 (all load stays on this machine). One request warms it
(the brief is computed and cached); then 20 client threads send requests back to back for 20 s
(at most 1,000 each) and every latency is recorded. The run is longer than the server's 15 s cache
lifetime, so it includes a background refresh of the brief (computed while the previous one is
served, as under ``perpscope watch``). Target: p95 under 300 ms. The last line is one JSON object
with ``p95_ms``.

    python bench/dashboard.py
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

CLIENTS = 20
REQUESTS_PER_CLIENT = 1000
DURATION_S = 20.0
TARGET_MS = 300.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("perpscope serve exited before answering")
        try:
            if httpx.get(url + "/static/app.css", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("perpscope serve did not answer within 60 s")


def _client(url: str, stop_at: float, latencies: list[float], errors: list[str]) -> None:
    with httpx.Client(timeout=30) as client:
        for _ in range(REQUESTS_PER_CLIENT):
            if time.monotonic() > stop_at:
                return
            start = time.perf_counter()
            res = client.get(url + "/api/brief")
            elapsed = time.perf_counter() - start
            if res.status_code == 200 and res.json().get("assets"):
                latencies.append(elapsed)
            else:
                errors.append(f"{res.status_code}: {res.text[:100]}")


def build_demo(store: Path) -> None:
    """The benchmark's store: a 30-day long-squeeze demo."""
    subprocess.run(
        [sys.executable, "-m", "perpscope", "demo", "--store", str(store), "--days", "30",
         "--scenario", "long-squeeze", "--format", "json"],
        check=True, capture_output=True,
    )  # fmt: skip


def measure(store: Path) -> dict[str, Any]:
    """Serve ``store``, warm it with one request, then load it with the clients; the figures."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "perpscope", "--store", str(store), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_up(url, proc)
        start = time.perf_counter()
        httpx.get(url + "/api/brief", timeout=120).raise_for_status()  # warm: first brief
        warm_ms = (time.perf_counter() - start) * 1000
        latencies: list[float] = []
        errors: list[str] = []
        stop_at = time.monotonic() + DURATION_S
        threads = [
            threading.Thread(target=_client, args=(url, stop_at, latencies, errors))
            for _ in range(CLIENTS)
        ]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - began
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    ms = sorted(x * 1000 for x in latencies)
    p95 = ms[max(0, int(round(0.95 * len(ms))) - 1)] if ms else float("nan")
    p50 = statistics.median(ms) if ms else float("nan")
    print(f"/api/brief, {CLIENTS} concurrent clients on 127.0.0.1: {len(ms)} answers in "
          f"{wall:.1f} s ({len(ms) / wall:.0f}/s), p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
          f"max {ms[-1] if ms else float('nan'):.0f} ms, {len(errors)} errors; "
          f"first (cold) brief {warm_ms:.0f} ms")  # fmt: skip
    return {"clients": CLIENTS, "requests": len(ms), "errors": len(errors),
            "p50_ms": round(p50, 1), "p95_ms": round(p95, 1), "cold_ms": round(warm_ms, 1),
            "target_ms": TARGET_MS, "target_met": p95 < TARGET_MS and not errors}  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "demo"
        build_demo(store)
        figures = measure(store)
    print(json.dumps({"bench": "dashboard", **figures}))


if __name__ == "__main__":
    main()
