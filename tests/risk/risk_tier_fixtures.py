"""FIXTURES: hand-written tier tables in the venues' documented response shapes.

These are NOT venue data. The shapes follow the documented responses of Binance
``GET /fapi/v1/leverageBracket``, Bybit ``GET /v5/market/risk-limit`` and OKX
``GET /api/v5/public/position-tiers``; the numbers are made up for tests, with maintenance amounts
that follow the tier recursion ``cum_n = cum_{n-1} + floor_n * (MMR_n - MMR_{n-1})``. The small
``*_tiers`` helpers read them into :class:`perpscope.risk.Tier` (the venue modules own the real
parsing).
"""

from __future__ import annotations

from typing import Any

from perpscope.risk import Tier

# Binance USDⓈ-M, GET /fapi/v1/leverageBracket (USER_DATA), one symbol. FIXTURE VALUES.
BINANCE_LEVERAGE_BRACKET: list[dict[str, Any]] = [
    {
        "symbol": "BTCUSDT",
        "brackets": [
            {
                "bracket": 1,
                "initialLeverage": 125,
                "notionalCap": 50000,
                "notionalFloor": 0,
                "maintMarginRatio": 0.004,
                "cum": 0.0,
            },
            {
                "bracket": 2,
                "initialLeverage": 100,
                "notionalCap": 250000,
                "notionalFloor": 50000,
                "maintMarginRatio": 0.005,
                "cum": 50.0,
            },
            {
                "bracket": 3,
                "initialLeverage": 50,
                "notionalCap": 3000000,
                "notionalFloor": 250000,
                "maintMarginRatio": 0.01,
                "cum": 1300.0,
            },
            {
                "bracket": 4,
                "initialLeverage": 20,
                "notionalCap": 15000000,
                "notionalFloor": 3000000,
                "maintMarginRatio": 0.025,
                "cum": 46300.0,
            },
            {
                "bracket": 5,
                "initialLeverage": 10,
                "notionalCap": 30000000,
                "notionalFloor": 15000000,
                "maintMarginRatio": 0.05,
                "cum": 421300.0,
            },
        ],
    }
]

# Binance COIN-M, GET /dapi/v2/leverageBracket (USER_DATA), one symbol; bounds in coin (BTC).
# The field names are the documented ones, including the documented spelling "qtylFloor".
# FIXTURE VALUES; cum (in BTC) follows the recursion: 5 x 0.001 = 0.005, 0.005 + 10 x 0.005 = 0.055.
BINANCE_COINM_LEVERAGE_BRACKET: list[dict[str, Any]] = [
    {
        "symbol": "BTCUSD_PERP",
        "brackets": [
            {
                "bracket": 1,
                "initialLeverage": 125,
                "qtyCap": 5,
                "qtylFloor": 0,
                "maintMarginRatio": 0.004,
                "cum": 0.0,
            },
            {
                "bracket": 2,
                "initialLeverage": 100,
                "qtyCap": 10,
                "qtylFloor": 5,
                "maintMarginRatio": 0.005,
                "cum": 0.005,
            },
            {
                "bracket": 3,
                "initialLeverage": 50,
                "qtyCap": 20,
                "qtylFloor": 10,
                "maintMarginRatio": 0.01,
                "cum": 0.055,
            },
        ],
    }
]

# Bybit v5, GET /v5/market/risk-limit?category=linear&symbol=BTCUSDT. FIXTURE VALUES.
BYBIT_RISK_LIMIT: dict[str, Any] = {
    "retCode": 0,
    "retMsg": "OK",
    "result": {
        "category": "linear",
        "list": [
            {
                "id": 1,
                "symbol": "BTCUSDT",
                "riskLimitValue": "2000000",
                "maintenanceMargin": "0.005",
                "initialMargin": "0.01",
                "isLowestRisk": 1,
                "maxLeverage": "100.00",
                "mmDeduction": "",
            },
            {
                "id": 2,
                "symbol": "BTCUSDT",
                "riskLimitValue": "4000000",
                "maintenanceMargin": "0.01",
                "initialMargin": "0.02",
                "isLowestRisk": 0,
                "maxLeverage": "50.00",
                "mmDeduction": "10000",
            },
        ],
    },
    "retExtInfo": {},
    "time": 1672054488010,
}

