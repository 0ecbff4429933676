"""The engine's numba kernels against the numpy expressions they replaced.

Each kernel must give exactly (bit for bit) what the numpy code gave on the same inputs: the
simulator's output for a seed did not change when they came in. The inputs are a random book of
open and closed positions across a few markets, with prices chosen so that every branch is taken
(long and short, crossed and not, take-profit and stop, no liquidation price).
"""

from __future__ import annotations

import numpy as np
import pytest

from perpscope.sim._kernels import (
    add_orders,
    add_orders_reference,
    add_volume,
    bar_close,
    bar_close_reference,
    bar_open,
    bar_open_reference,
    close_fills,
    close_fills_reference,
    close_orders,
    close_reference,
    crossed_positions,
    crossed_reference,
    draw_positions,
    draw_reference,
    drop_ids,
    drop_ids_reference,
    due_positions,
    due_reference,
    erfc,
    erfc_reference,
    feed_reference,
    feed_response,
    house_reference,
    house_update,
    liq_px_kernel,
    liq_px_reference,
    long_prob,
    long_prob_reference,
    long_share,
    long_share_reference,
    mark_hit,
    mark_hit_reference,
    mark_kernel,
    open_fields,
    open_fields_reference,
    open_fills,
    open_fills_reference,
    open_move,
    open_move_reference,
    pay_funding,
    pay_funding_reference,
    premium_reference,
    premium_update,
    recentre,
    recentre_reference,
    requote_px,
    requote_px_reference,
    review_positions,
    review_reference,
    snap_back,
    snap_back_reference,
    spot_orders,
    spot_orders_reference,
    spot_reference,
    spot_update,
    step_end,
    step_end_reference,
    step_moods,
    step_moods_reference,
    step_news,
    step_news_reference,
    still_open,
    still_open_reference,
    thresholds_kernel,
    thresholds_reference,
    track_levels,
    track_reference,
    volume_reference,
)
from perpscope.sim.market import mark_price
from perpscope.sim.positions import (
    _CAPS,
    _CUMS,
    _HI,
    _LO,
    _MAXLEV,
    _MMRS,
    liquidation_px_many,
    max_leverage_many,
    position_liquidation_px,
)

N_M = 5


