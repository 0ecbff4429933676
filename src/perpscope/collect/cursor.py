"""Resume points of collection streams, kept in the ``collect_cursor`` table.

The table is append-only: each page a backfill stores is followed by one cursor row (the last
event time stored). The cursor of a stream is its latest row. Because the page commit comes
first, a crash between the two leaves the cursor one page behind, and the resumed run re-reads
that page, which the store's idempotent ingest turns into a no-op.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from perpscope.store.lake import Lake

__all__ = ["read_cursor", "write_cursor"]


def read_cursor(lake: Lake, venue: str, instrument: str, stream: str) -> datetime | None:
    """The last event time stored by ``stream`` of ``instrument`` on ``venue``, if any."""
    if not lake.has_table("collect_cursor"):
        return None
    where = (
        (pl.col("venue") == venue)
        & (pl.col("instrument") == instrument)
        & (pl.col("stream") == stream)
    )
    rows = lake.read("collect_cursor", ["ts", "cursor_ts"], where)
    if rows.height == 0:
        return None
    latest = rows.sort("ts").row(-1, named=True)["cursor_ts"]
    assert isinstance(latest, datetime)
    return latest


def write_cursor(
    lake: Lake, venue: str, instrument: str, stream: str, cursor_ts: datetime, note: str = ""
) -> None:
    """Append a cursor row for ``stream`` (one small commit)."""
    frame = pl.DataFrame(
        {
            "venue": [venue],
            "instrument": [instrument],
            "stream": [stream],
            "ts": [datetime.now(UTC)],
            "cursor_ts": [cursor_ts],
            "note": [note or None],
        },
        schema={
            "venue": pl.String,
            "instrument": pl.String,
            "stream": pl.String,
            "ts": pl.Datetime("us", "UTC"),
            "cursor_ts": pl.Datetime("us", "UTC"),
            "note": pl.String,
        },
    )
    lake.ingest("collect_cursor", frame)
