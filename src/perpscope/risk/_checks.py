"""Input checks shared by the calculators: each failure is a ``ValueError`` with one clear sentence.

The service layer turns these into :class:`perpscope.errors.UsageError` (exit code 2).
"""

from __future__ import annotations

import math
from enum import StrEnum

__all__ = ["PositionSide", "finite", "non_negative", "positive", "side_sign"]


class PositionSide(StrEnum):
    """Direction of a position."""

    LONG = "long"
    SHORT = "short"


def side_sign(side: PositionSide) -> int:
    """+1 for a long, -1 for a short."""
    return 1 if side is PositionSide.LONG else -1


def finite(name: str, value: float) -> float:
    """``value`` if it is a finite number, else a ``ValueError`` naming ``name``."""
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def positive(name: str, value: float) -> float:
    """``value`` if it is finite and > 0, else a ``ValueError`` naming ``name``."""
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value:g}")
    return value


def non_negative(name: str, value: float) -> float:
    """``value`` if it is finite and >= 0, else a ``ValueError`` naming ``name``."""
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be zero or positive, got {value:g}")
    return value
