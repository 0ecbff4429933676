"""A webhook receiver on 127.0.0.1 that records what apprise's ``json://`` channel posts."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Receiver", "free_port"]


def free_port() -> int:
    """A TCP port nothing listens on now (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """Records every JSON body POSTed to it; ``url`` is the apprise URL that targets it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.posts: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        posts, lock = self.posts, threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                size = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(size) or b"{}")
                with lock:
                    posts.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict[str, Any]]:
        """Each post as the event it carries: rule, market, time and evidence, from the body
        lines perpscope writes (``rule: ...``, ``market: ...``, ``time: ...``,
        ``evidence: {...}``)."""
        out = []
        for post in self.posts:
            fields = dict(
                line.split(": ", 1) for line in post["message"].splitlines()[1:] if ": " in line
            )
            venue, instrument = fields["market"].split(" ", 1)
            out.append(
                {
                    "rule": fields["rule"],
                    "venue": venue,
                    "instrument": instrument,
                    "ts": fields["time"],
                    "evidence": json.loads(fields["evidence"]),
                    "title": post["title"],
                    "text": post["message"].splitlines()[0],
                }
            )
        return out
