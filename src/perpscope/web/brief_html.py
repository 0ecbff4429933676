"""The overview page: the morning brief (:func:`perpscope.services.brief.build_brief`) as one card
per asset, read in the playbook's order: funding, OI, liquidations, scenario, then the chart."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from perpscope.formats import fmt_annual, fmt_change, fmt_price, fmt_rate, fmt_usd
from perpscope.web import html
from perpscope.web.pages import Page, Table

__all__ = ["brief_html"]

_VENUE_COLS = ("venue", "instrument", "rate_8h", "annualized", "zscore", "percentile")
_OI_COLS = ("venue", "instrument", "oi_usd", "share", "oi_change_24h", "quadrant")
_CLUSTER_COLS = ("price", "side", "notional_usd", "distance_pct")
_REALISED_COLS = ("venue", "instrument", "side", "events", "notional_usd")
_SETUP_COLS = ("setup", "venue", "direction", "stage", "strength", "entry_low_px")


def _pick(rows: list[Mapping[str, Any]], cols: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{c: r.get(c) for c in cols if c in r} for r in rows]


def _clusters(rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Cluster rows for display: their ``distance_pct`` is in percent (analytics.liquidations),
    the table shows fractions as percent like every other ``_pct`` column."""
    out = _pick(rows, _CLUSTER_COLS)
    for r in out:
        if isinstance(r.get("distance_pct"), int | float):
            r["distance_pct"] = r["distance_pct"] / 100.0
    return out


def _signed(text: str) -> str:
    cls = "pos" if text.startswith("+") else "neg" if text.startswith("-") else ""
    return f'<span class="{cls}">{escape(text)}</span>'


def _missing(panel: Mapping[str, Any]) -> str:
    return f'<p class="empty">{escape(str(panel.get("missing", "no data")))}</p>'


def _funding(p: Mapping[str, Any]) -> str:
    if not p.get("available"):
        return "<h3>Funding</h3>" + _missing(p)
    head = (
        f"<h3>Funding</h3><p>aggregate <b>{_signed(fmt_rate(p['aggregate_rate_8h']))}</b> per 8h "
        f"({escape(fmt_annual(p['aggregate_annualized']))} a year, {escape(p['weighting'])}-"
        f"weighted), spread {escape(fmt_rate(p['spread_8h']))} ({escape(str(p['high_venue']))} "
        f"high, {escape(str(p['low_venue']))} low)</p>"
    )
    episodes = p.get("extreme_episodes") or []
    note = (
        f"<p class=note>{len(episodes)} extreme-funding episode(s) in the window</p>"
        if episodes
        else ""
    )
    table = Table("", _pick(p.get("venues", []), _VENUE_COLS), heat="rate_8h")
    return head + note + html.table_html(table)


def _oi(p: Mapping[str, Any]) -> str:
    if not p.get("available"):
        return "<h3>Open interest</h3>" + _missing(p)
    head = (
        f"<h3>Open interest</h3><p><b>{escape(fmt_usd(p['total_usd']))}</b>, "
        f"{_signed(fmt_change(p['change_24h']))} in 24h</p>"
    )
    return head + html.table_html(
        Table("", _pick(p.get("venues", []), _OI_COLS), heat="oi_change_24h", heat_scale=0.15)
    )


def _liquidations(p: Mapping[str, Any]) -> str:
    if not p.get("available"):
        return "<h3>Liquidations</h3>" + _missing(p)
    asym = p.get("asymmetry") or {}
    head = (
        f"<h3>Liquidation clusters (ESTIMATED, {escape(str(p['venue']))} "
        f"{escape(str(p['instrument']))})</h3><p>{escape(str(asym.get('read', '')))}</p>"
    )
    above = Table("above", _clusters(p.get("clusters_above", [])))
    below = Table("below", _clusters(p.get("clusters_below", [])))
    realised = Table("REALISED, last 24h", _pick(p.get("realised_24h", []), _REALISED_COLS))
    return head + html.table_html(above) + html.table_html(below) + html.table_html(realised)


