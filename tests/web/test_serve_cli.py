"""``perpscope serve``: the address it binds, the warning for any other, refused hosts."""

from __future__ import annotations

import json
from pathlib import Path


def test_serve_binds_localhost_by_default(cli, web_store: Path) -> None:  # type: ignore[no-untyped-def]
    res = cli("--store", str(web_store), "serve", "--dry-run", "--format", "json")

    assert res.code == 0, res.err
    data = json.loads(res.out)["data"]
    assert data["host"] == "127.0.0.1"
    assert data["url"] == "http://127.0.0.1:8050/"
    assert "warning" not in res.err


def test_serve_on_another_host_warns_on_stderr(cli, web_store: Path) -> None:  # type: ignore[no-untyped-def]
    res = cli("--store", str(web_store), "serve", "--host", "0.0.0.0", "--port", "9001",
              "--dry-run", "--format", "json")  # fmt: skip

    assert res.code == 0, res.err
    assert json.loads(res.out)["data"]["url"] == "http://0.0.0.0:9001/"
    assert "warning: binding 0.0.0.0" in res.err
    assert "no authentication" in res.err


def test_serve_refuses_a_host_that_is_not_an_address(cli, web_store: Path) -> None:  # type: ignore[no-untyped-def]
    res = cli("--store", str(web_store), "serve", "--host", "127.0.0.1 --evil", "--dry-run")

    assert res.code == 2
    assert "bad --host" in res.err
    assert len(res.err.strip().splitlines()) == 1
