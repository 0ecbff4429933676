"""The cascade detector: initiation, acceleration, climax and exhaustion of a liquidation cascade.

The playbook's anatomy of a cascade: a move starts (initiation), forced orders make it accelerate,
it ends in a **climax** ("a volume spike that is 5-10x the trailing hourly average", a rapid
extension to a new extreme and "an immediate reversal candle": a long lower wick for a sell
cascade, a long upper wick for a buy cascade), then volume fades (exhaustion) and price retraces.

Rules (every threshold a parameter), on one series of candles (``ts`` = bar open, ``o h l c
volume``), bar ``t``:

* ``vol_x = volume_t / mean(volume over the trailing_h bars before t)``;
* a **climax candidate** of a sell cascade (longs liquidated, ``side = "long"``) has
  ``vol_x >= volume_mult``, a low at or below every low of the ``lookback_h`` bars before it
  (a new extreme), a fall from the highest high of those bars to its low of at least
  ``min_move_pct`` percent and at least ``min_move_ranges`` times the trailing average bar range
  (a rapid extension, measured against the market's own volatility), and a close at least
  ``wick_frac`` of its range above its low (the reversal wick; the playbook does not quantify
  "long", 20% of the range is the default); a buy cascade (``side = "short"``) is the mirror
  image;
* candidates of one side less than ``merge_h`` apart are one cascade, unless the cascade
  exhausted between them (a bar after its last candidate with ``vol_x < accel_mult`` and no new
  extreme, as exhaustion is defined below): the next candidate then starts a new cascade; a
  cascade's climax is its candidate at the most extreme price;
* **initiation**: the bar of the highest high (sell cascade) in the ``lookback_h`` bars before the
  climax; **acceleration**: the first bar after initiation with ``vol_x >= accel_mult`` closing
  in the cascade's direction; **exhaustion**: the first bar after the climax with
  ``vol_x < accel_mult`` and no new extreme;
* ``retrace_4h``: the share of the move (initiation price to climax extreme) won back by the
  close ``retrace_h`` hours after the climax bar's end;
* ``liquidated_usd``: REALISED liquidations of the cascade's side from initiation to exhaustion,
  when a liquidations frame is given (else null), with ``liquidated_label = "REALISED"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import numpy as np
import polars as pl

from perpscope.analytics.liquidations.realised import REALISED

__all__ = ["CASCADE_COLUMNS", "CascadeParams", "detect_cascades"]

CASCADE_COLUMNS: Final = (
    "climax_ts",
    "climax_px",
    "side",
    "liquidated_usd",
    "retrace_4h",
    "initiation_ts",
    "initiation_px",
    "acceleration_ts",
    "exhaustion_ts",
    "move_pct",
    "volume_x",
    "liquidated_label",
)
"""Columns of :func:`detect_cascades`."""


@dataclass(frozen=True, slots=True)
class CascadeParams:
    """Thresholds of the cascade detector (see the module docstring)."""

    volume_mult: float = 5.0
    trailing_h: int = 168
    lookback_h: int = 24
    min_move_pct: float = 1.0
    min_move_ranges: float = 5.0
    wick_frac: float = 0.2
    merge_h: int = 24
    accel_mult: float = 2.0
    retrace_h: int = 4

    def __post_init__(self) -> None:
        if self.volume_mult <= 1 or self.accel_mult <= 0:
            raise ValueError("volume multiples must be positive (the climax one above 1)")
        if min(self.trailing_h, self.lookback_h, self.merge_h, self.retrace_h) < 1:
            raise ValueError("windows must be at least one bar")
        if not 0 <= self.wick_frac < 1 or self.min_move_pct < 0:
            raise ValueError("wick_frac must be in [0, 1) and min_move_pct non-negative")


def _empty() -> pl.DataFrame:
    ts = pl.Datetime("us", "UTC")
    return pl.DataFrame(
        schema={
            "climax_ts": ts,
            "climax_px": pl.Float64,
            "side": pl.String,
            "liquidated_usd": pl.Float64,
            "retrace_4h": pl.Float64,
            "initiation_ts": ts,
            "initiation_px": pl.Float64,
            "acceleration_ts": ts,
            "exhaustion_ts": ts,
            "move_pct": pl.Float64,
            "volume_x": pl.Float64,
            "liquidated_label": pl.String,
        }
    )


def detect_cascades(
    candles: pl.DataFrame,
    liquidations: pl.DataFrame | None = None,
    params: CascadeParams | None = None,
) -> pl.DataFrame:
    """Liquidation cascades in one series of hourly candles, oldest first.

    Args:
        candles: ``ts`` (bar open, UTC), ``o``, ``h``, ``l``, ``c``, ``volume`` of one venue and
            instrument (hourly bars: windows are counted in bars).
        liquidations: realised liquidations of the same series (``ts``, ``side``,
            ``notional_usd``) to total per cascade; ``None`` leaves ``liquidated_usd`` null.
        params: thresholds.

    Returns:
        One row per cascade with :data:`CASCADE_COLUMNS`; ``side`` is the side liquidated
        (``long`` in a sell cascade), ``move_pct`` the signed move from initiation to climax
        (percent), ``volume_x`` the climax bar's volume over its trailing average.
    """
    p = params or CascadeParams()
    bars = candles.sort("ts").unique("ts", keep="last", maintain_order=True)
    if bars.height < p.lookback_h + 2:
        return _empty()
    ts = bars["ts"]
    o, h, lo, c, v = (bars[k].cast(pl.Float64).to_numpy() for k in ("o", "h", "l", "c", "volume"))
    vol_avg = (
        pl.Series(v).shift(1).rolling_mean(p.trailing_h, min_samples=min(24, p.trailing_h))
    ).to_numpy()
    vol_x = np.divide(v, vol_avg, out=np.full_like(v, np.nan), where=vol_avg > 0)
    prior_hi = pl.Series(h).shift(1).rolling_max(p.lookback_h).to_numpy()
    prior_lo = pl.Series(lo).shift(1).rolling_min(p.lookback_h).to_numpy()
    rng = np.where(h > lo, h - lo, np.nan)
    avg_range = (
        pl.Series((h - lo) / c)
        .shift(1)
        .rolling_mean(p.trailing_h, min_samples=min(24, p.trailing_h))
        .to_numpy()
    )
    floor = np.maximum(p.min_move_pct / 100.0, p.min_move_ranges * avg_range)
    spike = vol_x >= p.volume_mult
    sell = (
        spike & (lo <= prior_lo) & (1.0 - lo / prior_hi >= floor) & ((c - lo) / rng >= p.wick_frac)
    )
    buy = spike & (h >= prior_hi) & (h / prior_lo - 1.0 >= floor) & ((h - c) / rng >= p.wick_frac)
    rows = []
    calm = vol_x < p.accel_mult  # a bar as quiet as exhaustion's (NaN volume is not calm)

    def _exhausted(side: str, group: list[int], j: int) -> bool:
        """Whether the cascade of ``group`` exhausted before candidate ``j``: a calm bar after
        its last candidate that made no new extreme (the next candidate starts a new one)."""
        extreme = min(lo[k] for k in group) if side == "long" else max(h[k] for k in group)
        for b in range(group[-1] + 1, j):
            beyond = lo[b] < extreme if side == "long" else h[b] > extreme
            if calm[b] and not beyond:
                return True
            extreme = min(extreme, lo[b]) if side == "long" else max(extreme, h[b])
        return False

    for side, mask in (("long", sell), ("short", buy)):
        groups: list[list[int]] = []
        for i in np.flatnonzero(mask).tolist():
            if groups and i - groups[-1][-1] < p.merge_h and not _exhausted(side, groups[-1], i):
                groups[-1].append(i)
            else:
                groups.append([i])
        for g in groups:
            k = min(g, key=lambda i: lo[i]) if side == "long" else max(g, key=lambda i: h[i])
            rows.append(_describe(side, k, ts, o, h, lo, c, vol_x, p))
    if not rows:
        return _empty()
    out = pl.DataFrame(rows, schema=_empty().schema).sort("climax_ts")
    if liquidations is not None:
        out = _with_liquidated(out, liquidations, bars)
    return out


def _describe(
    side: str,
    k: int,
    ts: pl.Series,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    vol_x: np.ndarray,
    p: CascadeParams,
) -> dict[str, object]:
    sign = -1.0 if side == "long" else 1.0
    start = max(k - p.lookback_h, 0)
    window = range(start, k)
    if side == "long":
        init = max(window, key=lambda i: h[i])
        init_px, extreme = float(h[init]), float(lo[k])
    else:
        init = min(window, key=lambda i: lo[i])
        init_px, extreme = float(lo[init]), float(h[k])
    accel = next(
        (
            i
            for i in range(init + 1, k + 1)
            if vol_x[i] >= p.accel_mult and sign * (c[i] - o[i]) > 0
        ),
        None,
    )
    n = len(c)
    exhaust = None
    for i in range(k + 1, n):
        new_extreme = lo[i] < extreme if side == "long" else h[i] > extreme
        if vol_x[i] < p.accel_mult and not new_extreme:
            exhaust = i
            break
    after = k + p.retrace_h
    move = extreme - init_px
    retrace = (float(c[after]) - extreme) / -move if after < n and move != 0 else None
    return {
        "climax_ts": ts[k],
        "climax_px": extreme,
        "side": side,
        "liquidated_usd": None,
        "retrace_4h": retrace,
        "initiation_ts": ts[init],
        "initiation_px": init_px,
        "acceleration_ts": None if accel is None else ts[accel],
        "exhaustion_ts": None if exhaust is None else ts[exhaust],
        "move_pct": (extreme / init_px - 1.0) * 100.0,
        "volume_x": float(vol_x[k]),
        "liquidated_label": None,
    }


def _with_liquidated(
    cascades: pl.DataFrame, liquidations: pl.DataFrame, bars: pl.DataFrame
) -> pl.DataFrame:
    """Sum REALISED liquidations of each cascade's side from initiation to exhaustion's end."""
    step = bars["ts"].diff().drop_nulls().median()
    bar = step if isinstance(step, timedelta) else timedelta(hours=1)
    liq = liquidations.select("ts", "side", "notional_usd")
    totals = []
    for r in cascades.iter_rows(named=True):
        end = (r["exhaustion_ts"] or r["climax_ts"]) + bar
        sel = liq.filter(
            (pl.col("side") == r["side"])
            & (pl.col("ts") >= r["initiation_ts"])
            & (pl.col("ts") < end)
        )
        totals.append(float(sel["notional_usd"].sum()))
    return cascades.with_columns(
        liquidated_usd=pl.Series(totals, dtype=pl.Float64), liquidated_label=pl.lit(REALISED)
    )
