"""Import Deribit option-chain snapshots into the ``options_snapshot`` table.

Two Deribit layouts are read, flattened to CSV (or as the raw JSON responses):

- ``public/get_book_summary_by_currency?kind=option``: one row per instrument with
  ``creation_timestamp`` (ms), ``open_interest``, ``volume``, ``volume_usd``, ``mark_price``,
  ``underlying_price``, ``estimated_delivery_price`` (the index), ``bid_price``, ``ask_price`` and,
  in newer responses, ``mark_iv``;
- ``public/ticker`` per instrument, flattened with dots: ``timestamp`` (ms), ``open_interest``,
  ``mark_price``, ``mark_iv``, ``underlying_price``, ``index_price``, ``best_bid_price``,
  ``best_ask_price``, ``stats.volume``, ``greeks.delta|gamma|vega|theta``.

Units as Deribit writes them (https://docs.deribit.com): prices of inverse options in coin, IV in
percent (stored as a fraction), OI and volume in contracts of one coin. Expiries are at 08:00 UTC.

A file may hold several snapshots: rows are grouped into snapshots by their quote times (a pause
longer than ``gap_s`` starts a new one) and stored with the snapshot's time ``ts`` (its last quote)
and their own ``quote_ts``. Importing the same file twice changes nothing. The store's value rules,
in-file duplicates and ``replace`` work as for every import (``services.import_finish``).
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Final

import polars as pl

from perpscope.analytics.options import snapshot_groups
from perpscope.domain.symbols import format_expiry, parse_expiry, parse_venue
from perpscope.errors import BadInputError, BadRow, UsageError
from perpscope.services.import_finish import ConflictPolicy, ImportReport, finish
from perpscope.services.importer import read_table_file
from perpscope.store.lake import Lake

__all__ = ["DERIBIT_EXPIRY_TIME", "detect_layout", "import_options", "parse_deribit_chain"]

Progress = Callable[[str], None]

DERIBIT_EXPIRY_TIME: Final = time(8, 0, tzinfo=UTC)
"""Deribit options expire at 08:00 UTC on their expiry date."""

SUPPORTED_VENUES: Final = ("deribit",)

_MIN_MS: Final = -2_208_988_800_000  # 1900-01-01
_MAX_MS: Final = 7_258_118_400_000  # 2200-01-01

_NAME_RE: Final = re.compile(r"^([A-Z0-9]+)-(\d{1,2}[A-Z]{3}\d{2})-(\d+(?:d\d+)?)-([CP])$")

# layout -> {our column: Deribit column}
_LAYOUTS: Final[dict[str, dict[str, str]]] = {
    "book_summary": {
        "quote_ms": "creation_timestamp",
        "open_interest_contracts": "open_interest",
        "volume_contracts": "volume",
        "volume_usd": "volume_usd",
        "mark_price": "mark_price",
        "bid_price": "bid_price",
        "ask_price": "ask_price",
        "mark_iv_pct": "mark_iv",
        "underlying_px": "underlying_price",
        "index_px": "estimated_delivery_price",
    },
    "ticker": {
        "quote_ms": "timestamp",
        "open_interest_contracts": "open_interest",
        "volume_contracts": "stats.volume",
        "volume_usd": "stats.volume_usd",
        "mark_price": "mark_price",
        "bid_price": "best_bid_price",
        "ask_price": "best_ask_price",
        "mark_iv_pct": "mark_iv",
        "underlying_px": "underlying_price",
        "index_px": "index_price",
        "delta": "greeks.delta",
        "gamma": "greeks.gamma",
        "vega": "greeks.vega",
        "theta": "greeks.theta",
    },
}
_REQUIRED: Final = ("instrument_name", "open_interest", "mark_price", "underlying_price")


def detect_layout(columns: list[str]) -> str:
    """Which Deribit layout a file's columns are: ``book_summary`` or ``ticker``.

    Raises:
        BadInputError: naming the columns each layout needs when neither matches.
    """
    cols = set(columns)
    missing = [c for c in _REQUIRED if c not in cols]
    if not missing:
        if "creation_timestamp" in cols:
            return "book_summary"
        if "timestamp" in cols:
            return "ticker"
        missing = ["creation_timestamp (book summary) or timestamp (ticker)"]
    raise BadInputError(
        f"not a Deribit option chain: missing {', '.join(missing)} (expected the flattened "
        "get_book_summary_by_currency or ticker layout)"
    )


def _read(path: Path) -> tuple[pl.DataFrame, int]:
    """The file's rows (text columns for CSV) and the line number of its first row."""
    name = path.name.lower()
    if name.endswith((".json", ".json.gz")):
        if path.is_dir():
            raise UsageError(f"cannot read {path}: it is a directory, not a file")
        if not path.is_file():
            raise UsageError(f"cannot read {path}: no such file")
        try:
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError, EOFError) as exc:
            raise UsageError(f"cannot read {path}: {' '.join(str(exc).split())[:300]}") from None
        records = doc.get("result", doc) if isinstance(doc, dict) else doc
        if isinstance(records, dict):
            records = [records]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise BadInputError(f"{path}: expected a list of instruments under 'result'")
        frame = pl.json_normalize(records, separator=".", infer_schema_length=None)
        return frame, 1
    frame, word = read_table_file(path)
    return frame, 2 if word == "line" else 1


