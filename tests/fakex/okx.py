"""OKX v5 (perpetual swaps) on the fake exchange: the routes under ``/api/v5/`` and OKX's
per-endpoint rate limits.

Served from the same synthetic :class:`~tests.fakex.market.FakeMarket` as the Binance and Bybit
routes, as the swaps ``BTC-USDT-SWAP`` (0.01 BTC a contract), ``ETH-USDT-SWAP`` (0.1 ETH) and
``XYZ-USDT-SWAP`` (10 XYZ), in OKX's formats and with OKX's pagination semantics (OKX v5 docs):

- every answer is the envelope ``{code, msg, data}``; a bad request is ``code`` 51000
  ("Parameter ... error": a limit over 100, a bad bar or period), an unknown ``instId`` is
  ``code`` 51001 ("Instrument ID does not exist");
- history rows come **newest first**; ``after`` returns rows strictly older than it, ``before``
  rows strictly newer (candles, funding history); the trading statistics take ``begin`` and
  ``end``, both exclusive too; a window holding more than ``limit`` rows yields its newest
  ``limit`` (default and maximum 100);
- funding history reaches back 90 days before the market's "now" (END) and no further; the
  trading statistics the 30 days before END; candles from listing, including the bar still open
  at END (``confirm`` ``"0"``);
- funding rows carry no interval; ``public/funding-rate`` states the current one as
  ``nextFundingTime - fundingTime`` (XYZ: 4 h, the others 8 h).

Rate limits (per endpoint, per IP, as OKX counts them): requests per rolling 2 s, from
:data:`LIMITS`. The request that would overrun an endpoint's budget gets HTTP 429 with OKX's body
``{"code": "50011", "msg": "Rate limit reached. ..."}``, no ``Retry-After``, and is not counted;
OKX bans nobody, so the next request inside the budget is answered again.
"""

from __future__ import annotations

from typing import Any

from tests.fakex.bybit import oi_at
from tests.fakex.market import (
    BASE_PX,
    DAY_MS,
    END_MS,
    HOUR_MS,
    INTERVAL_MS,
    LISTING_MS,
    STATS_START_MS,
    FakeMarket,
    funding_times,
)

WINDOW_S = 2.0
FUNDING_DEPTH_MS = 90 * DAY_MS
CT_VAL = {"BTC": 0.01, "ETH": 0.1, "XYZ": 10.0}
LIMITS: dict[str, int] = {
    "/api/v5/public/instruments": 20,
    "/api/v5/public/funding-rate": 10,
    "/api/v5/public/funding-rate-history": 10,
    "/api/v5/public/open-interest": 20,
    "/api/v5/public/mark-price": 10,
    "/api/v5/public/position-tiers": 10,
    "/api/v5/market/history-candles": 20,
    "/api/v5/market/history-mark-price-candles": 10,
    "/api/v5/market/history-index-candles": 10,
    "/api/v5/rubik/stat/contracts/open-interest-history": 10,
    "/api/v5/rubik/stat/contracts/long-short-account-ratio-contract": 5,
    "/api/v5/rubik/stat/contracts/long-short-account-ratio-contract-top-trader": 5,
    "/api/v5/rubik/stat/contracts/long-short-position-ratio-contract-top-trader": 5,
    "/api/v5/rubik/stat/taker-volume-contract": 5,
}
"""Requests per 2 s per endpoint (unlisted paths: 20)."""
RATE_LIMITED = {
    "code": "50011",
    "msg": "Rate limit reached. Please refer to API documentation and throttle requests "
    "accordingly.",
    "data": [],
}

_CANDLES = {
    "/api/v5/market/history-candles": "trade",
    "/api/v5/market/history-mark-price-candles": "mark",
    "/api/v5/market/history-index-candles": "index",
}
_BARS = {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1H": "1h", "2H": "2h", "4H": "4h",
         "6Hutc": "6h", "12Hutc": "12h", "1Dutc": "1d"}  # fmt: skip
_PERIODS = {"5m": "5m", "1H": "1h"}
_RATIOS = {
    "/api/v5/rubik/stat/contracts/long-short-account-ratio-contract": 0,
    "/api/v5/rubik/stat/contracts/long-short-account-ratio-contract-top-trader": 3,
    "/api/v5/rubik/stat/contracts/long-short-position-ratio-contract-top-trader": 7,
}


