"""The store: a directory of Delta Lake tables, one per table of ``domain.schema``.

Writes are atomic Delta commits of whole Arrow batches, idempotent on each table's natural key
("merge if absent"): a row whose key is already stored is dropped, never written twice. Writers of
one table serialise on an advisory lock file (``<store>/.locks/<table>.lock``), so two processes
ingesting overlapping keys at once cannot both see a key as new and both append it; a writer killed
mid-ingest leaves only unreferenced Parquet files (removed by ``optimize``) and releases its lock.
Readers never lock: each read sees one committed Delta version.

Every write is checked against the values the schema refuses (``domain.schema.row_problems``:
NaN/inf, impossible timestamps, out-of-domain values) before anything is written. ``replace=True``
rewrites the stored rows of the batch's keys (one Delta merge, one commit), and :meth:`Lake.delete`
removes one instrument's rows of a table (one commit), so a wrong import can be corrected.

The key check reads only the key columns of files whose statistics overlap the batch's key range
(Delta keeps min/max per file), so appending new history costs little and re-ingesting stored
history costs one key scan of the overlapping files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError, TableNotFoundError

from perpscope._lazy import lazy_module
from perpscope.domain.schema import TABLES, TableSpec, row_problems, table_spec
from perpscope.errors import DataContractError, StoreError, UsageError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pds
else:  # reading the store goes through polars alone; pyarrow loads for writes, SQL and export
    pa = lazy_module("pyarrow")
    pc = lazy_module("pyarrow.compute")
    pds = lazy_module("pyarrow.dataset")

__all__ = ["DeleteResult", "IngestResult", "Lake", "TableInfo", "check_values", "conform"]

_MARKER = "perpscope-store.json"
_MAX_ISIN = 4096  # beyond this many distinct values, a key column is not used to prune files


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one ingest did."""

    table: str
    rows_in: int
    rows_written: int
    version: int | None
    rows_replaced: int = 0

    @property
    def rows_skipped(self) -> int:
        """Rows not written because their key was already stored or repeated in the batch."""
        return self.rows_in - self.rows_written - self.rows_replaced


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """What one delete did: rows removed, and the table's version after it (None: no table)."""

    table: str
    rows_deleted: int
    version: int | None


@dataclass(frozen=True, slots=True)
class TableInfo:
    """Summary of one table for ``store info``."""

    name: str
    rows: int
    first_ts: datetime | None
    last_ts: datetime | None
    version: int
    files: int
    damaged: str | None = None
    """Why the table could not be read (``None`` when it is fine); see ``store check``."""


