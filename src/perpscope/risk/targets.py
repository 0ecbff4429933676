"""R multiples of targets and the blended R of a scale-out plan.

Playbook: "Scale out: 40% at T1, 30% at T2, 30% at T3. Move stop to breakeven when T1 is hit."
A target's R multiple is its distance from entry in units of the entry-to-stop distance. The blended
R is the scale-weighted R of every exit: filled targets at their R, the unfilled rest at the stop
(-1 R), at entry (0 R, when the stop moved to breakeven after T1), or at a given price.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perpscope.risk._checks import InvalidInput, PositionSide, positive, side_sign
from perpscope.risk.sizing import infer_side

__all__ = ["DEFAULT_SCALE_PCT", "ScaleOutResult", "r_multiple", "scale_out"]

DEFAULT_SCALE_PCT = (40.0, 30.0, 30.0)


def r_multiple(entry_px: float, stop_px: float, price: float) -> float:
    """R multiple of exiting at ``price``: signed profit per unit over the risk per unit."""
    side = infer_side(entry_px, stop_px)
    positive("price", price)
    return side_sign(side) * (price - entry_px) / abs(entry_px - stop_px)


@dataclass(frozen=True, slots=True)
class ScaleOutResult:
    """Outcome of a scale-out plan. ``profit_usd`` and ``risk_usd`` need a quantity."""

    side: PositionSide
    risk_per_unit: float
    r_multiples: list[float]
    scale_pct: list[float]
    hit: int
    rest_pct: float
    rest_exit: str
    rest_exit_px: float
    rest_r: float
    blended_r: float
    risk_usd: float | None
    profit_usd: float | None


def scale_out(
    entry_px: float,
    stop_px: float,
    targets_px: Sequence[float],
    scale_pct: Sequence[float] = DEFAULT_SCALE_PCT,
    *,
    hit: int | None = None,
    rest_exit_px: float | None = None,
    breakeven_after_t1: bool = False,
    qty: float | None = None,
) -> ScaleOutResult:
    """R multiples of ``targets_px`` and the blended R when the first ``hit`` targets fill.

    Args:
        entry_px: entry price.
        stop_px: initial stop (sets the side and 1 R).
        targets_px: targets, nearest first, on the profit side of entry.
        scale_pct: percent of the position closed at each target; sums to 100.
        hit: how many targets filled (default: all).
        rest_exit_px: price at which the unfilled rest exits (default: the stop).
        breakeven_after_t1: the rest exits at entry once T1 filled (else at the stop).
        qty: position size, for profit and risk in currency.

    Raises:
        ValueError: targets on the wrong side or out of order, scales not summing to 100, ``hit``
            out of range, or both ``rest_exit_px`` and ``breakeven_after_t1``.
    """
    side = infer_side(entry_px, stop_px)
    per_unit = abs(entry_px - stop_px)
    if not targets_px:
        raise InvalidInput("give at least one target")
    if len(scale_pct) != len(targets_px):
        raise InvalidInput(
            f"{len(targets_px)} targets need {len(targets_px)} scale percents, got {len(scale_pct)}"
        )
    if any(p < 0 for p in scale_pct) or abs(sum(scale_pct) - 100.0) > 1e-6:
        raise InvalidInput(f"scale percents must be >= 0 and sum to 100, got {sum(scale_pct):g}")
    rs = [r_multiple(entry_px, stop_px, t) for t in targets_px]
    for i, r in enumerate(rs):
        if r <= 0:
            raise InvalidInput(
                f"target T{i + 1} {targets_px[i]:g} is not on the profit side of entry "
                f"{entry_px:g} for a {side}"
            )
        if i and r <= rs[i - 1]:
            raise InvalidInput("targets must move away from entry in order, T1 nearest")
    n_hit = len(rs) if hit is None else hit
    if not 0 <= n_hit <= len(rs):
        raise InvalidInput(f"hit must be between 0 and {len(rs)}, got {n_hit}")
    if rest_exit_px is not None and breakeven_after_t1:
        raise InvalidInput("give either a rest exit price or breakeven after T1, not both")
    if rest_exit_px is not None:
        rest_r, how, rest_px = r_multiple(entry_px, stop_px, rest_exit_px), "price", rest_exit_px
    elif breakeven_after_t1 and n_hit >= 1:
        rest_r, how, rest_px = 0.0, "breakeven", entry_px
    else:
        rest_r, how, rest_px = -1.0, "stop", stop_px
    rest_pct = sum(scale_pct[n_hit:])
    blended = sum(w * r for w, r in zip(scale_pct[:n_hit], rs[:n_hit], strict=True)) / 100.0
    blended += rest_pct * rest_r / 100.0
    risk_usd = profit = None
    if qty is not None:
        positive("quantity", qty)
        risk_usd = qty * per_unit
        profit = blended * risk_usd
    return ScaleOutResult(
        side=side,
        risk_per_unit=per_unit,
        r_multiples=rs,
        scale_pct=list(scale_pct),
        hit=n_hit,
        rest_pct=rest_pct,
        rest_exit=how,
        rest_exit_px=rest_px,
        rest_r=rest_r,
        blended_r=blended,
        risk_usd=risk_usd,
        profit_usd=profit,
    )
