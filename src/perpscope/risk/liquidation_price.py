"""Exact liquidation, bankruptcy and simplified liquidation prices of one perpetual position.

Liquidation is triggered by the **mark price** on every venue here. A position is liquidated when
its margin balance falls to its maintenance margin::

    E + side * Q * (P - EP) = MM(P)                      linear (USDT-margined) contracts
    E + side * N * CM * (1/EP - 1/P) = MM(P)             inverse (coin-margined), in coin

where ``E`` is the margin the position can draw on (isolated: its wallet; cross: the cross wallet
minus the other positions' maintenance margin plus their unrealised PnL at mark), ``Q`` the size in
base units, ``N`` contracts of ``CM`` USD each, and ``MM`` the venue's maintenance margin:

* **Binance USDⓈ-M** (published, FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures
  Contracts"): ``MM = Q * P * MMR_t - cum_t`` with tier ``t`` the tier of the notional *at the
  liquidation price* (the FAQ's "recompute if the tier changes"). Solved in closed form:
  ``LP = (E + cum - side*Q*EP) / (Q*MMR - side*Q)``.
* **Binance COIN-M** (published, COIN-M FAQ): ``MM = N*CM/P * MMR_t - cum_t`` in coin, tiers on the
  coin notional; ``LP = N*CM*(MMR + side) / (E + cum + side*N*CM/EP)``.
* **Bybit linear** (published, help "Liquidation Price (USDT Contract)"):
  ``MM = Q * EP * MMR - deduction`` on the position value at entry, so
  ``LP = EP - side * (E - MM) / Q``; with the default isolated wallet (the initial margin)
  this is ``EP - side*(IM - MM)/Q``. Bybit cross uses the same equation with the cross wallet
  (derived).
* **OKX linear** (**derived**, not published: from OKX's trigger "margin ratio <= 100%", i.e.
  equity <= maintenance margin + liquidation fee): ``MM = Q * P * (MMR + fee) - amount``, so
  ``LP = (E + amount - side*Q*EP) / (Q*(MMR + fee) - side*Q)``; OKX tiers are by position size.
  Results carry ``formula_status = "derived"`` until checked against a live position's ``liqPx``.

With a continuous tier table (maintenance amounts following ``cum_n = cum_{n-1} + floor_n *
(MMR_n - MMR_{n-1})``) the margin surplus is strictly monotonic in price, so exactly one tier is
consistent with its own liquidation price: this module solves every tier in closed form and keeps
the consistent one, which is the FAQ's recompute done exactly rather than by iteration.

The **bankruptcy price** is where the margin balance is zero (``MM = 0``); the **simplified**
price is the textbook ``EP * (1 - side/leverage + side*MMR)`` (freqtrade's and jesse's Bybit form).
Prices <= 0 (the venue shows "--") are returned as ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from perpscope.risk._checks import (
    InvalidInput,
    PositionSide,
    finite,
    non_negative,
    positive,
    side_sign,
)

__all__ = [
    "LiqVenue",
    "LiquidationResult",
    "MarginMode",
    "PositionSpec",
    "Tier",
    "TierBasis",
    "bankruptcy_price",
    "check_tiers",
    "liquidation_price",
    "maint_amounts_by_recursion",
    "simplified_liquidation_price",
    "single_tier",
    "tier_basis",
    "tier_for",
]

_REL_TOL = 1e-9


class LiqVenue(StrEnum):
    """Venues whose liquidation rule is implemented."""

    BINANCE = "binance"
    BYBIT = "bybit"
    OKX = "okx"


class MarginMode(StrEnum):
    """Isolated (the position's own wallet) or cross (the account's wallet)."""

    ISOLATED = "isolated"
    CROSS = "cross"


class TierBasis(StrEnum):
    """What a venue's tier bounds measure."""

    QUOTE_NOTIONAL = "quote_notional"  # qty x price in the quote currency (Binance USDⓈ-M)
    ENTRY_VALUE = "entry_value"  # qty x entry price (Bybit's position value)
    COIN_NOTIONAL = "coin_notional"  # contracts x contract size / price, in coin (Binance COIN-M)
    SIZE = "size"  # position size, independent of price (OKX position tiers)


