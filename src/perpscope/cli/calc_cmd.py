"""``perpscope calc``: pre-trade calculators (liquidation, size, targets, funding, Kelly, basis).

Rates, ratios and probabilities are fractions (``--rate 0.0005``, ``--mmr 0.005``,
``--win-rate 0.6``); only ``--risk-pct``, ``--scale`` and ``--max-risk-pct`` are percents, and
``--rate`` also takes an explicit percent (``0.05%``). Validation lives in the services and
``perpscope.risk``; a bad value is one line on stderr and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from perpscope.cli._common import Format, emit, err_console, state
from perpscope.errors import UsageError

app = typer.Typer(
    help="Pre-trade calculators: liquidation price, position size, targets, funding, Kelly, basis.",
    no_args_is_help=True,
)

FormatOpt = Annotated[Format, typer.Option("--format", help="Output format.")]
SideOpt = Annotated[str, typer.Option("--side", help="long | short.")]


def _floats(option: str, text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{option} takes comma-separated numbers, got {text!r}") from None


def _show(record: dict[str, Any], fmt: Format, title: str, note: str | None = None) -> None:
    emit(record, fmt.value, title=title)
    if note and fmt is Format.TABLE:
        err_console.print(f"note: {note}")


@app.command("liq")
def liq(
    ctx: typer.Context,
    venue: Annotated[
        str, typer.Option("--venue", help="binance | bybit | okx | sim1 | sim2 | sim3.")
    ],
    side: SideOpt,
    entry: Annotated[float, typer.Option("--entry", help="Entry price.")],
    qty: Annotated[float, typer.Option("--qty", help="Size in base units (inverse: contracts).")],
    leverage: Annotated[float, typer.Option("--leverage", help="Leverage of the position.")],
    mmr: Annotated[
        float | None,
        typer.Option("--mmr", help="Maintenance margin rate of the tier, a fraction (0.005)."),
    ] = None,
    maint_amount: Annotated[
        float | None,
        typer.Option("--maint-amount", help="Maintenance amount (Binance cum, Bybit deduction)."),
    ] = None,
    instrument: Annotated[
        str | None,
        typer.Option("--instrument", help="Look up tiers in the store, e.g. BTC-USDT-PERP."),
    ] = None,
    margin_mode: Annotated[
        str, typer.Option("--margin-mode", help="isolated | cross.")
    ] = "isolated",
    wallet: Annotated[
        float | None,
        typer.Option("--wallet", help="Isolated margin (default notional/lev.) or cross wallet."),
    ] = None,
    other_mm: Annotated[
        float, typer.Option("--other-mm", help="Cross: other positions' maintenance margin.")
    ] = 0.0,
    other_upnl: Annotated[
        float, typer.Option("--other-upnl", help="Cross: other positions' unrealised PnL at mark.")
    ] = 0.0,
    inverse: Annotated[
        bool, typer.Option("--inverse", help="Coin-margined inverse contract (Binance COIN-M).")
    ] = False,
    contract_size: Annotated[
        float | None, typer.Option("--contract-size", help="Inverse: USD per contract.")
    ] = None,
    fee_rate: Annotated[
        float | None,
        typer.Option("--fee-rate", help="OKX: liquidation fee rate (default 0.0005)."),
    ] = None,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Liquidation price (on mark), bankruptcy price and the simplified formula of one position."""
    from perpscope.services import calc

    req = calc.LiqRequest(
        venue=venue,
        side=side,
        entry_px=entry,
        qty=qty,
        leverage=leverage,
        margin_mode=margin_mode,
        wallet=wallet,
        other_mm=other_mm,
        other_upnl=other_upnl,
        mmr=mmr,
        maint_amount=maint_amount,
        instrument=instrument,
        inverse=inverse,
        contract_size=contract_size,
        fee_rate=fee_rate,
    )
    lake = state(ctx).lake() if instrument is not None else None
    record = calc.liquidation(lake, req)
    note = None
    if record["formula_status"] == "derived":
        note = f"DERIVED formula, not published by the venue: {record['formula']}"
    _show(record, fmt, "liquidation", note)


