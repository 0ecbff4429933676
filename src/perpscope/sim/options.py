"""The simulated options market: BTC and ETH options on the simulated index.

Runs after the perpetual market, on its index and mark paths (it never moves them). One venue
lists the options (``sim1``, as Deribit lists options beside its perpetuals), coin-quoted and
cash-settled as on Deribit: a price is in the underlying coin, worth ``price x underlying_px``
USD; one contract is one coin. Every hour (:data:`SNAPSHOT_H`):

1. **Listing.** Expiries as on Deribit, at 08:00 UTC: the next :attr:`OptionsParams.dailies`
   days, the next Fridays (weeklies), the last Friday of the next months (monthlies) and of the
   next quarter months (quarterlies). An expiry is listed with a grid of strikes around the index
   (the step a round share of the index, wider for longer tenors); when the index moves towards the
   edge of an expiry's grid, strikes are added on the same grid.
2. **Quotes.** The market maker quotes an IV surface: ATM variance blends a fast (one-day
   half-life) EWMA of the index's realised variance, weighing on short tenors, with a slow
   (ten-day) one pulled to a long-run level, times a variance premium plus a term premium;
   across strikes the IV is ``atm x (1 - skew z + smile z^2)`` in the standardised
   log-moneyness ``z = ln(K/F) / (atm sqrt(T))`` (its tangent beyond 3), the put skew steeper
   after falls. Prices are Black-76 on each expiry's forward (the index carried at the funding
   of the perpetual's average premium), rate 0 (Deribit's), so the call minus the put of a
   strike is exactly ``F - K`` in USD. Bid and ask sit half a spread (a vol point of vega, at
   least half a tick, at most half the price) around the mark, which is their mid.
3. **Trades.** Traders arrive as a Poisson process (busier when realised volatility rises):
   directional traders (calls or puts with the index's momentum), hedgers (buy puts), volatility
   sellers (sell out-of-the-money calls and puts, held longest) and noise traders; notionals
   are log-normal and a few trades are blocks. Each trade opens a position or closes one whole
   (holding times exponential by kind); the market maker takes the other side. Open interest is
   what the traders' positions leave open: ``max(long contracts, short contracts)`` per
   instrument (the maker holds the difference).
4. **Settlement.** At 08:00 of its expiry an option settles against the index: every open
   position closes at its intrinsic value, open interest drops to zero.

Outputs (:func:`options_tables`): ``options_snapshot`` (hourly chain; one settlement row per
option at its expiry: OI 0, ``underlying_px = index_px =`` the settlement price, ``mark_price``
the settlement value), ``option_trades`` and the ground truth ``sim_option_positions``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from perpscope.domain.symbols import format_expiry
from perpscope.sim._kernels import erfc
from perpscope.sim.constants import (
    ASSET_SCALE,
    CLAMP_8H,
    INTEREST_8H,
    STEP_MINUTES,
    STEPS_PER_HOUR,
)

__all__ = [
    "OPTION_AGENTS",
    "OPTIONS_ASSETS",
    "OptionsParams",
    "RATE",
    "SNAPSHOT_H",
    "options_tables",
    "options_venue",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

OPTIONS_ASSETS: Final = ("BTC", "ETH")
"""Underlyings with a simulated options market."""
RATE: Final = 0.0
"""Interest rate of the Black-76 prices (Deribit quotes with 0)."""
SNAPSHOT_H: Final = 1
"""Hours between chain snapshots."""
OPTION_AGENTS: Final = ("directional", "hedger", "vol_seller", "noise")
"""Kinds of option traders (``sim_option_positions.agent``)."""

_YEAR_MIN: Final = 365.0 * 24 * 60
_STEPS_PER_YEAR: Final = _YEAR_MIN / STEP_MINUTES
_EXPIRY_HOUR: Final = 8


@dataclass(frozen=True, slots=True)
class OptionsParams:
    """Behaviour of the options market (per asset at BTC scale; ETH scales by its size)."""

    trades_per_hour: float = 7.0
    agent_mix: tuple[float, float, float, float] = (0.43, 0.07, 0.2, 0.3)
    hold_h: tuple[float, float, float, float] = (48.0, 120.0, 200.0, 24.0)
    bull_base: float = 0.62
    call_overwrite: float = 0.7
    median_notional_usd: float = 60_000.0
    notional_sigma: float = 1.0
    block_prob: float = 0.04
    block_median_usd: float = 2_500_000.0
    block_sigma: float = 0.8
    long_run_vol: tuple[float, float] = (0.5, 0.65)  # BTC, ETH: what slow variance reverts to
    long_run_weight: float = 0.5
    variance_premium: float = 1.1
    iv_add: float = 0.03
    term_premium: float = 0.03
    kappa: float = 8.0
    skew: float = 0.07
    skew_momentum: float = 0.04
    smile: float = 0.03
    half_spread_vol: float = 0.01
    dailies: int = 2
    weeklies: int = 2
    monthlies: int = 2
    quarterlies: int = 2
    strikes_each_side: int = 5


# ------------------------------------------------------------------------------ Black-76


def _ncdf_pair(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(N(x), N(-x))`` from one ``erfc`` of ``|x|``: the smaller one exact in the tail, the
    larger one ``1 -`` it, so they sum to 1 to rounding."""
    z = np.ascontiguousarray(np.abs(x) / math.sqrt(2.0), dtype=np.float64)
    tail = 0.5 * erfc(z.ravel()).reshape(z.shape)
    neg = x < 0
    return np.where(neg, tail, 1.0 - tail), np.where(neg, 1.0 - tail, tail)


