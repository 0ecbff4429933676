"""The last stage of every import: the store's value rules, in-file duplicates, and the write.

Every importer hands over its parsed rows (with the file position of each in ``_line``) and the
rows its own checks refused; :func:`finish` then

1. applies the schema's rules (:func:`perpscope.domain.schema.row_problems`: NaN/inf, impossible
   timestamps, out-of-domain values) so each refused value is reported with its line and column;
2. refuses the file when any row is bad (or drops the bad rows with ``skip_bad``);
3. finds rows sharing a natural key: identical repeats are counted and dropped, repeats with
   different values are conflicts, refused unless the user chose ``first`` or ``last``;
4. writes the rest in one commit (``replace`` overwrites stored rows of the same keys).

The report adds up: rows read = bad + duplicate + conflicting + written + replaced + already stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import polars as pl
import pyarrow as pa

from perpscope.domain.schema import row_problems, table_spec
from perpscope.errors import BadRow, BadRowsError, ConflictingRowsError
from perpscope.store.lake import Lake, conform

__all__ = ["ConflictPolicy", "ImportReport", "finish"]

ConflictPolicy = Literal["refuse", "first", "last"]
Progress = Callable[[str], None]

_MAX_EXAMPLES = 100


@dataclass(slots=True)
class ImportReport:
    """What an import did; the row counts add up to ``rows_read``."""

    table: str
    path: str
    rows_read: int = 0
    rows_bad: int = 0
    rows_written: int = 0
    rows_already_stored: int = 0
    rows_duplicate: int = 0
    rows_conflicting: int = 0
    rows_replaced: int = 0
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    bad_examples: list[BadRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_accounted(self) -> int:
        """Rows the counts account for; equals ``rows_read`` after every import."""
        return (
            self.rows_bad
            + self.rows_duplicate
            + self.rows_conflicting
            + self.rows_written
            + self.rows_replaced
            + self.rows_already_stored
        )


def finish(
    lake: Lake,
    table: str,
    good: pl.DataFrame,
    bad: pl.DataFrame,
    report: ImportReport,
    *,
    skip_bad: bool,
    on_conflict: ConflictPolicy,
    replace: bool,
    pos_word: str,
    progress: Progress | None = None,
    now: datetime | None = None,
    check: Callable[[pl.DataFrame], None] | None = None,
) -> ImportReport:
    """Check ``good`` against the store's rules, settle in-file duplicates, and write.

    ``good`` holds the table's columns plus ``_line``; ``bad`` holds ``_line`` and ``_bad`` (the
    reason) of the rows the importer refused already. ``check`` sees the rows that passed every
    row check (an importer's whole-file rule, like the spacing of bars) and may raise.

    Raises:
        BadRowsError: rows are invalid and ``skip_bad`` is not set; nothing is written.
        ConflictingRowsError: rows share a key with different values and ``on_conflict`` is
            ``refuse``; nothing is written.
    """
    spec = table_spec(table)
    good, schema_bad = _store_rules(spec.name, good, now or datetime.now(UTC))
    all_bad = pl.concat(
        [bad.select(pl.col("_line").cast(pl.Int64), pl.col("_bad").cast(pl.String)), schema_bad],
        how="vertical",
    ).sort("_line")
    report.rows_bad = all_bad.height
    report.bad_examples = [
        BadRow(int(line), str(why)) for line, why in all_bad.head(_MAX_EXAMPLES).iter_rows()
    ]
    if all_bad.height and not skip_bad:
        raise BadRowsError(
            report.path, report.bad_examples, report.rows_read, pos_word, all_bad.height
        )
    if check is not None:
        check(good)
    rows = _settle_duplicates(good, list(spec.key), report, on_conflict, pos_word)
    if rows.height:
        report.first_ts = rows.get_column("ts").min()  # type: ignore[assignment]
        report.last_ts = rows.get_column("ts").max()  # type: ignore[assignment]
    if progress:
        progress(f"writing {rows.height} rows to {table}")
    result = lake.ingest(table, rows.drop("_line"), replace=replace)
    report.rows_written = result.rows_written
    report.rows_replaced = result.rows_replaced
    report.rows_already_stored = rows.height - result.rows_written - result.rows_replaced
    return report


def _store_rules(
    table: str, good: pl.DataFrame, now: datetime
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split ``good`` into rows the store accepts and ``(_line, _bad)`` of those it refuses."""
    spec = table_spec(table)
    missing = [
        pl.when(pl.col(c.name).is_null()).then(pl.lit(f"{c.name} is missing"))
        for c in spec.columns
        if not c.nullable and c.name in good.columns
    ]
    if missing:
        good = good.with_columns(_bad=pl.coalesce(*missing))
        refused = good.filter(pl.col("_bad").is_not_null()).select("_line", "_bad")
        good = good.filter(pl.col("_bad").is_null()).drop("_bad")
    else:
        refused = pl.DataFrame(schema={"_line": pl.Int64, "_bad": pl.String})
    problems = row_problems(spec, conform(spec, good.drop("_line")), now)
    why = pl.Series("_bad", pa.array(problems, pa.string()), dtype=pl.String)
    checked = good.with_columns(why)
    refused = pl.concat(
        [
            refused.with_columns(pl.col("_line").cast(pl.Int64)),
            checked.filter(pl.col("_bad").is_not_null())
            .select("_line", "_bad")
            .with_columns(pl.col("_line").cast(pl.Int64)),
        ]
    )
    return checked.filter(pl.col("_bad").is_null()).drop("_bad"), refused


def _settle_duplicates(
    rows: pl.DataFrame,
    key: list[str],
    report: ImportReport,
    policy: ConflictPolicy,
    pos_word: str,
) -> pl.DataFrame:
    """Drop identical repeats of a key; resolve or refuse repeats with different values."""
    if rows.select(pl.struct(key).is_unique().all()).item():
        return rows
    values = [c for c in rows.columns if c not in key and c != "_line"]
    ordered = rows.sort("_line")
    # a row repeating an earlier row's key and values exactly is a plain duplicate
    exact = ordered.select(pl.struct([*key, *values]).is_first_distinct().not_()).to_series()
    report.rows_duplicate = int(exact.sum())
    distinct = ordered.filter(~exact)
    # what remains of a repeated key differs in value: a conflict
    repeated = distinct.select(pl.len().over(key) > 1).to_series()
    conflicted = distinct.filter(repeated)
    if conflicted.height:
        examples = _conflict_examples(conflicted, key, values)
        n_conflicting = conflicted.height - conflicted.select(pl.struct(key).n_unique()).item()
        if policy == "refuse":
            raise ConflictingRowsError(report.path, examples, n_conflicting, pos_word)
        report.rows_conflicting = n_conflicting
        report.notes.append(
            f"{n_conflicting} {'row' if n_conflicting == 1 else 'rows'} repeated a key with other "
            f"values; kept the {policy} of each "
            f"({pos_word}s {examples[0][0]} and {examples[0][1]}: {examples[0][2]})"
        )
    keep: Literal["first", "last"] = "last" if policy == "last" else "first"
    return distinct.unique(subset=key, keep=keep, maintain_order=True).sort("_line")


def _conflict_examples(
    conflicted: pl.DataFrame, key: list[str], values: list[str]
) -> list[tuple[int, int, str]]:
    """(first line, other line, what differs) for the first few conflicting keys."""
    out: list[tuple[int, int, str]] = []
    for group in conflicted.partition_by(key, maintain_order=True)[:5]:
        first, other = group.row(0, named=True), group.row(1, named=True)
        diffs = [f"{c} {first[c]!r} vs {other[c]!r}" for c in values if first[c] != other[c]]
        where = ", ".join(f"{k} {first[k]}" for k in key if k in ("ts", "kind", "source", "period"))
        out.append((int(first["_line"]), int(other["_line"]), f"{where}: {'; '.join(diffs)}"))
    return out
