"""Recordings in the venues' documented WebSocket frame shapes, with the truth they encode.

No public recording of Binance ``forceOrder``/``aggTrade``/``markPrice``, Bybit v5
``allLiquidation``/``publicTrade``/``tickers``, OKX ``liquidation-orders``/``funding-rate``/
``mark-price`` or Deribit perpetual ``trades``/``ticker`` frames exists in the shared samples
(their OKX and Deribit recordings hold spot/option trades, tickers and books only), so sessions
are generated here, field for field as the venues document them
(the doc-shape samples in ``samples/doc_examples_NOT_REAL/`` show the same fields). The truth
(every liquidation with its normalised side, every trade) is kept beside the frames so tests
compute expected totals with plain loops, independently of the collector.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

__all__ = [
    "Session",
    "binance_session",
    "bybit_session",
    "deribit_session",
    "minute_sums",
    "okx_session",
]

T0_MS = 1_793_620_830_000  # 2026-11-02 12:00:30 UTC: mid-minute, so the first minute is partial


@dataclass
class Session:
    """Frames, their recording times (seconds) and what they hold."""

    times: list[float] = field(default_factory=list)
    frames: list[str] = field(default_factory=list)
    liquidations: list[tuple[str, int, str, float, float]] = field(default_factory=list)
    """(symbol, ts_ms, liquidated side long|short, price, qty)."""
    trades: list[tuple[int, float, bool]] = field(default_factory=list)
    """(ts_ms, qty, taker bought)."""
    ticks: list[int] = field(default_factory=list)
    """Event times of the mark-price/ticker frames."""
    agg_trades: list[dict[str, object]] = field(default_factory=list)
    """Binance sessions: every aggregate trade as ``GET /fapi/v1/aggTrades`` returns it;
    Deribit sessions: every trade as ``get_last_trades_by_instrument_and_time`` returns it."""

    def add(self, ts_ms: int, doc: object) -> None:
        self.times.append(ts_ms / 1000)
        self.frames.append(json.dumps(doc, separators=(",", ":")))


def minute_sums(trades: list[tuple[int, float, bool]]) -> dict[int, tuple[float, float]]:
    """Taker buy and sell volume per minute start (ms), summed by a plain loop."""
    out: dict[int, tuple[float, float]] = {}
    for ts, qty, buy in trades:
        m = ts // 60_000 * 60_000
        b, s = out.get(m, (0.0, 0.0))
        out[m] = (b + qty, s) if buy else (b, s + qty)
    return out


def binance_session(
    seconds: int = 600, *, seed: int = 7, trades_per_s: int = 6, spot: bool = False
) -> Session:
    """A Binance combined-stream session of BTCUSDT: aggTrade, forceOrder, markPrice@1s (spot:
    aggTrade only, as the spot host sends it)."""
    rng = random.Random(seed)
    out = Session()
    agg_id = 1_000_000
    px = 68_000.0
    for sec in range(seconds):
        base = T0_MS + sec * 1000
        for k in range(trades_per_s):
            ts = base + k * (1000 // trades_per_s)
            px = round(px + rng.uniform(-5, 5), 1)
            qty = round(rng.uniform(0.001, 2.0), 3)
            maker_bought = rng.random() < 0.5
            agg_id += 1
            out.add(ts, {"stream": "btcusdt@aggTrade", "data": {
                "e": "aggTrade", "E": ts + 3, "s": "BTCUSDT", "a": agg_id, "p": f"{px:.1f}",
                "q": f"{qty:.3f}", "f": agg_id * 3, "l": agg_id * 3 + 2, "T": ts,
                "m": maker_bought}})  # fmt: skip
            out.trades.append((ts, qty, not maker_bought))
            out.agg_trades.append({"a": agg_id, "p": f"{px:.1f}", "q": f"{qty:.3f}",
                                   "f": agg_id * 3, "l": agg_id * 3 + 2, "T": ts,
                                   "m": maker_bought})  # fmt: skip
        if spot:
            continue
        if sec % 5 == 2:  # a liquidation every five seconds (Binance: at most one a second)
            ts = base + 500
            side = rng.choice(["SELL", "BUY"])
            qty = round(rng.uniform(0.01, 3.0), 3)
            ap = round(px + rng.uniform(-20, 20), 2)
            out.add(ts, {"stream": "btcusdt@forceOrder", "data": {
                "e": "forceOrder", "E": ts + 2, "o": {
                    "s": "BTCUSDT", "S": side, "o": "LIMIT", "f": "IOC", "q": f"{qty:.3f}",
                    "p": f"{ap - 30:.2f}", "ap": f"{ap:.2f}", "X": "FILLED", "l": f"{qty:.3f}",
                    "z": f"{qty:.3f}", "T": ts}}})  # fmt: skip
            out.liquidations.append(("BTCUSDT", ts, "long" if side == "SELL" else "short", ap,
                                     qty))  # fmt: skip
        ts = base + 999
        out.add(ts, {"stream": "btcusdt@markPrice@1s", "data": {
            "e": "markPriceUpdate", "E": ts, "s": "BTCUSDT", "p": f"{px + 1:.2f}",
            "i": f"{px - 2:.2f}", "P": f"{px:.2f}", "r": "0.00010000",
            "T": (ts // 28_800_000 + 1) * 28_800_000}})  # fmt: skip
        out.ticks.append(ts)
    return out


def bybit_session(seconds: int = 600, *, seed: int = 11) -> Session:
    """A Bybit v5 linear session of BTCUSDT: publicTrade, allLiquidation, tickers."""
    rng = random.Random(seed)
    out = Session()
    px = 68_000.0
    n = 0
    for sec in range(seconds):
        base = T0_MS + sec * 1000
        rows = []
        for k in range(rng.randint(1, 5)):
            ts = base + 100 * k
            px = round(px + rng.uniform(-5, 5), 1)
            qty = round(rng.uniform(0.001, 1.5), 3)
            side = rng.choice(["Buy", "Sell"])
            n += 1
            rows.append({"T": ts, "s": "BTCUSDT", "S": side, "v": f"{qty:.3f}", "p": f"{px:.1f}",
                         "L": "PlusTick", "i": f"{n:08x}-aaaa-bbbb-cccc-{seed:012x}",
                         "BT": False})  # fmt: skip
            out.trades.append((ts, qty, side == "Buy"))
        out.add(base + 600, {"topic": "publicTrade.BTCUSDT", "type": "snapshot",
                             "ts": base + 600, "data": rows})  # fmt: skip
        if sec % 4 == 1:
            liq = []
            for j in range(rng.randint(1, 2)):  # Bybit sends every liquidation, several at once
                ts = base + 700 + j
                side = rng.choice(["Buy", "Sell"])
                qty = round(rng.uniform(0.01, 3.0), 3)
                lp = round(px + rng.uniform(-20, 20), 1)
                liq.append({"T": ts, "s": "BTCUSDT", "S": side, "v": f"{qty:.3f}",
                            "p": f"{lp:.1f}"})  # fmt: skip
                out.liquidations.append(("BTCUSDT", ts, "long" if side == "Buy" else "short",
                                         lp, qty))  # fmt: skip
            out.add(base + 710, {"topic": "allLiquidation.BTCUSDT", "type": "snapshot",
                                 "ts": base + 710, "data": liq})  # fmt: skip
        ts = base + 900
        data: dict[str, str] = {"symbol": "BTCUSDT", "markPrice": f"{px + 1:.2f}"}
        if sec == 0:
            data.update({"indexPrice": f"{px - 2:.2f}", "fundingRate": "0.0001",
                         "nextFundingTime": str((ts // 28_800_000 + 1) * 28_800_000),
                         "fundingIntervalHour": "8"})  # fmt: skip
        out.add(ts, {"topic": "tickers.BTCUSDT", "type": "snapshot" if sec == 0 else "delta",
                     "cs": 1000 + sec, "ts": ts, "data": data})  # fmt: skip
        out.ticks.append(ts)
    return out


OKX_CT_VAL = 0.01
"""Contract size of BTC-USDT-SWAP (base coin per contract), as OKX's instruments list gives it."""


