"""``perpscope collect stream`` against the fake WebSocket server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

from perpscope.store.lake import Lake
from tests.fakews.frames import binance_session
from tests.fakews.server import FakeWsServer, Script


def test_collect_stream_stores_and_reports_in_json(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    session = binance_session(120)  # 24 liquidations
    # two minutes of recording at 60x: two seconds, well inside --duration
    with FakeWsServer(Script(session.times, session.frames, speed=60.0)) as server:
        res = cli(
            "--store", str(tmp_path / "s"), "collect", "stream", "--venue", "binance",
            "--instrument", "BTC-USDT-PERP", "--duration", "4", "--ws-url", server.url,
            "--format", "json",
        )  # fmt: skip
        sent = server.log.frames_sent
    assert res.code == 0, res.err
    data = res.json()
    assert data["venue"] == "binance"
    assert data["instruments"] == "BTC-USDT-PERP"
    assert sent == len(session.frames)
    assert data["frames"] == sent
    assert data["liquidations_written"] == 24
    assert data["lower_bound"] is True
    assert data["gaps"] == []
    assert Lake(tmp_path / "s").read("liquidations").height == 24


def test_collect_stream_refuses_bad_options_on_one_line(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    store = str(tmp_path / "s")
    cases = [
        (["--venue", "okx"], "no live stream for venue 'okx' yet; streamable: binance, bybit"),
        (["--venue", "binance", "--duration", "-3"], "--duration -3.0: give a positive number"),
        (["--venue", "binance", "--ws-url", "http://x"], "give a ws:// or wss:// URL"),
    ]
    for extra, message in cases:
        res = cli("--store", store, "collect", "stream", "--instrument", "BTC-USDT-PERP", *extra)
        assert res.code == 2, res.err
        assert len(res.err.strip().splitlines()) == 1
        assert message in res.err
    res = cli("--store", store, "collect", "stream", "--venue", "binance", "--instrument",
              "BTC-USDT-26DEC25")  # fmt: skip
    assert res.code == 2
    assert "live streams follow perpetuals only" in res.err
