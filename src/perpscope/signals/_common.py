"""What every detector shares: the Signal record, the market bundle, evidence and trade levels.

Pure: imports analytics and domain only (no store, no clock). Point in time: every detector
calls :meth:`MarketData.upto` first, so only data known at ``at`` is used (funding settled at or
before ``at``, candles whose bar has closed by ``at``, OI observed at or before ``at``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from perpscope.analytics.funding_series import extreme_persistence
from perpscope.analytics.regime import regime
from perpscope.analytics.structure import structure, structure_events, zones
from perpscope.analytics.volume_profile import Profile, volume_profile

__all__ = [
    "Evidence",
    "MarketData",
    "Signal",
    "Context",
    "context",
    "change_since",
    "raw_times",
    "ts_cut",
]

HISTORY_H: Final = 45 * 24
"""Hours of candles a detector looks at (regime's volatility lookback needs 30 days)."""
MAX_CONTEXTS: Final = 4
"""Contexts a bundle keeps (the latest times asked for), so a long-lived bundle read at many
times does not keep every time's computations."""
_WINDOW: Final = "window"
EVENTS: Final = "events_"
"""Memo key prefix of :meth:`Context.events` (then the number of bars)."""
ZONES: Final = "zones"
"""Memo key of :meth:`Context.zones`."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """One input reading: its value, the threshold it was compared with and whether it held."""

    name: str
    value: float | str | None
    threshold: float | str | None = None
    ok: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON."""
        v = self.value
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        return {"name": self.name, "value": v, "threshold": self.threshold, "ok": self.ok}


@dataclass(frozen=True, slots=True)
class Signal:
    """A setup found at ``ts`` for ``asset``.

    Attributes:
        setup: detector name (``funding_fade``, ``oi_divergence``, ...).
        direction: ``long``, ``short`` or ``neutral`` (basis trade).
        strength: score in [0, 1].
        stage: ``entry`` (every required trigger held: a trade can be placed at ``entry_*``),
            ``watch`` (the derivatives condition holds, the price trigger has not come or could
            not be checked), or ``exit`` (the basis trade's exit).
        evidence: every input value and threshold the detector compared.
        entry_low_px, entry_high_px: the entry zone (null for a watch without candles).
        invalidation_px: where the thesis is wrong (the stop).
        targets_px: the playbook's targets, nearest first.
        missing: inputs that were absent (the detector degraded without them).
    """

    setup: str
    asset: str
    ts: datetime
    direction: str
    strength: float
    stage: str
    evidence: tuple[Evidence, ...]
    venue: str = "all"
    instrument: str = ""
    entry_low_px: float | None = None
    entry_high_px: float | None = None
    invalidation_px: float | None = None
    targets_px: tuple[float, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def entry_px(self) -> float | None:
        """Middle of the entry zone."""
        if self.entry_low_px is None or self.entry_high_px is None:
            return None
        return (self.entry_low_px + self.entry_high_px) / 2.0

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (the ``signals`` table's ``evidence_json`` holds this)."""
        return {
            "setup": self.setup,
            "asset": self.asset,
            "venue": self.venue,
            "instrument": self.instrument,
            "ts": self.ts,
            "direction": self.direction,
            "strength": self.strength,
            "stage": self.stage,
            "entry_low_px": self.entry_low_px,
            "entry_high_px": self.entry_high_px,
            "invalidation_px": self.invalidation_px,
            "targets_px": list(self.targets_px),
            "missing": list(self.missing),
            "evidence": [e.to_json() for e in self.evidence],
        }


def _usable(frame: pl.DataFrame | None) -> bool:
    return frame is not None and frame.height > 0


@dataclass(frozen=True, slots=True)
class MarketData:
    """What the detectors read for one asset.

    Attributes:
        asset: base asset (``BTC``).
        funding: ``venue instrument ts rate interval_h`` of the asset's perpetuals, every venue.
        candles: one series of trade candles ``venue instrument ts o h l c volume``
            (``taker_buy_volume`` for CVD), ``ts`` the bar's open, ``bar_h`` long.
        oi: ``ts oi_usd``: OI summed across venues (the playbook's aggregate).
        levels: the ESTIMATED liquidation map at ``at`` (``price long_usd short_usd``).
        spot: spot candles (``ts c``), for the basis trade's premium.
        options: option chain snapshots of the asset on one venue (rows of the
            ``options_snapshot`` table, ``ts`` the snapshot time), read by
            :mod:`perpscope.signals.options`; optional (None or empty: no options evidence).
        option_trades: trades of those options (rows of the ``option_trades`` table, sorted
            by ``ts``), read by the unusual-activity setup; optional.
    """

    asset: str
    funding: pl.DataFrame | None = None
    candles: pl.DataFrame | None = None
    oi: pl.DataFrame | None = None
    levels: pl.DataFrame | None = None
    spot: pl.DataFrame | None = None
    options: pl.DataFrame | None = None
    option_trades: pl.DataFrame | None = None
    bar_h: float = 1.0
    contexts: dict[datetime, Context] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )
    """Shared computations per ``at`` (see :func:`context`); not part of the data, so never
    passed in nor copied: a bundle made with ``dataclasses.replace`` starts without any."""

    def upto(self, at: datetime | None) -> MarketData:
        """The same bundle with nothing after ``at`` (candles: only bars closed by ``at``).

        Returns the bundle itself when it holds nothing after ``at`` (so its shared
        computations are reused)."""
        if at is None:
            return self
        bar = timedelta(hours=self.bar_h)
        if all(
            f is None or f.is_empty() or f["ts"].max() + (bar if closed else timedelta()) <= at  # type: ignore[operator]
            for f, closed in (
                (self.funding, False),
                (self.candles, True),
                (self.oi, False),
                (self.spot, True),
                (self.options, False),
                (self.option_trades, False),
            )
        ):
            return self

        def cut(f: pl.DataFrame | None, closed: bool = False) -> pl.DataFrame | None:
            if f is None or f.is_empty():
                return f
            return ts_cut(f, upto=at - bar if closed else at)

        return replace(
            self,
            funding=cut(self.funding),
            candles=cut(self.candles, closed=True),
            oi=cut(self.oi),
            spot=cut(self.spot, closed=True),
            options=cut(self.options),
            option_trades=cut(self.option_trades),
        )

    def window(self, at: datetime, hours: float = HISTORY_H) -> MarketData:
        """:meth:`upto` ``at`` and without data older than ``hours`` before it (no detector and
        no scenario rule looks further back than 45 days); the liquidation map is kept.

        The default window is made once per time (kept in the bundle's context at ``at``), so
        :func:`~perpscope.signals.detect_all` and :func:`~perpscope.signals.classify` at one time
        share it and what was computed on it."""
        if hours != HISTORY_H:
            return self._window(at, hours)
        ctx = context(self, at)
        if _WINDOW not in ctx.memo:
            ctx.memo[_WINDOW] = self._window(at, hours)
        w = ctx.memo[_WINDOW]
        assert isinstance(w, MarketData)
        return w

    def _window(self, at: datetime, hours: float) -> MarketData:
        d = self.upto(at)
        since = at - timedelta(hours=hours)

        def head(f: pl.DataFrame | None) -> pl.DataFrame | None:
            return f if f is None or f.is_empty() else ts_cut(f, after=since)

        return replace(
            d,
            funding=head(d.funding),
            candles=head(d.candles),
            oi=head(d.oi),
            spot=head(d.spot),
            options=head(d.options),
            option_trades=head(d.option_trades),
        )

    def missing(self, *names: str) -> tuple[str, ...]:
        """Which of the named inputs are absent or empty."""
        return tuple(n for n in names if not _usable(getattr(self, n)))


_NS_PER: Final = {"ns": 1, "us": 1_000, "ms": 1_000_000}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _ns(t: datetime) -> int:
    """An aware time in integer nanoseconds since the epoch."""
    return (t - _EPOCH) // timedelta(microseconds=1) * 1_000


def raw_times(ts: pl.Series) -> npt.NDArray[np.int64]:
    """The integers behind a Datetime series without nulls, in its time unit (no copy of a
    series in one chunk; cheaper than ``to_physical``)."""
    return ts.to_numpy().view(np.int64)


def ts_cut(
    f: pl.DataFrame, *, after: datetime | None = None, upto: datetime | None = None
) -> pl.DataFrame:
    """The rows of ``f`` with ``after < ts`` (``ts <= upto``): the same rows as the polars
    filter, found on the raw times (a slice, no copy, when ``ts`` is sorted; ``f`` itself when
    every row is kept)."""
    ts = f["ts"]
    dtype = ts.dtype
    if (
        not isinstance(dtype, pl.Datetime)
        or dtype.time_zone is None
        or any(t is not None and t.tzinfo is None for t in (after, upto))
        or ts.null_count()
    ):
        keep = pl.lit(True)
        if after is not None:
            keep = keep & (pl.col("ts") > after)
        if upto is not None:
            keep = keep & (pl.col("ts") <= upto)
        return f.filter(keep)
    t = raw_times(ts)
    per = _NS_PER[dtype.time_unit]
    # integer times: t * per > x  <=>  t > x // per, and t * per <= x  <=>  t <= x // per
    lo = None if after is None else _ns(after) // per
    hi = None if upto is None else _ns(upto) // per
    if t.size < 2 or bool((t[1:] >= t[:-1]).all()):
        i = 0 if lo is None else int(np.searchsorted(t, lo, side="right"))
        j = t.size if hi is None else int(np.searchsorted(t, hi, side="right"))
        return f if (i, j) == (0, t.size) else f.slice(i, max(j - i, 0))
    keep_rows = np.ones(t.size, dtype=bool)
    if lo is not None:
        keep_rows &= t > lo
    if hi is not None:
        keep_rows &= t <= hi
    return f if keep_rows.all() else f.filter(pl.Series(keep_rows))


@dataclass(slots=True)
class Context:
    """Per-asset computations that several detectors share (computed once, lazily)."""

    data: MarketData
    at: datetime
    _structure: pl.DataFrame | None = field(default=None)
    _regime: pl.DataFrame | None = field(default=None)
    _profile: Profile | None = field(default=None)
    _persistence: pl.DataFrame | None = field(default=None)

    def persistence(self) -> pl.DataFrame:
        """:func:`perpscope.analytics.funding_series.extreme_persistence` of the funding."""
        if self._persistence is None:
            f = self.data.funding
            self._persistence = (
                extreme_persistence(f) if f is not None and f.height else pl.DataFrame()
            )
        return self._persistence

    _candles: pl.DataFrame | None = field(default=None)
    memo: dict[str, object] = field(default_factory=dict)
    """Other shared results, by name (e.g. the OI divergence row)."""

    @property
    def candles(self) -> pl.DataFrame:
        """The candles of the last :data:`HISTORY_H` hours (empty frame when none)."""
        if self._candles is None:
            c = self.data.candles
            if c is None or c.is_empty():
                self._candles = pl.DataFrame()
            else:
                since = self.at - timedelta(hours=HISTORY_H)
                self._candles = c.filter(pl.col("ts") > since).sort("ts")
        return self._candles

    def structure(self) -> pl.DataFrame:
        """:func:`perpscope.analytics.structure.structure` of the candles."""
        if self._structure is None:
            self._structure = structure(self.candles)
        return self._structure

    def regime_row(self) -> dict[str, Any]:
        """The last row of :func:`perpscope.analytics.regime.regime`."""
        if self._regime is None:
            self._regime = regime(self.candles)
        return self._regime.row(-1, named=True) if self._regime.height else {}

    def profile(self, bars: int = 168) -> Profile:
        """Volume profile of the last ``bars`` bars."""
        if self._profile is None:
            self._profile = volume_profile(self.candles.tail(bars))
        return self._profile

    def events(self, within_bars: int) -> list[dict[str, Any]]:
        """:func:`perpscope.analytics.structure.structure_events` of the last ``within_bars``
        closed bars, as rows."""
        key = f"{EVENTS}{within_bars}"
        if key not in self.memo:
            s = self.structure()
            if s.is_empty():
                self.memo[key] = []
            else:
                first = s["ts"][max(0, s.height - within_bars)]
                self.memo[key] = structure_events(s.filter(pl.col("ts") >= first)).to_dicts()
        rows = self.memo[key]
        assert isinstance(rows, list)
        return rows

    def trigger(self, direction: str, within_bars: int = 6) -> dict[str, Any] | None:
        """The latest structural trigger (SFP, CHoCH/BOS, spring/UTAD) in ``direction`` among
        the last ``within_bars`` closed bars (the last listed on a tie), or None."""
        best: dict[str, Any] | None = None
        for e in self.events(within_bars):
            if e["direction"] == direction and (best is None or e["ts"] >= best["ts"]):
                best = e
        return best

    def zones(self) -> pl.DataFrame:
        """Support/resistance zones of the candles."""
        if ZONES not in self.memo:
            s = self.structure()
            self.memo[ZONES] = zones(s) if s.height else pl.DataFrame()
        z = self.memo[ZONES]
        assert isinstance(z, pl.DataFrame)
        return z

    def near_extreme(self, window_h: float, last_bars: int) -> bool:
        """Whether any of the last ``last_bars`` closes is at or beyond the highest (lowest)
        close of the ``window_h`` hours before it: a cheap necessary condition of the
        price-extreme divergences, checked before running them."""
        key = f"near_{window_h}_{last_bars}"
        if key not in self.memo:
            self.memo[key] = self._near_extreme(window_h, last_bars)
        return bool(self.memo[key])

    def _near_extreme(self, window_h: float, last_bars: int) -> bool:
        c = self.candles
        if c.height < 2:
            return False
        if "_ts_px" not in self.memo:
            self.memo["_ts_px"] = (
                c["ts"].dt.epoch("us").to_numpy(),
                c["c"].cast(pl.Float64).to_numpy(),
            )
        arrays = self.memo["_ts_px"]
        assert isinstance(arrays, tuple)
        ts, px = arrays
        w = int(window_h * 3_600_000_000)
        for i in range(max(1, c.height - last_bars), c.height):
            lo = int(np.searchsorted(ts, ts[i] - w, side="left"))
            prior = px[lo:i]
            if prior.size and (px[i] >= prior.max() or px[i] <= prior.min()):
                return True
        return False

    def last_close(self) -> float | None:
        """Close of the last closed bar."""
        c = self.candles
        return float(c["c"][-1]) if c.height else None

    def vwap(self, bars: int = 168) -> float | None:
        """Volume-weighted typical price of the last ``bars`` bars (the "mean VWAP level")."""
        c = self.candles.tail(bars)
        if c.is_empty():
            return None
        vol = c["volume"].fill_null(0.0)
        total = float(vol.sum())
        if total <= 0:
            return None
        tp = (c["h"] + c["l"] + c["c"]) / 3.0
        return float((tp * vol).sum()) / total


def context(data: MarketData, at: datetime) -> Context:
    """The shared :class:`Context` of ``data`` at ``at`` (made once per bundle and time)."""
    ctx = data.contexts.get(at)
    if ctx is None:
        while len(data.contexts) >= MAX_CONTEXTS:
            del data.contexts[next(iter(data.contexts))]
        ctx = data.contexts[at] = Context(data, at)
    return ctx


def trade_levels(
    direction: str, entry: float, stop: float, extra: list[float | None]
) -> tuple[float, ...]:
    """Targets: 1R first (playbook line 126: "First target at 1R"), then each ``extra`` level that
    lies beyond it in the trade's direction, nearest first."""
    risk = abs(entry - stop)
    sign = -1.0 if direction == "short" else 1.0
    t1 = entry + sign * risk
    out = [t1]
    out.extend(x for x in extra if x is not None and math.isfinite(x) and sign * (x - t1) > 0)
    return tuple(sorted(set(out), key=lambda p: sign * p))


def clip01(x: float) -> float:
    """``x`` clipped to [0, 1] (NaN -> 0)."""
    if not math.isfinite(x):
        return 0.0
    return min(1.0, max(0.0, x))


def change_since(frame: pl.DataFrame, col: str, at: datetime, hours: float) -> float:
    """``col``'s last value (``frame`` holds nothing after ``at``) over its as-of value ``hours``
    before ``at``, minus 1 (NaN when unknown or the earlier value is 0)."""
    if frame.is_empty():
        return math.nan
    now = float(frame[col][-1])
    past = frame.filter(pl.col("ts") <= at - timedelta(hours=hours))
    if past.is_empty():
        return math.nan
    before = float(past[col][-1])
    return now / before - 1.0 if before else math.nan
