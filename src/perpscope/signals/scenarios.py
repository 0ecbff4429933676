"""The playbook's six confluence scenarios (lines 224-266): one asset at one time.

Each scenario is a list of graded conditions, one per data stream the playbook names (funding,
OI, liquidation heatmap, and the trend the scenario presumes); each condition scores in [0, 1].
A scenario's confidence is the mean of its conditions whose inputs exist (a missing heatmap is
left out and named in the evidence). The reading is the scenario with the highest confidence if
it reaches ``min_confidence`` (0.6), else ``none``. Exact formulas: ``docs/signals.md``.

Options, when the bundle has a chain at most a day old (:mod:`perpscope.signals.options`), add
one more graded condition to five scenarios (confirmation near 1, contradiction near 0): it
counts in the mean but never disqualifies a scenario on its own (the playbook's scenarios are
defined on the perpetual streams). Without options the reading is exactly the perp-only one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from perpscope.analytics.liquidations import find_clusters
from perpscope.signals._common import (
    Evidence,
    MarketData,
    change_since,
    clip01,
    context,
    raw_times,
)
from perpscope.signals.options import OptionsReading, options_evidence, options_reading
from perpscope.signals.setups import latest_rows

__all__ = ["SCENARIOS", "ScenarioReading", "classify", "options_conditions", "scenario_features"]

SCENARIOS: Final = (
    "long_squeeze",
    "short_squeeze",
    "healthy_trend",
    "exhaustion",
    "vacuum",
    "pre_event_build",
    "none",
)


@dataclass(frozen=True, slots=True)
class ScenarioReading:
    """The classifier's answer: scenario, confidence, evidence, and every scenario's score."""

    asset: str
    ts: datetime
    scenario: str
    confidence: float
    evidence: tuple[Evidence, ...]
    scores: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        """``{"asset", "ts", "scenario", "confidence", "evidence": [...]}`` plus ``scores``."""
        return {
            "asset": self.asset,
            "ts": self.ts,
            "scenario": self.scenario,
            "confidence": self.confidence,
            "evidence": [e.to_json() for e in self.evidence],
            "scores": self.scores,
        }


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NS_PER: Final = {"ns": 1, "us": 1_000, "ms": 1_000_000}


def _ns(t: datetime | timedelta) -> int:
    """A time (UTC) or a duration in integer nanoseconds."""
    if isinstance(t, datetime):
        t = t - (_EPOCH if t.tzinfo is not None else _EPOCH.replace(tzinfo=None))
    return t // timedelta(microseconds=1) * 1_000


@dataclass(frozen=True, slots=True)
class _Track:
    """One value column over time as arrays, sorted by time (``ts`` in ns): what
    :func:`~perpscope.signals._common.change_since` reads, without a polars call per reading."""

    ts: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]

    @staticmethod
    def of(frame: pl.DataFrame, col: str, shift: timedelta = timedelta()) -> _Track | None:
        """The track of ``frame``'s ``col`` (times moved by ``shift``), or None when a time or a
        value is missing or NaN (read those with :func:`change_since`)."""
        ts_col, v_col = frame["ts"], frame[col]
        dtype = ts_col.dtype
        if not isinstance(dtype, pl.Datetime) or ts_col.null_count() or v_col.null_count():
            return None
        ts = raw_times(ts_col) * _NS_PER[dtype.time_unit] + _ns(shift)
        values = v_col.cast(pl.Float64).to_numpy()
        if np.isnan(values).any():
            return None
        if ts.size > 1 and not bool((ts[1:] >= ts[:-1]).all()):
            order = np.argsort(ts, kind="stable")
            ts, values = ts[order], values[order]
        return _Track(ts, values)

    def change(self, at: datetime, hours: float) -> float:
        """:func:`~perpscope.signals._common.change_since` of the track."""
        if self.ts.size == 0:
            return math.nan
        now = float(self.values[-1])
        i = int(np.searchsorted(self.ts, _ns(at - timedelta(hours=hours)), side="right"))
        if i == 0:
            return math.nan
        before = float(self.values[i - 1])
        return now / before - 1.0 if before else math.nan

    def share_at_or_below_last(self, since: datetime) -> float:
        """Share of the values after ``since`` that are <= the last value."""
        win = self.values[self.ts > _ns(since)]
        return float(np.count_nonzero(win <= win[-1]) / win.size)


def _latest_mean(persistence: pl.DataFrame, t: datetime) -> float:
    """Mean ``rate_8h`` of each series' last settlement at or before ``t`` if after ``t`` - 12h
    (``persistence`` sorted by venue, instrument and ts, as extreme_persistence returns it)."""
    ts_col = persistence["ts"]
    dtype = ts_col.dtype
    if not isinstance(dtype, pl.Datetime) or ts_col.null_count():
        part = persistence.filter(pl.col("ts") <= t)
        if part.is_empty():
            return math.nan
        lv = latest_rows(part).filter(pl.col("ts") > t - timedelta(hours=12))
        return float(lv["rate_8h"].mean()) if lv.height else math.nan  # type: ignore[arg-type]
    ts = raw_times(ts_col) * _NS_PER[dtype.time_unit]
    venue, inst = persistence["venue"].to_numpy(), persistence["instrument"].to_numpy()
    new = np.flatnonzero((venue[1:] != venue[:-1]) | (inst[1:] != inst[:-1])) + 1
    starts = np.concatenate(([0], new))
    ends = np.concatenate((new, [ts.size]))
    t_ns, since = _ns(t), _ns(t - timedelta(hours=12))
    rows = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        j = a + int(np.searchsorted(ts[a:b], t_ns, side="right")) - 1
        if j >= a and ts[j] > since:
            rows.append(j)
    if not rows:
        return math.nan
    return float(persistence["rate_8h"].gather(rows).mean())  # type: ignore[arg-type]


def scenario_features(data: MarketData, at: datetime) -> dict[str, float]:
    """The readings the rules use (NaN when an input is missing).

    ``funding_8h`` mean of each venue's last settlement (8h-equivalent) within 12h;
    ``funding_change_24h`` and ``_72h`` it minus the same 24h (72h) earlier; ``oi_change_24h``,
    ``_48h``, ``_120h`` and ``_7d`` of aggregate OI; ``oi_pct_30d`` the share of the trailing 30
    days' OI values <= now; ``price_change_7d``; ``price_off_7d_high`` / ``price_off_7d_low``:
    how far the last close is below the highest (above the lowest) close of the last 7 days, a
    fraction; ``long_cluster_below``/``short_cluster_above``: density of the
    densest long (short) liquidation cluster 1-6% below (above) price, 0 when none;
    ``clusters_near``: clusters of density >= 2 within 5%; ``long_near_3`` / ``short_near_3``
    (``_5``): long (short) clusters of density >= 2 within 3% (5%) below (above) price.
    """
    d = data.window(at)
    f: dict[str, float] = {}
    nan = math.nan

    persistence = context(d, at).persistence()
    empty = persistence.is_empty()
    f["funding_8h"] = nan if empty else _latest_mean(persistence, at)
    for h in (24, 72):
        f[f"funding_change_{h}h"] = f["funding_8h"] - (
            nan if empty else _latest_mean(persistence, at - timedelta(hours=h))
        )
    _oi_features(d, at, f)
    price = _price_features(d, at, f)
    if d.levels is not None and d.levels.height and price is not None:
        _cluster_features(find_clusters(d.levels, price, top=50), f)
    else:
        for k in (
            "long_cluster_below",
            "short_cluster_above",
            "clusters_near",
            "long_near_3",
            "short_near_3",
            "long_near_5",
            "short_near_5",
        ):
            f[k] = nan
    return f


def _oi_features(d: MarketData, at: datetime, f: dict[str, float]) -> None:
    oi = d.oi if d.oi is not None else pl.DataFrame()
    track = _Track.of(oi, "oi_usd") if oi.height else None
    if track is not None:
        for h in (24, 48, 120, 168):
            f[f"oi_change_{h}h"] = track.change(at, h)
        f["oi_pct_30d"] = track.share_at_or_below_last(at - timedelta(days=30))
        return
    oi = oi.sort("ts") if oi.height else oi
    for h in (24, 48, 120, 168):
        f[f"oi_change_{h}h"] = change_since(oi, "oi_usd", at, h)
    if oi.height:
        win = oi.filter(pl.col("ts") > at - timedelta(days=30))["oi_usd"]
        f["oi_pct_30d"] = float((win <= win[-1]).mean())
    else:
        f["oi_pct_30d"] = math.nan


def _price_features(d: MarketData, at: datetime, f: dict[str, float]) -> float | None:
    """Sets ``price_change_7d`` (bars by their close); returns the last close (None: no bars)."""
    c = d.candles if d.candles is not None else pl.DataFrame()
    if not c.height:
        for k in ("price_change_7d", "price_off_7d_high", "price_off_7d_low"):
            f[k] = math.nan
        return None
    bar = timedelta(hours=d.bar_h)
    track = _Track.of(c, "c", bar)
    if track is None:
        c = c.sort("ts").with_columns((pl.col("ts") + bar).alias("ts"))
        f["price_change_7d"] = change_since(c, "c", at, 168)
        week = c.filter(pl.col("ts") > at - timedelta(hours=168))["c"].cast(pl.Float64)
        closes = week.drop_nulls().drop_nans().to_numpy()
        last = float(c["c"][-1])
    else:
        f["price_change_7d"] = track.change(at, 168)
        closes = track.values[track.ts > _ns(at - timedelta(hours=168))]
        last = float(track.values[-1])
    hi, lo = (float(closes.max()), float(closes.min())) if closes.size else (math.nan, math.nan)
    f["price_off_7d_high"] = 1.0 - last / hi if hi else math.nan
    f["price_off_7d_low"] = last / lo - 1.0 if lo else math.nan
    return last


def _cluster_features(cl: pl.DataFrame, f: dict[str, float]) -> None:
    side = cl["side"].to_numpy()
    dist = cl["distance_pct"].to_numpy()
    dens = cl["density"].to_numpy()
    long, short, dense = side == "long", side == "short", dens >= 2
    below = dens[long & (dist >= -6) & (dist <= -1)]
    above = dens[short & (dist >= 1) & (dist <= 6)]
    f["long_cluster_below"] = float(below.max()) if below.size else 0.0
    f["short_cluster_above"] = float(above.max()) if above.size else 0.0
    f["clusters_near"] = float(np.count_nonzero((np.abs(dist) <= 5) & dense))
    for pct in (3, 5):
        f[f"long_near_{pct}"] = float(np.count_nonzero(long & (dist >= -pct) & dense))
        f[f"short_near_{pct}"] = float(np.count_nonzero(short & (dist <= pct) & dense))


def _max_known(*xs: float) -> float:
    """The largest of the known (finite) values, NaN when none is known."""
    known = [x for x in xs if math.isfinite(x)]
    return max(known) if known else math.nan


def _g(x: float) -> float | None:
    """A grade, or None when its input is unknown (left out of the mean)."""
    return None if not math.isfinite(x) else clip01(x)


def _oi_acceleration(change_24h: float, change_7d: float) -> float:
    """Exhaustion's OI grade, "OI: Accelerating upward" (line 254): 0 unless OI rose over both
    the last 24h and the last 7 days; then how far the 24h change exceeds the 7-day average
    daily change, 0 at the same pace (a steady rise is not accelerating) and 1 at 3x ("When the
    24-hour figure is 3x or more above the 7-day average, a wave of new positioning has
    entered", line 168). 0 when OI fell over the last 24h even if the 7-day change is unknown;
    otherwise NaN when either change is unknown."""
    if math.isfinite(change_24h) and change_24h <= 0:
        return 0.0
    if not (math.isfinite(change_24h) and math.isfinite(change_7d)):
        return math.nan
    if change_7d <= 0:
        return 0.0
    return clip01((change_24h / (change_7d / 7.0) - 1.0) / 2.0)


DIVERGENCE_RATIO: Final = 0.5
"""Lines 175-181: "divergence ratios above 0.5 (OI declining by more than half the percentage of
the price increase) have produced reversal signals"; above 1.0 the stronger ones."""
NEAR_EXTREME: Final = 0.03
"""Price "making new highs" (line 171): the last close within 3% of the 7-day extreme close (the
3% the options setups use for "at market highs", line 298)."""


