"""The contract every collected stream keeps, whatever the venue: columns, dtypes, UTC, sorted,
unique keys, units; and the venue's errors for an unknown symbol and for statistics older than
its 30 days. Offline it runs against the fake exchange; ``pytest -m live`` runs the very
same checks against the real venue over the network (off by default)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from perpscope.collect.backfill import StreamResult
from perpscope.collect.retry import RetryPolicy
from perpscope.domain.schema import table_spec
from perpscope.domain.symbols import parse_instrument
from perpscope.errors import PermanentVenueError
from perpscope.services.collection import run_backfill
from perpscope.store.lake import Lake
from perpscope.venues.base import parse_stream, period_ms
from perpscope.venues.registry import open_venue
from tests.fakex.market import END_MS
from tests.fakex.server import FakeBinance

PAIRS = [
    ("BTC-USDT-PERP", "funding"),
    ("BTC-USDT-PERP", "ohlcv:trade:1h"),
    ("BTC-USDT-PERP", "ohlcv:mark:1h"),
    ("BTC-USDT-PERP", "ohlcv:index:1h"),
    ("BTC-USDT-PERP", "ohlcv:premium:1h"),
    ("BTC-USDT", "ohlcv:trade:1h"),
    ("BTC-USDT-PERP", "oi:5m"),
    ("BTC-USDT-PERP", "long_short:global_account:5m"),
    ("BTC-USDT-PERP", "long_short:top_account:5m"),
    ("BTC-USDT-PERP", "long_short:top_position:5m"),
    ("BTC-USDT-PERP", "taker:5m"),
]
BYBIT_PAIRS = [
    ("BTC-USDT-PERP", "funding"),
    ("XYZ-USDT-PERP", "funding"),  # 4 h settlements
    ("BTC-USDT-PERP", "ohlcv:trade:1h"),
    ("BTC-USDT-PERP", "ohlcv:mark:1h"),
    ("BTC-USDT-PERP", "ohlcv:index:1h"),
    ("BTC-USDT-PERP", "ohlcv:premium:1h"),
    ("BTC-USDT-PERP", "oi:5m"),
    ("BTC-USDT-PERP", "long_short:global_account:5m"),
]
DERIBIT_PAIRS = [
    ("BTC-USD-PERP", "funding"),  # hourly rows, inverse
    ("ETH-USD-PERP", "funding"),
    ("BTC-USD-PERP", "ohlcv:trade:1h"),
]
OKX_PAIRS = [  # statistics at 1h: one page each, inside OKX's 5 requests / 2 s unpaced
    ("BTC-USDT-PERP", "funding"),
    ("XYZ-USDT-PERP", "funding"),  # 4 h settlements
    ("BTC-USDT-PERP", "ohlcv:trade:1h"),
    ("BTC-USDT-PERP", "ohlcv:mark:1h"),
    ("BTC-USDT-PERP", "ohlcv:index:1h"),
    ("BTC-USDT-PERP", "oi:1h"),
    ("BTC-USDT-PERP", "long_short:global_account:1h"),
    ("BTC-USDT-PERP", "long_short:top_account:1h"),
    ("BTC-USDT-PERP", "long_short:top_position:1h"),
    ("BTC-USDT-PERP", "taker:1h"),
]
CASES = (
    [("binance", inst, stream) for inst, stream in PAIRS]
    + [("bybit", inst, stream) for inst, stream in BYBIT_PAIRS]
    + [("deribit", inst, stream) for inst, stream in DERIBIT_PAIRS]
    + [("okx", inst, stream) for inst, stream in OKX_PAIRS]
)
IDS = [f"{v}-{i}-{s}" for v, i, s in CASES]


def check_contract(
    lake: Lake, venue: str, instrument: str, stream_name: str, res: StreamResult,
    since: datetime, until: datetime, api_url: str | None,
) -> None:  # fmt: skip
    """The checks shared by the offline and the live run."""
    assert res.status == "ok", res.error
    assert res.rows_written > 0
    stream = parse_stream(stream_name)
    spec = table_spec(stream.table)
    # columns and dtypes: exactly the schema's
    assert lake.dataset(stream.table).schema.equals(spec.schema)
    frame = lake.read(stream.table)
    assert frame.columns == list(spec.column_names)
    assert frame.schema["ts"] == pl.Datetime("us", "UTC")
    assert set(frame["venue"]) == {venue}
    assert set(frame["instrument"]) == {instrument}
    # sorted: the venue's first page, read again, comes sorted by time
    page = asyncio.run(_first_page(venue, instrument, stream_name, since, until, api_url))
    assert page["ts"].is_sorted()
    assert page.height > 0
    # unique keys, inside the requested window
    assert not frame.select(pl.struct(list(spec.key)).is_duplicated().any()).item()
    assert frame["ts"].min() >= since  # type: ignore[operator]
    assert frame["ts"].max() < until  # type: ignore[operator]
    if stream.period:
        step = period_ms(stream.period)
        assert (frame["ts"].dt.epoch("ms") % step == 0).all()  # on the period grid
    caps = open_venue(venue).capabilities
    _units(frame, stream.family, stream.kind, caps.oi_unit)


async def _first_page(
    venue: str, instrument: str, stream: str, since: datetime, until: datetime, url: str | None
) -> pl.DataFrame:
    client = open_venue(venue, api_url=url)
    try:
        page = await client.fetch_history(
            parse_instrument(instrument), parse_stream(stream),
            int(since.timestamp() * 1000), int(until.timestamp() * 1000), None,
        )  # fmt: skip
    finally:
        await client.close()
    return page.frame


def _units(frame: pl.DataFrame, family: str, kind: str | None, oi_unit: str) -> None:
    if family == "funding":
        assert frame["rate"].abs().max() < 0.05  # type: ignore[operator]  # fractions, not %
        assert set(frame["interval_h"]).issubset({1.0, 2.0, 4.0, 8.0})
        assert (frame["mark_px"].drop_nulls() > 0).all()
    elif family == "ohlcv":
        ok = frame.select(
            (pl.col("l") <= pl.min_horizontal("o", "c"))
            & (pl.max_horizontal("o", "c") <= pl.col("h"))
        ).to_series()
        assert ok.all()
        if kind == "premium":
            assert frame["c"].abs().max() < 0.1  # type: ignore[operator]  # a fraction
        else:
            assert (frame["l"] > 0).all()
        if kind == "trade":
            assert (frame["volume"] >= 0).all()
            assert (frame["taker_buy_volume"] <= frame["volume"]).all()
        else:
            assert frame["volume"].null_count() == frame.height
    elif family == "oi":
        assert set(frame["oi_unit"]) == {oi_unit}
        # each row states its size in base or USD (Bybit's linear history has no USD value)
        assert (frame["oi_base"].is_not_null() | frame["oi_usd"].is_not_null()).all()
        assert (frame["oi_base"].drop_nulls() > 0).all()
        assert (frame["oi_usd"].drop_nulls() > 0).all()
        if oi_unit == "base":
            assert (frame["oi_base"] == frame["oi_value"]).all()
        if oi_unit == "contracts":  # coins per contract: one contract size over every row
            size = frame["oi_base"] / frame["oi_value"]
            assert ((size - size.median()).abs() <= 1e-6 * size.median()).all()  # type: ignore[operator]
    elif family == "long_short":
        both = frame["long_frac"] + frame["short_frac"]
        assert ((both - 1).abs() < 0.01).all()
        ratio = frame["long_frac"] / frame["short_frac"]
        assert (((ratio - frame["long_short_ratio"]) / ratio).abs() < 0.01).all()
    elif family == "taker":
        assert (frame["buy_volume_base"] >= 0).all()
        ratio = frame["buy_volume_base"] / frame["sell_volume_base"]
        assert (((ratio - frame["buy_sell_ratio"]) / ratio).abs() < 0.01).all()


@pytest.mark.parametrize(("venue", "instrument", "stream"), CASES, ids=IDS)
def test_stream_contract_on_the_fake_exchange(
    tmp_path: Path, fake_binance: FakeBinance, venue: str, instrument: str, stream: str
) -> None:
    until = datetime.fromtimestamp(END_MS / 1000, UTC)
    since = until - timedelta(days=3)
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(
        lake, venue, [instrument], [stream], since=since, until=until, api_url=fake_binance.url,
        policy=RetryPolicy(attempts=2, base_s=0.01), pace=False, rate_limit_ms=1,
    )  # fmt: skip
    check_contract(lake, venue, instrument, stream, res, since, until, fake_binance.url)


@pytest.mark.live
@pytest.mark.parametrize(("venue", "instrument", "stream"), CASES, ids=IDS)
def test_stream_contract_on_the_real_venue(
    tmp_path: Path, venue: str, instrument: str, stream: str
) -> None:
    until = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    since = until - timedelta(days=2)
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(lake, venue, [instrument], [stream], since=since, until=until)
    check_contract(lake, venue, instrument, stream, res, since, until, None)


UNKNOWN_SYMBOL_ERROR = {"binance": "BadSymbol", "bybit": "BadRequest", "okx": "BadSymbol"}


def check_unknown_symbol(tmp_path: Path, venue: str, now: datetime, api_url: str | None) -> None:
    """An unknown symbol is a permanent error: never retried, nothing stored."""
    lake = Lake(tmp_path / "store")
    [res] = run_backfill(
        lake, venue, ["QQQZZZ-USDT-PERP"], ["ohlcv:trade:1h"], since=now - timedelta(days=1),
        until=now, api_url=api_url, policy=RetryPolicy(attempts=2, base_s=0.01),
    )  # fmt: skip
    assert res.status == "failed"
    assert res.retries == 0
    assert UNKNOWN_SYMBOL_ERROR[venue] in (res.error or "")
    assert not lake.has_table("ohlcv")


@pytest.mark.parametrize("venue", ["bybit", "okx"])
def test_unknown_symbol_on_the_fake_exchange(
    tmp_path: Path, fake_binance: FakeBinance, venue: str
) -> None:
    check_unknown_symbol(tmp_path, venue, datetime.fromtimestamp(END_MS / 1000, UTC),
                         fake_binance.url)  # fmt: skip


@pytest.mark.live
@pytest.mark.parametrize("venue", ["bybit", "okx"])
def test_unknown_symbol_on_the_real_venue(tmp_path: Path, venue: str) -> None:
    check_unknown_symbol(tmp_path, venue, datetime.now(UTC).replace(second=0, microsecond=0), None)


def check_venue_errors(tmp_path: Path, now: datetime, api_url: str | None) -> None:
    """Binance's answers to what it does not serve: an unknown symbol, and statistics older
    than the 30 days it keeps. Both are permanent errors, never retried, nothing stored."""
    check_unknown_symbol(tmp_path, "binance", now, api_url)

    async def too_old() -> None:
        client = open_venue("binance", api_url=api_url)
        try:
            start = int((now - timedelta(days=40)).timestamp() * 1000)
            await client.fetch_history(
                parse_instrument("BTC-USDT-PERP"), parse_stream("oi:1h"), start,
                start + 3_600_000 * 10, None,
            )  # fmt: skip
        finally:
            await client.close()

    with pytest.raises(PermanentVenueError, match="startTime"):
        asyncio.run(too_old())


def test_venue_errors_on_the_fake_exchange(tmp_path: Path, fake_binance: FakeBinance) -> None:
    check_venue_errors(tmp_path, datetime.fromtimestamp(END_MS / 1000, UTC), fake_binance.url)


@pytest.mark.live
def test_venue_errors_on_the_real_venue(tmp_path: Path) -> None:
    check_venue_errors(tmp_path, datetime.now(UTC).replace(second=0, microsecond=0), None)