# OKX v5, GET /api/v5/public/position-tiers?instType=SWAP&tdMode=isolated&instFamily=BTC-USDT.
# Sizes are in contracts; BTC-USDT-SWAP's contract value (ctVal) is 0.01 BTC. FIXTURE VALUES.
OKX_CT_VAL = 0.01
OKX_POSITION_TIERS: dict[str, Any] = {
    "code": "0",
    "msg": "",
    "data": [
        {
            "instFamily": "BTC-USDT",
            "instId": "",
            "tier": "1",
            "minSz": "0",
            "maxSz": "20000",
            "mmr": "0.004",
            "imr": "0.008",
            "maxLever": "125",
            "optMgnFactor": "0",
            "quoteMaxLoan": "",
            "baseMaxLoan": "",
            "uly": "BTC-USDT",
        },
        {
            "instFamily": "BTC-USDT",
            "instId": "",
            "tier": "2",
            "minSz": "20001",
            "maxSz": "40000",
            "mmr": "0.006",
            "imr": "0.01",
            "maxLever": "100",
            "optMgnFactor": "0",
            "quoteMaxLoan": "",
            "baseMaxLoan": "",
            "uly": "BTC-USDT",
        },
    ],
}


def binance_tiers() -> list[Tier]:
    """The Binance fixture as tiers (bounds: USDT notional)."""
    return [
        Tier(
            b["bracket"],
            float(b["notionalFloor"]),
            float(b["notionalCap"]),
            float(b["maintMarginRatio"]),
            float(b["cum"]),
            float(b["initialLeverage"]),
        )
        for b in BINANCE_LEVERAGE_BRACKET[0]["brackets"]
    ]


def binance_coinm_tiers() -> list[Tier]:
    """The Binance COIN-M fixture as tiers (bounds: coin notional, contracts x size / price)."""
    return [
        Tier(
            b["bracket"],
            float(b["qtylFloor"]),
            float(b["qtyCap"]),
            float(b["maintMarginRatio"]),
            float(b["cum"]),
            float(b["initialLeverage"]),
        )
        for b in BINANCE_COINM_LEVERAGE_BRACKET[0]["brackets"]
    ]


def bybit_tiers() -> list[Tier]:
    """The Bybit fixture as tiers (bounds: position value at entry; floor = previous cap)."""
    out: list[Tier] = []
    floor = 0.0
    for row in BYBIT_RISK_LIMIT["result"]["list"]:
        cap = float(row["riskLimitValue"])
        out.append(
            Tier(
                int(row["id"]),
                floor,
                cap,
                float(row["maintenanceMargin"]),
                float(row["mmDeduction"] or 0.0),
                float(row["maxLeverage"]),
            )
        )
        floor = cap
    return out


def okx_tiers() -> list[Tier]:
    """The OKX fixture as tiers (bounds: position size in BTC = contracts x ctVal, contiguous)."""
    out: list[Tier] = []
    floor = 0.0
    for row in OKX_POSITION_TIERS["data"]:
        cap = float(row["maxSz"]) * OKX_CT_VAL
        out.append(
            Tier(int(row["tier"]), floor, cap, float(row["mmr"]), 0.0, float(row["maxLever"]))
        )
        floor = cap
    return out


def mm_binance(notional: float) -> float:
    """Maintenance margin of a notional under the Binance fixture, found by a plain tier scan.

    Binance publishes its brackets as ``floor < Position <= cap`` (see test_tier_boundaries.py),
    so a notional equal to a cap belongs to the bracket that the cap closes.
    """
    for b in BINANCE_LEVERAGE_BRACKET[0]["brackets"]:
        if notional <= b["notionalCap"]:
            return notional * b["maintMarginRatio"] - b["cum"]
    last = BINANCE_LEVERAGE_BRACKET[0]["brackets"][-1]
    return notional * last["maintMarginRatio"] - last["cum"]


def bisect(f: Any, lo: float, hi: float) -> float:
    """Root of a monotonic ``f`` on [lo, hi] by bisection (an independent check of closed forms)."""
    flo = f(lo)
    for _ in range(200):
        mid = (lo + hi) / 2
        fm = f(mid)
        if (fm > 0) == (flo > 0):
            lo, flo = mid, fm
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, abs(hi)):
            break
    return (lo + hi) / 2
