"""Binance USDⓈ-M futures (and the matching spot klines) through ccxt's async client.

ccxt owns HTTP, pacing by weight and error mapping; this module owns which raw endpoints to call
(ccxt's implicit API methods such as ``fapiPublicGetFundingRate``), their pagination, and hands
the raw payloads to :mod:`perpscope.venues.binance_parse`. History depth and rate limits follow
Binance's docs (``research/anchors.md`` D.1): funding since listing at 1,000 rows a page in a pool
of 500 requests per 5 minutes shared with ``fundingInfo``; OI history, long/short ratios and taker
volume for the last 30 days only, 500 rows a page, 1,000 requests per 5 minutes; klines at 1,500
(futures) and 1,000 (spot) bars a page under the 2,400-weight-per-minute IP limit.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, ClassVar, Final

import polars as pl

from perpscope.domain.symbols import Instrument, InstrumentKind
from perpscope.errors import UsageError
from perpscope.venues import binance_parse as bp
from perpscope.venues.base import (
    Capabilities,
    CcxtVenue,
    HistoryPage,
    RatePool,
    Snapshot,
    Stream,
    history_page,
    now_ms,
)

__all__ = ["CAPABILITIES", "BinanceVenue"]

KEY_ENV: Final = "PERPSCOPE_BINANCE_KEY"
SECRET_ENV: Final = "PERPSCOPE_BINANCE_SECRET"
CAPABILITIES: Final = Capabilities(
    venue="binance",
    page_size={
        "funding": 1000,
        "ohlcv": 1500,
        "ohlcv_spot": 1000,
        "oi": 500,
        "long_short": 500,
        "taker": 500,
    },  # fmt: skip
    history_days={"funding": None, "ohlcv": None, "oi": 30, "long_short": 30, "taker": 30},
    periods=("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d"),
    timeframes=(
        "1m",
        "3m",
        "5m",
        "15m",
        "30m",
        "1h",
        "2h",
        "4h",
        "6h",
        "8h",
        "12h",
        "1d",
        "3d",
        "1w",
    ),  # fmt: skip
    funding_interval_source=(
        "per row: time since the previous settlement (fundingRate rows carry none); current: "
        "fapi/v1/fundingInfo for adjusted symbols, else 8h"
    ),
    default_funding_interval_h=8.0,
    oi_unit="base",
    liquidation_side=(
        "forceOrder side is the liquidation order's side: SELL closes a long, BUY closes a short"
    ),
    liquidation_feed_sampled=(
        "the forceOrder stream sends at most one liquidation per symbol per second"
    ),
    pools=(
        RatePool("weight", 2400, 60.0, "REQUEST_WEIGHT per IP; 429 = back off, 418 = IP ban"),
        RatePool("funding", 500, 300.0, "fundingRate and fundingInfo, per IP"),
        RatePool("futures_data", 1000, 300.0, "futures/data/* statistics, per IP"),
    ),
    stream_pools={
        "funding": "funding",
        "instruments": "funding",
        "oi": "futures_data",
        "long_short": "futures_data",
        "taker": "futures_data",
        "ohlcv": "weight",
        "snapshot": "weight",
    },  # fmt: skip
    # klines weigh by limit (under 100 rows 1, under 500 2, to 1,000 5, more 10): a full
    # futures page (1,500) weighs 10; spot klines weigh 2 of a
    # separate, larger spot budget, so pacing them as 10 errs on the safe side. A snapshot is
    # exchangeInfo + premiumIndex + openInterest per instrument (1 each) + fundingInfo.
    page_weight={"ohlcv": 10.0, "snapshot": 4.0},
    used_weight_header="X-MBX-USED-WEIGHT-1m",
    weight_pool="weight",
)

_STATS: Final = {
    "oi": "fapiDataGetOpenInterestHist",
    "taker": "fapiDataGetTakerlongshortRatio",
}
_LONG_SHORT: Final = {
    "global_account": "fapiDataGetGlobalLongShortAccountRatio",
    "top_account": "fapiDataGetTopLongShortAccountRatio",
    "top_position": "fapiDataGetTopLongShortPositionRatio",
}
_KLINES: Final = {
    "trade": "fapiPublicGetKlines",
    "mark": "fapiPublicGetMarkPriceKlines",
    "index": "fapiPublicGetIndexPriceKlines",
    "premium": "fapiPublicGetPremiumIndexKlines",
}


class BinanceVenue(CcxtVenue):
    """Binance USDⓈ-M through ccxt. Constructing it opens no connection.

    Args:
        api_url: replace every Binance host by this base URL (a mirror, or the tests' fake).
        timeout_ms: per-request timeout.
        rate_limit_ms: ccxt's spacing of cost-1 requests (Binance default 50 ms).
    """

    venue_id: ClassVar[str] = "binance"
    caps: ClassVar[Capabilities] = CAPABILITIES
    market_types: ClassVar[tuple[str, ...] | None] = ("spot", "linear")

    def _setup(self) -> None:
        self._intervals: dict[str, float] | None = None

    async def fetch_tiers(self, instrument: Instrument) -> pl.DataFrame:
        """Leverage brackets of a USDⓈ-M perpetual as ``leverage_tiers`` rows (USD bounds).

        ``GET /fapi/v1/leverageBracket`` is a signed (USER_DATA) request: the key and secret come
        from ``PERPSCOPE_BINANCE_KEY`` and ``PERPSCOPE_BINANCE_SECRET``.

        Raises:
            UsageError: the key or secret is not set, or the instrument is not a linear perpetual.
        """
        key = os.environ.get(KEY_ENV, "")
        secret = os.environ.get(SECRET_ENV, "")
        if not key or not secret:
            raise UsageError(
                f"binance leverage brackets need an API key: set {KEY_ENV} and {SECRET_ENV}"
            )
        if instrument.kind is not InstrumentKind.PERP or instrument.is_inverse:
            raise UsageError(f"binance tiers are collected for USDⓈ-M perpetuals, not {instrument}")
        self.client.apiKey, self.client.secret = key, secret
        symbol = bp.venue_symbol(instrument)
        path = "fapi/v1/leverageBracket"
        payload = await self._call("fapiPrivateGetLeverageBracket", path, {"symbol": symbol})
        return bp.parse_leverage_brackets(payload, str(instrument), symbol, now_ms())

    async def fetch_trades(
        self, instrument: Instrument, start_ms: int, end_ms: int
    ) -> list[tuple[int, int, float, bool]]:
        """Aggregate trades with ``start_ms <= T < end_ms`` as ``(id, T, qty, taker bought)``.

        ``GET /fapi/v1/aggTrades`` (spot pairs: ``GET /api/v3/aggTrades``, the same fields): the
        first page by time window (Binance allows under an hour),
        the next ones by ``fromId`` (1,000 a page) until a trade at or after ``end_ms``. Used to
        fill a gap of the live trade stream.
        """
        symbol = bp.venue_symbol(instrument)
        spot = instrument.kind is InstrumentKind.SPOT
        method, path = ("publicGetAggTrades", "api/v3/aggTrades") if spot else (
            "fapiPublicGetAggTrades", "fapi/v1/aggTrades")  # fmt: skip
        out: list[tuple[int, int, float, bool]] = []
        window = start_ms
        params: dict[str, Any] = {}
        while window < end_ms and not params:
            page = await self._call(method, path, {
                "symbol": symbol, "startTime": window,
                "endTime": min(end_ms - 1, window + 3_599_999), "limit": 1000,
            })  # fmt: skip
            rows = bp.parse_agg_trades(page)
            window += 3_600_000
            if rows:
                out += [r for r in rows if r[1] < end_ms]
                params = {"symbol": symbol, "fromId": rows[-1][0] + 1, "limit": 1000}
                if len(rows) < 1000 or rows[-1][1] >= end_ms:
                    return out
        while params:
            rows = bp.parse_agg_trades(await self._call(method, path, params))
            out += [r for r in rows if r[1] < end_ms]
            if len(rows) < 1000 or not rows or rows[-1][1] >= end_ms:
                break
            params["fromId"] = rows[-1][0] + 1
        return out

    # ------------------------------------------------------------------------ instruments

    async def fetch_instruments(self) -> pl.DataFrame:
        """USDⓈ-M instruments with status, tick/lot sizes and current funding interval."""
        frame, _ = await self._instruments()
        return frame

    async def _instruments(self) -> tuple[pl.DataFrame, tuple[str, ...]]:
        info = await self._call("fapiPublicGetExchangeInfo", "fapi/v1/exchangeInfo", {})
        funding = await self._call("fapiPublicGetFundingInfo", "fapi/v1/fundingInfo", {})
        frame, skipped = bp.parse_exchange_info(
            info, funding, now_ms(), CAPABILITIES.default_funding_interval_h
        )
        self._intervals = dict(
            zip(frame["venue_symbol"], frame["funding_interval_h"].fill_null(0.0), strict=True)
        )
        return frame, skipped

    async def _interval_h(self, symbol: str) -> float:
        """Current funding interval of ``symbol`` (reads fundingInfo once)."""
        if self._intervals is None:
            funding = await self._call("fapiPublicGetFundingInfo", "fapi/v1/fundingInfo", {})
            self._intervals = {
                r["symbol"]: float(r["fundingIntervalHours"])
                for r in bp._rows(funding, "fapi/v1/fundingInfo")
                if "symbol" in r and r.get("fundingIntervalHours") is not None
            }
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
        symbol = bp.venue_symbol(instrument)
        inst = str(instrument)
        if stream.family == "funding":
            return await self._funding_page(symbol, inst, start_ms, end_ms, prev_ts)
        if stream.family == "ohlcv":
            return await self._kline_page(instrument, symbol, stream, start_ms, end_ms)
        return await self._stats_page(symbol, inst, stream, start_ms, end_ms)

    async def _funding_page(
        self, symbol: str, inst: str, start_ms: int, end_ms: int, prev_ts: datetime | None
    ) -> HistoryPage:
        limit = CAPABILITIES.page_size["funding"]
        params = {"symbol": symbol, "startTime": start_ms, "endTime": end_ms - 1, "limit": limit}
        payload = await self._call("fapiPublicGetFundingRate", "fapi/v1/fundingRate", params)
        prev_ms = int(prev_ts.timestamp() * 1000) if prev_ts is not None else None
        rows = bp._rows(payload, "fapi/v1/fundingRate")
        fallback = await self._interval_h(symbol) if len(rows) < 2 and prev_ms is None else 8.0
        frame = bp.parse_funding_rate(rows, inst, prev_ms, fallback)
        if prev_ts is not None:  # a resumed page may repeat the stored settlement (ms jitter)
            frame = frame.filter(pl.col("ts") > prev_ts)
        # page on the raw times: the stored ones are snapped to the minute
        next_start = max(int(r["fundingTime"]) for r in rows) + 1 if rows else None
        return history_page(frame, len(rows), len(rows) < limit, next_start)

    async def _kline_page(
        self, instrument: Instrument, symbol: str, stream: Stream, start_ms: int, end_ms: int
    ) -> HistoryPage:
        assert stream.kind is not None
        assert stream.period is not None
        spot = instrument.kind is InstrumentKind.SPOT
        limit = CAPABILITIES.page_size["ohlcv_spot" if spot else "ohlcv"]
        method = "publicGetKlines" if spot else _KLINES[stream.kind]
        path = "api/v3/klines" if spot else bp.KLINE_ENDPOINTS[stream.kind]
        params: dict[str, Any] = {
            "interval": stream.period,
            "startTime": start_ms,
            "endTime": end_ms - 1,
            "limit": limit,
        }
        params["pair" if stream.kind == "index" else "symbol"] = symbol
        payload = await self._call(method, path, params)
        rows = bp._rows(payload, path, list)
        frame = bp.parse_klines(
            rows, str(instrument), stream.kind, stream.period, now_ms=now_ms(), endpoint=path
        )
        frame = frame.filter(pl.col("ts") < pl.lit(end_ms).cast(pl.Datetime("ms", "UTC")))
        return history_page(frame, len(rows), len(rows) < limit, None)

    async def _stats_page(
        self, symbol: str, inst: str, stream: Stream, start_ms: int, end_ms: int
    ) -> HistoryPage:
        assert stream.period is not None
        assert stream.period_ms is not None
        limit = CAPABILITIES.page_size[stream.family]
        window_end = min(end_ms, start_ms + limit * stream.period_ms)
        params = {
            "symbol": symbol,
            "period": stream.period,
            "startTime": start_ms,
            "endTime": window_end - 1,
            "limit": limit,
        }
        if stream.family == "long_short":
            assert stream.kind is not None
            method = _LONG_SHORT[stream.kind]
            path = f"futures/data/{bp.LONG_SHORT_ENDPOINTS[stream.kind]}"
        else:
            method = _STATS[stream.family]
            path = "futures/data/" + method.removeprefix("fapiDataGet")
        payload = await self._call(method, path, params)
        rows = bp._rows(payload, path)
        if stream.family == "oi":
            frame = bp.parse_open_interest_hist(rows, inst, stream.period)
        elif stream.family == "taker":
            frame = bp.parse_taker_volume(rows, inst, stream.period)
        else:
            assert stream.kind is not None
            frame = bp.parse_long_short(rows, inst, stream.kind, stream.period)
        frame = frame.filter(pl.col("ts") < pl.lit(end_ms).cast(pl.Datetime("ms", "UTC")))
        return history_page(frame, len(rows), window_end >= end_ms, window_end)

    # ------------------------------------------------------------------------ snapshot

    async def fetch_snapshot(self, instruments: tuple[Instrument, ...]) -> Snapshot:
        """Instruments, all-symbol premiumIndex (funding, mark, index) and OI of ``instruments``.

        Binance has no all-symbol open-interest endpoint, so OI is read per instrument; its
        USD value is OI (base) x the snapshot's mark price.
        """
        listed, skipped = await self._instruments()
        to_id = dict(zip(listed["venue_symbol"], listed["instrument"], strict=True))
        intervals = dict(
            zip(listed["instrument"], listed["funding_interval_h"].fill_null(0.0), strict=True)
        )
        payload = await self._call("fapiPublicGetPremiumIndex", "fapi/v1/premiumIndex", {})
        funding, unmapped = bp.parse_premium_index(
            payload, lambda s: to_id.get(s) or bp.canonical_from_symbol(s), intervals
        )
        oi_frames = []
        for inst in instruments:
            _check(inst, None)
            raw = await self._call(
                "fapiPublicGetOpenInterest", "fapi/v1/openInterest",
                {"symbol": bp.venue_symbol(inst)},
            )  # fmt: skip
            oi_frames.append(bp.parse_open_interest(raw, str(inst)))
        oi = pl.concat(oi_frames) if oi_frames else pl.DataFrame()
        if oi.height:
            marks = funding.select("instrument", pl.col("mark_px"))
            oi = (
                oi.join(marks, on="instrument", how="left")
                .with_columns((pl.col("oi_base") * pl.col("mark_px")).alias("oi_usd"))
                .drop("mark_px")
            )
        frames = {"instruments": listed, "funding_snapshot": funding}
        if oi.height:
            frames["open_interest"] = oi
        return Snapshot(frames, tuple(sorted({*skipped, *unmapped})))


def _check(instrument: Instrument, stream: Stream | None) -> None:
    """Refuse instrument/stream pairs Binance USDⓈ-M does not serve (a usage error)."""
    if instrument.kind is InstrumentKind.SPOT:
        if stream is None or stream.family != "ohlcv" or stream.kind != "trade":
            what = stream.name if stream else "snapshots"
            raise UsageError(f"binance spot {instrument} has only ohlcv:trade:<tf>, not {what}")
    elif instrument.kind is not InstrumentKind.PERP or instrument.is_inverse:
        raise UsageError(f"binance USDⓈ-M collects linear perpetuals, not {instrument}")
    if stream is None:
        return
    if stream.family == "ohlcv" and stream.period not in CAPABILITIES.timeframes:
        raise UsageError(
            f"binance has no {stream.period} klines; use {', '.join(CAPABILITIES.timeframes)}"
        )
    if stream.family in ("oi", "long_short", "taker") and stream.period not in CAPABILITIES.periods:
        raise UsageError(
            f"binance {stream.family} history has no period {stream.period}; use "
            f"{', '.join(CAPABILITIES.periods)}"
        )
