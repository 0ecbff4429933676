"""Use-cases of the calculators: validate input, find tiers and rates in the store, call ``risk``.

Every function returns one flat record (a dict) whose keys are the documented output fields of
``perpscope calc ...`` (see ``docs/calculators.md``). Invalid input raises
:class:`perpscope.errors.UsageError` with one sentence (exit code 2): the maths in
:mod:`perpscope.risk` raises :class:`perpscope.risk.InvalidInput`, which is mapped here, and a
result that is not a finite number (inputs so large that the arithmetic overflows) is refused
rather than printed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from perpscope.domain.symbols import SIM_VENUES
from perpscope.errors import UsageError
from perpscope.risk import (
    DEFAULT_MAX_RISK_PCT,
    DEFAULT_SCALE_PCT,
    LiqVenue,
    MarginMode,
    PositionSide,
    PositionSpec,
    Tier,
    correlation_bucket,
    funding_carry,
    infer_side,
    kelly,
    liquidation_price,
    plan_basis_trade,
    position_size,
    scale_out,
    single_tier,
    stop_from_atr,
    venue_leverage,
)
from perpscope.services.importer import MAX_ABS_FUNDING_RATE
from perpscope.store.lake import Lake

__all__ = [
    "LiqRequest",
    "basis_plan",
    "bucket",
    "funding",
    "historical_rate",
    "kelly_sizing",
    "liquidation",
    "parse_rate",
    "read_trades_file",
    "size",
    "store_tiers",
    "targets",
]

Record = dict[str, Any]
_E = TypeVar("_E", bound=StrEnum)


@contextmanager
def _usage() -> Iterator[None]:
    """Turn the calculators' ``ValueError`` into a one-line :class:`UsageError`.

    Arithmetic that overflows or divides by an underflowed zero on extreme inputs is reported the
    same way, as one line rather than a traceback.
    """
    try:
        yield
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except ArithmeticError as exc:
        raise UsageError(
            f"the inputs are out of the range the calculator can handle ({exc}); use realistic "
            "prices, sizes and rates"
        ) from None


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with _usage():
        return fn(*args, **kwargs)


def _finite_record(record: Record) -> Record:
    """``record`` unchanged, or a usage error when arithmetic on huge inputs overflowed."""
    for key, value in record.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise UsageError(
                    f"the inputs are too large: {key} is not a finite number; use realistic "
                    "prices, sizes and rates"
                )
    return record


def parse_rate(option: str, value: float | str) -> float:
    """A funding rate per interval from ``0.0005`` (a fraction) or ``0.05%`` (a percent).

    A bare number is a fraction. Like the funding importer, a magnitude of
    ``MAX_ABS_FUNDING_RATE`` (5 % per interval) or more is refused: it is far beyond any venue's
    funding cap, and a bare ``5`` is almost always a percent typed without its sign.

    Raises:
        UsageError: not a number, not finite, or a rate of 5 % per interval or more.
    """
    text = str(value).strip()
    percent = text.endswith("%")
    try:
        number = float(text[:-1] if percent else text)
    except ValueError:
        raise UsageError(
            f"{option} takes a rate per interval such as 0.0005 or 0.05%, got {text!r}"
        ) from None
    if not math.isfinite(number):
        raise UsageError(f"{option} must be a finite number, got {text}")
    rate = number / 100.0 if percent else number
    if abs(rate) >= MAX_ABS_FUNDING_RATE:
        if percent:
            raise UsageError(
                f"{option} {text} is beyond any venue's funding cap: rates of "
                f"±{MAX_ABS_FUNDING_RATE:.0%} per interval or more are refused"
            )
        raise UsageError(
            f"{option} {text} would be {rate:.0%} per interval: rates are fractions "
            f"(0.0005 = 0.05%); write {text}% if you mean percent"
        )
    return rate


def _choice(option: str, kind: type[_E], value: str) -> _E:
    """``value`` as a member of ``kind``, or a usage error listing the choices."""
    try:
        return kind(value)
    except ValueError:
        choices = " | ".join(m.value for m in kind)
        raise UsageError(f"{option} must be one of {choices}, got {value!r}") from None


# ------------------------------------------------------------------------------ liquidation


def store_tiers(lake: Lake, venue: str, instrument: str) -> tuple[tuple[Tier, ...], Any]:
    """The latest tier table of ``venue``/``instrument`` in the store's ``leverage_tiers``.

    Returns:
        The tiers (bounds in USD notional, as the schema defines them) and the time they were read.

    Raises:
        UsageError: the store holds no tiers for the pair (says what to pass instead).
    """
    where = (pl.col("venue") == venue) & (pl.col("instrument") == instrument)
    frame = lake.read("leverage_tiers", where=where) if lake.exists() else pl.DataFrame()
    if frame.is_empty():
        raise UsageError(
            f"no leverage tiers for {venue} {instrument} in the store at {lake.root}: pass --mmr "
            "(and --maint-amount) from the venue's tier table, or fill the leverage_tiers table"
        )
    last = frame["ts"].max()
    rows = frame.filter(pl.col("ts") == last).sort("tier")
    stated = rows["bound_unit"].drop_nulls().to_list() if "bound_unit" in rows.columns else []
    units = {str(u) for u in stated} - {"usd"}
    if units:
        raise UsageError(
            f"the stored tiers of {venue} {instrument} bound notional in {', '.join(sorted(units))}"
            ", not USD: pass --mmr (and --maint-amount) from the venue's tier table"
        )
    tiers = tuple(
        Tier(
            tier=int(r["tier"]),
            floor=float(r["notional_floor_usd"]),
            cap=float(r["notional_cap_usd"]),
            mmr=float(r["mmr"]),
            maint_amount=float(r["maint_amount_usd"]),
            max_leverage=None if r["max_leverage"] is None else float(r["max_leverage"]),
        )
        for r in rows.iter_rows(named=True)
    )
    return tiers, last


@dataclass(frozen=True, slots=True)
class LiqRequest:
    """Arguments of ``calc liq`` (see :class:`perpscope.risk.PositionSpec` for their meaning)."""

    venue: str
    side: str
    entry_px: float
    qty: float
    leverage: float
    margin_mode: str = "isolated"
    wallet: float | None = None
    other_mm: float = 0.0
    other_upnl: float = 0.0
    mmr: float | None = None
    maint_amount: float | None = None
    instrument: str | None = None
    inverse: bool = False
    contract_size: float | None = None
    fee_rate: float | None = None


_OKX_TAKER_FEE = 0.0005  # OKX's regular-user (VIP 0) taker fee on perpetual swaps


def liquidation(lake: Lake | None, req: LiqRequest) -> Record:
    """Liquidation, bankruptcy and simplified prices of one position.

    Tiers come from ``--mmr``/``--maint-amount`` when given, else from the store's
    ``leverage_tiers`` for ``req.instrument`` (Binance USDⓈ-M and Bybit linear only: their bounds
    are USD notional, as the table stores them).

    A simulated venue (``sim1``...) applies the rule its liquidation engine applies, Binance
    USDⓈ-M's, to the tiers the simulator wrote for that venue.
    """
    simulated = req.venue in SIM_VENUES
    venue = _liq_venue(req.venue)
    side = _choice("--side", PositionSide, req.side)
    mode = _choice("--margin-mode", MarginMode, req.margin_mode)
    _call(venue_leverage, req.leverage)
    if req.maint_amount is not None and req.mmr is None:
        raise UsageError(
            "--maint-amount needs --mmr (the maintenance margin rate of the same tier)"
        )
    if req.inverse and req.contract_size is None:
        raise UsageError("inverse contracts need --contract-size (USD per contract, e.g. 100)")
    if req.contract_size is not None and not req.inverse:
        raise UsageError("--contract-size applies to inverse contracts only (add --inverse)")
    source: str
    if req.mmr is not None:
        tiers = _call(_explicit_tier, req.mmr, req.maint_amount or 0.0)
        source = "explicit --mmr/--maint-amount"
    elif venue is LiqVenue.OKX or req.inverse:
        raise UsageError(
            "pass --mmr (and --maint-amount): OKX position tiers are in contracts and Binance "
            "COIN-M tiers in coin, while the leverage_tiers table stores USD notional bounds"
        )
    elif req.instrument is None or lake is None:
        raise UsageError(
            "missing maintenance margin: pass --mmr (and --maint-amount), or --instrument to "
            "look up the venue's tiers in the store"
        )
    else:
        tiers, read_at = store_tiers(lake, req.venue, req.instrument)
        source = f"store leverage_tiers, {req.venue} {req.instrument}, read {read_at}"
    fee = req.fee_rate
    if fee is None:
        fee = _OKX_TAKER_FEE if venue is LiqVenue.OKX else 0.0
    spec = PositionSpec(
        venue=venue,
        side=side,
        entry_px=req.entry_px,
        qty=req.qty,
        leverage=req.leverage,
        margin_mode=mode,
        wallet=req.wallet,
        other_mm=req.other_mm,
        other_upnl=req.other_upnl,
        inverse=req.inverse,
        contract_size=1.0 if req.contract_size is None else req.contract_size,
        fee_rate=fee,
    )
    res = _call(liquidation_price, spec, tiers)
    ccy = "coin" if req.inverse else "quote"
    distance = None
    if res.liquidation_px is not None:
        distance = abs(res.liquidation_px - req.entry_px) / req.entry_px
    return _finite_record(
        {
            "venue": req.venue if simulated else venue.value,
            "rule": venue.value,
            "side": side.value,
            "margin_mode": mode.value,
            "price_basis": "mark",
            "liquidation_px": res.liquidation_px,
            "bankruptcy_px": res.bankruptcy_px,
            "simplified_liquidation_px": res.simplified_liquidation_px,
            "distance_frac": distance,
            "mmr": res.mmr,
            "maint_amount": res.maint_amount,
            "fee_rate": fee,
            "tier": res.tier,
            "entry_tier": res.entry_tier,
            "tier_changed": res.tier_changed,
            "initial_margin": res.initial_margin,
            "wallet": res.wallet,
            "maintenance_margin_at_liq": res.maintenance_margin_at_liq,
            "margin_currency": ccy,
            "tiers_source": source,
            "formula_status": res.formula_status,
            "formula": res.formula,
        }
    )


def _liq_venue(name: str) -> LiqVenue:
    """The liquidation rule of venue ``name``: its own, or Binance's for a simulated venue."""
    if name in SIM_VENUES:
        return LiqVenue.BINANCE
    try:
        return LiqVenue(name)
    except ValueError:
        choices = " | ".join([*(m.value for m in LiqVenue), *SIM_VENUES])
        raise UsageError(f"--venue must be one of {choices}, got {name!r}") from None