def _num(frame: pl.DataFrame, column: str | None) -> pl.Expr:
    if column is None or column not in frame.columns:
        return pl.lit(None, pl.Float64)
    return pl.col(column).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)


def _parse_name(name: str) -> tuple[str, date, float, str] | str:
    """(underlying, expiry date, strike, C|P) of a Deribit option name, or why it is not one."""
    m = _NAME_RE.match(name)
    if not m:
        return f"instrument {name!r} is not a Deribit coin-settled option (BTC-26MAR21-10000-C)"
    try:
        expiry = parse_expiry(m.group(2))
    except ValueError as exc:
        return str(exc)
    return m.group(1), expiry, float(m.group(3).replace("d", ".")), m.group(4)


def _canonical(underlying: str, expiry: date, strike: float, right: str) -> str:
    strike_text = f"{strike:f}".rstrip("0").rstrip(".")
    return f"{underlying}-USD-{format_expiry(expiry)}-{strike_text}-{right}"


def parse_deribit_chain(
    raw: pl.DataFrame, layout: str, first_line: int = 2, gap_s: float = 60.0
) -> tuple[pl.DataFrame, list[BadRow]]:
    """Map a Deribit chain to ``options_snapshot`` rows; return them with the invalid rows.

    A row is invalid when its instrument is not a coin-settled Deribit option, its quote time,
    open interest or mark price is missing or negative, or it is already expired at its quote time.
    Empty bids and asks (Deribit writes 0) are stored as null; IV is converted from percent.
    """
    mapping = _LAYOUTS[layout]
    frame = raw.with_row_index("_line", offset=first_line).select(
        "_line",
        pl.col("instrument_name").cast(pl.String).str.strip_chars().alias("venue_symbol"),
        *[_num(raw, src).alias(dst) for dst, src in mapping.items()],
        *[
            pl.lit(None, pl.Float64).alias(g)
            for g in ("delta", "gamma", "vega", "theta")
            if g not in mapping
        ],
    )
    names = frame["venue_symbol"].fill_null("").unique().to_list()
    parsed = {n: _parse_name(n) for n in names}
    good = {n: p for n, p in parsed.items() if not isinstance(p, str)}
    meta = pl.DataFrame(
        [
            (n, p[0], _canonical(*p), datetime.combine(p[1], DERIBIT_EXPIRY_TIME), p[2], p[3])
            for n, p in good.items()
        ],
        schema={
            "venue_symbol": pl.String,
            "underlying": pl.String,
            "instrument": pl.String,
            "expiry_ts": pl.Datetime("us", "UTC"),
            "strike_px": pl.Float64,
            "option_type": pl.String,
        },
        orient="row",
    )
    # epoch ms outside 1900..2200 are refused before conversion (99999999999999999 overflows)
    in_range = pl.col("quote_ms").is_finite() & pl.col("quote_ms").is_between(_MIN_MS, _MAX_MS)
    quote_ts = pl.from_epoch(
        pl.when(in_range).then(pl.col("quote_ms")).round(0).cast(pl.Int64), time_unit="ms"
    )
    rows = frame.join(meta, on="venue_symbol", how="left").with_columns(
        quote_ts.dt.cast_time_unit("us").dt.replace_time_zone("UTC").alias("quote_ts")
    )
    name_reason = pl.col("venue_symbol").replace_strict(
        {n: p for n, p in parsed.items() if isinstance(p, str)}, default=None
    )
    checks: list[tuple[pl.Expr, pl.Expr]] = [
        (pl.col("instrument").is_null(), name_reason),
        (
            pl.col("quote_ms").is_not_null() & ~in_range,
            pl.lit("quote timestamp out of range (not an epoch ms of 1900 to 2200)"),
        ),
        (pl.col("quote_ts").is_null(), pl.lit("missing or bad quote timestamp")),
        (pl.col("open_interest_contracts").is_null(), pl.lit("missing open_interest")),
        (pl.col("open_interest_contracts") < 0, pl.lit("negative open_interest")),
        (pl.col("mark_price").is_null(), pl.lit("missing mark_price")),
        (pl.col("mark_price") < 0, pl.lit("negative mark_price")),
        (pl.col("expiry_ts") <= pl.col("quote_ts"), pl.lit("option already expired at its quote")),
        # NaN and -inf would otherwise pass as "no quote" where empty quotes become null below
        *[
            (~pl.col(dst).is_finite(), pl.lit(f"{src} is not a finite number"))
            for dst, src in mapping.items()
            if dst != "quote_ms"
        ],
    ]
    reason: pl.Expr = pl.lit(None, pl.String)
    for failed, why in reversed(checks):
        reason = pl.when(failed.fill_null(False)).then(why).otherwise(reason)
    rows = rows.with_columns(reason.alias("_bad"))
    bad = [
        BadRow(int(r["_line"]), str(r["_bad"]))
        for r in rows.filter(pl.col("_bad").is_not_null()).iter_rows(named=True)
    ]
    ok = rows.filter(pl.col("_bad").is_null())
    positive = [
        pl.when(pl.col(c) > 0).then(pl.col(c)).otherwise(None).alias(c)
        for c in ("bid_price", "ask_price", "mark_iv_pct")
    ]
    ok = ok.with_columns(*positive).with_columns(
        snapshot_groups(ok["quote_ts"], gap_s).alias("ts"),
        (pl.col("mark_iv_pct") / 100.0).alias("mark_iv"),
        pl.col("underlying").alias("price_currency"),
        pl.lit(1.0).alias("contract_size_base"),
    )
    return ok.sort("quote_ts").drop("_bad", "quote_ms", "mark_iv_pct"), bad


