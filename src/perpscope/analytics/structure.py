"""Price structure: swings, swing failures, breaks of structure, springs/UTADs, S/R zones.

Playbook (line 57): "The smart money concepts framework provides the confirmation layer — a break
of structure on a lower timeframe, a sweep of a key level, or a change of character on the micro
structure." The playbook describes these loosely; perpscope detects them by these rules, each
evaluated bar by bar with only the bars closed so far (no look-ahead):

- **Swing high (low)** of width ``w``: a bar whose high (low) is strictly above (below) the highs
  (lows) of the ``w`` bars on each side. It is *confirmed* ``w`` bars later, at the close of bar
  ``i + w``, and only from then on is it a level the other rules use. A level stays *active* until
  a wick trades through it or it is older than ``max_age`` bars.
- **Swing failure pattern (SFP)**, bearish: the bar's high trades above one or more active swing
  highs and the bar closes back below all of them ("price taps $47,350 (above the prior high at
  $47,200), then immediately reverses below $47,200", line 96). Bullish mirrors it on lows. The
  reported level is the most extreme level swept.
- **Break of structure (BOS)** and **change of character (CHoCH)**: a close beyond the latest
  confirmed swing high (up) or low (down), once per swing. The first break against the prevailing
  direction (set by the previous break) is a CHoCH, a break with it is a BOS.
- **Spring** (Wyckoff), bullish: a wick below an active swing low, reclaimed by a close back above
  that low within ``reclaim_bars`` bars of the sweep, with the largest volume from the sweep to the
  reclaim at least ``vol_mult`` times the mean volume of the ``vol_window`` bars before the sweep
  ("Price sweeps below $2,620 (prior swing low), finds aggressive buying [...] and reclaims $2,650
  [...] Volume on the spring candle is 4.2x the 20-period average", line 112). **UTAD** mirrors it
  above a swing high. A one-bar spring is also a bullish SFP; the spring adds the volume test and
  allows a slower reclaim. When several swept levels are reclaimed on one bar, the one with the
  largest volume multiple is reported (on a tie, the most extreme level).
- **Support/resistance zones**: confirmed swing points (up to a time) clustered by price: in
  ascending order, a point joins the current zone while it is within ``tolerance`` (a fraction of
  price) above the zone's lowest point, so no zone is wider than ``tolerance``. A zone's
  strength is its number of touches; it is support below the last close and resistance above
  (or ``inside`` when the close is within it).
- **Lower-timeframe confirmation**: for a higher-timeframe setup at ``ts`` in a direction, the first
  lower-timeframe break (BOS or CHoCH), SFP or spring in that direction within ``within_h`` hours
  after ``ts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import numpy as np
import polars as pl

from perpscope.analytics._chart_kernels import (
    cluster_kernel,
    positions,
    series_bounds,
    sort_with_bounds,
    structure_kernel,
)
from perpscope.analytics._rolling import require_columns

__all__ = [
    "StructureParams",
    "ltf_confirmation",
    "structure",
    "structure_events",
    "zones",
]

_SERIES: Final = ["venue", "instrument"]


@dataclass(frozen=True, slots=True)
class StructureParams:
    """Parameters of :func:`structure`.

    Attributes:
        width: fractal width of a swing (bars on each side).
        max_age: bars after which an untouched swing level is no longer active.
        reclaim_bars: bars after a sweep within which a close back makes a spring or UTAD.
        vol_mult: volume multiple a spring or UTAD needs (the playbook's examples show 3x and
            4.2x; 2.0 is the default threshold).
        vol_window: bars of the volume average (the playbook's "20-period average").
    """

    width: int = 3
    max_age: int = 500
    reclaim_bars: int = 3
    vol_mult: float = 2.0
    vol_window: int = 20

    def __post_init__(self) -> None:
        if self.width < 1 or self.max_age < 1 or self.reclaim_bars < 0 or self.vol_window < 1:
            raise ValueError("width, max_age, vol_window must be >= 1 and reclaim_bars >= 0")
        if not self.vol_mult > 0:
            raise ValueError("vol_mult must be positive")


def structure(candles: pl.DataFrame, params: StructureParams | None = None) -> pl.DataFrame:
    """Every structure rule per bar (see the module docstring for the exact rules).

    Args:
        candles: ``venue instrument ts h l c volume`` of one timeframe, any order.
        params: :class:`StructureParams`.

    Returns:
        ``venue instrument ts h l c volume new_swing_high new_swing_low sfp sfp_level brk
        brk_kind brk_level spring spring_level spring_extreme spring_vol_mult``, sorted by series
        and ts. ``new_swing_*`` hold the level of a swing confirmed at this bar; ``sfp``, ``brk``
        and ``spring`` are +1 (bullish), -1 (bearish) or 0; ``brk_kind`` is ``bos`` or ``choch``;
        ``spring`` +1 is a spring and -1 a UTAD. Missing values are null.
    """
    p = params or StructureParams()
    require_columns(candles, ("venue", "instrument", "ts", "h", "l", "c", "volume"), "structure")
    frame, bounds = sort_with_bounds(
        candles.select(*_SERIES, "ts", "h", "l", "c", "volume"), _SERIES
    )
    volume = frame["volume"].cast(pl.Float64).fill_null(0.0).to_numpy()
    # mean volume of the vol_window bars before each bar, inside its own series only
    vol_avg = (
        pl.Series(volume).rolling_mean(p.vol_window).shift(1).fill_null(np.nan).to_numpy().copy()
    )
    vol_avg[positions(bounds) < p.vol_window] = np.nan
    cols = structure_kernel(
        frame["h"].cast(pl.Float64).to_numpy(),
        frame["l"].cast(pl.Float64).to_numpy(),
        frame["c"].cast(pl.Float64).to_numpy(),
        volume,
        vol_avg,
        bounds,
        p.width,
        p.max_age,
        p.reclaim_bars,
        p.vol_mult,
    )
    names = (
        "new_swing_high",
        "new_swing_low",
        "sfp",
        "sfp_level",
        "brk",
        "brk_kind",
        "brk_level",
        "spring",
        "spring_level",
        "spring_extreme",
        "spring_vol_mult",
    )
    arrays: list[np.ndarray] = list(cols)
    kinds = pl.Series("brk_kind", [None, "bos", "choch"], dtype=pl.String)  # by BREAK_* code
    return frame.with_columns(
        kinds.gather(values)
        if name == "brk_kind"
        else pl.Series(name, values, nan_to_null=values.dtype.kind == "f")
        for name, values in zip(names, arrays, strict=True)
    )


_EVENT_COLUMNS: Final = ("sfp", "brk", "spring")


def structure_events(frame: pl.DataFrame) -> pl.DataFrame:
    """The bars of :func:`structure`'s output where a rule fired, one row per event.

    ``frame`` is that output or a filter of it: its rows are in series and time order, and the
    events keep that order (a bar's events by name).

    Returns:
        ``venue instrument ts event direction level extreme vol_mult`` where ``event`` is
        ``sfp``, ``bos``, ``choch``, ``spring`` or ``utad`` and ``direction`` ``long`` (bullish)
        or ``short``.
    """
    direction = {1: "long", -1: "short"}
    rows = frame.lazy().with_row_index("_row")
    parts = [
        rows.filter(pl.col("sfp") != 0).select(
            "_row",
            *_SERIES,
            "ts",
            pl.lit("sfp").alias("event"),
            pl.col("sfp").replace_strict(direction, return_dtype=pl.String).alias("direction"),
            pl.col("sfp_level").alias("level"),
            pl.when(pl.col("sfp") > 0).then(pl.col("l")).otherwise(pl.col("h")).alias("extreme"),
            pl.lit(None, dtype=pl.Float64).alias("vol_mult"),
        ),
        rows.filter(pl.col("brk") != 0).select(
            "_row",
            *_SERIES,
            "ts",
            pl.col("brk_kind").alias("event"),
            pl.col("brk").replace_strict(direction, return_dtype=pl.String).alias("direction"),
            pl.col("brk_level").alias("level"),
            pl.col("c").alias("extreme"),
            pl.lit(None, dtype=pl.Float64).alias("vol_mult"),
        ),
        rows.filter(pl.col("spring") != 0).select(
            "_row",
            *_SERIES,
            "ts",
            pl.when(pl.col("spring") > 0)
            .then(pl.lit("spring"))
            .otherwise(pl.lit("utad"))
            .alias("event"),
            pl.col("spring").replace_strict(direction, return_dtype=pl.String).alias("direction"),
            pl.col("spring_level").alias("level"),
            pl.col("spring_extreme").alias("extreme"),
            pl.col("spring_vol_mult").alias("vol_mult"),
        ),
    ]
    # structure()'s rows are sorted by series and ts: the row number sorts the same way.
    return pl.concat(parts).sort("_row", "event").drop("_row").collect()


def zones(
    frame: pl.DataFrame,
    tolerance: float = 0.005,
    min_touches: int = 2,
    last_bars: int | None = None,
) -> pl.DataFrame:
    """Support and resistance zones from the confirmed swings of :func:`structure`'s output.

    Args:
        frame: :func:`structure` output (sorted by series and ts, as it returns it), all rows
            up to the time of interest.
        tolerance: largest width of a zone, as a fraction of its lowest price (0.005 = 0.5%).
        min_touches: swings a zone needs.
        last_bars: only the swings confirmed in each series' last ``last_bars`` bars (all when
            None).

    Returns:
        ``venue instrument low_px high_px mid_px touches last_ts kind distance_pct`` per zone,
        where ``kind`` is ``support`` (below the last close), ``resistance`` (above) or
        ``inside``, and ``distance_pct`` the zone's nearest edge from the last close as a signed
        fraction (0 inside). Sorted by series and ``low_px``.
    """
    if not tolerance > 0 or min_touches < 1 or (last_bars is not None and last_bars < 1):
        raise ValueError("tolerance must be positive, min_touches and last_bars >= 1")
    bounds = series_bounds(frame, _SERIES)
    if last_bars is not None:
        sizes = np.diff(bounds)
        frame = frame.filter(pl.Series(positions(bounds) >= np.repeat(sizes, sizes) - last_bars))
        # each series keeps its last min(size, last_bars) rows, in the same order
        bounds = np.concatenate(([0], np.cumsum(np.minimum(sizes, last_bars)))).astype(np.int64)
    last = frame[bounds[1:] - 1].select(*_SERIES, pl.col("c").alias("last_px"))
    swings = pl.concat(
        [
            frame.filter(pl.col(col).is_not_null()).select(*_SERIES, "ts", pl.col(col).alias("px"))
            for col in ("new_swing_high", "new_swing_low")
        ]
    ).sort(*_SERIES, "px")
    grouped = swings.with_columns(
        pl.Series(
            "_zone",
            cluster_kernel(
                swings["px"].cast(pl.Float64).to_numpy(), series_bounds(swings, _SERIES), tolerance
            ),
        )
    )
    out = (
        grouped.group_by(*_SERIES, "_zone")
        .agg(
            pl.col("px").min().alias("low_px"),
            pl.col("px").max().alias("high_px"),
            pl.col("px").mean().alias("mid_px"),
            pl.len().alias("touches"),
            pl.col("ts").max().alias("last_ts"),
        )
        .filter(pl.col("touches") >= min_touches)
        .join(last, on=_SERIES)
    )
    return (
        out.with_columns(
            pl.when(pl.col("high_px") < pl.col("last_px"))
            .then(pl.lit("support"))
            .when(pl.col("low_px") > pl.col("last_px"))
            .then(pl.lit("resistance"))
            .otherwise(pl.lit("inside"))
            .alias("kind"),
            pl.when(pl.col("high_px") < pl.col("last_px"))
            .then(pl.col("high_px") / pl.col("last_px") - 1.0)
            .when(pl.col("low_px") > pl.col("last_px"))
            .then(pl.col("low_px") / pl.col("last_px") - 1.0)
            .otherwise(pl.lit(0.0))
            .alias("distance_pct"),
        )
        .drop("_zone", "last_px")
        .sort(*_SERIES, "low_px")
    )


def ltf_confirmation(
    setups: pl.DataFrame, ltf_events: pl.DataFrame, within_h: float = 12.0
) -> pl.DataFrame:
    """The first lower-timeframe confirmation of each higher-timeframe setup.

    Args:
        setups: ``venue instrument ts direction`` (``long``/``short``), e.g. a funding extreme
            or a higher-timeframe SFP.
        ltf_events: :func:`structure_events` of the lower timeframe.
        within_h: hours after the setup in which the confirmation must come.

    Returns:
        ``setups`` with ``confirm_ts confirm_event confirm_level`` (null when nothing confirmed
        in time). A confirmation is a BOS, CHoCH, SFP, spring or UTAD in the setup's direction
        strictly after the setup's ``ts``.
    """
    require_columns(setups, ("venue", "instrument", "ts", "direction"), "ltf_confirmation")
    if not within_h > 0:
        raise ValueError("within_h must be positive")
    events = ltf_events.select(
        *_SERIES,
        "direction",
        pl.col("ts").alias("confirm_ts"),
        pl.col("event").alias("confirm_event"),
        pl.col("level").alias("confirm_level"),
    ).sort("confirm_ts")
    left = setups.with_columns((pl.col("ts") + timedelta(microseconds=1)).alias("_after")).sort(
        "_after"
    )
    joined = left.join_asof(
        events,
        left_on="_after",
        right_on="confirm_ts",
        by=[*_SERIES, "direction"],
        strategy="forward",
        tolerance=timedelta(hours=within_h) - timedelta(microseconds=1),
        check_sortedness=False,  # sorted by time overall, hence within every group
    )
    return joined.drop("_after").sort(*_SERIES, "ts")
