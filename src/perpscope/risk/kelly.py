"""Kelly fraction from a win rate and payoff ratio, or from a list of trade results in R.

For a bet that wins ``R`` times the stake with probability ``W`` and loses the stake otherwise, the
growth-optimal fraction of equity to risk is ``f* = W - (1 - W) / R``. With scratch trades (result
0) the same derivation gives ``f* = (W*R - L) / (R * (W + L))`` with ``L`` the loss rate. The
playbook recommends "a half-Kelly fraction"; ``risk_fraction`` is the fraction of equity to risk per
trade that a chosen multiple of Kelly implies (0 when there is no edge).

Two guards follow the playbook. A multiple above 1 (more than full Kelly) is refused: it lowers
growth below Kelly's own while raising the drawdowns, so no sizing rule asks for it. And the risk
per trade is capped at ``max_risk_pct`` (default 2 %): the playbook sizes its trades at a
"maximum risk per trade" of 1.5 % (L100) and calls its Kelly sizing "risking about 1-2% per
trade" (L124); ``recommended_risk_fraction`` is the smaller of Kelly's figure and the cap, and
``warning`` says when the cap binds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perpscope.risk._checks import InvalidInput, finite, positive

__all__ = [
    "DEFAULT_MAX_RISK_PCT",
    "KellyResult",
    "kelly",
    "kelly_fraction",
    "stats_from_trades",
]

DEFAULT_MAX_RISK_PCT = 2.0
"""The playbook's ceiling on risk per trade, in percent ("risking about 1-2% per trade")."""


def kelly_fraction(win_rate: float, payoff: float, loss_rate: float | None = None) -> float:
    """Full Kelly fraction; ``loss_rate`` defaults to ``1 - win_rate`` (no scratch trades).

    Raises:
        ValueError: a rate outside [0, 1], rates summing above 1, or a non-positive payoff.
    """
    finite("win rate", win_rate)
    if not 0.0 <= win_rate <= 1.0:
        raise InvalidInput(f"win rate must be a fraction between 0 and 1, got {win_rate:g}")
    positive("payoff ratio", payoff)
    lose = 1.0 - win_rate if loss_rate is None else loss_rate
    if not 0.0 <= lose <= 1.0 or win_rate + lose > 1.0 + 1e-12:
        raise InvalidInput("win rate and loss rate must be fractions summing to at most 1")
    if win_rate + lose == 0:
        raise InvalidInput("no winning or losing trades")
    return (win_rate * payoff - lose) / (payoff * (win_rate + lose))


def stats_from_trades(results_r: Sequence[float]) -> tuple[float, float, float]:
    """Win rate, loss rate and payoff ratio (mean win / mean loss) of trade results.

    Raises:
        ValueError: no wins or no losses among the trades.
    """
    if not results_r:
        raise InvalidInput("the trade list is empty")
    for r in results_r:
        finite("trade result", r)
    wins = [r for r in results_r if r > 0]
    losses = [-r for r in results_r if r < 0]
    if not wins or not losses:
        raise InvalidInput(
            "the trade list needs at least one win and one loss to estimate a payoff ratio"
        )
    n = len(results_r)
    payoff = (sum(wins) / len(wins)) / (sum(losses) / len(losses))
    return len(wins) / n, len(losses) / n, payoff


@dataclass(frozen=True, slots=True)
class KellyResult:
    """Kelly sizing. ``expectancy_r`` is the mean result per trade in units of the average loss."""

    win_rate: float
    loss_rate: float
    payoff: float
    trades: int | None
    kelly_fraction: float
    half_kelly_fraction: float
    multiple: float
    risk_fraction: float
    risk_usd: float | None
    expectancy_r: float
    max_risk_fraction: float
    recommended_risk_fraction: float
    recommended_risk_usd: float | None
    warning: str | None


def kelly(
    win_rate: float | None = None,
    payoff: float | None = None,
    *,
    trades_r: Sequence[float] | None = None,
    multiple: float = 0.5,
    equity_usd: float | None = None,
    max_risk_pct: float = DEFAULT_MAX_RISK_PCT,
) -> KellyResult:
    """Kelly from (``win_rate``, ``payoff``) or from ``trades_r``, and the risk it implies.

    Args:
        win_rate: probability of a win, a fraction.
        payoff: average win over average loss.
        trades_r: trade results (in R or currency; only signs and ratios matter).
        multiple: the fraction of Kelly to use for ``risk_fraction`` (0.5 = half Kelly), in
            (0, 1].
        equity_usd: equity, for ``risk_usd``.
        max_risk_pct: the most to risk per trade, in percent of equity (the playbook's 2 %).

    Raises:
        ValueError: neither or both inputs given, or invalid values.
    """
    n: int | None = None
    if trades_r is not None:
        if win_rate is not None or payoff is not None:
            raise InvalidInput("give either a trade list or a win rate and payoff, not both")
        w, lose, b = stats_from_trades(trades_r)
        n = len(trades_r)
    elif win_rate is None or payoff is None:
        raise InvalidInput("give a win rate and a payoff ratio, or a trade list")
    else:
        w, lose, b = win_rate, 1.0 - win_rate, payoff
    positive("Kelly multiple", multiple)
    if multiple > 1.0:
        raise InvalidInput(
            f"Kelly multiple must be at most 1 (full Kelly), got {multiple:g}: betting more than "
            "Kelly lowers growth and deepens drawdowns; the playbook uses half Kelly (0.5)"
        )
    positive("maximum risk per trade", max_risk_pct)
    if max_risk_pct > 100:
        raise InvalidInput(f"maximum risk per trade is a percent up to 100, got {max_risk_pct:g}")
    f = kelly_fraction(w, b, lose)
    risk = max(f, 0.0) * multiple
    cap = max_risk_pct / 100.0
    recommended = min(risk, cap)
    warning = None
    if risk > cap:
        warning = (
            f"{multiple:g} x Kelly risks {risk * 100:.3g}% of equity per trade, above the "
            f"{max_risk_pct:g}% maximum per trade: risk {max_risk_pct:g}% (estimates of the win "
            "rate and payoff are noisy, and Kelly on noisy inputs over-bets)"
        )
    risk_usd = recommended_usd = None
    if equity_usd is not None:
        risk_usd = positive("equity", equity_usd) * risk
        recommended_usd = equity_usd * recommended
    return KellyResult(
        win_rate=w,
        loss_rate=lose,
        payoff=b,
        trades=n,
        kelly_fraction=f,
        half_kelly_fraction=f / 2.0,
        multiple=multiple,
        risk_fraction=risk,
        risk_usd=risk_usd,
        expectancy_r=w * b - lose,
        max_risk_fraction=cap,
        recommended_risk_fraction=recommended,
        recommended_risk_usd=recommended_usd,
        warning=warning,
    )
