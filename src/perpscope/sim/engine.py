"""The simulation loop: agents send orders, the book moves, the liquidation engine fires.

Markets are indexed ``m = asset * n_venues + venue``; per-market state lives in numpy arrays of
that length and one 5-minute step updates all markets at once. Leveraged positions live in a
:class:`~perpscope.sim.positions.PositionBook`, vectorised over positions. Before the first
step the book is filled with the market's equilibrium population of open positions (the
burn-in: positions opened before the window, see :meth:`_Engine._burn_in`). Each step:

1. funding settles on venues whose interval ends (paid between all holders, market maker included);
2. news arrives: each asset's fundamental value (what informed traders believe it is worth)
   moves by a common crypto factor plus the asset's own shock, with a stochastic volatility
   shared by all assets (in some presets plus a drift during the build-up, ``drift_day``);
   trading activity follows that volatility;
3. spot orders: news traders trade each piece of news at once, value traders trade a share of
   the gap between the fundamental and the spot price, noise traders, trend followers,
   opportunistic traders fading sharp moves, large scheduled orders (presets);
4. perp orders: positions closing (holding time over, hourly take-profit and stop reviews,
   funding too costly) and opening (their number follows activity and the last hour's move,
   their side the asset's sentiment);
5. the net perp order consumes the market maker's book; the maker hedges on spot;
6. spot orders consume spot depth; arbitrageurs close cross-venue spot gaps; the index is the
   average spot price across venues;
7. liquidation rounds: positions whose liquidation price the mark crossed are closed at market
   on a book that thins with each round (and refills over the next steps), which moves price
   (and through the hedge, the index and the mark) and may liquidate more;
   then the traders who watch the liquidation feed answer within the same step
   (:meth:`_Engine._respond`);
8. the market maker re-quotes toward the index, skewed by its inventory (crowded longs leave it
   short, so it quotes a premium: that premium is what funding charges) plus its own venue's
   quoting noise (and, in ``basis-bull``'s build-up, a premium of its own, ``mm_premium``).

The scans over the open positions (due closes, reviews, liquidation crossings, thresholds,
closing orders, funding payments) and the per-market updates (mark price and the liquidation
check, the bar's open, high, low and close, the step's start and end state updates, spot
orders, spot and index, fills, the market maker's inventory and re-quote, volume, premium and
funding accrual, the answer to the liquidation feed, new positions' draws) are numba kernels in
:mod:`perpscope.sim._kernels`, each doing the same floating-point operations as the numpy code
it replaced (kept there as its ``*_reference``), so a seed's output did not change; the
``exp``, ``log`` and ``tanh`` between them stay numpy's (numba's C-library ones may differ in
the last bit). Terms that depend on no state are computed for every step at once in the
constructor.

Price is formed by order flow only: the fundamental value is a belief that drives the informed
traders' orders; a move that no news backs (a forced cascade, a whale) is traded back by the value
traders over the following hours.

The liquidation engine also runs at the start of the step and after the re-quote, so every mark
price recorded in a candle's high or low has been checked against every open position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from perpscope.sim._kernels import (
    add_orders,
    add_volume,
    bar_close,
    bar_open,
    close_fills,
    close_orders,
    crossed_positions,
    draw_positions,
    due_positions,
    feed_response,
    house_fold,
    house_update,
    long_prob,
    long_share,
    mark_hit,
    mark_kernel,
    open_fills,
    open_move,
    pay_funding,
    premium_update,
    recentre,
    requote_px,
    review_positions,
    snap_back,
    spot_orders,
    spot_update,
    step_end,
    step_moods,
    step_news,
    thresholds_kernel,
    track_levels,
)
from perpscope.sim.config import (
    ASSET_SCALE,
    ASSETS,
    LEVERAGE_CHOICES,
    SIM_FUNDING_INTERVAL_H,
    STEPS_PER_HOUR,
    MarketParams,
    SimConfig,
)
from perpscope.sim.constants import ASSET_VOL
from perpscope.sim.insurance import InsuranceFund
from perpscope.sim.market import consume_depth, funding_rate
from perpscope.sim.positions import (
    POSITION_TRADER,
    PositionBook,
    liquidation_px_many,
    max_leverage_many,
)

__all__ = ["Recorder", "simulate"]

_SIGMA_REF = 0.0012  # a normal 5-minute absolute log move, to start the running mean
# news, value, noise, trend, opportunistic, arbitrageurs, liquidity providers, market maker
_POPULATIONS = 8


@dataclass
class Recorder:
    """Per-step series (shape ``(steps, markets)``) and settlements collected during a run."""

    steps: int
    markets: int
    series: dict[str, np.ndarray] = field(default_factory=dict)
    settlements: list[tuple[int, int, float, float, float]] = field(default_factory=list)
    agent_steps: int = 0
    insurance: InsuranceFund | None = None  # the markets' insurance funds and ADL log
    ohlc: np.ndarray = field(default_factory=lambda: np.zeros((16, 0, 0)))  # the OHLC block

    def __post_init__(self) -> None:
        # the four prices' open, high, low and close are rows ``4 x price + field`` of one block
        # (written by one kernel per bar), each series a view of its row
        self.ohlc = np.zeros((16, self.steps, self.markets))
        names = [f"{s}_{x}" for s in ("perp", "mark", "index", "spot") for x in "ohlc"]
        self.series = {n: self.ohlc[r] for r, n in enumerate(names)}
        names = ["prem", "buy_base", "sell_base", "spot_vol_base", "house_qty", "house_entry"]
        names += ["house_funding", "accrual_rate"]
        self.series.update({n: np.zeros((self.steps, self.markets)) for n in names})


@dataclass
class _State:
    mid: np.ndarray
    spot: np.ndarray
    index: np.ndarray  # per market (the asset's index, repeated per venue)
    fund: np.ndarray  # per asset: log fundamental value
    prem_ema: np.ndarray
    last_rate: np.ndarray
    house_qty: np.ndarray
    house_entry: np.ndarray
    house_funding: np.ndarray
    thr_long: np.ndarray
    thr_short: np.ndarray
    activity: np.ndarray  # per asset
    abs_ret_ema: np.ndarray
    ema_fast: np.ndarray
    ema_slow: np.ndarray
    hour_ago: np.ndarray  # per asset: log index one hour ago (ring buffer)
    last_ret: np.ndarray
    sentiment: np.ndarray  # per asset
    quote_noise: np.ndarray  # per market
    forced_usd: np.ndarray
    absorb_pending: np.ndarray
    absorb_inv: np.ndarray
    depth_mult: np.ndarray
    forced_recent: np.ndarray


class _Engine:
    def __init__(self, config: SimConfig, params: MarketParams) -> None:
        self.cfg, self.p = config, params
        p = params
        self.n_a, self.n_v = len(config.assets), len(config.venues)
        self.n_m = self.n_a * self.n_v
        self.steps = config.days * 24 * STEPS_PER_HOUR
        self.asset_of = np.repeat(np.arange(self.n_a), self.n_v)
        scale = np.array([ASSET_SCALE[a] for a in config.assets])
        self.scale = scale[self.asset_of]
        self.interval_h = np.array([SIM_FUNDING_INTERVAL_H[v] for v in config.venues])
        self.interval_steps = (self.interval_h * STEPS_PER_HOUR).astype(np.int64)
        self.m_interval_h = np.tile(self.interval_h, self.n_a)
        self.m_interval_hf = self.m_interval_h.astype(float)
        self.m_interval_steps = np.tile(self.interval_steps, self.n_a)
        self.settle_every = int(np.gcd.reduce(self.interval_steps))  # no settlement in between
        self.dp = p.depth_perp_usd * self.scale
        self.ds = p.depth_spot_usd * self.scale
        seeds = np.random.SeedSequence(config.seed).spawn(5)
        rng = np.random.default_rng(seeds[0])
        self.rng_open = np.random.default_rng(seeds[1])
        self.rng_exit = np.random.default_rng(seeds[2])
        self.rng_init = np.random.default_rng(seeds[3])
        self.rng_patient = np.random.default_rng(seeds[4])
        self._patient_draws = _Blocks(self.rng_patient.random)
        n, n_a = self.steps, self.n_a
        # News: a common crypto factor and each asset's own shock (Student-t), scaled by a
        # stochastic volatility shared by every asset (a slow and a fast log-AR(1) component).
        self.log_vol = self._log_ar(rng, p.vol_slow_hl_h, p.vol_slow) + self._log_ar(
            rng, p.vol_fast_hl_h, p.vol_fast
        )
        self.log_vol -= 0.5 * (p.vol_slow**2 + p.vol_fast**2)
        self.log_vol = np.minimum(self.log_vol, np.log(p.vol_max))
        common = rng.standard_t(4, size=n) / np.sqrt(2.0)
        own = rng.standard_t(4, size=(n, n_a)) / np.sqrt(2.0)
        beta = p.factor_beta
        sig = p.news_vol * np.array([ASSET_VOL[a] for a in config.assets])
        self.sig = sig
        # fast traders' leverage divisor per market (``_vol_leverage``)
        self.lev_div = (sig / p.news_vol / p.lev_vol_ref)[self.asset_of] if p.lev_vol_ref else None
        self.news = (
            sig
            * np.exp(self.log_vol)[:, None]
            * (beta * common[:, None] + np.sqrt(1 - beta**2) * own)
        )
        self.noise = rng.standard_t(4, size=(n, self.n_m)) / np.sqrt(2.0)
        self.sent_shock = rng.standard_normal((n, n_a))
        self.quote_shock = rng.standard_normal((n, self.n_m))
        # per-step terms that depend on no state, computed for every step at once (the same
        # operations, element by element, as inside the step)
        self.activity_t = np.exp(p.activity_vol * self.log_vol)
        rho = 0.5 ** (1.0 / (p.sentiment_hl_h * STEPS_PER_HOUR))
        self.sent_kick = p.sentiment_vol * np.sqrt(1 - rho * rho) * self.sent_shock
        q_rho = 0.5 ** (1.0 / (p.quote_hl_h * STEPS_PER_HOUR))
        self.quote_kick = p.quote_noise * np.sqrt(1 - q_rho * q_rho) * self.quote_shock
        # large news is overtraded (the crowd piles in)
        big = np.tanh(np.abs(self.news) / (p.overreact_at * self.sig))
        self.news_traded = self.news * (1.0 + p.overreact * big)
        if p.spike > 0.0:
            # the largest news is overtraded further still (a wick), and taken back in minutes
            z = self.news / (p.spike_at * self.sig)
            spiked = self.news_traded + self.news * p.spike * np.tanh(z * z)
            self.news_traded = snap_back(self.news_traded, spiked, p.spike_snap)
        self._mom = np.zeros(n_a)
        self._feed_prm = np.array(
            [p.absorb_share, p.absorb_speed, p.absorb_unwind_h * STEPS_PER_HOUR, p.feed_memory,
             p.depth_spot_usd * p.feed_unit, p.feed_cap, p.dip_threshold, p.dip_boost, p.dip_max],
            float,
        )  # fmt: skip
        self.book = PositionBook()
        self.rec = Recorder(self.steps, self.n_m)
        self.fund = InsuranceFund.create(
            params.insurance_fund_usd * self.scale, self.steps, params.insurance_surplus_share
        )
        self.rec.insurance = self.fund
        self.shock_usd = np.zeros(self.steps)
        for s in p.shocks:
            t0 = int(s.at_frac * self.steps)
            self.shock_usd[t0 : t0 + s.steps] += s.usd_per_step
        px0 = np.array([ASSETS[a] for a in config.assets])[self.asset_of]
        lp = np.log(px0[:: self.n_v])
        z = np.zeros(self.n_m)
        self.s = _State(
            mid=px0.copy(),
            spot=px0.copy(),
            index=px0.copy(),
            fund=lp.copy(),
            prem_ema=z.copy(),
            last_rate=z.copy(),
            house_qty=z.copy(),
            house_entry=z.copy(),
            house_funding=z.copy(),
            thr_long=z.copy(),
            thr_short=np.full(self.n_m, np.inf),
            activity=np.ones(n_a),
            abs_ret_ema=np.full(n_a, _SIGMA_REF),
            ema_fast=lp.copy(),
            ema_slow=lp.copy(),
            hour_ago=np.tile(lp, (STEPS_PER_HOUR, 1)),
            last_ret=np.zeros(n_a),
            sentiment=np.zeros(n_a),
            quote_noise=z.copy(),
            forced_usd=z.copy(),
            absorb_pending=np.zeros(n_a),
            absorb_inv=np.zeros(n_a),
            depth_mult=np.ones(self.n_m),
            forced_recent=np.zeros(n_a),
        )
        self.prem_sum = np.zeros(self.n_m)
        self.prem_n = np.zeros(self.n_m)
        self._time_left = np.ones(self.n_m)
        # the bar's high and low so far: rows perp, mark, index, spot (``bar_open``'s order)
        self._hi = np.zeros((4, self.n_m))
        self._lo = np.zeros((4, self.n_m))
        self.build_end = min((int(x.at_frac * self.steps) for x in p.shocks), default=self.steps)
        if p.build_frac is not None:
            self.build_end = int(p.build_frac * self.steps)
        # build-up mechanisms (presets healthy-trend, exhaustion, pre-event-build, basis-bull)
        self.drift = p.drift_day / (24 * STEPS_PER_HOUR)
        self.open_mult = np.ones(self.steps)
        self.bias = np.where(np.arange(self.steps) < self.build_end, p.long_bias, 0.0)
        r0 = int(p.ramp_from * self.steps)
        if r0 < self.build_end:
            ramp = np.linspace(0.0, 1.0, self.build_end - r0)
            if p.open_ramp != 1.0:
                self.open_mult[r0 : self.build_end] = p.open_ramp**ramp
            self.bias[r0 : self.build_end] += p.bias_ramp * ramp
        self.hold_steps = p.hold_mean_h * STEPS_PER_HOUR
        self.lev_choices = np.asarray(LEVERAGE_CHOICES)
        w = np.cumsum(p.leverage_weights) / sum(p.leverage_weights)
        self.lev_cum = w[:-1]
        self.mix_cum = (np.cumsum(p.mix) / sum(p.mix))[:-1]
        self._spot_prm = np.array(
            [p.value_speed, p.noise_usd, p.trend_usd, p.dip_threshold, p.dip_frac,
             p.depth_spot_usd],
            float,
        )  # fmt: skip
        self._draw_prm = np.array(
            [np.log(p.size_median_usd), p.size_sigma, p.size_cap * p.size_median_usd,
             self.hold_steps, p.hold_ref_lev, np.log(p.take_profit_roe)],
            float,
        )  # fmt: skip
        self._pool = _Blocks(self._open_draws)
        # constants of the step, computed once
        self._rho = 0.5 ** (1.0 / (p.sentiment_hl_h * STEPS_PER_HOUR))
        self._mom_weight = (1 - self._rho) * p.sentiment_mom
        self._q_rho = 0.5 ** (1.0 / (p.quote_hl_h * STEPS_PER_HOUR))
        self._sqrt_hour = float(np.sqrt(STEPS_PER_HOUR))
        self._markets = np.arange(self.n_m)
        # each step's share of its funding interval left, per market
        t_all = np.arange(self.steps)[:, None]
        self._time_left_t = 1.0 - (t_all % self.m_interval_steps) / self.m_interval_steps
        self._log_src = np.zeros(0)  # the index array ``_log_idx`` was last computed from
        self._log_val = np.zeros(0)

    def _log_ar(self, rng: np.random.Generator, half_life_h: float, sd: float) -> np.ndarray:
        """A stationary AR(1) series per step with the given half-life and standard deviation."""
        phi = 0.5 ** (1.0 / (half_life_h * STEPS_PER_HOUR))
        e = rng.standard_normal(self.steps) * sd * np.sqrt(1.0 - phi * phi)
        e[0] = rng.standard_normal() * sd
        # x_t = phi x_{t-1} + e_t, by blocks: a scaled cumulative sum within each block
        out = np.empty(self.steps)
        x = 0.0
        block = 512
        powers = phi ** np.arange(block)
        for a in range(0, self.steps, block):
            seg = e[a : a + block]
            k = seg.size
            w = powers[:k]
            acc = np.cumsum(seg / w) * w + x * phi * w
            out[a : a + k] = acc
            x = acc[-1]
        return out

    # --- burn-in ---------------------------------------------------------------------------
    def _burn_in(self) -> None:
        """Start in equilibrium: the open positions a market of this activity holds.

        The positions open at any moment of a steady market opening ``open_rate`` positions per
        step: of each leverage ``L``, ``open_rate x weight(L) x mean hold(L)`` (a long-held
        kind is met more often than its share of openings), times ``burn_in_share``. Each was
        opened before the window: its age and its remaining holding time are both exponential
        with its kind's mean hold (holding times are memoryless), its entry the price a random
        walk at the news volatility gives that many hours back, its side by the preset's
        build-up bias. They are recorded as opened at the first step with their true entry and
        exact liquidation price; one whose liquidation price the first mark already crossed,
        or whose take-profit the first price already reached, is not drawn (it would have
        closed before). The market maker holds the other side of their net, as it took each
        trade.
        """
        p, s, rng = self.p, self.s, self.rng_init
        lev_hold = (p.hold_ref_lev / self.lev_choices) ** 0.75
        w = np.asarray(p.leverage_weights) / sum(p.leverage_weights)
        patient_rel = p.patient_hold * lev_hold[0]
        mean_rel = float((1.0 - p.patient_share) * (w * lev_hold).sum())
        mean_rel += p.patient_share * patient_rel
        per = p.open_rate * self.hold_steps * mean_rel * p.burn_in_share
        if per <= 0:
            return
        max_rel = max(lev_hold.max(), patient_rel if p.patient_share > 0 else 0.0)
        cand = int(np.ceil(per * max_rel / mean_rel))
        mkts = np.repeat(np.arange(self.n_m), cand)
        side, notional, lev, kinds, hold, roe = self._draw(mkts.size, mkts, 0.5 + p.long_bias)
        patient = self._position_traders(lev, kinds, hold, roe)
        rel = (p.hold_ref_lev / lev) ** 0.75
        if patient is not None:
            rel[patient] = patient_rel
        self._vol_leverage(lev, mkts, patient)
        # kept with probability proportional to the kind's mean hold: ``per`` on average
        take = rng.random(mkts.size) < rel * per / (mean_rel * cand)
        mkts, side, kinds, hold = mkts[take], side[take], kinds[take], hold[take]
        notional, lev, roe, rel = notional[take], lev[take], roe[take], rel[take]
        total = mkts.size
        age_h = rng.exponential(p.hold_mean_h * rel)
        vol_h = (
            p.news_vol
            * np.sqrt(STEPS_PER_HOUR)
            * np.array([ASSET_VOL[a] for a in self.cfg.assets])[self.asset_of[mkts]]
        )
        entry = s.mid[mkts] * np.exp(vol_h * np.sqrt(age_h) * rng.standard_normal(total))
        qty = notional / entry
        lev = np.minimum(lev, max_leverage_many(notional))
        liq = liquidation_px_many(side, entry, qty, lev)
        tp = entry * (1.0 + side * roe / lev)
        mk_px = self.mark()[mkts]
        alive = np.where(side > 0, (liq < mk_px) & (tp > s.mid[mkts]), (liq > mk_px) | (liq <= 0))
        alive &= np.where(side > 0, True, tp < s.mid[mkts])
        k = alive
        mkts, side, kinds, hold = mkts[k], side[k], kinds[k], hold[k]
        qty, entry, lev, roe, age_h = qty[k], entry[k], lev[k], roe[k], age_h[k]
        self.book.open_many(0, mkts, side, qty, entry, lev, kinds, hold, roe)
        net = np.bincount(mkts, side * qty, minlength=self.n_m)
        s.house_qty = -net
        # The maker's entry: its side of each trade, oldest first, by the rule of every later
        # trade (a growing position averages, a shrinking one keeps its entry). Not the netted
        # ``sum(side x qty x entry) / net``: with longs and shorts both open, that ratio is
        # unbounded and can be negative.
        order = np.argsort(-age_h, kind="stable")
        fq, fe, _ = house_fold(self.n_m, mkts[order], -(side * qty)[order], entry[order])
        same = (fq != 0) & (np.sign(fq) == np.sign(s.house_qty))
        s.house_entry = np.where(s.house_qty != 0, np.where(same, fe, s.mid), 0.0)
        self._thresholds(np.arange(self.n_m))

    def _thresholds(self, markets: np.ndarray) -> None:
        """Recompute the nearest liquidation price on each side of ``markets``."""
        s, b = self.s, self.book
        hi, lo = thresholds_kernel(b.open_idx, b.market, b.side, b.liq, self.n_m)
        s.thr_long[markets] = hi[markets]
        s.thr_short[markets] = lo[markets]

    # --- funding -------------------------------------------------------------------------
    def settle(self, t: int) -> None:
        """Settle funding on every market whose interval ends at the start of step ``t``."""
        if t == 0 or t % self.settle_every:
            return
        due = np.flatnonzero((t % self.m_interval_steps) == 0)
        s, b = self.s, self.book
        mark = self.mark()
        rate = funding_rate(self.prem_sum[due] / self.prem_n[due], self.m_interval_h[due])
        for m, r in zip(due.tolist(), rate.tolist(), strict=True):
            self.rec.settlements.append((t, m, r, float(mark[m]), float(self.m_interval_h[m])))
        s.last_rate[due] = rate
        self.prem_sum[due] = 0.0
        self.prem_n[due] = 0.0
        rate_m = np.zeros(self.n_m)
        rate_m[due] = rate
        on = np.zeros(self.n_m, bool)
        on[due] = True
        s.house_funding += np.where(on, s.house_qty * mark * rate_m, 0.0)
        # Open positions there pay; paying positions close with a probability that grows with
        # the 8h-equivalent rate paid.
        ids, p_exit = pay_funding(
            b.open_idx, b.market, b.side, b.qty, b.funding, on, mark, rate_m, self.m_interval_hf,
            float(self.p.funding_exit),
        )  # fmt: skip
        if ids.size == 0:
            return
        leaving = ids[self.rng_exit.random(ids.size) < p_exit]
        if leaving.size:
            b.close_step[leaving] = t

    def mark(self) -> np.ndarray:
        """The mark price of every market now."""
        s = self.s
        return mark_kernel(s.index, s.mid, s.prem_ema, s.last_rate, self._time_left)

    def _log_idx(self) -> np.ndarray:
        """Each asset's log index now (``np.log`` of its first venue's index), computed again
        only when the index array was replaced (:meth:`_spot` makes a new one)."""
        s = self.s
        if s.index is not self._log_src:
            self._log_src = s.index
            self._log_val = np.log(s.index[:: self.n_v])
        return self._log_val

    # --- one step ------------------------------------------------------------------------
    def step(self, t: int) -> None:
        s, p, rec = self.s, self.p, self.rec.series
        self._time_left = self._time_left_t[t]
        log_idx0 = self._log_idx()
        bar_open(self.rec.ohlc, t, self._hi, self._lo, s.mid, s.index, s.spot, s.prem_ema,
                 s.last_rate, self._time_left)  # fmt: skip
        # Activity follows the volatility. A scheduled whale's selling is read as partly
        # informed: value traders lower their estimate by ``shock_news`` of the move its
        # orders make; in some presets a drift during the build-up.
        shock = p.shock_news * self.shock_usd[t] / p.depth_spot_usd
        drift = self.drift if self.drift and t < self.build_end else 0.0
        trend = step_news(
            s.last_ret, s.abs_ret_ema, s.activity, float(self.activity_t[t]), s.fund,
            self.news[t], float(shock), drift, s.ema_fast, s.ema_slow,
        )  # fmt: skip
        # Sentiment: persistent, fed by the last day's move (traders chase what went up).
        self._mom = mom = np.tanh(trend)
        step_moods(
            s.sentiment, self._rho, self._mom_weight, mom, self.sent_kick[t], s.quote_noise,
            self._q_rho, self.quote_kick[t], s.depth_mult, float(p.refill),
        )  # fmt: skip
        self._liquidate(t)  # the settlement and the funding clock moved the mark
        spot_usd = self._spot_orders(t)
        perp_usd, closes, opens = self._perp_orders(t)
        self._fill(t, perp_usd, closes, opens)
        self._spot(t, spot_usd + p.hedge_ratio * perp_usd)
        self._liquidate(t)
        self._respond(t)
        self._liquidate(t)
        self._requote(t)
        premium_update(s.mid, s.index, s.prem_ema, self.prem_sum, self.prem_n,
                       self.m_interval_hf, rec["prem"][t], rec["accrual_rate"][t])  # fmt: skip
        self._track()
        self._liquidate(t)
        bar_close(self.rec.ohlc, t, self._hi, self._lo, s.mid, s.index, s.spot, s.prem_ema,
                  s.last_rate, self._time_left)  # fmt: skip
        rec["house_qty"][t] = s.house_qty
        rec["house_entry"][t] = s.house_entry
        rec["house_funding"][t] = s.house_funding
        step_end(self._log_idx(), log_idx0, s.last_ret, s.ema_fast, s.ema_slow,
                 s.hour_ago[t % STEPS_PER_HOUR])  # fmt: skip

    def _track(self, perp_only: bool = False) -> None:
        """Widen the step's high/low with the current prices (only after a liquidation check,
        so that every mark price a bar shows was checked against the liquidation prices)."""
        s = self.s
        track_levels(self._hi, self._lo, s.mid, s.index, s.spot, s.prem_ema, s.last_rate,
                     self._time_left, perp_only)  # fmt: skip

    def _spot_orders(self, t: int) -> np.ndarray:
        """The step's net spot order per market (USD), in :func:`spot_orders`.

        News traders trade the news at once (their order moves spot by the news); value traders
        trade a share of the remaining gap to the fundamental, on every venue. Large news is
        overtraded (``news_traded``); the value traders take the excess back. Noise traders
        trade with the activity, trend followers with the step's trend signal. Opportunistic
        traders buy a sharp drop (sell a spike) beyond a threshold from the last hour's
        average: the resting orders that absorb a cascade's climax.
        """
        s = self.s
        return spot_orders(
            s.spot, s.index, self.news_traded[t], s.fund, s.activity, self._mom, s.ema_fast,
            self.noise[t], self.ds, self.scale, float(self.shock_usd[t]), self.n_v,
            self._spot_prm,
        )  # fmt: skip

    def _open_draws(self, n: int) -> np.ndarray:
        """``n`` rows of draws for new positions: columns 1 and 5 standard normal, the others
        uniform."""
        fresh = self.rng_open.random((n, 6))
        fresh[:, [1, 5]] = self.rng_open.standard_normal((n, 2))
        return fresh

    def _draw(
        self, total: int, mkts: np.ndarray, p_long: np.ndarray | float
    ) -> tuple[np.ndarray, ...]:
        """Side, notional (USD), leverage, kind, holding steps and take-profit of new positions."""
        u = self._pool(total)
        if not isinstance(p_long, np.ndarray):
            p_long = np.full(total, p_long)
        return tuple(
            draw_positions(u, p_long, self.scale, mkts, self._draw_prm, self.lev_choices,
                           self.lev_cum, self.mix_cum)
        )  # fmt: skip

    def _perp_orders(self, t: int) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
        """Net perp order per market (USD), the positions closing, the positions opening."""
        s, p, b = self.s, self.p, self.book
        if t % STEPS_PER_HOUR == 0:
            self._review(t)
        closes = due_positions(b.open_idx, b.close_step, t)
        usd = close_orders(closes, b.market, b.side, b.qty, s.mid, self.n_m)
        # Openers: busier when volatility is high, and after a rise (new longs chase it and
        # shorts add), quieter after a fall.
        x = open_move(self._log_idx(), s.hour_ago[t % STEPS_PER_HOUR], s.abs_ret_ema,
                      self._sqrt_hour, float(p.oi_beta))  # fmt: skip
        rate = p.open_rate * self.open_mult[t] * s.activity * np.exp(x)
        n_open = self.rng_open.poisson(rate[self.asset_of])
        mkts = np.repeat(self._markets, n_open)
        total = mkts.size
        tilt = np.tanh(long_share(s.sentiment, self.asset_of, mkts, float(p.sentiment_bias)))
        p_long = long_prob(tilt, float(self.bias[t]))
        side, notional, lev, kinds, hold, roe = self._draw(total, mkts, p_long)
        patient = self._position_traders(lev, kinds, hold, roe)
        self._vol_leverage(lev, mkts, patient)
        add_orders(usd, mkts, side, notional)
        return usd, closes, (mkts, side, notional, lev, kinds, hold, roe)

    def _position_traders(
        self, lev: np.ndarray, kinds: np.ndarray, hold: np.ndarray, roe: np.ndarray
    ) -> np.ndarray | None:
        """Make a share ``patient_share`` of newly drawn positions position traders, in place:
        leverage ``patient_lev``, no take-profit, ``patient_hold`` times the holding time of a
        trader at the lowest leverage (the drawn exponential, scaled). Returns their mask
        (None: the market has no position traders)."""
        p = self.p
        if p.patient_share <= 0.0:
            return None
        patient = self._patient_draws(lev.size) < p.patient_share
        if not patient.any():
            return patient
        stretch = p.patient_hold * (lev[patient] / self.lev_choices[0]) ** 0.75
        hold[patient] = 1 + ((hold[patient] - 1) * stretch).astype(np.int64)
        lev[patient] = p.patient_lev
        kinds[patient] = POSITION_TRADER
        roe[patient] = np.inf
        return patient

    def _vol_leverage(self, lev: np.ndarray, mkts: np.ndarray, patient: np.ndarray | None) -> None:
        """Fast traders size their leverage to the asset's swings, in place: the drawn leverage
        times ``lev_vol_ref`` / the asset's relative volatility, rounded half up to a whole
        leverage of at least 1x. Position traders keep theirs; ``lev_vol_ref`` 0 changes
        nothing."""
        if self.lev_div is None:
            return
        fast = np.ones(lev.size, bool) if patient is None else ~patient
        lev[fast] = np.maximum(1.0, np.floor(lev[fast] / self.lev_div[mkts[fast]] + 0.5))

    def _review(self, t: int) -> None:
        """Hourly: positions whose take-profit the price reached, or whose loss on margin passed
        the owner's stop, close this step."""
        s, p, b = self.s, self.p, self.book
        done = review_positions(
            b.open_idx, b.market, b.side, b.tp, b.entry, b.leverage, s.mid, p.stop_roe
        )
        if done.size:
            b.close_step[done] = t

    def _fill(
        self, t: int, perp_usd: np.ndarray, closes: np.ndarray, opens: tuple[np.ndarray, ...]
    ) -> None:
        """Fill the closes and opens on the maker's book at the step's average fill price."""
        s, b = self.s, self.book
        new_mid, fill = consume_depth(s.mid, perp_usd, self.dp * s.depth_mult)
        s.mid = new_mid
        self._track(perp_only=True)
        dq = np.zeros(self.n_m)
        rec = self.rec.series
        buy, sell = rec["buy_base"][t], rec["sell_base"][t]
        if closes.size:
            px = close_fills(closes, b.market, b.side, b.qty, fill, buy, sell, dq)
            b.close(t, closes, px, liquidated=False)
        mkts, side, notional, lev, kinds, hold, roe = opens
        if mkts.size:
            px = fill[mkts]
            qty = notional / px
            ids = b.open_many(t, mkts, side, qty, px, lev, kinds, t + hold, roe)
            open_fills(mkts, side, qty, b.liq[ids], s.thr_long, s.thr_short, buy, sell, dq)
        self._house(dq, fill)

    def _volume(self, t: int, mk: np.ndarray, q: np.ndarray) -> None:
        rec = self.rec.series
        add_volume(rec["buy_base"][t], rec["sell_base"][t], mk, np.asarray(q, float))

    def _spot(self, t: int, usd: np.ndarray) -> None:
        s = self.s
        vol = self.rec.series["spot_vol_base"][t]
        s.spot, s.index = spot_update(s.spot, usd, self.ds, self.p.arb_frac, self.n_v, vol)
        self._track()

    def _house(self, dq: np.ndarray, px: np.ndarray) -> None:
        """The market maker's inventory changes by ``dq`` per market, all at ``px``."""
        s = self.s
        s.house_qty, s.house_entry, s.house_funding = house_update(
            s.house_qty, s.house_entry, s.house_funding, dq, px
        )

    def _liquidate(self, t: int) -> None:
        """Force-close, round after round, every position whose liquidation price the mark crossed.

        Each round's market orders consume the perp book and, through the market maker's hedge,
        spot depth, moving the index and the mark: the next round may find more positions.
        Off (``SimConfig.liquidations=False``), crossed positions are left open.
        """
        if not self.cfg.liquidations:
            return
        s, b = self.s, self.book
        while True:  # each round liquidates at least one position, so this ends
            mark, any_hit = mark_hit(s.index, s.mid, s.prem_ema, s.last_rate, self._time_left,
                                     s.thr_long, s.thr_short)  # fmt: skip
            if not any_hit:
                return
            hit = (mark <= s.thr_long) | (mark >= s.thr_short)
            gone = crossed_positions(b.open_idx, b.market, b.side, b.liq, mark, hit)
            if gone.size == 0:
                self._thresholds(np.flatnonzero(hit))
                return
            mg = b.market[gone]
            q = -(b.side[gone] * b.qty[gone]).astype(float)
            usd = np.bincount(mg, q * s.mid[mg], minlength=self.n_m)
            s.mid, fill = consume_depth(s.mid, usd, self.dp * s.depth_mult)
            self._track(perp_only=True)
            s.forced_usd += usd
            thin = np.exp(-self.p.thin_frac * np.abs(usd) / self.dp)
            s.depth_mult = np.maximum(s.depth_mult * thin, self.p.thin_floor)
            b.close(t, gone, fill[mg], liquidated=True)
            self._volume(t, mg, q)
            self._house(-np.bincount(mg, q, minlength=self.n_m), fill)
            # the insurance fund settles each fill against the bankruptcy price; an uncovered
            # shortfall deleverages opposite positions, the market maker taking their closes
            for i, px in self.fund.settle(t, b, gone, fill[mg], self.mark):
                dq = np.zeros(self.n_m)
                dq[b.market[i]] = b.side[i] * b.qty[i]
                self._house(dq, np.full(self.n_m, px))
            self._thresholds(np.flatnonzero(hit))
            self._spot(t, self.p.hedge_ratio * usd)

    def _respond(self, t: int) -> None:
        """Traders who watch the liquidation feed answer the forced orders within minutes.

        Runs right after a step's liquidation rounds, so the bar has already recorded the
        forced orders' extreme; what these traders do is the reversal inside the same bar.

        * Liquidity providers trade back ``absorb_share`` of each asset's forced notional on
          spot, ``absorb_speed`` of what is left each step (the first tranche now), and unwind
          that inventory over about ``absorb_unwind_h`` hours.
        * The feed's ``heat`` (recent forced notional per asset) makes opportunistic traders
          fade the move beyond ``dip_threshold`` from the last hour's average harder: a share
          ``min(dip_boost x heat, dip_max)`` of it per step on every venue, so with ``dip_max``
          <= 1 the fade never trades the price through the threshold (no overshoot to feed
          back on, for any number of venues).
        * While the feed is hot, winners in profit close into the cascade (short covering into
          a long flush) and losers close before they are liquidated (capitulation).
        """
        s, p, b = self.s, self.p, self.book
        forced = s.forced_usd
        s.forced_usd = np.zeros(self.n_m)
        spot_usd, hot = feed_response(
            forced, s.absorb_pending, s.absorb_inv, s.forced_recent, self.scale, s.index,
            s.ema_fast, self.ds, self.n_v, self._feed_prm,
        )  # fmt: skip
        perp_usd = np.zeros(self.n_m)
        if (forced != 0.0).any() and (hot > 0).any():
            ids = b.open_idx
            ids = ids[(forced != 0.0)[b.market[ids]]]
            mk = b.market[ids]
            side = b.side[ids]
            winner = side == np.sign(forced[mk])
            in_profit = side * (s.mid[mk] - b.entry[ids]) > 0
            group = np.where(winner & in_profit, 0, np.where(~winner & ~in_profit, 1, 2))
            usd_in = b.qty[ids] * s.mid[mk]
            prob = np.zeros(ids.size)
            for g, frac in ((0, p.cover_frac), (1, p.capitulate_frac)):
                sel = group == g
                open_usd = np.bincount(mk[sel], usd_in[sel], minlength=self.n_m)
                want = frac * hot * np.abs(forced) / np.maximum(open_usd, 1.0)
                prob[sel] = np.minimum(want, 0.5)[mk[sel]]
            closes = ids[self.rng_exit.random(ids.size) < prob]
            if closes.size:
                mk = b.market[closes]
                perp_usd = close_orders(closes, b.market, b.side, b.qty, s.mid, self.n_m)
                self._fill(t, perp_usd, closes, self._no_opens)
                self._thresholds(np.unique(mk))
        self._spot(t, spot_usd + p.hedge_ratio * perp_usd)

    _no_opens: tuple[np.ndarray, ...] = tuple(
        np.zeros(0, dt) for dt in (np.int64, np.int64, float, float, np.int64, np.int64, float)
    )

    def _requote(self, t: int) -> None:
        s, p = self.s, self.p
        add_premium = bool(p.mm_premium and t < self.build_end)
        quote = requote_px(s.house_qty, s.mid, self.dp, s.index, s.quote_noise, float(p.mm_skew),
                           float(p.mm_premium), add_premium)  # fmt: skip
        log_mid = np.log(s.mid)
        s.mid = np.exp(recentre(log_mid, np.log(quote), float(p.mm_recentre)))

    def run(self) -> None:
        self._burn_in()
        for t in range(self.steps):
            self.settle(t)
            self.step(t)
            # every open position is a trader deciding to hold
            self.rec.agent_steps += _POPULATIONS * self.n_m + self.book.n_open
        self._time_left = np.zeros(self.n_m)
        self.settle(self.steps)


class _Blocks:
    """A random stream drawn in large blocks and handed out ``k`` rows at a time: the same
    numbers, in the same order, as drawing ``k`` at each call (numpy's generators fill a block
    in sequence), for a fraction of the calls."""

    def __init__(self, draw: Callable[[int], np.ndarray], block: int = 65536) -> None:
        self._draw, self._block = draw, block
        self._buf: np.ndarray | None = None
        self._at = 0

    def __call__(self, k: int) -> np.ndarray:
        """The next ``k`` rows."""
        buf = self._buf
        if buf is None or self._at + k > buf.shape[0]:
            fresh = self._draw(max(self._block, k))
            buf = fresh if buf is None else np.concatenate([buf[self._at :], fresh])
            self._buf, self._at = buf, 0
        out = buf[self._at : self._at + k]
        self._at += k
        return out


def simulate(config: SimConfig, params: MarketParams) -> tuple[Recorder, PositionBook]:
    """Run the simulation; return the per-step series and the positions with their events."""
    eng = _Engine(config, params)
    eng.run()
    return eng.rec, eng.book
