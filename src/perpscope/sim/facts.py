"""Stylised facts of a perpetual market, and the bands the simulator must land in (issue 11).

Every fact is computed by the same functions on simulated and on real series: hourly candles,
funding settlements, open-interest snapshots. The simulator side reads them from a run's tables
(:func:`run_facts`); the real side from files or a store (``perpscope.services.sim_calibrate``).
Pure numpy: no store, no venues.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from perpscope.sim.constants import INTEREST_8H

__all__ = [
    "FACTS",
    "Fact",
    "aggregate",
    "funding_facts",
    "funding_pair_facts",
    "oi_facts",
    "pair_price_facts",
    "positions_facts",
    "price_facts",
    "run_facts",
]

Agg = Literal["median", "max", "any", "p20"]
Fmt = Literal["num", "pct", "rate", "count"]


@dataclass(frozen=True, slots=True)
class Fact:
    """One stylised fact and its band.

    Attributes:
        key: identifier (also the JSON key).
        label: what it is, in words.
        lo: lowest value in the band (None: no lower bound).
        hi: highest value in the band (None: no upper bound).
        agg: how seeds (or real windows) combine: ``median``; ``max`` (the largest: a ceiling
            that must hold in every seed); ``any`` (holds in at least one seed: the in-band
            value nearest the band's centre, else the value nearest the band); ``p20`` (the
            value 80% of seeds reach or beat: with 5 seeds, the second lowest, i.e. "in at
            least 4 of 5").
        fmt: how to print it: ``num``, ``pct`` (a share), ``rate`` (a funding rate per 8h),
            ``count``.
    """

    key: str
    label: str
    lo: float | None
    hi: float | None
    agg: Agg = "median"
    fmt: Fmt = "num"

    def holds(self, value: float) -> bool:
        """Whether ``value`` lies in the band (NaN never does)."""
        if not np.isfinite(value):
            return False
        return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)


FACTS: tuple[Fact, ...] = (
    Fact("ret_acf1", "hourly return ACF lag 1", -0.08, 0.05),
    Fact("vr24", "variance ratio 24h", 0.8, 1.3),
    Fact("vr168", "variance ratio 168h", 0.5, 1.5),
    Fact("abs_acf1", "ACF of |r| lag 1", 0.15, 0.40),
    Fact("abs_acf24", "ACF of |r| lag 24", 0.05, 0.22),
    Fact("kurtosis", "excess kurtosis of hourly returns", 5.0, 30.0),
    Fact("max_min", "price max/min over the window (4 of 5 seeds)", 1.25, None, "p20"),
    Fact("btc_eth_corr", "BTC-ETH hourly return correlation", 0.7, 0.9),
    Fact("fund_base", "funding settlements at the baseline 0.01%", 0.20, 0.65, fmt="pct"),
    Fact("fund_neg", "funding settlements negative", 0.05, 0.30, fmt="pct"),
    Fact("fund_hot", "funding above 0.05% (in at least one seed)", 0.01, 0.10, "any", "pct"),
    Fact("fund_max", "highest funding per 8h", None, 0.003, "max", "rate"),
    Fact("fund_same", "venue A funding == venue B funding", None, 0.40, fmt="pct"),
    Fact("fund_gap", "median funding gap between two venues", 0.00002, 0.0001, fmt="rate"),
    Fact("oi4h_std", "OI 4h change std", 0.01, 0.03, fmt="pct"),
    Fact("oi4h_p1", "OI 4h change 1st percentile", -0.06, None, fmt="pct"),
    Fact("oi1d_std", "OI daily change std", 0.02, 0.06, fmt="pct"),
    Fact("oi_max_min", "OI max/min over the window", None, 2.6),
    Fact("oi_ret_corr", "corr(OI 4h change, 4h return)", 0.1, 0.4),
    Fact("zero_vol_hours", "perp hours with zero volume", None, 0.0, fmt="count"),
    Fact("liq5_per_30d", "hours with liquidations >= 5% of OI, per market per 30d", None, 1.0),
    Fact("open_positions", "open trader positions, fewest in a market", 300.0, None, fmt="count"),
    Fact("largest_share", "largest trader position / OI, worst market", None, 0.03, fmt="pct"),
    Fact("retrace4h", "20 widest bars: median retrace from the extreme at +4h", 0.25, 0.5),
    Fact("best_retrace", "20 widest bars: median best retrace within 4h", 0.45, 0.8),
    Fact("full_retrace", "20 widest bars: fully retraced by the next bar", None, 0.10, fmt="pct"),
)
"""The facts, in display order."""


def _acf(x: np.ndarray, lag: int) -> float:
    if x.size <= lag + 2:
        return float("nan")
    d = x - x.mean()
    den = float((d * d).sum())
    return float((d[:-lag] * d[lag:]).sum() / den) if den > 0 else float("nan")


def _variance_ratio(r: np.ndarray, k: int) -> float:
    """Variance of overlapping k-hour returns over k times the variance of 1-hour returns."""
    if r.size <= 2 * k:
        return float("nan")
    c = np.concatenate([[0.0], np.cumsum(r)])
    rk = c[k:] - c[:-k]
    v1 = float(r.var())
    return float(rk.var() / (k * v1)) if v1 > 0 else float("nan")


def _retrace(
    o: np.ndarray, h: np.ndarray, low: np.ndarray, c: np.ndarray, top: int
) -> dict[str, float]:
    """Retrace readings of the ``top`` widest bars (largest log high/low range).

    A bar's move runs from its open to its extreme on the side it closed (the high of a bar
    that closed at or above its open, else the low); what comes back is measured from that
    extreme: at the close 4 bars later (``retrace4h``), at the farthest point reached within
    those 4 hours, the bar's own close included (``best_retrace``); ``full_retrace`` is whether
    the next bar closes back at or beyond the open.
    """
    n = c.size
    width = np.log(h) - np.log(low)
    cand = np.flatnonzero(np.arange(n) < n - 4)
    cand = cand[np.argsort(-width[cand], kind="stable")][:top]
    at4, best, full = [], [], []
    for t in cand.tolist():
        up = c[t] >= o[t]
        ext = h[t] if up else low[t]
        size = ext - o[t]
        if size == 0:
            continue
        at4.append((ext - c[t + 4]) / size)
        back = min(low[t + 1 : t + 5].min(), c[t]) if up else max(h[t + 1 : t + 5].max(), c[t])
        best.append((ext - back) / size)
        full.append(float(c[t + 1] <= o[t]) if up else float(c[t + 1] >= o[t]))
    if not at4:
        return {"retrace4h": np.nan, "best_retrace": np.nan, "full_retrace": np.nan}
    return {
        "retrace4h": float(np.median(at4)),
        "best_retrace": float(np.median(best)),
        "full_retrace": float(np.mean(full)),
    }


def price_facts(
    o: np.ndarray, h: np.ndarray, low: np.ndarray, c: np.ndarray, top_bars: int = 20
) -> dict[str, float]:
    """Return, volatility-clustering, tail and retrace facts of one market's hourly candles."""
    r = np.diff(np.log(c))
    d = r - r.mean()
    m2 = float((d**2).mean())
    out = {
        "ret_acf1": _acf(r, 1),
        "vr24": _variance_ratio(r, 24),
        "vr168": _variance_ratio(r, 168),
        "abs_acf1": _acf(np.abs(r), 1),
        "abs_acf24": _acf(np.abs(r), 24),
        "kurtosis": float((d**4).mean() / m2**2 - 3.0) if m2 > 0 else float("nan"),
        "max_min": float(h.max() / low.min()),
    }
    out.update(_retrace(o, h, low, c, top_bars))
    return out


