"""Server-rendered HTML for the dashboard: one layout, tables, plotly chart divs, forms.

Every value is escaped; charts are JSON in a ``data-figure`` attribute that ``/static/app.js``
hands to the plotly.js served from the installed ``plotly`` package (no CDN).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from perpscope.web.pages import Page, Table
from perpscope.web.values import cell_text, json_value

__all__ = ["NAV", "layout", "page_html", "record_html", "table_html"]

NAV: tuple[tuple[str, str], ...] = (
    ("/", "Overview"),
    ("/funding", "Funding"),
    ("/oi", "Open interest"),
    ("/liquidations", "Liquidations"),
    ("/cvd", "CVD"),
    ("/basis", "Basis"),
    ("/options", "Options"),
    ("/signals", "Signals"),
    ("/calc", "Calculators"),
    ("/sql", "SQL"),
)


def layout(title: str, body: str, *, simulated: bool, active: str, refresh_s: int | None) -> str:
    """A whole page: navigation, the SIMULATED banner for a demo store, ``body``."""
    nav = "".join(
        f'<a href="{href}"{" class=active" if href == active else ""}>{escape(label)}</a>'
        for href, label in NAV
    )
    banner = (
        '<div class="sim" id="simulated">SIMULATED: simulator data (sim1..sim3), '
        "not a real market</div>"
        if simulated
        else ""
    )
    refresh = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"{refresh}<title>{escape(title)} · perpscope</title>"
        '<link rel=stylesheet href="/static/app.css">'
        '<script src="/static/plotly.min.js"></script>'
        '<script src="/static/app.js" defer></script></head><body>'
        f'<nav><span class="brand">perpscope</span>{nav}</nav>{banner}'
        f"<main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )


def _heat_style(value: Any, scale: float) -> str:
    """Background by extremity: green for negative, red for positive, saturating at ``scale``."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        return ""
    strength = min(abs(float(value)) / scale, 1.0) if scale > 0 else 0.0
    hue = "220,60,60" if value > 0 else "40,170,90"
    return f' style="background:rgba({hue},{0.08 + 0.72 * strength:.2f})"'


def table_html(table: Table) -> str:
    """A titled table; every cell formatted as the terminal formats it."""
    head = f"<h2>{escape(table.title)}</h2>"
    if not table.rows:
        return head + '<p class="empty">No rows.</p>'
    columns: list[str] = []
    for row in table.rows:
        columns.extend(k for k in row if k not in columns)
    ths = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = []
    for row in table.rows:
        tds = []
        for c in columns:
            style = _heat_style(row.get(c), table.heat_scale) if c == table.heat else ""
            num = isinstance(row.get(c), int | float) and not isinstance(row.get(c), bool)
            cls = ' class="num"' if num else ""
            tds.append(f"<td{cls}{style}>{escape(cell_text(c, row.get(c)))}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    return f'{head}<div class="scroll"><table><tr>{ths}</tr>{"".join(body)}</table></div>'


def record_html(title: str, record: Mapping[str, Any]) -> str:
    """One record as a two-column table."""
    rows = "".join(
        f"<tr><th>{escape(str(k))}</th><td class=num>{escape(cell_text(str(k), v))}</td></tr>"
        for k, v in record.items()
        if not isinstance(v, Mapping | list | tuple)
    )
    return f'<h2>{escape(title)}</h2><table class="record">{rows}</table>'


def chart_html(figure: Mapping[str, Any]) -> str:
    """A plotly chart div; ``app.js`` draws it."""
    data = escape(json.dumps(json_value(figure), allow_nan=False), quote=True)
    return f'<div class="chart" data-figure="{data}"></div>'


def notes_html(notes: Sequence[str]) -> str:
    """Notes above the content (missing data, estimates)."""
    return "".join(f'<p class="note">{escape(n)}</p>' for n in notes)


def page_html(page: Page, extra: str = "") -> str:
    """The body of a data page: notes, charts, tables."""
    return (
        notes_html(page.notes)
        + extra
        + "".join(chart_html(c) for c in page.charts)
        + "".join(table_html(t) for t in page.tables)
    )