def _explicit_tier(mmr: float, maint_amount: float) -> tuple[Tier, ...]:
    if not (math.isfinite(mmr) and 0 <= mmr < 1):
        raise ValueError(f"--mmr must be a fraction in [0, 1) such as 0.005, got {mmr:g}")
    if not math.isfinite(maint_amount):
        raise ValueError("--maint-amount must be a finite number")
    return single_tier(mmr, maint_amount)


# ------------------------------------------------------------------------------ sizing


def size(
    *,
    equity_usd: float,
    risk_pct: float,
    entry_px: float,
    stop_px: float | None = None,
    atr: float | None = None,
    atr_mult: float | None = None,
    side: str | None = None,
    leverage: float = 1.0,
    lot_size: float | None = None,
    mmr: float = 0.0,
    venue: str | None = None,
) -> Record:
    """Position size for a risk budget; the stop is given or ``atr_mult`` x ``atr`` from entry.

    With ``venue`` the liquidation check uses that venue's exact isolated formula at ``mmr``.
    """
    liq_venue = None if venue is None else _liq_venue(venue)
    if stop_px is None:
        if atr is None or atr_mult is None or side is None:
            raise UsageError("give --stop, or --atr with --atr-mult and --side")
        stop_px = _call(
            stop_from_atr, _choice("--side", PositionSide, side), entry_px, atr, atr_mult
        )
    elif atr is not None or atr_mult is not None:
        raise UsageError("give either --stop or --atr/--atr-mult, not both")
    if side is not None:
        _choice("--side", PositionSide, side)
        inferred = _call(infer_side, entry_px, stop_px)
        if inferred.value != side:
            raise UsageError(
                f"the stop {stop_px:g} is on the wrong side of entry {entry_px:g} for a {side}"
            )
    r = _call(
        position_size,
        equity_usd,
        risk_pct,
        entry_px,
        stop_px,
        leverage,
        lot_size=lot_size,
        mmr=mmr,
        venue=liq_venue,
    )
    return _finite_record(
        {
            "side": r.side.value,
            "qty": r.qty,
            "risk_usd": r.risk_usd,
            "risk_budget_usd": r.risk_budget_usd,
            "risk_per_unit_usd": r.risk_per_unit_usd,
            "notional_usd": r.notional_usd,
            "leverage": r.leverage,
            "margin_usd": r.margin_usd,
            "entry_px": r.entry_px,
            "stop_px": r.stop_px,
            "liquidation_px": r.liquidation_px,
            "mmr": r.mmr,
            "liquidation_formula": "simplified" if r.venue is None else r.venue.value,
            "warning": r.warning,
        }
    )


