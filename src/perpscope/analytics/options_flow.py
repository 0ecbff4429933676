"""Unusual options activity: large trades, large open-interest changes, volume that rivals OI.

The playbook (``brief/derivatives-playbook.txt``, "Options flow"): "Large option trades that deviate
from normal patterns can signal institutional positioning. A sudden purchase of $10 million in BTC
call options with a strike 20% above the current price suggests that someone with significant
capital expects a large upward move." Every function returns rows of one shape (see
:func:`unusual_trades`), so a report can concatenate them.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from perpscope.analytics.options import DAY_S, OI_COL, VOLUME_COL, with_contract_size

__all__ = ["unusual_oi_changes", "unusual_trades", "unusual_volume"]

_OI: Final = OI_COL
_VOL: Final = VOLUME_COL

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
    frame = with_contract_size(snapshots)
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
    frame = with_contract_size(chain)
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
