"""``perpscope brief``: the morning brief, per asset, in the playbook's order.

Heavy libraries and the services are imported inside the command so the CLI starts fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from perpscope.cli._common import out_console, state
from perpscope.errors import UsageError

__all__ = ["brief"]


def _f(kind: str, x: Any) -> str:
    from perpscope import formats

    if x is None or (isinstance(x, float) and x != x):
        return "-"
    fn = {
        "rate": formats.fmt_rate,
        "usd": formats.fmt_usd,
        "chg": formats.fmt_change,
        "px": formats.fmt_price,
        "ann": formats.fmt_annual,
    }[kind]
    return str(fn(x))


def _signed(text: str) -> str:
    """Green for a rise, red for a fall (rich markup)."""
    if text.startswith("+"):
        return f"[green]{text}[/]"
    if text.startswith("-") and text != "-":
        return f"[red]{text}[/]"
    return text


# A panel's text: lines ("\n") of chunks ("\t"). On screen the chunks of a line are packed to
# the terminal's width (a chunk never splits: a venue stays next to its number); in HTML and
# on a narrow cell the tabs become two spaces.
_SEP = "\t"
_SOFT = "\v"  # a break point inside a phrase: one space when not broken


def _line_funding(p: dict[str, Any]) -> str:
    venues = _SEP.join(
        f"{v['venue']} {_signed(_f('rate', v['rate_8h']))}"
        + (f" z{v['zscore']:+.1f}" if v.get("zscore") is not None else "")
        + (
            f" [bold]extreme for {v['extreme_periods']} settlement"
            f"{'s' if v['extreme_periods'] > 1 else ''}[/]"
            if v.get("extreme_periods")
            else ""
        )
        for v in p["venues"]
    )
    agg = _f("rate", p.get("aggregate_rate_8h"))
    text = (
        f"{venues}\nagg {_signed(agg)}/8h{_SEP}({_f('ann', p.get('aggregate_annualized'))} a year)"
    )
    if p.get("spread_8h") is not None and p.get("high_venue") != p.get("low_venue"):
        # "sim1 > sim3" only when the shown rates differ (a spread that rounds to 0.0000%)
        order = ">" if round(abs(p["spread_8h"]) * 100, 4) > 0 else "="
        text += (
            f"{_SEP}spread {_f('rate', p['spread_8h'])} "
            f"({p['high_venue']} {order} {p['low_venue']})"
        )
    if p.get("stale_note"):
        text += "\n" + ("," + _SOFT).join(f"[yellow]{c}[/]" for c in p["stale_note"].split(", "))
    return text


def _line_oi(p: dict[str, Any]) -> str:
    head = (
        f"{_f('usd', p.get('total_usd'))} total{_SEP}{_signed(_f('chg', p.get('change_24h')))} 24h"
    )
    parts = []
    for v in p["venues"][:3]:
        spike = " [bold red]spike[/]" if v.get("spike") else ""
        parts.append(f"{v['venue']} {_f('usd', v.get('oi_usd'))} "
                     f"{_signed(_f('chg', v.get('oi_change_24h')))}{spike}")  # fmt: skip
    text = head + "\n" + _SEP.join(parts)
    read = [v for v in p["venues"] if v.get("quadrant") not in (None, "undefined")]
    if read:  # the largest venue whose price and OI both moved enough to read
        v = read[0]
        text += f"\nprice/OI on {v['venue']}: {v['quadrant'].replace('_', ' ')}"
        if v.get("reading"):
            text += f"{_SEP}({v['reading']})".replace("; ", ";" + _SOFT)
    elif p["venues"]:
        text += "\n[dim]price/OI: no clear quadrant (moves under the thresholds)[/]"
    return text


def _line_long_short(p: dict[str, Any]) -> str:
    parts = []
    for v in p["venues"][:3]:
        ratio = v.get("global_account")
        text = f"{v['venue']} {ratio:.2f}" if isinstance(ratio, float) else f"{v['venue']} -"
        if isinstance(v.get("top_position"), float):
            text += f" (top {v['top_position']:.2f})"
        parts.append(text)
    return "accounts" + _SEP + _SEP.join(parts)


def _line_cvd(p: dict[str, Any]) -> str:
    parts = [f"{s['venue']} {s['market']} {s['cvd_base']:+,.1f}" for s in p["series"][:4]]
    text = "base units" + _SEP + _SEP.join(parts)
    if p.get("divergences"):
        n = len(p["divergences"])
        text += f"\n[yellow]{n} recent CVD-price divergence{'s' if n > 1 else ''}[/]"
    return text


def _line_basis(p: dict[str, Any]) -> str:
    parts = [f"{s['venue']} {_signed(_f('rate', s.get('premium_index')))} "
             f"({_f('ann', s.get('premium_index_annualized'))}/y)"
             for s in p["series"][:3]]  # fmt: skip
    status = next((s.get("status") for s in p["series"] if s.get("status")), None)
    return "perp-index" + _SEP + _SEP.join(parts) + (f"\nbasis trade: {status}" if status else "")


def _line_liq(p: dict[str, Any]) -> str:
    def side(word: str, rows: list[dict[str, Any]]) -> str:
        chunks = [f"{_f('px', r['price'])} {_f('usd', r['notional_usd'])} "
                  f"({r['distance_pct']:+.1f}%)" for r in rows]  # fmt: skip
        return f"{word}{_SEP}" + (_SEP.join(chunks) or "none")

    lines = [f"[bold]ESTIMATED[/] map of {p['venue']} {p['instrument']}",
             side("above", p["clusters_above"]), side("below", p["clusters_below"]),
             p["asymmetry"]["read"].replace(": ", ":" + _SOFT)]  # fmt: skip
    realised = p.get("realised_24h") or []
    if realised:
        longs = sum(r.get("notional_usd") or 0.0 for r in realised if r.get("side") == "long")
        shorts = sum(r.get("notional_usd") or 0.0 for r in realised if r.get("side") == "short")
        lines.append(f"REALISED 24h:{_SEP}longs {_f('usd', longs)}{_SEP}shorts {_f('usd', shorts)}")
    else:
        lines.append("REALISED 24h: none stored")
    return "\n".join(lines)


def _line_options(p: dict[str, Any]) -> str:
    s = p.get("summary") or {}
    nxt = p.get("next_expiry") or {}
    pcr = s.get("pcr_oi")
    text = f"put/call OI {pcr:.2f}" if isinstance(pcr, float) else "put/call OI -"
    if s.get("pcr_reading"):
        text += f" ({s['pcr_reading']})"
    if nxt:
        text += f"\nmax pain {nxt.get('expiry', '')}: {_f('px', nxt.get('max_pain_px'))}"
    return text


def _line_regime(p: dict[str, Any]) -> str:
    rows = p["series"]
    return _SEP.join(f"{r['venue']} {r['instrument']}: {r['regime']} (ADX {r['adx']:.0f})"
                     for r in rows[:2]) or "-"  # fmt: skip


def _line_scenario(p: dict[str, Any]) -> str:
    name = p.get("scenario", "none")
    if name == "none":
        return "none: no scenario's conditions hold"
    text = f"[bold]{name.replace('_', ' ')}[/] ({p.get('confidence', 0):.0%})"
    held = [e["name"].split(": ", 1)[-1] for e in p.get("evidence", []) if e.get("ok")]
    return text + (f": {', '.join(held[:4])}" if held else "")


def _line_setups(p: dict[str, Any]) -> str:
    rows = p.get("setups", [])
    out = []
    for s in rows[:4]:
        colour = {"long": "green", "short": "red"}.get(s["direction"], "default")
        line = (f"{s['setup'].replace('_', ' ')} [{colour}]{s['direction']}[/] {s['stage']} "
                f"({s['strength']:.0%})")  # fmt: skip
        if s.get("invalidation_px"):
            line += f"{_SEP}stop {_f('px', s['invalidation_px'])}"
        out.append(line)
    return "\n".join(out) or "none"


def _line_alerts(p: dict[str, Any]) -> str:
    rows = p.get("alerts", [])
    return "\n".join(f"{a['rule']}: {a['message']}" for a in rows[:4]) or "none in 24h"


# The playbook's order (funding, OI, heatmap, scenario), then what else is on the desk.
_ROWS = (
    ("funding", "Funding", _line_funding),
    ("open_interest", "Open interest", _line_oi),
    ("liquidations", "Liquidations", _line_liq),
    ("scenario", "Scenario", _line_scenario),
    ("setups", "Setups", _line_setups),
    ("alerts", "Alerts", _line_alerts),
    ("long_short", "Long/short", _line_long_short),
    ("cvd", "CVD", _line_cvd),
    ("basis", "Basis", _line_basis),
    ("options", "Options", _line_options),
    ("regime", "Regime", _line_regime),
)
_LABEL_W = max(len(label) for _, label, _ in _ROWS)


def _pack(text: str, width: int) -> str:
    """Each line's chunks joined by two spaces, broken between chunks to fit ``width``."""
    import re

    from rich.text import Text

    out = []
    for line in text.split("\n"):
        current = ""
        for sep, chunk in re.findall(f"(^|[{_SEP}{_SOFT}])([^{_SEP}{_SOFT}]*)", line):
            gap = " " if sep == _SOFT else "  "
            joined = f"{current}{gap}{chunk}" if current else chunk
            if current and Text.from_markup(joined).cell_len > width:
                out.append(current)
                current = chunk
            else:
                current = joined
        out.append(current)
    return "\n".join(out)