@dataclass(frozen=True, slots=True)
class Tier:
    """One maintenance-margin tier: bounds in the venue's :class:`TierBasis` unit.

    The tier holds the amounts in ``(floor, cap]`` (see :func:`tier_for`).

    ``maint_amount`` is Binance's ``cum``, Bybit's ``mmDeduction`` (0 for OKX), in the margin
    currency. ``max_leverage`` is the largest leverage allowed in the tier, if known.
    """

    tier: int
    floor: float
    cap: float
    mmr: float
    maint_amount: float = 0.0
    max_leverage: float | None = None


def single_tier(mmr: float, maint_amount: float = 0.0) -> tuple[Tier, ...]:
    """One tier for an explicit MMR and maintenance amount (``--mmr``, ``--maint-amount``)."""
    return (Tier(1, 0.0, math.inf, mmr, maint_amount, None),)


def check_tiers(tiers: Sequence[Tier]) -> tuple[Tier, ...]:
    """The tiers sorted by floor, after checking they are usable.

    Raises:
        ValueError: no tiers, an MMR outside [0, 1), a cap not above its floor, or a gap or
            overlap between consecutive tiers.
    """
    if not tiers:
        raise InvalidInput("no maintenance-margin tiers given")
    ordered = tuple(sorted(tiers, key=lambda t: t.floor))
    for t in ordered:
        if not (0.0 <= t.mmr < 1.0):
            raise InvalidInput(f"tier {t.tier}: mmr must be a fraction in [0, 1), got {t.mmr:g}")
        if not t.cap > t.floor:
            raise InvalidInput(f"tier {t.tier}: cap {t.cap:g} is not above floor {t.floor:g}")
        if t.max_leverage is not None and t.max_leverage <= 0:
            raise InvalidInput(f"tier {t.tier}: max leverage must be positive")
    for a, b in zip(ordered, ordered[1:], strict=False):
        if not math.isclose(a.cap, b.floor, rel_tol=1e-9, abs_tol=1e-9):
            raise InvalidInput(
                f"tiers {a.tier} and {b.tier} leave a gap or overlap ({a.cap:g} vs {b.floor:g})"
            )
    return ordered


def maint_amounts_by_recursion(tiers: Sequence[Tier]) -> list[float]:
    """Maintenance amounts by the recursion ``cum_n = cum_{n-1} + floor_n*(MMR_n - MMR_{n-1})``.

    The first tier keeps its own amount (0 on every venue's first tier). The recursion makes the
    maintenance margin continuous in notional; compare with the published amounts to check a table.
    """
    ordered = check_tiers(tiers)
    out = [ordered[0].maint_amount]
    for prev, cur in zip(ordered, ordered[1:], strict=False):
        out.append(out[-1] + cur.floor * (cur.mmr - prev.mmr))
    return out


def tier_for(tiers: Sequence[Tier], amount: float, *, open_ended: bool = False) -> Tier:
    """The tier whose ``(floor, cap]`` holds ``amount``: a bound belongs to the tier below it.

    This is every implemented venue's published rule. Binance lists its brackets as
    ``0 < Position <= 50,000``, ``50,000 < Position <= 250,000``, ... (``notionalFloor`` exclusive,
    ``notionalCap`` inclusive: a 50,000 notional may use the first bracket's leverage), for COIN-M
    in coin the same way; Bybit's ``riskLimitValue`` is the largest position value a tier holds;
    OKX's ``maxSz`` is the largest size of a tier (the next tier starts one contract above it).
    The first tier also holds anything at or below its floor. With ``open_ended`` the last tier
    also holds anything above its cap.

    Raises:
        ValueError: ``amount`` is above the last tier's cap (and not ``open_ended``).
    """
    ordered = check_tiers(tiers)
    for t in ordered:
        if amount <= t.cap:
            return t
    last = ordered[-1]
    if open_ended:
        return last
    raise InvalidInput(
        f"position size {amount:,.8g} is above the largest tier's cap ({last.cap:,.8g}): "
        "the venue would not accept it"
    )