def _b76(
    f: FloatArray, k: FloatArray, t: FloatArray, vol: FloatArray, call: npt.NDArray[np.bool_]
) -> dict[str, FloatArray]:
    """Black-76 price (USD) and greeks (delta, gamma per USD, vega per vol point, theta per day)."""
    sd = vol * np.sqrt(t)
    d1 = (np.log(f / k) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    (n1, m1), (n2, m2) = _ncdf_pair(d1), _ncdf_pair(d2)
    df = np.exp(-RATE * t)
    # each side from its own formula (no cancellation on the far side); with N(x) + N(-x) = 1
    # to rounding, call - put = df (F - K) to rounding
    call_px = np.maximum(df * (f * n1 - k * n2), 0.0)
    put_px = np.maximum(df * (k * m2 - f * m1), 0.0)
    pdf = np.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi)
    price = np.where(call, call_px, put_px)
    return {
        "price": price,
        "delta": df * np.where(call, n1, n1 - 1.0),
        "gamma": df * pdf / (f * sd),
        "vega": df * f * pdf * np.sqrt(t) / 100.0,
        "theta": (-df * f * pdf * vol / (2.0 * np.sqrt(t)) + RATE * price) / 365.0,
    }


# ------------------------------------------------------------------------------ schedule


def _last_friday(year: int, month: int) -> date:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - 4) % 7)


def _expiries(now: datetime, p: OptionsParams) -> list[datetime]:
    """Expiries listed at ``now``: dailies, weeklies, monthlies and quarterlies (08:00 UTC)."""

    def at8(d: date) -> datetime:
        return datetime(d.year, d.month, d.day, _EXPIRY_HOUR, tzinfo=UTC)

    day = now.date()
    out: set[datetime] = set()
    d = day
    while len(out) < p.dailies:
        if at8(d) > now:
            out.add(at8(d))
        d += timedelta(days=1)
    fridays: list[datetime] = []
    d = day
    while len(fridays) < p.weeklies:
        if d.weekday() == 4 and at8(d) > now:
            fridays.append(at8(d))
        d += timedelta(days=1)
    months: list[datetime] = []
    y, m = day.year, day.month
    while len(months) < p.monthlies:
        e = at8(_last_friday(y, m))
        if e > now:
            months.append(e)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    quarters: list[datetime] = []
    y, m = day.year, day.month
    while len(quarters) < p.quarterlies:
        e = at8(_last_friday(y, m))
        if m % 3 == 0 and e > now and e not in months:
            quarters.append(e)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return sorted(out | set(fridays) | set(months) | set(quarters))


def _nice(x: float) -> float:
    """Round a strike step to 1, 2, 2.5 or 5 times a power of ten."""
    mag = 10.0 ** math.floor(math.log10(x))
    return min((m * mag for m in (1.0, 2.0, 2.5, 5.0, 10.0)), key=lambda v: abs(v - x))


def _step_share(days: float) -> float:
    return 0.01 if days <= 2 else 0.02 if days <= 14 else 0.05 if days <= 95 else 0.1


# ------------------------------------------------------------------------------ one asset


@dataclass
class _Asset:
    """Per-point state of one underlying (point ``p`` = the end of step ``p - 1``)."""

    name: str
    px: FloatArray  # index at each point
    var_fast: FloatArray  # per-step variance, EWMA
    var_slow: FloatArray
    mom: FloatArray  # momentum in [-1, 1]
    carry: FloatArray  # annual carry of the forwards
    event_point: int = -1  # a scheduled catalyst's point (-1: none)
    event_var: float = 0.0  # the variance (log, squared move) priced at it


def _event_var(a: _Asset, point: IntArray, expiry_point: IntArray, t: FloatArray) -> FloatArray:
    """Annual variance a known catalyst adds to options at ``point`` expiring at ``expiry_point``
    (``t`` years away): its squared move spread over the option's life, ``event_var / t``, when
    the catalyst falls in between; 0 otherwise."""
    spans = (point < a.event_point) & (expiry_point > a.event_point)
    return np.where(spans, a.event_var / np.where(spans, t, 1.0), 0.0)