def import_options(
    lake: Lake,
    path: Path,
    *,
    venue: str,
    skip_bad: bool = False,
    gap_s: float = 60.0,
    on_conflict: ConflictPolicy = "refuse",
    replace: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a Deribit option-chain file (book summary or ticker layout) into ``options_snapshot``.

    Raises:
        UsageError: the venue is not one whose layouts perpscope reads, or the file is unreadable.
        BadInputError: the file is not a Deribit chain, or has no rows.
        BadRowsError: some rows are invalid and ``skip_bad`` is not set (nothing is written).
        ConflictingRowsError: an instrument is quoted twice in one snapshot with other values and
            ``on_conflict`` is ``refuse`` (nothing is written).
    """
    try:
        venue = parse_venue(venue)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if venue not in SUPPORTED_VENUES:
        raise UsageError(
            f"options import reads {', '.join(SUPPORTED_VENUES)} layouts only, not {venue!r}"
        )
    if progress:
        progress(f"reading {path.name}")
    raw, first_line = _read(path)
    if raw.height == 0:
        raise BadInputError(f"{path}: no rows to import")
    layout = detect_layout(raw.columns)
    rows, bad = parse_deribit_chain(raw, layout, first_line, gap_s)
    report = ImportReport(table="options_snapshot", path=str(path), rows_read=raw.height)
    word = "line" if first_line == 2 else "row"
    if rows.height == 0 and (skip_bad or not bad):
        raise BadInputError(f"{path}: no valid rows to import")
    refused = pl.DataFrame(
        {"_line": [b.line for b in bad], "_bad": [b.reason for b in bad]},
        schema={"_line": pl.Int64, "_bad": pl.String},
    )
    rows = rows.with_columns(pl.lit(venue).alias("venue"), pl.col("_line").cast(pl.Int64))
    report = finish(
        lake,
        "options_snapshot",
        rows,
        refused,
        report,
        skip_bad=skip_bad,
        on_conflict=on_conflict,
        replace=replace,
        pos_word=word,
        progress=progress,
    )
    underlyings = ", ".join(rows["underlying"].unique().sort().to_list())
    report.notes.append(
        f"deribit {layout} layout; {underlyings}; {rows['ts'].n_unique()} snapshot(s), "
        f"{rows['instrument'].n_unique()} instruments"
    )
    return report