def targets(
    *,
    entry_px: float,
    stop_px: float,
    targets_px: Sequence[float],
    scale_pct: Sequence[float] | None = None,
    hit: int | None = None,
    rest_exit_px: float | None = None,
    breakeven_after_t1: bool = False,
    qty: float | None = None,
) -> Record:
    """R multiples of the targets and the blended R of the scale-out (default 40/30/30)."""
    if scale_pct is None:
        if len(targets_px) != len(DEFAULT_SCALE_PCT):
            raise UsageError(f"{len(targets_px)} targets need --scale (the default is 40,30,30)")
        scale_pct = DEFAULT_SCALE_PCT
    r = _call(
        scale_out,
        entry_px,
        stop_px,
        targets_px,
        scale_pct,
        hit=hit,
        rest_exit_px=rest_exit_px,
        breakeven_after_t1=breakeven_after_t1,
        qty=qty,
    )
    return _finite_record(
        {
            "side": r.side.value,
            "risk_per_unit": r.risk_per_unit,
            "r_multiples": r.r_multiples,
            "scale_pct": r.scale_pct,
            "hit": r.hit,
            "rest_pct": r.rest_pct,
            "rest_exit": r.rest_exit,
            "rest_exit_px": r.rest_exit_px,
            "rest_r": r.rest_r,
            "blended_r": r.blended_r,
            "risk_usd": r.risk_usd,
            "profit_usd": r.profit_usd,
        }
    )


