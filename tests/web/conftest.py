"""A long-squeeze demo store shared by the web tests, the app over it, and a running server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest


@pytest.fixture(scope="session")
def web_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo store of 8 simulated days in the long-squeeze scenario (read-only)."""
    path = tmp_path_factory.mktemp("web") / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "perpscope", "demo", "--store", str(path), "--days", "8",
         "--scenario", "long-squeeze", "--format", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture(scope="session")
def client(web_store: Path) -> Iterator[object]:
    """FastAPI's TestClient over the real app and the demo store (server errors become 500s)."""
    from fastapi.testclient import TestClient

    from perpscope.config import load_config, with_store_path
    from perpscope.store.lake import Lake
    from perpscope.web import create_app

    config = with_store_path(load_config(environ={}), web_store, "test")
    with TestClient(create_app(Lake(web_store), config), raise_server_exceptions=False) as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server(web_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``perpscope serve`` started as a subprocess on a free port; yields its base URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "perpscope", "--store", str(web_store), "serve",
             "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/static/app.css", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"perpscope serve did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def chromium_path() -> str:
    """Debian's chromium; absent it fails under CI (``CI`` set) and skips elsewhere."""
    path = shutil.which("chromium")
    if path is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message + "; CI needs it for the browser tests")
        pytest.skip(message)
    return path
