"""Input checks shared by the calculators: each failure is an :class:`InvalidInput` (a
``ValueError``) with one clear sentence.

The service layer turns these into :class:`perpscope.errors.UsageError` (exit code 2).
"""

from __future__ import annotations

import math
from enum import StrEnum

__all__ = [
    "MAX_VENUE_LEVERAGE",
    "InvalidInput",
    "PositionSide",
    "finite",
    "non_negative",
    "positive",
    "side_sign",
    "venue_leverage",
]

MAX_VENUE_LEVERAGE = 125.0
"""The highest maximum leverage of the implemented venues' tier tables (Binance's first BTCUSDT
bracket, ``0 < Position <= 50,000``: 125x). A venue's actual maximum for a position can be lower;
``calc liq --instrument`` checks it against the tier."""


class InvalidInput(ValueError):  # noqa: N818 - named for what the caller must fix, like httpx
    """A calculator input that no formula or venue accepts; the message is one sentence."""


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
        raise InvalidInput(f"{name} must be a finite number, got {value}")
    return value


def positive(name: str, value: float) -> float:
    """``value`` if it is finite and > 0, else a ``ValueError`` naming ``name``."""
    if not math.isfinite(value) or value <= 0:
        raise InvalidInput(f"{name} must be a positive number, got {value:g}")
    return value


def non_negative(name: str, value: float) -> float:
    """``value`` if it is finite and >= 0, else a ``ValueError`` naming ``name``."""
    if not math.isfinite(value) or value < 0:
        raise InvalidInput(f"{name} must be zero or positive, got {value:g}")
    return value


def venue_leverage(value: float) -> float:
    """``value`` if it is a leverage a venue could grant (1x to :data:`MAX_VENUE_LEVERAGE`)."""
    positive("leverage", value)
    if value < 1:
        raise InvalidInput(f"leverage must be at least 1, got {value:g}")
    if value > MAX_VENUE_LEVERAGE:
        raise InvalidInput(
            f"leverage {value:g}x is above {MAX_VENUE_LEVERAGE:g}x, the highest maximum of any "
            "implemented venue"
        )
    return value
