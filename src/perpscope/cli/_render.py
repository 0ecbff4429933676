"""The one presentation layer of the CLI: value formats with units, tables that fit, the JSON shape.

Every command hands its result to :func:`perpscope.cli._common.emit`, which lands here. Columns get
a :class:`Kind` (from the command's column spec, else from the column's name and values) that
decides three things at once: the text on screen (``+0.0100%``, ``$4.42M``, ``2026-12-03 08:00``),
its colour, and how a number is rounded in JSON (fractions stay fractions, without float noise).

This module imports only the standard library and rich, so that ``perpscope --help`` stays fast;
polars frames are recognised without importing polars.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from perpscope.formats import (
    fmt_annual,
    fmt_change,
    fmt_count,
    fmt_label,
    fmt_number,
    fmt_price,
    fmt_rate,
    fmt_share,
    fmt_time,
    fmt_usd,
)

__all__ = [
    "Col",
    "is_frame",
    "Kind",
    "MAX_TABLE_ROWS",
    "envelope",
    "fmt_value",
    "infer_kind",
    "json_value",
    "render_record",
    "render_rows",
    "rows_of",
]

MAX_TABLE_ROWS = 60
"""Rows a table prints before it says how many more there are."""


class Kind(StrEnum):
    """What a column holds; decides its text, colour and JSON rounding."""

    TEXT = "text"
    RATE = "rate"  # a funding rate or spread, a fraction per interval: +0.0100%
    ANNUAL = "annual"  # an annualised fraction: +10.95%
    CHANGE = "change"  # a relative change, a fraction: -21.8%
    SHARE = "share"  # a share or proportion, a fraction: 38.8%
    USD = "usd"  # a USD amount: $4.42M
    PRICE = "price"  # a price: 60,292.77
    RATIO = "ratio"  # a plain ratio: 1.25
    SCORE = "score"  # a signed score (z-score): +1.23
    FLOW = "flow"  # a signed quantity in base units (taker delta, CVD): -1,035.36
    PCTL = "pctl"  # a percentile as a fraction 0..1, shown 0..100: 39
    HOURS = "hours"  # a duration in hours: 8h
    COUNT = "count"  # an integer count: 1,234
    NUMBER = "number"  # any other number: six significant digits
    TIME = "time"  # a UTC timestamp: 2026-12-03 08:00
    FLAG = "flag"  # a boolean: "yes" or blank
    ALERT = "alert"  # a boolean alert: bold "ALERT" or blank
    LABEL = "label"  # a snake_case label read as words: "new longs"; "undefined" -> "no reading"


_NUMERIC = frozenset(
    {
        Kind.RATE,
        Kind.ANNUAL,
        Kind.CHANGE,
        Kind.SHARE,
        Kind.USD,
        Kind.PRICE,
        Kind.RATIO,
        Kind.SCORE,
        Kind.FLOW,
        Kind.PCTL,
        Kind.HOURS,
        Kind.COUNT,
        Kind.NUMBER,
    }
)
_SIGNED = frozenset({Kind.RATE, Kind.ANNUAL, Kind.CHANGE, Kind.SCORE, Kind.FLOW})


@dataclass(frozen=True, slots=True)
class Col:
    """How one column is shown.

    Attributes:
        key: the column's name in the data (and in JSON).
        header: the header on screen (short, distinct from the other headers).
        kind: what it holds; ``None`` infers it from the name and the values.
        prio: 0 = always shown; higher numbers are dropped first when the terminal is narrow.
        extreme: absolute value from which a signed number is shown bold (an alert level).
    """

    key: str
    header: str | None = None
    kind: Kind | None = None
    prio: int = 5
    extreme: float | None = None


# ------------------------------------------------------------------------------ value formats


def _is_decimal(value: Any) -> bool:
    decimal = sys.modules.get("decimal")  # a Decimal exists only if its module is loaded
    return decimal is not None and isinstance(value, decimal.Decimal)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def fmt_value(kind: Kind, value: Any) -> str:
    """The text of one value of a column of ``kind`` (blank for a missing value)."""
    if _blank(value):
        return ""
    if isinstance(value, bool):
        if kind is Kind.ALERT:
            return "ALERT" if value else ""
        return "yes" if value else ""
    if isinstance(value, datetime):
        return fmt_time(value)
    if isinstance(value, date):
        return value.isoformat()
    if _is_decimal(value):
        value = float(value)
    if isinstance(value, StrEnum):
        return value.value
    if not isinstance(value, int | float):
        if kind is Kind.LABEL and isinstance(value, str):
            return fmt_label(value)
        return str(value)
    v = float(value)
    match kind:
        case Kind.RATE:
            return fmt_rate(v)
        case Kind.ANNUAL:
            return fmt_annual(v)
        case Kind.CHANGE:
            return fmt_change(v)
        case Kind.SHARE:
            return fmt_share(v)
        case Kind.USD:
            return fmt_usd(v)
        case Kind.PRICE:
            return fmt_price(v)
        case Kind.RATIO:
            return f"{v:,.2f}"
        case Kind.SCORE:
            return f"{v:+.2f}"
        case Kind.FLOW:
            return f"{v:+,.2f}" if round(v, 2) != 0 else "0.00"
        case Kind.PCTL:
            return f"{v * 100:.0f}"
        case Kind.HOURS:
            return f"{v:g}h"
        case Kind.COUNT:
            return fmt_count(v) if v == int(v) else fmt_number(v)
        case _:
            if isinstance(value, int):
                return str(value)
            return fmt_number(v)


def style_of(col: Col, kind: Kind, value: Any) -> str:
    """Rich style of one value: green/red by sign for signed kinds, bold for alerts and extremes."""
    if _blank(value):
        return ""
    if isinstance(value, bool):
        return "bold red" if value and kind is Kind.ALERT else "bold" if value else ""
    if kind in _SIGNED and isinstance(value, int | float):
        v = float(value)
        text = fmt_value(kind, v)
        if text.startswith("+"):
            colour = "green"
        elif text.startswith("-"):
            colour = "red"
        else:
            return "dim"
        if col.extreme is not None and abs(v) >= col.extreme:
            return f"bold {colour}"
        return colour
    return ""


# ------------------------------------------------------------------------------ kinds by name

_EXACT: dict[str, Kind] = {
    "year": Kind.TEXT,
    "seed": Kind.TEXT,
    "version": Kind.COUNT,
    "rate": Kind.RATE,
    "annualized": Kind.ANNUAL,
    "annualised": Kind.ANNUAL,
    "weight": Kind.USD,
    "notional": Kind.USD,
    "share": Kind.SHARE,
    "weight_coverage": Kind.SHARE,
    "roc_avg_7d": Kind.CHANGE,
    "distance_pct": Kind.CHANGE,
    "share_at_alert": Kind.SHARE,
    "hhi": Kind.RATIO,
    "correlation": Kind.RATIO,
    "global_account": Kind.RATIO,
    "top_account": Kind.RATIO,
    "top_position": Kind.RATIO,
    "top_minus_global": Kind.RATIO,
    "long_short_ratio": Kind.RATIO,
    "zscore": Kind.SCORE,
    "close": Kind.PRICE,
    "open": Kind.PRICE,
    "high": Kind.PRICE,
    "low": Kind.PRICE,
    "price": Kind.PRICE,
    "strike": Kind.PRICE,
    "alert": Kind.ALERT,
    "alert_24h": Kind.ALERT,
    "spike": Kind.ALERT,
}


def infer_kind(name: str, values: Iterable[Any] = ()) -> Kind:
    """The kind of a column from its name (units are in the names: ``_usd``, ``_px``, ``_h``).

    Falls back on the values' type: datetimes are times, booleans flags, integers counts, other
    numbers plain numbers, anything else text.
    """
    n = name.lower()
    if n in _EXACT:
        return _EXACT[n]
    sample = next((v for v in values if not _blank(v)), None)
    if isinstance(sample, datetime):
        return Kind.TIME
    if isinstance(sample, bool):
        return Kind.ALERT if n.startswith("alert") else Kind.FLAG
    if sample is not None and not isinstance(sample, int | float) and not _is_decimal(sample):
        return Kind.TEXT
    if n.endswith(("_annualized", "_annualised", "_apr")):
        return Kind.ANNUAL
    if n.endswith("_usd") or n.startswith("notional"):
        return Kind.USD
    if n.endswith(("_px", "_price")):
        return Kind.PRICE
    if "percentile" in n or n.endswith("_pctl"):
        return Kind.PCTL
    if "zscore" in n:
        return Kind.SCORE
    if "ratio" in n or n.startswith("pcr") or "days" in n:
        return Kind.RATIO
    if n == "iv" or n.endswith("_iv") or n.startswith("iv_"):
        return Kind.SHARE  # implied volatility, a fraction a year: 78.4%
    if "change" in n or n.endswith("_frac"):
        return Kind.CHANGE
    if n.startswith("premium"):
        return Kind.RATE
    if "rate" in n or "spread" in n or n.startswith(("funding_", "prior_funding")):
        return Kind.RATE
    if n.endswith("_h"):
        return Kind.HOURS
    if isinstance(sample, int) or n.startswith("n_") or n.startswith("rows") or n == "files":
        return Kind.COUNT
    return Kind.NUMBER


# ------------------------------------------------------------------------------ data access


def is_frame(data: Any) -> bool:
    """True for a polars DataFrame, recognised without importing polars."""
    pl = sys.modules.get("polars")
    return pl is not None and isinstance(data, pl.DataFrame)


def rows_of(data: Any) -> tuple[list[str], list[Mapping[str, Any]]]:
    """Column names and rows of a frame or a list of mappings."""
    if is_frame(data):
        return list(data.columns), list(data.iter_rows(named=True))
    rows = [r for r in data if isinstance(r, Mapping)]
    columns: list[str] = []
    for r in rows:
        columns.extend(k for k in r if k not in columns)
    return columns, rows


# ------------------------------------------------------------------------------ JSON


def json_value(value: Any, kind: Kind | None = None) -> Any:
    """A value as plain JSON: ISO 8601 UTC times ending in Z, floats rounded without noise.

    Fractions stay fractions; a rate is rounded to 1e-10 (a millionth of a basis point), an
    annualised value or a change to 1e-8, USD to the cent, anything else to 12 significant digits.
    """
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime in output")
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    if _is_decimal(value):
        value = float(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        digits = {Kind.RATE: 10, Kind.ANNUAL: 8, Kind.CHANGE: 8, Kind.SHARE: 8, Kind.USD: 2}
        if kind in digits:
            value = round(value, digits[kind])
        value = float(f"{value:.12g}")
        return 0.0 if value == 0 else value
    if isinstance(value, Mapping):
        return {str(k): json_value(v, infer_kind(str(k), [v])) for k, v in value.items()}
    if is_frame(value) or (
        isinstance(value, list | tuple) and value and all(isinstance(v, Mapping) for v in value)
    ):
        columns, rows = rows_of(value)
        kinds = {c: infer_kind(c, (r.get(c) for r in rows)) for c in columns}
        return [{str(k): json_value(v, kinds[k]) for k, v in r.items()} for r in rows]
    if isinstance(value, list | tuple):
        return [json_value(v, kind) for v in value]
    return value


def envelope(command: str, data: Any, *, simulated: bool, generated_at: datetime) -> dict[str, Any]:
    """The one JSON document every command prints (see docs/cli.md)."""
    return {
        "command": command,
        "generated_at": json_value(generated_at.replace(microsecond=0)),
        "simulated": simulated,
        "data": json_value(data),
    }


# ------------------------------------------------------------------------------ tables


def _resolve(
    columns: Sequence[str], rows: Sequence[Mapping[str, Any]], spec: Sequence[Col]
) -> list[tuple[Col, Kind]]:
    """The columns to show, in spec order then data order, each with its kind."""
    by_key = {c.key: c for c in spec}
    ordered = [c.key for c in spec if c.key in columns] + [c for c in columns if c not in by_key]
    out = []
    for pos, key in enumerate(ordered):
        col = by_key.get(key) or Col(key, prio=0 if pos == 0 else 5 + pos)
        kind = col.kind or infer_kind(key, (r.get(key) for r in rows))
        out.append((col, kind))
    return out


def _headers(cols: Sequence[tuple[Col, Kind]]) -> list[str]:
    """Distinct headers: a spec's header, else the key with underscores as spaces."""
    out: list[str] = []
    for col, _ in cols:
        h = col.header or col.key.replace("_", " ")
        out.append(h if h not in out else col.key)
    return out