def render_table(doc: dict[str, Any]) -> None:
    """One panel per asset, in the playbook's order: funding, OI, liquidations, scenario."""
    from rich.panel import Panel
    from rich.table import Table

    from perpscope.cli._common import _banner

    if doc["simulated"]:
        _banner()
    width = max(20, out_console.width - 4 - _LABEL_W - 1)  # the panel's borders and padding
    for a in doc["assets"]:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True, width=_LABEL_W)
        grid.add_column(overflow="fold")
        for key, label, line in _ROWS:
            panel = a[key]
            text = line(panel) if panel.get("available") else f"[dim]{panel['missing']}[/]"
            grid.add_row(label, _pack(text, width))
        price = a["price"]
        title = f"[bold]{a['asset']}[/]"
        if price.get("available"):
            title += (f"  {_f('px', price['price'])} "
                      f"({_signed(_f('chg', price['change_24h']))} 24h)")  # fmt: skip
        out_console.print(Panel(grid, title=title, title_align="left"))
    stamps = [a["price"]["ts"] for a in doc["assets"] if a["price"].get("available")]
    data_to = doc.get("as_of") or (max(stamps) if stamps else None)
    chunks = (f"data up to {_when(data_to)}", f"generated {_when(doc['generated_at'])}",
              "ESTIMATED: modelled from OI and leverage", "REALISED: stored")  # fmt: skip
    out_console.print(_pack(_SEP.join(f"[dim]{c}[/]" for c in chunks), out_console.width))


