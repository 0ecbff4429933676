"""The console entry point: the ``perpscope`` CLI, with Ctrl-C handled from the first instant.

Importing the CLI loads heavy libraries (polars, deltalake, DuckDB, ccxt) and can take a moment;
a Ctrl-C during that import happens before :func:`perpscope.cli.main.run` could catch it. This
module imports nothing heavy itself, so ``main`` turns a Ctrl-C at any point into the same one
line and exit code as :func:`~perpscope.cli.main.run` does: ``interrupted`` on stderr, exit 130.
"""

from __future__ import annotations

import sys
from typing import NoReturn

__all__ = ["INTERRUPTED_EXIT", "interrupted", "main"]

INTERRUPTED_EXIT = 130
"""Exit code after Ctrl-C (128 + SIGINT), as shells report it."""


def interrupted() -> NoReturn:
    """Say ``interrupted`` on stderr and exit 130."""
    try:
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed or a broken pipe: the exit code still says it
        pass
    raise SystemExit(INTERRUPTED_EXIT)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a Ctrl-C while it loads or runs exits 130 with ``interrupted``."""
    try:
        from perpscope.cli.main import run

        run(argv)
    except KeyboardInterrupt:
        interrupted()