def _book(seed: int, n: int = 4000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    market = rng.integers(0, N_M, n)
    side = np.where(rng.random(n) < 0.5, 1, -1)
    entry = 100.0 * np.exp(rng.normal(0.0, 0.05, n))
    lev = rng.choice([2.0, 5.0, 10.0, 25.0, 50.0], n)
    liq = np.where(rng.random(n) < 0.05, 0.0, entry * (1.0 - side * 0.9 / lev))
    alive = rng.random(n) < 0.6
    return {
        "open_idx": np.flatnonzero(alive),
        "alive": alive,
        "market": market,
        "side": side,
        "entry": entry,
        "leverage": lev,
        "liq": liq,
        "tp": entry * (1.0 + side * rng.uniform(0.0, 0.05, n)),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_thresholds_kernel_equals_numpy_max_and_min_at(seed: int) -> None:
    b = _book(seed)
    args = (b["open_idx"], b["market"], b["side"], b["liq"], N_M)
    hi, lo = thresholds_kernel(*args)
    hi_ref, lo_ref = thresholds_reference(*args)
    assert np.array_equal(hi, hi_ref)
    assert np.array_equal(lo, lo_ref)
    assert (hi > 0).all()
    assert np.isfinite(lo).all()


def test_thresholds_kernel_of_an_empty_market_is_zero_and_inf() -> None:
    hi, lo = thresholds_kernel(
        np.array([0, 1]), np.array([0, 0]), np.array([1, -1]), np.array([90.0, 0.0]), 2
    )
    # position 1 is a short without a liquidation price (0): market 0 has no short threshold
    assert hi.tolist() == [90.0, 0.0]
    assert lo.tolist() == [np.inf, np.inf]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_crossed_positions_equal_numpy_mask(seed: int) -> None:
    b = _book(seed)
    rng = np.random.default_rng(seed + 10)
    mark = 100.0 * np.exp(rng.normal(0.0, 0.08, N_M))
    hit = np.array([True, True, False, True, True])
    args = (b["open_idx"], b["market"], b["side"], b["liq"], mark, hit)
    got = crossed_positions(*args)
    assert np.array_equal(got, crossed_reference(*args))
    assert got.size > 0
    assert not np.isin(b["market"][got], [2]).any()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_review_positions_equal_numpy_take_profit_and_stop(seed: int) -> None:
    b = _book(seed)
    mid = 100.0 * np.exp(np.random.default_rng(seed).normal(0.0, 0.03, N_M))
    args = (b["open_idx"], b["market"], b["side"], b["tp"], b["entry"], b["leverage"], mid, 0.6)
    got = review_positions(*args)
    assert np.array_equal(got, review_reference(*args))
    assert 0 < got.size < b["open_idx"].size


def test_still_open_keeps_the_alive_ids_in_order() -> None:
    b = _book(4)
    alive = b["alive"].copy()
    alive[b["open_idx"][::3]] = False
    got = still_open(b["open_idx"], alive)
    assert np.array_equal(got, still_open_reference(b["open_idx"], alive))
    assert (np.diff(got) > 0).all()


@pytest.mark.parametrize("seed", [1, 2])
def test_mark_kernel_equals_mark_price(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 1000
    index = 100.0 * np.exp(rng.normal(0.0, 0.01, n))
    last = index * np.exp(rng.normal(0.0, 0.003, n))
    args = (index, last, rng.normal(0.0, 0.002, n), rng.normal(0.0, 0.001, n), rng.random(n))
    got = mark_kernel(*args)
    assert np.array_equal(got, mark_price(*args))
    # each of the three prices is the median somewhere
    assert 0 < (got == last).sum() < n


def test_mark_kernel_golden_median() -> None:
    # the market-formula test's numbers: p1 = 100.05, p2 = 100.2, last 90 -> 100.05
    m = mark_kernel(
        np.array([100.0]), np.array([90.0]), np.array([0.002]), np.array([0.001]), np.array([0.5])
    )
    assert m[0] == pytest.approx(100.05, abs=1e-12)


@pytest.mark.parametrize("seed", [1, 2])
def test_liq_px_kernel_equals_the_numpy_tier_search(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    side = np.where(rng.random(n) < 0.5, 1, -1)
    entry = 100.0 * np.exp(rng.normal(0.0, 0.1, n))
    qty = np.exp(rng.uniform(np.log(1.0), np.log(3e6), n)) / entry  # $1 to $3M notional
    lev = rng.choice([1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0], n)
    args = (side, entry, qty, lev, _CUMS, _MMRS, _LO, _HI)
    px, bad = liq_px_kernel(*args)
    px_ref, bad_ref = liq_px_reference(*args)
    assert np.array_equal(bad, bad_ref)
    assert np.array_equal(px, px_ref)


def test_liquidation_px_many_matches_the_risk_module_one_by_one() -> None:
    rng = np.random.default_rng(5)
    n = 200
    side = np.where(rng.random(n) < 0.5, 1, -1)
    entry = 100.0 * np.exp(rng.normal(0.0, 0.1, n))
    qty = np.exp(rng.uniform(np.log(10.0), np.log(3e7), n)) / entry
    # capped at the tier's maximum, as the book does before pricing
    lev = np.minimum(rng.choice([1.0, 3.0, 10.0, 20.0], n), max_leverage_many(qty * entry))
    got = liquidation_px_many(side, entry, qty, lev)
    want = [
        position_liquidation_px(int(s), float(e), float(q), float(lv))
        for s, e, q, lv in zip(side, entry, qty, lev, strict=True)
    ]
    assert got == pytest.approx(want, rel=1e-12, abs=1e-9)


def test_due_positions_are_the_open_ones_booked_for_the_step() -> None:
    b = _book(6)
    close_step = np.random.default_rng(6).integers(0, 20, b["market"].size)
    got = due_positions(b["open_idx"], close_step, 7)
    assert np.array_equal(got, due_reference(b["open_idx"], close_step, 7))
    assert (close_step[got] == 7).all()
    assert b["alive"][got].all()


def test_house_update_golden_cases() -> None:
    # market 0: flat, buys 2 at 100 -> long 2 at 100, funding reset
    # market 1: long 2 at 100, buys 2 at 110 -> long 4 at (2x100 + 2x110) / 4 = 105
    # market 2: long 2 at 100, sells 1 at 120 -> long 1, entry and funding kept
    # market 3: long 2 at 100, sells 2 -> flat: entry 0, funding 0
    # market 4: long 2 at 100, sells 3 at 90 -> short 1 at 90 (a flip), funding reset
    q0 = np.array([0.0, 2.0, 2.0, 2.0, 2.0])
    e0 = np.array([0.0, 100.0, 100.0, 100.0, 100.0])
    f0 = np.full(5, 7.0)
    dq = np.array([2.0, 2.0, -1.0, -2.0, -3.0])
    px = np.array([100.0, 110.0, 120.0, 130.0, 90.0])
    q, e, f = house_update(q0, e0, f0, dq, px)
    assert q.tolist() == [2.0, 4.0, 1.0, 0.0, -1.0]
    assert e.tolist() == [100.0, 105.0, 100.0, 0.0, 90.0]
    assert f.tolist() == [0.0, 7.0, 7.0, 0.0, 0.0]


@pytest.mark.parametrize("seed", [1, 2])
def test_house_update_equals_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 2000
    q0 = np.where(rng.random(n) < 0.1, 0.0, rng.normal(0.0, 5.0, n))
    dq = np.where(rng.random(n) < 0.1, -q0, rng.normal(0.0, 5.0, n))
    args = (q0, rng.uniform(50, 150, n), rng.normal(0, 1, n), dq, rng.uniform(50, 150, n))
    got = house_update(*args)
    want = house_reference(*args)
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, w)


def test_add_volume_equals_bincount() -> None:
    rng = np.random.default_rng(3)
    mk = rng.integers(0, N_M, 500)
    q = rng.normal(0.0, 1.0, 500)
    buy, sell = np.ones(N_M), np.ones(N_M)
    buy_ref, sell_ref = buy.copy(), sell.copy()
    add_volume(buy, sell, mk, q)
    volume_reference(buy_ref, sell_ref, mk, q)
    assert np.array_equal(buy, buy_ref)
    assert np.array_equal(sell, sell_ref)
    assert buy.sum() - N_M == pytest.approx(q[q > 0].sum())


@pytest.mark.parametrize("n_v", [1, 2, 3])
def test_spot_update_equals_numpy(n_v: int) -> None:
    rng = np.random.default_rng(n_v)
    n = 3 * n_v
    spot = 100.0 * np.exp(rng.normal(0.0, 0.01, n))
    usd = rng.normal(0.0, 1e6, n)
    depth = np.full(n, 1e9)
    vol, vol_ref = np.zeros(n), np.zeros(n)
    new, index = spot_update(spot, usd, depth, 0.3, n_v, vol)
    new_ref, index_ref = spot_reference(spot, usd, depth, 0.3, n_v, vol_ref)
    # numba's exp and log are the C library's; numpy's may be its own SIMD code on some CPUs,
    # so a last-place difference is allowed (on the machine the simulator was tuned on they
    # agree exactly)
    np.testing.assert_allclose(new, new_ref, rtol=1e-14)
    np.testing.assert_allclose(index, index_ref, rtol=1e-14)
    np.testing.assert_allclose(vol, vol_ref, rtol=1e-12, atol=1e-12)
    # the index is the mean of the asset's spot prices across venues
    assert index[0] == pytest.approx(new[:n_v].mean(), rel=1e-15)


@pytest.mark.parametrize("perp_only", [False, True])
def test_track_levels_equals_numpy_max_and_min(perp_only: bool) -> None:
    rng = np.random.default_rng(8)
    n = 400
    index = 100.0 * np.exp(rng.normal(0.0, 0.01, n))
    args = (
        index * np.exp(rng.normal(0.0, 0.003, n)),  # mid
        index,
        index * np.exp(rng.normal(0.0, 0.001, n)),  # spot
        rng.normal(0.0, 0.002, n),
        rng.normal(0.0, 0.001, n),
        rng.random(n),
    )
    start = 100.0 * np.exp(rng.normal(0.0, 0.01, (4, n)))
    hi, lo = start.copy(), start.copy()
    hi_ref, lo_ref = start.copy(), start.copy()
    track_levels(hi, lo, *args, perp_only)
    track_reference(hi_ref, lo_ref, *args, perp_only)
    assert np.array_equal(hi, hi_ref)
    assert np.array_equal(lo, lo_ref)
    moved = (hi != start).any(axis=1)
    assert moved.tolist() == ([True, False, False, False] if perp_only else [True] * 4)


def test_premium_update_equals_numpy_and_the_funding_formula() -> None:
    rng = np.random.default_rng(9)
    n = 600
    index = 100.0 * np.exp(rng.normal(0.0, 0.01, n))
    # premiums from -0.5% to +0.5%: inside the clamp, beyond it, and beyond the venue's cap
    mid = index * (1.0 + rng.uniform(-0.005, 0.005, n))
    ih = rng.choice([1.0, 4.0, 8.0], n)
    state = [rng.normal(0.0, 0.001, n), rng.normal(0.0, 0.01, n), rng.integers(0, 90, n) * 1.0]
    ref = [x.copy() for x in state]
    out, out_ref = np.zeros((2, n)), np.zeros((2, n))
    premium_update(mid, index, *state, ih, out[0], out[1])
    premium_reference(mid, index, *ref, ih, out_ref[0], out_ref[1])
    for got, want in zip([*state, out], [*ref, out_ref], strict=True):
        assert np.array_equal(got, want)
    # the accrual is at the venue's cap (+-0.3% per 8h, scaled) somewhere, and at the baseline
    # (0.01% per 8h) somewhere
    assert np.isclose(np.abs(out[1]), 0.003 * ih / 8.0).any()
    assert np.isclose(out[1], 0.0001 * ih / 8.0).any()


@pytest.mark.parametrize("n_v", [1, 3])
def test_feed_response_equals_numpy(n_v: int) -> None:
    rng = np.random.default_rng(10 + n_v)
    n_a = 50
    n = n_a * n_v
    # a quarter of the markets had no forced orders this step
    forced = np.where(rng.random(n) < 0.25, 0.0, rng.normal(0.0, 5e6, n))
    state = [rng.normal(0.0, 1e6, n_a), rng.normal(0.0, 1e6, n_a), rng.uniform(0, 3e7, n_a)]
    ref = [x.copy() for x in state]
    index = 100.0 * np.exp(rng.normal(0.0, 0.01, n))
    ema = np.log(index[::n_v]) + rng.normal(0.0, 0.01, n_a)
    rest = (np.repeat(rng.uniform(0.5, 2.0, n_a), n_v), index, ema, np.full(n, 1e9), n_v,
            np.array([0.5, 0.2, 36.0, 0.9, 2e6, 5.0, 0.005, 0.3, 0.8]))  # fmt: skip
    got = feed_response(forced, *state, *rest)
    want = feed_reference(forced, *ref, *rest)
    for g, w in zip([*got, *state], [*want, *ref], strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-9)  # log: see test_spot_orders
    hot = got[1]
    assert ((hot > 0) & (hot < 1)).any()
    assert (hot == 1.0).any()


def test_draw_positions_equals_numpy() -> None:
    rng = np.random.default_rng(12)
    n = 5000
    u = rng.random((n, 6))
    u[:, [1, 5]] = rng.standard_normal((n, 2))
    mkts = rng.integers(0, N_M, n)
    args = (
        u,
        rng.uniform(0.02, 0.98, n),
        rng.uniform(0.5, 2.0, N_M),
        mkts,
        np.array([np.log(5e3), 1.2, 50 * 5e3, 48 * 12.0, 10.0, np.log(0.5)]),
        np.array([5.0, 10.0, 20.0, 25.0, 50.0, 75.0, 100.0]),
        np.array([0.2, 0.5, 0.7, 0.8, 0.9, 0.95]),
        np.array([0.3, 0.6]),
    )
    got = draw_positions(*args)
    want = draw_reference(*args)
    for g, w in zip(got, want, strict=True):
        assert g.dtype.kind == w.dtype.kind
    # side, leverage and kind are picks (no arithmetic) and the holding time a truncated
    # integer: equal. The notional and the take-profit go through exp, which is the C
    # library's in numba and numpy's own in the reference: they agree within 1 ulp (numpy
    # 2.4.6; the bits differ on some inputs), and the notional's product with the market scale
    # can round that to 2.
    for k in (0, 2, 3, 4):
        np.testing.assert_array_equal(got[k], want[k])
    np.testing.assert_array_max_ulp(got[1], want[1], maxulp=2)
    np.testing.assert_array_max_ulp(got[5], want[5], maxulp=1)
    side, _, lev, kinds, hold, _ = got
    assert set(side.tolist()) == {-1, 1}
    assert set(kinds.tolist()) == {0, 1, 2}
    assert len(set(lev.tolist())) == 7
    assert hold.min() >= 1


def test_close_orders_equal_bincount() -> None:
    b = _book(13)
    qty = np.random.default_rng(13).uniform(0.1, 2.0, b["market"].size)
    mid = np.linspace(90.0, 110.0, N_M)
    ids = b["open_idx"][::2]
    got = close_orders(ids, b["market"], b["side"], qty, mid, N_M)
    assert np.array_equal(got, close_reference(ids, b["market"], b["side"], qty, mid, N_M))
    # closing a long is a sell: one long of 1 in market 2 at 100 is an order of -$100
    one = close_orders(np.array([0]), np.array([2]), np.array([1]), np.array([1.0]),
                       np.full(N_M, 100.0), N_M)  # fmt: skip
    assert one.tolist() == [0.0, 0.0, -100.0, 0.0, 0.0]


@pytest.mark.parametrize("n_v", [1, 3])
def test_spot_orders_equal_numpy(n_v: int) -> None:
    rng = np.random.default_rng(20 + n_v)
    n_a = 40
    n = n_a * n_v
    index = 100.0 * np.exp(rng.normal(0.0, 0.01, n))
    args = (
        index * np.exp(rng.normal(0.0, 0.001, n)),  # spot
        index,
        rng.normal(0.0, 0.002, n_a),  # news as traded
        np.log(index[::n_v]) + rng.normal(0.0, 0.005, n_a),  # fundamental
        rng.uniform(0.5, 2.0, n_a),  # activity
        rng.uniform(-1.0, 1.0, n_a),  # trend signal
        np.log(index[::n_v]) + rng.normal(0.0, 0.01, n_a),  # the last hour's average
        rng.standard_normal(n),
        np.full(n, 2e9),
        np.repeat(rng.uniform(0.5, 2.0, n_a), n_v),
        -3e6,  # a scheduled seller
        n_v,
        np.array([0.05, 2e5, 1e5, 0.005, 0.3, 2e9]),
    )
    got = spot_orders(*args)
    # equal on the machine the simulator is tuned on; the C library's log against numpy's own
    # SIMD code (other CPUs) may differ by an ulp, which a difference of logs magnifies
    np.testing.assert_allclose(got, spot_orders_reference(*args), rtol=1e-12, atol=1e-6)
    assert (got > 0).any()
    assert (got < 0).any()


def test_erfc_equals_math_erfc_bit_for_bit() -> None:
    # the options market's normal CDF: the compiled loop calls the same C library function as
    # math.erfc, so every value is identical, at 0, in both tails (erfc(-6) = 2 to rounding,
    # erfc(27) underflows to a subnormal, erfc(40) to 0), at the infinities and through NaN
    rng = np.random.default_rng(11)
    x = np.concatenate(
        [
            np.linspace(-6.0, 40.0, 10_001),
            rng.uniform(0.0, 8.0, 100_000),
            rng.exponential(1.0, 100_000),
            [0.0, -0.0, 27.0, np.inf, -np.inf, np.nan],
        ]
    )
    got, want = erfc(x), erfc_reference(x)
    np.testing.assert_array_equal(got, want)
    assert got[-4] > 0.0  # erfc(27): a subnormal, not yet 0
    assert (got[-3], got[-2]) == (0.0, 2.0)
    assert np.isnan(got[-1])


def test_drop_ids_removes_the_closed_ids_in_place_in_order() -> None:
    b = _book(14)
    rng = np.random.default_rng(14)
    open_idx = b["open_idx"]
    n = open_idx.size
    ids = rng.permutation(open_idx)[:700]  # in no order
    ids = np.concatenate([ids, ids[:5], [b["market"].size + 3]])  # repeats, one never open
    alive = b["alive"].copy()
    alive[ids[:-1]] = False
    cases = [ids, open_idx, open_idx[:1], open_idx[-1:], open_idx[[0, 1, 5, -2, -1]]]
    for gone in [*cases, np.zeros(0, np.int64)]:
        buf = np.append(open_idx, [-7, -7])  # room past the end is left alone
        ref = buf.copy()
        k = drop_ids(buf, n, gone)
        assert k == drop_ids_reference(ref, n, gone)
        assert np.array_equal(buf[:k], ref[:k])
        assert (buf[-2:] == -7).all()
    buf = open_idx.copy()
    assert np.array_equal(buf[: drop_ids(buf, n, ids)], still_open(open_idx, alive))


@pytest.mark.parametrize("seed", [1, 2])
def test_open_fields_equal_the_tier_cap_the_tier_search_and_the_take_profit(seed: int) -> None:
    rng = np.random.default_rng(30 + seed)
    n = 3000
    side = np.where(rng.random(n) < 0.5, 1, -1)
    entry = 100.0 * np.exp(rng.normal(0.0, 0.1, n))
    qty = np.exp(rng.uniform(np.log(1.0), np.log(3e8), n)) / entry  # $1 to $300M notional
    lev = rng.choice([1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 125.0], n)
    roe = rng.uniform(0.05, 3.0, n)
    args = (side, entry, qty, lev, roe, _CAPS, _MAXLEV, _CUMS, _MMRS, _LO, _HI)
    got = open_fields(*args)
    for g, w in zip(got, open_fields_reference(*args), strict=True):
        assert np.array_equal(g, w)
    assert np.array_equal(got[0], np.minimum(lev, max_leverage_many(qty * entry)))
    assert (got[0] < lev).any()  # some leverages were capped
    assert (got[3] < 0).any()  # a short's take-profit below zero (floored by the book)


@pytest.mark.parametrize("seed", [1, 2])
def test_mark_hit_equals_mark_price_and_the_threshold_test(seed: int) -> None:
    rng = np.random.default_rng(40 + seed)
    n = 200
    index = 100.0 * np.exp(rng.normal(0.0, 0.01, n))
    prices = (index, index * np.exp(rng.normal(0.0, 0.003, n)), rng.normal(0.0, 0.002, n),
              rng.normal(0.0, 0.001, n), rng.random(n))  # fmt: skip
    far_long, far_short = np.full(n, 50.0), np.full(n, np.inf)
    for k in (None, 7, 150):
        thr_long, thr_short = far_long.copy(), far_short.copy()
        if k is not None:  # one market's mark at a threshold, long or short
            mark = mark_price(*prices)
            (thr_long if k % 2 else thr_short)[k] = mark[k]
        mark, hit = mark_hit(*prices, thr_long, thr_short)
        mark_ref, hit_ref = mark_hit_reference(*prices, thr_long, thr_short)
        assert np.array_equal(mark, mark_ref)
        assert hit == hit_ref == (k is not None)


def test_bar_open_and_close_equal_the_row_writes() -> None:
    rng = np.random.default_rng(15)
    n, steps, t = 30, 4, 2
    index = 100.0 * np.exp(rng.normal(0.0, 0.01, n))

    def prices() -> tuple[np.ndarray, ...]:
        return (index * np.exp(rng.normal(0.0, 0.003, n)), index,
                index * np.exp(rng.normal(0.0, 0.001, n)), rng.normal(0.0, 0.002, n),
                rng.normal(0.0, 0.001, n), rng.random(n))  # fmt: skip

    ohlc, hi, lo = np.zeros((16, steps, n)), np.zeros((4, n)), np.zeros((4, n))
    ohlc_ref, hi_ref, lo_ref = ohlc.copy(), hi.copy(), lo.copy()
    start = prices()
    bar_open(ohlc, t, hi, lo, *start)
    bar_open_reference(ohlc_ref, t, hi_ref, lo_ref, *start)
    assert np.array_equal(ohlc, ohlc_ref)
    assert np.array_equal(hi, hi_ref)
    assert np.array_equal(lo, lo_ref)
    move = prices()
    track_levels(hi, lo, *move, False)
    track_levels(hi_ref, lo_ref, *move, False)
    end = prices()
    bar_close(ohlc, t, hi, lo, *end)
    bar_close_reference(ohlc_ref, t, hi_ref, lo_ref, *end)
    assert np.array_equal(ohlc, ohlc_ref)
    assert (ohlc[:, t] != 0).all()
    assert not ohlc[:, [0, 1, 3]].any()  # only step t written


def test_close_fills_equal_the_gathers_and_bincounts() -> None:
    b = _book(16)
    rng = np.random.default_rng(16)
    qty = rng.uniform(0.1, 2.0, b["market"].size)
    fill = np.linspace(90.0, 110.0, N_M)
    ids = b["open_idx"][::3]
    rows = [rng.uniform(0.0, 5.0, N_M) for _ in range(3)]  # buy, sell, the maker's dq
    rows_ref = [r.copy() for r in rows]
    px = close_fills(ids, b["market"], b["side"], qty, fill, *rows)
    px_ref = close_fills_reference(ids, b["market"], b["side"], qty, fill, *rows_ref)
    assert np.array_equal(px, px_ref)
    for g, w in zip(rows, rows_ref, strict=True):
        assert np.array_equal(g, w)


def test_open_fills_equal_ufunc_at_and_bincounts() -> None:
    rng = np.random.default_rng(17)
    n = 800
    mkts = rng.integers(0, N_M, n)
    side = np.where(rng.random(n) < 0.5, 1, -1)
    qty = rng.uniform(0.1, 2.0, n)
    liq = np.where(rng.random(n) < 0.1, 0.0, rng.uniform(50.0, 150.0, n))
    state = [np.full(N_M, 60.0), np.full(N_M, 140.0), *(rng.uniform(0.0, 5.0, N_M) for _ in "bsd")]
    state[1][0] = np.inf  # a market with no short liquidation price yet
    ref = [x.copy() for x in state]
    open_fills(mkts, side, qty, liq, *state)
    open_fills_reference(mkts, side, qty, liq, *ref)
    for g, w in zip(state, ref, strict=True):
        assert np.array_equal(g, w)
    assert (state[0] > 60.0).all()
    assert (state[1] < 140.0).all()


@pytest.mark.parametrize("drift", [0.0, 1e-5])
def test_step_news_equals_numpy(drift: float) -> None:
    rng = np.random.default_rng(18)
    n_a = 50
    state = [rng.uniform(1e-4, 2e-3, n_a), np.ones(n_a), np.log(rng.uniform(50.0, 150.0, n_a))]
    ref = [x.copy() for x in state]
    last_ret, news = rng.normal(0.0, 1e-3, n_a), rng.normal(0.0, 1e-3, n_a)
    ema = (np.log(rng.uniform(50.0, 150.0, n_a)), np.log(rng.uniform(50.0, 150.0, n_a)))
    abs_ret, activity, fund = state
    got = step_news(last_ret, abs_ret, activity, 1.3, fund, news, -2e-4, drift, *ema)
    abs_ret, activity, fund = ref
    want = step_news_reference(last_ret, abs_ret, activity, 1.3, fund, news, -2e-4, drift, *ema)
    assert np.array_equal(got, want)
    for g, w in zip(state, ref, strict=True):
        assert np.array_equal(g, w)


def test_step_moods_equal_numpy() -> None:
    rng = np.random.default_rng(19)
    n_a, n = 50, 150
    state = [rng.normal(0.0, 1.0, n_a), rng.normal(0.0, 1e-3, n), rng.uniform(0.2, 1.0, n)]
    ref = [x.copy() for x in state]
    mom, kick = np.tanh(rng.normal(0.0, 1.0, n_a)), rng.normal(0.0, 0.05, n_a)
    quote_kick = rng.normal(0.0, 1e-4, n)
    sent, qn, depth = state
    step_moods(sent, 0.99, 0.004, mom, kick, qn, 0.9, quote_kick, depth, 0.05)
    sent, qn, depth = ref
    step_moods_reference(sent, 0.99, 0.004, mom, kick, qn, 0.9, quote_kick, depth, 0.05)
    for g, w in zip(state, ref, strict=True):
        assert np.array_equal(g, w)


def test_step_end_equals_numpy() -> None:
    rng = np.random.default_rng(21)
    n_a = 50
    log_idx, log_idx0 = np.log(rng.uniform(50.0, 150.0, (2, n_a)))
    state = [np.zeros(n_a), *np.log(rng.uniform(50.0, 150.0, (2, n_a))), np.zeros(n_a)]
    ref = [x.copy() for x in state]
    step_end(log_idx, log_idx0, *state)
    step_end_reference(log_idx, log_idx0, *ref)
    for g, w in zip(state, ref, strict=True):
        assert np.array_equal(g, w)
    assert np.array_equal(state[3], log_idx)


def test_open_move_equals_numpy_clip() -> None:
    rng = np.random.default_rng(22)
    n_a = 400
    log_idx = np.log(rng.uniform(50.0, 150.0, n_a))
    hour_ago = log_idx + rng.normal(0.0, 0.01, n_a)
    abs_ret = rng.uniform(1e-4, 2e-3, n_a)
    args = (log_idx, hour_ago, abs_ret, float(np.sqrt(12)), 0.3)
    got = open_move(*args)
    assert np.array_equal(got, open_move_reference(*args))
    assert (np.abs(got) == 0.3 * 4.0).any()  # clipped somewhere
    assert (np.abs(got) < 0.3 * 4.0).any()


def test_long_share_and_prob_equal_numpy() -> None:
    rng = np.random.default_rng(23)
    n = 3000
    sentiment = rng.normal(0.0, 2.0, 4)
    asset_of = np.repeat(np.arange(4), 3)
    mkts = rng.integers(0, 12, n)
    arg = long_share(sentiment, asset_of, mkts, 0.1)
    assert np.array_equal(arg, long_share_reference(sentiment, asset_of, mkts, 0.1))
    tilt = np.tanh(arg)
    for bias in (-0.3, 0.05, 0.3):
        got = long_prob(tilt, bias)
        assert np.array_equal(got, long_prob_reference(tilt, bias))
    assert long_prob(tilt, -0.3).min() == 0.02
    assert long_prob(tilt, 0.3).max() == 0.98


def test_add_orders_equals_bincount() -> None:
    rng = np.random.default_rng(24)
    n = 700
    mkts = rng.integers(0, N_M - 1, n)  # the last market gets no order
    side = np.where(rng.random(n) < 0.5, 1, -1)
    notional = rng.uniform(1e3, 1e6, n)
    usd = rng.normal(0.0, 1e6, N_M)
    usd[-1] = -0.0
    ref = usd.copy()
    add_orders(usd, mkts, side, notional)
    add_orders_reference(ref, mkts, side, notional)
    assert np.array_equal(usd, ref)
    assert np.array_equal(np.signbit(usd), np.signbit(ref))


@pytest.mark.parametrize("add_premium", [False, True])
def test_requote_px_and_recentre_equal_numpy(add_premium: bool) -> None:
    rng = np.random.default_rng(25)
    n = 500
    index = 100.0 * np.exp(rng.normal(0.0, 0.01, n))
    mid = index * np.exp(rng.normal(0.0, 0.003, n))
    args = (rng.normal(0.0, 5e5, n), mid, np.full(n, 1e8), index, rng.normal(0.0, 1e-4, n), 0.045,
            0.002, add_premium)  # fmt: skip
    quote = requote_px(*args)
    assert np.array_equal(quote, requote_px_reference(*args))
    skew = quote / index - 1.0 - args[4] - (0.002 if add_premium else 0.0)
    assert np.isclose(np.abs(skew), 0.02).any()  # clipped somewhere
    log_mid, target = np.log(mid), np.log(quote)
    assert np.array_equal(recentre(log_mid, target, 0.7), recentre_reference(log_mid, target, 0.7))


def test_pay_funding_equals_numpy() -> None:
    b = _book(26)
    rng = np.random.default_rng(26)
    qty = rng.uniform(0.1, 2.0, b["market"].size)
    on = np.array([True, False, True, True, False])
    mark = np.linspace(90.0, 110.0, N_M)
    rate = rng.normal(0.0, 5e-4, N_M)
    interval_h = np.array([8.0, 8.0, 4.0, 8.0, 4.0])
    funding = rng.normal(0.0, 1.0, b["market"].size)
    ref = funding.copy()
    args = (b["open_idx"], b["market"], b["side"], qty)
    ids, p_exit = pay_funding(*args, funding, on, mark, rate, interval_h, 0.03)
    ids_ref, p_ref = pay_funding_reference(*args, ref, on, mark, rate, interval_h, 0.03)
    assert np.array_equal(ids, ids_ref)
    assert np.array_equal(p_exit, p_ref)
    assert np.array_equal(funding, ref)
    assert (p_exit == 0.0).any()
    assert (p_exit > 0.0).any()


def test_snap_back_equals_numpy() -> None:
    rng = np.random.default_rng(27)
    news = rng.standard_t(4, (500, 3)) * 1e-3
    traded = news * (1.0 + rng.uniform(0.0, 2.0, news.shape))
    for speed in (0.3, 0.7, 1.0):
        assert np.array_equal(
            snap_back(news, traded, speed), snap_back_reference(news, traded, speed)
        )


def test_snap_back_takes_an_overshoot_back_geometrically() -> None:
    # By hand: one overshoot of 1 at step 0 and nothing else, speed 0.5: the scalpers trade back
    # half of what is pending each step (-0.5, -0.25, ...), so the price effect left after k
    # steps is 0.5 ** k and its sum over time tends to 0 (a wick, not a move).
    news = np.zeros((6, 1))
    traded = news.copy()
    traded[0, 0] = 1.0
    out = snap_back(news, traded, 0.5)[:, 0]
    assert out.tolist() == [1.0, -0.5, -0.25, -0.125, -0.0625, -0.03125]
    assert np.cumsum(out).tolist() == [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125]
    # the news itself (traded == news) is never taken back
    same = np.full((4, 2), 0.01)
    assert np.array_equal(snap_back(same, same, 0.5), same)
