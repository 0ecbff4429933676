"""Random markets and strategies for the engine-vs-reference tests, and a flat-market builder."""

from __future__ import annotations

import numpy as np

from perpscope.backtest.types import EngineConfig, Market, Signals

HOUR_NS = 3_600_000_000_000


def flat_market(
    n: int,
    price: float = 100.0,
    mark: float | None = None,
    funding: list[tuple[float, float, float]] | None = None,
) -> Market:
    """``n`` hourly bars at a constant price; ``funding`` = (hour, rate, interval_h) settlements."""
    ts = np.arange(n, dtype=np.int64) * HOUR_NS
    p = np.full(n, price)
    mk = np.full(n, price if mark is None else mark)
    f = funding or []
    return Market(
        ts, p, p.copy(), p.copy(), p.copy(), mk, mk.copy(), mk.copy(), mk.copy(),
        np.zeros(n, np.bool_),
        np.array([int(x[0] * HOUR_NS) for x in f], np.int64),
        np.array([x[1] for x in f], np.float64),
        np.array([x[2] for x in f], np.float64),
        mark is None,
    )  # fmt: skip


def no_signals(n: int) -> Signals:
    """Signals that never trade (edit the arrays to place orders)."""
    return Signals(
        np.zeros(n, np.int8),
        np.zeros(n, np.bool_),
        np.full(n, np.nan),
        np.full((n, 3), np.nan),
        np.full(n, np.nan),
    )


def random_case(seed: int, n: int) -> tuple[Market, Signals, EngineConfig]:
    """A random market (gaps, mark offsets, funding at and between bar opens) and strategy."""
    rng = np.random.default_rng(seed)
    vol = rng.uniform(0.002, 0.05)
    ret = rng.normal(0, vol, n)
    if rng.random() < 0.3:  # occasional crashes and squeezes
        ret[rng.integers(0, n)] += rng.choice([-1, 1]) * rng.uniform(0.1, 0.4)
    c = 100.0 * np.exp(np.cumsum(ret))
    gap = rng.random(n) < 0.1
    o = np.where(gap, c * np.exp(rng.normal(0, vol, n)), np.r_[100.0, c[:-1]])
    h = np.maximum(o, c) * (1 + rng.exponential(vol / 2, n))
    lo = np.minimum(o, c) * (1 - rng.exponential(vol / 2, n))
    if rng.random() < 0.5:  # a price grid makes exact touches (ties) common
        tick = rng.choice([0.01, 0.5, 1.0])
        o, h, lo, c = (np.round(x / tick) * tick for x in (o, h, lo, c))
        lo = np.maximum(lo, tick)
        o, c = np.clip(o, lo, h), np.clip(c, lo, h)
    if rng.random() < 0.5:
        mark = 1 + rng.normal(0, vol / 4, n)
        mo, mc = o * mark, c * mark
        mh = np.maximum(np.maximum(mo, mc), h * mark)
        ml = np.minimum(np.minimum(mo, mc), lo * mark)
        is_trade = False
    else:
        mo, mh, ml, mc = o, h, lo, c
        is_trade = True
    step = int(rng.choice([1, 2, 4]))
    ts = np.arange(n, dtype=np.int64) * HOUR_NS * step
    cand = np.arange(-2, n * step + 2, dtype=np.int64) * HOUR_NS
    if rng.random() < 0.3:
        cand = cand + HOUR_NS // 2  # settlements strictly inside bars
    fts = np.sort(rng.choice(cand, size=min(len(cand), rng.integers(0, n + 3)), replace=False))
    frate = rng.normal(0, 0.002, len(fts))
    market = Market(
        ts, o, h, lo, c, mo, mh, ml, mc, rng.random(n) < 0.2,
        fts, frate, np.full(len(fts), 8.0), is_trade,
    )  # fmt: skip
    entry = (rng.choice([-1, 0, 1], n, p=[0.15, 0.7, 0.15])).astype(np.int8)
    stop = rng.uniform(0.002, 0.3, n)
    stop[rng.random(n) < 0.05] = np.nan
    targets = np.sort(rng.uniform(0.3, 5.0, (n, 3)), axis=1)
    targets[rng.random((n, 3)) < 0.2] = np.nan
    limit = np.where(rng.random(n) < 0.3, c * (1 - entry * rng.uniform(-0.01, 0.03, n)), np.nan)
    size = None
    srng = np.random.default_rng([seed, 1])  # its own stream: the other draws stay as they were
    if srng.random() < 0.5:  # size multiples: skip (0), half, full, more
        size = srng.choice([0.0, 0.5, 1.0, 1.7], n)
    exit_side = None
    if srng.random() < 0.5:  # side-specific exits
        exit_side = srng.choice(np.array([-1, 0, 0, 0, 1], np.int8), n)
    signals = Signals(entry, rng.random(n) < 0.05, stop, targets, limit, size, exit_side)
    fr = rng.dirichlet([1, 1, 1])
    leverage = float(rng.choice([1.0, 2.0, 5.0, 10.0, 25.0, 100.0]))
    config = EngineConfig(
        initial_equity=float(rng.uniform(1e3, 1e6)),
        risk_frac=float(rng.uniform(0.001, 0.2)),
        leverage=leverage,
        mmr=float(rng.uniform(0.0, min(0.02, 0.5 / leverage))),
        taker_fee=float(rng.uniform(0, 0.001)),
        maker_fee=float(rng.uniform(0, 0.0005)),
        slippage=float(rng.uniform(0, 0.002)),
        cascade_slippage=float(rng.uniform(0, 0.01)),
        scale_out=(float(fr[0]), float(fr[1]), float(1.0 - fr[0] - fr[1])),
        breakeven_after_t1=bool(rng.random() < 0.7),
        time_stop_bars=int(rng.choice([0, 0, 3, 24])),
    )
    return market, signals, config
