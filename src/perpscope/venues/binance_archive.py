"""Binance's public data archive (``data.binance.vision``): USDⓈ-M daily and monthly zip files.

Long history that the REST API no longer serves (OI and ratios beyond 30 days) is published here
as one zip per symbol and day (or month), each with a ``.CHECKSUM`` file beside it holding the
zip's SHA-256 (``<hex>  <name>``). Paths, under ``/data/futures/um/``::

    {daily|monthly}/klines/<SYM>/<tf>/<SYM>-<tf>-<YYYY-MM[-DD]>.zip           trade candles
    {daily|monthly}/{markPrice|indexPrice|premiumIndex}Klines/<SYM>/<tf>/...  the same layout
    monthly/fundingRate/<SYM>/<SYM>-fundingRate-<YYYY-MM>.zip                 settlements
    daily/metrics/<SYM>/<SYM>-metrics-<YYYY-MM-DD>.zip                        OI and ratios, 5 min

Each zip holds one CSV (newer files start with a header line, older ones do not):

- klines: the REST kline's 12 fields (open time in ms, OHLC, volume, close time, quote volume,
  trades, taker-buy volume, taker-buy quote volume, ignore);
- fundingRate: ``calc_time`` (ms), ``funding_interval_hours``, ``last_funding_rate``;
- metrics: ``create_time`` (``YYYY-MM-DD HH:MM:SS`` UTC), ``symbol``, ``sum_open_interest`` (base
  units), ``sum_open_interest_value`` (USD), ``count_toptrader_long_short_ratio`` (top traders by
  accounts), ``sum_toptrader_long_short_ratio`` (top traders by positions),
  ``count_long_short_ratio`` (all accounts), ``sum_taker_long_short_vol_ratio`` (taker buy/sell).

Rows go to the same tables as the REST history: ``ohlcv``, ``funding``, ``open_interest`` (source
``archive``), ``long_short`` and ``taker_volume`` (period ``5m``; the archive gives the taker
ratio only, so the volumes are null). A ratio ``r`` becomes shares ``r / (1 + r)`` long and
``1 / (1 + r)`` short. Metrics times are snapped to the 5-minute grid the REST statistics use.
Binance's ``liquidationSnapshot`` archive is no longer published for USDⓈ-M and is not read.
"""

from __future__ import annotations

import calendar
import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

import polars as pl

from perpscope.domain.symbols import Instrument
from perpscope.errors import DataContractError, UsageError
from perpscope.venues.binance_parse import parse_klines, venue_symbol

__all__ = [
    "ARCHIVE_URL",
    "DATASETS",
    "ArchiveFile",
    "parse_archive",
    "plan_files",
    "sha256_from_checksum",
]

ARCHIVE_URL: Final = "https://data.binance.vision"
VENUE: Final = "binance"
DATASETS: Final = (
    "klines", "markPriceKlines", "indexPriceKlines", "premiumIndexKlines", "fundingRate", "metrics",
)  # fmt: skip
_KLINE_KIND: Final = {
    "klines": "trade",
    "markPriceKlines": "mark",
    "indexPriceKlines": "index",
    "premiumIndexKlines": "premium",
}
_METRICS_STEP_MS: Final = 300_000


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """One zip of the archive.

    Attributes:
        dataset: one of :data:`DATASETS`.
        symbol: Binance's symbol (``BTCUSDT``).
        span: ``daily`` or ``monthly``.
        label: ``YYYY-MM-DD`` or ``YYYY-MM``.
        timeframe: the kline interval (klines only).
        start: first day the file covers.
    """

    dataset: str
    symbol: str
    span: str
    label: str
    timeframe: str | None
    start: date

    @property
    def name(self) -> str:
        """The zip's file name (``BTCUSDT-1h-2024-01.zip``)."""
        middle = self.timeframe if self.timeframe else self.dataset
        return f"{self.symbol}-{middle}-{self.label}.zip"

    @property
    def path(self) -> str:
        """The zip's path below the archive's base URL."""
        parts = ["data", "futures", "um", self.span, self.dataset, self.symbol]
        if self.timeframe:
            parts.append(self.timeframe)
        return "/".join([*parts, self.name])

    @property
    def stream(self) -> str:
        """The cursor stream that records this file's series (``archive:klines:1h``)."""
        return f"archive:{self.dataset}" + (f":{self.timeframe}" if self.timeframe else "")


def _months(since: date, until: date) -> list[date]:
    out, d = [], since.replace(day=1)
    while d <= until:
        out.append(d)
        d = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