def _build(
    title: str | None,
    cols: Sequence[tuple[Col, Kind]],
    headers: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        show_edge=False,
    )
    for (_, kind), header in zip(cols, headers, strict=True):
        numeric = kind in _NUMERIC
        table.add_column(
            header,
            justify="right" if numeric else "left",
            no_wrap=True,  # never a number (or a row) broken across lines
            overflow="ellipsis",
            header_style="bold",
        )
    for r in rows:
        table.add_row(
            *[Text(fmt_value(kind, r.get(col.key)), style=style_of(col, kind, r.get(col.key)))
              for col, kind in cols]
        )  # fmt: skip
    return table


def _natural_width(cols: Sequence[tuple[Col, Kind]], headers: Sequence[str],
                   rows: Sequence[Mapping[str, Any]]) -> int:  # fmt: skip
    widths = [
        max([len(h), *(len(fmt_value(kind, r.get(col.key))) for r in rows)])
        for (col, kind), h in zip(cols, headers, strict=True)
    ]
    return sum(widths) + 2 * max(0, len(widths) - 1)  # SIMPLE_HEAD: two spaces between columns


def render_rows(
    console: Console,
    data: Any,
    *,
    title: str | None = None,
    spec: Sequence[Col] = (),
    wide: bool = False,
    max_rows: int = MAX_TABLE_ROWS,
) -> None:
    """Print rows as one table: columns that fit the console (all with ``wide``), one row a line.

    Columns are dropped, least important first, until the table fits the console's width; the
    table says which were left out. More than ``max_rows`` rows print the first ones and a line
    with the count of the rest.
    """
    columns, rows = rows_of(data)
    if not rows:
        head = f"{title}: " if title else ""
        line = f"{head}no rows (columns: {', '.join(columns)})" if columns else f"{head}no rows"
        if len(line) > console.width:  # one line, never wrapped
            line = f"{head}no rows ({len(columns)} columns)"
        console.print(line, markup=False)
        return
    shown = rows[:max_rows] if max_rows else rows
    chosen = _resolve(columns, rows, spec)
    dropped: list[str] = []
    while not wide:
        headers = _headers(chosen)
        if _natural_width(chosen, headers, shown) <= console.width:
            break
        droppable = [(c.prio, i) for i, (c, _) in enumerate(chosen) if c.prio > 0]
        if not droppable:
            break
        _, idx = max(droppable)
        dropped.append(chosen[idx][0].key)
        chosen = chosen[:idx] + chosen[idx + 1 :]
    headers = _headers(chosen)
    table = _build(title, chosen, headers, shown)
    if wide:  # as wide as the table needs (a pager like ``less -S`` scrolls it sideways)
        width = console.width
        console.width = max(width, _natural_width(chosen, headers, shown) + 1)
        try:
            console.print(table, crop=False)
        finally:
            console.width = width
    else:
        console.print(table)
    if len(rows) > len(shown):
        console.print(
            f"… {len(rows) - len(shown)} more rows (all of them with --format json)",
            style="dim",
            markup=False,
        )
    if dropped:
        note = f"({len(dropped)} more columns with --wide: {', '.join(sorted(dropped))})"
        if len(note) > console.width:
            note = f"({len(dropped)} more columns with --wide)"
        console.print(note, style="dim", markup=False)


def render_record(console: Console, record: Mapping[str, Any], *, title: str | None = None) -> None:
    """Print one record as two columns, field and value, each value formatted by its kind."""
    table = Table(
        title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
        pad_edge=False, show_edge=False, show_header=False,
    )  # fmt: skip
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in record.items():
        if isinstance(value, Mapping | list | tuple):
            text = Text(", ".join(f"{k}={v}" for k, v in value.items())
                        if isinstance(value, Mapping) else ", ".join(map(str, value)))  # fmt: skip
        else:
            col = Col(key)
            kind = infer_kind(key, [value])
            shown = fmt_value(kind, value)
            if kind is Kind.USD and isinstance(value, int | float) and not _blank(value):
                shown = f"-${abs(value):,.2f}" if value < 0 else f"${value:,.2f}"  # exact, alone
            elif value is False:
                shown = "no"  # alone on its line a blank would not say false (tables keep blank)
            text = Text(shown, style=style_of(col, kind, value))
        table.add_row(key.replace("_", " "), text)
    console.print(table)
