"""Options positioning: the chain as of a time, put/call ratios, max pain, OI walls, unusual flow.

Every function is pure: polars frames in, new polars frames (or plain records) out; no clock, no
store. Frames follow the ``options_snapshot`` table of :mod:`perpscope.domain.schema` (one row per
instrument and snapshot time ``ts``); each function names the columns it needs.

Time is always the snapshot's: an option is expired when its ``expiry_ts`` is at or before the time
of the chain it is read in, never the wall clock.

The playbook (``brief/derivatives-playbook.txt``, "Options flow"): "The put/call ratio measures the
volume of put options (bearish bets) relative to call options (bullish bets) ... most useful at
extremes"; "Max pain is the price at which the maximum number of options contracts expire
worthless"; "A sudden purchase of $10 million in BTC call options ... These trades are not made
casually."
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

__all__ = [
    "PcrReading",
    "PutCallTotals",
    "chain_as_of",
    "max_pain",
    "max_pain_curve",
    "oi_walls",
    "pcr_history",
    "pcr_percentile",
    "pcr_reading",
    "put_call_ratios",
    "put_call_totals",
    "snapshot_groups",
    "with_contract_size",
]

DAY_S: Final = 86_400.0
OI_COL: Final = "open_interest_contracts"
VOLUME_COL: Final = "volume_contracts"
_OI: Final = OI_COL
_VOL: Final = VOLUME_COL
_US: Final = pl.Datetime("us", "UTC")

FloatArray = npt.NDArray[np.float64]


def with_contract_size(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with a ``contract_size_base`` column (1 base unit per contract when absent)."""
    if "contract_size_base" not in frame.columns:
        return frame.with_columns(pl.lit(1.0).alias("contract_size_base"))
    return frame


def _floats(frame: pl.DataFrame, name: str, default: float = 0.0) -> FloatArray:
    """A column as a float array, nulls (and a missing column) as ``default``."""
    if name not in frame.columns:
        return np.full(frame.height, default)
    col = frame[name]
    if col.dtype == pl.Float64 and col.null_count() == 0:
        return col.to_numpy()  # zero-copy
    return col.cast(pl.Float64).fill_null(default).to_numpy()


def _expiry_us(frame: pl.DataFrame) -> npt.NDArray[np.int64]:
    col = frame["expiry_ts"]
    if col.dtype != _US:
        col = col.dt.cast_time_unit("us").dt.convert_time_zone("UTC")
    if col.null_count():
        raise ValueError("expiry_ts has nulls")
    return col.to_numpy().view(np.int64)  # zero-copy: epoch microseconds


def _side(chain: pl.DataFrame) -> npt.NDArray[np.int64]:
    """0 for calls, 1 for puts, 2 for anything else (never counted)."""
    is_call = (chain["option_type"] == "C").to_numpy()
    is_put = (chain["option_type"] == "P").to_numpy()
    return np.where(is_call, 0, np.where(is_put, 1, 2)).astype(np.int64)


def _expiry_series(expiry_us: npt.NDArray[np.int64]) -> tuple[pl.Series, pl.Series]:
    """``expiry`` (UTC date) and ``expiry_ts`` series from epoch microseconds."""
    day = expiry_us.astype("datetime64[us]").astype("datetime64[D]")
    return pl.Series("expiry", day), pl.Series("expiry_ts", expiry_us, dtype=_US)


def _nullable(name: str, values: FloatArray) -> pl.Series:
    return pl.Series(name, values, dtype=pl.Float64, nan_to_null=True)


# ----------------------------------------------------------------------------- the chain