# ------------------------------------------------------------------------------ funding


def funding(
    *,
    side: str,
    notional_usd: float,
    rate: float | str | None,
    interval_h: float | None,
    days: float,
    lake: Lake | None = None,
    venue: str | None = None,
    instrument: str | None = None,
) -> Record:
    """Funding per settlement and over ``days``, signed to the position (negative = paid).

    ``rate`` is a fraction per interval or a ``"0.05%"`` string (see :func:`parse_rate`). Without
    it, the rate is the store's current one for ``venue``/``instrument`` (:func:`current_rate`),
    per the venue's own interval unless ``interval_h`` is given (then rescaled to it).
    """
    pos_side = _choice("--side", PositionSide, side)
    source = "given"
    if rate is not None:
        if venue is not None or instrument is not None:
            raise UsageError("give either --rate or --venue and --instrument, not both")
        if interval_h is None:
            raise UsageError("--rate needs --interval-h (the hours between settlements)")
        value = parse_rate("--rate", rate)
    else:
        if lake is None or venue is None or instrument is None:
            raise UsageError("give --rate and --interval-h, or --venue and --instrument")
        value, own_h, source = current_rate(lake, venue, instrument)
        if interval_h is None:
            interval_h = own_h
        elif interval_h != own_h:
            value *= interval_h / own_h
            source += f", rescaled from {own_h:g}h to {interval_h:g}h"
    r = _call(funding_carry, notional_usd, value, interval_h, days, pos_side)
    return _finite_record(
        {
            "rate_source": source,
            "side": r.side.value,
            "notional_usd": r.notional_usd,
            "rate": r.rate,
            "interval_h": r.interval_h,
            "days": r.days,
            "periods": r.periods,
            "payment_per_period_usd": r.payment_per_period_usd,
            "per_day_usd": r.per_day_usd,
            "per_week_usd": r.per_week_usd,
            "per_year_usd": r.per_year_usd,
            "total_usd": r.total_usd,
            "annualized_rate": r.annualized_rate,
        }
    )


