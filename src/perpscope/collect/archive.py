"""Backfill from Binance's public archive: download, verify, cache, parse and store zip files.

Every file is verified against its ``.CHECKSUM`` (SHA-256) before it is parsed. A file whose bytes
do not match is refused, logged and downloaded again; a second mismatch stops the run (nothing of
that file is stored). Verified zips are kept in a cache directory with their checksums, so a rerun
(or another instrument's run) reads them from disk.

Resuming: each file's rows are stored (one idempotent commit per table), THEN a cursor row is
written (``collect_cursor``, stream ``archive:<dataset>[:tf]``, note ``file <name>``). A rerun skips
the files whose cursor row exists; a run killed between the two re-reads that one file, and the
store's natural keys make its second ingest write nothing. A file the archive does not have (404:
not published, or before the listing) is reported as missing, not as an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import aiohttp
import polars as pl

from perpscope.collect.cursor import write_cursor
from perpscope.collect.retry import RetryPolicy
from perpscope.domain.symbols import Instrument
from perpscope.errors import DataContractError, PermanentVenueError, TransientVenueError
from perpscope.store.lake import Lake
from perpscope.venues.binance_archive import (
    ARCHIVE_URL,
    ArchiveFile,
    parse_archive,
    plan_files,
    sha256_from_checksum,
)

__all__ = ["ArchiveReport", "backfill_archive", "stored_files"]

_VENUE = "binance"


@dataclass
class ArchiveReport:
    """What one archive backfill did."""

    instrument: str
    files_planned: int = 0
    files_stored: int = 0
    files_skipped: int = 0
    """Stored by an earlier run (their cursor row exists)."""
    files_from_cache: int = 0
    files_downloaded: int = 0
    redownloads: int = 0
    """Downloads refused for a checksum mismatch and fetched again."""
    missing: list[str] = field(default_factory=list)
    rows_written: dict[str, int] = field(default_factory=dict)


def stored_files(lake: Lake, instrument: str) -> set[str]:
    """Names of the archive files whose rows an earlier run stored for ``instrument``."""
    if not lake.has_table("collect_cursor"):
        return set()
    rows = lake.read(
        "collect_cursor",
        ["stream", "note"],
        (pl.col("venue") == _VENUE)
        & (pl.col("instrument") == instrument)
        & pl.col("stream").str.starts_with("archive:"),
    )
    return {n.removeprefix("file ") for n in rows["note"].drop_nulls() if n.startswith("file ")}


class _Fetcher:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        cache: Path,
        policy: RetryPolicy,
        report: ArchiveReport,
        log: Callable[[str], None],
    ) -> None:
        self.session = session
        self.base = base_url.rstrip("/")
        self.cache = cache
        self.policy = policy
        self.report = report
        self.log = log
        self.rng = random.Random()

    async def _get(self, path: str) -> bytes | None:
        """GET ``path``; ``None`` on 404; transient failures retried with backoff."""
        url = f"{self.base}/{path}"
        retry = 0
        while True:
            try:
                async with self.session.get(url) as resp:
                    if resp.status == 404:
                        return None
                    if resp.status >= 500 or resp.status == 429:
                        raise TransientVenueError(f"binance archive GET {path}: HTTP {resp.status}")
                    if resp.status != 200:
                        raise PermanentVenueError(f"binance archive GET {path}: HTTP {resp.status}")
                    return await resp.read()
            except (aiohttp.ClientError, TimeoutError, TransientVenueError) as exc:
                retry += 1
                if retry > self.policy.attempts:
                    if isinstance(exc, TransientVenueError):
                        raise
                    raise TransientVenueError(
                        f"binance archive GET {path}: {type(exc).__name__}: {str(exc)[:160]}"
                    ) from None
                await asyncio.sleep(self.policy.backoff_s(retry, self.rng))

    def _cached(self, file: ArchiveFile) -> bytes | None:
        zip_path = self.cache / file.path
        sum_path = zip_path.with_name(zip_path.name + ".CHECKSUM")
        if not (zip_path.is_file() and sum_path.is_file()):
            return None
        data = zip_path.read_bytes()
        try:
            expected = sha256_from_checksum(sum_path.read_text(encoding="utf-8"), file.name)
        except DataContractError:
            return None
        if hashlib.sha256(data).hexdigest() != expected:
            self.log(f"binance archive: cached {file.name} does not match its checksum; "
                     "downloading it again")  # fmt: skip
            return None
        return data

    def _keep(self, file: ArchiveFile, data: bytes, checksum: str) -> None:
        zip_path = self.cache / file.path
        zip_path.parent.mkdir(parents=True, exist_ok=True)
        for target, payload in ((zip_path, data), (zip_path.with_name(zip_path.name + ".CHECKSUM"),
                                                   checksum.encode()),):  # fmt: skip
            tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(payload)
            tmp.replace(target)

    async def fetch(self, file: ArchiveFile) -> bytes | None:
        """The verified zip (from the cache or downloaded), or ``None`` when not published.

        Raises:
            DataContractError: the zip failed its checksum twice, or has no checksum file.
        """
        data = await asyncio.to_thread(self._cached, file)
        if data is not None:
            self.report.files_from_cache += 1
            return data
        for attempt in (1, 2):
            checksum_raw = await self._get(file.path + ".CHECKSUM")
            zipped = await self._get(file.path)
            if zipped is None:
                return None
            if checksum_raw is None:
                raise DataContractError(f"binance archive: {file.name} has no CHECKSUM file")
            checksum = checksum_raw.decode("utf-8", "replace")
            expected = sha256_from_checksum(checksum, file.name)
            got = hashlib.sha256(zipped).hexdigest()
            self.report.files_downloaded += 1
            if got == expected:
                await asyncio.to_thread(self._keep, file, zipped, checksum)
                return zipped
            if attempt == 1:
                self.report.redownloads += 1
                self.log(f"binance archive: {file.name} refused: SHA-256 {got[:12]}... is not "
                         f"{expected[:12]}... of its CHECKSUM; downloading it again")  # fmt: skip
        raise DataContractError(
            f"binance archive: {file.name} failed its checksum twice; nothing of it was stored"
        )


async def backfill_archive(
    lake: Lake,
    instrument: Instrument,
    datasets: tuple[str, ...],
    since: date,
    until: date,
    *,
    timeframe: str = "1h",
    base_url: str | None = None,
    cache_dir: Path | None = None,
    policy: RetryPolicy | None = None,
    log: Callable[[str], None] = lambda _m: None,
    today: date | None = None,
) -> ArchiveReport:
    """Store the archive files of ``instrument`` covering ``since``..``until`` (days, inclusive).

    Raises:
        UsageError: an unknown dataset or an empty range.
        DataContractError: a file failed its checksum twice or breaks the documented layout.
        TransientVenueError: the archive could not be reached.
    """
    inst = str(instrument)
    files = plan_files(instrument, datasets, since, until, timeframe=timeframe, today=today)
    report = ArchiveReport(inst, files_planned=len(files))
    lake.init()
    done = await asyncio.to_thread(stored_files, lake, inst)
    cache = cache_dir or lake.root / ".cache" / "binance-archive"
    timeout = aiohttp.ClientTimeout(total=300, sock_connect=10, sock_read=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        fetcher = _Fetcher(session, base_url or ARCHIVE_URL, cache, policy or RetryPolicy(),
                           report, log)  # fmt: skip
        for file in files:
            if file.name in done:
                report.files_skipped += 1
                continue
            data = await fetcher.fetch(file)
            if data is None:
                report.missing.append(file.name)
                continue
            frames = parse_archive(data, file, inst)
            last: datetime | None = None
            for table, frame in frames.items():
                if frame.height == 0:
                    continue
                result = await asyncio.to_thread(lake.ingest, table, frame)
                report.rows_written[table] = report.rows_written.get(table, 0) + (
                    result.rows_written
                )
                top = frame["ts"].max()
                if isinstance(top, datetime) and (last is None or top > last):
                    last = top
            cursor_ts = last or datetime.combine(file.start, datetime.min.time(), UTC)
            await asyncio.to_thread(
                write_cursor, lake, _VENUE, inst, file.stream, cursor_ts, f"file {file.name}"
            )
            report.files_stored += 1
    return report