def inst_id(sym: str) -> str:
    """``BTCUSDT`` -> ``BTC-USDT-SWAP``."""
    return f"{sym.removesuffix('USDT')}-USDT-SWAP"


_BY_ID = {inst_id(s): s for s in LISTING_MS}
_BY_FAMILY = {f"{s.removesuffix('USDT')}-USDT": s for s in LISTING_MS}


def ct_val(sym: str) -> float:
    """Coins per contract of the fake's swap for ``sym``."""
    return CT_VAL[sym.removesuffix("USDT")]


def ok(data: list[Any]) -> dict[str, Any]:
    """OKX's answer around ``data``."""
    return {"code": "0", "msg": "", "data": data}


def error(code: str, msg: str) -> dict[str, Any]:
    """OKX's answer to a bad request (HTTP 200, a non-zero ``code``)."""
    return {"code": code, "msg": msg, "data": []}


def instrument_rows() -> list[dict[str, Any]]:
    """``/api/v5/public/instruments?instType=SWAP`` rows."""
    return [
        {
            "instType": "SWAP",
            "instId": inst_id(sym),
            "uly": f"{sym.removesuffix('USDT')}-USDT",
            "instFamily": f"{sym.removesuffix('USDT')}-USDT",
            "baseCcy": "",
            "quoteCcy": "",
            "settleCcy": "USDT",
            "ctVal": f"{ct_val(sym):g}",
            "ctMult": "1",
            "ctValCcy": sym.removesuffix("USDT"),
            "ctType": "linear",
            "listTime": str(LISTING_MS[sym]),
            "expTime": "",
            "lever": "100",
            "tickSz": "0.1",
            "lotSz": "0.01",
            "minSz": "0.01",
            "state": "live",
            "alias": "",
            "ruleType": "normal",
        }
        for sym in LISTING_MS
    ]


def funding_rate_row(market: FakeMarket, sym: str) -> dict[str, Any]:
    """``/api/v5/public/funding-rate`` row of ``sym`` at END."""
    step = (4 if sym == "XYZUSDT" else 8) * HOUR_MS
    return {
        "instType": "SWAP",
        "instId": inst_id(sym),
        "fundingRate": market.funding[sym][-1]["fundingRate"],
        "nextFundingRate": "",
        "fundingTime": str(END_MS + step),
        "nextFundingTime": str(END_MS + 2 * step),
        "minFundingRate": "-0.0075",
        "maxFundingRate": "0.0075",
        "method": "current_period",
        "formulaType": "withRate",
        "settState": "settled",
        "ts": str(END_MS),
    }


def _newest(times: list[int], lo: int | None, hi: int | None, limit: int) -> list[int]:
    """Times strictly between ``lo`` and ``hi``, the newest ``limit`` of them, newest first."""
    sel = [t for t in times if (lo is None or t > lo) and (hi is None or t < hi)]
    return sel[-limit:][::-1]


