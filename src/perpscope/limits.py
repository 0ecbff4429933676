"""Hard limits shared by the configuration and the commands (kept apart from :mod:`perpscope.config`
so a command can name them without loading the configuration's validation library)."""

from __future__ import annotations

__all__ = ["MAX_ROWS", "MAX_TIMEOUT_S"]

MAX_TIMEOUT_S = 3600.0
"""The longest time limit a workbench query may be given, seconds."""
MAX_ROWS = 10_000_000
"""The largest row cap of the workbench."""
