"""Deribit (API v2, JSON-RPC over HTTP GET) through ccxt's async client.

ccxt owns HTTP, pacing and error mapping (a JSON-RPC ``error`` becomes a ccxt exception by its
code: ``10028 too_many_requests`` -> ``DDoSProtection``, ``13020 not_found`` and ``-32602
Invalid params`` -> errors that are never retried); this module owns which raw endpoints to call
(ccxt's implicit methods such as ``publicGetGetFundingRateHistory``), their pagination, and
hands the payloads to :mod:`perpscope.venues.deribit_parse`.

What is collected: perpetual funding history (hourly, see the parser's docstring for what is
stored) and trade klines (``get_tradingview_chart_data``, 5,000 bars a request), all-instrument
snapshots of the BTC and ETH futures and perpetuals (funding accruing now, mark, index, open
interest in one request per currency), option instruments and chains
(``get_book_summary_by_currency?kind=option``), option trades with their block-trade and
liquidation flags, and the DVOL volatility index.

Rate limit (Deribit "Rate Limits"): non-matching-engine requests (every public market-data
method) cost 500 credits from a pool of 50,000 that refills at 10,000 credits a second: 20
requests a second sustained, bursts of up to 100. A request that finds the pool empty is refused
with JSON-RPC error ``10028 too_many_requests`` (HTTP 429, no ``Retry-After``); perpscope paces
at 80% of the sustained rate and, refused anyway, pauses the pool and retries.

Pagination:

- funding history: ``start_timestamp``/``end_timestamp``; at most 744 hourly rows (31 days) an
  answer, so windows of 744 hours are asked. ccxt asks ``start - 1`` because Deribit's start
  bound behaves as exclusive; perpscope does the same and keeps only ``[start, end)``.
- option trades: ``start_timestamp``/``end_timestamp`` with ``count`` up to 1,000 and
  ``sorting=asc``; ``has_more`` says a window held more, and the next request starts at the last
  trade's time (inclusive: trades of that millisecond are dropped by ``trade_id``).
- DVOL: newest first in pages of up to 1,000 candles; ``continuation`` is the
  ``end_timestamp`` of the next, older page (``null`` at the start of the window).
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Final

import polars as pl

from perpscope.domain.symbols import Instrument, InstrumentKind
from perpscope.errors import DataContractError, UsageError
from perpscope.venues import deribit_parse as dp
from perpscope.venues.base import (
    Capabilities,
    CcxtVenue,
    HistoryPage,
    RatePool,
    Snapshot,
    Stream,
    history_page,
    in_window,
    now_ms,
    period_ms,
)

__all__ = ["CAPABILITIES", "CURRENCIES", "DeribitVenue"]

HOUR_MS: Final = 3_600_000
CURRENCIES: Final = ("BTC", "ETH")
"""Currencies whose inverse futures, perpetuals and options are collected."""
FUNDING_PAGE: Final = 744
CHART_PAGE: Final = 5000
TRADES_PAGE: Final = 1000
DVOL_PAGE: Final = 1000

CAPABILITIES: Final = Capabilities(
    venue="deribit",
    page_size={
        "funding": FUNDING_PAGE,
        "ohlcv": CHART_PAGE,
        "option_trades": TRADES_PAGE,
        "dvol": DVOL_PAGE,
    },  # fmt: skip
    # funding history reaches back to the perpetual's listing (BTC-PERPETUAL 2018-08-14);
    # Deribit states no limit for trades or DVOL (unverified how far they go)
    history_days={"funding": None, "ohlcv": None, "option_trades": None, "dvol": None},
    periods=(),
    timeframes=tuple(dp.CHART_RESOLUTIONS),
    funding_interval_source=(
        "continuous accrual; history rows are hourly (interest_1h, interval 1 h); the "
        "snapshot's current_funding is quoted per 8 h"
    ),
    default_funding_interval_h=1.0,
    oi_unit="usd",
    liquidation_side=(
        "option trades carry 'liquidation' M, T or MT: the maker, the taker or both were liquidated"
    ),
    pools=(
        RatePool(
            "credits",
            20,
            1.0,
            "non-matching-engine credits: 500 a request from 50,000, refilled at 10,000/s "
            "(20 req/s sustained, bursts of 100); overrun = JSON-RPC error 10028",
        ),
    ),
    stream_pools={},
    ban_pauses_venue=False,
    families=("funding", "ohlcv"),
)


class DeribitVenue(CcxtVenue):
    """Deribit through ccxt. Constructing it opens no connection.

    Args:
        api_url: replace Deribit's host by this base URL (a mirror, or the tests' fake).
        timeout_ms: per-request timeout.
        rate_limit_ms: ccxt's spacing of requests (Deribit default 50 ms: 20 a second).
    """

    venue_id: ClassVar[str] = "deribit"
    caps: ClassVar[Capabilities] = CAPABILITIES

    def _setup(self) -> None:
        self._created_ms: dict[str, int] | None = None

    # ------------------------------------------------------------------------ instruments

    async def instruments(self, currency: str, kind: str) -> tuple[pl.DataFrame, tuple[str, ...]]:
        """``get_instruments`` of one currency and kind (``future`` | ``option``)."""
        _currency(currency)
        payload = await self._call(
            "publicGetGetInstruments", "public/get_instruments",
            {"currency": currency, "kind": kind, "expired": "false"},
        )  # fmt: skip
        rows = dp.result_of(payload, "public/get_instruments")
        if isinstance(rows, list):
            created = {
                str(r.get("instrument_name")): int(r["creation_timestamp"])
                for r in rows
                if isinstance(r, dict) and str(r.get("creation_timestamp", "")).isdigit()
            }
            self._created_ms = {**(self._created_ms or {}), **created}
        return dp.parse_instruments(payload, now_ms())

    async def fetch_instruments(self) -> pl.DataFrame:
        """The BTC and ETH futures and perpetuals."""
        frames = [(await self.instruments(c, "future"))[0] for c in CURRENCIES]
        return pl.concat(frames)

    # ------------------------------------------------------------------------ history

    async def fetch_history(
        self,
        instrument: Instrument,
        stream: Stream,
        start_ms: int,
        end_ms: int,
        prev_ts: datetime | None,
    ) -> HistoryPage:
        """One page of funding or trade klines from ``start_ms`` (see :class:`Venue`)."""
        _check(instrument, stream)
        symbol = dp.venue_symbol(instrument)
        if self._created_ms is None or symbol not in self._created_ms:
            await self.instruments(instrument.base, "future")
        created = (self._created_ms or {}).get(symbol)
        if created is None:
            raise UsageError(f"deribit lists no {symbol} ({instrument})")
        if start_ms < created < end_ms:  # nothing before listing: skip the empty windows
            start_ms = created - created % HOUR_MS
        if stream.family == "ohlcv":
            return await self._chart_page(instrument, symbol, stream, start_ms, end_ms)
        path = "public/get_funding_rate_history"
        window_end = min(end_ms, start_ms + FUNDING_PAGE * HOUR_MS)
        params = {"instrument_name": symbol, "start_timestamp": start_ms - 1,
                  "end_timestamp": window_end - 1}  # fmt: skip
        payload = await self._call("publicGetGetFundingRateHistory", path, params)
        raw = dp.result_of(payload, path)
        if isinstance(raw, list) and len(raw) > FUNDING_PAGE:
            raise DataContractError(f"deribit {path}: {len(raw)} rows for a page of {FUNDING_PAGE}")
        frame = dp.parse_funding_history(payload, str(instrument)).filter(
            in_window(start_ms, window_end)
        )
        rows = len(raw) if isinstance(raw, list) else 0
        return history_page(frame, rows, window_end >= end_ms, window_end)

    async def _chart_page(
        self, instrument: Instrument, symbol: str, stream: Stream, start_ms: int, end_ms: int
    ) -> HistoryPage:
        assert stream.period is not None
        step = period_ms(stream.period)
        path = "public/get_tradingview_chart_data"
        window_end = min(end_ms, start_ms + CHART_PAGE * step)
        params = {"instrument_name": symbol, "start_timestamp": start_ms,
                  "end_timestamp": window_end - 1,
                  "resolution": dp.CHART_RESOLUTIONS[stream.period]}  # fmt: skip
        payload = await self._call("publicGetGetTradingviewChartData", path, params)
        result = dp.result_of(payload, path)
        frame = dp.parse_chart(result, str(instrument), stream.period, step, now_ms()).filter(
            in_window(start_ms, window_end)
        )
        ticks = result.get("ticks") if isinstance(result, dict) else None
        rows = len(ticks) if isinstance(ticks, list) else 0
        if rows > CHART_PAGE:
            raise DataContractError(f"deribit {path}: {rows} bars for a page of {CHART_PAGE}")
        return history_page(frame, rows, window_end >= end_ms, window_end)

    # ------------------------------------------------------------------------ snapshots

    async def fetch_snapshot(self, instruments: tuple[Instrument, ...]) -> Snapshot:
        """Instruments and book summaries of the BTC and ETH futures: funding, mark, index and
        OI of every Deribit future and perpetual in four requests. ``instruments`` is not
        needed (the summary covers every future), so instruments of other venues are ignored."""
        del instruments
        listed: list[pl.DataFrame] = []
        funding: list[pl.DataFrame] = []
        oi: list[pl.DataFrame] = []
        skipped: list[str] = []
        path = "public/get_book_summary_by_currency"
        for currency in CURRENCIES:
            frame, skip = await self.instruments(currency, "future")
            listed.append(frame)
            payload = await self._call(
                "publicGetGetBookSummaryByCurrency", path, {"currency": currency, "kind": "future"}
            )
            f, o, unmapped = dp.parse_book_summary_futures(payload)
            funding.append(f)
            oi.append(o)
            skipped += [*skip, *unmapped]
        frames = {
            "instruments": pl.concat(listed),
            "funding_snapshot": pl.concat(funding),
            "open_interest": pl.concat(oi),
        }
        return Snapshot({k: v for k, v in frames.items() if v.height}, tuple(sorted(set(skipped))))

    async def fetch_option_chain(self, currency: str) -> dict[str, pl.DataFrame]:
        """Option instruments and one chain snapshot of ``currency`` (two requests):
        ``instruments`` and ``options_snapshot`` frames."""
        listed, _ = await self.instruments(currency, "option")
        path = "public/get_book_summary_by_currency"
        payload = await self._call(
            "publicGetGetBookSummaryByCurrency", path, {"currency": currency, "kind": "option"}
        )
        chain, _ = dp.parse_book_summary_options(payload)
        return {"instruments": listed, "options_snapshot": chain}

    async def fetch_option_trades(
        self, currency: str, start_ms: int, end_ms: int, *, max_pages: int = 1000
    ) -> pl.DataFrame:
        """Every option trade of ``currency`` in ``[start_ms, end_ms)``, oldest first."""
        _currency(currency)
        path = "public/get_last_trades_by_currency_and_time"
        frames: list[pl.DataFrame] = []
        seen: set[str] = set()
        start = start_ms
        for _ in range(max_pages):
            params = {"currency": currency, "kind": "option", "start_timestamp": start,
                      "end_timestamp": end_ms - 1, "count": TRADES_PAGE,
                      "sorting": "asc"}  # fmt: skip
            payload = await self._call("publicGetGetLastTradesByCurrencyAndTime", path, params)
            frame, more = dp.parse_option_trades(dp.result_of(payload, path))
            frame = frame.filter(~pl.col("trade_id").is_in(list(seen)))
            seen.update(frame["trade_id"].to_list())
            frames.append(frame)
            if not more or frame.height == 0:
                break
            last = frame["ts"].max()
            assert isinstance(last, datetime)
            start = int(last.timestamp() * 1000)
        else:
            raise DataContractError(f"deribit {path}: has_more never ends")
        out = pl.concat(frames)
        return out.filter(in_window(start_ms, end_ms)).sort("ts", "trade_id")

    async def fetch_dvol(
        self, currency: str, start_ms: int, end_ms: int, timeframe: str = "1h",
        *, max_pages: int = 1000,
    ) -> pl.DataFrame:  # fmt: skip
        """DVOL candles of ``currency`` opening in ``[start_ms, end_ms)``, oldest first."""
        _currency(currency)
        if timeframe not in dp.DVOL_RESOLUTIONS:
            raise UsageError(
                f"DVOL has no {timeframe} candles; use {', '.join(dp.DVOL_RESOLUTIONS)}"
            )
        path = "public/get_volatility_index_data"
        frames: list[pl.DataFrame] = []
        end = end_ms - 1
        for _ in range(max_pages):
            params = {"currency": currency, "start_timestamp": start_ms, "end_timestamp": end,
                      "resolution": dp.DVOL_RESOLUTIONS[timeframe]}  # fmt: skip
            payload = await self._call("publicGetGetVolatilityIndexData", path, params)
            frame, cont = dp.parse_dvol(dp.result_of(payload, path), currency, timeframe)
            frames.append(frame)
            if cont is None or cont < start_ms or cont >= end or frame.height == 0:
                break
            end = cont
        else:
            raise DataContractError(f"deribit {path}: the continuation never ends")
        out = pl.concat(frames).unique(["ts"], keep="first")
        return out.filter(in_window(start_ms, end_ms)).sort("ts")


def _currency(currency: str) -> None:
    if currency not in CURRENCIES:
        raise UsageError(
            f"deribit options are collected for {', '.join(CURRENCIES)}, not {currency!r}"
        )


def _check(instrument: Instrument, stream: Stream) -> None:
    """Refuse instrument/stream pairs this module does not serve (a usage error)."""
    if instrument.kind is not InstrumentKind.PERP:
        raise UsageError(f"deribit history (funding, klines) is for perpetuals, not {instrument}")
    if stream.family not in CAPABILITIES.families or stream.kind not in (None, "trade"):
        raise UsageError(
            f"deribit has no {stream.name} history here; streams: funding, ohlcv:trade:<tf> "
            "(option chains, option trades and DVOL: perpscope collect options)"
        )
    if stream.family == "ohlcv" and stream.period not in CAPABILITIES.timeframes:
        raise UsageError(
            f"deribit has no {stream.period} klines; use {', '.join(CAPABILITIES.timeframes)}"
        )
