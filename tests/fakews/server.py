"""A fake venue WebSocket server on 127.0.0.1 that replays recorded frames and injects faults.

Recordings use cryptofeed's format (``<unix ts>: <raw frame>`` per line; lines naming a URL, the
client's own messages, are skipped), so the real recordings in the shared samples replay as they
are, and recordings made by :mod:`tests.fakews.frames` in the venues' documented frame shapes
replay the same way.

One replay position is shared by every connection: a client that reconnects continues where the
last connection stopped, less ``rewind`` frames (a venue resending recent events after a
reconnect: the client must store them once). The replay clock is ``speed`` times the recording's
(``None``: as fast as the client reads, the TCP window being the only brake).

Faults, each at a frame index of the script (taking effect once):

- ``disconnect_at``: the connection is dropped (no close handshake) before that frame;
- ``malformed_at``: a broken frame (truncated JSON, or a given text) is sent before that frame;
- ``silence_at``: before that frame the server sends nothing, keeping the connection open, until
  the client gives up on it (the client must detect the silence and reconnect);
- the whole script at ``speed=None`` is a burst faster than any consumer.

Servers that wait for a subscription (``subscribe=True``) replay only after the client's
subscribe request, in the protocol of ``protocol``:

- ``bybit``: ``{"op": "subscribe"}`` acknowledged with ``success``; ``{"op": "ping"}`` answered;
- ``okx``: ``{"op": "subscribe", "args": [...]}`` acknowledged per channel with ``{"event":
  "subscribe", "arg"}``, or refused with ``{"event": "error", "code", "msg"}`` when ``refuse`` is
  set; the text ``ping`` answered with ``pong``;
- ``deribit``: JSON-RPC ``public/set_heartbeat`` answered ``ok`` and followed by a heartbeat
  ``test_request`` (again every ``test_every`` frames of the replay; ``public/test`` answers are
  counted), ``public/subscribe`` answered with the channel list, or with an ``error`` when
  ``refuse`` is set.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

__all__ = ["FakeWsServer", "Script", "load_recording", "write_recording"]


def load_recording(path: Path, *, contains: str | None = None) -> tuple[list[float], list[str]]:
    """Times and frames of a cryptofeed recording (gzip or plain), optionally only frames
    holding ``contains``."""
    import gzip

    opener: Any = gzip.open if path.suffix == ".gz" else open
    times: list[float] = []
    frames: list[str] = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(("ws://", "wss://", "http://", "https://")):
                continue  # the client's side of the conversation
            head, sep, body = line.partition(": ")
            if not sep:
                continue
            try:
                t = float(head)
            except ValueError:
                continue
            body = body.rstrip("\n")
            if contains is None or contains in body:
                times.append(t)
                frames.append(body)
    return times, frames


def write_recording(path: Path, times: Sequence[float], frames: Sequence[str]) -> None:
    """Write frames in cryptofeed's recording format."""
    with path.open("w", encoding="utf-8") as fh:
        for t, f in zip(times, frames, strict=True):
            fh.write(f"{t:.6f}: {f}\n")


@dataclass
class Script:
    """What the server replays and which faults it injects (see the module docstring)."""

    times: list[float]
    frames: list[str]
    speed: float | None = None
    disconnect_at: tuple[int, ...] = ()
    rewind: int = 0
    malformed_at: dict[int, str] = field(default_factory=dict)
    silence_at: int | None = None
    subscribe: bool = False
    protocol: str = "bybit"
    refuse: str | None = None
    """okx/deribit: refuse the subscription with this message."""
    test_every: int = 400
    agg_trades: list[dict[str, Any]] = field(default_factory=list)
    """What ``GET /fapi/v1/aggTrades`` serves (``/api/v3/aggTrades`` for a routed script)."""
    deribit_trades: list[dict[str, Any]] = field(default_factory=list)
    """What ``GET /api/v2/public/get_last_trades_by_instrument_and_time`` serves."""
    deribit_page: int = 1000
    """Its page size (smaller than Deribit's to exercise paging)."""
    okx_trades: list[dict[str, Any]] = field(default_factory=list)
    """What ``GET /api/v5/market/history-trades`` serves (BTC-USDT-SWAP: 0.01 BTC contracts)."""
    pos: int = 0
    """Next frame to send (shared by the script's connections)."""
    fired: set[tuple[str, int]] = field(default_factory=set)


