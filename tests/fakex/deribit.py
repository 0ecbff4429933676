"""Deribit (API v2, JSON-RPC over HTTP GET) on the fake exchange: the routes under
``/api/v2/public/`` and Deribit's credit-based rate limit. SYNTHETIC data, not market data.

Instruments (all inverse, settled in the coin): ``BTC-PERPETUAL`` (10 USD a contract, listed
2025-10-01) and ``ETH-PERPETUAL`` (1 USD, listed 2025-11-01); dated futures ``BTC-27MAR26`` and
``ETH-27MAR26``; options of each coin on 9JAN26 and 27MAR26 at three strikes, calls and puts.
Values are simple functions of an index so tests recompute them independently.

Formats and semantics, as Deribit documents them (and ccxt reads them):

- every answer is ``{jsonrpc: "2.0", result, usIn, usOut, usDiff, testnet}``; a bad request is
  HTTP 400 with ``error: {code: -32602, message: "Invalid params", data: {reason, param}}``;
- ``get_funding_rate_history``: hourly rows in ``(start_timestamp, end_timestamp]`` (the start
  bound exclusive, as ccxt's ``start - 1`` implies), at most 744 a request (the oldest 744 of a
  longer window); ``interest_8h`` is the sum of the trailing eight ``interest_1h``;
- ``get_last_trades_by_currency_and_time``: trades in ``[start, end]``, ``count`` default 10, at
  most 1,000; ``sorting=asc`` gives the oldest ``count``, otherwise the newest; ``has_more``
  when the window held more. Every fourth trade shares its predecessor's millisecond; every
  seventh is a block trade (``block_trade_id``), every eleventh a liquidation (``liquidation``
  cycling T, M, MT);
- ``get_tradingview_chart_data``: trade bars of the perpetuals from listing, in
  ``[start, end]`` on the resolution's grid (the bar open at END included, as Deribit includes
  the bar in progress), at most 5,000 (the oldest of a longer window); ``no_data`` when none;
- ``get_volatility_index_data``: candles in ``[start, end]`` on the resolution's grid, the
  newest 1,000 of the window in ascending order, ``continuation`` = the page's oldest time when
  older candles remain (the next request's ``end_timestamp``), else null.

Rate limit (Deribit "Rate Limits"): every request costs 500 credits from a pool of 50,000 that
refills continuously at 10,000 a second; a request that finds fewer than 500 credits is refused
with HTTP 429 and JSON-RPC error ``10028 too_many_requests`` (no ``Retry-After``) and costs
nothing. :meth:`Credits.shrink` makes a small pool for tests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from tests.fakex.market import END_MS, HOUR_MS

PREFIX = "/api/v2/public/"
COST = 500.0
CAPACITY = 50_000.0
REFILL_PER_S = 10_000.0

PERP_LISTING_MS = {
    "BTC-PERPETUAL": 1_759_276_800_000,  # 2025-10-01
    "ETH-PERPETUAL": 1_761_955_200_000,  # 2025-11-01
}
CONTRACT_USD = {"BTC": 10.0, "ETH": 1.0}
INDEX_PX = {"BTC": 40_000.0, "ETH": 2_000.0}
OI_USD = {"BTC-PERPETUAL": 500_000_000.0, "ETH-PERPETUAL": 100_000_000.0,
          "BTC-27MAR26": 80_000_000.0, "ETH-27MAR26": 20_000_000.0}  # fmt: skip
EXPIRIES = {"9JAN26": 1_767_945_600_000, "27MAR26": 1_774_598_400_000}  # 08:00 UTC
STRIKES = {"BTC": (35_000, 40_000, 45_000), "ETH": (1_800, 2_000, 2_200)}
FUTURES_LISTING_MS = 1_764_547_200_000  # 2025-12-01
TRADES_START_MS = END_MS - 7 * 24 * HOUR_MS
TRADE_STEP_MS = 300_000
DVOL_START_MS = 1_759_276_800_000  # 2025-10-01
RESOLUTION_MS = {"60": 60_000, "3600": HOUR_MS, "43200": 12 * HOUR_MS, "1D": 24 * HOUR_MS}


@dataclass
class Credits:
    """Deribit's credit pool: ``capacity`` credits, refilled at ``refill_per_s``."""

    capacity: float = CAPACITY
    refill_per_s: float = REFILL_PER_S
    cost: float = COST
    tokens: float = CAPACITY
    last: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def shrink(self, capacity: float, refill_per_s: float) -> None:
        """A smaller pool (full now), so that an overrun takes a handful of requests."""
        with self.lock:
            self.capacity, self.refill_per_s, self.tokens, self.last = (
                capacity, refill_per_s, capacity, None,
            )  # fmt: skip

    def take(self, now: float) -> bool:
        """Charge one request at ``now``; ``False`` when the pool cannot pay for it."""
        with self.lock:
            if self.last is not None:
                self.tokens = min(
                    self.capacity, self.tokens + (now - self.last) * self.refill_per_s
                )
            self.last = now
            if self.tokens < self.cost:
                return False
            self.tokens -= self.cost
            return True