def tier_basis(venue: LiqVenue, inverse: bool) -> TierBasis:
    """The unit in which ``venue`` measures a position for its tiers."""
    if inverse:
        return TierBasis.COIN_NOTIONAL
    return {
        LiqVenue.BINANCE: TierBasis.QUOTE_NOTIONAL,
        LiqVenue.BYBIT: TierBasis.ENTRY_VALUE,
        LiqVenue.OKX: TierBasis.SIZE,
    }[venue]


@dataclass(frozen=True, slots=True)
class PositionSpec:
    """One position in one-way mode, with the margin it can draw on.

    Attributes:
        venue: whose rule applies.
        side: long or short.
        entry_px: entry price.
        qty: size in base units (linear) or in contracts (inverse).
        leverage: the position's leverage; sets the isolated wallet and is checked against the tier.
        margin_mode: isolated or cross.
        wallet: isolated: the position's margin (default: initial margin = notional/leverage);
            cross: the cross wallet balance (required). Quote currency for linear, coin for inverse.
        other_mm: cross only: maintenance margin of the account's other positions.
        other_upnl: cross only: unrealised PnL of the other positions at mark.
        inverse: coin-margined inverse contract (Binance COIN-M only).
        contract_size: inverse: USD value of one contract.
        fee_rate: OKX only: the liquidation (taker) fee rate in the trigger.
    """

    venue: LiqVenue
    side: PositionSide
    entry_px: float
    qty: float
    leverage: float
    margin_mode: MarginMode = MarginMode.ISOLATED
    wallet: float | None = None
    other_mm: float = 0.0
    other_upnl: float = 0.0
    inverse: bool = False
    contract_size: float = 1.0
    fee_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class LiquidationResult:
    """Liquidation of one position. Money is in the margin currency (quote, or coin if inverse).

    ``tier`` is the tier used at the liquidation price, ``entry_tier`` the tier at entry;
    ``formula_status`` is ``"published"`` or ``"derived"`` (see the module docstring).
    """

    liquidation_px: float | None
    bankruptcy_px: float | None
    simplified_liquidation_px: float | None
    mmr: float
    maint_amount: float
    tier: int
    entry_tier: int
    tier_changed: bool
    initial_margin: float
    wallet: float
    maintenance_margin_at_liq: float | None
    formula_status: str
    formula: str


def _validate(spec: PositionSpec) -> None:
    positive("entry price", spec.entry_px)
    positive("quantity", spec.qty)
    positive("leverage", spec.leverage)
    if spec.leverage < 1:
        raise InvalidInput(f"leverage must be at least 1, got {spec.leverage:g}")
    positive("contract size", spec.contract_size)
    non_negative("fee rate", spec.fee_rate)
    finite("other positions' unrealised PnL", spec.other_upnl)
    non_negative("other positions' maintenance margin", spec.other_mm)
    if spec.wallet is not None:
        non_negative("wallet balance", spec.wallet)
    if spec.inverse and spec.venue is not LiqVenue.BINANCE:
        raise InvalidInput("inverse contracts are implemented for Binance COIN-M only")
    if spec.margin_mode is MarginMode.CROSS and spec.wallet is None:
        raise InvalidInput("cross margin needs the cross wallet balance (--wallet)")
    if spec.margin_mode is MarginMode.ISOLATED and (spec.other_mm or spec.other_upnl):
        raise InvalidInput("other positions' margin and PnL apply to cross margin only")
    if spec.fee_rate and spec.venue is not LiqVenue.OKX:
        raise InvalidInput("a liquidation fee rate is part of OKX's trigger only")


def _initial_margin(spec: PositionSpec) -> float:
    if spec.inverse:
        return spec.qty * spec.contract_size / spec.entry_px / spec.leverage
    return spec.qty * spec.entry_px / spec.leverage


def _effective_margin(spec: PositionSpec, wallet: float) -> float:
    if spec.margin_mode is MarginMode.CROSS:
        return wallet - spec.other_mm + spec.other_upnl
    return wallet


def _basis_amount(spec: PositionSpec, price: float) -> float:
    basis = tier_basis(spec.venue, spec.inverse)
    if basis is TierBasis.QUOTE_NOTIONAL:
        return spec.qty * price
    if basis is TierBasis.ENTRY_VALUE:
        return spec.qty * spec.entry_px
    if basis is TierBasis.COIN_NOTIONAL:
        return spec.qty * spec.contract_size / price
    return spec.qty