@dataclass
class _Log:
    connections: int = 0
    frames_sent: int = 0
    malformed_sent: int = 0
    subscribes: list[Any] = field(default_factory=list)
    pings: int = 0
    test_requests: int = 0
    tests: int = 0
    paths: list[str] = field(default_factory=list)
    rest: list[dict[str, str]] = field(default_factory=list)
    done: bool = False


class FakeWsServer:
    """Runs in its own thread and event loop; ``url`` is ``ws://127.0.0.1:<port>``.

    ``routes`` give other scripts to connections whose path and query equal a key (Binance's
    spot host next to its futures host); their trades are served at ``/api/v3/aggTrades``.
    """

    def __init__(self, script: Script, *, routes: dict[str, Script] | None = None) -> None:
        self.script = script
        self.routes = routes or {}
        self.log = _Log()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL of the server (the client keeps its own path and query)."""
        return f"ws://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeWsServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/fapi/v1/aggTrades", self._agg_trades)
        app.router.add_get("/api/v3/aggTrades", self._agg_trades)
        app.router.add_get(
            "/api/v2/public/get_last_trades_by_instrument_and_time", self._deribit_trades
        )
        app.router.add_get("/api/v5/market/history-trades", self._okx_trades)
        app.router.add_get("/api/v5/public/instruments", self._okx_instruments)
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _agg_trades(self, request: web.Request) -> web.Response:
        """Binance's semantics: ``fromId`` (ids from it on) or ``startTime``/``endTime``
        (inclusive), ascending, at most ``limit`` (default 500, max 1,000) rows."""
        q = dict(request.query)
        self.log.rest.append(q)
        limit = min(1000, int(q.get("limit", 500)))
        rows = self.script.agg_trades
        if request.path.startswith("/api/"):
            rows = [r for routed in self.routes.values() for r in routed.agg_trades]
        if "fromId" in q:
            rows = [r for r in rows if r["a"] >= int(q["fromId"])]
        else:
            lo, hi = int(q.get("startTime", 0)), int(q.get("endTime", 2**62))
            rows = [r for r in rows if lo <= r["T"] <= hi]
        return web.json_response(rows[:limit])

    async def _deribit_trades(self, request: web.Request) -> web.Response:
        """Deribit's semantics: both timestamps inclusive, ascending, at most ``count`` rows,
        ``has_more`` when more matched."""
        q = dict(request.query)
        self.log.rest.append(q)
        lo, hi = int(q["start_timestamp"]), int(q["end_timestamp"])
        count = min(int(q.get("count", 10)), self.script.deribit_page)
        rows = [
            r
            for r in self.script.deribit_trades
            if r["instrument_name"] == q["instrument_name"] and lo <= r["timestamp"] <= hi
        ]
        return web.json_response({"jsonrpc": "2.0", "result": {
            "trades": rows[:count], "has_more": len(rows) > count}})  # fmt: skip

    async def _okx_trades(self, request: web.Request) -> web.Response:
        """OKX's ``type=2`` semantics: rows strictly older than ``after`` (ms), newest first, at
        most ``limit``."""
        q = dict(request.query)
        self.log.rest.append(q)
        after = int(q.get("after", 2**62))
        limit = min(int(q.get("limit", 100)), 100)
        rows = [r for r in reversed(self.script.okx_trades)
                if r["instId"] == q["instId"] and int(r["ts"]) < after]  # fmt: skip
        return web.json_response({"code": "0", "msg": "", "data": rows[:limit]})

    async def _okx_instruments(self, request: web.Request) -> web.Response:
        self.log.rest.append(dict(request.query))
        rows = [{"instId": "BTC-USDT-SWAP", "instType": "SWAP", "ctVal": "0.01", "ctMult": "1",
                 "ctType": "linear", "ctValCcy": "BTC"}]  # fmt: skip
        iid = request.query.get("instId")
        return web.json_response(
            {"code": "0", "msg": "", "data": [r for r in rows if iid in (None, r["instId"])]}
        )

    @property
    def http_url(self) -> str:
        """The same server for REST requests."""
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def _once(s: Script, kind: str, index: int, table: Any) -> bool:
        if index in table and (kind, index) not in s.fired:
            s.fired.add((kind, index))
            return True
        return False

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self.log.connections += 1
        self.log.paths.append(request.path_qs)
        script = self.routes.get(request.path_qs, self.script)
        subscribed = asyncio.Event()
        if not script.subscribe:
            subscribed.set()
        reader = asyncio.create_task(self._read(ws, subscribed, script))
        try:
            waiter = asyncio.ensure_future(subscribed.wait())
            await asyncio.wait({reader, waiter}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if not subscribed.is_set():  # refused, or the client left first
                return ws
            await self._replay(script, ws, request, reader)
            await reader  # the replay is over: wait for the client to leave
        except (ConnectionError, asyncio.CancelledError, TimeoutError):
            pass
        finally:
            reader.cancel()
        return ws

    async def _read(
        self, ws: web.WebSocketResponse, subscribed: asyncio.Event, script: Script
    ) -> None:
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            if msg.data == "ping":  # OKX's text ping
                self.log.pings += 1
                await ws.send_str("pong")
                continue
            try:
                doc = json.loads(msg.data)
            except ValueError:
                continue
            if script.protocol == "okx":
                await self._okx(ws, doc, subscribed, script)
            elif script.protocol == "deribit":
                await self._deribit(ws, doc, subscribed, script)
            elif doc.get("op") == "subscribe":
                self.log.subscribes.append(doc.get("args"))
                await ws.send_str(json.dumps({"success": True, "ret_msg": "", "op": "subscribe",
                                              "conn_id": "fake", "req_id": ""}))  # fmt: skip
                subscribed.set()
            elif doc.get("op") == "ping":
                self.log.pings += 1
                await ws.send_str(json.dumps({"success": True, "ret_msg": "pong", "op": "ping",
                                              "conn_id": "fake"}))  # fmt: skip

    async def _okx(
        self, ws: web.WebSocketResponse, doc: Any, subscribed: asyncio.Event, script: Script
    ) -> None:
        if doc.get("op") != "subscribe":
            return
        self.log.subscribes.append(doc.get("args"))
        if script.refuse is not None:
            await ws.send_str(json.dumps({"event": "error", "code": "60018",
                                          "msg": script.refuse, "connId": "fake"}))  # fmt: skip
            return
        for arg in doc.get("args", []):
            await ws.send_str(json.dumps({"event": "subscribe", "arg": arg, "connId": "fake"}))
        subscribed.set()

    async def _deribit(
        self, ws: web.WebSocketResponse, doc: Any, subscribed: asyncio.Event, script: Script
    ) -> None:
        method, rid = doc.get("method"), doc.get("id")
        if method == "public/set_heartbeat":
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": rid, "result": "ok"}))
            await self._test_request(ws)
        elif method == "public/test":
            self.log.tests += 1
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": rid,
                                          "result": {"version": "fake"}}))  # fmt: skip
        elif method == "public/subscribe":
            channels = doc.get("params", {}).get("channels", [])
            self.log.subscribes.append(channels)
            if script.refuse is not None:
                await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": rid, "error": {
                    "code": 10001, "message": script.refuse}}))  # fmt: skip
                return
            await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": rid, "result": channels}))
            subscribed.set()

    async def _test_request(self, ws: web.WebSocketResponse) -> None:
        self.log.test_requests += 1
        await ws.send_str(json.dumps({"jsonrpc": "2.0", "method": "heartbeat",
                                      "params": {"type": "test_request"}}))  # fmt: skip

    async def _replay(
        self,
        s: Script,
        ws: web.WebSocketResponse,
        request: web.Request,
        reader: asyncio.Task[None],
    ) -> None:
        loop = asyncio.get_running_loop()
        start = s.pos
        t0 = loop.time()
        while s.pos < len(s.frames):
            i = s.pos
            if self._once(s, "disconnect", i, s.disconnect_at):
                s.pos = max(0, i - s.rewind)
                transport = request.transport
                if transport is not None:
                    transport.abort()  # dropped, no close handshake
                return
            if s.silence_at is not None and self._once(s, "silence", i, (s.silence_at,)):
                s.pos = max(0, i - s.rewind)
                await asyncio.wait({reader}, timeout=60)  # until the client leaves
                return
            if self._once(s, "malformed", i, s.malformed_at):
                text = s.malformed_at[i] or s.frames[i][: max(1, len(s.frames[i]) // 2)]
                await ws.send_str(text)
                self.log.malformed_sent += 1
            if s.speed is not None:
                due = t0 + (s.times[i] - s.times[start]) / s.speed
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await ws.send_str(s.frames[i])
            self.log.frames_sent += 1
            if s.protocol == "deribit" and s.subscribe and i % s.test_every == s.test_every - 1:
                await self._test_request(ws)
            s.pos = i + 1
        self.log.done = True