def okx_session(seconds: int = 600, *, seed: int = 13) -> Session:
    """An OKX v5 public session of BTC-USDT-SWAP: the instruments snapshot first (contract
    sizes), then trades (sizes in contracts), liquidation-orders (every swap: some of ETH, which
    is not followed), funding-rate and mark-price."""
    rng = random.Random(seed)
    out = Session()
    out.add(T0_MS, {"arg": {"channel": "instruments", "instType": "SWAP"}, "data": [
        {"instId": "BTC-USDT-SWAP", "instType": "SWAP", "instFamily": "BTC-USDT", "uly":
         "BTC-USDT", "ctVal": "0.01", "ctMult": "1", "ctValCcy": "BTC", "ctType": "linear",
         "settleCcy": "USDT", "lotSz": "0.01", "tickSz": "0.1", "state": "live"},
        {"instId": "ETH-USDT-SWAP", "instType": "SWAP", "instFamily": "ETH-USDT", "uly":
         "ETH-USDT", "ctVal": "0.1", "ctMult": "1", "ctValCcy": "ETH", "ctType": "linear",
         "settleCcy": "USDT", "lotSz": "0.01", "tickSz": "0.01", "state": "live"}]})  # fmt: skip
    px = 68_000.0
    trade_id = 500_000_000
    for sec in range(seconds):
        base = T0_MS + sec * 1000
        for k in range(rng.randint(1, 4)):
            ts = base + 150 * k
            px = round(px + rng.uniform(-5, 5), 1)
            contracts = rng.randint(1, 300)
            side = rng.choice(["buy", "sell"])
            count = rng.randint(1, 3)
            trade_id += count
            row = {"instId": "BTC-USDT-SWAP", "tradeId": str(trade_id), "px": f"{px:.1f}",
                   "sz": str(contracts), "side": side, "ts": str(ts), "count": str(count),
                   "source": "0", "seqId": trade_id}  # fmt: skip
            out.add(ts, {"arg": {"channel": "trades", "instId": "BTC-USDT-SWAP"}, "data": [row]})
            out.agg_trades.append({k: row[k] for k in ("instId", "tradeId", "px", "sz", "side",
                                                       "ts")})  # fmt: skip
            out.trades.append((ts, contracts * OKX_CT_VAL, side == "buy"))
        if sec % 6 == 3:
            details = []
            for j in range(rng.randint(1, 2)):
                ts = base + 700 + j
                pos = rng.choice(["long", "short"])
                contracts = rng.randint(1, 500)
                bk = round(px + rng.uniform(-30, 30), 1)
                # a long is liquidated by a sell order, a short by a buy
                details.append({"bkLoss": "0", "bkPx": f"{bk:.1f}", "ccy": "", "posSide": pos,
                                "side": "sell" if pos == "long" else "buy", "sz": str(contracts),
                                "ts": str(ts)})  # fmt: skip
                out.liquidations.append(("BTC-USDT-SWAP", ts, pos, bk, contracts * OKX_CT_VAL))
            out.add(base + 710, {"arg": {"channel": "liquidation-orders", "instType": "SWAP"},
                                 "data": [
                {"details": details, "instFamily": "BTC-USDT", "instId": "BTC-USDT-SWAP",
                 "instType": "SWAP", "uly": "BTC-USDT"},
                {"details": [{"bkLoss": "0", "bkPx": "3500.1", "ccy": "", "posSide": "long",
                              "side": "sell", "sz": "7", "ts": str(base + 705)}],
                 "instFamily": "ETH-USDT", "instId": "ETH-USDT-SWAP", "instType": "SWAP",
                 "uly": "ETH-USDT"}]})  # fmt: skip
        ts = base + 800
        settle = (ts // 28_800_000 + 1) * 28_800_000
        out.add(ts, {"arg": {"channel": "funding-rate", "instId": "BTC-USDT-SWAP"}, "data": [{
            "instId": "BTC-USDT-SWAP", "instType": "SWAP", "fundingRate": "0.0001",
            "fundingTime": str(settle), "nextFundingRate": "", "nextFundingTime":
            str(settle + 28_800_000), "method": "current_period", "ts": str(ts)}]})  # fmt: skip
        out.ticks.append(ts)
        out.add(ts + 100, {"arg": {"channel": "mark-price", "instId": "BTC-USDT-SWAP"}, "data": [
            {"instId": "BTC-USDT-SWAP", "instType": "SWAP", "markPx": f"{px + 1:.1f}",
             "ts": str(ts + 100)}]})  # fmt: skip
        out.ticks.append(ts + 100)
    return out


def deribit_session(seconds: int = 600, *, seed: int = 17) -> Session:
    """A Deribit session of BTC-PERPETUAL (inverse: amounts in USD): trades.100ms batches, some
    trades flagged ``liquidation`` M, T or MT, and ticker.100ms."""
    rng = random.Random(seed)
    out = Session()
    px = 68_000.0
    seq = 90_000_000
    for sec in range(seconds):
        base = T0_MS + sec * 1000
        for batch in range(2):
            rows = []
            for k in range(rng.randint(1, 3)):
                ts = base + 400 * batch + 10 * k
                px = round(px + rng.uniform(-5, 5), 1)
                usd = 10 * rng.randint(1, 2000)
                direction = rng.choice(["buy", "sell"])
                seq += 1
                row: dict[str, object] = {
                    "trade_seq": seq, "trade_id": str(300_000_000 + seq), "timestamp": ts,
                    "tick_direction": rng.randint(0, 3), "price": px, "mark_price": px + 0.5,
                    "index_price": px - 1.5, "instrument_name": "BTC-PERPETUAL",
                    "direction": direction, "amount": float(usd)}  # fmt: skip
                if seq % 23 == 0:
                    flag = rng.choice(["M", "T", "MT"])
                    row["liquidation"] = flag
                    for role in flag:
                        # the liquidated party sold (was long) when it is the taker of a sell or
                        # the maker of a buy
                        sold = (direction == "sell") if role == "T" else (direction == "buy")
                        out.liquidations.append(("BTC-PERPETUAL", ts, "long" if sold else
                                                 "short", px, usd / px))  # fmt: skip
                rows.append(row)
                out.agg_trades.append(row)
                out.trades.append((ts, usd / px, direction == "buy"))
            out.add(base + 400 * batch + 100, {"jsonrpc": "2.0", "method": "subscription",
                    "params": {"channel": "trades.BTC-PERPETUAL.100ms", "data": rows}})  # fmt: skip
        ts = base + 900
        out.add(ts, {"jsonrpc": "2.0", "method": "subscription", "params": {
            "channel": "ticker.BTC-PERPETUAL.100ms", "data": {
                "timestamp": ts, "instrument_name": "BTC-PERPETUAL", "mark_price": px + 0.5,
                "index_price": px - 1.5, "current_funding": 0.00002, "funding_8h": 0.00011,
                "state": "open", "open_interest": 1.2e9, "best_bid_price": px - 0.5,
                "best_ask_price": px + 0.5}}})  # fmt: skip
        out.ticks.append(ts)
    return out