def pair_price_facts(c_a: np.ndarray, c_b: np.ndarray) -> dict[str, float]:
    """Correlation of two assets' hourly log returns over the same hours."""
    ra, rb = np.diff(np.log(c_a)), np.diff(np.log(c_b))
    return {"btc_eth_corr": float(np.corrcoef(ra, rb)[0, 1])}


def funding_facts(rate_8h: np.ndarray) -> dict[str, float]:
    """Shares of settlements at the baseline, negative and above 0.05% per 8h; the highest."""
    r = np.asarray(rate_8h, float)
    return {
        "fund_base": float(np.mean(np.abs(r - INTEREST_8H) < 1e-9)),
        "fund_neg": float(np.mean(r < 0)),
        "fund_hot": float(np.mean(r > 0.0005 + 1e-12)),
        "fund_max": float(r.max()),
    }


def funding_pair_facts(a_8h: np.ndarray, b_8h: np.ndarray) -> dict[str, float]:
    """Two venues' settlements at the same times: share equal, median absolute gap."""
    gap = np.abs(np.asarray(a_8h) - np.asarray(b_8h))
    return {"fund_same": float(np.mean(gap < 1e-9)), "fund_gap": float(np.median(gap))}


def oi_facts(
    oi_4h: np.ndarray | None, px_4h: np.ndarray | None, oi_1d: np.ndarray | None
) -> dict[str, float]:
    """OI change facts: 4h changes (with the 4h price return), daily changes, max/min.

    Each argument is a level series sampled every 4h (OI and price at the same times) or daily;
    a missing one gives NaN for its facts.
    """
    nan = float("nan")
    out = dict.fromkeys(("oi4h_std", "oi4h_p1", "oi_ret_corr", "oi1d_std", "oi_max_min"), nan)
    if oi_4h is not None and oi_4h.size > 10:
        ch = oi_4h[1:] / oi_4h[:-1] - 1.0
        out["oi4h_std"] = float(ch.std())
        out["oi4h_p1"] = float(np.percentile(ch, 1))
        if px_4h is not None:
            out["oi_ret_corr"] = float(np.corrcoef(ch, np.diff(np.log(px_4h)))[0, 1])
    if oi_1d is not None and oi_1d.size > 10:
        out["oi1d_std"] = float((oi_1d[1:] / oi_1d[:-1] - 1.0).std())
        out["oi_max_min"] = float(oi_1d.max() / oi_1d.min())
    return out


