"""OKX v5 perpetual swaps (USDT-margined, and inverse USD ones) through ccxt's async client.

ccxt owns HTTP and error mapping; this module owns which raw endpoints to call (ccxt's implicit
API methods such as ``publicGetPublicFundingRateHistory``), their pagination, and hands the
payloads to :mod:`perpscope.venues.okx_parse`. Limits and depths follow OKX's v5 docs and
ccxt's cost table (``research/anchors.md`` D.3):

- **Rate limits are per endpoint** (per IP), counted in requests per 2 seconds: instruments and
  current open interest 20, funding-rate history, current funding, mark price, position tiers
  and OI history 10, the candle histories 10-20, the long/short ratios and taker volume 5. An
  overrun is answered with HTTP 429 and code ``50011`` ("Rate limit reached"), no
  ``Retry-After`` and no ban: only that endpoint's pool pauses.
- **Depth:** funding-rate history reaches back about three months (90 days) and no further;
  candles (trade, mark, index) since listing; the trading statistics (OI history, long/short
  ratios, taker volume) are taken as 30 days [unverified: OKX does not state it].
- **Pages:** 100 rows everywhere.

Pagination: OKX answers newest first. The market and public histories take ``after`` (rows
strictly older than it) and ``before`` (rows strictly newer); the trading statistics take
``begin`` and ``end``, also both exclusive. Asked for a window holding more than ``limit`` rows,
OKX returns the newest ``limit``. So this module asks for windows that hold at most one page
(``limit`` periods, or ``limit - 1`` funding intervals of the symbol), and should a funding window
still come back full (the interval shortened), it pages backwards with ``after`` inside the call.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, ClassVar, Final

import polars as pl

from perpscope.domain.symbols import Instrument, InstrumentKind
from perpscope.errors import DataContractError, UsageError
from perpscope.venues import okx_parse as op
from perpscope.venues.base import (
    Capabilities,
    CcxtVenue,
    HistoryPage,
    RatePool,
    Snapshot,
    Stream,
    history_page,
    now_ms,
    period_ms,
)

__all__ = ["CAPABILITIES", "OkxVenue"]

HOUR_MS: Final = 3_600_000
PAGE: Final = 100

CAPABILITIES: Final = Capabilities(
    venue="okx",
    page_size={"funding": PAGE, "ohlcv": PAGE, "oi": PAGE, "long_short": PAGE, "taker": PAGE},
    history_days={"funding": 90, "ohlcv": None, "oi": 30, "long_short": 30, "taker": 30},
    periods=tuple(op.PERIODS),
    timeframes=tuple(op.TIMEFRAMES),
    funding_interval_source=(
        "public/funding-rate nextFundingTime - fundingTime (current); history: the gap "
        "between settlements"
    ),
    default_funding_interval_h=8.0,
    oi_unit="contracts",
    liquidation_side="no liquidation history collected (public/liquidation-orders: recent only)",
    pools=(
        RatePool("funding", 10, 2.0, "public/funding-rate-history: 10 requests / 2 s per IP"),
        RatePool(
            "candles",
            10,
            2.0,
            "history-candles 20 / 2 s, history-mark-price-candles and history-index-candles "
            "10 / 2 s per IP: paced at 10",
        ),
        RatePool("oi", 10, 2.0, "rubik/stat/contracts/open-interest-history: 10 / 2 s per IP"),
        RatePool(
            "rubik",
            5,
            2.0,
            "rubik long/short ratios and taker-volume-contract: 5 / 2 s per IP each; "
            "paced together",
        ),
        RatePool(
            "snapshot",
            10,
            2.0,
            "one request each to instruments (20 / 2 s), funding-rate, mark-price (10 / 2 s) "
            "and open-interest (20 / 2 s)",
        ),
        RatePool("tiers", 10, 2.0, "public/position-tiers: 10 / 2 s per IP"),
    ),  # fmt: skip
    stream_pools={
        "funding": "funding",
        "ohlcv": "candles",
        "oi": "oi",
        "long_short": "rubik",
        "taker": "rubik",
        "snapshot": "snapshot",
        "instruments": "snapshot",
        "tiers": "tiers",
    },  # fmt: skip
    ban_pauses_venue=False,
    ban_status=418,  # OKX does not ban an IP for an overrun; it answers 429 / 50011
    families=("funding", "ohlcv", "oi", "long_short", "taker"),
)

_CANDLES: Final = {
    "trade": "publicGetMarketHistoryCandles",
    "mark": "publicGetMarketHistoryMarkPriceCandles",
    "index": "publicGetMarketHistoryIndexCandles",
}
_RATIOS: Final = {
    "global_account": "publicGetRubikStatContractsLongShortAccountRatioContract",
    "top_account": "publicGetRubikStatContractsLongShortAccountRatioContractTopTrader",
    "top_position": "publicGetRubikStatContractsLongShortPositionRatioContractTopTrader",
}


class OkxVenue(CcxtVenue):
    """OKX v5 perpetual swaps through ccxt. Constructing it opens no connection.

    Args:
        api_url: replace every OKX host by this base URL (a mirror, or the tests' fake).
        timeout_ms: per-request timeout.
        rate_limit_ms: ccxt's spacing of cost-1 requests (OKX default 110 ms).
    """

    venue_id: ClassVar[str] = "okx"
    caps: ClassVar[Capabilities] = CAPABILITIES
    market_types: ClassVar[tuple[str, ...] | None] = ("swap",)

    def _setup(self) -> None:
        self._listed: pl.DataFrame | None = None
        self._launch_ms: dict[str, int] = {}
        self._intervals: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def _data(self, method: str, path: str, params: dict[str, Any]) -> list[Any]:
        return op.data_list(await self._call(method, path, params), path)

    # ------------------------------------------------------------------------ instruments

    async def fetch_instruments(self) -> pl.DataFrame:
        """Swaps with status, tick/lot sizes and contract size (funding interval: null; the
        snapshot fills it from the funding answer)."""
        frame, _ = await self._instruments()
        return frame

    async def _instruments(self) -> tuple[pl.DataFrame, tuple[str, ...]]:
        path = "api/v5/public/instruments"
        rows = await self._data("publicGetPublicInstruments", path, {"instType": "SWAP"})
        self._launch_ms = {
            str(r["instId"]): int(str(r["listTime"]))
            for r in rows
            if isinstance(r, dict) and str(r.get("listTime", "")).isdigit()
        }
        frame, skipped = op.parse_instruments(rows, now_ms())
        self._listed = frame
        return frame, skipped

    async def _ensure_listed(self) -> pl.DataFrame:
        async with self._lock:  # concurrent streams read the list once
            if self._listed is None:
                await self._instruments()
        assert self._listed is not None
        return self._listed

    async def _interval_h(self, symbol: str) -> float:
        """The symbol's current funding interval (one ``public/funding-rate`` read, cached)."""
        if symbol not in self._intervals:
            path = "api/v5/public/funding-rate"
            rows = await self._data("publicGetPublicFundingRate", path, {"instId": symbol})
            frame, _ = op.parse_funding_rates(rows, lambda s: s, {}, now_ms())
            got = frame["interval_h"].drop_nulls()
            self._intervals[symbol] = (
                float(got[0]) if got.len() else CAPABILITIES.default_funding_interval_h
            )
        return self._intervals[symbol]

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
        symbol = op.inst_id(instrument)
        inst = str(instrument)
        await self._ensure_listed()
        launch = self._launch_ms.get(symbol, 0)
        if start_ms < launch < end_ms:  # nothing before listing: skip the empty windows
            start_ms = launch - launch % HOUR_MS
        if stream.family == "funding":
            prev_ms = int(prev_ts.timestamp() * 1000) if prev_ts is not None else None
            return await self._funding_page(symbol, inst, start_ms, end_ms, prev_ms)
        assert stream.period is not None
        step = period_ms(stream.period)
        window_end = min(end_ms, start_ms + PAGE * step)
        if stream.family == "ohlcv":
            assert stream.kind is not None
            path = op.CANDLE_ENDPOINTS[stream.kind]
            target = instrument.underlying if stream.kind == "index" else symbol
            params = {"instId": target, "bar": op.TIMEFRAMES[stream.period],
                      "before": start_ms - 1, "after": window_end, "limit": PAGE}  # fmt: skip
            rows = await self._data(_CANDLES[stream.kind], path, params)
            frame = op.parse_candles(rows, inst, stream.kind, step, stream.period, now_ms())
        else:
            params = {"instId": symbol, "period": op.PERIODS[stream.period],
                      "begin": start_ms - 1, "end": window_end, "limit": PAGE}  # fmt: skip
            if stream.family == "oi":
                path = "api/v5/rubik/stat/contracts/open-interest-history"
                method = "publicGetRubikStatContractsOpenInterestHistory"
                rows = await self._data(method, path, params)
                frame = op.parse_oi_history(rows, inst, f"hist_{stream.period}")
            elif stream.family == "long_short":
                assert stream.kind is not None
                path = op.RATIO_ENDPOINTS[stream.kind]
                rows = await self._data(_RATIOS[stream.kind], path, params)
                frame = op.parse_long_short(rows, inst, stream.kind, stream.period)
            else:
                path = "api/v5/rubik/stat/taker-volume-contract"
                params["unit"] = "0"  # coin
                rows = await self._data("publicGetRubikStatTakerVolumeContract", path, params)
                frame = op.parse_taker_volume(rows, inst, stream.period)
        if len(rows) > PAGE:
            raise DataContractError(f"okx {path}: {len(rows)} rows for a limit of {PAGE}")
        return history_page(_within(frame, start_ms, window_end), len(rows), window_end >= end_ms,
                     window_end)  # fmt: skip

    async def _funding_page(
        self, symbol: str, inst: str, start_ms: int, end_ms: int, prev_ms: int | None
    ) -> HistoryPage:
        path = "api/v5/public/funding-rate-history"
        interval_h = await self._interval_h(symbol)
        # PAGE - 1 intervals: a regular window never comes back full, so a full page means the
        # interval shortened inside it
        window_end = min(end_ms, start_ms + int((PAGE - 1) * interval_h * HOUR_MS))
        after = window_end
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        while True:
            params = {"instId": symbol, "before": start_ms - 1, "after": after, "limit": PAGE}
            got = await self._data("publicGetPublicFundingRateHistory", path, params)
            for r in got:
                key = str(r.get("fundingTime")) if isinstance(r, dict) else ""
                if key not in seen:
                    seen.add(key)
                    rows.append(r)
            if len(got) < PAGE:
                break
            full = op.parse_funding_history(got, inst, interval_h)  # a bad row raises here
            oldest = int(full["ts"].dt.epoch("ms").min())  # type: ignore[arg-type]
            if oldest <= start_ms or oldest >= after:
                break
            after = oldest  # the window held more than a page: page backwards
        frame = op.parse_funding_history(rows, inst, interval_h, prev_ms)
        return history_page(_within(frame, start_ms, window_end), len(rows), window_end >= end_ms,
                     window_end)  # fmt: skip

    # ------------------------------------------------------------------------ snapshot

    async def fetch_snapshot(self, instruments: tuple[Instrument, ...]) -> Snapshot:
        """Instruments, and funding, mark price and OI of every swap in four requests
        (``instruments`` needs no per-symbol call on OKX)."""
        for inst in instruments:
            _check(inst, None)
        listed, skipped = await self._instruments()
        to_id = dict(zip(listed["venue_symbol"], listed["instrument"], strict=True))
        read_ms = now_ms()
        marks_raw = await self._data(
            "publicGetPublicMarkPrice", "api/v5/public/mark-price", {"instType": "SWAP"}
        )
        marks = {to_id[k]: v for k, v in op.parse_mark_prices(marks_raw).items() if k in to_id}
        rates = await self._data(
            "publicGetPublicFundingRate", "api/v5/public/funding-rate", {"instId": "ANY"}
        )
        funding, unmapped = op.parse_funding_rates(rates, to_id.get, marks, read_ms)
        oi_rows = await self._data(
            "publicGetPublicOpenInterest", "api/v5/public/open-interest", {"instType": "SWAP"}
        )
        oi = op.parse_oi_snapshot(oi_rows, to_id.get, read_ms)
        intervals = funding.select("instrument", pl.col("interval_h").alias("iv"))
        listed = (
            listed.join(intervals, on="instrument", how="left")
            .with_columns(pl.coalesce("iv", "funding_interval_h").alias("funding_interval_h"))
            .drop("iv")
        )
        perps = listed.filter(pl.col("kind") == InstrumentKind.PERP.value)["instrument"]
        funding = funding.filter(pl.col("instrument").is_in(perps.implode()))
        frames = {"instruments": listed, "funding_snapshot": funding}
        if oi.height:
            frames["open_interest"] = oi
        return Snapshot(frames, tuple(sorted({*skipped, *unmapped})))

    # ------------------------------------------------------------------------ tiers

    async def fetch_tiers(self, instrument: Instrument) -> pl.DataFrame:
        """Public position tiers (cross margin) of a swap, as ``leverage_tiers`` rows with
        their bounds in coin (linear) or USD (inverse): see :func:`okx_parse.parse_position_tiers`.
        """
        _check(instrument, None)
        listed = await self._ensure_listed()
        row = listed.filter(pl.col("instrument") == str(instrument))
        if not row.height:
            raise UsageError(f"okx lists no swap {instrument}")
        size = row["contract_size"][0]
        path = "api/v5/public/position-tiers"
        params = {"instType": "SWAP", "tdMode": "cross", "instFamily": instrument.underlying}
        rows = await self._data("publicGetPublicPositionTiers", path, params)
        return op.parse_position_tiers(
            rows, str(instrument), now_ms(), float(size), instrument.is_inverse
        )


def _check(instrument: Instrument, stream: Stream | None) -> None:
    """Refuse instrument/stream pairs this module does not serve (a usage error)."""
    if instrument.kind is not InstrumentKind.PERP:
        raise UsageError(f"okx collects perpetual swaps, not {instrument}")
    if stream is None:
        return
    if stream.family == "ohlcv" and stream.kind == "premium":
        raise UsageError("okx publishes no premium-index candles; kinds: trade, mark, index")
    if stream.family == "ohlcv" and stream.period not in CAPABILITIES.timeframes:
        raise UsageError(
            f"okx has no {stream.period} candles; use {', '.join(CAPABILITIES.timeframes)}"
        )
    if stream.family in ("oi", "long_short", "taker") and stream.period not in CAPABILITIES.periods:
        raise UsageError(
            f"okx {stream.family} history has no period {stream.period}; use "
            f"{', '.join(CAPABILITIES.periods)}"
        )


def _within(frame: pl.DataFrame, start_ms: int, end_ms: int) -> pl.DataFrame:
    utc = pl.Datetime("ms", "UTC")
    return frame.filter(
        (pl.col("ts") >= pl.lit(start_ms).cast(utc)) & (pl.col("ts") < pl.lit(end_ms).cast(utc))
    )
