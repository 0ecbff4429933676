"""The simulation loop: agents send orders, the book moves, the liquidation engine fires.

Markets are indexed ``m = asset * n_venues + venue``; per-market state lives in numpy arrays of
that length and one 5-minute step updates all markets at once. Leveraged positions live in a
:class:`~perpscope.sim.positions.PositionBook`. Each step:

1. funding settles on venues whose interval ends (paid between all holders, market maker included);
2. trading activity reacts to the last move (traders get busier after large moves);
3. spot orders: noise traders, trend followers, mean reverters, opportunistic traders fading
   sharp moves, large scheduled orders (presets);
4. perp orders: positions closing (take-profit hit, holding time over, or funding too costly)
   and opening;
5. the net perp order consumes the market maker's book; the maker hedges on spot;
6. spot orders consume spot depth; arbitrageurs close cross-venue spot gaps; the index is the
   average spot price across venues;
7. liquidation rounds: positions whose liquidation price the mark crossed are closed at market
   on a book that thins with each round (and refills over the next steps), which moves price
   (and through the hedge, the index and the mark) and may liquidate more;
   then the traders who watch the liquidation feed answer within the same step: liquidity
   providers buy back (sell back) part of the forced flow, opportunistic traders fade the move
   harder, winners cover and losers capitulate (:meth:`_Engine._respond`); the bar has already
   recorded the forced orders' extreme, so this is the reversal wick inside the bar;
8. the market maker re-quotes toward the index, skewed by its inventory (crowded longs leave it
   short, so it quotes a premium: that premium is what funding charges).

The liquidation engine also runs at the start of the step and after the re-quote, so every mark
price recorded in a candle's high or low has been checked against every open position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from perpscope.sim.config import (
    ASSET_SCALE,
    ASSETS,
    LEVERAGE_CHOICES,
    SIM_FUNDING_INTERVAL_H,
    STEPS_PER_HOUR,
    MarketParams,
    SimConfig,
)
from perpscope.sim.insurance import InsuranceFund
from perpscope.sim.market import consume_depth, funding_rate, mark_price
from perpscope.sim.positions import PositionBook

__all__ = ["Recorder", "simulate"]


class _Order(NamedTuple):
    """A trader's perp order: a close (``pid`` >= 0) or an open (``pid`` = -1)."""

    pid: int
    market: int
    qty: float  # signed, base units
    kind: int = 0
    leverage: float = 0.0
    hold_steps: int = 0
    take_profit_roe: float = 0.0


_SIGMA_REF = 0.0012  # a normal 5-minute absolute log move, to start the running mean
# noise, trend, mean reversion, opportunistic, arbitrageurs, liquidity providers, market maker
_POPULATIONS = 7


@dataclass
class Recorder:
    """Per-step series (shape ``(steps, markets)``) and settlements collected during a run."""

    steps: int
    markets: int
    series: dict[str, np.ndarray] = field(default_factory=dict)
    settlements: list[tuple[int, int, float, float, float]] = field(default_factory=list)
    agent_steps: int = 0
    insurance: InsuranceFund | None = None  # the markets' insurance funds and ADL log

    def __post_init__(self) -> None:
        names = [f"{s}_{x}" for s in ("perp", "mark", "index", "spot") for x in "ohlc"]
        names += ["prem", "buy_base", "sell_base", "spot_vol_base", "house_qty", "house_entry"]
        names += ["house_funding", "accrual_rate"]
        self.series = {n: np.zeros((self.steps, self.markets)) for n in names}


@dataclass
class _State:
    mid: np.ndarray
    spot: np.ndarray
    index: np.ndarray  # per market (the asset's index, repeated per venue)
    prem_ema: np.ndarray
    last_rate: np.ndarray
    house_qty: np.ndarray
    house_entry: np.ndarray
    house_funding: np.ndarray
    thr_long: np.ndarray
    thr_short: np.ndarray
    tp_long: np.ndarray  # lowest take-profit price of the open longs (may be stale-low)
    tp_short: np.ndarray  # highest take-profit price of the open shorts (may be stale-high)
    activity: np.ndarray  # per asset
    log_activity: np.ndarray
    abs_ret_ema: np.ndarray  # a week's mean absolute step return
    ema_fast: np.ndarray
    ema_slow: np.ndarray
    anchor: np.ndarray
    last_ret: np.ndarray
    forced_usd: np.ndarray  # signed forced (liquidation) notional not yet answered, per market
    absorb_pending: np.ndarray  # per asset: USD the liquidity providers still mean to trade
    absorb_inv: np.ndarray  # per asset: USD of inventory they absorbed and will unwind
    depth_mult: np.ndarray  # per market: the maker's perp depth as a share of its normal depth
    forced_recent: np.ndarray  # per asset: decaying sum of |forced notional| (USD at BTC scale)