def positions_facts(positions: pl.DataFrame, oi: pl.DataFrame) -> dict[str, float]:
    """Open trader positions per market at the run's end and the largest one's share of OI.

    The book is each position's last event by ``(ts, seq)``; the market maker's inventory is
    not a trader position (it is excluded by the documented rule) but counts in OI.
    """
    last = (
        positions.filter(pl.col("agent") != "market_maker")
        .sort("ts", "seq")
        .group_by("venue", "instrument", "position_id")
        .agg(pl.col("event").last(), pl.col("qty_base").last())
        .filter(pl.col("event").is_in(["open", "change"]))
    )
    per = last.group_by("venue", "instrument").agg(
        pl.len().alias("n"), pl.col("qty_base").max().alias("largest")
    )
    end = oi.filter(pl.col("ts") == oi["ts"].max()).select("venue", "instrument", "oi_base")
    j = end.join(per, on=["venue", "instrument"], how="left").fill_null(0)
    if j.height == 0:
        return {"open_positions": float("nan"), "largest_share": float("nan")}
    return {
        "open_positions": float(j["n"].to_numpy().min()),
        "largest_share": float((j["largest"] / j["oi_base"]).to_numpy().max()),
    }


def _candles(tables: dict[str, pl.DataFrame], venue: str, inst: str) -> pl.DataFrame:
    return (
        tables["ohlcv"]
        .filter(venue=venue, instrument=inst, kind="trade")
        .sort("ts")
        .select("ts", "o", "h", "l", "c", "volume")
    )