def _oi_divergence(change_7d: float, price_7d: float, off_extreme: float) -> float:
    """Exhaustion's second OI grade, the playbook's OI divergence: price near its 7-day extreme
    in the trend's direction while aggregate OI fell over the week ("Price is making new highs,
    but OI is declining ... When the short covering completes, there is nothing to sustain the
    move", lines 169-171; the quadrant "the move may exhaust", lines 150-152). The divergence
    ratio Y/X = OI's fall / price's move: 0 under :data:`DIVERGENCE_RATIO`, then the ratio
    itself (0.5 .. 1 at a full divergence, line 181). 0 when price is more than
    :data:`NEAR_EXTREME` off the extreme or OI did not fall; NaN when an input is unknown."""
    if not (math.isfinite(change_7d) and math.isfinite(price_7d) and math.isfinite(off_extreme)):
        return math.nan
    if change_7d >= 0 or price_7d == 0 or off_extreme > NEAR_EXTREME:
        return 0.0
    ratio = -change_7d / abs(price_7d)
    return clip01(ratio) if ratio >= DIVERGENCE_RATIO else 0.0


def _more_extreme(sign: float, change_24h: float, change_72h: float) -> bool:
    """Funding "getting more extreme" in the trend's direction (line 253): further from zero on
    the trend's side than 24h or than 72h earlier (a day's settlements alone are noisy)."""
    return any(math.isfinite(c) and sign * c > 0 for c in (change_24h, change_72h))


