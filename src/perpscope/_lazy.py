"""A module stand-in that imports the module on first use, for heavy libraries on cold paths.

``pa = lazy_module("pyarrow")`` at the top of a module costs nothing; the first ``pa.table(...)``
imports pyarrow. Type checkers see the real import (put it under ``TYPE_CHECKING``).
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any

__all__ = ["lazy_module"]


class _LazyModule:
    __slots__ = ("_name", "_module")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_module(name: str) -> Any:
    """A stand-in for module ``name`` that imports it on the first attribute access."""
    return _LazyModule(name)