def plan_files(
    instrument: Instrument,
    datasets: tuple[str, ...],
    since: date,
    until: date,
    *,
    timeframe: str = "1h",
    today: date | None = None,
) -> list[ArchiveFile]:
    """The files that cover ``since``..``until`` (inclusive days), oldest first per dataset.

    Klines come as monthly files for whole months that have ended, and daily files for the rest
    (a month in progress is only published day by day); funding only monthly; metrics only daily.
    Days from ``today`` on are not published yet and are left out.

    Raises:
        UsageError: an unknown dataset, an empty range, or an instrument that is not a USDⓈ-M
            perpetual.
    """
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        raise UsageError(f"unknown archive dataset {unknown[0]!r}; datasets: {', '.join(DATASETS)}")
    if instrument.kind.value != "perp" or instrument.quote not in ("USDT", "USDC"):
        raise UsageError(f"the archive is read for USDⓈ-M perpetuals, not {instrument}")
    today = today or datetime.now(UTC).date()
    until = min(until, today - timedelta(days=1))
    if until < since:
        raise UsageError(f"nothing published from {since} to {until}: pick an earlier --since")
    symbol = venue_symbol(instrument)
    files: list[ArchiveFile] = []
    this_month = today.replace(day=1)
    for ds in datasets:
        tf = timeframe if ds in _KLINE_KIND else None
        if ds == "metrics":
            files += _daily(ds, symbol, tf, since, until)
            continue
        for month in _months(since, until):
            last = month.replace(day=calendar.monthrange(month.year, month.month)[1])
            whole = since <= month and last <= until
            if ds == "fundingRate" or (whole and month < this_month):
                files.append(ArchiveFile(ds, symbol, "monthly", f"{month:%Y-%m}", tf, month))
            else:
                files += _daily(ds, symbol, tf, max(since, month), min(until, last))
    return files


def _daily(ds: str, symbol: str, tf: str | None, first: date, last: date) -> list[ArchiveFile]:
    out = []
    d = first
    while d <= last:
        out.append(ArchiveFile(ds, symbol, "daily", f"{d:%Y-%m-%d}", tf, d))
        d += timedelta(days=1)
    return out


def sha256_from_checksum(text: str, name: str) -> str:
    """The SHA-256 in a ``.CHECKSUM`` file (``<64 hex>  <name>``).

    Raises:
        DataContractError: the file does not hold a SHA-256 for ``name``.
    """
    parts = text.split()
    digest = parts[0].lower() if parts else ""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise DataContractError(f"binance archive: {name}.CHECKSUM holds no SHA-256")
    if len(parts) > 1 and parts[1].lstrip("*") != name:
        raise DataContractError(f"binance archive: {name}.CHECKSUM names {parts[1]!r}")
    return digest


