"""A fake ``data.binance.vision`` on 127.0.0.1 serving zip files made in the test.

Files are published with :meth:`FakeArchive.publish` (a CSV text becomes a zip, and its
``.CHECKSUM`` holds the zip's SHA-256 as Binance writes it: ``<hex>  <name>``). Faults:
``corrupt`` serves altered bytes for a path the given number of times (the checksum no longer
matches); ``hang`` holds the answer for a path until :meth:`release` (so a test can kill the
client at a known file). Every request is logged in arrival order.
"""

from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeArchive", "make_zip"]


def make_zip(name: str, csv_text: str) -> bytes:
    """A zip holding one CSV called ``name`` with ``.zip`` replaced by ``.csv``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name.removesuffix(".zip") + ".csv", csv_text)
    return buf.getvalue()


class FakeArchive:
    """The archive server; ``url`` is its base URL."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.corrupt: dict[str, int] = {}
        self.hang_path: str | None = None
        self.hung = threading.Event()
        self._release = threading.Event()
        self.log: list[str] = []
        self._lock = threading.Lock()
        archive = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                path = self.path.lstrip("/")
                with archive._lock:
                    archive.log.append(path)
                    body = archive.files.get(path)
                    spoil = archive.corrupt.get(path, 0) > 0
                    if spoil:
                        archive.corrupt[path] -= 1
                if path == archive.hang_path:
                    archive.hung.set()
                    archive._release.wait(120)
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if spoil:
                    body = body[:-8] + b"XXXXXXXX"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def publish(self, path: str, csv_text: str) -> bytes:
        """Serve a zip of ``csv_text`` at ``path`` and its checksum beside it; returns the zip."""
        name = path.rsplit("/", 1)[-1]
        data = make_zip(name, csv_text)
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            self.files[path] = data
            self.files[path + ".CHECKSUM"] = f"{digest}  {name}\n".encode()
        return data

    def requests(self, path: str) -> int:
        """How many times ``path`` was requested."""
        with self._lock:
            return self.log.count(path)

    def release(self) -> None:
        """Let a held answer go."""
        self._release.set()

    def __enter__(self) -> FakeArchive:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
