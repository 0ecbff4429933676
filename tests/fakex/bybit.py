"""Bybit v5 (linear) on the fake exchange: the routes under ``/v5/market/`` and Bybit's IP limit.

Served from the same synthetic :class:`~tests.fakex.market.FakeMarket` as the Binance routes
(the symbols ``BTCUSDT``, ``ETHUSDT``, ``XYZUSDT``), in Bybit's formats and with Bybit's
pagination semantics (Bybit v5 docs, "Market"):

- every answer is the v5 envelope ``{retCode, retMsg, result, retExtInfo, time}``; a bad request
  is HTTP 200 with ``retCode`` 10001 (unknown symbol, a limit over the maximum, ``startTime``
  without ``endTime`` on funding history);
- history rows come **newest first**; ``startTime``/``endTime`` (``start``/``end`` for klines)
  are inclusive; a window holding more than ``limit`` rows yields its newest ``limit``; only an
  end bound (or none) yields the newest ``limit`` rows up to it;
- limits: funding history 200 (default 200), klines 1,000 (default 200), open interest 200
  (default 50), account ratio 500 (default 50), instruments 1,000 (default 500, cursor paged);
- the kline answers include the bar still open at the market's "now" (END), as Bybit does;
- funding times are exact (Bybit has no millisecond jitter); rows carry no interval; the
  instruments carry ``fundingInterval`` in minutes (XYZUSDT: 240, the others 480);
- ``/v5/market/risk-limit`` answers one symbol's tiers (or every symbol's without ``symbol``),
  ``RISK_PAGE`` rows a page with ``nextPageCursor`` (the fake pages small so the cursor is
  exercised; the tier table is :data:`RISK_TIERS` for every symbol);
- ``/v5/market/insurance`` answers the pools of :data:`INSURANCE_POOLS` (of ``coin`` when given:
  an unknown coin is an empty list), ``updateTime`` :data:`INSURANCE_UPDATE_MS`, no cursor.

Rate limit (``research/anchors.md`` D.2): 600 requests per rolling 5 s per IP over all of
``/v5/``; the request that overruns it gets HTTP 403 and the IP is banned for ``ban_s`` (10
minutes): every request during the ban gets 403 too. Bybit sends no ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

from tests.fakex.market import (
    BASE_PX,
    END_MS,
    HOUR_MS,
    INTERVAL_MS,
    LISTING_MS,
    FakeMarket,
    funding_times,
)

BAN_S = 600.0
LIMIT = 600
WINDOW_S = 5.0

_KLINES = {
    "/v5/market/kline": "trade",
    "/v5/market/mark-price-kline": "mark",
    "/v5/market/index-price-kline": "index",
    "/v5/market/premium-index-price-kline": "premium",
}
_INTERVALS = {
    "1": "1m", "5": "5m", "15": "15m", "30": "30m", "60": "1h", "120": "2h", "240": "4h",
    "360": "6h", "720": "12h", "D": "1d",
}  # fmt: skip
_PERIODS = {"5min": "5m", "15min": "15m", "30min": "30m", "1h": "1h", "4h": "4h", "1d": "1d"}
RISK_PAGE = 3
RISK_TIERS = (  # riskLimitValue, maintenanceMargin, initialMargin, maxLeverage, mmDeduction
    ("2000000", "0.005", "0.01", "100.00", ""),
    ("2600000", "0.0056", "0.02", "50.00", "1200"),
    ("3200000", "0.0062", "0.025", "40.00", "2760"),
    ("3800000", "0.0068", "0.03125", "32.00", "4680"),
)
"""Each mmDeduction = the previous one + the previous cap x the rise in rate (0.0006)."""
INSURANCE_UPDATE_MS = END_MS - 60_000
INSURANCE_POOLS = (  # coin, symbols (as Bybit lists them, unsorted), balance, value (USD)
    ("USDT", "ETHUSDT,BTCUSDT,XYZUSDT", "1250000.5", "1250100.25"),
    ("USDT", "ABCUSDT", "25614.92972633", "25616.97"),
    ("USDC", "BTCPERP", "80000", "79996"),
    ("BTC", "BTCUSD", "12.5", "500012.5"),
)
"""A shared USDT pool, an isolated USDT pool, a USDC pool and an inverse (coin) pool."""
_LIMITS = {  # path: (default, maximum)
    "/v5/market/funding/history": (200, 200),
    "/v5/market/open-interest": (50, 200),
    "/v5/market/account-ratio": (50, 500),
    "/v5/market/instruments-info": (500, 1000),
    **{p: (200, 1000) for p in _KLINES},
}


def envelope(result: Any, code: int = 0, msg: str = "OK") -> dict[str, Any]:
    """Bybit's v5 answer around ``result``."""
    return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": END_MS}


