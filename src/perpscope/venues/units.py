"""Open interest in the venue's unit -> one-sided OI in base coin and in USD.

Venues state open interest in different units: Binance USDⓈ-M and Bybit linear in base coin,
Bybit inverse and Deribit perpetuals in USD, OKX and Binance COIN-M in contracts (OKX linear
``BTC-USDT-SWAP``: 0.01 BTC a contract; OKX inverse ``BTC-USD-SWAP`` and COIN-M: 100 USD a
contract). Every figure is one-sided (the long side, which equals the short side), never long
plus short. :func:`normalise_oi` fills ``oi_base`` and ``oi_usd`` from ``oi_value``,
``oi_unit``, the contract size and a price, so rows of every venue compare.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from perpscope.errors import DataContractError

__all__ = ["OI_UNITS", "normalise_oi"]

OI_UNITS: Final = ("base", "usd", "contracts")


def normalise_oi(frame: pl.DataFrame) -> pl.DataFrame:
    """Fill ``oi_base`` and ``oi_usd`` of open-interest rows (values already set are kept).

    Args:
        frame: rows with ``oi_value``, ``oi_unit`` (``base`` | ``usd`` | ``contracts``),
            ``px`` (the price in USD of one base coin, e.g. the mark), ``contract_size`` (per
            contract: base coin for a linear contract, USD for an inverse one; only read for
            ``contracts``) and ``inverse`` (bool; only read for ``contracts``). Optional
            ``oi_base`` / ``oi_usd`` columns: non-null values are kept.

    Returns:
        ``frame`` with ``oi_base`` and ``oi_usd``:

        - ``base``: base = value; USD = value x px.
        - ``usd``: USD = value; base = value / px.
        - ``contracts``, linear: base = value x contract_size; USD = base x px.
        - ``contracts``, inverse: USD = value x contract_size; base = USD / px.

    Raises:
        DataContractError: an ``oi_unit`` that is none of :data:`OI_UNITS`.
    """
    bad = set(frame["oi_unit"].unique().drop_nulls()) - set(OI_UNITS)
    if bad:
        raise DataContractError(f"unknown oi_unit {sorted(bad)}; known: {', '.join(OI_UNITS)}")
    unit, value, px = pl.col("oi_unit"), pl.col("oi_value"), pl.col("px")
    if "contracts" in set(frame["oi_unit"]):
        size, inverse = pl.col("contract_size"), pl.col("inverse")
    else:
        size, inverse = pl.lit(None, pl.Float64), pl.lit(False)
    base = (
        pl.when(unit == "base")
        .then(value)
        .when(unit == "usd")
        .then(value / px)
        .when(inverse)
        .then(value * size / px)
        .otherwise(value * size)
    )
    usd = (
        pl.when(unit == "base")
        .then(value * px)
        .when(unit == "usd")
        .then(value)
        .when(inverse)
        .then(value * size)
        .otherwise(value * size * px)
    )
    keep_base = pl.col("oi_base") if "oi_base" in frame.columns else pl.lit(None, pl.Float64)
    keep_usd = pl.col("oi_usd") if "oi_usd" in frame.columns else pl.lit(None, pl.Float64)
    return frame.with_columns(
        pl.coalesce(keep_base, base).alias("oi_base"),
        pl.coalesce(keep_usd, usd).alias("oi_usd"),
    )
