"""The dashboard in a real browser: Playwright driving Debian's chromium against ``perpscope serve``
started on a free port over a long-squeeze demo store.

Without chromium these tests fail under CI (``CI`` set) and skip elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import chromium_path

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip

# page -> how many plotly charts it draws on the demo store
CHARTS = {
    "/funding": 2, "/oi": 1, "/liquidations": 1, "/cvd": 1, "/basis": 1, "/": 1, "/options": 3
}  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    path = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    outside: list[str] = []
    pg.on(
        "request",
        lambda req: outside.append(req.url) if not req.url.startswith("http://127.0.0.1") else None,
    )
    yield pg
    context.close()
    assert errors == [], errors
    assert outside == [], outside


def _chart_traces(page: Any) -> list[int]:
    return list(
        page.evaluate(
            "Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => d.data.length)"
        )
    )


@pytest.mark.parametrize(("path", "charts"), sorted(CHARTS.items()))
def test_every_chart_page_draws_its_plotly_charts_with_data(
    server: str, page: Any, path: str, charts: int
) -> None:
    page.goto(server + path)
    page.wait_for_selector(".js-plotly-plot")

    traces = _chart_traces(page)

    assert len(traces) >= charts, traces
    assert all(n > 0 for n in traces), traces
    assert page.locator("#simulated").is_visible()


@pytest.mark.parametrize("path", ["/signals", "/calc", "/sql"])
def test_every_other_page_loads_with_the_simulated_banner(
    server: str, page: Any, path: str
) -> None:
    res = page.goto(server + path)

    assert res.status == 200
    assert page.locator("#simulated").is_visible()
    assert page.locator("h1").inner_text()


def test_the_liquidation_calculator_form_shows_the_service_result(server: str, page: Any) -> None:
    from perpscope.services import calc

    expected = calc.liquidation(
        None,
        calc.LiqRequest(venue="bybit", side="short", entry_px=3000, qty=2, leverage=20, mmr=0.005),
    )
    page.goto(server + "/calc")
    form = page.locator("#form-liq")
    form.locator("select[name=venue]").select_option("bybit")
    form.locator("select[name=side]").select_option("short")
    form.locator("input[name=entry_px]").fill("3000")
    form.locator("input[name=qty]").fill("2")
    form.locator("input[name=leverage]").fill("20")
    form.locator("input[name=mmr]").fill("0.005")

    form.locator("button").click()
    page.wait_for_selector("#result")

    result = page.locator("#result").inner_text()
    from perpscope.formats import fmt_price

    assert fmt_price(expected["liquidation_px"]) in result


def test_a_bad_calculator_value_shows_the_error_on_the_page(server: str, page: Any) -> None:
    page.goto(server + "/calc")
    form = page.locator("#form-funding")
    form.locator("input[name=days]").fill("forever")

    form.locator("button").click()

    assert "days must be a number" in page.locator("#calc-error").inner_text()


def test_the_sql_workbench_runs_a_query_and_refuses_a_write(
    server: str, page: Any, web_store: Path
) -> None:
    from perpscope.store.lake import Lake

    counts = Lake(web_store).read("funding", ["venue"])["venue"].value_counts().sort("venue")
    expected = [str(x) for row in counts.rows() for x in row]
    page.goto(server + "/sql")
    page.locator("textarea[name=q]").fill(
        "SELECT venue, count(*) AS n FROM funding GROUP BY venue ORDER BY venue"
    )
    page.locator("#sql-form button").click()
    page.wait_for_selector("#sql-result")

    cells = page.locator("#sql-result td").all_inner_texts()

    assert cells == expected

    page.locator("textarea[name=q]").fill("COPY (SELECT 1) TO '/tmp/perpscope-browser.csv'")
    page.locator("#sql-form button").click()
    assert "refused" in page.locator("#sql-error").inner_text()


SHOTS = [
    ("/", "dashboard-overview.png"),
    ("/liquidations", "dashboard-liquidations.png"),
    ("/options", "dashboard-options.png"),
]


@pytest.mark.parametrize(("path", "name"), SHOTS)
def test_screenshots_of_the_overview_liquidation_and_options_pages(
    server: str, page: Any, path: str, name: str, tmp_path: Path
) -> None:
    # PERPSCOPE_SCREENSHOTS=1 refreshes the ones in docs/ (the README shows them)
    folder = SCREENSHOTS if os.environ.get("PERPSCOPE_SCREENSHOTS") == "1" else tmp_path
    page.goto(server + path)
    page.wait_for_selector(".js-plotly-plot")
    page.wait_for_timeout(500)  # let plotly finish its first paint

    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=True)

    assert (folder / name).stat().st_size > 20_000
    assert page.locator("#simulated").is_visible()