def params_error(msg: str) -> dict[str, Any]:
    """Bybit's answer to a bad request (HTTP 200, retCode 10001)."""
    return envelope({}, 10001, f"params error: {msg}")


def instrument_rows() -> list[dict[str, Any]]:
    """``/v5/market/instruments-info?category=linear`` rows."""
    return [
        {
            "symbol": sym,
            "contractType": "LinearPerpetual",
            "status": "Trading",
            "baseCoin": sym.removesuffix("USDT"),
            "quoteCoin": "USDT",
            "settleCoin": "USDT",
            "launchTime": str(LISTING_MS[sym]),
            "deliveryTime": "0",
            "priceScale": "2",
            "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
            "lotSizeFilter": {"maxOrderQty": "1190", "minOrderQty": "0.001", "qtyStep": "0.001"},
            "fundingInterval": 240 if sym == "XYZUSDT" else 480,
        }
        for sym in LISTING_MS
    ]


def _window(times: list[int], start: int | None, end: int | None, limit: int) -> list[int]:
    """Times in [start, end], the newest ``limit`` of them, newest first."""
    sel = [t for t in times if (start is None or t >= start) and (end is None or t <= end)]
    return sel[-limit:][::-1]


def answer(market: FakeMarket, path: str, q: dict[str, str]) -> tuple[int, Any]:
    """The status and body Bybit would send for ``path`` (under ``/v5/market/``)."""

    def num(key: str) -> int | None:
        return int(q[key]) if key in q else None

    if path in _LIMITS:
        default, most = _LIMITS[path]
        limit = num("limit") or default
        if limit > most:
            return 200, params_error(f"limit must be in [1, {most}]")
    else:
        limit = 0
    if "symbol" in q and q["symbol"] not in LISTING_MS:
        return 200, params_error("symbol invalid")
    if path == "/v5/market/instruments-info":
        rows = instrument_rows()
        at = int(q.get("cursor") or 0)
        page = rows[at : at + limit]
        cursor = str(at + limit) if at + limit < len(rows) else ""
        return 200, envelope({"category": "linear", "list": page, "nextPageCursor": cursor})
    if path == "/v5/market/tickers":
        return 200, envelope({"category": "linear", "list": tickers(market)})
    if path == "/v5/market/insurance":
        rows = [{"coin": c, "symbols": sy, "balance": b, "value": v}
                for c, sy, b, v in INSURANCE_POOLS if q.get("coin", c) == c]  # fmt: skip
        return 200, envelope({"updateTime": str(INSURANCE_UPDATE_MS), "list": rows})
    if path == "/v5/market/risk-limit":
        rows = [row for s in ([q["symbol"]] if "symbol" in q else LISTING_MS)
                for row in risk_limit_rows(s)]  # fmt: skip
        at = int(q.get("cursor") or 0)
        cursor = str(at + RISK_PAGE) if at + RISK_PAGE < len(rows) else ""
        page = rows[at : at + RISK_PAGE]
        return 200, envelope({"category": "linear", "list": page, "nextPageCursor": cursor})
    sym = q.get("symbol", "")
    if not sym:
        return 200, params_error("symbol is required")
    if path == "/v5/market/funding/history":
        if "startTime" in q and "endTime" not in q:
            return 200, params_error("endTime is required when startTime is passed")
        rates = {r["fundingTime"] - (i % 3): r["fundingRate"]
                 for i, r in enumerate(market.funding[sym])}  # fmt: skip
        times = _window(funding_times(sym), num("startTime"), num("endTime"), limit)
        rows = [
            {"symbol": sym, "fundingRate": rates[t], "fundingRateTimestamp": str(t)} for t in times
        ]
        return 200, envelope({"category": "linear", "list": rows})
    if path in _KLINES:
        tf = _INTERVALS.get(q.get("interval", ""))
        if tf is None:
            return 200, params_error("interval invalid")
        step = INTERVAL_MS[tf]
        first = LISTING_MS[sym]
        grid = list(range(first, END_MS + 1, step))  # includes the bar open at END
        kind = _KLINES[path]
        rows = []
        for t in _window(grid, num("start"), num("end"), limit):
            k = market.kline(sym, kind, step, t)
            rows.append([str(t), *k[1:5], *([k[5], k[7]] if kind == "trade" else [])])
        return 200, envelope({"symbol": sym, "category": "linear", "list": rows})
    if path in ("/v5/market/open-interest", "/v5/market/account-ratio"):
        key = "intervalTime" if path.endswith("open-interest") else "period"
        period = _PERIODS.get(q.get(key, ""))
        if period is None:
            return 200, params_error(f"{key} invalid")
        step = INTERVAL_MS[period]
        grid = list(range(LISTING_MS[sym], END_MS - step + 1, step))
        times = _window(grid, num("startTime"), num("endTime"), limit)
        if key == "intervalTime":
            rows = [{"openInterest": f"{oi_at(sym, t, step):.8f}", "timestamp": str(t)}
                    for t in times]  # fmt: skip
            return 200, envelope({"symbol": sym, "category": "linear", "list": rows,
                                  "nextPageCursor": ""})  # fmt: skip
        rows = []
        for t in times:
            buy = 0.45 + ((t // step) % 21) / 100
            rows.append({"symbol": sym, "buyRatio": f"{buy:.4f}", "sellRatio": f"{1 - buy:.4f}",
                         "timestamp": str(t)})  # fmt: skip
        return 200, envelope({"list": rows, "nextPageCursor": ""})
    return 404, {"retCode": 10404, "retMsg": f"fake exchange: no route {path}"}


def risk_limit_rows(symbol: str) -> list[dict[str, Any]]:
    """``/v5/market/risk-limit?category=linear&symbol=`` rows of ``symbol``, ordered by id."""
    return [
        {"id": i, "symbol": symbol, "riskLimitValue": cap, "maintenanceMargin": mm,
         "initialMargin": im, "isLowestRisk": int(i == 1), "maxLeverage": lev,
         "mmDeduction": ded}
        for i, (cap, mm, im, lev, ded) in enumerate(RISK_TIERS, 1)
    ]  # fmt: skip


def oi_at(symbol: str, t: int, step: int) -> float:
    """Open interest (base coin) of ``symbol`` at ``t``."""
    return 50_000 + ((t - LISTING_MS[symbol]) // step % 89) * 7.25


def tickers(market: FakeMarket) -> list[dict[str, Any]]:
    """``/v5/market/tickers?category=linear`` rows for every symbol, at END."""
    out = []
    for sym in LISTING_MS:
        px = BASE_PX[sym]
        oi = oi_at(sym, END_MS, HOUR_MS)
        step_h = 4 if sym == "XYZUSDT" else 8
        out.append(
            {
                "symbol": sym,
                "lastPrice": f"{px:.2f}",
                "indexPrice": f"{px * 1.0001:.4f}",
                "markPrice": f"{px:.2f}",
                "openInterest": f"{oi:.3f}",
                "openInterestValue": f"{oi * px:.2f}",
                "fundingRate": market.funding[sym][-1]["fundingRate"],
                "nextFundingTime": str(END_MS + step_h * HOUR_MS),
                "predictedDeliveryPrice": "",
                "deliveryTime": "0",
            }
        )
    return out


def tickers_rows_for_test() -> list[dict[str, Any]]:
    """The fake's ticker rows at END, for parser tests."""
    return tickers(FakeMarket())