def run_facts(
    tables: dict[str, pl.DataFrame],
    venue: str = "sim1",
    other_venue: str = "sim2",
    asset: str = "BTC",
    other_asset: str = "ETH",
) -> dict[str, float]:
    """Every fact of one simulator run, on ``venue``'s ``asset`` perp (the issue's sim1 BTC)."""
    inst = f"{asset}-USDT-PERP"
    bars = _candles(tables, venue, inst)
    o, h, low, c = (bars[k].to_numpy() for k in ("o", "h", "l", "c"))
    out = price_facts(o, h, low, c)
    other = _candles(tables, venue, f"{other_asset}-USDT-PERP")
    if other.height == bars.height:
        out.update(pair_price_facts(bars["c"].to_numpy(), other["c"].to_numpy()))
    fund = tables["funding"].with_columns(r8=pl.col("rate") * 8.0 / pl.col("interval_h"))
    mine = fund.filter(venue=venue, instrument=inst).sort("ts")
    out.update(funding_facts(mine["r8"].to_numpy()))
    theirs = fund.filter(venue=other_venue, instrument=inst).select("ts", pl.col("r8").alias("b"))
    both = mine.join(theirs, on="ts")
    if both.height:
        out.update(funding_pair_facts(both["r8"].to_numpy(), both["b"].to_numpy()))
    oi = tables["open_interest"].filter(venue=venue, instrument=inst).sort("ts")
    mark = tables["ohlcv"].filter(venue=venue, instrument=inst, kind="mark").sort("ts")
    # OI snapshots are stamped at the hour's end = the next bar's open: pair OI at ts with the
    # close of the bar that ends at ts.
    px_end = mark.select(pl.col("ts") + pl.duration(hours=1), "c")
    j = oi.join(px_end, on="ts")
    every4 = j.filter(pl.col("ts").dt.hour() % 4 == 0)
    daily = j.filter(pl.col("ts").dt.hour() == 0)
    out.update(
        oi_facts(every4["oi_base"].to_numpy(), every4["c"].to_numpy(), daily["oi_base"].to_numpy())
    )
    perp = tables["ohlcv"].filter(pl.col("instrument").str.ends_with("-PERP"), kind="trade")
    out["zero_vol_hours"] = float((perp["volume"] <= 0).sum())
    out.update(_liquidation_hours(tables))
    out.update(positions_facts(tables["sim_positions"], tables["open_interest"]))
    return out


def _liquidation_hours(tables: dict[str, pl.DataFrame]) -> dict[str, float]:
    """Hours with liquidations >= 5% of the market's OI at the hour's start, per market per 30d."""
    oi = tables["open_interest"].select("venue", "instrument", pl.col("ts").alias("hour"), "oi_usd")
    liq = (
        tables["liquidations"]
        .group_by("venue", "instrument", pl.col("ts").dt.truncate("1h").alias("hour"))
        .agg(pl.col("notional_usd").sum())
    )
    big = liq.join(oi, on=["venue", "instrument", "hour"]).filter(
        pl.col("notional_usd") >= 0.05 * pl.col("oi_usd")
    )
    n_markets = oi.select("venue", "instrument").unique().height
    hours = oi["hour"].n_unique()
    if n_markets == 0 or hours == 0:
        return {"liq5_per_30d": float("nan")}
    per_market = big.group_by("venue", "instrument").agg(pl.len())["len"]
    worst = float(per_market.to_numpy().max()) if per_market.len() else 0.0
    return {"liq5_per_30d": worst / (hours / (24.0 * 30.0))}


def aggregate(fact: Fact, values: Sequence[float]) -> float:
    """Combine one fact's values over seeds (or windows) by the fact's rule; NaNs are skipped."""
    v = np.sort(np.asarray([x for x in values if np.isfinite(x)], float))
    if v.size == 0:
        return float("nan")
    if fact.agg == "max":
        return float(v.max())
    if fact.agg == "any":
        inside = v[[fact.holds(float(x)) for x in v]]
        lo = -np.inf if fact.lo is None else fact.lo
        hi = np.inf if fact.hi is None else fact.hi
        if inside.size:  # the in-band value nearest the centre (an open band: the bound's)
            centre = (lo + hi) / 2.0 if np.isfinite(lo + hi) else (lo if np.isfinite(lo) else hi)
            return float(inside[np.argmin(np.abs(inside - centre))])
        return float(v[np.argmin(np.maximum(lo - v, v - hi))])
    if fact.agg == "p20":
        return float(v[v.size // 5])
    return float(np.median(v))