def snapshot_groups(ts: pl.Series, gap_s: float = 60.0) -> pl.Series:
    """Group quote times into snapshots: a new snapshot starts after a pause longer than ``gap_s``.

    A chain read instrument by instrument (Deribit's ``ticker``) takes a minute or two; its rows
    carry their own quote times. Each returned value is the time of its group's last quote (the
    moment the snapshot was complete), aligned with the input order.
    """
    if ts.len() == 0:
        return ts
    frame = pl.DataFrame({"ts": ts, "_i": pl.int_range(ts.len(), eager=True)}).sort("ts")
    gap = frame["ts"].diff().dt.total_microseconds().fill_null(0) > int(gap_s * 1e6)
    return (
        frame.with_columns(gap.cast(pl.Int64).cum_sum().alias("_g"))
        .with_columns(pl.col("ts").max().over("_g"))
        .sort("_i")["ts"]
        .alias(ts.name)
    )


def chain_as_of(snapshots: pl.DataFrame, as_of: datetime | None = None) -> pl.DataFrame:
    """The chain as of a time: the latest row per instrument at or before ``as_of``.

    Options already expired at the chain's time (the latest selected ``ts``) are dropped, so a
    stale row of an instrument that has since expired never counts.

    Args:
        snapshots: rows with ``instrument``, ``ts``, ``expiry_ts`` and any other columns.
        as_of: read the chain as it stood at this time; ``None`` takes the latest rows.

    Returns:
        The selected rows plus ``chain_ts`` (the chain's time) and ``days_to_expiry`` (from
        ``chain_ts``); empty when nothing is at or before ``as_of``.
    """
    rows = snapshots if as_of is None else snapshots.filter(pl.col("ts") <= as_of)
    if rows.height == 0:
        return rows.with_columns(
            pl.col("ts").alias("chain_ts"), pl.lit(None, pl.Float64).alias("days_to_expiry")
        )
    latest = rows.sort("ts").group_by("instrument", maintain_order=True).last()
    chain_ts = latest["ts"].max()
    return (
        latest.with_columns(pl.lit(chain_ts).cast(latest.schema["ts"]).alias("chain_ts"))
        .filter(pl.col("expiry_ts") > pl.col("chain_ts"))
        .with_columns(
            (
                (pl.col("expiry_ts") - pl.col("chain_ts")).dt.total_microseconds() / (DAY_S * 1e6)
            ).alias("days_to_expiry")
        )
        .sort("expiry_ts", "strike_px", "option_type")
    )


# ----------------------------------------------------------------------------- put/call ratios


@dataclass(frozen=True, slots=True)
class PutCallTotals:
    """Aggregate put/call open interest and volume of a chain, in contracts."""

    put_oi: float
    call_oi: float
    put_volume: float
    call_volume: float

    @property
    def pcr_oi(self) -> float | None:
        """Put OI / call OI; ``None`` when there is no call OI."""
        return self.put_oi / self.call_oi if self.call_oi > 0 else None

    @property
    def pcr_volume(self) -> float | None:
        """Put volume / call volume; ``None`` when there is no call volume."""
        return self.put_volume / self.call_volume if self.call_volume > 0 else None


