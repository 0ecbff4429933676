"""Benchmark: live-stream frames parsed, aggregated and committed, against ccxt.pro's parser.

Frames are a Binance USDⓈ-M combined-stream session generated in the venue's wire format
(``tests/fakews/frames.py``: ``aggTrade`` frames, a ``forceOrder`` every five seconds, a
``markPrice@1s`` every second). In the same process:

- **ours (in-process)**: every frame through ``BinanceFeed.parse`` into the collector's
  ``StreamState`` (liquidations kept, trades summed into 1-minute taker volume, ticks sampled),
  committed to a fresh store every 50,000 frames with ``Lake.ingest`` (one idempotent commit per
  table, as ``collect stream`` does every two seconds);
- **ccxt.pro**: the same frames decoded with ``json.loads`` and handed to ccxt.pro's own Binance
  parsers (``parse_ws_trade``, ``parse_ws_liquidation``), which is what its ``watch_trades`` /
  ``watch_liquidations`` do with each message; nothing aggregated or stored (the peer does less);
- **ours over a socket**: the whole ``collect stream`` path (aiohttp client, bounded queue,
  batched commits) reading the frames from the fake WebSocket server on 127.0.0.1 as fast as it
  sends them (server and client share this process and its cores).

Run: ``.venv/bin/python bench/stream.py`` (``--seconds 3000`` for a quick run). The last line is
one JSON object: ``trades_per_s`` (in-process, parse + aggregate + commit; target >= 50,000),
``frames_per_s``, ``socket_frames_per_s``, ``peak_rss_mb`` and ``speedup`` = ccxt.pro parse time /
our parse + aggregate + commit time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ccxt.pro as ccxtpro  # type: ignore[import-untyped]  # noqa: E402
from tests.fakews.frames import binance_session  # noqa: E402
from tests.fakews.server import FakeWsServer, Script  # noqa: E402

from perpscope.collect.stream import (  # noqa: E402
    StreamOptions,
    StreamReport,
    StreamState,
    collect_stream,
)
from perpscope.domain.symbols import parse_instrument  # noqa: E402
from perpscope.store.lake import Lake  # noqa: E402
from perpscope.venues.binance_ws import BinanceFeed  # noqa: E402

BTC = (parse_instrument("BTC-USDT-PERP"),)
COMMIT_EVERY = 50_000


def ours(frames: list[str], root: Path) -> tuple[float, StreamReport]:
    """Parse, aggregate and commit every frame; returns seconds and the report."""
    feed = BinanceFeed(BTC)
    report = StreamReport("binance", ["BTC-USDT-PERP"])
    state = StreamState("binance", report, tick_every_s=60.0)
    lake = Lake(root)
    t0 = time.perf_counter()
    for i, frame in enumerate(frames, 1):
        report.events += feed.parse(frame, state)
        if i % COMMIT_EVERY == 0:
            for table, rows in state.take().items():
                lake.ingest(table, rows)
    for table, rows in state.take().items():
        lake.ingest(table, rows)
    return time.perf_counter() - t0, report


def peer(frames: list[str]) -> float:
    """ccxt.pro's parsers on the same frames (decode + parse, per frame)."""
    ex = ccxtpro.binanceusdm()
    parsed = 0
    t0 = time.perf_counter()
    for frame in frames:
        data = json.loads(frame)["data"]
        kind = data["e"]
        if kind == "aggTrade":
            parsed += ex.parse_ws_trade(data)["amount"] is not None
        elif kind == "forceOrder":
            parsed += ex.parse_ws_liquidation(data["o"])["contracts"] is not None
    assert parsed == sum('"aggTrade"' in f or '"forceOrder"' in f for f in frames)
    elapsed = time.perf_counter() - t0
    asyncio.run(ex.close())
    return elapsed


def over_socket(times: list[float], frames: list[str], root: Path) -> tuple[float, StreamReport]:
    """The full collect-stream path from the fake server on 127.0.0.1."""
    last = int(times[-1] * 1000)
    options = StreamOptions(
        duration_s=600.0, flush_s=2.0, silence_s=30.0, queue_frames=10_000,
        stop_when=lambda r: r.last_event_ms >= last,
    )  # fmt: skip
    with FakeWsServer(Script(times, frames, speed=None)) as server:
        t0 = time.perf_counter()
        report = asyncio.run(collect_stream(BinanceFeed(BTC), Lake(root), options,
                                            base_url=server.url))  # fmt: skip
        elapsed = time.perf_counter() - t0
    return elapsed, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30_000, help="session length (10 trades/s)")
    args = parser.parse_args()
    session = binance_session(args.seconds, trades_per_s=10)
    frames = session.frames
    trades = len(session.trades)
    print(f"{len(frames):,} frames ({trades:,} trades, {len(session.liquidations):,} "
          "liquidations)", file=sys.stderr)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        ours(binance_session(120).frames, Path(tmp) / "warm")  # imports, first-table set-up
        t_ours, rep = ours(frames, Path(tmp) / "a")
        assert rep.trades == trades, (rep.trades, trades)
        assert rep.liquidations_seen == len(session.liquidations)
        t_peer = peer(frames)
        t_sock, rep_sock = over_socket(session.times, frames, Path(tmp) / "b")
        assert rep_sock.trades == trades, (rep_sock.trades, trades)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "bench": "stream",
        "frames": len(frames),
        "trades": trades,
        "trades_per_s": round(trades / t_ours),
        "frames_per_s": round(len(frames) / t_ours),
        "peer_frames_per_s": round(len(frames) / t_peer),
        "socket_frames_per_s": round(len(frames) / t_sock),
        "socket_commits": rep_sock.commits,
        "socket_max_queue": rep_sock.max_queue,
        "peak_rss_mb": round(peak_mb),
        "target_trades_per_s": 50_000,
        "speedup": round(t_peer / t_ours, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