def _when(iso: str | None) -> str:
    from datetime import datetime

    from perpscope.formats import fmt_time

    if not iso:
        return "-"
    return f"{fmt_time(datetime.fromisoformat(iso.replace('Z', '+00:00')))} UTC"


def _charts(a: dict[str, Any]) -> list[Any]:
    """Funding per venue (per 8h, green paid by longs, red by shorts) and OI per venue."""
    import plotly.graph_objects as go

    from perpscope.formats import fmt_rate, fmt_usd

    layout: dict[str, Any] = {"height": 280, "margin": {"l": 60, "r": 20, "t": 50, "b": 40},
                              "template": "plotly_white"}  # fmt: skip
    figs = []
    fund, oi = a["funding"], a["open_interest"]
    if fund.get("available"):
        v = [x for x in fund["venues"] if x.get("rate_8h") is not None]
        rates = [x["rate_8h"] for x in v]
        bar = go.Bar(x=[x["venue"] for x in v], y=[r * 100 for r in rates],
                     text=[fmt_rate(r) for r in rates], textposition="outside",
                     marker_color=["#2ca02c" if r >= 0 else "#d62728" for r in rates],
                     hovertemplate="%{x}: %{text} per 8h<extra></extra>")  # fmt: skip
        title = f"{a['asset']} funding per 8h by venue"
        axis = {"ticksuffix": "%", "tickformat": ".4f"}
        figs.append(go.Figure(bar, layout={**layout, "title": title, "yaxis": axis}))
    if oi.get("available"):
        v = [x for x in oi["venues"] if x.get("oi_usd") is not None]
        bar = go.Bar(x=[x["venue"] for x in v], y=[x["oi_usd"] for x in v],
                     text=[fmt_usd(x["oi_usd"]) for x in v], textposition="outside",
                     marker_color="#1f77b4",
                     hovertemplate="%{x}: %{text}<extra></extra>")  # fmt: skip
        title = f"{a['asset']} open interest by venue ({fmt_usd(oi['total_usd'] or 0)} total)"
        axis = {"tickprefix": "$", "tickformat": ".3s"}
        figs.append(go.Figure(bar, layout={**layout, "title": title, "yaxis": axis}))
    return figs


