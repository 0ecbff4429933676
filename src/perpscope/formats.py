"""Trader-grade value formats shared by every front end: ``+0.0100%``, ``$4.42M``, a UTC time.

Standard library only, so any layer (the CLI's tables, alert messages, the brief) can use them
without importing rich or polars.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

__all__ = [
    "fmt_label",
    "fmt_annual",
    "fmt_change",
    "fmt_count",
    "fmt_evidence",
    "fmt_number",
    "fmt_price",
    "fmt_rate",
    "fmt_share",
    "fmt_time",
    "fmt_usd",
]


def fmt_label(value: str) -> str:
    """A snake_case label as words (``short_covering`` -> ``short covering``); the analytics'
    ``undefined`` (no reading: a move under its guard, or unknown) reads ``no reading``."""
    return "no reading" if value == "undefined" else value.replace("_", " ")


def fmt_share(value: float) -> str:
    """A share (0 to 1) as an unsigned percent with one decimal: ``42.0%``."""
    return _pct(value, 1, signed=False)


def _pct(value: float, decimals: int, *, signed: bool = True) -> str:
    text = f"{value * 100:+.{decimals}f}%" if signed else f"{value * 100:.{decimals}f}%"
    zero = f"{0:.{decimals}f}%"
    return zero if text[1:] == zero or text == zero else text  # no sign on a rounded zero


def fmt_rate(value: float) -> str:
    """A rate or spread per interval as a signed percent with four decimals: ``+0.0100%``."""
    return _pct(value, 4)


def fmt_annual(value: float) -> str:
    """An annualised fraction as a signed percent with two decimals: ``+10.95%``."""
    return _pct(value, 2)


def fmt_change(value: float) -> str:
    """A relative change as a signed percent with one decimal: ``-21.8%``."""
    return _pct(value, 1)


def fmt_usd(value: float) -> str:
    """A USD amount, compact: ``$950``, ``$12.3K``, ``$4.42M``, ``$1.05B``, ``-$3.10M``."""
    sign = "-" if value < 0 else ""
    a = abs(value)
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if a >= size * 0.9995:
            q = a / size
            digits = 2 if q < 10 else 1 if q < 100 else 0
            return f"{sign}${q:.{digits}f}{suffix}"
    return f"{sign}${a:.2f}" if a < 100 and a != int(a) else f"{sign}${a:.0f}"


def fmt_price(value: float) -> str:
    """A price with precision by magnitude: ``60,292.77``, ``95.00``, ``1.235``, ``0.0001235``."""
    a = abs(value)
    if a == 0:
        return "0.00"
    decimals = min(8, max(2, 3 - math.floor(math.log10(a))))
    return f"{value:,.{decimals}f}"


def fmt_count(value: float) -> str:
    """An integer count with thousands separators: ``1,234,567``."""
    return f"{int(round(value)):,}"


def fmt_number(value: float) -> str:
    """Any other number: six significant digits (whole from 100,000, ``3.2B`` from a billion),
    never scientific notation: ``-35.3589``, ``1,760,000``."""
    a = abs(value)
    if a == 0:
        return "0"
    if a >= 1e9:
        for size, suffix in ((1e12, "T"), (1e9, "B")):
            if a >= size:
                return f"{value / size:.3g}{suffix}".replace("e+", "e")
    if a >= 1e5:
        return f"{value:,.0f}"
    decimals = min(10, max(0, 5 - math.floor(math.log10(a))))
    text = f"{value:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_time(value: datetime) -> str:
    """A UTC time, compact: ``2026-12-03 08:00`` (seconds only when there are some)."""
    utc = value.astimezone(UTC) if value.tzinfo is not None else value
    if utc.second == 0 and utc.microsecond == 0:
        return utc.strftime("%Y-%m-%d %H:%M")
    return utc.strftime("%Y-%m-%d %H:%M:%S")


def fmt_evidence(name: str, value: object) -> str:
    """A scenario reading's evidence value, formatted by what its name says it measures
    (``docs/signals.md``): a condition's grade (``exhaustion: oi``, 0 to 1) ``0.75``; a funding
    rate ``+0.0229%``; ``oi_pct_30d`` (a share of the trailing 30 days) ``pctl 56``; a change
    ``-10.66%``; a distance off the 7-day high or low ``0.54%``; a cluster's density (peak bin
    over mean bin) ``1.65x mean bin``, ``none`` at 0; a count of clusters ``2``; text as given;
    an unknown number ``n/a``."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    v = float(value)
    if math.isnan(v):
        return "n/a"
    if ": " in name:  # "<scenario>: <stream>", the condition's grade
        return f"{v:.2f}"
    if "funding" in name or "rate" in name:
        return fmt_rate(v)
    if "pct_30d" in name:
        return f"pctl {v * 100:.0f}"
    if "change" in name:
        return _pct(v, 2)
    if name.startswith("price_off_"):
        return _pct(v, 2, signed=False)
    if "cluster" in name and not name.startswith("clusters"):
        return "none" if v == 0 else f"{v:.2f}x mean bin"
    if "_near" in name or name.startswith("clusters"):
        return fmt_count(v)
    return fmt_number(v)
