"""Finding and repairing damage in the store, one table at a time.

:func:`check_store` reads every table's Delta log without trusting it: a commit file that does not
parse (a truncated write), an empty commit file (whose rows Delta would silently hide), a data file
that the log references but that is gone, a schema that differs from ``domain/schema.py``, or a
table that Delta cannot open at all.

:func:`repair_table` fixes what Delta allows, under the table's write lock, and says exactly what
it did; it never deletes a data file:

- damaged commits at the end of the log are moved out of the log into
  ``<table>/_perpscope_quarantine/`` (kept, not deleted), so the table opens at the last good
  version; the data files those commits added stay in the table directory (re-import the source
  to get their rows back);
- references to data files that are gone are removed from the table with Delta's file-system
  check (``FSCK``): the rows in those files were already lost, the others stay readable;
- a damaged commit in the middle of the log, or a schema mismatch, is reported and left alone.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from perpscope.domain.schema import TABLES, table_spec
from perpscope.errors import StoreError
from perpscope.store.lake import Lake

__all__ = ["Damage", "TableCheck", "check_store", "check_table", "repair_table"]

QUARANTINE = "_perpscope_quarantine"


@dataclass(frozen=True, slots=True)
class Damage:
    """One problem found in a table.

    ``kind`` is ``bad_commit`` (does not parse), ``empty_commit``, ``missing_file``,
    ``schema_mismatch`` or ``unreadable``; ``version`` is the commit's version when it has one.
    """

    kind: str
    detail: str
    version: int | None = None


@dataclass(frozen=True, slots=True)
class TableCheck:
    """The result of checking one table."""

    table: str
    version: int | None
    damage: list[Damage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong with the table."""
        return not self.damage


def _commits(log: Path) -> list[tuple[int, Path]]:
    return sorted((int(p.stem), p) for p in log.glob("*.json") if p.stem.isdigit())


def _commit_damage(version: int, path: Path) -> Damage | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Damage("bad_commit", f"commit {version} ({path.name}) is unreadable: {exc}", version)
    if not text.strip():
        return Damage(
            "empty_commit",
            f"commit {version} ({path.name}) is empty: the rows it added are hidden",
            version,
        )
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            action = json.loads(line)
        except ValueError as exc:
            return Damage(
                "bad_commit",
                f"commit {version} ({path.name}) line {n} does not parse: {exc}",
                version,
            )
        if not isinstance(action, dict):
            return Damage(
                "bad_commit", f"commit {version} ({path.name}) line {n} is not an action", version
            )
    return None


def _schema_damage(name: str, dt: DeltaTable) -> list[Damage]:
    spec = table_spec(name)
    stored = dt.to_pyarrow_dataset().schema
    want = [(f.name, f.type, f.nullable) for f in spec.schema]
    have = [(f.name, f.type, f.nullable) for f in stored]
    if want == have:
        return []
    if have == want[: len(have)] and all(nl for _, _, nl in want[len(have) :]):
        return []  # nullable columns added to the schema later: read as null, added on append
    missing = [n for n, _, _ in want if n not in stored.names]
    extra = [f.name for f in stored if f.name not in spec.schema.names]
    differ = [
        f"{n} is {t}{'' if nl else ' not null'} (schema: {wt}{'' if wnl else ' not null'})"
        for (n, t, nl) in have
        for (wn, wt, wnl) in want
        if n == wn and (t, nl) != (wt, wnl)
    ]
    parts = []
    if missing:
        parts.append(f"missing columns {', '.join(missing)}")
    if extra:
        parts.append(f"extra columns {', '.join(extra)}")
    if differ:
        parts.append("; ".join(differ))
    if not parts:
        parts.append("columns in another order")
    return [Damage("schema_mismatch", "schema differs from domain/schema.py: " + "; ".join(parts))]


