"""``perpscope heatmap|cascades|liquidations`` through the real entry point."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import CliResult
from tests.services.liq_store import SHOCK, SIM, build_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("liqcli") / "store"
    build_store(root)
    return str(root)


def test_heatmap_json_has_the_interface_fields(cli, store: str) -> None:  # type: ignore[no-untyped-def]
    r: CliResult = cli("--store", store, "heatmap", "--venue", "sim1", "--instrument",
                       "BTC-USDT-PERP", "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    doc = r.json()
    assert isinstance(doc, dict)
    assert {"ts", "price", "estimated", "levels", "clusters"} <= set(doc)
    assert doc["estimated"] is True
    assert doc["ts"] == SIM.end.isoformat().replace("+00:00", "Z")
    assert all(set(lv) == {"price", "long_usd", "short_usd"} for lv in doc["levels"])
    assert {"price", "side", "notional_usd", "distance_pct"} <= set(doc["clusters"][0])


def test_heatmap_table_is_labelled_and_writes_a_picture(  # type: ignore[no-untyped-def]
    cli, store: str, tmp_path: Path
) -> None:
    out = tmp_path / "btc.png"
    r = cli("--store", store, "heatmap", "--venue", "sim1", "--instrument", "BTC-USDT-PERP",
            "--out", str(out), "--at", (SHOCK + timedelta(hours=6)).isoformat())  # fmt: skip
    assert r.code == 0, r.err
    assert "ESTIMATED" in r.out
    assert "$" in r.out  # notional formatted for a trader
    assert out.stat().st_size > 10_000
    assert "wrote" in r.err


def test_cascades_json_lists_the_squeeze(cli, store: str) -> None:  # type: ignore[no-untyped-def]
    r = cli("--store", store, "cascades", "--venue", "sim1", "--instrument", "BTC-USDT-PERP",
            "--since", (SHOCK - timedelta(days=1)).isoformat(), "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    rows = r.json()
    assert isinstance(rows, list)
    assert {"climax_ts", "climax_px", "side", "liquidated_usd", "retrace_4h"} <= set(rows[0])
    assert rows[0]["side"] == "long"


def test_liquidations_table_flags_the_lower_bound(cli, store: str) -> None:  # type: ignore[no-untyped-def]
    r = cli("--store", store, "liquidations", "--venue", "binance", "--window", "1h")
    assert r.code == 0, r.err
    assert "REALISED" in r.out
    assert "lower bound" in r.out
    j = cli("--store", store, "liquidations", "--window", "4h", "--format", "json")
    assert j.code == 0
    assert all(row["label"] == "REALISED" for row in j.json())  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "args",
    [
        ("liquidations", "--window", "2h"),
        ("heatmap", "--venue", "sim1", "--instrument", "NOPE"),
        ("heatmap", "--venue", "sim1", "--instrument", "BTC-USDT-PERP", "--out", "x.svg"),
        ("heatmap", "--venue", "sim1", "--instrument", "BTC-USDT-PERP", "--at", "yesterday"),
        ("cascades", "--venue", "sim2", "--instrument", "BTC-USDT-PERP"),
        ("heatmap", "--instrument", "BTC-USDT-PERP"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(cli, store: str, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    r = cli("--store", store, *args)
    assert r.code == 2
    assert r.err.strip().count("\n") == 0
    assert "Traceback" not in r.err


def test_trade_helper_lists_clusters_on_the_way_and_checks_the_liq_price(  # type: ignore[no-untyped-def]
    cli, store: str
) -> None:
    base = ("--store", store, "heatmap", "--venue", "sim1", "--instrument", "BTC-USDT-PERP")
    doc = cli(*base, "--format", "json").json()
    assert isinstance(doc, dict)
    price = doc["price"]
    below = [c for c in doc["clusters"] if c["price"] < price]
    deepest = min(c["price"] for c in below)
    inside = below[0]  # the densest long cluster; put a long's own liquidation price in its band
    own = (inside["low_px"] + inside["high_px"]) / 2
    r = cli(*base, "--entry", str(price), "--target", str(deepest * 0.999),
            "--liq-px", str(own), "--format", "json")  # fmt: skip
    assert r.code == 0, r.err
    trade = r.json()["trade"]  # type: ignore[index]
    between = trade["clusters_between"]
    # every cluster below price down to the target, nearest the entry first
    assert sorted(c["price"] for c in between) == sorted(c["price"] for c in below)
    assert [c["price"] for c in between] == sorted((c["price"] for c in between), reverse=True)
    assert trade["own_liq_in_cluster"]["price"] == inside["price"]
    table = cli(*base, "--entry", str(price), "--target", str(price * 1.05), "--liq-px",
                str(price * 2))  # fmt: skip
    assert table.code == 0
    assert "outside every cluster" in table.out
    half = cli(*base, "--entry", str(price))
    assert half.code == 2
    assert "--target" in half.err


def test_estimator_settings_from_the_command_line_reach_the_estimator(  # type: ignore[no-untyped-def]
    cli, store: str
) -> None:
    """One 10x tier with a neutral split: the map equals the service's with those parameters
    (called directly) and differs from the default map; bad settings are one-line errors."""
    from perpscope.analytics.liquidations import HeatmapParams
    from perpscope.services.liquidations import heatmap_report
    from perpscope.store.lake import Lake

    base = ["--store", store, "heatmap", "--venue", "sim1", "--instrument", "BTC-USDT-PERP"]
    custom = cli(*base, "--leverages", "10", "--weights", "1", "--split", "neutral",
                 "--bin-pct", "0.2%", "--format", "json")  # fmt: skip
    assert custom.code == 0, custom.err
    default = cli(*base, "--format", "json")
    params = HeatmapParams(leverages=(10.0,), weights=(1.0,), split="neutral", bin_pct=0.002)
    direct = heatmap_report(Lake(store), "sim1", "BTC-USDT-PERP", params=params)
    got = custom.json()["levels"]  # type: ignore[index]
    want = direct.levels.to_dicts()
    assert [lv["price"] for lv in got] == pytest.approx([lv["price"] for lv in want], rel=1e-9)
    assert [lv["long_usd"] for lv in got] == pytest.approx([lv["long_usd"] for lv in want])
    assert got != default.json()["levels"]  # type: ignore[index]
    # --turnover 0: levels never turn over (the estimator's None), as the service gives it.
    frozen = cli(*base, "--turnover", "0", "--format", "json")
    assert frozen.code == 0, frozen.err
    direct = heatmap_report(
        Lake(store), "sim1", "BTC-USDT-PERP", params=HeatmapParams(turnover_half_life_h=None)
    )
    got = frozen.json()["levels"]  # type: ignore[index]
    want = direct.levels.to_dicts()
    # JSON gives USD to the cent (docs/cli.md), hence the half-cent tolerance.
    assert [lv["long_usd"] for lv in got] == pytest.approx(
        [lv["long_usd"] for lv in want], abs=0.005
    )
    assert got != default.json()["levels"]  # type: ignore[index]
    for args, needle in [
        (("--turnover", "-1"), "--turnover"),
        (("--weights", "1,2"), "one weight per leverage tier"),
        (("--leverages", "5,10"), "--leverages needs --weights"),
        (("--split", "coinflip"), "--split 'coinflip'"),
        (("--entry-price", "mid"), "--entry-price 'mid'"),
        (("--bin-pct", "20%"), "bin_pct"),
    ]:
        r = cli(*base, *args)
        assert r.code == 2, (args, r.err)
        assert needle in r.err
        assert r.err.strip().count("\n") == 0


def test_estimator_settings_from_the_config_file(cli, store: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """[heatmap] in the config gives the same map as the same settings as options; a bad value
    is refused at start-up naming the key."""
    base = ["heatmap", "--venue", "sim1", "--instrument", "BTC-USDT-PERP", "--format", "json"]
    good = tmp_path / "good.toml"
    good.write_text('[heatmap]\nleverages = [10]\nweights = [1]\nsplit = "neutral"\n')
    from_file = cli("--store", store, "--config", str(good), *base)
    assert from_file.code == 0, from_file.err
    from_options = cli("--store", store, *base, "--leverages", "10", "--weights", "1",
                       "--split", "neutral")  # fmt: skip
    assert from_file.json()["levels"] == from_options.json()["levels"]  # type: ignore[index]
    turn = tmp_path / "turn.toml"
    turn.write_text("[heatmap]\nturnover_half_life_h = 24\n")
    from_file = cli("--store", store, "--config", str(turn), *base)
    assert from_file.code == 0, from_file.err
    from_options = cli("--store", store, *base, "--turnover", "24")
    default = cli("--store", store, *base)
    assert from_file.json()["levels"] == from_options.json()["levels"]  # type: ignore[index]
    assert from_file.json()["levels"] != default.json()["levels"]  # type: ignore[index]
    negative = tmp_path / "negative.toml"
    negative.write_text("[heatmap]\nturnover_half_life_h = -1\n")
    r = cli("--store", store, "--config", str(negative), *base)
    assert r.code == 2
    assert "heatmap.turnover_half_life_h" in r.err
    bad = tmp_path / "bad.toml"
    bad.write_text('[heatmap]\nsplit = "coinflip"\n')
    r = cli("--store", store, "--config", str(bad), *base)
    assert r.code == 2
    assert "heatmap.split: must be one of taker, long_short, candle, neutral" in r.err
