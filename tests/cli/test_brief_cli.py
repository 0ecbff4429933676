"""``perpscope brief`` on the session's demo store (read-only) and on copies of it.

The brief only gathers what other services compute; these tests check its numbers against the
store read directly with polars (the latest funding per venue, the latest OI, the last close),
its JSON against the published schema, and its degraded panels and errors.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import polars as pl
import pytest

from perpscope.store.lake import Lake
from tests.conftest import require_shared

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "brief.schema.json").read_text()
)


def brief_json(cli: Any, store: Path, *args: str) -> dict[str, Any]:
    r = cli("--store", str(store), "brief", *args, "--format", "json")
    assert r.code == 0, r.err
    doc: dict[str, Any] = json.loads(r.out)
    return doc


@pytest.fixture(scope="module")
def doc(demo_store: Path) -> dict[str, Any]:
    import contextlib
    import io

    from perpscope.cli.main import run

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):
        run(["--store", str(demo_store), "brief", "--format", "json"])
    return json.loads(buf.getvalue())  # type: ignore[no-any-return]


def test_the_json_follows_the_published_schema(doc: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(doc, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert doc["simulated"] is True
    assert [a["asset"] for a in doc["assets"]] == ["BTC", "ETH", "SOL"]


def test_funding_per_venue_is_the_latest_stored_settlement(
    doc: dict[str, Any], demo_store: Path
) -> None:
    """rate_8h = rate x 8 / interval of each venue's last settlement, read here with polars."""
    funding = Lake(demo_store).read("funding")
    last = funding.sort("ts").group_by("venue", "instrument").last()
    for a in doc["assets"]:
        panel = a["funding"]
        assert panel["available"]
        for v in panel["venues"]:
            row = last.filter(
                (pl.col("venue") == v["venue"]) & (pl.col("instrument") == v["instrument"])
            ).row(0, named=True)
            assert v["rate_8h"] == pytest.approx(row["rate"] * 8 / row["interval_h"], rel=1e-12)
            assert v["ts"] == row["ts"].strftime("%Y-%m-%dT%H:%M:%SZ")
        rates = [v["rate_8h"] for v in panel["venues"]]
        # the spread and each rate are rounded to 12 significant digits in JSON on their own
        assert panel["spread_8h"] == pytest.approx(max(rates) - min(rates), rel=1e-11)


def test_open_interest_total_and_price_come_from_the_store(
    doc: dict[str, Any], demo_store: Path
) -> None:
    lake = Lake(demo_store)
    oi = lake.read("open_interest").sort("ts").group_by("venue", "instrument").last()
    candles = lake.read("ohlcv").filter(pl.col("kind") == "trade").sort("ts")
    for a in doc["assets"]:
        mine = oi.filter(pl.col("instrument").str.starts_with(a["asset"] + "-"))
        assert a["open_interest"]["total_usd"] == pytest.approx(mine["oi_usd"].sum(), rel=1e-9)
        p = a["price"]
        series = candles.filter(
            (pl.col("venue") == p["venue"]) & (pl.col("instrument") == p["instrument"])
        )
        assert p["price"] == pytest.approx(series["c"][-1], rel=1e-11)  # 12 significant digits