def _maintenance(spec: PositionSpec, t: Tier, price: float) -> float:
    """Maintenance margin of the position at mark ``price`` under tier ``t``."""
    if spec.inverse:
        return spec.qty * spec.contract_size / price * t.mmr - t.maint_amount
    if spec.venue is LiqVenue.BYBIT:
        return spec.qty * spec.entry_px * t.mmr - t.maint_amount
    return spec.qty * price * (t.mmr + spec.fee_rate) - t.maint_amount


def _surplus(spec: PositionSpec, e: float, t: Tier, price: float) -> float:
    """Margin balance minus maintenance margin at mark ``price``."""
    s = side_sign(spec.side)
    if spec.inverse:
        pnl = s * spec.qty * spec.contract_size * (1.0 / spec.entry_px - 1.0 / price)
    else:
        pnl = s * spec.qty * (price - spec.entry_px)
    return e + pnl - _maintenance(spec, t, price)


def _solve(spec: PositionSpec, e: float, t: Tier) -> float | None:
    """Closed-form liquidation price under tier ``t``; ``None`` if there is none above zero."""
    s = side_sign(spec.side)
    q, ep, c = spec.qty, spec.entry_px, t.maint_amount
    if spec.inverse:
        n_cm = spec.qty * spec.contract_size
        den = e + c + s * n_cm / ep
        num = n_cm * (t.mmr + s)
        if den == 0:
            return None
        px = num / den
    elif spec.venue is LiqVenue.BYBIT:
        px = ep - s * (e - (q * ep * t.mmr - c)) / q
    else:
        m = t.mmr + spec.fee_rate
        px = (e + c - s * q * ep) / (q * m - s * q)
    return px if px > 0 and math.isfinite(px) else None


def _consistent(spec: PositionSpec, t: Tier, last: bool, px: float) -> bool:
    amount = _basis_amount(spec, px)
    lo = t.floor * (1 - _REL_TOL) - 1e-12
    hi = math.inf if last else t.cap * (1 + _REL_TOL) + 1e-12
    return lo <= amount <= hi


def _status(spec: PositionSpec) -> tuple[str, str]:
    cross = spec.margin_mode is MarginMode.CROSS
    if spec.venue is LiqVenue.BINANCE:
        page = "COIN-M" if spec.inverse else "USDⓈ-M"
        return (
            "published",
            f"Binance {page} FAQ liquidation price, one-way mode, tier at the liquidation price",
        )
    if spec.venue is LiqVenue.BYBIT:
        if cross:
            return (
                "derived",
                "Bybit isolated formula with the cross wallet as margin (no published cross form)",
            )
        return "published", "Bybit help 'Liquidation Price (USDT Contract)', isolated"
    return (
        "derived",
        "OKX: derived from the trigger 'margin ratio <= 100%' (equity = MM + liquidation fee); "
        "not checked against a live position",
    )


def bankruptcy_price(spec: PositionSpec, wallet: float | None = None) -> float | None:
    """Mark price at which the position's margin balance is zero (``None`` if never, or <= 0).

    For cross margin the balance is the wallet plus the other positions' unrealised PnL.
    """
    _validate(spec)
    w = _resolve_wallet(spec) if wallet is None else wallet
    e = w + (spec.other_upnl if spec.margin_mode is MarginMode.CROSS else 0.0)
    s = side_sign(spec.side)
    if spec.inverse:
        inv = 1.0 / spec.entry_px + s * e / (spec.qty * spec.contract_size)
        return 1.0 / inv if inv > 0 else None
    px = spec.entry_px - s * e / spec.qty
    return px if px > 0 else None


def simplified_liquidation_price(
    side: PositionSide, entry_px: float, leverage: float, mmr: float
) -> float | None:
    """The textbook approximation ``EP * (1 - side/leverage + side*MMR)`` (``None`` if <= 0).

    This is the playbook's "10x leverage means a 10% move against you liquidates your position
    (minus margin maintenance requirements)".
    """
    positive("entry price", entry_px)
    positive("leverage", leverage)
    non_negative("mmr", mmr)
    s = side_sign(side)
    px = entry_px * (1 - s / leverage + s * mmr)
    return px if px > 0 else None


