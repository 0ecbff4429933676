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
    "unusual_oi_changes",
    "unusual_trades",
    "unusual_volume",
]

DAY_S: Final = 86_400.0
_OI: Final = "open_interest_contracts"
_VOL: Final = "volume_contracts"


def _with_size(frame: pl.DataFrame) -> pl.DataFrame:
    if "contract_size_base" not in frame.columns:
        return frame.with_columns(pl.lit(1.0).alias("contract_size_base"))
    return frame


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
    row = _side_sums(chain, []).row(0, named=True)
    return PutCallTotals(
        float(row["put_oi"] or 0.0),
        float(row["call_oi"] or 0.0),
        float(row["put_volume"] or 0.0),
        float(row["call_volume"] or 0.0),
    )


def put_call_ratios(chain: pl.DataFrame) -> pl.DataFrame:
    """Put/call ratios per expiry, by open interest and by 24h volume.

    Needs ``expiry_ts``, ``option_type``, ``open_interest_contracts``, ``volume_contracts``.

    Returns:
        One row per expiry, sorted: ``expiry`` (date), ``expiry_ts``, ``put_oi``, ``call_oi``,
        ``put_volume``, ``call_volume``, ``pcr_oi``, ``pcr_volume`` (null when the call side is
        zero) and ``note`` (why a ratio is null: a one-sided expiry or no activity).
    """
    sums = _side_sums(chain, ["expiry_ts"]).sort("expiry_ts")
    return sums.select(
        pl.col("expiry_ts").dt.date().alias("expiry"),
        "expiry_ts",
        "put_oi",
        "call_oi",
        "put_volume",
        "call_volume",
        _ratio("put_oi", "call_oi").alias("pcr_oi"),
        _ratio("put_volume", "call_volume").alias("pcr_volume"),
        pl.when((pl.col("put_oi") == 0) & (pl.col("call_oi") == 0))
        .then(pl.lit("no open interest"))
        .when(pl.col("call_oi") == 0)
        .then(pl.lit("no call open interest (puts only)"))
        .when(pl.col("call_volume") == 0)
        .then(pl.lit("no call volume"))
        .otherwise(None)
        .alias("note"),
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


def max_pain_curve(chain: pl.DataFrame) -> pl.DataFrame:
    """Total USD payout to option holders if each expiry settled at each of its listed strikes.

    Payout at settlement ``S``: calls pay ``(S - K)+``, puts ``(K - S)+``, per base unit, times
    open interest in base units (contracts x ``contract_size_base``, 1 when absent). Computed with
    running sums over sorted strikes, ``O(n log n)``: the call payout at ``K_j`` is
    ``K_j * sum(c_i) - sum(c_i K_i)`` over ``K_i <= K_j``, the put payout the mirror image.

    Needs ``expiry_ts``, ``strike_px``, ``option_type``, ``open_interest_contracts``.

    Returns:
        ``expiry_ts``, ``strike_px``, ``call_oi_base``, ``put_oi_base``, ``call_payout_usd``,
        ``put_payout_usd``, ``payout_usd``; sorted by expiry and strike.
    """
    frame = _with_size(chain)
    oi = pl.col(_OI).fill_null(0.0) * pl.col("contract_size_base").fill_null(1.0)
    by_strike = (
        frame.group_by("expiry_ts", "strike_px")
        .agg(
            oi.filter(pl.col("option_type") == "C").sum().alias("call_oi_base"),
            oi.filter(pl.col("option_type") == "P").sum().alias("put_oi_base"),
        )
        .sort("expiry_ts", "strike_px")
    )
    k = pl.col("strike_px")
    c, p = pl.col("call_oi_base"), pl.col("put_oi_base")
    over = "expiry_ts"
    return (
        by_strike.with_columns(
            (k * c.cum_sum().over(over) - (c * k).cum_sum().over(over)).alias("call_payout_usd"),
            (
                (p * k).cum_sum(reverse=True).over(over) - k * p.cum_sum(reverse=True).over(over)
            ).alias("put_payout_usd"),
        )
        .with_columns(
            # running sums can leave -1e-9 where the exact value is 0
            pl.col("call_payout_usd").clip(lower_bound=0.0),
            pl.col("put_payout_usd").clip(lower_bound=0.0),
        )
        .with_columns((pl.col("call_payout_usd") + pl.col("put_payout_usd")).alias("payout_usd"))
    )


def max_pain(
    chain: pl.DataFrame, spot_px: float | None = None, *, rel_tol: float = 1e-12
) -> pl.DataFrame:
    """Max pain per expiry: the listed strike minimising the total USD payout to option holders.

    This is the settlement price at which option writers pay least, i.e. where the most value (not
    the most contracts, as the playbook loosely says) expires worthless. Payouts within ``rel_tol``
    of the minimum tie; ties go to the strike nearest ``spot_px`` (then the lower strike). An expiry
    without open interest has no max pain (null, with the reason).

    Needs the columns of :func:`max_pain_curve`, plus ``days_to_expiry`` when present (see
    :func:`chain_as_of`).

    Returns:
        One row per expiry: ``expiry`` (date), ``expiry_ts``, ``max_pain_px``, ``spot_px``,
        ``distance_pct`` ((max pain - spot) / spot), ``days_to_expiry``, ``payout_usd`` at max
        pain, ``oi_base`` and ``reason`` (null when max pain exists).
    """
    curve = max_pain_curve(chain)
    spot = pl.lit(spot_px, pl.Float64)
    oi = (pl.col("call_oi_base") + pl.col("put_oi_base")).sum().over("expiry_ts")
    best = (
        curve.with_columns(
            oi.alias("oi_base"),
            pl.col("payout_usd").min().over("expiry_ts").alias("_min"),
            (pl.col("strike_px") - spot).abs().fill_null(0.0).alias("_dist"),
        )
        .filter(pl.col("payout_usd") <= pl.col("_min") + rel_tol * pl.col("_min").abs())
        .sort("expiry_ts", "_dist", "strike_px")
        .group_by("expiry_ts", maintain_order=True)
        .first()
    )
    dte = pl.lit(None, pl.Float64)
    if "days_to_expiry" in chain.columns:
        days = chain.group_by("expiry_ts").agg(pl.col("days_to_expiry").first())
        best = best.join(days, on="expiry_ts", how="left")
        dte = pl.col("days_to_expiry")
    has_oi = pl.col("oi_base") > 0
    return best.sort("expiry_ts").select(
        pl.col("expiry_ts").dt.date().alias("expiry"),
        "expiry_ts",
        pl.when(has_oi).then(pl.col("strike_px")).otherwise(None).alias("max_pain_px"),
        spot.alias("spot_px"),
        pl.when(has_oi)
        .then((pl.col("strike_px") - spot) / spot)
        .otherwise(None)
        .alias("distance_pct"),
        dte.alias("days_to_expiry"),
        pl.when(has_oi).then(pl.col("payout_usd")).otherwise(None).alias("payout_usd"),
        "oi_base",
        pl.when(has_oi).then(None).otherwise(pl.lit("no open interest")).alias("reason"),
    )


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
    frame = _with_size(chain)
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


# ----------------------------------------------------------------------------- unusual activity

_UNUSUAL_SCHEMA: Final[dict[str, pl.DataType]] = {
    "kind": pl.String(),
    "ts": pl.Datetime("us", "UTC"),
    "instrument": pl.String(),
    "expiry": pl.Date(),
    "strike_px": pl.Float64(),
    "option_type": pl.String(),
    "direction": pl.String(),
    "contracts": pl.Float64(),
    "notional_usd": pl.Float64(),
    "size_multiple": pl.Float64(),
    "volume_oi_ratio": pl.Float64(),
    "strike_distance_pct": pl.Float64(),
    "days_to_expiry": pl.Float64(),
    "reason": pl.String(),
}


def _unusual_frame(frame: pl.DataFrame) -> pl.DataFrame:
    cols = [
        (pl.col(n) if n in frame.columns else pl.lit(None)).cast(t).alias(n)
        for n, t in _UNUSUAL_SCHEMA.items()
    ]
    return frame.select(cols)


def _days(expiry_ts: pl.Expr, ts: pl.Expr) -> pl.Expr:
    return (expiry_ts - ts).dt.total_microseconds() / (DAY_S * 1e6)


def unusual_oi_changes(snapshots: pl.DataFrame, threshold_usd: float = 10e6) -> pl.DataFrame:
    """Open-interest changes between consecutive snapshots of an instrument above ``threshold_usd``.

    The USD notional of a change is ``|dOI| x contract_size_base x index_px`` at the later
    snapshot (``underlying_px`` when the index is missing). OI alone does not say who bought, so
    ``direction`` is ``opened`` (OI rose) or ``closed`` (OI fell), not buy or sell.

    Needs ``instrument``, ``ts``, ``expiry_ts``, ``strike_px``, ``option_type``,
    ``open_interest_contracts``, ``index_px`` or ``underlying_px``.

    Returns:
        Rows in the shape of every unusual-activity table (see :func:`unusual_trades`), largest
        notional first.
    """
    frame = _with_size(snapshots)
    spot = pl.coalesce(pl.col("index_px"), pl.col("underlying_px"))
    delta = pl.col(_OI) - pl.col(_OI).shift(1).over("instrument", order_by="ts")
    changes = (
        frame.filter(pl.col("expiry_ts") > pl.col("ts"))
        .with_columns(delta.alias("_d"))
        .filter(pl.col("_d").is_not_null() & (pl.col("_d") != 0))
        .with_columns(
            (pl.col("_d").abs() * pl.col("contract_size_base").fill_null(1.0) * spot).alias(
                "notional_usd"
            ),
            spot.alias("_spot"),
        )
        .filter(pl.col("notional_usd") >= threshold_usd)
        .with_columns(
            pl.lit("oi_change").alias("kind"),
            pl.col("expiry_ts").dt.date().alias("expiry"),
            pl.when(pl.col("_d") > 0)
            .then(pl.lit("opened"))
            .otherwise(pl.lit("closed"))
            .alias("direction"),
            pl.col("_d").alias("contracts"),
            ((pl.col("strike_px") - pl.col("_spot")) / pl.col("_spot")).alias(
                "strike_distance_pct"
            ),
            _days(pl.col("expiry_ts"), pl.col("ts")).alias("days_to_expiry"),
            pl.lit(f"OI change notional >= {threshold_usd:,.0f} USD").alias("reason"),
        )
        .sort("notional_usd", descending=True)
    )
    return _unusual_frame(changes)


def unusual_volume(
    chain: pl.DataFrame,
    spot_px: float | None,
    *,
    min_ratio: float = 1.0,
    min_notional_usd: float = 1e6,
) -> pl.DataFrame:
    """Instruments whose 24h volume is large against their open interest (fresh positioning).

    Flags rows with ``volume_contracts / open_interest_contracts >= min_ratio`` (or volume with no
    OI at all) and a volume notional (contracts x size x ``spot_px``) of at least
    ``min_notional_usd``.

    Needs the columns of a chain from :func:`chain_as_of`.
    """
    if spot_px is None:
        return _unusual_frame(pl.DataFrame(schema=_UNUSUAL_SCHEMA))
    frame = _with_size(chain)
    vol = pl.col(_VOL).fill_null(0.0)
    oi = pl.col(_OI).fill_null(0.0)
    ratio = pl.when(oi > 0).then(vol / oi).otherwise(None)
    notional = vol * pl.col("contract_size_base").fill_null(1.0) * spot_px
    flagged = (
        frame.with_columns(ratio.alias("volume_oi_ratio"), notional.alias("notional_usd"))
        .filter(
            (vol > 0)
            & (pl.col("notional_usd") >= min_notional_usd)
            & (pl.col("volume_oi_ratio").is_null() | (pl.col("volume_oi_ratio") >= min_ratio))
        )
        .with_columns(
            pl.lit("volume_oi").alias("kind"),
            pl.col("expiry_ts").dt.date().alias("expiry"),
            vol.alias("contracts"),
            ((pl.col("strike_px") - spot_px) / spot_px).alias("strike_distance_pct"),
            _days(pl.col("expiry_ts"), pl.col("ts")).alias("days_to_expiry"),
            pl.when(pl.col("volume_oi_ratio").is_null())
            .then(pl.lit("24h volume with no open interest"))
            .otherwise(pl.lit(f"24h volume / OI >= {min_ratio:g}"))
            .alias("reason"),
        )
        .sort("notional_usd", descending=True)
    )
    return _unusual_frame(flagged)


def unusual_trades(
    trades: pl.DataFrame,
    instruments: pl.DataFrame,
    spot_px: float | None = None,
    *,
    threshold_usd: float = 10e6,
    size_multiple: float = 10.0,
    min_trades: int = 5,
) -> pl.DataFrame:
    """Option trades that stand out: notional at or above ``threshold_usd``, or a size at least
    ``size_multiple`` times the instrument's median trade (given ``min_trades`` trades to judge).

    Args:
        trades: ``instrument``, ``ts``, ``qty_contracts``, ``notional_usd``, and optionally
            ``side`` (the taker's: buy | sell, used as the direction) and ``index_px`` (the spot
            for strike distance, else ``spot_px``).
        instruments: ``instrument``, ``expiry_ts``, ``strike_px``, ``option_type`` (e.g. from the
            snapshots); trades of instruments not listed keep null expiry and strike.
        spot_px: spot for trades without ``index_px``.
        threshold_usd: the playbook's "$10 million" trade.
        size_multiple: multiple of the instrument's median trade size that counts as outsized.
        min_trades: trades an instrument needs before its median is a "typical trade".

    Returns:
        ``kind`` (trade), ``ts``, ``instrument``, ``expiry``, ``strike_px``, ``option_type``,
        ``direction``, ``contracts``, ``notional_usd``, ``size_multiple``, ``volume_oi_ratio``
        (null), ``strike_distance_pct``, ``days_to_expiry``, ``reason``; largest notional first.
    """
    if trades.height == 0:
        return _unusual_frame(pl.DataFrame(schema=_UNUSUAL_SCHEMA))
    meta = instruments.select("instrument", "expiry_ts", "strike_px", "option_type").unique(
        "instrument", keep="last"
    )
    spot = pl.col("index_px") if "index_px" in trades.columns else pl.lit(None, pl.Float64)
    spot = pl.coalesce(spot, pl.lit(spot_px, pl.Float64))
    n = pl.len().over("instrument")
    median = pl.col("qty_contracts").median().over("instrument")
    multiple = pl.when(n >= min_trades).then(pl.col("qty_contracts") / median).otherwise(None)
    big = pl.col("notional_usd") >= threshold_usd
    outsized = pl.col("size_multiple") >= size_multiple
    direction = pl.col("side") if "side" in trades.columns else pl.lit(None, pl.String)
    flagged = (
        trades.join(meta, on="instrument", how="left")
        .with_columns(multiple.alias("size_multiple"), spot.alias("_spot"))
        .filter(big | outsized.fill_null(False))
        .with_columns(
            pl.lit("trade").alias("kind"),
            pl.col("expiry_ts").dt.date().alias("expiry"),
            direction.alias("direction"),
            pl.col("qty_contracts").alias("contracts"),
            ((pl.col("strike_px") - pl.col("_spot")) / pl.col("_spot")).alias(
                "strike_distance_pct"
            ),
            _days(pl.col("expiry_ts"), pl.col("ts")).alias("days_to_expiry"),
            pl.when(big)
            .then(pl.lit(f"notional >= {threshold_usd:,.0f} USD"))
            .otherwise(pl.lit(f"size >= {size_multiple:g}x the instrument's median trade"))
            .alias("reason"),
        )
        .sort("notional_usd", descending=True)
    )
    return _unusual_frame(flagged)