def test_panels_equal_their_services_computed_here(doc: dict[str, Any], demo_store: Path) -> None:
    """OI per venue, the liquidation clusters, the scenario, the setups and the alerts are what
    oi_summary_report, heatmap_report, scenario_report, run_signals (record=False) and
    alert_history give when called directly."""
    from datetime import datetime, timedelta

    from perpscope.services.filters import MarketQuery
    from perpscope.services.liquidations import heatmap_report
    from perpscope.services.markets import oi_summary_report
    from perpscope.services.signals import run_signals, scenario_report
    from perpscope.services.watch import alert_history

    lake = Lake(demo_store)
    for a in doc["assets"]:
        asset = a["asset"]
        summary = oi_summary_report(lake, MarketQuery.make(assets=[asset]))
        by_venue = {r["venue"]: r for r in summary.iter_rows(named=True)}
        oi = a["open_interest"]
        assert sorted(v["venue"] for v in oi["venues"]) == sorted(by_venue)
        for v in oi["venues"]:
            row = by_venue[v["venue"]]
            assert v["oi_usd"] == pytest.approx(row["oi_usd"], rel=1e-11)
            assert v["quadrant"] == row["quadrant"]
            assert v["spike"] == row["spike"]

        liq = a["liquidations"]
        rep = heatmap_report(lake, liq["venue"], liq["instrument"])
        price = rep.heatmap.price
        above = rep.clusters.filter(pl.col("price") > price).sort("price").head(3)
        assert [c["price"] for c in liq["clusters_above"]] == pytest.approx(
            above["price"].to_list()
        )
        assert [c["notional_usd"] for c in liq["clusters_above"]] == pytest.approx(
            above["notional_usd"].to_list()
        )
        assert liq["asymmetry"]["read"] == rep.asymmetry.read

        reading = scenario_report(lake, asset)
        assert a["scenario"]["scenario"] == reading.scenario
        assert a["scenario"]["confidence"] == pytest.approx(reading.confidence)
        assert [e["name"] for e in a["scenario"]["evidence"]] == [e.name for e in reading.evidence]

        found = run_signals(lake, [asset], record=False)
        got = sorted((s["setup"], s["direction"], s["stage"]) for s in a["setups"]["setups"])
        assert got == sorted((s.setup, s.direction, s.stage) for s in found)

        until = datetime.fromisoformat(a["scenario"]["ts"].replace("Z", "+00:00"))
        fired = [e for e in alert_history(lake, since=until - timedelta(hours=24))
                 if e["asset"] in (asset, "*") and e["ts"] <= until]  # fmt: skip
        assert len(a["alerts"]["alerts"]) == len(fired)


def test_missing_data_degrades_to_a_note(doc: dict[str, Any]) -> None:
    """The demo store's simulated options market lists BTC and ETH options only: SOL's options
    panel says so, the brief still renders."""
    by_asset = {a["asset"]: a for a in doc["assets"]}
    sol = by_asset["SOL"]["options"]
    assert sol["available"] is False
    assert sol["missing"].startswith("no options snapshots for SOL in the store, on any venue")
    for a in doc["assets"]:
        assert a["scenario"]["available"]
        assert a["liquidations"]["label"] == "ESTIMATED"
    assert f"options missing for SOL: {sol['missing']}" in doc["notes"]


def test_options_panel_shows_the_simulated_chain_of_the_demo_store(
    cli: Any, demo_store: Path, doc: dict[str, Any]
) -> None:
    """BTC and ETH options (listed on sim1 by the simulator) light up the panel; its figures
    are those of ``perpscope options summary`` (both read the latest chain)."""
    for a in doc["assets"]:
        if a["asset"] == "SOL":
            continue
        opt = a["options"]
        assert opt["available"] is True
        assert opt["summary"]["venue"] == "sim1"
        assert opt["summary"]["instruments"] > 0
        assert opt["next_expiry"]["days_to_expiry"] >= 0
        direct = cli("--store", str(demo_store), "options", "summary", "--underlying",
                     a["asset"], "--format", "json")  # fmt: skip
        assert direct.code == 0, direct.err
        data = json.loads(direct.out)["data"]
        assert opt["summary"]["pcr_oi"] == pytest.approx(data["pcr_oi"])
        assert opt["summary"]["main_expiry_max_pain_px"] == data["main_expiry_max_pain_px"]