def _asset_state(
    name: str,
    index: FloatArray,
    index_open: float,
    mark: FloatArray,
    catalyst: tuple[int, float] | None = None,
) -> _Asset:
    px = np.concatenate([[index_open], index])
    lp = np.log(px)
    # hourly returns (over the last 12 steps) per step: what a trader measures, free of the
    # book's tick-to-tick noise
    ret = np.zeros(px.size)
    ret[STEPS_PER_HOUR:] = (lp[STEPS_PER_HOUR:] - lp[:-STEPS_PER_HOUR]) / math.sqrt(STEPS_PER_HOUR)
    prem = np.concatenate([[0.0], mark / index - 1.0])
    n = px.size
    var_f, var_s, e1, e12, pr = (np.empty(n) for _ in range(5))
    a_f, a_s = 1 - 0.5 ** (1 / 288), 1 - 0.5 ** (1 / 2880)
    a1, a12, ap = 1 - math.exp(-1 / 12), 1 - math.exp(-1 / 144), 1 - 0.5 ** (1 / 864)
    vf = vs = 0.5**2 / _STEPS_PER_YEAR  # prior: 50% a year
    m1 = m12 = math.log(px[0])
    q = 0.0
    for i in range(n):  # EWMAs over points (a few thousand per month)
        r2 = ret[i] * ret[i]
        vf += a_f * (r2 - vf)
        vs += a_s * (r2 - vs)
        m1 += a1 * (lp[i] - m1)
        m12 += a12 * (lp[i] - m12)
        q += ap * (prem[i] - q)
        var_f[i], var_s[i], e1[i], e12[i], pr[i] = vf, vs, m1, m12, q
    hourly_sd = np.sqrt(var_s * STEPS_PER_HOUR * 12)
    mom = np.tanh((e1 - e12) / np.maximum(hourly_sd, 1e-9))
    # the carry of a forward: the funding a cash-and-carry earns, the playbook's formula on the
    # perpetual's average premium, annualised
    rate_8h = pr + np.clip(INTEREST_8H - pr, -CLAMP_8H, CLAMP_8H)
    carry = np.clip(rate_8h * 3 * 365, -0.3, 0.5)
    event_point, move = catalyst if catalyst is not None else (-1, 0.0)
    return _Asset(name, px, var_f, var_s, mom, carry, event_point, move * move)


def _long_var(a: _Asset, p: OptionsParams, point: npt.ArrayLike) -> FloatArray:
    """Annual variance long tenors price: the slow EWMA pulled to the asset's long-run level."""
    theta = p.long_run_vol[OPTIONS_ASSETS.index(a.name)] if a.name in OPTIONS_ASSETS else 0.6
    slow = a.var_slow[np.asarray(point)] * _STEPS_PER_YEAR
    return np.asarray(
        (1.0 - p.long_run_weight) * slow + p.long_run_weight * theta * theta, dtype=np.float64
    )


