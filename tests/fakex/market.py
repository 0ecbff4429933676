"""The fake exchange's market: deterministic synthetic history (SYNTHETIC, not market data).

Values are simple functions of the row index so tests can recompute any row independently. The
market's "now" is ``END_MS`` (2026-01-01 00:00 UTC): history ends there, and the 30-day statistics
window is the 30 days before it.

Symbols:

- ``BTCUSDT``, ``ETHUSDT``: listed 2024-01-01, funding every 8 h (2,190 settlements to END).
- ``XYZUSDT``: listed 2025-06-01, funding every 8 h, then every 4 h from 2025-09-01 12:00 UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
END_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
STATS_START_MS = END_MS - 30 * DAY_MS
XYZ_SWITCH_MS = 1_756_713_600_000  # 2025-09-01 08:00 UTC: last 8h settlement

LISTING_MS = {
    "BTCUSDT": 1_704_067_200_000,  # 2024-01-01
    "ETHUSDT": 1_704_067_200_000,
    "XYZUSDT": 1_748_736_000_000,  # 2025-06-01
}
BASE_PX = {"BTCUSDT": 40_000.0, "ETHUSDT": 2_000.0, "XYZUSDT": 1.0}
INTERVAL_MS = {
    "1m": 60_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": HOUR_MS,
    "2h": 2 * HOUR_MS, "4h": 4 * HOUR_MS, "6h": 6 * HOUR_MS, "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS, "1d": DAY_MS,
}  # fmt: skip


def funding_times(symbol: str) -> list[int]:
    """Settlement times of ``symbol`` (exact, without jitter), up to END."""
    t = LISTING_MS[symbol]
    out = []
    while t < END_MS:
        out.append(t)
        step = 4 * HOUR_MS if symbol == "XYZUSDT" and t >= XYZ_SWITCH_MS else 8 * HOUR_MS
        t += step
    return out


def funding_rate(i: int) -> float:
    """Rate of settlement ``i``: a repeating pattern around 0.01%."""
    return 0.0001 + 0.00005 * (((i * 7) % 11) - 5) / 5


@dataclass
class FakeMarket:
    """All history the fake exchange serves."""

    def __post_init__(self) -> None:
        self.funding: dict[str, list[dict[str, Any]]] = {}
        for sym in LISTING_MS:
            rows = []
            for i, t in enumerate(funding_times(sym)):
                rows.append(
                    {
                        "symbol": sym,
                        "fundingTime": t + (i % 3),  # Binance's millisecond jitter
                        "fundingRate": f"{funding_rate(i):.8f}",
                        "markPrice": f"{BASE_PX[sym] * (1 + (i % 50) / 1000):.8f}",
                    }
                )
            self.funding[sym] = rows

    # ------------------------------------------------------------------ history, paginated

    def funding_page(self, symbol: str, start: int | None, end: int | None, limit: int) -> list:
        """``/fapi/v1/fundingRate``: rows in [start, end], ascending, at most ``limit``.

        Without ``startTime`` Binance returns the latest ``limit`` rows.
        """
        rows = self.funding.get(symbol, [])
        if start is None:
            sel = [r for r in rows if end is None or r["fundingTime"] <= end]
            return sel[-limit:]
        hi = END_MS if end is None else end
        return [r for r in rows if start <= r["fundingTime"] <= hi][:limit]

    def kline_page(
        self, symbol: str, kind: str, interval: str, start: int | None, end: int | None, limit: int
    ) -> list:
        """Klines with open time in [start, end], from listing to END, at most ``limit``."""
        step = INTERVAL_MS[interval]
        first = LISTING_MS.get(symbol, LISTING_MS["BTCUSDT"])
        hi = END_MS - step if end is None else min(end, END_MS - step)
        t0 = max(first, hi - (limit - 1) * step) if start is None else max(first, start)
        t0 = first + -(-(t0 - first) // step) * step  # align up to the bar grid
        out = []
        t = t0
        while t <= hi and len(out) < limit:
            out.append(self.kline(symbol, kind, step, t))
            t += step
        return out

    def kline(self, symbol: str, kind: str, step: int, t: int) -> list:
        """One kline in Binance's 12-field array format."""
        k = (t - LISTING_MS.get(symbol, 0)) // step
        px = BASE_PX.get(symbol, 100.0) * (1 + ((k % 200) - 100) / 2000)
        if kind == "premium":
            o, h, lo, c = (f"{x:.8f}" for x in (-0.0002, 0.0003, -0.0004, 0.0001 * ((k % 5) - 2)))
            vol = ("0", "0", "0", "0")
        else:
            bump = {"trade": 0.0, "mark": -0.5, "index": 0.25}[kind]
            o, h, lo, c = (
                f"{x:.2f}" for x in (px + bump, px * 1.002 + bump, px * 0.998 + bump, px + 1 + bump)
            )
            v = 100 + k % 37
            vol = (
                (f"{v:.3f}", f"{v * px:.2f}", f"{v * 0.55:.3f}", f"{v * 0.55 * px:.2f}")
                if kind == "trade"
                else ("0", "0", "0", "0")
            )
        return [t, o, h, lo, c, vol[0], t + step - 1, vol[1], 100 + k % 13, vol[2], vol[3], "0"]

    def stats_page(
        self, symbol: str, endpoint: str, period: str, start: int | None, end: int | None,
        limit: int,
    ) -> list:  # fmt: skip
        """``futures/data/*``: rows in [start, end] within the last 30 days before END."""
        step = INTERVAL_MS[period]
        lo = STATS_START_MS if start is None else max(start, STATS_START_MS)
        hi = END_MS - step if end is None else min(end, END_MS - step)
        lo = STATS_START_MS + -(-(lo - STATS_START_MS) // step) * step
        times = list(range(lo, hi + 1, step))
        times = times[:limit] if start is not None else times[-limit:]
        return [self.stats_row(symbol, endpoint, t, step) for t in times]

    def stats_row(self, symbol: str, endpoint: str, t: int, step: int) -> dict[str, Any]:
        """One row of a statistics endpoint."""
        k = (t - STATS_START_MS) // step
        if endpoint == "openInterestHist":
            oi = 80_000 + (k % 97) * 10.5
            return {
                "symbol": symbol,
                "sumOpenInterest": f"{oi:.8f}",
                "sumOpenInterestValue": f"{oi * BASE_PX.get(symbol, 1.0):.8f}",
                "CMCCirculatingSupply": "19970000.000",
                "timestamp": t,
            }
        if endpoint == "takerlongshortRatio":
            buy, sell = 400 + k % 31, 380 + k % 29
            return {
                "buySellRatio": f"{buy / sell:.4f}",
                "buyVol": f"{buy:.4f}",
                "sellVol": f"{sell:.4f}",
                "timestamp": t,
            }
        long_frac = 0.45 + (k % 21) / 100
        return {
            "symbol": symbol,
            "longShortRatio": f"{long_frac / (1 - long_frac):.4f}",
            "longAccount": f"{long_frac:.4f}",
            "shortAccount": f"{1 - long_frac:.4f}",
            "timestamp": t,
        }

    # ------------------------------------------------------------------ snapshots

    def premium_index(self) -> list[dict[str, Any]]:
        """``/fapi/v1/premiumIndex`` for every perpetual, at END."""
        out = []
        for sym in LISTING_MS:
            last = self.funding[sym][-1]
            out.append(
                {
                    "symbol": sym,
                    "markPrice": f"{BASE_PX[sym]:.8f}",
                    "indexPrice": f"{BASE_PX[sym] * 1.0001:.8f}",
                    "estimatedSettlePrice": f"{BASE_PX[sym]:.8f}",
                    "lastFundingRate": last["fundingRate"],
                    "interestRate": "0.00010000",
                    "nextFundingTime": END_MS + (4 if sym == "XYZUSDT" else 8) * HOUR_MS,
                    "time": END_MS,
                }
            )
        return out

    def open_interest(self, symbol: str) -> dict[str, Any]:
        """``/fapi/v1/openInterest``."""
        return {"openInterest": "81234.567", "symbol": symbol, "time": END_MS}