class _Engine:
    def __init__(self, config: SimConfig, params: MarketParams) -> None:
        self.cfg, self.p = config, params
        self.n_a, self.n_v = len(config.assets), len(config.venues)
        self.n_m = self.n_a * self.n_v
        self.steps = config.days * 24 * STEPS_PER_HOUR
        self.asset_of = np.repeat(np.arange(self.n_a), self.n_v)
        scale = np.array([ASSET_SCALE[a] for a in config.assets])
        self.scale = scale[self.asset_of]
        self.interval_h = np.array([SIM_FUNDING_INTERVAL_H[v] for v in config.venues])
        self.interval_steps = (self.interval_h * STEPS_PER_HOUR).astype(np.int64)
        self.m_interval_h = np.tile(self.interval_h, self.n_a)
        self.m_interval_steps = np.tile(self.interval_steps, self.n_a)
        self.dp = params.depth_perp_usd * self.scale
        self.ds = params.depth_spot_usd * self.scale
        seeds = np.random.SeedSequence(config.seed).spawn(3)
        market_rng = np.random.default_rng(seeds[0])
        self.rng_open = np.random.default_rng(seeds[1])
        self.rng_exit = np.random.default_rng(seeds[2])
        self.common = market_rng.standard_t(4, size=(self.steps, self.n_a)) / np.sqrt(2.0)
        self.idio = market_rng.standard_t(4, size=(self.steps, self.n_m)) / np.sqrt(2.0)
        self.attention = market_rng.standard_normal((self.steps, self.n_a))
        self.book = PositionBook()
        self.rec = Recorder(self.steps, self.n_m)
        self.fund = InsuranceFund.create(
            params.insurance_fund_usd * self.scale, self.steps, params.insurance_surplus_share
        )
        self.rec.insurance = self.fund
        self.closing: dict[int, list[int]] = {}
        self.shock_usd = np.zeros(self.steps)
        for s in params.shocks:
            t0 = int(s.at_frac * self.steps)
            self.shock_usd[t0 : t0 + s.steps] += s.usd_per_step
        px0 = np.array([ASSETS[a] for a in config.assets])[self.asset_of]
        lp = np.log(px0[:: self.n_v])
        z = np.zeros(self.n_m)
        self.s = _State(
            mid=px0.copy(),
            spot=px0.copy(),
            index=px0.copy(),
            prem_ema=z.copy(),
            last_rate=z.copy(),
            house_qty=z.copy(),
            house_entry=z.copy(),
            house_funding=z.copy(),
            thr_long=z.copy(),
            thr_short=np.full(self.n_m, np.inf),
            tp_long=np.full(self.n_m, np.inf),
            tp_short=z.copy(),
            activity=np.ones(self.n_a),
            log_activity=np.zeros(self.n_a),
            abs_ret_ema=np.full(self.n_a, _SIGMA_REF),
            ema_fast=lp.copy(),
            ema_slow=lp.copy(),
            anchor=lp.copy(),
            last_ret=np.zeros(self.n_a),
            forced_usd=z.copy(),
            absorb_pending=np.zeros(self.n_a),
            absorb_inv=np.zeros(self.n_a),
            depth_mult=np.ones(self.n_m),
            forced_recent=np.zeros(self.n_a),
        )
        self.prem_sum = np.zeros(self.n_m)
        self.prem_n = np.zeros(self.n_m)
        self._time_left = np.ones(self.n_m)
        self._hi: dict[str, np.ndarray] = {}
        self._lo: dict[str, np.ndarray] = {}
        self.build_end = min(
            (int(x.at_frac * self.steps) for x in params.shocks), default=self.steps
        )

    # --- funding -------------------------------------------------------------------------
    def settle(self, t: int) -> None:
        """Settle funding on every market whose interval ends at the start of step ``t``."""
        due = np.flatnonzero((t % self.m_interval_steps) == 0)
        if due.size == 0 or t == 0:
            return
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
        ids = b.open_ids()
        ids = ids[on[b.market[ids]]]
        if ids.size == 0:
            return
        mk = b.market[ids]
        paid = b.side[ids] * b.qty[ids] * mark[mk] * rate_m[mk]
        b.funding[ids] += paid
        # Paying positions close with a probability that grows with the 8h-equivalent rate paid.
        r8_paid = b.side[ids] * rate_m[mk] * 8.0 / self.m_interval_h[mk]
        p_exit = np.clip(self.p.funding_exit * (r8_paid - 1e-4) / 1e-3, 0.0, 0.5)
        leaving = ids[self.rng_exit.random(ids.size) < p_exit]
        if leaving.size:
            b.close_step[leaving] = t
            self.closing.setdefault(t, []).extend(leaving.tolist())

    def mark(self) -> np.ndarray:
        """The mark price of every market now."""
        s = self.s
        return mark_price(s.index, s.mid, s.prem_ema, s.last_rate, self._time_left)

    # --- one step ------------------------------------------------------------------------
    def step(self, t: int) -> None:
        s, p, rec = self.s, self.p, self.rec.series
        self._time_left = 1.0 - (t % self.m_interval_steps) / self.m_interval_steps
        log_idx0 = np.log(s.index[:: self.n_v])
        for k in ("perp", "mark", "index", "spot"):
            rec[f"{k}_o"][t] = self._level(k)
        self._hi = {k: self._level(k).copy() for k in ("perp", "mark", "index", "spot")}
        self._lo = {k: v.copy() for k, v in self._hi.items()}
        # Log-activity: persistent, pushed up by large moves (in units of a normal step), capped.
        surprise = np.minimum(np.abs(s.last_ret) / s.abs_ret_ema, 8.0) - 1.0
        s.abs_ret_ema += (np.abs(s.last_ret) - s.abs_ret_ema) / 2016.0
        s.log_activity = p.activity_rho * s.log_activity + p.activity_kick * surprise
        s.log_activity = np.clip(s.log_activity + p.attention_vol * self.attention[t], -1.5, 2.5)
        s.activity = np.exp(s.log_activity)
        s.depth_mult += p.refill * (1.0 - s.depth_mult)
        self._liquidate(t)  # the settlement and the funding clock moved the mark
        spot_usd = self._spot_orders(t)
        perp_usd, traded = self._perp_orders(t)
        self._execute(t, perp_usd, spot_usd, traded)
        self._liquidate(t)
        self._respond(t)
        self._liquidate(t)
        self._requote()
        prem = s.mid / s.index - 1.0
        s.prem_ema += 0.3 * (prem - s.prem_ema)
        self.prem_sum += prem
        self.prem_n += 1.0
        rec["prem"][t] = prem
        rec["accrual_rate"][t] = funding_rate(self.prem_sum / self.prem_n, self.m_interval_h)
        self._track()
        self._liquidate(t)
        for k in ("perp", "mark", "index", "spot"):
            rec[f"{k}_c"][t] = self._level(k)
            rec[f"{k}_h"][t] = self._hi[k]
            rec[f"{k}_l"][t] = self._lo[k]
        rec["house_qty"][t] = s.house_qty
        rec["house_entry"][t] = s.house_entry
        rec["house_funding"][t] = s.house_funding
        log_idx = np.log(s.index[:: self.n_v])
        s.last_ret = log_idx - log_idx0
        s.ema_fast += (log_idx - s.ema_fast) / 12.0
        s.ema_slow += (log_idx - s.ema_slow) / 144.0
        s.anchor += (log_idx - s.anchor) / 864.0

    def _level(self, k: str) -> np.ndarray:
        s = self.s
        if k == "mark":
            return self.mark()
        return {"perp": s.mid, "index": s.index, "spot": s.spot}[k]

    def _track(self, keys: tuple[str, ...] = ("perp", "mark", "index", "spot")) -> None:
        """Widen the step's high/low with the current prices (only after a liquidation check,
        so that every mark price a bar shows was checked against the liquidation prices)."""
        for k in keys:
            v = self._level(k)
            np.maximum(self._hi[k], v, out=self._hi[k])
            np.minimum(self._lo[k], v, out=self._lo[k])

    def _spot_orders(self, t: int) -> np.ndarray:
        s, p, a = self.s, self.p, self.asset_of
        noise = s.activity[a] * (0.8 * self.common[t, a] + 0.6 * self.idio[t])
        mom = np.tanh((s.ema_fast - s.ema_slow) / 0.01)[a]
        dev = np.tanh((np.log(s.index[:: self.n_v]) - s.anchor) / 0.03)[a]
        usd = p.noise_usd * noise + p.trend_usd * mom - p.revert_usd * dev
        # Opportunistic traders buy a sharp drop (sell a spike) beyond a threshold from the
        # last hour's average: the resting orders that absorb a cascade's climax.
        jump = np.log(s.index[:: self.n_v]) - s.ema_fast
        excess = np.sign(jump) * np.maximum(np.abs(jump) - p.dip_threshold, 0.0)
        usd = usd - (p.dip_frac * excess * p.depth_spot_usd)[a]
        usd = usd + self.shock_usd[t] / self.n_v
        return np.asarray(usd * self.scale)

    def _perp_orders(self, t: int) -> tuple[np.ndarray, list[_Order]]:
        """Net perp order per market (USD) and the orders to book once the fill price is known."""
        s, p, b = self.s, self.p, self.book
        usd = np.zeros(self.n_m)
        trades: list[_Order] = []
        self._take_profits(t)
        for i in dict.fromkeys(self.closing.pop(t, [])):  # once each, in order
            if b.alive[i] and b.close_step[i] == t:
                m = int(b.market[i])
                q = -float(b.side[i] * b.qty[i])
                usd[m] += q * s.mid[m]
                trades.append(_Order(i, m, q))
        rng = self.rng_open
        n_open = rng.poisson(p.open_rate * np.sqrt(s.activity[self.asset_of]))
        total = int(n_open.sum())
        if total == 0:
            return usd, trades
        mkts = np.repeat(np.arange(self.n_m), n_open)
        a = self.asset_of[mkts]
        kinds = rng.choice(3, size=total, p=np.asarray(p.mix) / sum(p.mix))
        mom = np.tanh((s.ema_fast - s.ema_slow) / 0.005)[a]
        dev = np.tanh((np.log(s.index[:: self.n_v]) - s.anchor) / 0.02)[a]
        p_long = np.where(kinds == 0, 0.5 + 0.45 * mom, np.where(kinds == 1, 0.5 - 0.45 * dev, 0.5))
        if t < self.build_end:
            p_long = p_long + p.long_bias
        side = np.where(rng.random(total) < p_long, 1, -1)
        notional = np.exp(rng.normal(np.log(p.size_median_usd), p.size_sigma, total))
        notional *= self.scale[mkts]
        w = np.asarray(p.leverage_weights)
        lev = np.asarray(LEVERAGE_CHOICES)[rng.choice(len(w), size=total, p=w / w.sum())]
        hold = 1 + rng.exponential(p.hold_mean_h * STEPS_PER_HOUR, total).astype(np.int64)
        roe = np.exp(rng.normal(np.log(p.take_profit_roe), 0.5, total))
        for j in range(total):
            m = int(mkts[j])
            q = float(side[j] * notional[j] / s.mid[m])
            usd[m] += q * s.mid[m]
            trades.append(_Order(-1, m, q, int(kinds[j]), float(lev[j]), int(hold[j]), roe[j]))
        return usd, trades

    def _take_profits(self, t: int) -> None:
        """Schedule for this step the closes of positions whose take-profit the last price hit."""
        s, b = self.s, self.book
        hit = np.flatnonzero((s.mid >= s.tp_long) | (s.mid <= s.tp_short))
        if hit.size == 0:
            return
        ids = b.open_ids()
        ids = ids[np.isin(b.market[ids], hit)]
        mk = b.market[ids]
        long_ = b.side[ids] > 0
        done = np.where(long_, b.tp[ids] <= s.mid[mk], b.tp[ids] >= s.mid[mk])
        for m in hit.tolist():
            keep = (mk == m) & ~done
            s.tp_long[m] = b.tp[ids[keep & long_]].min(initial=np.inf)
            s.tp_short[m] = b.tp[ids[keep & ~long_]].max(initial=0.0)
        if done.any():
            b.close_step[ids[done]] = t
            self.closing.setdefault(t, []).extend(ids[done].tolist())

    def _execute(
        self, t: int, perp_usd: np.ndarray, spot_usd: np.ndarray, trades: list[_Order]
    ) -> None:
        """Fill the perp orders on the maker's book, then the spot orders and the maker's hedge."""
        self._fill(t, perp_usd, trades)
        self._spot(t, spot_usd + self.p.hedge_ratio * perp_usd)

    def _fill(self, t: int, perp_usd: np.ndarray, trades: list[_Order]) -> None:
        s, b, rec = self.s, self.book, self.rec.series
        new_mid, fill = consume_depth(s.mid, perp_usd, self.dp * s.depth_mult)
        s.mid = new_mid
        self._track(("perp",))
        closes: list[int] = []
        close_px: list[float] = []
        for o in trades:
            m, q = o.market, o.qty
            px = float(fill[m])
            if o.pid >= 0:
                closes.append(o.pid)
                close_px.append(px)
            else:
                end = t + o.hold_steps
                i = b.open(
                    t, m, 1 if q > 0 else -1, abs(q), px, o.leverage, o.kind, end,
                    o.take_profit_roe,
                )  # fmt: skip
                self.closing.setdefault(end, []).append(i)
                if q > 0:
                    s.thr_long[m] = max(s.thr_long[m], b.liq[i])
                    s.tp_long[m] = min(s.tp_long[m], b.tp[i])
                else:
                    s.thr_short[m] = min(s.thr_short[m], b.liq[i])
                    s.tp_short[m] = max(s.tp_short[m], b.tp[i])
            self._house(m, -q, px)
            vol = "buy_base" if q > 0 else "sell_base"
            rec[vol][t, m] += abs(q)
        if closes:
            b.close(t, np.asarray(closes), np.asarray(close_px), liquidated=False)

    def _spot(self, t: int, usd: np.ndarray) -> None:
        s = self.s
        log_spot = np.log(s.spot) + usd / self.ds
        grid = log_spot.reshape(self.n_a, self.n_v)
        gap = grid.mean(axis=1, keepdims=True) - grid
        arb = self.p.arb_frac * gap
        log_spot = (grid + arb).ravel()
        self.rec.series["spot_vol_base"][t] += (
            np.abs(usd) + np.abs(arb.ravel()) * self.ds
        ) / s.spot
        s.spot = np.exp(log_spot)
        s.index = np.repeat(s.spot.reshape(self.n_a, self.n_v).mean(axis=1), self.n_v)
        self._track()

    def _house(self, m: int, dq: float, px: float) -> None:
        """The market maker takes the other side of a trader's trade of ``-dq`` at ``px``."""
        s = self.s
        q0 = s.house_qty[m]
        q1 = q0 + dq
        if abs(q1) < 1e-12:
            q1 = 0.0
        if q0 == 0.0 or (q1 != 0.0 and np.sign(q1) != np.sign(q0)):
            s.house_entry[m] = px if q1 != 0.0 else 0.0
            s.house_funding[m] = 0.0
        elif abs(q1) > abs(q0):
            s.house_entry[m] = (abs(q0) * s.house_entry[m] + abs(dq) * px) / abs(q1)
        elif q1 == 0.0:
            s.house_entry[m], s.house_funding[m] = 0.0, 0.0
        s.house_qty[m] = q1

    def _liquidate(self, t: int) -> None:
        """Force-close, round after round, every position whose liquidation price the mark crossed.

        Each round's market orders consume the perp book and, through the market maker's hedge,
        spot depth, moving the index and the mark: the next round may find more positions.
        Off (``SimConfig.liquidations=False``), crossed positions are left open.
        """
        if not self.cfg.liquidations:
            return
        s, b, rec = self.s, self.book, self.rec.series
        while True:  # each round liquidates at least one position, so this ends
            mark = self.mark()
            hit = np.flatnonzero((mark <= s.thr_long) | (mark >= s.thr_short))
            if hit.size == 0:
                return
            ids = b.open_ids()
            ids = ids[np.isin(b.market[ids], hit)]
            mk = b.market[ids]
            long_ = b.side[ids] > 0
            crossed = np.where(long_, b.liq[ids] >= mark[mk], b.liq[ids] <= mark[mk])
            crossed &= b.liq[ids] > 0
            for m in hit.tolist():  # exact thresholds from the positions that survive
                keep = (mk == m) & ~crossed
                s.thr_long[m] = b.liq[ids[keep & long_]].max(initial=0.0)
                s.thr_short[m] = b.liq[ids[keep & ~long_]].min(initial=np.inf)
            gone = ids[crossed]
            if gone.size == 0:
                return
            q = -(b.side[gone] * b.qty[gone]).astype(float)
            usd = np.zeros(self.n_m)
            np.add.at(usd, b.market[gone], q * s.mid[b.market[gone]])
            s.mid, fill = consume_depth(s.mid, usd, self.dp * s.depth_mult)
            self._track(("perp",))
            s.forced_usd += usd
            thin = np.exp(-self.p.thin_frac * np.abs(usd) / self.dp)
            s.depth_mult = np.maximum(s.depth_mult * thin, self.p.thin_floor)
            b.close(t, gone, fill[b.market[gone]], liquidated=True)
            for i, qi in zip(gone.tolist(), q.tolist(), strict=True):
                m = int(b.market[i])
                self._house(m, -qi, float(fill[m]))
                rec["buy_base" if qi > 0 else "sell_base"][t, m] += abs(qi)
            # the insurance fund settles each fill against the bankruptcy price; an uncovered
            # shortfall deleverages opposite positions, the market maker taking their closes
            for i, px in self.fund.settle(t, b, gone, fill[b.market[gone]], self.mark):
                self._house(int(b.market[i]), float(b.side[i] * b.qty[i]), px)
            self._spot(t, self.p.hedge_ratio * usd)

    def _respond(self, t: int) -> None:
        """Traders who watch the liquidation feed answer the forced orders within minutes.

        Runs right after a step's liquidation rounds, so the bar has already recorded the
        forced orders' extreme; what these traders do is the reversal inside the same bar.

        * Liquidity providers trade back ``absorb_share`` of each asset's forced notional on
          spot, ``absorb_speed`` of what is left each step (the first tranche now), and unwind
          that inventory over about ``absorb_unwind_h`` hours.
        * The feed's ``heat`` (recent forced notional per asset) makes opportunistic traders
          fade the move beyond ``dip_threshold`` from the last hour's average harder.
        * While the feed is hot, winners in profit close into the cascade (short covering into
          a long flush) and losers close before they are liquidated (capitulation).
        """
        s, p, b = self.s, self.p, self.book
        forced = s.forced_usd
        s.forced_usd = np.zeros(self.n_m)
        s.absorb_pending -= p.absorb_share * forced.reshape(self.n_a, self.n_v).sum(axis=1)
        order = p.absorb_speed * s.absorb_pending
        s.absorb_pending -= order
        unwind = s.absorb_inv / (p.absorb_unwind_h * STEPS_PER_HOUR)
        s.absorb_inv += order - unwind
        spot_usd = np.repeat((order - unwind) / self.n_v, self.n_v)
        # Opportunistic traders fade the move from the last hour's average harder while the
        # liquidation feed shows forced orders (the move is forced, not informed).
        size = self.scale[:: self.n_v]
        per_asset = np.abs(forced).reshape(self.n_a, self.n_v).sum(axis=1) / size
        s.forced_recent = p.feed_memory * s.forced_recent + per_asset
        heat = np.minimum(s.forced_recent / (p.depth_spot_usd * p.feed_unit), p.feed_cap)
        hot = np.clip((heat - 1.0) / (p.feed_cap - 1.0), 0.0, 1.0)[self.asset_of]
        jump = np.log(s.index[:: self.n_v]) - s.ema_fast
        excess = np.sign(jump) * np.maximum(np.abs(jump) - p.dip_threshold, 0.0)
        fade = p.dip_boost * heat * excess * p.depth_spot_usd * size
        spot_usd -= np.repeat(fade / self.n_v, self.n_v)
        perp_usd = np.zeros(self.n_m)
        trades: list[_Order] = []
        hit = np.flatnonzero(forced != 0.0)
        if hit.size:
            ids = b.open_ids()
            ids = ids[np.isin(b.market[ids], hit)]
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
            for i in ids[self.rng_exit.random(ids.size) < prob].tolist():
                m = int(b.market[i])
                q = -float(b.side[i] * b.qty[i])
                perp_usd[m] += q * s.mid[m]
                trades.append(_Order(i, m, q))
        if trades:
            self._fill(t, perp_usd, trades)
        self._spot(t, spot_usd + p.hedge_ratio * perp_usd)

    def _requote(self) -> None:
        s, p = self.s, self.p
        skew = np.clip(-p.mm_skew * s.house_qty * s.mid / self.dp, -0.02, 0.02)
        target = np.log(s.index * (1.0 + skew))
        s.mid = np.exp(np.log(s.mid) + p.mm_recentre * (target - np.log(s.mid)))

    def run(self) -> None:
        for t in range(self.steps):
            self.settle(t)
            self.step(t)
            # every open position is a trader deciding to hold; seven populations per market
            self.rec.agent_steps += _POPULATIONS * self.n_m + self.book.n_open
        self._time_left = np.zeros(self.n_m)
        self.settle(self.steps)


def simulate(config: SimConfig, params: MarketParams) -> tuple[Recorder, PositionBook]:
    """Run the simulation; return the per-step series and the positions with their events."""
    eng = _Engine(config, params)
    eng.run()
    return eng.rec, eng.book