def answer(market: FakeMarket, path: str, q: dict[str, str]) -> tuple[int, Any]:
    """The status and body OKX would send for ``path`` (under ``/api/v5/``)."""

    def num(key: str) -> int | None:
        return int(q[key]) if q.get(key, "").lstrip("-").isdigit() else None

    limit = num("limit") or 100
    if limit > 100:
        return 200, error("51000", "Parameter limit error")
    if path == "/api/v5/public/instruments":
        if q.get("instType") != "SWAP":
            return 200, ok([])
        return 200, ok(instrument_rows())
    if path == "/api/v5/public/funding-rate":
        target = q.get("instId", "")
        if target == "ANY":
            return 200, ok([funding_rate_row(market, s) for s in LISTING_MS])
        if target not in _BY_ID:
            return 200, error("51001", "Instrument ID does not exist")
        return 200, ok([funding_rate_row(market, _BY_ID[target])])
    if path == "/api/v5/public/open-interest":
        rows = []
        for sym in LISTING_MS:
            coins = oi_at(sym, END_MS, HOUR_MS)
            rows.append({"instType": "SWAP", "instId": inst_id(sym),
                         "oi": f"{coins / ct_val(sym):.4f}", "oiCcy": f"{coins:.4f}",
                         "oiUsd": f"{coins * BASE_PX[sym]:.2f}", "ts": str(END_MS)})  # fmt: skip
        return 200, ok(rows)
    if path == "/api/v5/public/mark-price":
        return 200, ok([{"instType": "SWAP", "instId": inst_id(s), "markPx": f"{BASE_PX[s]:.1f}",
                         "ts": str(END_MS)} for s in LISTING_MS])  # fmt: skip
    if path == "/api/v5/public/position-tiers":
        fam = q.get("instFamily", "")
        if fam not in _BY_FAMILY:
            return 200, error("51000", "Parameter instFamily error")
        return 200, ok(position_tiers(fam))
    if path in _CANDLES:
        kind = _CANDLES[path]
        sym = (_BY_FAMILY if kind == "index" else _BY_ID).get(q.get("instId", ""))
        if sym is None:
            return 200, error("51001", "Instrument ID does not exist")
        tf = _BARS.get(q.get("bar", "1m"))
        if tf is None:
            return 200, error("51000", "Parameter bar error")
        step = INTERVAL_MS[tf]
        grid = list(range(LISTING_MS[sym], END_MS + 1, step))  # includes the bar open at END
        rows = []
        for t in _newest(grid, num("before"), num("after"), limit):
            k = market.kline(sym, kind, step, t)
            confirm = "0" if t + step > END_MS else "1"
            if kind == "trade":
                base = float(k[5])
                rows.append([str(t), *k[1:5], f"{base / ct_val(sym):g}", k[5], k[7], confirm])
            else:
                rows.append([str(t), *k[1:5], confirm])
        return 200, ok(rows)
    sym = _BY_ID.get(q.get("instId", ""))
    if path == "/api/v5/public/funding-rate-history":
        if sym is None:
            return 200, error("51001", "Instrument ID does not exist")
        rates = {r["fundingTime"] - (i % 3): r["fundingRate"]
                 for i, r in enumerate(market.funding[sym])}  # fmt: skip
        kept = [t for t in funding_times(sym) if t >= END_MS - FUNDING_DEPTH_MS]
        return 200, ok([
            {"instType": "SWAP", "instId": inst_id(sym), "formulaType": "withRate",
             "fundingRate": rates[t], "realizedRate": rates[t], "fundingTime": str(t),
             "method": "current_period"}
            for t in _newest(kept, num("before"), num("after"), limit)
        ])  # fmt: skip
    if path.startswith("/api/v5/rubik/"):
        if sym is None:
            return 200, error("51001", "Instrument ID does not exist")
        period = _PERIODS.get(q.get("period", "5m"))
        if period is None:
            return 200, error("51000", "Parameter period error")
        step = INTERVAL_MS[period]
        grid = list(range(STATS_START_MS, END_MS - step + 1, step))
        times = _newest(grid, num("begin"), num("end"), limit)
        return 200, ok([stats_row(sym, path, t, step, q.get("unit", "1")) for t in times])
    return 404, error("404", f"fake exchange: no route {path}")


def stats_row(sym: str, path: str, t: int, step: int, unit: str) -> list[str]:
    """One row of a trading-statistics endpoint."""
    k = (t - STATS_START_MS) // step
    if path.endswith("open-interest-history"):
        coins = oi_at(sym, t, step)
        return [str(t), f"{coins / ct_val(sym):.4f}", f"{coins:.4f}", f"{coins * BASE_PX[sym]:.2f}"]
    if path in _RATIOS:
        long_frac = 0.45 + ((k + _RATIOS[path]) % 21) / 100
        return [str(t), f"{long_frac / (1 - long_frac):.10f}"]
    buy, sell = 400 + k % 31, 380 + k % 29  # coins (unit=0)
    scale = 1.0 if unit == "0" else 1 / ct_val(sym)
    return [str(t), f"{sell * scale:g}", f"{buy * scale:g}"]


def position_tiers(family: str) -> list[dict[str, str]]:
    """``/api/v5/public/position-tiers?instType=SWAP&instFamily=`` rows: bounds in contracts."""
    tiers = [("0", "20000", "0.004", "100"), ("20000", "50000", "0.005", "75"),
             ("50000", "100000", "0.01", "50")]  # fmt: skip
    return [
        {"instFamily": family, "uly": family, "instId": "", "tier": str(i + 1), "minSz": lo,
         "maxSz": hi, "mmr": mmr, "imr": f"{1 / float(lev):g}", "maxLever": lev,
         "optMgnFactor": "0", "quoteMaxLoan": "", "baseMaxLoan": ""}
        for i, (lo, hi, mmr, lev) in enumerate(tiers)
    ]  # fmt: skip