def _scores(f: dict[str, float]) -> dict[str, dict[str, float | None]]:
    fr = f["funding_8h"]
    oi_up = (
        max(
            clip01((f["oi_pct_30d"] - 0.5) / 0.4) if math.isfinite(f["oi_pct_30d"]) else 0.0,
            clip01(f["oi_change_120h"] / 0.14) if math.isfinite(f["oi_change_120h"]) else 0.0,
        )
        if math.isfinite(f["oi_pct_30d"]) or math.isfinite(f["oi_change_120h"])
        else math.nan
    )
    trend = f["price_change_7d"]
    sign = 1.0 if not math.isfinite(trend) or trend >= 0 else -1.0
    dense = 2.0
    lb, sa = f["long_cluster_below"], f["short_cluster_above"]
    return {
        # lines 226-230: +0.08% or higher; OI rising or elevated; long cluster 3-5% below
        "long_squeeze": {
            "funding": _g(fr / 0.0008),
            "oi": _g(oi_up),
            "heatmap": _g(lb / dense),
        },
        # lines 237-241: -0.05% or more negative; OI rising or elevated; short cluster above
        "short_squeeze": {
            "funding": _g(-fr / 0.0005),
            "oi": _g(oi_up),
            "heatmap": _g(sa / dense),
        },
        # lines 247-249: mild funding with the trend; OI rising with it; no cluster in its path
        "healthy_trend": {
            "trend": _g(abs(trend) / 0.03),
            "funding": _g(1.0 if 0.00005 <= sign * fr <= 0.0003 else 0.0)
            if math.isfinite(fr)
            else None,
            "oi": _g(f["oi_change_168h"] / 0.05),
            "heatmap": _g(1.0 - (f["long_near_3"] if sign < 0 else f["short_near_3"])),
        },
        # lines 253-255: extreme with the trend and more so; OI accelerating upward (or, the
        # playbook's OI divergence, falling under a price at its highs); clusters opposite
        "exhaustion": {
            "trend": _g(abs(trend) / 0.05),
            "funding": _g(
                sign
                * fr
                / 0.0005
                * (
                    1.0
                    if _more_extreme(sign, f["funding_change_24h"], f["funding_change_72h"])
                    else 0.0
                )
            ),
            "oi": _g(
                _max_known(
                    _oi_acceleration(f["oi_change_24h"], f["oi_change_168h"]),
                    _oi_divergence(
                        f["oi_change_168h"],
                        trend,
                        f["price_off_7d_high"] if sign > 0 else f["price_off_7d_low"],
                    ),
                )
            ),
            "heatmap": _g((lb if sign > 0 else sa) / dense),
        },  # fmt: skip
        # lines 258-260: funding near 0% (+/-0.01%); OI at/near 30-day lows and declining; sparse
        "vacuum": {
            "funding": _g(1.0 - max(abs(fr) - 0.0001, 0.0) / 0.0001),
            "oi": _g((1.0 - f["oi_pct_30d"]) / 0.7 * (1.0 if f["oi_change_24h"] <= 0 else 0.5)),
            "heatmap": _g(1.0 - f["clusters_near"] / 2.0),
        },
        # lines 263-265: moderate directional funding (~+0.03%); OI +15% in 48h; clusters both
        # sides "close to current price": within 5%, the distance scenarios 1 and 2 call close
        # (clusters "3-5%" away, lines 230 and 241: "the cascade trigger is nearby", "the squeeze
        # trigger is close", lines 232 and 243)
        "pre_event_build": {
            "funding": _g(1.0 if 0.0002 <= abs(fr) <= 0.0004 else 0.0)
            if math.isfinite(fr)
            else None,
            "oi": _g(f["oi_change_48h"] / 0.15),
            "heatmap": _g(min(f["long_near_5"], f["short_near_5"])),
        },
    }


