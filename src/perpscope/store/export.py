"""Export the store as Hive-partitioned Parquet that other engines read as is.

Layout: ``DIR/<table>/venue=<v>/instrument=<i>/date=<YYYY-MM-DD>/part-0.parquet``; ``date`` is
the UTC date of the table's time column. Spark, Trino, DuckDB
(``read_parquet('DIR/funding/**/*.parquet', hive_partitioning = true)``), polars and pandas
read it without perpscope.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pds

from perpscope.domain.schema import table_spec
from perpscope.errors import StoreError, UsageError
from perpscope.store.lake import Lake

__all__ = ["ExportResult", "export_parquet"]

PARTITION_COLUMNS = ("venue", "instrument", "date")


@dataclass(frozen=True, slots=True)
class ExportResult:
    """Rows and files written for one table."""

    table: str
    rows: int
    files: int
    path: Path


def export_parquet(
    lake: Lake, out_dir: Path, tables: list[str] | None = None
) -> list[ExportResult]:
    """Write each table (all existing ones by default) as Hive-partitioned Parquet in ``out_dir``.

    A table's previous export in ``out_dir`` is replaced partition by partition.
    """
    names = tables or lake.tables()
    for name in names:
        try:
            table_spec(name)
        except KeyError as exc:
            raise UsageError(str(exc.args[0])) from None
    results = []
    for name in names:
        spec = table_spec(name)
        if not lake.has_table(name) or spec.time_column is None:
            continue
        ds = lake.dataset(name)
        projection = {c: pc.field(c) for c in spec.column_names}
        projection["date"] = pc.field(spec.time_column).cast(pa.date32())
        target = out_dir / name
        written: list[int] = []
        try:
            scanner = ds.scanner(columns=projection)
            pds.write_dataset(
                scanner,
                target,
                format="parquet",
                partitioning=list(PARTITION_COLUMNS),
                partitioning_flavor="hive",
                existing_data_behavior="delete_matching",
                basename_template="part-{i}.parquet",
                file_visitor=lambda f, rows=written: rows.append(f.metadata.num_rows),
                max_rows_per_group=1_000_000,
                max_partitions=1_000_000,
                max_open_files=2_000,
            )
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"cannot export {name} to {target}: {exc}") from None
        rows = sum(written)
        results.append(ExportResult(name, rows, len(written), target))
    return results
