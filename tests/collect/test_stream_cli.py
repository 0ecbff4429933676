"""``perpscope collect stream`` against the fake WebSocket server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from perpscope.store.lake import Lake
from tests.fakews.frames import binance_session, deribit_session, minute_sums, okx_session
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
    rows = res.json()
    assert len(rows) == 1  # one connection: perpetuals only
    data = rows[0]
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
        (
            ["--venue", "kraken"],
            "no live stream for venue 'kraken' yet; streamable: binance, bybit, okx, deribit",
        ),
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
    assert "live streams follow perpetuals and spot pairs, not BTC-USDT-26DEC25" in res.err
    res = cli("--store", store, "collect", "stream", "--venue", "deribit", "--instrument",
              "BTC-USDC")  # fmt: skip
    assert res.code == 2
    assert "deribit live streams follow perpetuals only, not BTC-USDC" in res.err


@pytest.mark.parametrize("venue", ["okx", "deribit"])
def test_a_refused_subscription_is_one_error_line_and_a_failing_exit(
    tmp_path: Path, cli: Callable[..., Any], venue: str
) -> None:
    session = okx_session(30) if venue == "okx" else deribit_session(30)
    script = Script(session.times, session.frames, subscribe=True, protocol=venue,
                    refuse="unknown instrument")  # fmt: skip
    with FakeWsServer(script) as server:
        res = cli(
            "--store", str(tmp_path / "s"), "collect", "stream", "--venue", venue,
            "--instrument", "BTC-USDT-PERP" if venue == "okx" else "BTC-USD-PERP",
            "--duration", "20", "--ws-url", server.url, "--api-url", server.http_url,
            "--format", "json",
        )  # fmt: skip
        assert server.log.connections == 1
    assert res.code == 1
    lines = res.err.strip().splitlines()
    assert len(lines) == 1, res.err
    assert f"{venue} ws: venue refused the subscription: " in lines[0]
    assert "unknown instrument" in lines[0]
    assert "Traceback" not in res.err


def test_collect_stream_okx_and_deribit_store_liquidations(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    for venue, session, inst in (
        ("okx", okx_session(120), "BTC-USDT-PERP"),
        ("deribit", deribit_session(120), "BTC-USD-PERP"),
    ):
        script = Script(session.times, session.frames, speed=60.0, subscribe=True,
                        protocol=venue)  # fmt: skip
        with FakeWsServer(script) as server:
            res = cli(
                "--store", str(tmp_path / "s"), "collect", "stream", "--venue", venue,
                "--instrument", inst, "--duration", "4", "--ws-url", server.url,
                "--api-url", server.http_url, "--format", "json",
            )  # fmt: skip
        assert res.code == 0, res.err
        row = res.json()[0]
        assert row["venue"] == venue
        assert row["liquidations_written"] == len(session.liquidations) > 0
        assert row["lower_bound"] is False
    liq = Lake(tmp_path / "s").read("liquidations")
    assert sorted(set(liq["venue"])) == ["deribit", "okx"]


def test_perpetuals_and_spot_pairs_stream_on_two_connections(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    perp = binance_session(120)
    spot = binance_session(120, seed=99, spot=True)
    spot_script = Script(spot.times, spot.frames, speed=60.0)
    routes = {"/stream?streams=btcusdt@aggTrade": spot_script}
    with FakeWsServer(Script(perp.times, perp.frames, speed=60.0), routes=routes) as server:
        res = cli(
            "--store", str(tmp_path / "s"), "collect", "stream", "--venue", "binance",
            "--instrument", "BTC-USDT-PERP", "--instrument", "BTC-USDT", "--duration", "4",
            "--ws-url", server.url, "--format", "json",
        )  # fmt: skip
        assert sorted(server.log.paths) == [
            "/stream?streams=btcusdt@aggTrade",
            "/stream?streams=btcusdt@forceOrder/btcusdt@aggTrade/btcusdt@markPrice@1s",
        ]
    assert res.code == 0, res.err
    rows = {r["instruments"]: r for r in res.json()}
    assert rows["BTC-USDT"]["liquidations_written"] == 0
    assert rows["BTC-USDT"]["lower_bound"] is False
    assert rows["BTC-USDT-PERP"]["liquidations_written"] == 24
    taker = Lake(tmp_path / "s").read("taker_volume").sort("ts")
    spot_rows = taker.filter(pl.col("instrument") == "BTC-USDT")
    sums = minute_sums(spot.trades)
    expected = [sums[m] for m in sorted(sums)[1:-1]]  # the first and last minutes are partial
    assert len(expected) == 1
    assert spot_rows.height == 1
    assert spot_rows["buy_volume_base"].to_list() == pytest.approx([b for b, _ in expected])
    assert spot_rows["sell_volume_base"].to_list() == pytest.approx([s for _, s in expected])
