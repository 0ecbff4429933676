"""Every JSON endpoint of the dashboard against a long-squeeze demo store, bad input included.

The app is the real one over the real services; answers are checked against the services' own
results where a page only rearranges them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

PAGES = ["funding", "oi", "liquidations", "cvd", "basis", "options", "signals"]


def _json(client: Any, url: str, status: int = 200) -> Any:
    res = client.get(url)
    assert res.status_code == status, (url, res.status_code, res.text[:500])
    assert res.headers["content-type"].startswith("application/json")
    return res.json()


@pytest.mark.parametrize("name", PAGES)
def test_every_api_page_answers_json_marked_simulated_on_a_demo_store(
    client: Any, name: str
) -> None:
    doc = _json(client, f"/api/{name}")

    assert doc["page"] == name
    assert doc["simulated"] is True
    assert isinstance(doc["data"], dict)


def test_api_funding_carries_the_services_funding_table(client: Any, web_store: Path) -> None:
    from perpscope.services.filters import MarketQuery
    from perpscope.services.funding_table import funding_table_report
    from perpscope.store.lake import Lake

    expected = funding_table_report(Lake(web_store), MarketQuery.make())

    doc = _json(client, "/api/funding")

    venues = {(r["venue"], r["instrument"]): r["rate_8h"] for r in doc["data"]["venues"]}
    assert venues == {
        (r["venue"], r["instrument"]): pytest.approx(r["rate_8h"])
        for r in expected.venues.to_dicts()
    }
    assert {r["asset"] for r in doc["data"]["assets"]} == {"BTC", "ETH", "SOL"}
    assert len(doc["data"]["history"]) > 0


def test_api_funding_for_one_asset_has_only_that_asset(client: Any) -> None:
    doc = _json(client, "/api/funding?asset=eth")

    assert {r["instrument"].split("-")[0] for r in doc["data"]["venues"]} == {"ETH"}


def test_api_oi_shares_of_each_asset_sum_to_one(client: Any) -> None:
    doc = _json(client, "/api/oi")

    per_asset: dict[str, float] = {}
    for r in doc["data"]["venues"]:
        asset = r["instrument"].split("-")[0]
        per_asset[asset] = per_asset.get(asset, 0.0) + r["share"]
    assert per_asset
    assert all(v == pytest.approx(1.0) for v in per_asset.values()), per_asset


def test_api_liquidations_is_labelled_estimated_and_has_realised_rows(client: Any) -> None:
    doc = _json(client, "/api/liquidations?venue=sim1&instrument=BTC-USDT-PERP")

    heat = doc["data"]["heatmap"]
    assert heat["estimated"] is True
    assert heat["venue"] == "sim1"
    assert heat["instrument"] == "BTC-USDT-PERP"
    assert heat["levels"]
    assert {r["label"] for r in doc["data"]["realised"]} == {"REALISED"}


def test_api_options_reads_the_simulated_chain_of_the_demo_store(client: Any) -> None:
    # the demo store's options are listed on sim1 (the simulator's options market); no venue
    # given reads that one
    doc = _json(client, "/api/options")

    data = doc["data"]
    assert data["available"] is True
    assert data["pcr"]["venue"] == "sim1"
    assert data["pcr"]["call_oi"] > 0
    assert data["pcr"]["put_oi"] > 0
    assert data["maxpain"]
    assert any(r["oi_contracts"] > 0 for r in data["oi_by_strike"])
    assert all(r["otm_iv"] > 0 for r in data["smile"]["smile"])


def test_api_options_of_a_venue_without_a_chain_says_what_is_missing(client: Any) -> None:
    doc = _json(client, "/api/options?venue=deribit")

    assert doc["data"]["available"] is False
    assert "no options snapshots" in doc["data"]["note"]


def test_api_signals_names_a_scenario_per_asset(client: Any) -> None:
    doc = _json(client, "/api/signals")

    assert {s["asset"] for s in doc["data"]["scenarios"]} == {"BTC", "ETH", "SOL"}
    assert all(s["scenario"] for s in doc["data"]["scenarios"])
    # the API carries raw values (fractions); the page's evidence reads as the terminal's:
    # funding as a rate, the OI percentile as one
    assert isinstance(doc["data"]["scenarios"][0]["evidence"][0]["value"], float | None)
    html = client.get("/signals").text
    assert re.search(r"funding_8h: [+-]\d\.\d{4}%", html), html[:2000]
    assert re.search(r"oi_pct_30d: pctl \d+", html), html[:2000]


def test_api_brief_is_the_brief_services_document(client: Any, web_store: Path) -> None:
    from perpscope.services.brief import build_brief
    from perpscope.store.lake import Lake

    expected = build_brief(Lake(web_store), ["BTC", "ETH"])

    doc = _json(client, "/api/brief?assets=btc,eth")

    assert doc["simulated"] is True
    assert doc["generated_at"].endswith("Z")
    assert [a["asset"] for a in doc["assets"]] == ["BTC", "ETH"]
    for got, want in zip(doc["assets"], expected["assets"], strict=True):
        assert set(got) >= {"asset", "funding", "open_interest", "liquidations", "options",
                            "regime", "scenario", "setups", "alerts"}  # fmt: skip
        assert got["funding"]["aggregate_rate_8h"] == pytest.approx(
            want["funding"]["aggregate_rate_8h"]
        )
        assert got["scenario"]["scenario"] == want["scenario"]["scenario"]


def test_api_brief_validates_against_the_published_schema(client: Any) -> None:
    import jsonschema

    schema_path = Path(__file__).resolve().parents[2] / "docs" / "brief.schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))

    doc = _json(client, "/api/brief")

    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)  # raises if invalid
    assert doc["command"] == "brief"
    assert doc["simulated"] is True  # the tests' store is a demo store
    assert doc["assets"]
    assert all(a["funding"]["available"] for a in doc["assets"])


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("/api/funding?asset=B%24C", "bad asset"),
        ("/api/funding?asset=BTC,ETH", "one asset"),
        ("/api/oi?asset=%1b%5b2J", "bad asset"),
        ("/api/liquidations?venue=nosuch&instrument=BTC-USDT-PERP", "nosuch"),
        ("/api/liquidations?venue=sim1&instrument=NOT-AN-INSTRUMENT", "NOT-AN-INSTRUMENT"),
        ("/api/options?underlying=../../etc", "bad options"),
        ("/api/calc/liq?entry_px=abc", "entry_px must be a number"),
        ("/api/calc/liq?entry_px=nan", "finite"),
        ("/api/calc/liq?side=sideways", "side must be one of"),
        ("/api/calc/liq?leverage=-3", "leverage"),
        ("/api/calc/funding?bogus=1", "unknown field"),
        ("/api/calc/nosuch", "no calculator"),
        ("/api/sql", "q"),
        ("/api/brief?assets=B%24C", "bad asset"),
        ("/api/sql?q=", "empty query"),
    ],
)
def test_bad_parameters_get_a_4xx_with_a_clear_json_message(
    client: Any, url: str, fragment: str
) -> None:
    res = client.get(url)

    assert 400 <= res.status_code < 500, (res.status_code, res.text[:300])
    body = res.json()
    assert set(body) == {"error"}
    assert fragment in body["error"]
    assert "Traceback" not in res.text


def test_api_calculators_agree_with_the_calc_service(client: Any) -> None:
    from perpscope.services import calc

    expected = calc.funding(side="long", notional_usd=100000, rate="0.01%", interval_h=8, days=30)

    doc = _json(
        client,
        "/api/calc/funding?side=long&notional_usd=100000&rate=0.01%25&interval_h=8&days=30",
    )

    assert doc["data"]["total_usd"] == pytest.approx(expected["total_usd"])
    assert doc["data"]["total_usd"] == pytest.approx(-100000 * 0.0001 * 90)


def test_api_sql_runs_a_read_only_query(client: Any) -> None:
    doc = _json(client, "/api/sql?q=SELECT count(*) AS n FROM funding")

    assert doc["columns"] == [{"name": "n", "type": "BIGINT"}]
    assert doc["rows"] == [{"n": 288}]
    assert doc["truncated"] is False


@pytest.mark.parametrize(
    "query",
    [
        "DROP TABLE funding",
        "DELETE FROM funding",
        "INSERT INTO funding VALUES (1)",
        "CREATE TABLE x AS SELECT 1",
        "ATTACH '/tmp/x.db' AS x",
        "COPY (SELECT 1) TO '/tmp/perpscope-web-test.csv'",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM '/etc/passwd'",
        "SELECT 1; DROP TABLE funding",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "PRAGMA database_list",
    ],
)
def test_api_sql_refuses_hostile_queries_with_a_4xx(client: Any, query: str) -> None:
    res = client.get("/api/sql", params={"q": query})

    assert 400 <= res.status_code < 500, (query, res.status_code, res.text[:300])
    assert res.json()["error"]
    assert not Path("/tmp/perpscope-web-test.csv").exists()


def test_api_sql_still_answers_after_a_refusal(client: Any) -> None:
    client.get("/api/sql", params={"q": "DROP TABLE funding"})

    doc = _json(client, "/api/sql?q=SELECT count(*) AS n FROM funding")

    assert doc["rows"] == [{"n": 288}]


def test_an_unknown_path_is_a_404_not_a_500(client: Any) -> None:
    res = client.get("/api/nosuch")

    assert res.status_code == 404


def test_plotly_is_served_locally_from_the_plotly_package(client: Any) -> None:
    import plotly

    res = client.get("/static/plotly.min.js")

    assert res.status_code == 200
    local = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert res.content == local.read_bytes()


@pytest.mark.parametrize("path", ["/", "/funding", "/oi", "/liquidations", "/cvd", "/basis",
                                  "/options", "/signals", "/calc", "/sql"])  # fmt: skip
def test_every_page_is_html_with_the_simulated_banner_and_no_external_asset(
    client: Any, path: str
) -> None:
    res = client.get(path)

    assert res.status_code == 200, res.text[:300]
    assert "SIMULATED" in res.text
    assert "http://" not in res.text
    assert "https://" not in res.text


def test_the_sql_page_shows_a_refusal_with_a_400(client: Any) -> None:
    res = client.get("/sql", params={"q": "ATTACH '/tmp/x.db' AS x"})

    assert res.status_code == 400
    assert 'id="sql-error"' in res.text
    assert "Traceback" not in res.text


def test_an_html_page_with_a_bad_parameter_is_a_400_page_with_the_message(client: Any) -> None:
    res = client.get("/liquidations?venue=sim1&instrument=DOGE-USDT-PERP")

    assert res.status_code == 400
    assert res.headers["content-type"].startswith("text/html")
    assert "no 1h candles for sim1 DOGE-USDT-PERP" in res.text


@pytest.mark.parametrize("path", ["/", "/funding", "/oi", "/liquidations", "/signals"])
def test_data_pages_reload_every_minute_to_follow_watch(client: Any, path: str) -> None:
    res = client.get(path)

    assert '<meta http-equiv="refresh" content="60">' in res.text


@pytest.mark.parametrize("path", ["/calc", "/sql"])
def test_form_pages_do_not_reload_and_lose_what_was_typed(client: Any, path: str) -> None:
    res = client.get(path)

    assert 'http-equiv="refresh"' not in res.text


def test_api_sql_over_its_time_limit_answers_408_and_the_server_still_answers(
    web_store: Path,
) -> None:
    from fastapi.testclient import TestClient

    from perpscope.config import load_config, with_store_path
    from perpscope.store.lake import Lake
    from perpscope.web import create_app

    # the workbench's limit from the environment, as a user would set it: two seconds (the
    # endless query needs minutes; a constant query needs milliseconds once the child is up)
    config = with_store_path(
        load_config(environ={"PERPSCOPE_SQL_TIMEOUT_S": "2"}), web_store, "test"
    )
    endless = "SELECT sum(hash(a.range)) AS s FROM range(1000000000000) a"  # ~1e12 rows
    with TestClient(create_app(Lake(web_store), config), raise_server_exceptions=False) as c:
        res = c.get("/api/sql", params={"q": endless})
        after = c.get("/api/sql", params={"q": "SELECT 42 AS n"})

    assert res.status_code == 408, (res.status_code, res.text[:300])
    assert "time limit" in res.json()["error"]
    assert after.status_code == 200
    assert after.json()["rows"] == [{"n": 42}]


def test_overview_cards_show_the_options_panel_of_the_simulated_chain(client: Any) -> None:
    # BTC and ETH have options on the demo store (sim1): their cards show the put/call OI ratio
    # and the next expiry's max pain of the brief's document; SOL's says what is missing
    doc = client.get("/api/brief?assets=BTC,ETH,SOL").json()
    page = client.get("/?assets=BTC,ETH,SOL").text
    cards = {a["asset"]: page.split(f'id="asset-{a["asset"]}"', 1)[1].split("</section>", 1)[0]
             for a in doc["assets"]}  # fmt: skip
    for a in doc["assets"]:
        opt, card = a["options"], cards[a["asset"]]
        if a["asset"] == "SOL":
            assert opt["available"] is False
            assert "no options snapshots" in card
            continue
        assert opt["available"] is True
        assert f"put/call OI <b>{opt['summary']['pcr_oi']:.2f}</b>" in card
        assert "Options (sim1)" in card
        assert opt["next_expiry"]["expiry"] in card


def test_overview_cluster_distances_read_as_percent(client: Any) -> None:
    # the brief's clusters carry distance_pct in percent (+1.5 = 1.5% away); the card shows it
    # as the terminal does (+1.5%), not as a raw number or multiplied again
    from perpscope.formats import fmt_change

    doc = client.get("/api/brief?assets=BTC").json()
    page = client.get("/?assets=BTC").text
    liq = doc["assets"][0]["liquidations"]
    rows = [*liq["clusters_above"], *liq["clusters_below"]]
    assert rows  # the long-squeeze demo has clusters on both sides

    for r in rows:
        assert f">{fmt_change(r['distance_pct'] / 100)}<" in page


def test_api_signals_carries_options_evidence_for_btc_not_sol(client: Any) -> None:
    # the demo store has option chains of BTC and ETH (venue sim1), none of SOL
    doc = _json(client, "/api/signals")
    names = {
        s["asset"]: {e["name"] for e in s["evidence"] if e["name"].startswith("options ")}
        for s in doc["data"]["scenarios"]
    }
    assert "options put/call OI" in names["BTC"]
    assert "options 25d skew vol pts" in names["BTC"]
    assert names["SOL"] == set()
    page = client.get("/signals")
    assert page.status_code == 200
    assert "Options evidence" in page.text
    assert "skew_25d_vol_pts" in page.text  # the table has rows (headers come from them)