def options_conditions(r: OptionsReading, trend: float) -> dict[str, float | None]:
    """The options condition of each scenario it informs (None: its input is unknown).

    ``fear`` and ``event`` are :attr:`OptionsReading.fear` and ``.event``. Long squeeze (crowded
    longs): greed ``1 - fear`` confirms (line 298: "heavy call buying ... bullish complacency");
    short squeeze: ``fear`` ("peak fear"); exhaustion: the trend side's crowding (greed in an
    uptrend, fear in a downtrend); vacuum ("a low-volatility environment"): ``1 - event``; pre-event
    build ("a known catalyst"): ``event`` (near-term IV priced above the long run)."""
    fear, event = r.fear, r.event
    greed = None if fear is None else 1.0 - fear
    up = not math.isfinite(trend) or trend >= 0
    return {
        "long_squeeze": greed,
        "short_squeeze": fear,
        "exhaustion": greed if up else fear,
        "vacuum": None if event is None else 1.0 - event,
        "pre_event_build": event,
    }


def classify(
    data: MarketData, at: datetime, *, min_confidence: float = 0.6, min_condition: float = 0.3
) -> ScenarioReading:
    """Classify ``data.asset`` at ``at`` into one of :data:`SCENARIOS` (see the module doc)."""
    f = scenario_features(data, at)
    scores: dict[str, float] = {}
    parts = _scores(f)
    opt = options_reading(data.window(at), at)
    extra = options_conditions(opt, f["price_change_7d"]) if opt is not None else {}
    for name, conds in parts.items():
        vals = [v for v in conds.values() if v is not None]
        # every condition must hold at least partly: one that fails outright disqualifies
        ok = bool(vals) and min(vals) >= min_condition
        o = extra.get(name)
        if o is not None:
            vals.append(clip01(o))
        scores[name] = round(sum(vals) / len(vals), 4) if ok else 0.0
    # on a tie the scenario with more conditions (the more specific reading) wins
    best = max(scores, key=lambda k: (scores[k], len(parts[k])))
    conf = scores[best]
    scenario = best if conf >= min_confidence else "none"
    ev: list[Evidence] = [Evidence(k, v) for k, v in f.items()]
    if opt is not None:
        ev += options_evidence(opt)
    if scenario != "none":
        ev += [
            Evidence(f"{best}: {k}", v, None, v is not None and v >= 0.5)
            for k, v in parts[best].items()
        ]
        o = extra.get(best)
        if o is not None:
            ev.append(Evidence(f"{best}: options", round(o, 4), None, o >= 0.5))
    missing = [n for n in ("funding", "oi", "candles", "levels") if n in data.missing(n)]
    if missing:
        ev.append(Evidence("missing inputs", ",".join(missing)))
    return ScenarioReading(
        data.asset,
        at,
        scenario,
        conf if scenario != "none" else round(1 - conf, 4),
        tuple(ev),
        scores,
    )