def check_table(lake: Lake, name: str) -> TableCheck:
    """Check one table (see the module docstring for what is checked)."""
    path = lake.table_path(name)
    damage = [d for v, p in _commits(path / "_delta_log") if (d := _commit_damage(v, p))]
    try:
        dt = DeltaTable(str(path))
    except (DeltaError, OSError) as exc:
        if not damage:
            damage.append(Damage("unreadable", f"Delta cannot open the table: {_brief(exc)}"))
        return TableCheck(name, None, damage)
    for uri in dt.file_uris():
        local = Path(unquote(uri.removeprefix("file://")))  # Delta percent-encodes its paths
        if not local.exists():
            damage.append(Damage("missing_file", f"data file {local.name} is missing"))
    try:
        damage.extend(_schema_damage(name, dt))
    except (DeltaError, OSError, pa.ArrowException) as exc:
        damage.append(Damage("unreadable", f"schema unreadable: {_brief(exc)}"))
    return TableCheck(name, dt.version(), damage)


def check_store(lake: Lake) -> list[TableCheck]:
    """Check every table directory of the store that holds a Delta log."""
    return [
        check_table(lake, name)
        for name in TABLES
        if (lake.table_path(name) / "_delta_log").is_dir()
    ]


def repair_table(lake: Lake, name: str) -> list[str]:
    """Repair what Delta allows in table ``name``; returns one line per action taken or refused.

    Raises:
        StoreError: the table cannot be locked or a repair step fails.
    """
    before = check_table(lake, name)
    if before.ok:
        return [f"{name}: nothing to repair"]
    done: list[str] = []
    with lake._write_lock(name):
        done.extend(_drop_trailing_bad_commits(lake, name))
        after = check_table(lake, name)
        if any(d.kind == "missing_file" for d in after.damage):
            done.extend(_forget_missing_files(lake, name))
        final = check_table(lake, name)
    done.extend(f"{name}: NOT repaired: {d.detail}" for d in final.damage)
    return done


def _drop_trailing_bad_commits(lake: Lake, name: str) -> list[str]:
    path = lake.table_path(name)
    log = path / "_delta_log"
    commits = _commits(log)
    bad = {v: d for v, p in commits if (d := _commit_damage(v, p))}
    if not bad:
        return []
    done = []
    trailing: list[tuple[int, Path]] = []
    for version, commit in reversed(commits):
        if version not in bad:
            break
        trailing.append((version, commit))
    middle = sorted(set(bad) - {v for v, _ in trailing})
    if middle:
        done.append(
            f"{name}: NOT repaired: commits {', '.join(map(str, middle))} are damaged and later "
            "commits build on them; restore the table directory from a backup"
        )
    if not trailing:
        return done
    checkpoints = [int(p.name.split(".")[0]) for p in log.glob("*.checkpoint*.parquet")]
    if any(c >= min(v for v, _ in trailing) for c in checkpoints):
        done.append(f"{name}: NOT repaired: a checkpoint was written after the damaged commits")
        return done
    quarantine = path / QUARANTINE
    quarantine.mkdir(exist_ok=True)
    for version, commit in trailing:
        target = quarantine / commit.name
        shutil.move(str(commit), str(target))
        done.append(
            f"{name}: moved damaged commit {version} ({bad[version].kind}) out of the log to "
            f"{target.relative_to(lake.root)}; the data files it added stay in the table "
            "directory (until 'store optimize' vacuums them), but their rows are no longer "
            "visible: re-import their source"
        )
    remaining = _commits(log)
    done.append(
        f"{name}: now at version {remaining[-1][0]}"
        if remaining
        else f"{name}: no good commit is left; the table is now absent (its files are kept)"
    )
    return done


def _forget_missing_files(lake: Lake, name: str) -> list[str]:
    dt = DeltaTable(str(lake.table_path(name)))
    try:
        metrics = dt.repair(dry_run=False)
    except (DeltaError, OSError) as exc:
        raise StoreError(f"cannot repair table {name}: {_brief(exc)}") from None
    files = [str(f) for f in metrics.get("files_removed", [])]
    version = DeltaTable(str(lake.table_path(name))).version()
    return [
        f"{name}: removed {len(files)} references to missing data files "
        f"({', '.join(Path(f).name for f in files)}); their rows were already lost; "
        f"the table's other rows stay (now at version {version})"
    ]


def _brief(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__