def current_rate(lake: Lake, venue: str, instrument: str) -> tuple[float, float, str]:
    """The current funding rate of ``venue``/``instrument`` in the store, per its own interval.

    The latest ``funding_snapshot`` (the rate accruing in the current interval) when the store
    has one, else the latest settlement in ``funding``.

    Returns:
        The rate, its interval in hours and where it came from (table and time).

    Raises:
        UsageError: the store has neither for the pair.
    """
    where = (pl.col("venue") == venue) & (pl.col("instrument") == instrument)
    for table, what in (("funding_snapshot", "current rate"), ("funding", "last settlement")):
        if not lake.has_table(table):
            continue
        frame = lake.read(table, ["ts", "rate", "interval_h"], where=where).drop_nulls()
        if frame.is_empty():
            continue
        last = frame.sort("ts").row(-1, named=True)
        stamp = last["ts"].strftime("%Y-%m-%d %H:%MZ")
        return float(last["rate"]), float(last["interval_h"]), f"{venue} {what}, {stamp}"
    raise UsageError(
        f"no funding for {venue} {instrument} in the store at {lake.root}: pass --rate and "
        "--interval-h, or collect funding first"
    )


def historical_rate(
    lake: Lake, venue: str, instrument: str, days: float, interval_h: float
) -> tuple[float, int]:
    """Mean realised funding of the last ``days`` in the store, as a rate per ``interval_h``.

    Each settlement is rescaled to ``interval_h`` (rate x interval_h / its own interval) before
    averaging, so series whose interval changed stay comparable.

    Returns:
        The mean rate and the number of settlements used.

    Raises:
        UsageError: no settlements for the pair in the store.
    """
    if not (math.isfinite(days) and days > 0):
        raise UsageError(f"--history-days must be positive, got {days:g}")
    where = (pl.col("venue") == venue) & (pl.col("instrument") == instrument)
    frame = (
        lake.read("funding", ["ts", "rate", "interval_h"], where=where)
        if lake.exists()
        else pl.DataFrame()
    )
    if frame.is_empty():
        raise UsageError(
            f"no funding history for {venue} {instrument} in the store at {lake.root}: "
            "import funding first or pass --rate"
        )
    recent = frame.filter(pl.col("ts") > pl.col("ts").max() - timedelta(days=days))
    scaled = recent.select(pl.col("rate") * interval_h / pl.col("interval_h")).to_series()
    mean = scaled.mean()
    if not isinstance(mean, float):
        raise UsageError(f"no usable funding rates for {venue} {instrument} in the store")
    return mean, recent.height


def basis_plan(
    lake: Lake | None,
    *,
    spot_usd: float,
    leverage: float,
    rate: float | str | None = None,
    interval_h: float = 8.0,
    buffer_usd: float | None = None,
    buffer_frac: float = 0.2,
    spot_px: float | None = None,
    perp_px: float | None = None,
    mark_px: float | None = None,
    venue: str | None = None,
    instrument: str | None = None,
    history_days: float | None = None,
) -> Record:
    """Capital per leg and in total, funding income and the playbook's exit checks of a basis trade.

    The rate is ``rate``, or the mean of the last ``history_days`` of the store's funding for
    ``venue``/``instrument``. A given ``rate`` is a fraction or a ``"0.05%"`` string.
    """
    settlements = None
    source = "given"
    _call(venue_leverage, leverage)
    if rate is not None:
        rate = parse_rate("--rate", rate)
    if rate is None:
        if lake is None or venue is None or instrument is None or history_days is None:
            raise UsageError("give --rate, or --venue, --instrument and --history-days")
        rate, settlements = historical_rate(lake, venue, instrument, history_days, interval_h)
        source = (
            f"mean of {settlements} {venue} {instrument} settlements, last {history_days:g} days"
        )
    elif history_days is not None:
        raise UsageError("give either --rate or --history-days, not both")
    p = _call(
        plan_basis_trade,
        spot_usd,
        leverage,
        rate,
        interval_h,
        buffer_usd=buffer_usd,
        buffer_frac=buffer_frac,
        spot_px=spot_px,
        perp_px=perp_px,
        mark_px=mark_px,
    )
    return _finite_record(
        {
            "spot_usd": p.spot_usd,
            "short_notional_usd": p.spot_usd,
            "leverage": p.leverage,
            "short_margin_usd": p.short_margin_usd,
            "buffer_usd": p.buffer_usd,
            "total_capital_usd": p.total_capital_usd,
            "rate": p.rate,
            "rate_source": source,
            "interval_h": p.interval_h,
            "income_per_period_usd": p.income_per_period_usd,
            "income_per_day_usd": p.income_per_day_usd,
            "income_per_week_usd": p.income_per_week_usd,
            "income_per_year_usd": p.income_per_year_usd,
            "annualized_rate": p.annualized_rate,
            "annualized_return_on_capital": p.annualized_return_on_capital,
            "margin_buffer_ratio": p.margin_buffer_ratio,
            "entry_basis_usd": p.entry_basis_usd,
            "exit_signals": p.exit_signals,
            "hold": not p.exit_signals,
        }
    )


