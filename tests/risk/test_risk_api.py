"""``perpscope.risk``'s public API is curated: ``__all__`` is complete and every name exists."""

from __future__ import annotations

import importlib

import perpscope.risk as risk

_MODULES = ("basis", "bucket", "carry", "kelly", "liquidation_price", "sizing", "targets")


def test_every_exported_name_exists() -> None:
    missing = [name for name in risk.__all__ if not hasattr(risk, name)]
    assert missing == []


def test_every_public_name_of_the_submodules_is_exported() -> None:
    public = set()
    for mod in _MODULES:
        public |= set(importlib.import_module(f"perpscope.risk.{mod}").__all__)
    public |= {"PositionSide", "InvalidInput", "MAX_VENUE_LEVERAGE", "venue_leverage"}
    assert public - set(risk.__all__) == set()


def test_invalid_input_is_a_value_error_raised_by_the_checks() -> None:
    import pytest

    assert issubclass(risk.InvalidInput, ValueError)
    with pytest.raises(risk.InvalidInput, match="leverage 126x is above 125x"):
        risk.venue_leverage(126)
