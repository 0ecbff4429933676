"""Options evidence for the signals: the chain's positioning and volatility at one time.

Pure: reads :attr:`MarketData.options` (rows of the ``options_snapshot`` table of one venue and
underlying) and reuses the options analytics (never re-deriving a metric). Every input is
optional: a bundle without option rows, or whose latest chain is older than :data:`MAX_AGE_H`
at ``at``, has no :class:`OptionsReading` and the detectors and the classifier behave as if
options did not exist.

The playbook's options lines (``brief/derivatives-playbook.txt``): 297-298 (put/call ratio, "most
useful at extremes ... contrarian"), 299-300 (max pain, "gravitational pull toward the max pain
price as expiry approaches"; "short-term price targets"), 325-329 (put/call "Daily", max pain
"Updated with new contracts"). The 25-delta skew and the IV term structure are perpscope's
additions (the options analytics' readings); the exact rules are in ``docs/signals.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import polars as pl

from perpscope.analytics.options import (
    chain_as_of,
    max_pain,
    oi_walls,
    pcr_history,
    pcr_percentile,
    pcr_reading,
    put_call_totals,
)
from perpscope.analytics.options_flow import unusual_trades
from perpscope.analytics.options_vol import term_structure_shape, vol_by_expiry, with_iv_and_greeks
from perpscope.signals._common import HISTORY_H, Evidence, MarketData, clip01, context, ts_cut

__all__ = [
    "MAX_AGE_H",
    "OptionsReading",
    "UNUSUAL_H",
    "UNUSUAL_USD",
    "UnusualFlow",
    "event_grade",
    "fear_grade",
    "options_context",
    "options_evidence",
    "options_reading",
    "unusual_flow",
]

MAX_AGE_H: Final = 24.0
"""A chain older than this at ``at`` is not read (playbook line 327: put/call is "Daily")."""
EXPIRY_DAYS: Final = 7.0
"""Max pain and the OI walls are read on the expiry with the most OI among those within this
many days ("as expiry approaches", line 299)."""
SKEW_DAYS: Final = 30.0
"""The 25-delta skew is read on the expiry nearest this many days (at least one day out)."""
PCR_LOW: Final = 0.4
PCR_HIGH: Final = 1.2
"""Absolute put/call extremes when the store has too little history for a percentile
(:func:`perpscope.analytics.options.pcr_reading`'s defaults)."""
SKEW_SCALE_PTS: Final = 10.0
"""The skew's fear grade runs from 0 at +5 vol points (calls richer) to 1 at -5 (puts richer)."""
EVENT_LO: Final = 0.95
EVENT_SPAN: Final = 0.10
"""Event grade: front/back ATM IV ratio 0.95 -> 0, 1.05 -> 1 (inverted term structure)."""
MAGNET_MIN_PCT: Final = 1.0
MAGNET_MAX_PCT: Final = 10.0
"""Max pain pulls when it is 1-10% from spot (nearer is noise, farther is not a near target)."""
HIGHS_PCT: Final = 3.0
""""At market highs/lows" (line 298): the last close within 3% of the 30-day high (low)."""
UNUSUAL_USD: Final = 10e6
"""An unusual option trade: at least this notional (line 301: "a sudden purchase of $10 million
in BTC call options")."""
UNUSUAL_H: Final = 24.0
"""The unusual-activity setup reads the option trades of the last 24 hours (the put/call
ratio's "Daily", line 327)."""
_MEMO: Final = "options_reading"


@dataclass(frozen=True, slots=True)
class OptionsReading:
    """What the options chain says at one time (``None`` fields: not readable from the chain).

    Attributes:
        venue: the chain's venue.
        chain_ts: the chain's time (its latest snapshot at or before ``at``).
        spot_px: the chain's index price.
        pcr_oi: aggregate put OI / call OI, contracts.
        pcr_percentile: share of earlier snapshots' ratios (within 45 days) at or below it
            (needs 5 or more of them).
        pcr_extreme: ``low`` / ``high`` by :func:`~perpscope.analytics.options.pcr_reading`.
        skew_pts: 25-delta risk reversal (call IV - put IV) in vol points, of the expiry
            nearest :data:`SKEW_DAYS`; negative: puts richer (fear).
        skew_days: that expiry's days to expiry.
        front_atm_iv, back_atm_iv: ATM IV (fractions) of the nearest (1 day or more) and the
            farthest expiry; ``inverted`` when the front is above the back.
        expiry: the near expiry read for max pain and walls (``YYYY-MM-DD``), its ``expiry_days``.
        max_pain_px, max_pain_pct: its max pain and (max pain - spot) / spot in %.
        call_wall_px, put_wall_px: its strike with the most call OI at or above spot and the
            most put OI at or below spot.
        fear: the fear grade in [0, 1] (mean of the put/call and the skew grades).
        event: the event grade in [0, 1] from the term structure.
    """

    venue: str
    chain_ts: datetime
    spot_px: float | None
    pcr_oi: float | None
    pcr_percentile: float | None
    pcr_extreme: str | None
    skew_pts: float | None
    skew_days: float | None
    front_atm_iv: float | None
    back_atm_iv: float | None
    inverted: bool | None
    expiry: str | None
    expiry_days: float | None
    max_pain_px: float | None
    max_pain_pct: float | None
    call_wall_px: float | None
    put_wall_px: float | None
    fear: float | None
    event: float | None


def _f(x: object) -> float | None:
    """A finite float, else None."""
    if isinstance(x, int | float) and math.isfinite(x):
        return float(x)
    return None


def fear_grade(pcr: float | None, percentile: float | None, skew_pts: float | None) -> float | None:
    """Mean of the available grades: put/call (its percentile when known, else
    ``(pcr - 0.4) / 0.8`` clipped) and skew (``0.5 - skew_pts / 10`` clipped); None when neither."""
    parts: list[float] = []
    if percentile is not None:
        parts.append(clip01(percentile))
    elif pcr is not None:
        parts.append(clip01((pcr - PCR_LOW) / (PCR_HIGH - PCR_LOW)))
    if skew_pts is not None:
        parts.append(clip01(0.5 - skew_pts / SKEW_SCALE_PTS))
    return sum(parts) / len(parts) if parts else None


def event_grade(front_iv: float | None, back_iv: float | None) -> float | None:
    """``(front / back - 0.95) / 0.10`` clipped to [0, 1]; None without both IVs."""
    if front_iv is None or back_iv is None or back_iv <= 0:
        return None
    return clip01((front_iv / back_iv - EVENT_LO) / EVENT_SPAN)


def _spot(live: pl.DataFrame) -> float | None:
    if "index_px" in live.columns:
        idx = live["index_px"].drop_nulls()
        if idx.len():
            return float(idx[-1])
    if "underlying_px" in live.columns:
        fwd = live.sort("expiry_ts")["underlying_px"].drop_nulls()
        if fwd.len():
            return float(fwd[0])
    return None


def _skew(live: pl.DataFrame) -> tuple[float | None, float | None, float | None, float | None]:
    """(skew_pts, skew_days, front ATM IV, back ATM IV) of the chain (None when unreadable)."""
    if not {"mark_iv", "mark_price", "underlying_px"} & set(live.columns):
        return None, None, None, None
    try:
        vol = vol_by_expiry(with_iv_and_greeks(live))
    except (pl.exceptions.PolarsError, KeyError, ValueError):
        return None, None, None, None
    shape = term_structure_shape(vol)
    rr = vol.filter(pl.col("rr_25d").is_not_null() & (pl.col("days_to_expiry") >= 1.0))
    skew = days = None
    if rr.height:
        i = int((rr["days_to_expiry"] - SKEW_DAYS).abs().arg_min() or 0)
        skew = float(rr["rr_25d"][i]) * 100.0
        days = float(rr["days_to_expiry"][i])
    return skew, days, _f(shape.front_atm_iv), _f(shape.back_atm_iv)


def _near_expiry(
    live: pl.DataFrame, spot: float | None
) -> tuple[str | None, float | None, float | None, float | None, float | None, float | None]:
    """(expiry, days, max pain, distance %, call wall, put wall) of the expiry with the most OI
    among those within :data:`EXPIRY_DAYS` (Nones when there is none with OI)."""
    none = (None, None, None, None, None, None)
    near = live.filter(pl.col("days_to_expiry") <= EXPIRY_DAYS)
    if near.is_empty():
        return none
    pains = max_pain(near, spot).filter(pl.col("max_pain_px").is_not_null())
    if pains.is_empty():
        return none
    top = pains.sort(["oi_base", "expiry_ts"], descending=[True, False]).row(0, named=True)
    rows = near.filter(pl.col("expiry_ts") == top["expiry_ts"])
    call_wall = put_wall = None
    if spot is not None:
        w = oi_walls(rows, spot)
        above = w.filter((pl.col("strike_px") >= spot) & (pl.col("call_oi_contracts") > 0))
        below = w.filter((pl.col("strike_px") <= spot) & (pl.col("put_oi_contracts") > 0))
        if above.height:
            call_wall = float(above.sort("call_oi_contracts", descending=True)["strike_px"][0])
        if below.height:
            put_wall = float(below.sort("put_oi_contracts", descending=True)["strike_px"][0])
    pct = _f(top["distance_pct"])
    return (
        str(top["expiry"]),
        _f(top["days_to_expiry"]),
        _f(top["max_pain_px"]),
        None if pct is None else pct * 100.0,
        call_wall,
        put_wall,
    )


def _read(data: MarketData, at: datetime) -> OptionsReading | None:
    snaps = data.options
    if snaps is None or snaps.is_empty():
        return None
    # what is known at ``at``, and no further back than every other rule looks (45 days)
    snaps = ts_cut(snaps, after=at - timedelta(hours=HISTORY_H), upto=at)
    live = chain_as_of(snaps) if snaps.height else snaps
    if live.is_empty():
        return None
    chain_ts = live["chain_ts"][0]
    assert isinstance(chain_ts, datetime)
    if chain_ts < at - timedelta(hours=MAX_AGE_H):
        return None
    spot = _spot(live)
    totals = put_call_totals(live)
    history = pcr_history(snaps.filter(pl.col("ts") < chain_ts))
    pct = pcr_percentile(history["pcr_oi"], totals.pcr_oi)
    extreme = pcr_reading(totals.pcr_oi, pct, extreme_low=PCR_LOW, extreme_high=PCR_HIGH).extreme
    skew, skew_days, front, back = _skew(live)
    expiry, days, mp, mp_pct, call_wall, put_wall = _near_expiry(live, spot)
    return OptionsReading(
        venue=str(live["venue"][0]) if "venue" in live.columns else "",
        chain_ts=chain_ts,
        spot_px=spot,
        pcr_oi=totals.pcr_oi,
        pcr_percentile=pct,
        pcr_extreme=extreme,
        skew_pts=skew,
        skew_days=skew_days,
        front_atm_iv=front,
        back_atm_iv=back,
        inverted=None if front is None or back is None else front > back,
        expiry=expiry,
        expiry_days=days,
        max_pain_px=mp,
        max_pain_pct=mp_pct,
        call_wall_px=call_wall,
        put_wall_px=put_wall,
        fear=fear_grade(totals.pcr_oi, pct, skew),
        event=event_grade(front, back),
    )


def options_reading(data: MarketData, at: datetime) -> OptionsReading | None:
    """The options reading of ``data`` at ``at`` (None without a chain at most
    :data:`MAX_AGE_H` old); computed once per bundle and time."""
    if data.options is None or data.options.is_empty():
        return None
    ctx = context(data, at)
    if _MEMO not in ctx.memo:
        ctx.memo[_MEMO] = _read(data, at)
    r = ctx.memo[_MEMO]
    assert r is None or isinstance(r, OptionsReading)
    return r


def options_evidence(r: OptionsReading) -> list[Evidence]:
    """The reading as evidence rows (names start with ``options``; values as computed)."""
    term = None if r.inverted is None else ("inverted" if r.inverted else "upward")
    return [
        Evidence("options venue", r.venue),
        Evidence("options chain ts", r.chain_ts.isoformat()),
        Evidence(
            "options put/call OI", r.pcr_oi, f"{PCR_LOW}/{PCR_HIGH}", r.pcr_extreme is not None
        ),
        Evidence("options put/call percentile", r.pcr_percentile, "0.1/0.9"),
        Evidence("options 25d skew vol pts", r.skew_pts),
        Evidence("options fear grade", r.fear),
        Evidence("options front ATM IV", r.front_atm_iv),
        Evidence("options back ATM IV", r.back_atm_iv),
        Evidence("options term structure", term),
        Evidence("options event grade", r.event),
        Evidence("options expiry", r.expiry),
        Evidence("options days to expiry", r.expiry_days, EXPIRY_DAYS),
        Evidence("options max pain px", r.max_pain_px),
        Evidence("options max pain distance %", r.max_pain_pct),
        Evidence("options call wall px", r.call_wall_px),
        Evidence("options put wall px", r.put_wall_px),
    ]


CONTEXT: Final = (
    "options venue",
    "options chain ts",
    "options put/call OI",
    "options 25d skew vol pts",
    "options fear grade",
    "options expiry",
    "options max pain px",
    "options max pain distance %",
)
"""The evidence every other setup carries when the asset has options (its context)."""


def options_context(r: OptionsReading) -> list[Evidence]:
    """The :data:`CONTEXT` rows of :func:`options_evidence`."""
    return [e for e in options_evidence(r) if e.name in CONTEXT]


@dataclass(frozen=True, slots=True)
class UnusualFlow:
    """The unusual option trades (:data:`UNUSUAL_USD` or more) of the last :data:`UNUSUAL_H`.

    Attributes:
        call_buys_usd: notional of the unusual trades whose taker bought calls.
        put_buys_usd: notional of those whose taker bought puts.
        sells_usd: notional of those whose taker sold (calls or puts).
        trades: how many unusual trades.
        largest_call: the largest unusual call purchase (``instrument ts option_type strike_px
            notional_usd strike_distance_pct days_to_expiry``; ``strike_distance_pct`` a
            fraction of spot), or ``None`` when there was none.
        largest_put: the same for puts.
    """

    call_buys_usd: float
    put_buys_usd: float
    sells_usd: float
    trades: int
    largest_call: dict[str, Any] | None
    largest_put: dict[str, Any] | None


def unusual_flow(data: MarketData, at: datetime) -> UnusualFlow | None:
    """The unusual option trades of ``data`` in the :data:`UNUSUAL_H` hours up to ``at``
    (:func:`perpscope.analytics.options_flow.unusual_trades` at :data:`UNUSUAL_USD`, strikes
    and types from the chain snapshots); None without trades, without a chain to name their
    strikes, or when none is that large."""
    trades, snaps = data.option_trades, data.options
    if trades is None or trades.is_empty() or snaps is None or snaps.is_empty():
        return None
    recent = ts_cut(trades, after=at - timedelta(hours=UNUSUAL_H), upto=at)
    if recent.is_empty():
        return None
    big = unusual_trades(recent, snaps, threshold_usd=UNUSUAL_USD, size_multiple=math.inf)
    big = big.filter(pl.col("option_type").is_in(["C", "P"]))
    if big.is_empty():
        return None
    buys = big.filter(pl.col("direction") == "buy")

    calls = buys.filter(pl.col("option_type") == "C")
    puts = buys.filter(pl.col("option_type") == "P")

    def first(frame: pl.DataFrame) -> dict[str, Any] | None:  # largest first
        cols = ("instrument", "ts", "option_type", "strike_px", "notional_usd",
                "strike_distance_pct", "days_to_expiry")  # fmt: skip
        return frame.select(cols).row(0, named=True) if frame.height else None

    return UnusualFlow(
        call_buys_usd=float(calls["notional_usd"].sum()),
        put_buys_usd=float(puts["notional_usd"].sum()),
        sells_usd=float(big.filter(pl.col("direction") == "sell")["notional_usd"].sum()),
        trades=big.height,
        largest_call=first(calls),
        largest_put=first(puts),
    )