@app.command("size")
def size(
    equity: Annotated[float, typer.Option("--equity", help="Account equity.")],
    risk_pct: Annotated[float, typer.Option("--risk-pct", help="Risk per trade in percent (1.5).")],
    entry: Annotated[float, typer.Option("--entry", help="Entry price.")],
    stop: Annotated[float | None, typer.Option("--stop", help="Stop price.")] = None,
    leverage: Annotated[float, typer.Option("--leverage", help="Isolated leverage.")] = 1.0,
    atr: Annotated[float | None, typer.Option("--atr", help="ATR, to set the stop.")] = None,
    atr_mult: Annotated[float | None, typer.Option("--atr-mult", help="Stop at N x ATR.")] = None,
    side: Annotated[
        str | None, typer.Option("--side", help="long | short (needed with --atr).")
    ] = None,
    lot_size: Annotated[
        float | None, typer.Option("--lot-size", help="Round the quantity down to this lot.")
    ] = None,
    mmr: Annotated[
        float, typer.Option("--mmr", help="MMR for the liquidation-versus-stop check.")
    ] = 0.0,
    venue: Annotated[
        str | None,
        typer.Option("--venue", help="Exact liquidation check: binance | bybit | okx | sim1..."),
    ] = None,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Position size for a risk budget; the side follows from the stop versus the entry."""
    from perpscope.services import calc

    record = calc.size(
        equity_usd=equity,
        risk_pct=risk_pct,
        entry_px=entry,
        stop_px=stop,
        atr=atr,
        atr_mult=atr_mult,
        side=side,
        leverage=leverage,
        lot_size=lot_size,
        mmr=mmr,
        venue=venue,
    )
    _show(record, fmt, "position size", record["warning"])


@app.command("targets")
def targets(
    entry: Annotated[float, typer.Option("--entry", help="Entry price.")],
    stop: Annotated[float, typer.Option("--stop", help="Initial stop price.")],
    targets_px: Annotated[str, typer.Option("--targets", help="Targets, nearest first: A,B,C.")],
    scale: Annotated[
        str | None, typer.Option("--scale", help="Percent closed at each target (40,30,30).")
    ] = None,
    hit: Annotated[int | None, typer.Option("--hit", help="Targets filled (default all).")] = None,
    rest_exit: Annotated[
        float | None, typer.Option("--rest-exit", help="Price at which the unfilled rest exits.")
    ] = None,
    breakeven_after_t1: Annotated[
        bool, typer.Option("--breakeven-after-t1", help="The rest exits at entry after T1.")
    ] = False,
    qty: Annotated[float | None, typer.Option("--qty", help="Size, for profit_usd.")] = None,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """R multiple of each target and the blended R of a scale-out plan."""
    from perpscope.services import calc

    record = calc.targets(
        entry_px=entry,
        stop_px=stop,
        targets_px=_floats("--targets", targets_px),
        scale_pct=None if scale is None else _floats("--scale", scale),
        hit=hit,
        rest_exit_px=rest_exit,
        breakeven_after_t1=breakeven_after_t1,
        qty=qty,
    )
    _show(record, fmt, "targets")


@app.command("funding")
def funding(
    ctx: typer.Context,
    notional: Annotated[float, typer.Option("--notional", help="Position notional.")],
    days: Annotated[float, typer.Option("--days", help="Holding period in days.")],
    rate: Annotated[
        str | None, typer.Option("--rate", help="Funding rate per interval: 0.0005 or 0.05%.")
    ] = None,
    interval_h: Annotated[
        float | None,
        typer.Option("--interval-h", help="Funding interval, hours (default: the venue's)."),
    ] = None,
    venue: Annotated[
        str | None, typer.Option("--venue", help="Without --rate: the store's current rate.")
    ] = None,
    instrument: Annotated[
        str | None, typer.Option("--instrument", help="With --venue, e.g. BTC-USDT-PERP.")
    ] = None,
    side: Annotated[str, typer.Option("--side", help="long | short.")] = "long",
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Funding payment per period and over the hold, signed to the position (negative = paid).

    The rate is --rate (per --interval-h hours), or the store's current rate of --venue and
    --instrument (the accruing rate of the latest funding snapshot, else the last settlement).
    """
    from perpscope.services import calc

    lake = state(ctx).lake() if rate is None and venue is not None else None
    record = calc.funding(
        side=side,
        notional_usd=notional,
        rate=rate,
        interval_h=interval_h,
        days=days,
        lake=lake,
        venue=venue,
        instrument=instrument,
    )
    _show(record, fmt, "funding")


@app.command("kelly")
def kelly(
    win_rate: Annotated[
        float | None, typer.Option("--win-rate", help="Win probability, a fraction (0.6).")
    ] = None,
    payoff: Annotated[
        float | None, typer.Option("--payoff", help="Average win / average loss.")
    ] = None,
    trades: Annotated[
        str | None, typer.Option("--trades", help="Trade results in R: 1.2,-1,2.5.")
    ] = None,
    trades_file: Annotated[
        Path | None, typer.Option("--trades-file", help="Trade results, one per line.")
    ] = None,
    multiple: Annotated[
        float, typer.Option("--multiple", help="Fraction of Kelly to risk, at most 1 (0.5 = half).")
    ] = 0.5,
    equity: Annotated[float | None, typer.Option("--equity", help="Equity, for risk_usd.")] = None,
    max_risk_pct: Annotated[
        float, typer.Option("--max-risk-pct", help="Cap on risk per trade in percent (2).")
    ] = 2.0,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Full and fractional Kelly from a win rate and payoff, or from a trade list."""
    from perpscope.services import calc

    if trades is not None and trades_file is not None:
        raise UsageError("give either --trades or --trades-file, not both")
    results = None
    if trades is not None:
        results = _floats("--trades", trades)
    elif trades_file is not None:
        results = calc.read_trades_file(trades_file)
    record = calc.kelly_sizing(
        win_rate=win_rate,
        payoff=payoff,
        trades_r=results,
        multiple=multiple,
        equity_usd=equity,
        max_risk_pct=max_risk_pct,
    )
    _show(record, fmt, "kelly", record["warning"])


@app.command("basis")
def basis(
    ctx: typer.Context,
    spot: Annotated[float, typer.Option("--spot", help="Spot notional (= the short's notional).")],
    leverage: Annotated[float, typer.Option("--leverage", help="Leverage of the short.")],
    rate: Annotated[
        str | None, typer.Option("--rate", help="Funding rate per interval: 0.0005 or 0.05%.")
    ] = None,
    interval_h: Annotated[float, typer.Option("--interval-h", help="Funding interval.")] = 8.0,
    buffer: Annotated[
        float | None, typer.Option("--buffer", help="Buffer margin in currency.")
    ] = None,
    buffer_frac: Annotated[
        float,
        typer.Option("--buffer-frac", help="Buffer as a fraction of the short margin (0.2)."),
    ] = 0.2,
    spot_px: Annotated[float | None, typer.Option("--spot-px", help="Spot entry price.")] = None,
    perp_px: Annotated[float | None, typer.Option("--perp-px", help="Perp entry price.")] = None,
    mark: Annotated[
        float | None, typer.Option("--mark", help="Current perp mark price (margin check).")
    ] = None,
    venue: Annotated[str | None, typer.Option("--venue", help="Venue of the history.")] = None,
    instrument: Annotated[
        str | None, typer.Option("--instrument", help="Perp of the history (BTC-USDT-PERP).")
    ] = None,
    history_days: Annotated[
        float | None,
        typer.Option("--history-days", help="Use the mean funding of the last N days."),
    ] = None,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Basis trade: capital per leg and in total, funding income, and the playbook's exit checks."""
    from perpscope.services import calc

    lake = state(ctx).lake() if history_days is not None else None
    record = calc.basis_plan(
        lake,
        spot_usd=spot,
        leverage=leverage,
        rate=rate,
        interval_h=interval_h,
        buffer_usd=buffer,
        buffer_frac=buffer_frac,
        spot_px=spot_px,
        perp_px=perp_px,
        mark_px=mark,
        venue=venue,
        instrument=instrument,
        history_days=history_days,
    )
    note = "; ".join(record["exit_signals"]) or None
    _show(record, fmt, "basis trade", note)


@app.command("bucket")
def bucket(
    risks: Annotated[str, typer.Option("--risks", help="Risk of each position: 750,450.")],
    correlation: Annotated[
        float, typer.Option("--correlation", help="Pairwise correlation (default 1).")
    ] = 1.0,
    max_risk: Annotated[
        float | None, typer.Option("--max-risk-usd", help="Risk budget of the bucket.")
    ] = None,
    equity: Annotated[float | None, typer.Option("--equity", help="Account equity.")] = None,
    max_risk_pct: Annotated[
        float | None, typer.Option("--max-risk-pct", help="Bucket budget in % of equity.")
    ] = None,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Combined risk of correlated positions treated as one bucket."""
    from perpscope.services import calc

    record = calc.bucket(
        risks_usd=_floats("--risks", risks),
        correlation=correlation,
        max_risk_usd=max_risk,
        equity_usd=equity,
        max_risk_pct=max_risk_pct,
    )
    _show(record, fmt, "correlation bucket")