@pytest.mark.shared_data
def test_options_light_up_once_a_chain_is_imported(
    cli: Any, demo_store: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    shutil.copytree(demo_store, store)
    chain = require_shared("options/deribit_btc_option_chain_2021-02-11.csv.gz")
    r = cli("--store", str(store), "import", "options", str(chain), "--venue", "deribit")
    assert r.code == 0, r.err
    b = brief_json(cli, store, "--assets", "BTC")
    jsonschema.validate(b, SCHEMA, cls=jsonschema.Draft202012Validator)
    opt = b["assets"][0]["options"]
    assert opt["available"]
    direct = cli("--store", str(store), "options", "summary", "--underlying", "BTC",
                 "--format", "json")  # fmt: skip
    assert direct.code == 0, direct.err
    assert opt["summary"]["pcr_oi"] == pytest.approx(json.loads(direct.out)["data"]["pcr_oi"])


def test_alerts_panel_keeps_the_assets_alerts_of_the_last_24h(
    cli: Any, demo_store: Path, tmp_path: Path
) -> None:
    """Alerts stored on a copy of the demo store: BTC's and venue-wide ones ('*') fired in the 24
    hours up to --at are listed; older ones, later ones and ETH's are not."""
    from datetime import datetime, timedelta

    store = tmp_path / "store"
    shutil.copytree(demo_store, store)
    lake = Lake(store)
    at = lake.read("funding")["ts"].max()
    assert isinstance(at, datetime)
    events = [("funding_extreme", "sim1", "BTC-USDT-PERP", at - timedelta(hours=1), "BTC"),
              ("funding_extreme", "sim1", "BTC-USDT-PERP", at - timedelta(hours=30), "BTC"),
              ("funding_extreme", "sim1", "BTC-USDT-PERP", at + timedelta(hours=1), "BTC"),
              ("oi_surge", "sim2", "ETH-USDT-PERP", at - timedelta(hours=2), "ETH"),
              ("venue_outage", "sim3", "*", at - timedelta(hours=3), "*")]  # fmt: skip
    lake.ingest(
        "alert_events",
        pl.DataFrame(
            [
                (r, v, i, ts, a, "warning", f"{r} on {v} {i}", 1.0, "{}", "", "", ts)
                for r, v, i, ts, a in events
            ],  # fmt: skip
            schema=[
                "rule",
                "venue",
                "instrument",
                "ts",
                "asset",
                "severity",
                "message",
                "value",
                "evidence_json",
                "notify_to",
                "delivered_to",
                "fired_at",
            ],  # fmt: skip
            orient="row",
        ),
    )
    b = brief_json(cli, store, "--assets", "BTC", "--at", at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    jsonschema.validate(b, SCHEMA, cls=jsonschema.Draft202012Validator)
    got = sorted((x["rule"], x["ts"]) for x in b["assets"][0]["alerts"]["alerts"])
    stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    assert got == [("funding_extreme", stamp(at - timedelta(hours=1))),
                   ("venue_outage", stamp(at - timedelta(hours=3)))]  # fmt: skip
    table = cli("--store", str(store), "brief", "--assets", "BTC", "--at", stamp(at))
    assert table.code == 0, table.err
    assert "venue_outage" in table.out
    assert "funding_extreme" in table.out


def test_table_fits_80_columns_and_names_every_panel(cli: Any, demo_store: Path) -> None:
    r = cli("--store", str(demo_store), "brief", "--assets", "BTC")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert max(len(line) for line in lines) <= 80
    for label in ("Funding", "Open interest", "Liquidations", "Options", "Regime", "Scenario",
                  "Setups", "Alerts"):  # fmt: skip
        assert any(line.lstrip("│ ").startswith(label) for line in lines), label
    assert "SIMULATED" in r.out
    assert "e-0" not in r.out  # no scientific notation


@pytest.mark.parametrize("width", [80, 120])
def test_table_keeps_each_venue_next_to_its_number(
    cli: Any, demo_store: Path, doc: dict[str, Any], width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 and 120 columns no line overflows, and each venue's funding (formatted as the
    terminal does, +0.0100%) and OI ($4.42M) stay on one line with the venue's name."""
    from perpscope.cli._common import out_console
    from perpscope.formats import fmt_rate, fmt_usd

    monkeypatch.setattr(out_console._get(), "_width", width)  # type: ignore[attr-defined]
    r = cli("--store", str(demo_store), "brief")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert max(len(line) for line in lines) <= width
    for a in doc["assets"]:
        for v in a["funding"]["venues"]:
            assert any(f"{v['venue']} {fmt_rate(v['rate_8h'])}" in line for line in lines)
        for v in a["open_interest"]["venues"]:
            assert any(f"{v['venue']} {fmt_usd(v['oi_usd'])}" in line for line in lines)
        for c in a["cvd"]["series"]:
            assert any(f"{c['venue']} {c['market']} {c['cvd_base']:+,.1f}" in x for x in lines)
    assert (max(len(line) for line in lines) > 80) is (width > 80)  # the width was honoured


def test_html_is_one_self_contained_file(cli: Any, demo_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "brief.html"
    r = cli("--store", str(demo_store), "brief", "--assets", "BTC", "--format", "html",
            "--out", str(out))  # fmt: skip
    assert r.code == 0, r.err
    page = out.read_text()
    assert page.count("Plotly.newPlot") == 2  # funding and OI charts
    assert 'src="http' not in page
    assert "SIMULATED" in page


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--assets", "DOGE"], "no data for DOGE (assets in the store: BTC, ETH, SOL)"),
        (["--format", "xml"], "--format 'xml': use table, json or html"),
        (["--format", "html"], "--format html needs --out FILE.html"),
        (["--out", "brief.txt"], "--out writes --format json or html"),
        (["--assets", "BTC,DOGE,XRP"], "no data for DOGE, XRP"),
        (["--at", "yesterday-ish"], "--at"),
        (["--at", "2000-01-01"], "no funding before 2000-01-01; the data starts"),
    ],
)
def test_bad_arguments_are_one_line_exit_2(
    cli: Any, demo_store: Path, args: list[str], needle: str
) -> None:
    r = cli("--store", str(demo_store), "brief", *args)
    assert r.code == 2
    assert needle in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_every_command_the_demo_suggests_runs_on_the_demo_store(
    cli: Any, demo_store: Path, tmp_path: Path
) -> None:
    """The demo's "Try next" list, the brief first, each run on (a copy of) the demo store."""
    import shlex

    from perpscope.cli.demo_cmd import try_next

    store = tmp_path / "demo"
    shutil.copytree(demo_store, store)
    lines = try_next(store)
    assert lines[0].endswith(" brief")
    for line in lines:
        args = shlex.split(line)[1:]
        r = cli(*args)
        assert r.code == 0, (line, r.err)
        assert r.out.strip(), line


def test_assets_built_together_equal_each_built_alone(demo_store: Path) -> None:
    """The assets are built in parallel threads: the same panels, in the order asked."""
    from perpscope.services.brief import build_brief

    lake = Lake(demo_store)
    together = build_brief(lake, ["SOL", "BTC", "ETH"])["assets"]
    assert [a["asset"] for a in together] == ["SOL", "BTC", "ETH"]
    for a in together:
        (alone,) = build_brief(lake, [a["asset"]])["assets"]
        assert json.dumps(a, sort_keys=True) == json.dumps(alone, sort_keys=True)


def _funding_panel(rates: dict[str, float], periods: dict[str, int]) -> dict[str, Any]:
    """A hand-built funding panel as the brief service returns it (rates per 8h as fractions)."""
    hi = max(rates, key=lambda v: rates[v])
    lo = min((v for v in rates if v != hi), key=lambda v: rates[v])  # ties: two venues
    return {
        "venues": [
            {"venue": v, "rate_8h": r, "zscore": None, "extreme_periods": periods.get(v, 0)}
            for v, r in rates.items()
        ],
        "aggregate_rate_8h": sum(rates.values()) / len(rates),
        "aggregate_annualized": 0.1095,
        "spread_8h": rates[hi] - rates[lo],
        "high_venue": hi,
        "low_venue": lo,
    }


def test_funding_line_says_how_many_settlements_an_extreme_has_lasted() -> None:
    from perpscope.cli.brief_cmd import _line_funding

    text = _line_funding(
        _funding_panel({"sim1": 0.0006, "sim2": -0.0007, "sim3": 0.0001}, {"sim1": 1, "sim2": 3})
    )
    assert "sim1 [green]+0.0600%[/]" in text
    assert "extreme for 1 settlement[/]" in text
    assert "extreme for 3 settlements[/]" in text
    assert text.count("extreme for") == 2  # sim3 (+0.01%) is not extreme
    # spread = 0.0006 - (-0.0007) = 0.0013 = 0.1300% per 8h, highest venue first
    assert "spread +0.1300% (sim1 > sim2)" in text


def test_funding_line_does_not_rank_venues_whose_rates_are_equal() -> None:
    from perpscope.cli.brief_cmd import _line_funding

    # two venues at the baseline: the spread is 0 and neither is "above" the other
    text = _line_funding(_funding_panel({"sim1": 0.0001, "sim3": 0.0001}, {}))
    assert "(sim1 = sim3)" in text
    assert ">" not in text.split("spread", 1)[1]
    assert "extreme" not in text
