"""Bybit v5 linear perpetuals through ccxt's async client.

ccxt owns HTTP, pacing and error mapping; this module owns which raw endpoints to call (ccxt's
implicit API methods such as ``publicGetV5MarketFundingHistory``), their pagination, and hands
the payloads to :mod:`perpscope.venues.bybit_parse`. Limits and depths follow Bybit's v5 docs
(``research/anchors.md`` D.2): one IP pool of 600 requests per 5 seconds over all of Bybit's
REST traffic; an overrun is answered with HTTP 403 and the IP is banned for 10 minutes, so the
collector paces well under it. Funding history since listing, 200 rows a page; klines 1,000
bars a page; OI history 200 rows a page and account ratio 500 a page, both in the periods 5m,
15m, 30m, 1h, 4h, 1d.

Pagination: every history endpoint answers newest first, with both ``startTime`` and
``endTime`` inclusive; asked for a window holding more than ``limit`` rows it returns the newest
``limit``. This module therefore asks for windows that hold at most one page (``limit`` periods,
or ``limit`` funding intervals of the symbol) and, should a funding window still come back full
(an interval shortened mid-window), pages backwards with ``endTime`` inside the same call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Final

import polars as pl

from perpscope.domain.symbols import Instrument, InstrumentKind
from perpscope.errors import DataContractError, UsageError
from perpscope.venues import bybit_parse as yp
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

__all__ = ["CAPABILITIES", "BybitVenue"]

HOUR_MS: Final = 3_600_000

CAPABILITIES: Final = Capabilities(
    venue="bybit",
    page_size={"funding": 200, "ohlcv": 1000, "oi": 200, "long_short": 500},
    # Bybit states no depth for these; the account ratio's is unverified (anchors.md D.2)
    history_days={"funding": None, "ohlcv": None, "oi": None, "long_short": None},
    periods=tuple(yp.PERIODS),
    timeframes=tuple(yp.TIMEFRAMES),
    funding_interval_source="instruments-info fundingInterval (minutes), per symbol",
    default_funding_interval_h=8.0,
    oi_unit="base",
    liquidation_side="no public REST liquidation history (WS allLiquidation only)",
    pools=(
        RatePool(
            "ip",
            600,
            5.0,
            "600 requests / 5 s per IP over all REST traffic; overrun = HTTP 403, 10-minute ban",
        ),
    ),  # fmt: skip
    stream_pools={},
    ban_status=403,
    families=("funding", "ohlcv", "oi", "long_short"),
)

_KLINES: Final = {
    "trade": "publicGetV5MarketKline",
    "mark": "publicGetV5MarketMarkPriceKline",
    "index": "publicGetV5MarketIndexPriceKline",
    "premium": "publicGetV5MarketPremiumIndexPriceKline",
}


class BybitVenue(CcxtVenue):
    """Bybit v5 linear perpetuals through ccxt. Constructing it opens no connection.

    Args:
        api_url: replace every Bybit host by this base URL (a mirror, or the tests' fake).
        timeout_ms: per-request timeout.
        rate_limit_ms: ccxt's spacing of cost-1 requests (Bybit default 20 ms; market
            endpoints cost 5, i.e. 10 requests a second).
    """

    venue_id: ClassVar[str] = "bybit"
    caps: ClassVar[Capabilities] = CAPABILITIES
    market_types: ClassVar[tuple[str, ...] | None] = ("linear",)

    def _setup(self) -> None:
        self._intervals: dict[str, float] | None = None
        self._launch_ms: dict[str, int] = {}

    async def _list(self, method: str, path: str, params: dict[str, Any]) -> Any:
        return yp.result_list(await self._call(method, path, params), path)

    async def _cursor_rows(self, method: str, path: str, params: dict[str, Any]) -> list[Any]:
        """``result.list`` of every page of a cursor-paged endpoint, following
        ``nextPageCursor`` (a few pages at most; the bound guards against a cursor loop)."""
        rows: list[Any] = []
        cursor = ""
        for _ in range(100):
            payload = await self._call(
                method, path, {**params, "cursor": cursor} if cursor else params
            )
            rows += yp.result_list(payload, path)
            cursor = str(payload["result"].get("nextPageCursor") or "")
            if not cursor:
                return rows
        raise DataContractError(f"bybit {path}: the cursor never ends")

    # ------------------------------------------------------------------------ instruments

    async def fetch_instruments(self) -> pl.DataFrame:
        """Linear instruments with status, tick/lot sizes and funding interval."""
        frame, _ = await self._instruments()
        return frame

    async def _instruments(self) -> tuple[pl.DataFrame, tuple[str, ...]]:
        rows = await self._cursor_rows(
            "publicGetV5MarketInstrumentsInfo",
            "v5/market/instruments-info",
            {"category": "linear", "limit": 1000},
        )
        self._launch_ms = {
            str(r["symbol"]): int(str(r["launchTime"]))
            for r in rows
            if isinstance(r, dict) and str(r.get("launchTime", "")).isdigit()
        }
        frame, skipped = yp.parse_instruments(
            rows, now_ms(), CAPABILITIES.default_funding_interval_h
        )
        self._intervals = dict(
            zip(frame["venue_symbol"], frame["funding_interval_h"].fill_null(0.0), strict=True)
        )
        return frame, skipped

    async def _interval_h(self, symbol: str) -> float:
        assert self._intervals is not None
        return self._intervals.get(symbol) or CAPABILITIES.default_funding_interval_h

    # ------------------------------------------------------------------------ history

    async def fetch_history(
        self,
        instrument: Instrument,
        stream: Stream,
        start_ms: int,
        end_ms: int,
        prev_ts: datetime | None,
    ) -> HistoryPage:
        """One page of ``stream`` starting at ``start_ms`` (see :class:`Venue`)."""
        _check(instrument, stream)
        symbol = yp.venue_symbol(instrument)
        inst = str(instrument)
        if self._intervals is None:
            await self._instruments()
        launch = self._launch_ms.get(symbol, 0)
        if start_ms < launch < end_ms:  # nothing before listing: skip the empty windows
            start_ms = launch - launch % HOUR_MS
        if stream.family == "funding":
            prev_ms = int(prev_ts.timestamp() * 1000) if prev_ts is not None else None
            return await self._funding_page(symbol, inst, start_ms, end_ms, prev_ms)
        assert stream.period is not None
        limit = CAPABILITIES.page_size[stream.family]
        step = period_ms(stream.period)
        window_end = min(end_ms, start_ms + limit * step)
        base = {"category": "linear", "symbol": symbol, "limit": limit}
        if stream.family == "ohlcv":
            assert stream.kind is not None
            path = yp.KLINE_ENDPOINTS[stream.kind]
            params = {**base, "interval": yp.TIMEFRAMES[stream.period], "start": start_ms,
                      "end": window_end - 1}  # fmt: skip
            rows = await self._list(_KLINES[stream.kind], path, params)
            frame = yp.parse_klines(rows, inst, stream.kind, step, stream.period, now_ms())
        elif stream.family == "oi":
            path = "v5/market/open-interest"
            params = {**base, "intervalTime": yp.PERIODS[stream.period], "startTime": start_ms,
                      "endTime": window_end - 1}  # fmt: skip
            rows = await self._list("publicGetV5MarketOpenInterest", path, params)
            frame = yp.parse_open_interest(rows, inst, f"hist_{stream.period}")
        else:
            path = "v5/market/account-ratio"
            params = {**base, "period": yp.PERIODS[stream.period], "startTime": start_ms,
                      "endTime": window_end - 1}  # fmt: skip
            rows = await self._list("publicGetV5MarketAccountRatio", path, params)
            frame = yp.parse_account_ratio(rows, inst, stream.period)
        if len(rows) > limit:
            raise DataContractError(f"bybit {path}: {len(rows)} rows for a limit of {limit}")
        frame = frame.filter(in_window(start_ms, window_end))
        return history_page(frame, len(rows), window_end >= end_ms, window_end)

    async def _funding_page(
        self, symbol: str, inst: str, start_ms: int, end_ms: int, prev_ms: int | None
    ) -> HistoryPage:
        path = "v5/market/funding/history"
        limit = CAPABILITIES.page_size["funding"]
        interval_h = await self._interval_h(symbol)
        # the shortest interval Bybit uses is 1 h: a window of `limit` intervals of the
        # symbol's current interval holds at most one page unless the interval changed
        window_end = min(end_ms, start_ms + int(limit * interval_h * HOUR_MS))
        upper = window_end - 1
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        while True:
            params = {"category": "linear", "symbol": symbol, "startTime": start_ms,
                      "endTime": upper, "limit": limit}  # fmt: skip
            got = await self._list("publicGetV5MarketFundingHistory", path, params)
            for r in got:  # pages met backwards may overlap by a row
                key = str(r.get("fundingRateTimestamp")) if isinstance(r, dict) else ""
                if key not in seen:
                    seen.add(key)
                    rows.append(r)
            if len(got) < limit:
                break
            oldest = min(int(str(r.get("fundingRateTimestamp", upper))) for r in got)
            if oldest <= start_ms or oldest - 1 >= upper:
                break
            upper = oldest - 1  # the window held more than a page: page backwards
        frame = yp.parse_funding_history(rows, inst, interval_h, prev_ms)
        frame = frame.filter(in_window(start_ms, window_end))
        return history_page(frame, len(rows), window_end >= end_ms, window_end)

    # ------------------------------------------------------------------------ snapshot

    async def fetch_snapshot(self, instruments: tuple[Instrument, ...]) -> Snapshot:
        """Instruments and the all-symbol linear tickers: funding, mark, index and OI of every
        symbol in two requests (``instruments`` needs no per-symbol call on Bybit)."""
        for inst in instruments:
            _check(inst, None)
        listed, skipped = await self._instruments()
        to_id = dict(zip(listed["venue_symbol"], listed["instrument"], strict=True))
        intervals = dict(
            zip(listed["instrument"], listed["funding_interval_h"].fill_null(0.0), strict=True)
        )
        path = "v5/market/tickers"
        payload = await self._call("publicGetV5MarketTickers", path, {"category": "linear"})
        funding, oi, unmapped = yp.parse_tickers(payload, to_id.get, intervals)
        perps = listed.filter(pl.col("kind") == InstrumentKind.PERP.value)["instrument"]
        funding = funding.filter(pl.col("instrument").is_in(perps.implode()))
        frames = {"instruments": listed, "funding_snapshot": funding}
        if oi.height:
            frames["open_interest"] = oi
        return Snapshot(frames, tuple(sorted({*skipped, *unmapped})))

    # ------------------------------------------------------------------------ tiers

    async def fetch_tiers(self, instrument: Instrument) -> pl.DataFrame:
        """Public risk-limit tiers of a linear perpetual as ``leverage_tiers`` rows, bounds in
        USDT position value: see :func:`bybit_parse.parse_risk_limits`. Follows
        ``nextPageCursor`` should Bybit page the table."""
        _check(instrument, None)
        symbol = yp.venue_symbol(instrument)
        rows = await self._cursor_rows(
            "publicGetV5MarketRiskLimit",
            "v5/market/risk-limit",
            {"category": "linear", "symbol": symbol},
        )
        return yp.parse_risk_limits(rows, str(instrument), symbol, now_ms())

    # ------------------------------------------------------------------------ insurance

    async def fetch_insurance(self, coin: str | None = None) -> pl.DataFrame:
        """Bybit's insurance pools (of one ``coin``, or all) as ``insurance_pool`` rows: one
        request, see :func:`bybit_parse.parse_insurance`. Pool-level figures: a shared pool's
        balance backs every contract it lists, so it is not split among them."""
        params: dict[str, Any] = {"coin": coin} if coin else {}
        payload = await self._call("publicGetV5MarketInsurance", "v5/market/insurance", params)
        return yp.parse_insurance(payload)


def _check(instrument: Instrument, stream: Stream | None) -> None:
    """Refuse instrument/stream pairs this module does not serve (a usage error)."""
    if instrument.kind is not InstrumentKind.PERP or instrument.is_inverse:
        raise UsageError(f"bybit collects linear perpetuals, not {instrument}")
    if stream is None:
        return
    if stream.family not in CAPABILITIES.families:
        raise UsageError(
            f"bybit has no {stream.family} history; streams: funding, ohlcv, oi, "
            "long_short:global_account"
        )
    if stream.family == "long_short" and stream.kind != "global_account":
        raise UsageError(f"bybit publishes only long_short:global_account, not {stream.kind}")
    if stream.family == "ohlcv" and stream.period not in CAPABILITIES.timeframes:
        raise UsageError(
            f"bybit has no {stream.period} klines; use {', '.join(CAPABILITIES.timeframes)}"
        )
    if stream.family in ("oi", "long_short") and stream.period not in CAPABILITIES.periods:
        raise UsageError(
            f"bybit {stream.family} history has no period {stream.period}; use "
            f"{', '.join(CAPABILITIES.periods)}"
        )