def _resolve_wallet(spec: PositionSpec) -> float:
    if spec.wallet is not None:
        return spec.wallet
    return _initial_margin(spec)


def _pick(
    spec: PositionSpec, e: float, ordered: tuple[Tier, ...], fixed: Tier | None
) -> tuple[Tier, float | None]:
    if fixed is not None:
        return fixed, _solve(spec, e, fixed)
    found: list[tuple[Tier, float]] = []
    for i, t in enumerate(ordered):
        px = _solve(spec, e, t)
        if px is not None and _consistent(spec, t, i == len(ordered) - 1, px):
            found.append((t, px))
    if found:
        # Two tiers agree only on a shared bound; take the price nearer entry (the earlier one).
        return min(found, key=lambda f: abs(f[1] - spec.entry_px))
    s = side_sign(spec.side)
    if spec.inverse:
        # A coin-margined short whose wallet covers its coin notional never runs out of margin.
        never = (
            s < 0
            and e + ordered[0].maint_amount - spec.qty * spec.contract_size / spec.entry_px >= 0
        )
    else:
        # A long whose margin covers the whole entry notional is not liquidated above zero.
        never = s > 0 and e + ordered[0].maint_amount - spec.qty * spec.entry_px >= 0
    if never:
        return ordered[0], None
    raise InvalidInput(
        "the tier table is not continuous (its maintenance amounts do not follow the recursion "
        "cum_n = cum_n-1 + floor_n x (MMR_n - MMR_n-1)), so no tier is consistent with its own "
        "liquidation price"
    )


def liquidation_price(spec: PositionSpec, tiers: Sequence[Tier]) -> LiquidationResult:
    """Exact liquidation price of ``spec`` under the venue's tiered maintenance margin.

    Args:
        spec: the position and its margin.
        tiers: the venue's tiers for the instrument (bounds in :func:`tier_basis` units), or
            :func:`single_tier` for an explicit MMR and maintenance amount.

    Returns:
        The liquidation, bankruptcy and simplified prices and the tier used.

    Raises:
        ValueError: invalid input, leverage above the entry tier's maximum, a size above the
            largest tier, or a margin that does not cover the maintenance margin at entry.
    """
    _validate(spec)
    ordered = check_tiers(tiers)
    entry_tier = tier_for(ordered, _basis_amount(spec, spec.entry_px))
    if entry_tier.max_leverage is not None and spec.leverage > entry_tier.max_leverage * (
        1 + 1e-12
    ):
        raise InvalidInput(
            f"leverage {spec.leverage:g}x is above the {entry_tier.max_leverage:g}x maximum "
            f"of tier {entry_tier.tier} (bounds {entry_tier.floor:,.8g} to {entry_tier.cap:,.8g})"
        )
    wallet = _resolve_wallet(spec)
    e = _effective_margin(spec, wallet)
    if _surplus(spec, e, entry_tier, spec.entry_px) <= 0:
        mm = _maintenance(spec, entry_tier, spec.entry_px)
        raise InvalidInput(
            f"the margin ({e:,.8g}) does not exceed the maintenance margin at entry ({mm:,.8g}): "
            "the position would be liquidated at once; lower the leverage or add margin"
        )
    price_dependent = tier_basis(spec.venue, spec.inverse) in (
        TierBasis.QUOTE_NOTIONAL,
        TierBasis.COIN_NOTIONAL,
    )
    used, px = _pick(spec, e, ordered, None if price_dependent else entry_tier)
    status, formula = _status(spec)
    return LiquidationResult(
        liquidation_px=px,
        bankruptcy_px=bankruptcy_price(spec, wallet),
        simplified_liquidation_px=simplified_liquidation_price(
            spec.side, spec.entry_px, spec.leverage, entry_tier.mmr
        ),
        mmr=used.mmr,
        maint_amount=used.maint_amount,
        tier=used.tier,
        entry_tier=entry_tier.tier,
        tier_changed=used.tier != entry_tier.tier,
        initial_margin=_initial_margin(spec),
        wallet=wallet,
        maintenance_margin_at_liq=None if px is None else _maintenance(spec, used, px),
        formula_status=status,
        formula=formula,
    )