def _csv(data: bytes, file: ArchiveFile) -> tuple[list[str] | None, list[list[str]]]:
    """The header (``None`` when the file has none) and rows of the zip's one CSV."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = [n for n in zf.namelist() if n.endswith(".csv")]
            if len(names) != 1:
                raise DataContractError(
                    f"binance archive: {file.name} holds {len(names)} CSV files, expected 1"
                )
            text = zf.read(names[0]).decode("utf-8")
    except (zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise DataContractError(f"binance archive: {file.name} is unreadable: {exc}") from None
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    rows = [ln.split(",") for ln in lines]
    if rows and rows[0] and not rows[0][0].lstrip("-").replace(".", "").isdigit():
        return rows[0], rows[1:]
    return None, rows


def _column(
    header: list[str] | None, rows: list[list[str]], name: str, file: ArchiveFile
) -> list[str]:
    if header is None or name not in header:
        raise DataContractError(f"binance archive: {file.name} has no column {name!r}")
    i = header.index(name)
    if any(len(r) <= i for r in rows):
        raise DataContractError(f"binance archive: {file.name} has a short row")
    return [r[i] for r in rows]


def _floats(values: list[str], name: str, file: ArchiveFile) -> pl.Series:
    try:
        return pl.Series(name, [float(v) if v != "" else None for v in values], pl.Float64)
    except ValueError:
        bad = next(v for v in values if not _is_float(v))
        raise DataContractError(
            f"binance archive: {file.name}: {name} {bad!r} is not a number"
        ) from None


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return v == ""
    return True


def parse_archive(data: bytes, file: ArchiveFile, instrument: str) -> dict[str, pl.DataFrame]:
    """Parse one archive zip into store rows, per table.

    Raises:
        DataContractError: the zip or its CSV breaks the documented layout.
    """
    header, rows = _csv(data, file)
    if file.dataset in _KLINE_KIND:
        assert file.timeframe is not None
        if any(len(r) < 11 for r in rows):
            raise DataContractError(f"binance archive: {file.name} has a row of under 11 fields")
        parsed = [[int(r[0]) // (1000 if len(r[0]) > 13 else 1), *r[1:6],
                   int(r[6]) // (1000 if len(r[6]) > 13 else 1), *r[7:]] for r in rows]  # fmt: skip
        frame = parse_klines(
            parsed, instrument, _KLINE_KIND[file.dataset], file.timeframe,
            now_ms=int(datetime.now(UTC).timestamp() * 1000), endpoint=f"archive {file.name}",
        )  # fmt: skip
        return {"ohlcv": frame}
    if file.dataset == "fundingRate":
        t = [int(v) for v in _column(header, rows, "calc_time", file)]
        rate = _floats(_column(header, rows, "last_funding_rate", file), "rate", file)
        hours = _floats(_column(header, rows, "funding_interval_hours", file), "interval_h", file)
        frame = pl.DataFrame({"t": t, "rate": rate, "interval_h": hours}).select(
            pl.lit(VENUE).alias("venue"),
            pl.lit(instrument).alias("instrument"),
            _utc((pl.col("t") + 30_000) // 60_000 * 60_000).alias("ts"),  # ms jitter: snap
            "rate",
            "interval_h",
            pl.lit(None, pl.Float64).alias("mark_px"),
        )
        return {"funding": frame.sort("ts")}
    if file.dataset == "metrics":
        return _metrics(header, rows, file, instrument)
    raise DataContractError(f"binance archive: no parser for dataset {file.dataset!r}")


def _utc(ms: pl.Expr) -> pl.Expr:
    return ms.cast(pl.Datetime("ms", "UTC")).cast(pl.Datetime("us", "UTC"))


def _metrics(
    header: list[str] | None, rows: list[list[str]], file: ArchiveFile, instrument: str
) -> dict[str, pl.DataFrame]:
    times = _column(header, rows, "create_time", file)
    try:
        ms = [int(datetime.fromisoformat(t).replace(tzinfo=UTC).timestamp() * 1000) for t in times]
    except ValueError:
        raise DataContractError(
            f"binance archive: {file.name}: create_time is not a time"
        ) from None
    base = (
        pl.DataFrame(
            {
                "t": [
                    (m + _METRICS_STEP_MS // 2) // _METRICS_STEP_MS * _METRICS_STEP_MS for m in ms
                ],
                "oi_base": _floats(_column(header, rows, "sum_open_interest", file), "oi", file),
                "oi_usd": _floats(
                    _column(header, rows, "sum_open_interest_value", file), "usd", file
                ),
                "top_account": _floats(
                    _column(header, rows, "count_toptrader_long_short_ratio", file), "r", file
                ),
                "top_position": _floats(
                    _column(header, rows, "sum_toptrader_long_short_ratio", file), "r", file
                ),
                "global_account": _floats(
                    _column(header, rows, "count_long_short_ratio", file), "r", file
                ),
                "taker": _floats(
                    _column(header, rows, "sum_taker_long_short_vol_ratio", file), "r", file
                ),
            }
        )
        .unique("t", keep="last")
        .sort("t")
    )
    venue, inst = pl.lit(VENUE).alias("venue"), pl.lit(instrument).alias("instrument")
    ts = _utc(pl.col("t")).alias("ts")
    oi = base.filter(pl.col("oi_base").is_not_null()).select(
        venue, inst, pl.lit("archive").alias("source"), ts, pl.col("oi_base").alias("oi_value"),
        pl.lit("base").alias("oi_unit"), "oi_base", "oi_usd",
    )  # fmt: skip
    ratios = []
    for kind in ("global_account", "top_account", "top_position"):
        r = pl.col(kind)
        ratios.append(base.filter(r.is_not_null() & (r >= 0)).select(
            venue, inst, pl.lit(kind).alias("kind"), pl.lit("5m").alias("period"), ts,
            (r / (1 + r)).alias("long_frac"), (1 / (1 + r)).alias("short_frac"),
            r.alias("long_short_ratio"),
        ))  # fmt: skip
    taker = base.filter(pl.col("taker").is_not_null() & (pl.col("taker") >= 0)).select(
        venue, inst, pl.lit("5m").alias("period"), ts,
        pl.lit(None, pl.Float64).alias("buy_volume_base"),
        pl.lit(None, pl.Float64).alias("sell_volume_base"),
        pl.col("taker").alias("buy_sell_ratio"),
    )  # fmt: skip
    return {"open_interest": oi, "long_short": pl.concat(ratios), "taker_volume": taker}
