"""Payload checks every venue parser shares: rows, fields, numbers and epoch-millisecond times.

Each ``*_parse`` module makes one :class:`Wire` with its venue's wording (``binance``,
``data[3]`` or ``row 3``) and keeps only what is venue-specific: its envelope, its symbols, its
units. A payload that breaks its documented shape raises
:class:`~perpscope.errors.DataContractError` ``"<venue> <endpoint>: <what>"``.

Numbers come in two strictness flavours, chosen by each venue to match its wire format:

- :meth:`Wire.num_cast`: decimal strings (or numbers) cast by polars, in bulk;
- :meth:`Wire.num_exact`: every value checked on its own (booleans refused), ``""`` and null
  read as null.

Times likewise: :meth:`Wire.ms_cast` (bulk polars cast) and :meth:`Wire.ms_exact` (per value,
optionally digits only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import polars as pl

from perpscope.domain.schema import table_spec
from perpscope.errors import DataContractError

__all__ = ["FUNDING_INTERVALS_H", "INSTRUMENTS_SCHEMA", "Wire", "gap_interval_h"]

FUNDING_INTERVALS_H: Final = (1.0, 2.0, 4.0, 8.0)
"""The funding intervals (hours) venues use: a gap between settlements of another length is a
hole, not an interval."""

INSTRUMENTS_SCHEMA: Final = table_spec("instruments").polars_schema
"""Columns and polars types of ``instruments`` rows, in the store's order."""


def gap_interval_h(prev_ts_ms: int | None) -> pl.Expr:
    """Each settlement's interval in hours, from rows sorted by ``t`` (epoch ms): the gap to the
    previous settlement (``prev_ts_ms`` before the first row) when that gap is a funding
    interval, else null (the first row with nothing before it, a hole)."""
    prev = pl.lit(prev_ts_ms, dtype=pl.Int64)
    gap_h = ((pl.col("t") - pl.col("t").shift(1).fill_null(prev)) / 3_600_000).round(0)
    return pl.when(gap_h.is_in(FUNDING_INTERVALS_H)).then(gap_h).otherwise(None)


_CAST_ERRORS = (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError, TypeError)


@dataclass(frozen=True, slots=True)
class Wire:
    """One venue's payload checks.

    Attributes:
        venue: the venue id that starts every error message.
        row: how an error names row ``i`` (``"row {}"``, ``"data[{}]"``).
        bools_are_numbers: whether ``true``/``false`` pass as numbers (1 and 0).
    """

    venue: str
    row: str = "row {}"
    bools_are_numbers: bool = False

    def fail(self, endpoint: str, what: str) -> DataContractError:
        """The error of a payload of ``endpoint`` that breaks its shape."""
        return DataContractError(f"{self.venue} {endpoint}: {what}")

    def dicts(self, rows: Sequence[Any], endpoint: str) -> list[dict[str, Any]]:
        """``rows``, each checked to be an object."""
        for i, r in enumerate(rows):
            if not isinstance(r, dict):
                what = f"{self.row.format(i)} is a {type(r).__name__}, expected an object"
                raise self.fail(endpoint, what)
        return list(rows)

    def field(self, rows: Sequence[Mapping[str, Any]], key: str, endpoint: str) -> list[Any]:
        """Field ``key`` of every row; a row without it is named with the fields it has."""
        try:
            return [r[key] for r in rows]
        except KeyError:
            i = next(i for i, r in enumerate(rows) if key not in r)
            fields = ", ".join(sorted(rows[i]))
            raise self.fail(
                endpoint, f"{self.row.format(i)} has no field {key!r} (fields: {fields})"
            ) from None

    def is_number(self, value: Any) -> bool:
        """A number or a decimal string (not ``""`` nor null)."""
        if value in ("", None) or (isinstance(value, bool) and not self.bools_are_numbers):
            return False
        try:
            float(value)
        except (TypeError, ValueError):
            return False
        return True

    def num_cast(
        self, values: Sequence[Any], name: str, endpoint: str, *, empty_is_null: bool = True
    ) -> pl.Series:
        """Decimal strings or numbers as Float64, cast by polars; null is null, and so is
        ``""`` when ``empty_is_null`` (else it is a violation, as anything else)."""
        cleaned = [None if v in ("", None) else v for v in values] if empty_is_null else values
        try:
            return pl.Series(name, cleaned, dtype=pl.String, strict=False).cast(pl.Float64)
        except _CAST_ERRORS:
            bad = next(
                (v for v in cleaned if not (empty_is_null and v is None) and not self.is_number(v)),
                None,
            )
            raise self.fail(endpoint, f"field {name!r} holds a non-number {bad!r}") from None

    def num_exact(self, values: Sequence[Any], name: str, endpoint: str) -> pl.Series:
        """Numbers or decimal strings as Float64, each checked; null and ``""`` are null."""
        out: list[float | None] = []
        for v in values:
            if v in ("", None):
                out.append(None)
            elif self.is_number(v):
                out.append(float(v))
            else:
                raise self.fail(endpoint, f"field {name!r} holds a non-number {v!r}")
        return pl.Series(name, out, dtype=pl.Float64)

    def ms_cast(
        self, values: Sequence[Any], name: str, endpoint: str, *, keep_null: bool = False
    ) -> pl.Series:
        """Epoch milliseconds (ints or digit strings) as Int64, cast by polars; null stays null
        when ``keep_null``, else it is a violation."""
        texts = values if keep_null else [str(v) for v in values]
        try:
            return pl.Series(name, texts, dtype=pl.String, strict=False).cast(pl.Int64)
        except _CAST_ERRORS:
            raise self.fail(endpoint, f"field {name!r} holds a non-integer time") from None

    def ms_exact(
        self, values: Sequence[Any], name: str, endpoint: str, *, digits_only: bool = False
    ) -> pl.Series:
        """Epoch milliseconds as Int64, each checked (``digits_only``: no sign, no spaces); the
        error names the first bad value."""
        out = []
        for v in values:
            text = str(v)
            try:
                if digits_only and not text.isdigit():
                    raise ValueError(text)
                out.append(int(text))
            except ValueError:
                raise self.fail(
                    endpoint, f"field {name!r} holds a non-integer time {v!r}"
                ) from None
        return pl.Series(name, out, dtype=pl.Int64)
