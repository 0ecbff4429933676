"""Plain JSON values and terminal-style cell text for the dashboard (no maths here)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from perpscope.formats import (
    fmt_annual,
    fmt_change,
    fmt_label,
    fmt_number,
    fmt_price,
    fmt_rate,
    fmt_share,
    fmt_time,
    fmt_usd,
)

__all__ = ["cell_text", "json_value", "rows_of"]


def json_value(value: Any) -> Any:
    """``value`` as plain JSON: frames become lists of rows, times ISO 8601 UTC ending in Z,
    NaN and infinities ``null``."""
    if hasattr(value, "to_dicts") and hasattr(value, "columns"):
        return [json_value(r) for r in value.to_dicts()]
    if hasattr(value, "to_json") and callable(value.to_json):
        return json_value(value.to_json())
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def rows_of(data: Any) -> list[dict[str, Any]]:
    """Rows (mappings) of a frame or a list of mappings."""
    if hasattr(data, "to_dicts"):
        return list(data.to_dicts())
    return [dict(r) for r in data if isinstance(r, Mapping)]


_LABELS = frozenset({"quadrant"})  # snake_case labels shown as words, as the terminal does
_RATE = ("rate", "rate_8h", "spread_8h", "mean_rate_8h", "predicted_rate_8h", "predicted_rate")


def cell_text(column: str, value: Any) -> str:
    """A cell as the terminal prints it: ``+0.0100%``, ``$4.42M``, ``2026-01-01 08:00``."""
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return "n/a"
    if isinstance(value, datetime):
        return fmt_time(value if value.tzinfo else value.replace(tzinfo=UTC))
    if column in _LABELS and isinstance(value, str):
        return fmt_label(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value.value if isinstance(value, Enum) else value)
    name = column.lower()
    v = float(value)
    if name in _RATE or name.endswith(("_rate", "_rate_8h", "_spread_8h")):
        return fmt_rate(v)
    if "annual" in name:
        return fmt_annual(v)
    if name.endswith("_usd") or name == "notional":
        return fmt_usd(v)
    if name.endswith("_px") or name in {"price", "strike", "max_pain"}:
        return fmt_price(v)
    if "share" in name or name.endswith("coverage"):
        return fmt_share(v)
    if "change" in name or name.endswith(("_chg", "_pct", "_frac", "_return")):
        return fmt_change(v)  # a signed fraction (distance_pct -0.0097 is -1.0%), as the CLI
    if "percentile" in name:
        return f"{v * 100:.0f}"  # a fraction 0..1 shown 0..100, as the terminal does
    if name.endswith("_iv"):
        return fmt_share(v)  # an implied volatility, 0..1: 16.0%
    if name in {"confidence", "strength"}:
        return f"{v * 100:.0f}%"  # 0..1 as the terminal prints it: 43%
    if name.endswith("_vol_pts"):
        return f"{v:+.1f}"  # a risk reversal in vol points
    if name.startswith(("pcr", "put_call")) or name.endswith(("_ratio", "_grade")):
        return f"{v:.2f}"
    if name == "days_to_expiry":
        return f"{v:.1f}"
    if name == "zscore" or name.endswith("_zscore"):
        return f"{v:+.2f}"
    return fmt_number(v)