def render_html(doc: dict[str, Any], path: Path) -> None:
    """One self-contained HTML file: per asset the brief's lines, then funding and OI by venue
    (plotly.js embedded once: it opens offline)."""
    import html

    import plotly.io as pio
    from rich.text import Text

    parts = []
    first = True
    for a in doc["assets"]:
        title = html.escape(a["asset"])
        price = a["price"]
        if price.get("available"):
            chg = _f("chg", price["change_24h"])
            cls = "up" if chg.startswith("+") else "down" if chg.startswith("-") else ""
            title += (f" <span class='px'>{_f('px', price['price'])}</span> "
                      f"<span class='{cls}'>{chg} 24h</span>")  # fmt: skip
        parts.append(f"<section><h2>{title}</h2>")
        rows = []
        for key, label, line in _ROWS:
            panel = a[key]
            text = line(panel) if panel.get("available") else f"[dim]{panel['missing']}[/]"
            plain = Text.from_markup(text.replace(_SEP, "  ").replace(_SOFT, " ")).plain
            cls = "" if panel.get("available") else " class='missing'"
            rows.append(f"<tr><th>{label}</th><td{cls}><pre>{html.escape(plain)}</pre></td></tr>")
        parts.append("<table>" + "".join(rows) + "</table><div class='charts'>")
        for fig in _charts(a):
            chart = pio.to_html(
                fig,
                include_plotlyjs=first,
                full_html=False,
                default_width="100%",
                config={"displaylogo": False, "displayModeBar": False},
            )
            parts.append(f"<div class='chart'>{chart}</div>")
            first = False
        parts.append("</div></section>")
    banner = (
        "<p class='sim'>SIMULATED: simulator data (sim1..sim3), not a real market</p>"
        if doc["simulated"]
        else ""
    )
    stamps = [a["price"]["ts"] for a in doc["assets"] if a["price"].get("available")]
    data_to = doc.get("as_of") or (max(stamps) if stamps else None)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>perpscope brief</title>"
        "<style>body{font-family:sans-serif;margin:2em;max-width:1300px}"
        "th{text-align:left;vertical-align:top;padding-right:1em;white-space:nowrap}"
        "pre{margin:0;font-family:ui-monospace,monospace;white-space:pre-wrap}"
        ".sim{background:#ffd700;color:#000;font-weight:bold;padding:.4em .8em;"
        "display:inline-block}"
        ".missing{color:#888}.up{color:#2ca02c}.down{color:#d62728}.px{font-weight:normal}"
        ".charts{display:grid;grid-template-columns:1fr 1fr;gap:1em}"
        ".chart{min-width:0}"
        "section{border-top:1px solid #ddd;margin-top:1.5em}</style></head><body>"
        f"<h1>perpscope brief</h1>{banner}<p>data up to {html.escape(_when(data_to))}; "
        f"generated {html.escape(_when(doc['generated_at']))}</p>"
        + "".join(parts)
        + "<h2>Notes</h2><ul>"
        + "".join(f"<li>{html.escape(n)}</li>" for n in doc["notes"])
        + "</ul></body></html>"
    )
    path.write_text(page, encoding="utf-8")


def brief(
    ctx: typer.Context,
    assets: Annotated[
        str | None,
        typer.Option("--assets", help="Comma-separated assets (default: every asset stored)."),
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help="As of this UTC time (ISO 8601).")] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="table, json or html (html needs --out).")
    ] = "table",
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the JSON or HTML to this file.")
    ] = None,
) -> None:
    """The morning brief: funding, OI, liquidations, options, regime, scenario, setups, alerts."""
    from perpscope.cli._market_opts import parse_at
    from perpscope.services.brief import build_brief

    if fmt not in ("table", "json", "html"):
        raise UsageError(f"--format {fmt!r}: use table, json or html")
    if fmt == "html" and out is None:
        raise UsageError("--format html needs --out FILE.html")
    if fmt == "table" and out is not None:
        raise UsageError("--out writes --format json or html; the table goes to the terminal")
    names = [a.strip() for a in (assets or "").split(",") if a.strip()] or None
    doc = build_brief(state(ctx).lake(), names, at=parse_at(at))
    if fmt == "json":
        text = json.dumps({"command": "brief", **doc}, ensure_ascii=False)
        if out is not None:
            out.write_text(text + "\n", encoding="utf-8")
        else:
            sys.stdout.write(text + "\n")
        return
    if fmt == "html":
        assert out is not None
        render_html(doc, out)
        out_console.print(f"wrote {out}", markup=False)
        return
    render_table(doc)
