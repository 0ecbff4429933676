"""Position size from equity, risk and stop distance, with margin and a liquidation check.

Playbook, "Calculate position size": risk per trade = equity x risk %,
risk per unit = |entry - stop|, size = risk / risk per unit; margin = notional / leverage on
isolated margin.

A size that cannot be opened is refused rather than printed: a leverage above any venue's maximum
(:data:`perpscope.risk.MAX_VENUE_LEVERAGE`), or a margin larger than the equity (a stop so close
to entry that the risk budget buys more than the account can carry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from perpscope.risk._checks import (
    MAX_VENUE_LEVERAGE,
    InvalidInput,
    PositionSide,
    non_negative,
    positive,
    side_sign,
    venue_leverage,
)
from perpscope.risk.liquidation_price import (
    LiqVenue,
    PositionSpec,
    liquidation_price,
    simplified_liquidation_price,
    single_tier,
)

__all__ = ["SizeResult", "infer_side", "position_size", "stop_from_atr"]


@dataclass(frozen=True, slots=True)
class SizeResult:
    """A sized position. ``risk_usd`` is the loss at the stop of ``qty`` (after any lot rounding).

    ``liquidation_px`` is the isolated liquidation price at ``leverage`` and ``mmr`` (the venue's
    exact one if a venue was given, else the simplified formula; with ``mmr`` = 0 the bankruptcy
    price); ``warning`` is set unless it is beyond the stop.
    """

    side: PositionSide
    qty: float
    risk_budget_usd: float
    risk_usd: float
    risk_per_unit_usd: float
    notional_usd: float
    leverage: float
    margin_usd: float
    entry_px: float
    stop_px: float
    liquidation_px: float | None
    mmr: float
    venue: LiqVenue | None
    warning: str | None


def infer_side(entry_px: float, stop_px: float) -> PositionSide:
    """Long if the stop is below entry, short if above.

    Raises:
        ValueError: the stop equals the entry.
    """
    positive("entry price", entry_px)
    positive("stop price", stop_px)
    if stop_px == entry_px:
        raise InvalidInput("the stop must differ from the entry (it sets the risk per unit)")
    return PositionSide.LONG if stop_px < entry_px else PositionSide.SHORT


def stop_from_atr(side: PositionSide, entry_px: float, atr: float, multiple: float) -> float:
    """A stop ``multiple`` x ATR beyond entry (playbook: "1-2x ATR beyond your entry level").

    Raises:
        ValueError: non-positive inputs, or a stop at or below zero.
    """
    positive("entry price", entry_px)
    positive("ATR", atr)
    positive("ATR multiple", multiple)
    stop = entry_px - side_sign(side) * atr * multiple
    if stop <= 0:
        raise InvalidInput(
            f"{multiple:g} x ATR {atr:g} below {entry_px:g} puts the stop at or below zero"
        )
    return stop


def position_size(
    equity_usd: float,
    risk_pct: float,
    entry_px: float,
    stop_px: float,
    leverage: float = 1.0,
    *,
    lot_size: float | None = None,
    mmr: float = 0.0,
    venue: LiqVenue | None = None,
) -> SizeResult:
    """Size a position so that a fill at the stop loses ``risk_pct`` % of ``equity_usd``.

    Args:
        equity_usd: account equity.
        risk_pct: risk per trade in percent (1.5 = 1.5 %).
        entry_px: entry price.
        stop_px: stop price; below entry for a long, above for a short.
        leverage: isolated leverage for the margin and the liquidation check.
        lot_size: round the quantity down to a multiple of this (default: no rounding).
        mmr: maintenance margin rate for the liquidation check.
        venue: check with this venue's exact isolated liquidation price (one tier at ``mmr``);
            default: the simplified formula.

    Returns:
        The size, risk, notional, margin and the liquidation check.

    Raises:
        InvalidInput: invalid input, a leverage no venue grants, a lot size larger than the whole
            position, or a margin above the equity.
    """
    positive("equity", equity_usd)
    positive("risk percent", risk_pct)
    if risk_pct > 100:
        raise InvalidInput(f"risk percent must be at most 100, got {risk_pct:g}")
    venue_leverage(leverage)
    non_negative("mmr", mmr)
    side = infer_side(entry_px, stop_px)
    budget = equity_usd * risk_pct / 100.0
    per_unit = abs(entry_px - stop_px)
    qty = budget / per_unit
    if lot_size is not None:
        positive("lot size", lot_size)
        lots = qty / lot_size
        if not math.isfinite(lots):
            raise InvalidInput(f"lot size {lot_size:g} is too small to count lots of this size")
        qty = math.floor(lots + 1e-9) * lot_size
        if qty <= 0:
            raise InvalidInput(f"the risk budget buys less than one lot of {lot_size:g}")
    notional = qty * entry_px
    margin = notional / leverage
    if not margin <= equity_usd:
        needed = notional / equity_usd
        remedy = (
            f"raise the leverage to at least {needed:.3g}x, widen the stop or lower the risk"
            if needed <= MAX_VENUE_LEVERAGE
            else "widen the stop or lower the risk percent"
        )
        raise InvalidInput(
            f"the position needs {margin:,.2f} of margin at {leverage:g}x, more than the equity "
            f"of {equity_usd:,.2f} (the stop is {per_unit / entry_px * 100:.3g}% from entry): "
            f"{remedy}"
        )
    if venue is None:
        liq = simplified_liquidation_price(side, entry_px, leverage, mmr)
    else:
        spec = PositionSpec(venue, side, entry_px, qty, leverage)
        liq = liquidation_price(spec, single_tier(mmr)).liquidation_px
    beyond = liq is None or (liq < stop_px if side is PositionSide.LONG else liq > stop_px)
    warning = None
    if not beyond:
        warning = (
            f"liquidation at about {liq:,.8g} comes before the stop at {stop_px:,.8g}: "
            "lower the leverage or move the stop"
        )
    return SizeResult(
        side=side,
        qty=qty,
        risk_budget_usd=budget,
        risk_usd=qty * per_unit,
        risk_per_unit_usd=per_unit,
        notional_usd=notional,
        leverage=leverage,
        margin_usd=margin,
        entry_px=entry_px,
        stop_px=stop_px,
        liquidation_px=liq,
        mmr=mmr,
        venue=venue,
        warning=warning,
    )