def envelope(result: Any) -> dict[str, Any]:
    """Deribit's JSON-RPC answer around ``result``."""
    return {"jsonrpc": "2.0", "result": result, "usIn": END_MS * 1000, "usOut": END_MS * 1000 + 57,
            "usDiff": 57, "testnet": False}  # fmt: skip


def error(code: int, message: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Deribit's JSON-RPC error answer."""
    err: dict[str, Any] = {"message": message, "code": code}
    if data:
        err["data"] = data
    return {"jsonrpc": "2.0", "error": err, "usIn": END_MS * 1000, "usOut": END_MS * 1000 + 9,
            "usDiff": 9, "testnet": False}  # fmt: skip


def too_many_requests() -> dict[str, Any]:
    """The answer to a request that finds the credit pool empty (sent with HTTP 429)."""
    return error(10028, "too_many_requests")


def invalid(param: str, reason: str) -> tuple[int, dict[str, Any]]:
    """HTTP 400, ``-32602 Invalid params``."""
    return 400, error(-32602, "Invalid params", {"reason": reason, "param": param})


# ------------------------------------------------------------------------------ the market


def interest_1h(k: int) -> float:
    """Funding of hour ``k`` after listing: around 0.00125% an hour (0.01% per 8 h)."""
    return 0.0000125 + 0.00000625 * (((k * 7) % 11) - 5) / 5


def funding_times(name: str) -> list[int]:
    """Hourly row times of a perpetual: from an hour after listing up to END (exclusive)."""
    return list(range(PERP_LISTING_MS[name] + HOUR_MS, END_MS, HOUR_MS))


def funding_row(name: str, t: int) -> dict[str, Any]:
    k = (t - PERP_LISTING_MS[name]) // HOUR_MS
    px = INDEX_PX[name.split("-")[0]]
    return {
        "timestamp": t,
        "index_price": round(px * (1 + (k % 50) / 1000), 2),
        "prev_index_price": round(px * (1 + ((k - 1) % 50) / 1000), 2),
        "interest_1h": interest_1h(k),
        "interest_8h": sum(interest_1h(j) for j in range(max(1, k - 7), k + 1)),
    }


def option_names(currency: str) -> list[str]:
    return [f"{currency}-{e}-{s}-{r}" for e in EXPIRIES for s in STRIKES[currency] for r in "CP"]


def instruments(currency: str, kind: str) -> list[dict[str, Any]]:
    """``get_instruments`` rows of one currency and kind."""
    common = {"base_currency": currency, "counter_currency": "USD", "settlement_currency": currency,
              "is_active": True, "taker_commission": 0.0005, "maker_commission": 0.0,
              "block_trade_commission": 0.0003}  # fmt: skip
    if kind == "future":
        perp = f"{currency}-PERPETUAL"
        rows = [
            {**common, "instrument_name": perp, "kind": "future", "settlement_period": "perpetual",
             "quote_currency": "USD", "instrument_type": "reversed", "future_type": "reversed",
             "contract_size": CONTRACT_USD[currency], "min_trade_amount": CONTRACT_USD[currency],
             "tick_size": 0.5 if currency == "BTC" else 0.05, "max_leverage": 50,
             "expiration_timestamp": 32_503_708_800_000,
             "creation_timestamp": PERP_LISTING_MS[perp]},
            {**common, "instrument_name": f"{currency}-27MAR26", "kind": "future",
             "settlement_period": "month", "quote_currency": "USD", "instrument_type": "reversed",
             "future_type": "reversed", "contract_size": CONTRACT_USD[currency],
             "min_trade_amount": CONTRACT_USD[currency],
             "tick_size": 2.5 if currency == "BTC" else 0.25, "max_leverage": 50,
             "expiration_timestamp": EXPIRIES["27MAR26"],
             "creation_timestamp": FUTURES_LISTING_MS},
        ]  # fmt: skip
        return rows
    if kind == "option":
        out = []
        for name in option_names(currency):
            _, e, s, r = name.split("-")
            out.append(
                {**common, "instrument_name": name, "kind": "option", "quote_currency": currency,
                 "instrument_type": "reversed", "settlement_period": "month" if e == "27MAR26"
                 else "week", "option_type": "call" if r == "C" else "put", "strike": float(s),
                 "contract_size": 1.0, "min_trade_amount": 0.1, "tick_size": 0.0001,
                 "expiration_timestamp": EXPIRIES[e], "creation_timestamp": FUTURES_LISTING_MS}
            )  # fmt: skip
        return out
    return []


def book_summary(currency: str, kind: str) -> list[dict[str, Any]]:
    """``get_book_summary_by_currency`` rows at END."""
    px = INDEX_PX[currency]
    if kind == "future":
        out = []
        for name in (f"{currency}-PERPETUAL", f"{currency}-27MAR26"):
            perp = name.endswith("PERPETUAL")
            mark = px + (0.5 if perp else 150.0)
            row = {"instrument_name": name, "base_currency": currency, "quote_currency": "USD",
                   "creation_timestamp": END_MS - 15, "mark_price": mark,
                   "estimated_delivery_price": px, "open_interest": OI_USD[name],
                   "volume": 1234.5, "volume_usd": 1234.5 * px, "volume_notional": 1234.5 * px,
                   "last": mark, "bid_price": mark - 0.5, "ask_price": mark + 0.5,
                   "mid_price": mark, "high": mark * 1.01, "low": mark * 0.99,
                   "price_change": 0.5}  # fmt: skip
            if perp:
                row["current_funding"] = 0.00012
                row["funding_8h"] = 0.0000874
            out.append(row)
        return out
    if kind == "option":
        out = []
        for i, name in enumerate(option_names(currency)):
            _, e, s, r = name.split("-")
            strike = float(s)
            moneyness = (px - strike) / px if r == "C" else (strike - px) / px
            mark = round(max(moneyness, 0.0) + 0.02 + 0.01 * (e == "27MAR26"), 4)
            iv = 50.0 + 5 * abs(strike - px) / px * 10 + (3.0 if e == "27MAR26" else 0.0)
            quoted = i % 5 != 4  # every fifth option has no bid (Deribit writes 0 / null)
            out.append(
                {"instrument_name": name, "base_currency": currency, "quote_currency": currency,
                 "creation_timestamp": END_MS - 1000 + i, "underlying_price": px * (
                     1.001 if e == "9JAN26" else 1.012),
                 "underlying_index": f"{currency}-{e}", "mark_price": mark,
                 "mark_iv": round(iv, 2), "bid_iv": round(iv - 1, 2) if quoted else 0.0,
                 "ask_iv": round(iv + 1, 2), "bid_price": round(mark * 0.95, 4) if quoted else 0.0,
                 "ask_price": round(mark * 1.05, 4), "mid_price": mark,
                 "open_interest": 100.0 + 10 * i, "volume": 5.0 + i, "volume_usd":
                 (5.0 + i) * mark * px, "estimated_delivery_price": px, "interest_rate": 0.0,
                 "last": mark, "high": mark, "low": mark, "price_change": 0.0}
            )  # fmt: skip
        return out
    return []


def trade(currency: str, n: int) -> dict[str, Any]:
    """Option trade ``n`` of ``currency`` (see the module docstring)."""
    names = option_names(currency)
    t = TRADES_START_MS + (n - 1 if n % 4 == 3 else n) * TRADE_STEP_MS  # n % 4 == 3: as n - 1
    name = names[n % len(names)]
    px = INDEX_PX[currency]
    row: dict[str, Any] = {
        "trade_seq": 1000 + n, "trade_id": f"{currency}-{5_000_000 + n}", "timestamp": t,
        "tick_direction": n % 4, "price": round(0.01 + (n % 9) * 0.001, 4),
        "mark_price": round(0.01 + (n % 9) * 0.001, 4), "iv": round(50 + (n % 13) * 0.5, 2),
        "instrument_name": name, "index_price": px + (n % 7), "direction": "buy" if n % 2 else
        "sell", "amount": round(0.1 * (1 + n % 10), 1),
    }  # fmt: skip
    if n % 7 == 0:
        row["block_trade_id"] = f"{currency}-BLOCK-{n}"
    if n % 11 == 5:
        row["liquidation"] = ("T", "M", "MT")[(n // 11) % 3]
    return row


def trade_count() -> int:
    return (END_MS - TRADES_START_MS) // TRADE_STEP_MS


CHART_MS = {"1": 60_000, "3": 180_000, "5": 300_000, "10": 600_000, "15": 900_000,
            "30": 1_800_000, "60": HOUR_MS, "120": 2 * HOUR_MS, "180": 3 * HOUR_MS,
            "360": 6 * HOUR_MS, "720": 12 * HOUR_MS, "1D": 24 * HOUR_MS}  # fmt: skip


def chart_bar(name: str, t: int, step: int) -> tuple[float, float, float, float, float, float]:
    """Open, high, low, close, volume (coin) and cost (USD) of a perpetual's trade bar at ``t``."""
    k = (t - PERP_LISTING_MS[name]) // step
    px = INDEX_PX[name.split("-")[0]] * (1 + ((k % 200) - 100) / 2000)
    vol = 10.0 + k % 37
    return (round(px, 2), round(px * 1.002, 2), round(px * 0.998, 2), round(px + 1, 2), vol,
            round(vol * px, 2))  # fmt: skip


def dvol_value(t: int) -> float:
    k = (t - DVOL_START_MS) // HOUR_MS
    return 45.0 + (k % 40) * 0.25


def dvol_candle(t: int, step: int) -> list[Any]:
    o = dvol_value(t)
    c = dvol_value(t + step)
    return [t, o, max(o, c) + 0.5, min(o, c) - 0.5, c]


# ------------------------------------------------------------------------------ routing


def answer(path: str, q: dict[str, str]) -> tuple[int, Any]:
    """The status and body Deribit would send for ``path`` (under ``/api/v2/public/``)."""
    method = path.removeprefix(PREFIX)

    def num(key: str) -> int | None:
        return int(q[key]) if key in q else None

    currency = q.get("currency", "")
    if "currency" in q and currency not in INDEX_PX:
        return invalid("currency", "wrong format")
    currencies = [currency] if currency else list(INDEX_PX)
    kinds = [q["kind"]] if "kind" in q else ["future", "option"]
    if method == "get_currencies":
        return 200, envelope([{"currency": c, "currency_long": c, "fee_precision": 4,
                               "min_confirmations": 1, "withdrawal_fee": 0.0001,
                               "coin_type": c} for c in INDEX_PX])  # fmt: skip
    if method == "get_instruments":  # without currency or kind: every one of them
        return 200, envelope([r for c in currencies for k in kinds for r in instruments(c, k)])
    if method == "get_book_summary_by_currency":
        return 200, envelope([r for k in kinds for r in book_summary(currency, k)])
    if method == "get_book_summary_by_instrument":
        name = q.get("instrument_name", "")
        rows = [r for c in INDEX_PX for k in ("future", "option") for r in book_summary(c, k)
                if r["instrument_name"] == name]  # fmt: skip
        return (200, envelope(rows)) if rows else invalid("instrument_name", "not found")
    if method in ("get_last_trades_by_instrument", "get_last_trades_by_instrument_and_time"):
        name = q.get("instrument_name", "")
        cur = name.split("-")[0]
        if cur not in INDEX_PX or name not in option_names(cur):
            return invalid("instrument_name", "instrument not found")
        count = num("count") or 10
        lo = num("start_timestamp") or 0
        hi = num("end_timestamp") or END_MS
        sel = [trade(cur, n) for n in range(trade_count())]
        sel = [r for r in sel if r["instrument_name"] == name and lo <= r["timestamp"] <= hi]
        page = sel[:count] if q.get("sorting") == "asc" else sel[-count:][::-1]
        return 200, envelope({"trades": page, "has_more": len(sel) > count})
    if method == "get_funding_rate_history":
        name = q.get("instrument_name", "")
        if name not in PERP_LISTING_MS:
            return invalid("instrument_name", "instrument not found")
        if "start_timestamp" not in q or "end_timestamp" not in q:
            return invalid("start_timestamp", "start_timestamp and end_timestamp are required")
        lo, hi = num("start_timestamp") or 0, num("end_timestamp") or 0
        rows = [funding_row(name, t) for t in funding_times(name) if lo < t <= hi][:744]
        return 200, envelope(rows)
    if method in ("get_last_trades_by_currency_and_time", "get_last_trades_by_currency"):
        count = num("count") or 10
        if not 1 <= count <= 1000:
            return invalid("count", "must be in [1, 1000]")
        if q.get("kind", "any") not in ("option", "any"):
            return 200, envelope({"trades": [], "has_more": False})
        lo = num("start_timestamp") or 0
        hi = num("end_timestamp") or END_MS
        sel = [trade(currency, n) for n in range(trade_count())]
        sel = [r for r in sel if lo <= r["timestamp"] <= hi]
        page = sel[:count] if q.get("sorting") == "asc" else sel[-count:][::-1]
        return 200, envelope({"trades": page, "has_more": len(sel) > count})
    if method == "get_tradingview_chart_data":
        name = q.get("instrument_name", "")
        step = CHART_MS.get(q.get("resolution", ""))
        if name not in PERP_LISTING_MS:
            return invalid("instrument_name", "instrument not found")
        if step is None:
            return invalid("resolution", "unknown resolution")
        lo, hi = num("start_timestamp") or 0, num("end_timestamp") or END_MS
        first = PERP_LISTING_MS[name]
        t0 = max(first, first + -(-(lo - first) // step) * step)
        ticks = list(range(t0, min(hi, END_MS) + 1, step))[:5000]  # the bar open at END too
        if not ticks:
            return 200, envelope({"status": "no_data", "ticks": [], "open": [], "high": [],
                                  "low": [], "close": [], "volume": [], "cost": []})  # fmt: skip
        bars = [chart_bar(name, t, step) for t in ticks]
        keys = ("open", "high", "low", "close", "volume", "cost")
        return 200, envelope({"status": "ok", "ticks": ticks,
                              **{k: [b[i] for b in bars] for i, k in enumerate(keys)}})  # fmt: skip
    if method == "get_volatility_index_data":
        step = RESOLUTION_MS.get(q.get("resolution", ""))
        if step is None:
            return invalid("resolution", "must be 1, 60, 3600, 43200 or 1D")
        lo, hi = num("start_timestamp"), num("end_timestamp")
        if lo is None or hi is None:
            return invalid("start_timestamp", "start_timestamp and end_timestamp are required")
        first = max(DVOL_START_MS, lo + (-(lo - DVOL_START_MS)) % step)
        grid = [t for t in range(first, min(hi, END_MS - step) + 1, step)]
        page = grid[-1000:]
        cont = page[0] if len(grid) > len(page) else None
        return 200, envelope({"data": [dvol_candle(t, step) for t in page], "continuation": cont})
    return 400, error(-32601, "Method not found")