def _surface(
    a: _Asset, p: OptionsParams, point: IntArray, expiry_point: IntArray, strike: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(T in years, forward, index, IV) of options at ``point``s."""
    t = (expiry_point - point) / _STEPS_PER_YEAR
    s = a.px[point]
    fwd = s * np.exp(a.carry[point] * t)
    kt = p.kappa * t
    w = (1.0 - np.exp(-kt)) / kt
    var = w * a.var_fast[point] * _STEPS_PER_YEAR + (1.0 - w) * _long_var(a, p, point)
    if a.event_point >= 0:
        var = var + _event_var(a, point, expiry_point, t)
    atm = p.variance_premium * np.sqrt(var) + p.iv_add + p.term_premium * (1.0 - np.exp(-t / 0.25))
    z = np.log(strike / fwd) / (atm * np.sqrt(t))
    zc = np.clip(z, -3.0, 3.0)
    skew = p.skew - p.skew_momentum * a.mom[point]
    # the quadratic within 3 standard deviations, its tangent beyond (both wings keep rising)
    shape = 1.0 - skew * zc + p.smile * zc * zc + (z - zc) * (2.0 * p.smile * zc - skew)
    iv = np.clip(atm * shape, 0.05, 4.0 * atm)
    return t, fwd, s, iv


def _atm(a: _Asset, p: OptionsParams, point: int, expiry_point: int) -> tuple[float, float]:
    """(forward, ATM IV x sqrt(T)) of one expiry at one point: :func:`_surface` at the money."""
    t = (expiry_point - point) / _STEPS_PER_YEAR
    fwd = float(a.px[point]) * math.exp(float(a.carry[point]) * t)
    w = (1.0 - math.exp(-p.kappa * t)) / (p.kappa * t)
    theta = p.long_run_vol[OPTIONS_ASSETS.index(a.name)] if a.name in OPTIONS_ASSETS else 0.6
    slow = float(a.var_slow[point]) * _STEPS_PER_YEAR
    long_var = (1.0 - p.long_run_weight) * slow + p.long_run_weight * theta * theta
    var = w * float(a.var_fast[point]) * _STEPS_PER_YEAR + (1.0 - w) * long_var
    if point < a.event_point < expiry_point:  # :func:`_event_var`, one option at a time
        var += a.event_var / t
    atm = p.variance_premium * math.sqrt(var) + p.iv_add
    atm += p.term_premium * (1.0 - math.exp(-t / 0.25))
    return fwd, atm * math.sqrt(t)


class _Book:
    """Listed instruments, the traders' positions and what happened, for one asset."""

    def __init__(self) -> None:
        self.expiry_point: list[int] = []
        self.strike: list[float] = []
        self.call: list[bool] = []
        self.strikes: dict[int, list[float]] = {}  # expiry point -> sorted strikes
        self.ids: dict[tuple[int, float, bool], int] = {}
        self.long = np.zeros(0)
        self.short = np.zeros(0)
        self.vol24 = np.zeros(0)
        self.usd24 = np.zeros(0)
        # positions
        self.p_inst: list[int] = []
        self.p_side: list[int] = []
        self.p_qty: list[float] = []
        self.p_agent: list[int] = []
        self.p_block: list[bool] = []
        self.alive: list[int] = []  # ids of open positions
        # events: (point, offset_s, inst, side, qty, block, agent, pid, event) event 0 open 1 close
        self.trades: list[tuple[int, float, int, int, float, bool, int, int, int]] = []
        self.settled: list[tuple[int, int, int]] = []  # (point, pid, inst)
        self.settle_rows: list[tuple[int, int]] = []  # (point, inst)
        self.snap_point: list[IntArray] = []
        self.snap_inst: list[IntArray] = []
        self.snap_oi: list[FloatArray] = []
        self.snap_vol: list[FloatArray] = []
        self.snap_usd: list[FloatArray] = []

    def add(self, ep: int, k: float) -> None:
        strikes = self.strikes.setdefault(ep, [])
        i = bisect_left(strikes, k)
        if i < len(strikes) and strikes[i] == k:
            return
        strikes.insert(i, k)
        for call in (True, False):
            self.ids[(ep, k, call)] = len(self.strike)
            self.expiry_point.append(ep)
            self.strike.append(k)
            self.call.append(call)
        grow = len(self.strike) - self.long.size
        if grow > 0:
            pad = np.zeros(max(grow, 256))
            self.long, self.short = np.append(self.long, pad), np.append(self.short, pad)
            self.vol24, self.usd24 = np.append(self.vol24, pad), np.append(self.usd24, pad)


def _list(book: _Book, expiries: list[tuple[int, float]], spot: float, p: OptionsParams) -> None:
    """List each expiry's strike grid around ``spot``; extend a grid whose edge the index nears."""
    for ep, days in expiries:
        known = book.strikes.get(ep)
        if known and len(known) > 1:
            inner = 2.5 * (known[1] - known[0])
            if known[0] + inner <= spot <= known[-1] - inner:
                continue
        step = known[1] - known[0] if known and len(known) > 1 else _nice(spot * _step_share(days))
        centre = round(spot / step) * step
        for j in range(-p.strikes_each_side, p.strikes_each_side + 1):
            k = centre + j * step
            if k > 0 and (known is None or abs(j) <= 2):
                book.add(ep, round(k, 8))


def _lot(asset: str) -> float:
    """Smallest trade, contracts (Deribit: 0.1 BTC, 1 ETH)."""
    return 0.1 if asset == "BTC" else 1.0


def _simulate_asset(
    a: _Asset, start: datetime, hours: int, p: OptionsParams, rng: np.random.Generator
) -> _Book:
    book = _Book()
    scale = ASSET_SCALE.get(a.name, 0.5)
    cum_mix = np.cumsum(np.array(p.agent_mix) / sum(p.agent_mix))
    close_p = 1.0 - np.exp(-1.0 / np.array(p.hold_h))
    lot = _lot(a.name)
    cap = int(p.trades_per_hour * 4 * hours) + 1024
    p_inst = np.zeros(cap, dtype=np.int64)
    p_side = np.zeros(cap, dtype=np.int64)
    p_qty = np.zeros(cap)
    p_agent = np.zeros(cap, dtype=np.int64)
    p_ep = np.zeros(cap, dtype=np.int64)
    alive = np.zeros(cap, dtype=bool)
    n_pos = 0
    recent: deque[tuple[int, int, float, float]] = deque()  # (hour, inst, qty, USD): 24h sums
    fresh: list[tuple[int, int, float, float]] = []
    schedule: dict[tuple[date, bool], list[int]] = {}
    last_key: tuple[tuple[int, ...], int] = ((), -1)
    ids_live = np.zeros(0, dtype=np.int64)
    for h in range(hours):
        p0 = h * STEPS_PER_HOUR  # the hour's first point (its start)
        end_pt = p0 + STEPS_PER_HOUR
        now = start + timedelta(hours=h)
        key = (now.date(), now.hour >= _EXPIRY_HOUR)
        if key not in schedule:
            schedule[key] = [
                int((e - start) / timedelta(minutes=STEP_MINUTES)) for e in _expiries(now, p)
            ]
        live = schedule[key]
        _list(book, [(ep, (ep - p0) / (STEPS_PER_HOUR * 24)) for ep in live], float(a.px[p0]), p)
        # --- closes: positions open at the hour's start, each with its kind's hazard
        ids = np.flatnonzero(alive[:n_pos])
        if ids.size:
            go = (rng.random(ids.size) < close_p[p_agent[ids]]) & (p_ep[ids] > end_pt)
            closing = ids[go]
            pts = p0 + rng.integers(STEPS_PER_HOUR, size=closing.size)
            offs = rng.random(closing.size) * STEP_MINUTES * 60
            for pid, pt, off in zip(closing.tolist(), pts.tolist(), offs.tolist(), strict=True):
                inst, side, qty = int(p_inst[pid]), -int(p_side[pid]), float(p_qty[pid])
                book.trades.append((pt, off, inst, side, qty, bool(book.p_block[pid]),
                                    int(p_agent[pid]), pid, 1))  # fmt: skip
                (book.long if side < 0 else book.short)[inst] -= qty
                fresh.append((h, inst, qty, qty * lot * float(a.px[pt])))
            alive[closing] = False
        # --- new positions
        act = min(max(math.sqrt(float(a.var_fast[p0] / a.var_slow[p0])), 0.5), 3.0)
        n = int(rng.poisson(p.trades_per_hour * act * (0.6 + 0.4 * scale)))
        kinds = np.searchsorted(cum_mix, rng.random(n), side="right").clip(0, 3).tolist()
        pts = (p0 + rng.integers(STEPS_PER_HOUR, size=n)).tolist()
        offs = (rng.random(n) * STEP_MINUTES * 60).tolist()
        u = rng.random((n, 5)).tolist()  # Python floats: cheaper one at a time than numpy's
        g = rng.standard_normal((n, 2)).tolist()
        days = np.array([(ep - p0) / (STEPS_PER_HOUR * 24) for ep in live])
        cum_w = [
            np.cumsum(w / w.sum()).tolist()
            for w in (
                1.0 / np.sqrt(0.5 + days),  # directional: the front, less and less further out
                np.sqrt(days) * np.exp(-days / 60.0),  # hedgers: a week to two months
                np.exp(-days / 7.0),  # vol sellers: the front
                1.0 / np.sqrt(0.5 + days),  # noise
            )
        ]
        for j in range(n):
            kind, pt, uj = kinds[j], pts[j], u[j]
            ep = live[min(bisect_left(cum_w[kind], uj[0]), len(live) - 1)]
            fwd, sd = _atm(a, p, pt, ep)
            if kind == 0:  # directional, with the momentum
                bull = uj[1] < p.bull_base + 0.35 * float(a.mom[pt])
                buy = uj[2] < 0.7
                call = bull == buy
                z = 1.5 * uj[3] * (1 if call else -1)
                side = 1 if buy else -1
            elif kind == 1:  # hedgers buy puts
                call, z, side = False, -(0.5 + 1.5 * uj[3]), 1
            elif kind == 2:  # vol sellers sell wings, calls more (overwriting)
                call = bool(uj[2] < p.call_overwrite)
                z, side = (0.7 + 1.1 * uj[3]) * (1 if call else -1), -1
            else:
                call = bool(uj[2] < 0.5)
                z, side = g[j][1], 1 if uj[1] < 0.5 else -1
            target = fwd * math.exp(z * sd)
            strikes = book.strikes[ep]
            i = min(bisect_left(strikes, target), len(strikes) - 1)
            if i > 0 and target - strikes[i - 1] < strikes[i] - target:
                i -= 1
            inst = book.ids[(ep, strikes[i], bool(call))]
            block = bool(uj[4] < p.block_prob)
            med, sig = (
                (p.block_median_usd, p.block_sigma)
                if block
                else (p.median_notional_usd, p.notional_sigma)
            )
            usd = med * scale * math.exp(sig * g[j][0])
            qty = float(max(round(usd / float(a.px[pt]) / lot), 1))  # in lots: exact sums
            if n_pos == p_inst.size:  # grow the position arrays
                p_inst, p_side, p_qty, p_agent, p_ep, alive = (
                    np.concatenate([x, np.zeros_like(x)])
                    for x in (p_inst, p_side, p_qty, p_agent, p_ep, alive)
                )
            pid = n_pos
            n_pos += 1
            p_inst[pid], p_side[pid], p_qty[pid] = inst, side, qty
            p_agent[pid], p_ep[pid] = kind, ep
            alive[pid] = True
            book.p_block.append(block)
            book.trades.append((pt, offs[j], inst, side, qty, block, kind, pid, 0))
            (book.long if side > 0 else book.short)[inst] += qty
            fresh.append((h, inst, qty, qty * lot * float(a.px[pt])))
        # --- settlement at the hour's end
        if end_pt in live:
            settling = np.flatnonzero(alive[:n_pos] & (p_ep[:n_pos] == end_pt))
            for pid in settling.tolist():
                book.settled.append((end_pt, pid, int(p_inst[pid])))
            alive[settling] = False
            for k in book.strikes[end_pt]:
                for call in (True, False):
                    inst = book.ids[(end_pt, k, call)]
                    book.settle_rows.append((end_pt, inst))
                    book.long[inst] = book.short[inst] = 0.0
        # --- the 24h volume and the snapshot at the hour's end
        for _, inst, qty, usd in fresh:
            book.vol24[inst] += qty
            book.usd24[inst] += usd
        recent.extend(fresh)
        fresh.clear()
        while recent and recent[0][0] <= h - 24:  # older than the 24 hours ending now
            _, inst, qty, usd = recent.popleft()
            book.vol24[inst] -= qty
            book.usd24[inst] -= usd
        if (h + 1) % SNAPSHOT_H == 0:
            chain_key = (tuple(ep for ep in live if ep > end_pt), len(book.strike))
            if chain_key != last_key:
                ids_live = np.array(
                    [book.ids[(ep, k, c)] for ep in chain_key[0]
                     for k in book.strikes[ep] for c in (True, False)],
                    dtype=np.int64,
                )  # fmt: skip
                last_key = chain_key
            book.snap_point.append(np.full(ids_live.size, end_pt, dtype=np.int64))
            book.snap_inst.append(ids_live)
            oi = np.maximum(book.long[ids_live], book.short[ids_live])
            vol = book.vol24[ids_live]
            book.snap_oi.append(np.round(oi * lot, 6))
            book.snap_vol.append(np.round(vol * lot, 6))
            book.snap_usd.append(np.where(vol > 0, np.maximum(book.usd24[ids_live], 0.0), 0.0))
    book.p_inst = p_inst[:n_pos].tolist()
    book.p_side = p_side[:n_pos].tolist()
    book.p_qty = p_qty[:n_pos].tolist()
    book.p_agent = p_agent[:n_pos].tolist()
    return book


# ------------------------------------------------------------------------------ tables


def _names(asset: str, start: datetime, book: _Book) -> list[str]:
    out = []
    for ep, k, call in zip(book.expiry_point, book.strike, book.call, strict=True):
        day = (start + timedelta(minutes=STEP_MINUTES * ep)).date()
        out.append(f"{asset}-USD-{format_expiry(day)}-{k:f}".rstrip("0").rstrip(".") +
                   ("-C" if call else "-P"))  # fmt: skip
    return out


def _ts(start: datetime, minutes: npt.ArrayLike) -> pl.Series:
    base = np.datetime64(start.replace(tzinfo=None), "us")
    us = np.round(np.asarray(minutes, dtype=np.float64) * 60e6).astype(np.int64)
    return pl.Series(base + us.astype("timedelta64[us]")).dt.replace_time_zone("UTC")


def _asset_tables(
    a: _Asset, book: _Book, start: datetime, venue: str, p: OptionsParams
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    names = pl.Series(_names(a.name, start, book), dtype=pl.String)
    ep_all = np.array(book.expiry_point, dtype=np.int64)
    k_all = np.array(book.strike)
    call_all = np.array(book.call, dtype=bool)

    def quote(point: IntArray, inst: IntArray) -> dict[str, FloatArray]:
        t, fwd, s, iv = _surface(a, p, point, ep_all[inst], k_all[inst])
        q = _b76(fwd, k_all[inst], t, iv, call_all[inst])
        # half a spread: a vol point of vega, at least half a tick (0.0001 coin), at most half
        # the price
        tick = 1e-4 * fwd
        half = np.minimum(
            np.maximum(p.half_spread_vol * 100.0 * q["vega"], 0.5 * tick), 0.5 * q["price"]
        )
        return {**q, "t": t, "fwd": fwd, "s": s, "iv": iv, "half": half}

    # chain snapshots
    point = np.concatenate(book.snap_point) if book.snap_point else np.zeros(0, np.int64)
    inst = np.concatenate(book.snap_inst) if book.snap_inst else np.zeros(0, np.int64)
    q = quote(point, inst)
    ts = _ts(start, point * float(STEP_MINUTES))
    snap = pl.DataFrame(
        {
            "venue": venue,
            "instrument": names.gather(inst),
            "ts": ts,
            "quote_ts": ts,
            "underlying": a.name,
            "expiry_ts": _ts(start, ep_all[inst] * float(STEP_MINUTES)),
            "strike_px": k_all[inst],
            "option_type": np.where(call_all[inst], "C", "P"),
            "contract_size_base": 1.0,
            "open_interest_contracts": np.concatenate(book.snap_oi) if book.snap_oi else [],
            "volume_contracts": np.concatenate(book.snap_vol) if book.snap_vol else [],
            "volume_usd": np.concatenate(book.snap_usd) if book.snap_usd else [],
            "mark_price": q["price"] / q["fwd"],
            "price_currency": a.name,
            # a worthless far wing (price rounded to 0) has no quotes, as on Deribit
            "bid_price": _quoted((q["price"] - q["half"]) / q["fwd"], q["price"], q["fwd"]),
            "ask_price": _quoted((q["price"] + q["half"]) / q["fwd"], q["price"], q["fwd"]),
            "mark_iv": q["iv"],
            "underlying_px": q["fwd"],
            "index_px": q["s"],
            "delta": q["delta"],
            "gamma": q["gamma"],
            "vega": q["vega"],
            "theta": q["theta"],
        },
        strict=False,
    )
    # settlement rows: OI 0, the settlement price, the intrinsic value in coin
    sp = np.array([r[0] for r in book.settle_rows], dtype=np.int64)
    si = np.array([r[1] for r in book.settle_rows], dtype=np.int64)
    s_px = a.px[sp]
    intrinsic = np.where(call_all[si], np.maximum(s_px - k_all[si], 0.0),
                         np.maximum(k_all[si] - s_px, 0.0))  # fmt: skip
    sts = _ts(start, sp * float(STEP_MINUTES))
    settle = pl.DataFrame(
        {
            "venue": venue,
            "instrument": names.gather(si),
            "ts": sts,
            "quote_ts": sts,
            "underlying": a.name,
            "expiry_ts": sts,
            "strike_px": k_all[si],
            "option_type": np.where(call_all[si], "C", "P"),
            "contract_size_base": 1.0,
            "open_interest_contracts": 0.0,
            "mark_price": intrinsic / s_px,
            "price_currency": a.name,
            "underlying_px": s_px,
            "index_px": s_px,
        },
        strict=False,
    )
    # trades
    tr = book.trades
    t_point = np.array([x[0] for x in tr], dtype=np.int64)
    t_inst = np.array([x[2] for x in tr], dtype=np.int64)
    t_side = np.array([x[3] for x in tr], dtype=np.int64)
    t_qty = np.round(np.array([x[4] for x in tr], dtype=np.float64) * _lot(a.name), 6)
    tq = quote(t_point, t_inst)
    price_usd = tq["price"] + t_side * tq["half"]
    iv = _trade_iv(price_usd, tq, k_all[t_inst], call_all[t_inst])
    minutes = t_point * float(STEP_MINUTES) + np.array([x[1] for x in tr]) / 60.0
    trades = pl.DataFrame(
        {
            "venue": venue,
            "instrument": names.gather(t_inst),
            "ts": _ts(start, np.round(minutes * 60e3) / 60e3),
            "side": np.where(t_side > 0, "buy", "sell"),
            "price": price_usd / tq["fwd"],
            "price_currency": a.name,
            "qty_contracts": t_qty,
            "notional_usd": t_qty * tq["s"],
            "iv": iv,
            "index_px": tq["s"],
            "block": np.array([x[5] for x in tr], dtype=bool),
            "_agent": np.array([x[6] for x in tr], dtype=np.int64),
            "_pid": np.array([x[7] for x in tr], dtype=np.int64),
            "_event": np.array([x[8] for x in tr], dtype=np.int64),
        },
        strict=False,
    )
    # settled positions
    st_pid = np.array([x[1] for x in book.settled], dtype=np.int64)
    st_inst = np.array([x[2] for x in book.settled], dtype=np.int64)
    st_pt = np.array([x[0] for x in book.settled], dtype=np.int64)
    st_px = a.px[st_pt]
    st_val = np.where(call_all[st_inst], np.maximum(st_px - k_all[st_inst], 0.0),
                      np.maximum(k_all[st_inst] - st_px, 0.0)) / st_px  # fmt: skip
    settled = pl.DataFrame(
        {
            "venue": venue,
            "instrument": names.gather(st_inst),
            "ts": _ts(start, st_pt * float(STEP_MINUTES)),
            "position_id": st_pid,
            "event": "settled",
            "agent": np.array(OPTION_AGENTS)[np.array(book.p_agent, dtype=np.int64)[st_pid]]
            if st_pid.size
            else np.array([], dtype=str),
            "side": np.where(np.array(book.p_side, dtype=np.int64)[st_pid] > 0, "long", "short")
            if st_pid.size
            else np.array([], dtype=str),
            "qty_contracts": np.round(np.array(book.p_qty)[st_pid] * _lot(a.name), 6)
            if st_pid.size
            else np.zeros(0),
            "price": st_val,
            "trade_id": pl.Series([None] * st_pid.size, dtype=pl.String),
        },
        strict=False,
    )
    return pl.concat([snap, settle], how="diagonal_relaxed"), trades, settled


def _quoted(px: FloatArray, mark_usd: FloatArray, fwd: FloatArray) -> pl.Series:
    """``px`` where the option is worth at least 1e-10 of the coin, else null (no quote)."""
    worth = mark_usd > 1e-10 * fwd
    return pl.Series(np.where(worth, px, np.nan), dtype=pl.Float64, nan_to_null=True)


def _trade_iv(
    price_usd: FloatArray, q: dict[str, FloatArray], strike: FloatArray, call: npt.NDArray[np.bool_]
) -> FloatArray:
    """The volatility at which Black-76 gives each trade's price (Newton from the mark's IV)."""
    vol = q["iv"].copy()
    for _ in range(5):  # the first step lands within rounding of the answer for most trades
        g = _b76(q["fwd"], strike, q["t"], vol, call)
        step = (g["price"] - price_usd) / np.maximum(g["vega"] * 100.0, 1e-300)
        vol = np.clip(vol - step, 0.5 * q["iv"], 2.0 * q["iv"])
    return vol


def options_venue(venues: tuple[str, ...]) -> str:
    """The venue that lists the options: ``sim1`` when simulated, else the first venue."""
    return "sim1" if "sim1" in venues else venues[0]


def options_tables(
    assets: tuple[str, ...],
    venues: tuple[str, ...],
    start: datetime,
    seed: int,
    index_open: FloatArray,
    index_close: FloatArray,
    mark_close: FloatArray,
    params: OptionsParams | None = None,
    catalyst: tuple[int, float] | None = None,
) -> dict[str, pl.DataFrame]:
    """Run the options market on a run's index and mark paths.

    Args:
        assets: the run's assets in market order (options on those in :data:`OPTIONS_ASSETS`).
        venues: the run's venues in market order; the options venue is :func:`options_venue`.
        start: the run's start (UTC).
        seed: the run's seed (the options market draws from its own stream of it).
        index_open, index_close, mark_close: per-step series of shape ``(steps, markets)``,
            markets ordered asset-major as the engine's.
        params: behaviour (defaults: :class:`OptionsParams`).
        catalyst: a scheduled event the option market makers know of: (its point, the
            standard deviation of the log move they expect at it); every expiry after it
            carries that move's variance on top of the diffusion's (event variance: near
            tenors' IV rises most, the term structure inverts before the event).

    Returns:
        ``options_snapshot``, ``option_trades`` and ``sim_option_positions`` (empty dict when no
        asset has options).
    """
    p = params or OptionsParams()
    venue = options_venue(venues)
    vi = venues.index(venue)
    steps = index_close.shape[0]
    hours = steps // STEPS_PER_HOUR
    snaps, trades, settled = [], [], []
    for ai, name in enumerate(assets):
        if name not in OPTIONS_ASSETS:
            continue
        m = ai * len(venues) + vi
        a = _asset_state(
            name, index_close[:, m], float(index_open[0, m]), mark_close[:, m], catalyst
        )
        rng = np.random.default_rng([seed, 0x0915, OPTIONS_ASSETS.index(name)])
        book = _simulate_asset(a, start, hours, p, rng)
        s, t, st = _asset_tables(a, book, start, venue, p)
        snaps.append(s)
        trades.append(t)
        settled.append(st)
    if not snaps:
        return {}
    return _combine(snaps, trades, settled)


def _combine(
    snaps: list[pl.DataFrame], trades: list[pl.DataFrame], settled: list[pl.DataFrame]
) -> dict[str, pl.DataFrame]:
    """Number trades and positions across assets; the position events in the order they happened."""
    offset = 0
    t_parts, s_parts = [], []
    for t, st in zip(trades, settled, strict=True):
        t_parts.append(t.with_columns(pl.col("_pid") + offset))
        s_parts.append(st.with_columns(pl.col("position_id") + offset))
        n = int(t.filter(pl.col("_event") == 0).height)
        offset += n
    all_trades = pl.concat(t_parts).sort("ts", "_pid", "_event")
    all_trades = all_trades.with_columns(
        pl.format("sim-o-{}", pl.int_range(all_trades.height)).alias("trade_id")
    )
    opened = pl.col("_event") == 0
    events = all_trades.select(
        "venue", "instrument", "ts",
        pl.col("_pid").alias("position_id"),
        pl.when(opened).then(pl.lit("open")).otherwise(pl.lit("close")).alias("event"),
        pl.col("_agent").replace_strict(dict(enumerate(OPTION_AGENTS)), return_dtype=pl.String)
        .alias("agent"),
        pl.when((pl.col("side") == "buy") == opened).then(pl.lit("long"))
        .otherwise(pl.lit("short")).alias("side"),
        "qty_contracts", "price", "trade_id", pl.col("_event").alias("_order"),
    )  # fmt: skip
    settled_all = pl.concat(s_parts).with_columns(_order=pl.lit(2, pl.Int64))
    positions = pl.concat([events, settled_all], how="diagonal_relaxed").sort(
        "ts", "_order", "position_id"
    )
    positions = positions.with_columns(seq=pl.int_range(positions.height, dtype=pl.Int64)).select(
        "venue", "instrument", "ts", "position_id", "event", "seq", "agent", "side",
        "qty_contracts", "price", "trade_id",
    )  # fmt: skip
    return {
        "options_snapshot": pl.concat(snaps, how="diagonal_relaxed").sort(
            "ts", maintain_order=True
        ),
        "option_trades": all_trades.drop("_agent", "_pid", "_event"),
        "sim_option_positions": positions,
    }