class Lake:
    """A store directory of Delta tables.

    Constructing a Lake touches nothing on disk; the directory is created by the first write.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # ----------------------------------------------------------------------------- metadata

    def table_path(self, name: str) -> Path:
        """Directory of table ``name``."""
        table_spec(name)
        return self.root / name

    def exists(self) -> bool:
        """True when the store directory holds at least the store marker."""
        return (self.root / _MARKER).is_file()

    def marker(self) -> dict[str, Any]:
        """The store's marker record (``{"format": 1, "demo": bool}``), or ``{}`` if absent."""
        try:
            data = json.loads((self.root / _MARKER).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StoreError(f"store marker in {self.root} is unreadable: {_brief(exc)}") from None
        return data if isinstance(data, dict) else {}

    def init(self, *, demo: bool = False) -> None:
        """Create the store directory and its marker if they are missing."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / ".locks").mkdir(exist_ok=True)
            marker = self.root / _MARKER
            if not marker.exists():
                # a temp name of this process's own: processes creating one store at once must
                # not rename each other's temp file away (the marker's content is the same)
                tmp = marker.with_name(f".{_MARKER}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
                tmp.write_text(json.dumps({"format": 1, "demo": demo}), encoding="utf-8")
                tmp.replace(marker)
        except OSError as exc:
            raise StoreError(f"cannot write store at {self.root}: {exc.strerror or exc}") from None

    def has_table(self, name: str) -> bool:
        """True when table ``name`` has been created."""
        return DeltaTable.is_deltatable(str(self.table_path(name)))

    def tables(self) -> list[str]:
        """Names of the tables that exist, in schema order."""
        return [name for name in TABLES if self.has_table(name)]

    # ----------------------------------------------------------------------------- reading

    def _open(self, name: str, version: int | None = None) -> DeltaTable | None:
        path = self.table_path(name)
        if not path.exists():
            return None
        try:
            return DeltaTable(str(path), version=version)
        except TableNotFoundError:
            return None
        except (DeltaError, OSError) as exc:
            raise StoreError(f"table {name} in {self.root} is unreadable: {_brief(exc)}") from None

    def dataset(self, name: str) -> pds.Dataset:
        """A pyarrow dataset over the latest committed version of ``name`` (empty if absent)."""
        spec = table_spec(name)
        dt = self._open(name)
        if dt is None:
            return pds.dataset(spec.schema.empty_table())
        try:
            return dt.to_pyarrow_dataset()
        except (DeltaError, OSError) as exc:
            raise StoreError(f"table {name} in {self.root} is unreadable: {_brief(exc)}") from None

    def read(
        self,
        name: str,
        columns: list[str] | None = None,
        where: pl.Expr | None = None,
    ) -> pl.DataFrame:
        """Read a table (or some columns and rows of it) as a polars frame.

        The latest version's data files come from the Delta log, and polars scans them with the
        table's schema (a file written before a column existed reads it as null); ``where``, a
        polars expression, skips files and row groups by their statistics.
        """
        if where is not None and not isinstance(where, pl.Expr):
            raise TypeError(f"where must be a polars expression, not {type(where).__name__}")
        spec = table_spec(name)
        dt = self._open(name)
        try:
            files = dt.file_uris() if dt is not None else []
            if files:
                scan = pl.scan_parquet(files, schema=spec.polars_schema, missing_columns="insert")
            else:
                scan = pl.LazyFrame(schema=spec.polars_schema)
            if where is not None:
                scan = scan.filter(where)
            if columns is not None:
                scan = scan.select(columns)
            return scan.collect()
        except (DeltaError, OSError, pl.exceptions.PolarsError) as exc:
            raise StoreError(f"table {name} in {self.root} is unreadable: {_brief(exc)}") from None

    def info(self) -> list[TableInfo]:
        """Row counts, time spans, versions and file counts of the existing tables.

        Read from the Delta log's per-file statistics (no data file is opened), so it costs the
        same for a table of a thousand rows or a billion. Delta keeps timestamp statistics to the
        millisecond; a table without statistics is scanned instead.
        """
        out = []
        for name in TABLES:
            if not (self.table_path(name) / "_delta_log").is_dir():
                continue
            try:
                info = self._table_info(name)
            except StoreError as exc:  # one damaged table must not hide the others
                info = TableInfo(name, 0, None, None, -1, 0, damaged=str(exc))
            if info is not None:
                out.append(info)
        return out

    def _table_info(self, name: str) -> TableInfo | None:
        spec = table_spec(name)
        dt = self._open(name)
        if dt is None:  # removed between listing and opening
            return None
        try:
            files = pa.table(dt.get_add_actions(flatten=True))
            rows_col = files.column("num_records") if "num_records" in files.column_names else None
            first = last = None
            col = spec.time_column
            have_stats = (
                rows_col is not None
                and rows_col.null_count == 0
                and (col is None or f"min.{col}" in files.column_names)
            )
            if have_stats and rows_col is not None:
                rows = int(pc.sum(rows_col).as_py() or 0)
                if col is not None and rows:
                    first = pc.min(files.column(f"min.{col}")).as_py()
                    last = pc.max(files.column(f"max.{col}")).as_py()
            else:
                ds = dt.to_pyarrow_dataset()
                rows = ds.count_rows()
                if col is not None and rows:
                    ts = ds.to_table(columns=[col]).column(0)
                    first, last = pc.min(ts).as_py(), pc.max(ts).as_py()
        except (DeltaError, OSError, pa.ArrowException) as exc:
            raise StoreError(f"table {name} in {self.root} is unreadable: {_brief(exc)}") from None
        return TableInfo(name, rows, first, last, dt.version(), files.num_rows)

    # ----------------------------------------------------------------------------- writing

    def ingest(
        self, name: str, data: pa.Table | pl.DataFrame, *, replace: bool = False
    ) -> IngestResult:
        """Write the rows of ``data`` whose natural key is not stored yet, in one atomic commit.

        ``data`` must hold every non-nullable column of the table; missing nullable columns are
        filled with nulls, and types are cast to the schema's. Rows repeating a key within the
        batch keep their last occurrence. With ``replace``, rows whose key is stored overwrite the
        stored row instead of being dropped (one Delta merge: still one atomic commit).

        Raises:
            DataContractError: a column is missing, has the wrong type, a key is null, or a value
                is one the store refuses (see :func:`check_values`); nothing is written.
            StoreError: the store cannot be written.
        """
        spec = table_spec(name)
        conformed = conform(spec, data)
        check_values(spec, conformed)
        batch = _dedupe(conformed, spec)
        if batch.num_rows == 0:
            return IngestResult(name, 0, 0, None)
        self.init()
        with self._write_lock(name):
            dt = self._open(name)
            if dt is not None and replace:
                return self._merge(dt, spec, batch, len(data))
            if dt is not None:
                try:
                    batch = _absent_rows(dt, spec, batch)
                except (DeltaError, OSError, pa.ArrowException) as exc:
                    raise StoreError(
                        f"table {name} in {self.root} is damaged ({_brief(exc)}); "
                        "run 'perpscope store check'"
                    ) from None
                if batch.num_rows == 0:
                    return IngestResult(name, len(data), 0, dt.version())
            try:
                write_deltalake(
                    dt if dt is not None else str(self.table_path(name)),
                    batch,
                    mode="append",
                    schema_mode="merge",  # a column added to the schema later is appended
                    name=name,
                    description=spec.doc,
                )
            except (DeltaError, OSError) as exc:
                raise StoreError(
                    f"cannot write table {name} in {self.root}: {_brief(exc)}"
                ) from None
            version = self._open(name)
            return IngestResult(
                name, len(data), batch.num_rows, version.version() if version else None
            )

    def _merge(
        self, dt: DeltaTable, spec: TableSpec, batch: pa.Table, rows_in: int
    ) -> IngestResult:
        """Upsert ``batch`` on the natural key in one commit (the caller holds the write lock)."""
        on = " AND ".join(f"t.{_quote_ident(k)} = s.{_quote_ident(k)}" for k in spec.key)
        try:
            metrics = (
                dt.merge(batch, predicate=on, source_alias="s", target_alias="t")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
        except (DeltaError, OSError) as exc:
            raise StoreError(
                f"cannot write table {spec.name} in {self.root}: {_brief(exc)}"
            ) from None
        after = self._open(spec.name)
        return IngestResult(
            spec.name,
            rows_in,
            int(metrics.get("num_target_rows_inserted", 0)),
            after.version() if after else None,
            rows_replaced=int(metrics.get("num_target_rows_updated", 0)),
        )

    def delete(
        self,
        name: str,
        *,
        venue: str,
        instrument: str,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> DeleteResult:
        """Delete the rows of one venue and instrument (``since <= ts < until``) in one commit.

        Nothing is committed when no row matches.

        Raises:
            UsageError: naive or reversed times, or a time range on a table without a time column.
            StoreError: the store cannot be written.
        """
        spec = table_spec(name)
        parts = [
            f"{_quote_ident('venue')} = {_quote_text(venue)}",
            f"{_quote_ident('instrument')} = {_quote_text(instrument)}",
        ]
        for bound, op in ((since, ">="), (until, "<")):
            if bound is None:
                continue
            if spec.time_column is None:
                raise UsageError(f"table {name} has no time column to limit a delete by")
            if bound.tzinfo is None:
                raise UsageError("delete bounds must be timezone-aware")
            iso = bound.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            parts.append(f"{_quote_ident(spec.time_column)} {op} '{iso}'")
        if since is not None and until is not None and since >= until:
            raise UsageError("delete range is empty: since must be before until")
        with self._write_lock(name) if self.exists() else contextlib.nullcontext():
            dt = self._open(name)
            if dt is None:
                return DeleteResult(name, 0, None)
            try:
                metrics = dt.delete(" AND ".join(parts))
            except (DeltaError, OSError) as exc:
                raise StoreError(f"cannot delete from table {name}: {_brief(exc)}") from None
            after = self._open(name)
            return DeleteResult(
                name, int(metrics.get("num_deleted_rows", 0)), after.version() if after else None
            )

    @contextlib.contextmanager
    def _write_lock(self, name: str) -> Iterator[None]:
        path = self.root / ".locks" / f"{name}.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot lock table {name} in {self.root}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def optimize(self, retention_h: float) -> dict[str, dict[str, int]]:
        """Compact small files of every table, then vacuum files unreferenced for ``retention_h``.

        Returns, per table, the number of files added and removed by compaction and the number
        of files deleted by vacuum.
        """
        report: dict[str, dict[str, int]] = {}
        for name in self.tables():
            with self._write_lock(name):
                dt = self._open(name)
                if dt is None:
                    continue
                try:
                    metrics = dt.optimize.compact()
                    dt = self._open(name)
                    assert dt is not None
                    deleted = dt.vacuum(
                        retention_hours=int(retention_h),
                        dry_run=False,
                        enforce_retention_duration=False,
                    )
                    dt.create_checkpoint()
                    dt.cleanup_metadata()
                except (DeltaError, OSError) as exc:
                    raise StoreError(f"cannot optimize table {name}: {_brief(exc)}") from None
            report[name] = {
                "files_added": int(metrics.get("numFilesAdded", 0)),
                "files_removed": int(metrics.get("numFilesRemoved", 0)),
                "files_vacuumed": len(deleted),
            }
        return report


def _brief(exc: BaseException) -> str:
    """The first line of a Delta or Arrow error (they may append a backtrace)."""
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def check_values(spec: TableSpec, batch: pa.Table, now: datetime | None = None) -> None:
    """Refuse a batch holding any value the store must never hold (NaN/inf, impossible times...).

    The rules are the schema's (:func:`perpscope.domain.schema.row_problems`); ``now`` (default:
    the clock) bounds event times.

    Raises:
        DataContractError: naming the first bad row (1-based in the batch), its column and value.
    """
    problems = row_problems(spec, batch, now or datetime.now(UTC))
    if problems.null_count == len(problems):
        return
    bad = pc.indices_nonzero(pc.is_valid(problems))
    first = bad[0].as_py()
    raise DataContractError(
        f"{spec.name}: {len(bad)} of {batch.num_rows} rows hold values the store refuses, nothing "
        f"was written; row {first + 1}: {problems[first].as_py()}"
    )


def conform(spec: TableSpec, data: pa.Table | pl.DataFrame) -> pa.Table:
    """Cast ``data`` to the table's schema, in its column order.

    Raises:
        DataContractError: a required column is missing or null, a value cannot be cast, or a
            timestamp has no time zone.
    """
    table = data.to_arrow() if isinstance(data, pl.DataFrame) else data
    columns = []
    for col in spec.columns:
        if col.name not in table.column_names:
            if not col.nullable:
                raise DataContractError(f"{spec.name}: required column {col.name!r} is missing")
            columns.append(pa.nulls(table.num_rows, type=col.type))
            continue
        arr = table.column(col.name)
        if pa.types.is_timestamp(arr.type) and arr.type.tz is None:
            raise DataContractError(f"{spec.name}.{col.name}: naive timestamps are not allowed")
        if pa.types.is_large_string(arr.type) or pa.types.is_string_view(arr.type):
            arr = arr.cast(pa.string())
        try:
            arr = arr.cast(col.type) if arr.type != col.type else arr
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataContractError(
                f"{spec.name}.{col.name}: cannot store {arr.type} as {col.type}: {exc}"
            ) from None
        if not col.nullable and arr.null_count:
            raise DataContractError(f"{spec.name}.{col.name}: {arr.null_count} null values")
        columns.append(arr)
    return pa.Table.from_arrays(columns, schema=spec.schema)


def _dedupe(batch: pa.Table, spec: TableSpec) -> pa.Table:
    frame = pl.from_arrow(batch)
    assert isinstance(frame, pl.DataFrame)
    key = list(spec.key)
    # Distinct row hashes prove distinct keys (the fast path); equal hashes get the exact check.
    if frame.select(pl.struct(key).hash().n_unique()).item() == frame.height:
        return batch
    frame = frame.unique(subset=key, keep="last", maintain_order=True)
    return frame.to_arrow().cast(spec.schema)


def _key_range_filter(spec: TableSpec, batch: pa.Table) -> pc.Expression | None:
    """A filter that keeps every stored row which could share a key with ``batch``."""
    expr: pc.Expression | None = None
    for name in spec.key:
        col = batch.column(name)
        if name == spec.time_column or pa.types.is_timestamp(col.type):
            lo, hi = pc.min(col), pc.max(col)
            part = (pc.field(name) >= lo) & (pc.field(name) <= hi)
        else:
            # the range lets file statistics skip files; the set then filters rows
            lo, hi = pc.min(col), pc.max(col)
            part = (pc.field(name) >= lo) & (pc.field(name) <= hi)
            values = pc.unique(col)
            if len(values) <= _MAX_ISIN:
                part = part & pc.field(name).isin(values)
        expr = part if expr is None else expr & part
    return expr


def _absent_rows(dt: DeltaTable, spec: TableSpec, batch: pa.Table) -> pa.Table:
    """The rows of ``batch`` whose key is not stored in ``dt``."""
    stored = dt.to_pyarrow_dataset().to_table(
        columns=list(spec.key), filter=_key_range_filter(spec, batch)
    )
    if stored.num_rows == 0:
        return batch
    new = pl.from_arrow(batch)
    old = pl.from_arrow(stored)
    assert isinstance(new, pl.DataFrame)
    assert isinstance(old, pl.DataFrame)
    kept = new.join(old, on=list(spec.key), how="anti", nulls_equal=True, maintain_order="left")
    return kept.to_arrow().cast(spec.schema)