def _scenario(scen: Mapping[str, Any], setups: Mapping[str, Any], regime: Any) -> str:
    out = "<h3>Scenario</h3>"
    if scen.get("available"):
        out += (
            f"<p class=big>{escape(str(scen['scenario']).replace('_', ' '))} "
            f"<small>({escape(fmt_change(scen['confidence']).lstrip('+'))} confidence)</small></p>"
        )
    else:
        out += _missing(scen)
    series = regime.get("series", []) if isinstance(regime, Mapping) else []
    if series:
        out += f"<p>regime: {escape(str(series[-1].get('regime')))}</p>"
    rows = _pick(setups.get("setups", []), _SETUP_COLS) if setups.get("available") else []
    return out + html.table_html(Table("Active setups", rows))


def _options(p: Mapping[str, Any]) -> str:
    """Put/call OI and its reading, max pain of the next expiry, front ATM IV and the walls."""
    if not p.get("available"):
        return "<h3>Options</h3>" + _missing(p)
    s = p.get("summary") or {}
    nxt = p.get("next_expiry") or {}
    pcr = s.get("pcr_oi")
    reading = f" ({escape(str(s['pcr_reading']))})" if s.get("pcr_reading") else ""
    out = (
        f"<h3>Options ({escape(str(s.get('venue', '')))})</h3>"
        f"<p>put/call OI <b>{escape(f'{pcr:.2f}' if isinstance(pcr, float) else '-')}</b>"
        f"{reading}"
    )
    iv = s.get("front_atm_iv")
    if isinstance(iv, float):
        inverted = " (term structure inverted)" if s.get("term_structure_inverted") else ""
        out += f", front ATM IV {escape(fmt_change(iv).lstrip('+'))}{inverted}"
    out += "</p>"
    if nxt.get("max_pain_px") is not None:
        out += (
            f"<p>max pain {escape(str(nxt.get('expiry', '')))}: "
            f"<b>{escape(fmt_price(nxt['max_pain_px']))}</b></p>"
        )
    if s.get("top_walls"):
        out += f"<p>OI walls: {escape(str(s['top_walls']))}</p>"
    return out


def _card(a: Mapping[str, Any]) -> str:
    price = a.get("price") or {}
    title = escape(str(a["asset"]))
    if price.get("available"):
        title += (
            f" <span class=big>{escape(fmt_price(price['price']))}</span> "
            f"{_signed(fmt_change(price['change_24h']))}"
        )
    opt = _options(a.get("options") or {})
    alerts = (a.get("alerts") or {}).get("alerts") or []
    return (
        f'<section class="card" id="asset-{escape(str(a["asset"]))}"><h2>{title}</h2>'
        + _funding(a.get("funding") or {})
        + _oi(a.get("open_interest") or {})
        + _liquidations(a.get("liquidations") or {})
        + _scenario(a.get("scenario") or {}, a.get("setups") or {}, a.get("regime"))
        + opt
        + f"<h3>Alerts, last 24h</h3><p>{len(alerts)} fired</p></section>"
    )


def clusters_figure(doc: Mapping[str, Any]) -> dict[str, Any]:
    """ESTIMATED liquidation clusters per asset, as distance from price (bars by notional)."""
    traces = []
    for a in doc.get("assets", []):
        liq = a.get("liquidations") or {}
        if not liq.get("available"):
            continue
        rows = [*liq.get("clusters_below", []), *liq.get("clusters_above", [])]
        traces.append(
            {
                "type": "bar",
                "name": str(a["asset"]),
                "x": [r["distance_pct"] for r in rows],
                "y": [r["notional_usd"] for r in rows],
                "hovertext": [f"{r['side']} {fmt_usd(r['notional_usd'])}" for r in rows],
            }
        )
    return {
        "data": traces,
        "layout": {
            "title": {"text": "Nearest liquidation clusters (ESTIMATED), by distance from price"},
            "xaxis": {"title": {"text": "distance from price, %"}},
            "yaxis": {"title": {"text": "USD"}},
            "height": 320,
        },
    }


def brief_html(page: Page) -> str:
    """The brief as cards, one per asset, with the clusters chart on top."""
    doc = page.data
    generated = str(doc.get("generated_at", ""))[:16].replace("T", " ")
    body = html.notes_html(page.notes) + f"<p>generated {escape(generated)} UTC</p>"
    body += html.chart_html(clusters_figure(doc))
    cards = "".join(_card(a) for a in doc.get("assets", []))
    return body + f'<div class="cards">{cards}</div>'