def _side_sums(frame: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    put = pl.col("option_type") == "P"
    call = pl.col("option_type") == "C"
    aggs = [
        pl.col(_OI).filter(put).sum().alias("put_oi"),
        pl.col(_OI).filter(call).sum().alias("call_oi"),
        pl.col(_VOL).filter(put).sum().alias("put_volume"),
        pl.col(_VOL).filter(call).sum().alias("call_volume"),
    ]
    if not by:
        return frame.select(aggs)
    return frame.group_by(by).agg(aggs)


def _ratio(num: str, den: str) -> pl.Expr:
    return pl.when(pl.col(den) > 0).then(pl.col(num) / pl.col(den)).otherwise(None)


def put_call_totals(chain: pl.DataFrame) -> PutCallTotals:
    """Aggregate put and call OI and volume (contracts) of a chain.

    Needs ``option_type`` (C | P), ``open_interest_contracts`` and ``volume_contracts`` (nulls
    count as zero).
    """
    side = _side(chain)
    oi = np.bincount(side, weights=_floats(chain, _OI), minlength=3)
    vol = np.bincount(side, weights=_floats(chain, _VOL), minlength=3)
    return PutCallTotals(float(oi[1]), float(oi[0]), float(vol[1]), float(vol[0]))


def put_call_ratios(chain: pl.DataFrame) -> pl.DataFrame:
    """Put/call ratios per expiry, by open interest and by 24h volume.

    Needs ``expiry_ts``, ``option_type``, ``open_interest_contracts``, ``volume_contracts``
    (nulls count as zero).

    Returns:
        One row per expiry, sorted: ``expiry`` (date), ``expiry_ts``, ``put_oi``, ``call_oi``,
        ``put_volume``, ``call_volume``, ``pcr_oi``, ``pcr_volume`` (null when the call side is
        zero) and ``note`` (why a ratio is null: a one-sided expiry or no activity).
    """
    expiries, group = np.unique(_expiry_us(chain), return_inverse=True)
    slot = group * 3 + _side(chain)
    n = expiries.size
    oi = np.bincount(slot, weights=_floats(chain, _OI), minlength=3 * n).reshape(n, 3)
    vol = np.bincount(slot, weights=_floats(chain, _VOL), minlength=3 * n).reshape(n, 3)
    call_oi, put_oi, call_vol, put_vol = oi[:, 0], oi[:, 1], vol[:, 0], vol[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        pcr_oi = np.where(call_oi > 0, put_oi / call_oi, np.nan)
        pcr_vol = np.where(call_vol > 0, put_vol / call_vol, np.nan)
    notes = [
        "no open interest"
        if p == 0 and c == 0
        else "no call open interest (puts only)"
        if c == 0
        else "no call volume"
        if cv == 0
        else None
        for p, c, cv in zip(put_oi.tolist(), call_oi.tolist(), call_vol.tolist(), strict=True)
    ]
    return pl.DataFrame(
        [
            *_expiry_series(expiries),
            pl.Series("put_oi", put_oi),
            pl.Series("call_oi", call_oi),
            pl.Series("put_volume", put_vol),
            pl.Series("call_volume", call_vol),
            _nullable("pcr_oi", pcr_oi),
            _nullable("pcr_volume", pcr_vol),
            pl.Series("note", notes, dtype=pl.String),
        ]
    )


def pcr_history(snapshots: pl.DataFrame) -> pl.DataFrame:
    """Aggregate put/call ratios of every stored snapshot time.

    Each distinct ``ts`` is one snapshot; options expired at that time are left out.

    Returns:
        ``ts``, ``pcr_oi``, ``pcr_volume``, sorted by ``ts`` (ratios null when no calls).
    """
    live = snapshots.filter(pl.col("expiry_ts") > pl.col("ts"))
    return (
        _side_sums(live, ["ts"])
        .sort("ts")
        .select(
            "ts",
            _ratio("put_oi", "call_oi").alias("pcr_oi"),
            _ratio("put_volume", "call_volume").alias("pcr_volume"),
        )
    )


def pcr_percentile(history: pl.Series, value: float | None, min_history: int = 5) -> float | None:
    """Where ``value`` stands in ``history``: the fraction of past values at or below it.

    Returns ``None`` when ``value`` is ``None`` or fewer than ``min_history`` past values exist.
    """
    past = history.drop_nulls()
    if value is None or past.len() < min_history:
        return None
    return float((past <= value).sum()) / past.len()


@dataclass(frozen=True, slots=True)
class PcrReading:
    """The playbook's reading of a put/call ratio."""

    positioning: str
    extreme: str | None
    contrarian: str | None
    basis: str


def pcr_reading(
    pcr: float | None,
    percentile: float | None = None,
    *,
    extreme_low: float = 0.4,
    extreme_high: float = 1.2,
    pct_low: float = 0.1,
    pct_high: float = 0.9,
) -> PcrReading:
    """Read a put/call ratio the playbook's way.

    "A ratio above 1.0 means more puts ... (bearish positioning). A ratio below 1.0 means more calls
    than puts (bullish positioning). ... An extremely low put/call ratio (heavy call buying) at
    market highs is a contrarian bearish signal ... An extremely high ratio (heavy put buying) at
    market lows is a contrarian bullish signal."

    "Extreme" is perpscope's rule: at or beyond the ``pct_low``/``pct_high`` percentile of history
    when history exists, otherwise at or beyond the absolute ``extreme_low``/``extreme_high``.
    """
    if pcr is None:
        return PcrReading("unknown", None, None, "no call side: ratio undefined")
    positioning = "bearish" if pcr > 1.0 else "bullish" if pcr < 1.0 else "neutral"
    if percentile is not None:
        low, high = percentile <= pct_low, percentile >= pct_high
        basis = f"percentile {percentile:.2f} of history (extremes <= {pct_low}, >= {pct_high})"
    else:
        low, high = pcr <= extreme_low, pcr >= extreme_high
        basis = f"no history: absolute extremes <= {extreme_low}, >= {extreme_high}"
    if low:
        return PcrReading(positioning, "low", "contrarian bearish (call-heavy complacency)", basis)
    if high:
        return PcrReading(positioning, "high", "contrarian bullish (put-heavy fear)", basis)
    return PcrReading(positioning, None, None, basis)


# ----------------------------------------------------------------------------- max pain


@dataclass(frozen=True, slots=True)
class _Curve:
    """Payout curve arrays: one entry per (expiry, listed strike), sorted; ``seg`` numbers the
    expiries and ``starts`` indexes each expiry's first strike."""

    expiry_us: npt.NDArray[np.int64]
    strike: FloatArray
    call_oi: FloatArray
    put_oi: FloatArray
    call_pay: FloatArray
    put_pay: FloatArray
    pay: FloatArray
    seg: npt.NDArray[np.int64]
    starts: npt.NDArray[np.int64]
    first_row: npt.NDArray[np.int64]


def _payout_curve(chain: pl.DataFrame, *, per_strike: bool) -> _Curve:
    """The running-sum payout kernel on plain arrays (see :func:`max_pain_curve`).

    With ``per_strike`` the options of each listed strike are summed first (one entry per
    strike); without, entries are the chain's rows in (expiry, strike) order. Options at the
    strike itself pay nothing there, so both give every strike the same payout.
    """
    e = _expiry_us(chain)
    k = chain["strike_px"].cast(pl.Float64).to_numpy()
    is_call = (chain["option_type"] == "C").to_numpy()
    oi = _floats(chain, _OI) * _floats(chain, "contract_size_base", 1.0)
    order = np.lexsort((k, e))
    e, k, is_call, oi = e[order], k[order], is_call[order], oi[order]
    c, p = np.where(is_call, oi, 0.0), np.where(is_call, 0.0, oi)
    if per_strike and e.size:
        new = np.ones(e.size, dtype=bool)
        new[1:] = (e[1:] != e[:-1]) | (k[1:] != k[:-1])
        rows = np.flatnonzero(new)
        c, p = np.add.reduceat(c, rows), np.add.reduceat(p, rows)
        e_u, k_u, first_row = e[rows], k[rows], order[rows]
    else:
        e_u, k_u, first_row = e, k, order
    gnew = np.ones(e_u.size, dtype=bool)
    gnew[1:] = e_u[1:] != e_u[:-1]
    starts = np.flatnonzero(gnew)
    seg = np.cumsum(gnew) - 1

    def running(x: FloatArray) -> FloatArray:
        """Sum of x over this expiry's strikes up to and including each one."""
        total = np.cumsum(x)
        return np.asarray(total - (total - x)[starts][seg], dtype=np.float64)

    def expiry_total(x: FloatArray) -> FloatArray:
        return np.asarray(np.add.reduceat(x, starts)[seg], dtype=np.float64)

    # Puts through parity of payoffs, (K - S)+ = K - S + (S - K)+, so one pair of running sums
    # over all OI gives the total: pay = S W(<=S) - WK(<=S) + PK(all) - S P(all).
    w = c + p
    pay = k_u * running(w) - running(w * k_u) + expiry_total(p * k_u) - k_u * expiry_total(p)
    call_pay = k_u * running(c) - running(c * k_u) if per_strike else np.zeros(k_u.size)
    put_pay = pay - call_pay
    # running sums leave tiny negatives where the exact payout is 0
    return _Curve(
        e_u, k_u, c, p, np.maximum(call_pay, 0.0), np.maximum(put_pay, 0.0),
        np.maximum(pay, 0.0), seg, starts, first_row,
    )  # fmt: skip


def max_pain_curve(chain: pl.DataFrame) -> pl.DataFrame:
    """Total USD payout to option holders if each expiry settled at each of its listed strikes.

    Payout at settlement ``S``: calls pay ``(S - K)+``, puts ``(K - S)+``, per base unit, times
    open interest in base units (contracts x ``contract_size_base``, 1 when absent). Computed with
    running sums over sorted strikes, ``O(n log n)``: the call payout at ``K_j`` is
    ``K_j * sum(c_i) - sum(c_i K_i)`` over ``K_i <= K_j``; puts follow from the parity of payoffs
    ``(K - S)+ = K - S + (S - K)+``.

    Needs ``expiry_ts``, ``strike_px``, ``option_type``, ``open_interest_contracts``.

    Returns:
        ``expiry_ts``, ``strike_px``, ``call_oi_base``, ``put_oi_base``, ``call_payout_usd``,
        ``put_payout_usd``, ``payout_usd`` (USD rounded to cents); sorted by expiry and strike.
    """
    cv = _payout_curve(chain, per_strike=True)
    return pl.DataFrame(
        [
            pl.Series("expiry_ts", cv.expiry_us, dtype=_US),
            pl.Series("strike_px", cv.strike),
            pl.Series("call_oi_base", cv.call_oi),
            pl.Series("put_oi_base", cv.put_oi),
            pl.Series("call_payout_usd", cv.call_pay.round(2)),
            pl.Series("put_payout_usd", cv.put_pay.round(2)),
            pl.Series("payout_usd", cv.pay.round(2)),
        ]
    )


def max_pain(
    chain: pl.DataFrame, spot_px: float | None = None, *, rel_tol: float = 1e-12
) -> pl.DataFrame:
    """Max pain per expiry: the listed strike minimising the total USD payout to option holders.

    This is the settlement price at which option writers pay least, i.e. where the most value (not
    the most contracts, as the playbook loosely says) expires worthless. Payouts within ``rel_tol``
    x (the expiry's OI x its largest strike, the scale of the sums) of the minimum tie; ties go to
    the strike nearest ``spot_px`` (then the lower strike). An expiry without open interest has no
    max pain (null, with the reason).

    Needs the columns of :func:`max_pain_curve`, plus ``days_to_expiry`` when present (see
    :func:`chain_as_of`).

    Returns:
        One row per expiry: ``expiry`` (date), ``expiry_ts``, ``max_pain_px``, ``spot_px``,
        ``distance_pct`` ((max pain - spot) / spot), ``days_to_expiry``, ``payout_usd`` at max
        pain (rounded to cents), ``oi_base`` and ``reason`` (null when max pain exists).
    """
    cv = _payout_curve(chain, per_strike=False)
    pay = cv.pay
    if pay.size == 0:
        return _empty_max_pain()
    oi = np.add.reduceat(cv.call_oi + cv.put_oi, cv.starts)
    k_max = np.maximum.reduceat(np.abs(cv.strike), cv.starts)
    low = np.minimum.reduceat(pay, cv.starts)
    tied = np.flatnonzero(pay <= (low + rel_tol * oi * k_max)[cv.seg])
    dist = np.abs(cv.strike - spot_px) if spot_px is not None else np.zeros(pay.size)
    ranked = tied[np.lexsort((cv.strike[tied], dist[tied], cv.seg[tied]))]
    first = np.ones(ranked.size, dtype=bool)
    first[1:] = cv.seg[ranked][1:] != cv.seg[ranked][:-1]
    best = ranked[first]
    has_oi = oi > 0
    strike = np.where(has_oi, cv.strike[best], np.nan)
    spot = np.nan if spot_px is None else spot_px
    days = (
        _floats(chain, "days_to_expiry", np.nan)[cv.first_row[cv.starts]]
        if "days_to_expiry" in chain.columns
        else np.full(oi.size, np.nan)
    )
    return pl.DataFrame(
        [
            *_expiry_series(cv.expiry_us[cv.starts]),
            _nullable("max_pain_px", strike),
            _nullable("spot_px", np.full(oi.size, spot)),
            _nullable("distance_pct", (strike - spot) / spot),
            _nullable("days_to_expiry", days),
            _nullable("payout_usd", np.where(has_oi, pay[best], np.nan).round(2)),
            pl.Series("oi_base", oi),
            pl.Series("reason", [None if h else "no open interest" for h in has_oi.tolist()],
                      dtype=pl.String),
        ]
    )  # fmt: skip


def _empty_max_pain() -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {
        "expiry": pl.Date(),
        "expiry_ts": _US,
        **{c: pl.Float64() for c in ("max_pain_px", "spot_px", "distance_pct", "days_to_expiry",
                                     "payout_usd", "oi_base")},
        "reason": pl.String(),
    }  # fmt: skip
    return pl.DataFrame(schema=schema)


# ----------------------------------------------------------------------------- OI walls


def oi_walls(chain: pl.DataFrame, spot_px: float | None) -> pl.DataFrame:
    """Open interest by expiry and strike (the walls), in contracts and USD notional.

    USD notional is one-sided: contracts x ``contract_size_base`` x ``spot_px`` (null without a
    spot). Needs ``expiry_ts``, ``strike_px``, ``option_type``, ``open_interest_contracts``.

    Returns:
        ``expiry`` (date), ``expiry_ts``, ``strike_px``, ``call_oi_contracts``,
        ``put_oi_contracts``, ``oi_contracts``, ``call_oi_usd``, ``put_oi_usd``, ``oi_usd`` and
        ``share_of_expiry`` (this strike's share of its expiry's OI), sorted by expiry and strike.
    """
    frame = with_contract_size(chain)
    oi = pl.col(_OI).fill_null(0.0)
    usd = oi * pl.col("contract_size_base").fill_null(1.0) * pl.lit(spot_px, pl.Float64)
    call, put = pl.col("option_type") == "C", pl.col("option_type") == "P"
    walls = (
        frame.group_by("expiry_ts", "strike_px")
        .agg(
            oi.filter(call).sum().alias("call_oi_contracts"),
            oi.filter(put).sum().alias("put_oi_contracts"),
            usd.filter(call).sum().alias("call_oi_usd"),
            usd.filter(put).sum().alias("put_oi_usd"),
        )
        .sort("expiry_ts", "strike_px")
    )
    if spot_px is None:
        walls = walls.with_columns(
            pl.lit(None, pl.Float64).alias("call_oi_usd"),
            pl.lit(None, pl.Float64).alias("put_oi_usd"),
        )
    total = pl.col("call_oi_contracts") + pl.col("put_oi_contracts")
    expiry_total = total.sum().over("expiry_ts")
    return walls.select(
        pl.col("expiry_ts").dt.date().alias("expiry"),
        "expiry_ts",
        "strike_px",
        "call_oi_contracts",
        "put_oi_contracts",
        total.alias("oi_contracts"),
        "call_oi_usd",
        "put_oi_usd",
        (pl.col("call_oi_usd") + pl.col("put_oi_usd")).alias("oi_usd"),
        pl.when(expiry_total > 0)
        .then(total / expiry_total)
        .otherwise(None)
        .alias("share_of_expiry"),
    )
