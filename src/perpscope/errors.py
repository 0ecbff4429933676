"""perpscope's errors, grouped by what the caller must do.

::

    PerpscopeError                 base; the CLI prints str(error) as one line
    +-- ConfigError                fix the configuration or the command line (exit 2)
    |   +-- UsageError             a bad argument or option value (exit 2)
    +-- VenueError                 something went wrong talking to a venue
    |   +-- TransientVenueError    retry with backoff (timeouts, 5xx, disconnects)
    |   |   +-- RateLimitError     retry after ``retry_after_s``; pause the venue's pool
    |   |       +-- VenueBannedError   banned for a while (HTTP 418): pause every pool
    |   +-- PermanentVenueError    do not retry (bad symbol, auth, 4xx)
    +-- DataContractError          input or a response broke its contract; nothing was written
    |   +-- BadInputError          a file or value the user gave is unusable (exit 2)
    |       +-- BadRowsError       rows failed validation; carries the bad rows
    |       +-- ConflictingRowsError   one key with different values in one file
    +-- StoreError                 the store cannot be opened, read or written
    +-- QueryRefusedError          a workbench query is not a read-only query (exit 2)
    +-- QueryError                 a read-only query failed or ran out of time

Retries happen only on the transient branch, and only in ``collect``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BadInputError",
    "BadRow",
    "BadRowsError",
    "ConfigError",
    "ConflictingRowsError",
    "DataContractError",
    "PerpscopeError",
    "PermanentVenueError",
    "QueryError",
    "QueryRefusedError",
    "RateLimitError",
    "StoreError",
    "TransientVenueError",
    "UsageError",
    "VenueBannedError",
    "VenueError",
]


class PerpscopeError(Exception):
    """Base of every error perpscope raises on purpose."""

    exit_code: int = 1


class ConfigError(PerpscopeError):
    """The configuration (file, environment or options) is invalid."""

    exit_code = 2


class UsageError(ConfigError):
    """A command-line argument or option has a bad value."""


class VenueError(PerpscopeError):
    """A venue call failed."""


class TransientVenueError(VenueError):
    """A venue call failed in a way that may succeed if retried."""


class RateLimitError(TransientVenueError):
    """The venue rate-limited us; wait ``retry_after_s`` before the next call to its pool."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class VenueBannedError(RateLimitError):
    """The venue banned our IP for a while (Binance HTTP 418): pause every pool of the venue."""


class PermanentVenueError(VenueError):
    """A venue call failed in a way that will not change on retry."""


class DataContractError(PerpscopeError):
    """Input or a venue response does not match its documented contract."""


class BadInputError(DataContractError):
    """A file or value given by the user cannot be used as it is (fix the input; exit 2)."""

    exit_code = 2


@dataclass(frozen=True, slots=True)
class BadRow:
    """One invalid input row: where it is and what is wrong with it."""

    line: int
    reason: str


class BadRowsError(BadInputError):
    """Some input rows are invalid; nothing was written."""

    def __init__(
        self,
        source: str,
        bad: list[BadRow],
        total: int,
        position: str = "line",
        count: int | None = None,
    ) -> None:
        self.source = source
        self.bad = bad
        self.total = total
        self.count = len(bad) if count is None else count
        shown = "; ".join(f"{position} {b.line}: {b.reason}" for b in bad[:5])
        more = f" (and {self.count - 5} more)" if self.count > 5 else ""
        super().__init__(
            f"{source}: {self.count} of {total} rows are invalid, nothing was written "
            f"(use --skip-bad to import the rest): {shown}{more}"
        )


class ConflictingRowsError(BadInputError):
    """Rows of one file share a key but differ in value; nothing was written.

    ``conflicts`` holds ``(line, line, what differs)`` for the first of them.
    """

    def __init__(
        self, source: str, conflicts: list[tuple[int, int, str]], count: int, position: str
    ) -> None:
        self.source = source
        self.conflicts = conflicts
        self.count = count
        shown = "; ".join(f"{position}s {a} and {b}: {what}" for a, b, what in conflicts[:3])
        super().__init__(
            f"{source}: {count} {'row repeats' if count == 1 else 'rows repeat'} a key with "
            "different values, nothing was written "
            f"(choose one with --on-conflict first|last): {shown}"
        )


class StoreError(PerpscopeError):
    """The store cannot be opened, read or written."""


class QueryRefusedError(PerpscopeError):
    """A workbench query was refused because it is not a single read-only query."""

    exit_code = 2


class QueryError(PerpscopeError):
    """A read-only workbench query failed, hit its time limit, or named something unknown."""
