"""The options page once a real Deribit chain (../shared/data) is imported into the demo store."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_shared

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def chain_store(web_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tmp_path_factory.mktemp("options") / "store"
    shutil.copytree(web_store, store)
    chain = require_shared("options/deribit_btc_option_chain_2021-02-11.csv.gz")
    done = subprocess.run(
        [sys.executable, "-m", "perpscope", "--store", str(store), "import", "options",
         str(chain), "--venue", "deribit", "--format", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return store


@pytest.fixture(scope="module")
def options_client(chain_store: Path) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from perpscope.config import load_config, with_store_path
    from perpscope.store.lake import Lake
    from perpscope.web import create_app

    config = with_store_path(load_config(environ={}), chain_store, "test")
    with TestClient(create_app(Lake(chain_store), config), raise_server_exceptions=False) as c:
        yield c


def test_api_options_carries_the_services_pcr_and_the_next_expiry(
    options_client: Any, chain_store: Path
) -> None:
    from perpscope.services.options import ChainQuery, maxpain_report, pcr_report
    from perpscope.store.lake import Lake

    lake = Lake(chain_store)
    expected_pcr = pcr_report(lake, ChainQuery())["pcr_oi"]
    next_expiry = min(r["expiry"] for r in maxpain_report(lake, ChainQuery()))

    res = options_client.get("/api/options?venue=deribit&underlying=BTC")

    assert res.status_code == 200, res.text[:300]
    data = res.json()["data"]
    assert data["available"] is True
    assert data["pcr"]["pcr_oi"] == pytest.approx(expected_pcr)
    assert data["expiry"] == next_expiry.isoformat()
    assert {r["expiry"] for r in data["maxpain_curve"]} == {next_expiry.isoformat()}
    assert data["oi_by_strike"]
    assert data["smile"]["smile"]


def test_options_page_draws_the_curve_oi_and_smile(options_client: Any) -> None:
    res = options_client.get("/options")

    assert res.status_code == 200
    assert res.text.count('class="chart"') == 3


def test_a_bad_expiry_is_a_4xx_with_a_message(options_client: Any) -> None:
    res = options_client.get("/api/options?expiry=tomorrow")

    assert res.status_code == 422
    assert "expiry" in res.json()["error"]
