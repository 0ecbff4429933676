"""The calculator forms (over :mod:`perpscope.services.calc`) and the read-only SQL workbench."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from perpscope.errors import PerpscopeError, UsageError
from perpscope.web.html import record_html
from perpscope.web.values import json_value

if TYPE_CHECKING:
    from perpscope.config import Config
    from perpscope.store.lake import Lake

__all__ = ["calc_routes", "sql_html", "sql_result"]

# name -> (label, default, kind); kind is "num", "opt" (optional number) or a tuple of choices
_FIELDS: dict[str, dict[str, tuple[str, str, Any]]] = {
    "liq": {
        "venue": ("venue", "binance", ("binance", "bybit", "okx")),
        "side": ("side", "long", ("long", "short")),
        "entry_px": ("entry price", "60000", "num"),
        "qty": ("quantity (base)", "1", "num"),
        "leverage": ("leverage", "10", "num"),
        "mmr": ("maintenance margin rate", "0.004", "num"),
    },
    "size": {
        "equity_usd": ("equity, USD", "10000", "num"),
        "risk_pct": ("risk per trade, %", "1", "num"),
        "entry_px": ("entry price", "60000", "num"),
        "stop_px": ("stop price", "58800", "num"),
        "side": ("side", "long", ("long", "short")),
        "leverage": ("leverage", "5", "num"),
    },
    "funding": {
        "side": ("side", "long", ("long", "short")),
        "notional_usd": ("notional, USD", "100000", "num"),
        "rate": ("rate per interval (0.01%)", "0.01%", "text"),
        "interval_h": ("interval, hours", "8", "num"),
        "days": ("days held", "30", "num"),
    },
}
_TITLES = {
    "liq": "Liquidation price",
    "size": "Position size",
    "funding": "Funding cost",
}


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{name} must be a number, got {text[:40]!r}") from None
    if not math.isfinite(value):
        raise UsageError(f"{name} must be a finite number, got {text[:40]!r}")
    return value


def _values(kind: str, given: Mapping[str, str]) -> dict[str, Any]:
    unknown = sorted(set(given) - set(_FIELDS[kind]))
    if unknown:
        raise UsageError(f"unknown field(s) for the {kind} calculator: {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for name, (_, default, spec) in _FIELDS[kind].items():
        text = str(given.get(name, default)).strip()
        if isinstance(spec, tuple):
            if text not in spec:
                raise UsageError(f"{name} must be one of {', '.join(spec)}, got {text[:40]!r}")
            out[name] = text
        elif spec == "num":
            out[name] = _number(name, text)
        else:
            out[name] = text
    return out


def compute(kind: str, given: Mapping[str, str]) -> dict[str, Any]:
    """Run one calculator of :mod:`perpscope.services.calc` on form values (strings)."""
    from perpscope.services import calc

    if kind not in _FIELDS:
        raise UsageError(f"no calculator {kind!r}: use one of {', '.join(_FIELDS)}")
    v = _values(kind, given)
    if kind == "liq":
        record = calc.liquidation(
            None,
            calc.LiqRequest(
                venue=v["venue"],
                side=v["side"],
                entry_px=v["entry_px"],
                qty=v["qty"],
                leverage=v["leverage"],
                mmr=v["mmr"],
            ),
        )
    elif kind == "size":
        record = calc.size(**v)
    else:
        record = calc.funding(**v)
    return dict(record)


def _form(kind: str, given: Mapping[str, str]) -> str:
    inputs = []
    for name, (label, default, spec) in _FIELDS[kind].items():
        value = escape(str(given.get(name, default)), quote=True)
        if isinstance(spec, tuple):
            opts = "".join(
                f"<option{' selected' if o == given.get(name, default) else ''}>{o}</option>"
                for o in spec
            )
            field = f'<select name="{name}">{opts}</select>'
        else:
            field = f'<input name="{name}" value="{value}" size="10">'
        inputs.append(f"<label>{escape(label)}{field}</label>")
    return (
        f'<h2>{_TITLES[kind]}</h2><form method="post" action="/calc/{kind}" id="form-{kind}">'
        f'{"".join(inputs)}<button type="submit">Calculate</button></form>'
    )


def calc_routes(app: FastAPI, lake: Lake, wrap: Callable[[str, str, str], str]) -> None:
    """``/calc`` (every form), ``POST /calc/{kind}`` (a form and its result), and
    ``/api/calc/{kind}``."""

    @app.get("/calc", response_class=HTMLResponse)
    def calc_page() -> Response:
        body = "".join(_form(k, {}) for k in _FIELDS)
        return HTMLResponse(wrap("Calculators", body, "/calc"))

    @app.post("/calc/{kind}", response_class=HTMLResponse)
    async def calc_post(kind: str, request: Request) -> Response:
        raw = (await request.body())[:10_000].decode("utf-8", errors="replace")
        form = dict(parse_qsl(raw, keep_blank_values=True))
        if kind not in _FIELDS:
            raise UsageError(f"no calculator {kind!r}: use one of {', '.join(_FIELDS)}")
        try:
            result = record_html("Result", compute(kind, form))
            status = 200
        except PerpscopeError as exc:
            result, status = f'<p class="error" id="calc-error">{escape(str(exc))}</p>', 400
        body = _form(kind, form) + f'<div id="result">{result}</div>'
        return HTMLResponse(wrap(_TITLES[kind], body, "/calc"), status_code=status)

    @app.get("/api/calc/{kind}")
    def api_calc(kind: str, request: Request) -> Response:
        given = dict(request.query_params)
        return JSONResponse({"calculator": kind, "data": json_value(compute(kind, given))})


def sql_result(lake: Lake, config: Config, query: str) -> dict[str, Any]:
    """Run ``query`` through the workbench (read-only guard, time limit, row cap) as JSON."""
    from perpscope.store.workbench import run_isolated

    if not query.strip():
        raise UsageError("empty query: pass q=SELECT ...")
    if len(query) > 20_000:
        raise UsageError("query too long (20,000 characters at most)")
    wb = config.workbench
    result = run_isolated(
        lake,
        query,
        max_rows=wb.max_rows,
        timeout_s=wb.timeout_s,
        memory_limit_bytes=wb.memory_limit_bytes,
    )
    names = [c.name for c in result.columns]
    rows = [
        {n: json_value(_plain(v)) for n, v in zip(names, row, strict=True)} for row in result.rows()
    ]
    return {
        "columns": [{"name": c.name, "type": c.duckdb_type} for c in result.columns],
        "rows": rows,
        "truncated": result.truncated,
        "max_rows": result.max_rows,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return value[0]  # a nested value: its text
    return value


def sql_html(lake: Lake, config: Config, query: str | None) -> tuple[str, int]:
    """The workbench page: a query form and the result, or the refusal (status 400)."""
    text = (
        query or "SELECT venue, instrument, count(*) AS n FROM funding GROUP BY ALL ORDER BY 1, 2"
    )
    form = (
        '<form method="get" action="/sql" id="sql-form"><label style="flex:1">read-only SQL'
        f'<textarea name="q">{escape(text)}</textarea></label>'
        '<button type="submit">Run</button></form>'
        "<p class=note>Read-only: one SELECT over the store's tables, with a time limit and a "
        "row cap. Writes, ATTACH, COPY and file access are refused.</p>"
    )
    if query is None:
        return form, 200
    try:
        result = sql_result(lake, config, query)
    except PerpscopeError as exc:
        return form + f'<p class="error" id="sql-error">{escape(str(exc))}</p>', 400
    head = "".join(f"<th>{escape(c['name'])}</th>" for c in result["columns"])
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_cell(v))}</td>" for v in row.values()) + "</tr>"
        for row in result["rows"]
    )
    note = f"<p class=note>Capped at {result['max_rows']} rows.</p>" if result["truncated"] else ""
    count = f"<p>{len(result['rows'])} rows</p>"
    table = f'<div class="scroll"><table id="sql-result"><tr>{head}</tr>{body}</table></div>'
    return form + count + note + table, 200


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
