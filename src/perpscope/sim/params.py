"""The agents' behaviour: :class:`MarketParams` and the scheduled large orders (:class:`Shock`).

The presets in :mod:`perpscope.sim.presets` are named :class:`MarketParams` values; the run's
configuration (:mod:`perpscope.sim.config`) picks one by name. This module imports only the
constants, so config -> presets -> params has no cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from perpscope.sim.constants import LEVERAGE_CHOICES

__all__ = ["MarketParams", "Shock"]


@dataclass(frozen=True, slots=True)
class Shock:
    """A large spot order (a whale selling or buying its holdings) spread over a few steps.

    Attributes:
        at_frac: when it starts, as a fraction of the run (0.75 = three quarters in).
        usd_per_step: signed USD notional per step at BTC scale (negative sells).
        steps: how many steps it lasts.
    """

    at_frac: float
    usd_per_step: float
    steps: int


@dataclass(frozen=True, slots=True)
class MarketParams:
    """Behaviour of the agents (all flows in USD at BTC scale; see ``docs/simulator.md``).

    Attributes:
        depth_perp_usd: market maker's perp book depth, USD per unit of log-price moved.
        depth_spot_usd: spot book depth, USD per unit of log-price moved.
        news_vol: standard deviation of one step's news about BTC's value (log), at normal
            volatility; other assets scale it by :data:`~perpscope.sim.constants.ASSET_VOL`.
        factor_beta: loading of each asset's news on the common crypto factor (the rest is the
            asset's own news); sets the cross-asset return correlation.
        vol_slow_hl_h, vol_slow: half-life (hours) and standard deviation of the slow
            component of the log of news volatility (shared by all assets).
        vol_fast_hl_h, vol_fast: the same for its fast component (bursts of news).
        vol_max: news volatility never exceeds this multiple of its normal level.
        activity_vol: trading activity (opening rate, noise flow) = volatility ** this.
        value_speed: share of the gap between the fundamental value and spot the value traders
            trade back per step (what makes an unfounded move, a cascade or a whale, retrace).
        overreact, overreact_at: news traders overtrade news by ``overreact x tanh(|news| /
            (overreact_at x normal news))``: a large surprise overshoots, and the value traders
            trade the overshoot back over the following hours (the retrace after big bars).
        spike, spike_at, spike_snap: the crowd piles into the very largest news: a step's news
            ``x`` is overtraded by a further ``spike x tanh(z ** 2) x x``, ``z = x / (spike_at x
            normal news)`` (so almost only surprises many times the normal size), and scalpers
            take that excess back, ``spike_snap`` of what is left per step: the wick of a wide
            bar, mostly gone within the hour. 0: no spikes.
        noise_usd: spot noise traders' flow per step (scale of a Student-t draw) at activity 1.
        trend_usd: trend followers' spot flow per step at full momentum signal.
        arb_frac: share of a cross-venue spot price gap arbitraged away per step.
        dip_threshold: move from the last hour's average (log) beyond which opportunistic
            traders fade it.
        dip_frac: share of that excess move they trade back per step.
        mm_recentre: share of the gap to its fair price the market maker's quotes close per step.
        mm_skew: premium the market maker quotes per unit of its inventory / perp depth.
        quote_noise, quote_hl_h: standard deviation and half-life (hours) of the market maker's
            own quoting premium on each venue (why two venues' funding differ).
        hedge_ratio: share of its perp inventory change the market maker hedges on spot.
        open_rate: leveraged positions opened per step per market at activity 1.
        oi_beta: openers are ``exp(oi_beta x z)`` times busier after a last-hour move of ``z``
            normal hourly moves (clipped to +-4): OI builds into rallies, thins in drops.
        mix: shares of trend followers, mean reverters and noise traders among openers.
        sentiment_hl_h: half-life (hours) of each asset's sentiment.
        sentiment_mom: how much the day's momentum (tanh of the fast-slow average gap / 1%)
            moves sentiment.
        sentiment_vol: standard deviation of sentiment's own random part.
        sentiment_bias: added to sentiment (crypto crowds lean long).
        long_bias: added to every opener's probability of going long (build-up phase only);
            a new opener goes long with probability ``0.5 + 0.5 tanh(sentiment + bias)``.
        leverage_weights: weights of :data:`LEVERAGE_CHOICES`.
        size_median_usd: median notional of a position (log-normal) at BTC scale.
        size_sigma: log-normal sigma of position notionals.
        size_cap: the largest notional, in medians (a trader's size limit).
        hold_mean_h: mean holding time (exponential), hours, at ``hold_ref_lev``; a position
            at leverage ``L`` holds ``sqrt(hold_ref_lev / L) ** 0.75`` times as long.
        hold_ref_lev: see ``hold_mean_h``.
        take_profit_roe: median return on margin (log-normal, sigma 0.5) at which a position
            takes profit (1.0 = +100%: a 20x position closes after a 5% move its way); checked
            hourly.
        stop_roe: loss on margin at which a position's owner closes it (hourly review).
        lev_vol_ref: fast traders size their leverage to the asset's swings: the drawn
            leverage times ``lev_vol_ref`` / the asset's volatility relative to BTC's
            (:data:`~perpscope.sim.constants.ASSET_VOL`), rounded half up, at least 1x (0.8: a
            drawn 10x is 8x on BTC, 6x on ETH, 5x on SOL). 0: the drawn leverage as is.
        patient_share: share of openers who are position traders (the slow money under the
            fast, which steadies OI): leverage ``patient_lev``, no take-profit, held
            ``patient_hold`` times as long as a trader at the lowest leverage holds; their
            stop is ``stop_roe`` like everyone's. 0: none.
        patient_hold: see ``patient_share``.
        patient_lev: see ``patient_share``.
        burn_in_share: the run starts with ``open_rate x hold_mean_h x burn_in_share``
            positions per market already open (the equilibrium book; 0 starts empty).
        funding_exit: per settlement, probability scale that a position paying funding closes
            (per 0.1% per 8h paid above the interest rate).
        absorb_share: liquidity providers watching the liquidation feed trade back this share
            of each asset's forced notional (summed over venues) on spot.
        absorb_speed: share of that pending trade they execute per step, the first tranche in
            the step of the forced orders.
        absorb_unwind_h: they unwind the inventory so absorbed at 1 / this many hours per hour.
        cover_frac: while the feed is hot, winning-side traders in profit close (short covering
            into a long flush) for ``cover_frac x hot x`` the step's forced notional (per-step
            probability capped at 0.5); ``hot`` in [0, 1] is defined by ``feed_*`` below.
        capitulate_frac: the same for losing-side traders closing before they are liquidated.
        dip_boost: while the feed is hot, opportunistic traders fade the excess move beyond
            ``dip_threshold`` harder: they trade each venue's spot back by a share
            ``min(dip_boost x heat, dip_max)`` of the excess per step.
        dip_max: the largest share of the excess they fade in one step; at most 1, so the fade
            brings the price back toward the threshold but never through it (a fade is a
            damped pull, stable for any heat and any number of venues).
        feed_memory: per-step decay of the feed's memory of forced notional (per asset).
        feed_unit: ``heat`` = remembered forced notional / (``depth_spot_usd x feed_unit``) at
            BTC scale, i.e. in units of the flow that moves spot by ``feed_unit``.
        feed_cap: the largest ``heat``; ``hot = (heat - 1) / (feed_cap - 1)`` clipped to [0, 1],
            so small liquidations draw no crowd.
        thin_frac: each liquidation round thins the maker's perp book by a factor
            ``exp(-thin_frac x forced notional / normal depth)``, down to ``thin_floor``.
        thin_floor: the thinnest the maker's perp book gets, as a share of its normal depth.
        refill: share of the missing perp depth the market maker puts back per step.
        shocks: large spot orders at fixed times.
        insurance_fund_usd: starting balance of each market's insurance fund, USD at BTC scale
            (scaled by the asset's size like depth; see :mod:`perpscope.sim.insurance`).
        insurance_surplus_share: share of a liquidation's surplus (its margin left at the fill)
            that goes to the fund: 1 on Binance and Bybit (the trader loses the whole margin);
            lower models a venue that keeps only a fee and returns the rest to the trader.
        shock_news: share of a shock's price move that value traders take as news about the
            value (the rest they trade back).
        build_frac: where the build-up ends, as a fraction of the run; ``None`` ends it at the
            first shock (or never, without shocks). ``long_bias`` and the three build-up
            mechanisms below act only before it.
        drift_day: build-up only: the fundamental value drifts by this much (log) per day on
            every asset (a trend the news traders keep finding reasons for); 0 adds nothing.
        open_ramp, ramp_from: build-up only: from ``ramp_from`` (fraction of the run) to the
            end of the build-up the opening rate moves geometrically from 1 to ``open_ramp``
            times its level (above 1 a wave of new positions, below 1 traders leaving); 1 (the
            default) leaves it alone.
        bias_ramp: build-up only: over the same window ``long_bias`` grows linearly by this
            much (the openers still arriving lean ever more long); 0 leaves it alone.
        mm_premium: build-up only: a premium the market maker adds to its quotes on every
            venue (a perp bid over spot: spot-perp arbitrage capital is scarce, so the perp
            holds a persistent premium to the index); 0 adds nothing.
        catalyst_vol: the first shock is a scheduled catalyst (an FOMC, a CPI print) that the
            option market makers know of: they price a log move of this standard deviation at
            it into every expiry after it (event variance, so the front of the term structure
            rises above the back before it); 0: the shocks come unannounced.
    """

    depth_perp_usd: float = 1.6e9
    depth_spot_usd: float = 1.2e9
    news_vol: float = 0.0015
    factor_beta: float = 0.92
    vol_slow_hl_h: float = 48.0
    vol_slow: float = 0.55
    vol_fast_hl_h: float = 2.0
    vol_fast: float = 0.6
    vol_max: float = 3.5
    activity_vol: float = 0.25
    value_speed: float = 0.03
    overreact: float = 0.3
    overreact_at: float = 6.0
    spike: float = 0.0
    spike_at: float = 10.0
    spike_snap: float = 0.7
    noise_usd: float = 1.0e5
    trend_usd: float = 0.0
    arb_frac: float = 0.6
    dip_threshold: float = 0.005
    dip_frac: float = 0.0
    mm_recentre: float = 0.7
    mm_skew: float = 0.045
    quote_noise: float = 0.0002
    quote_hl_h: float = 3.0
    hedge_ratio: float = 0.5
    open_rate: float = 2.5
    oi_beta: float = 0.2
    mix: tuple[float, float, float] = (0.4, 0.2, 0.4)
    sentiment_hl_h: float = 24.0
    sentiment_mom: float = 0.3
    sentiment_vol: float = 0.2
    sentiment_bias: float = 0.0
    long_bias: float = 0.0
    leverage_weights: tuple[float, ...] = (0.6, 0.3, 0.06, 0.02, 0.013, 0.005, 0.002)
    size_median_usd: float = 6.0e4
    size_sigma: float = 0.9
    size_cap: float = 15.0
    hold_mean_h: float = 60.0
    hold_ref_lev: float = 10.0
    take_profit_roe: float = 1.0
    stop_roe: float = 0.9
    lev_vol_ref: float = 0.0
    patient_share: float = 0.0
    patient_hold: float = 8.0
    patient_lev: float = 2.0
    burn_in_share: float = 0.8
    funding_exit: float = 0.03
    absorb_share: float = 0.5
    absorb_speed: float = 0.8
    absorb_unwind_h: float = 24.0
    cover_frac: float = 4.0
    capitulate_frac: float = 2.5
    dip_boost: float = 1.0 / 3.0
    dip_max: float = 1.0
    feed_memory: float = 0.7
    feed_unit: float = 0.0025
    feed_cap: float = 4.0
    thin_frac: float = 3.0
    thin_floor: float = 0.4
    refill: float = 0.3
    shocks: tuple[Shock, ...] = ()
    insurance_fund_usd: float = 5.0e5
    insurance_surplus_share: float = 1.0
    shock_news: float = 0.6
    build_frac: float | None = None
    drift_day: float = 0.0
    open_ramp: float = 1.0
    ramp_from: float = 0.0
    bias_ramp: float = 0.0
    mm_premium: float = 0.0
    catalyst_vol: float = 0.0

    def __post_init__(self) -> None:
        if len(self.leverage_weights) != len(LEVERAGE_CHOICES):
            raise ValueError(f"leverage_weights needs {len(LEVERAGE_CHOICES)} weights")
        if min(self.mix) < 0 or sum(self.mix) <= 0:
            raise ValueError("mix must be non-negative shares")
        if not self.insurance_fund_usd >= 0.0:
            raise ValueError("insurance_fund_usd must be >= 0")
        if not 0.0 <= self.insurance_surplus_share <= 1.0:
            raise ValueError("insurance_surplus_share must be between 0 and 1")
        if not 0.0 <= self.dip_max <= 1.0:
            raise ValueError("dip_max must be between 0 and 1")
        if self.build_frac is not None and not 0.0 <= self.build_frac <= 1.0:
            raise ValueError("build_frac must be between 0 and 1")
        if not 0.0 <= self.ramp_from <= 1.0:
            raise ValueError("ramp_from must be between 0 and 1")
        if not self.open_ramp > 0.0:
            raise ValueError("open_ramp must be > 0")
        if not -0.5 < self.long_bias + self.bias_ramp < 0.5:
            raise ValueError("long_bias + bias_ramp must be between -0.5 and 0.5")
        if not 0.0 <= self.patient_share <= 1.0:
            raise ValueError("patient_share must be between 0 and 1")
        if not 1.0 <= self.patient_lev <= LEVERAGE_CHOICES[0]:
            raise ValueError(f"patient_lev must be between 1 and {LEVERAGE_CHOICES[0]:g}")
        if not self.patient_hold >= 1.0:
            raise ValueError("patient_hold must be >= 1")
        if not self.spike >= 0.0 or not self.spike_at > 0.0:
            raise ValueError("spike must be >= 0 and spike_at > 0")
        if not 0.0 < self.spike_snap <= 1.0:
            raise ValueError("spike_snap must be in (0, 1]")
        if not self.lev_vol_ref >= 0.0:
            raise ValueError("lev_vol_ref must be >= 0")
        if not self.catalyst_vol >= 0.0:
            raise ValueError("catalyst_vol must be >= 0")
        if not -0.5 < self.long_bias < 0.5:
            raise ValueError("long_bias must be between -0.5 and 0.5")