# ------------------------------------------------------------------------------ kelly, bucket


def read_trades_file(path: Path) -> list[float]:
    """Trade results from a text file: one number per line; blank lines and ``#`` comments skipped.

    Raises:
        UsageError: the file is unreadable or a line is not a number.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(
            f"{path} is not a text file (not UTF-8): give one trade result per line"
        ) from None
    out = []
    for i, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            out.append(float(text))
        except ValueError:
            raise UsageError(f"{path}: line {i} is not a number: {text!r}") from None
    return out


def kelly_sizing(
    *,
    win_rate: float | None = None,
    payoff: float | None = None,
    trades_r: Sequence[float] | None = None,
    multiple: float = 0.5,
    equity_usd: float | None = None,
    max_risk_pct: float = DEFAULT_MAX_RISK_PCT,
) -> Record:
    """Full and fractional Kelly, the risk per trade it implies, and that risk capped."""
    r = _call(
        kelly,
        win_rate,
        payoff,
        trades_r=trades_r,
        multiple=multiple,
        equity_usd=equity_usd,
        max_risk_pct=max_risk_pct,
    )
    return _finite_record(
        {
            "win_rate": r.win_rate,
            "loss_rate": r.loss_rate,
            "payoff": r.payoff,
            "trades": r.trades,
            "kelly_fraction": r.kelly_fraction,
            "half_kelly_fraction": r.half_kelly_fraction,
            "multiple": r.multiple,
            "risk_fraction": r.risk_fraction,
            "risk_pct": r.risk_fraction * 100.0,
            "risk_usd": r.risk_usd,
            "expectancy_r": r.expectancy_r,
            "edge": r.kelly_fraction > 0,
            "max_risk_pct": r.max_risk_fraction * 100.0,
            "recommended_risk_pct": r.recommended_risk_fraction * 100.0,
            "recommended_risk_usd": r.recommended_risk_usd,
            "warning": r.warning,
        }
    )


def bucket(
    *,
    risks_usd: Sequence[float],
    correlation: float = 1.0,
    max_risk_usd: float | None = None,
    equity_usd: float | None = None,
    max_risk_pct: float | None = None,
) -> Record:
    """Combined risk of positions treated as one bucket, and the scale that fits a budget."""
    if max_risk_pct is not None:
        if equity_usd is None or max_risk_usd is not None:
            raise UsageError("--max-risk-pct needs --equity (and no --max-risk-usd)")
        max_risk_usd = equity_usd * max_risk_pct / 100.0
    r = _call(correlation_bucket, risks_usd, correlation, max_risk_usd)
    return _finite_record(
        {
            "risks_usd": r.risks_usd,
            "correlation": r.correlation,
            "sum_risk_usd": r.sum_risk_usd,
            "combined_risk_usd": r.combined_risk_usd,
            "max_risk_usd": r.max_risk_usd,
            "scale": r.scale,
            "over_budget": r.over_budget,
        }
    )
