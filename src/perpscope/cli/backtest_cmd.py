"""``perpscope backtest``: run a strategy over the stored market with funding as cash flows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from perpscope.cli._common import Format, emit, err_console, state
from perpscope.errors import UsageError

app = typer.Typer(help="Backtest strategies on stored candles and funding.", no_args_is_help=True)


def _usd(x: float | None) -> str:
    if x is None:
        return "n/a"
    sign = "-" if x < 0 else "+"
    a = abs(x)
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if a >= div:
            return f"{sign}${a / div:,.2f}{unit}"
    return f"{sign}${a:,.2f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.2f}%"


def _num(x: float | None, fmt: str = "{:.2f}") -> str:
    return "n/a" if x is None else fmt.format(x)


def _rows(s: dict[str, Any]) -> list[dict[str, str]]:
    rows = [
        ("strategy", f"{s['strategy']} on {s['venue']} {s['instrument']} {s['timeframe']}"),
        ("prices", str(s["price_instrument"])),
        (
            "period",
            f"{s['start']:%Y-%m-%d %H:%MZ} to {s['end']:%Y-%m-%d %H:%MZ} ({s['bars']} bars)",
        ),
        ("trades", str(s["trades"])),
        ("win rate", _pct(s["win_rate"])),
        ("avg win", _num(s["avg_win_r"], "{:+.2f}R")),
        ("avg loss", _num(s["avg_loss_r"], "{:+.2f}R")),
        ("expectancy", _num(s["expectancy_r"], "{:+.3f}R")),
        ("profit factor", _num(s["profit_factor"])),
        ("sharpe", _num(s["sharpe"])),
        ("sortino", _num(s["sortino"])),
        ("returns period", s["period"]),
        ("cagr", _pct(s["cagr"])),
        ("max drawdown", _pct(s["max_drawdown"])),
        ("max drawdown duration", f"{s['max_drawdown_duration_h'] / 24:,.1f} days"),
        ("exposure", f"{s['exposure'] * 100:.1f}%"),
        ("avg trade duration", _num(s["avg_trade_duration_h"], "{:,.1f} h")),
        ("funding", _usd(s["funding_usd"])),
        ("fees", _usd(s["fees_usd"])),
        ("initial equity", _usd(s["initial_equity"]).lstrip("+")),
        ("final equity", _usd(s["final_equity"]).lstrip("+")),
        ("exits", ", ".join(f"{k} {v}" for k, v in s["exits"].items() if v)),
        ("intra-bar rule", s["intrabar_rule"]),
        ("funding priced at", s["funding_price"]),
    ]
    return [{"field": k, "value": v} for k, v in rows]


# options shared by run, sweep and walkforward
StrategyArg = Annotated[
    str,
    typer.Argument(
        help="Strategy: funding-fade, oi-divergence, basis-carry, triple-confluence or "
        "liquidation-magnet."
    ),
]
OiMarketOpt = Annotated[
    str | None,
    typer.Option(
        "--oi-market",
        help="Load this VENUE:INSTRUMENT's stored open interest (for oi-divergence, "
        "triple-confluence and liquidation-magnet).",
    ),
]
EquityOpt = Annotated[float, typer.Option("--initial-equity", help="Starting equity, USD.")]
RiskOpt = Annotated[float, typer.Option("--risk-pct", help="Equity risked per trade, %.")]
LeverageOpt = Annotated[float, typer.Option("--leverage", help="Isolated leverage.")]
TakerOpt = Annotated[float, typer.Option("--taker-fee", help="Taker fee, fraction.")]
MakerOpt = Annotated[float, typer.Option("--maker-fee", help="Maker fee, fraction.")]
SlippageOpt = Annotated[
    float, typer.Option("--slippage", help="Slippage of market fills, fraction.")
]
TimeStopOpt = Annotated[
    int, typer.Option("--time-stop-bars", help="Close after this many bars (0 = never).")
]
SweepParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", help="Fixed strategy parameter KEY=VALUE (repeatable)."),
]
RandomOpt = Annotated[
    int,
    typer.Option("--random", min=0, help="Draw this many combinations (0 = the whole grid)."),
]
SweepConfirmOpt = Annotated[
    list[str] | None,
    typer.Option("--confirm-venue", help="Also load this venue's funding (two_venue)."),
]


@app.command("run")
def run(
    ctx: typer.Context,
    strategy: StrategyArg,
    venue: Annotated[str, typer.Option("--venue", help="Venue id, e.g. binance.")],
    instrument: Annotated[
        str, typer.Option("--instrument", help="The perpetual, e.g. BTC-USDT-PERP.")
    ],
    timeframe: Annotated[str, typer.Option("--timeframe", help="Bar length: 1h, 4h, 1d...")] = "1h",
    price_instrument: Annotated[
        str | None,
        typer.Option(
            "--price-instrument",
            help="Price the perp with this instrument's candles (e.g. BTC-USDT spot) when the "
            "store has no perp candles.",
        ),
    ] = None,
    params: Annotated[
        list[str] | None,
        typer.Option("--param", help="Strategy parameter KEY=VALUE (repeatable), fractions."),
    ] = None,
    confirm_venues: Annotated[
        list[str] | None,
        typer.Option(
            "--confirm-venue",
            help="Also load this venue's funding of the instrument, for --param two_venue=true "
            "(repeatable).",
        ),
    ] = None,
    oi_market: OiMarketOpt = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Trade from this date (ISO); earlier bars are warm-up."),
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Trade before this date.")] = None,
    initial_equity: EquityOpt = 10_000.0,
    risk_pct: RiskOpt = 1.0,
    leverage: LeverageOpt = 5.0,
    mmr: Annotated[float, typer.Option("--mmr", help="Maintenance margin rate, fraction.")] = 0.004,
    taker_fee: TakerOpt = 0.0005,
    maker_fee: MakerOpt = 0.0002,
    slippage: SlippageOpt = 0.0002,
    cascade_slippage: Annotated[
        float,
        typer.Option("--cascade-slippage", help="Extra slippage on cascade bars, fraction."),
    ] = 0.001,
    cascade_range: Annotated[
        float,
        typer.Option(
            "--cascade-range",
            help="A bar ranging this fraction of its open or more is a cascade bar.",
        ),
    ] = 0.03,
    time_stop: TimeStopOpt = 0,
    trades_file: Annotated[
        Path | None, typer.Option("--trades", help="Write one row per trade to this CSV file.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Equity and drawdown chart: FILE.png or FILE.html."),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Backtest STRATEGY on the stored candles and funding of one perpetual.

    Entries fill at the next bar's open; stops and targets are checked inside each bar (stop
    first when both are touched); funding is paid or received at each stored settlement.
    """
    from perpscope.backtest.types import EngineConfig
    from perpscope.cli._market_opts import parse_at
    from perpscope.services.backtest import (
        parse_params,
        run_backtest_report,
        write_equity_chart,
    )

    if out is not None and out.suffix.lower() not in (".png", ".html"):
        raise UsageError(f"--out {out.name}: use a .png or .html file")

    p = parse_params(strategy, params or [])
    config = EngineConfig(
        initial_equity=initial_equity,
        risk_frac=risk_pct / 100.0,
        leverage=leverage,
        mmr=mmr,
        taker_fee=taker_fee,
        maker_fee=maker_fee,
        slippage=slippage,
        cascade_slippage=cascade_slippage,
        time_stop_bars=time_stop,
    )
    report = run_backtest_report(
        state(ctx).lake(),
        strategy,
        venue=venue,
        instrument=instrument,
        timeframe=timeframe,
        params=p,
        config=config,
        price_instrument=price_instrument,
        cascade_range=cascade_range,
        confirm_venues=tuple(confirm_venues or ()),
        since=parse_at(since, "--since"),
        until=parse_at(until, "--until"),
        oi_market=oi_market,
    )
    if out is not None:
        write_equity_chart(report, out)
    if trades_file is not None:
        report.trades.write_csv(trades_file, datetime_format="%Y-%m-%dT%H:%M:%SZ")
    if fmt is Format.JSON:
        emit(report.summary, "json")
    else:
        emit(_rows(report.summary), "table", title="backtest")
        for note in report.summary["notes"]:
            err_console.print(f"note: {note}", markup=False, highlight=False)


@app.command("montecarlo")
def montecarlo(
    trades_file: Annotated[
        Path,
        typer.Option(
            "--trades",
            help="Trades CSV with an r_multiple column (as written by 'backtest run --trades').",
        ),
    ],
    risk_pct: Annotated[
        float,
        typer.Option("--risk-pct", help="Equity risked per trade, % (above 0, at most 100)."),
    ] = 1.0,
    paths: Annotated[
        int, typer.Option("--paths", min=1, help="Number of simulated paths.")
    ] = 10_000,
    method: Annotated[
        str,
        typer.Option("--method", help="bootstrap (draw with replacement) or reshuffle (permute)."),
    ] = "bootstrap",
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Random seed (same seed, same numbers).")
    ] = 0,
    ruin_pct: Annotated[
        float,
        typer.Option("--ruin-pct", help="A drawdown of this % or more counts as ruin."),
    ] = 50.0,
    out: Annotated[
        Path | None, typer.Option("--out", help="Fan chart of the equity paths: FILE.png.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Monte Carlo of a backtest's trades: final equity, drawdowns and the risk of ruin.

    Replays the trades' R multiples at --risk-pct per trade over --paths paths, drawn with
    replacement (bootstrap) or as permutations (reshuffle), and prints the 5th to 95th
    percentiles of the final equity and of the maximum drawdown.
    """
    from perpscope.services.montecarlo import (
        monte_carlo_rows,
        read_r_multiples,
        run_monte_carlo,
        write_fan_chart,
    )

    if out is not None and out.suffix.lower() != ".png":
        raise UsageError(f"--out {out.name}: use a .png file")
    result = run_monte_carlo(
        read_r_multiples(trades_file),
        risk_pct=risk_pct,
        paths=paths,
        method=method,
        seed=seed,
        ruin_pct=ruin_pct,
    )
    if out is not None:
        write_fan_chart(result, out)
    if fmt is Format.JSON:
        emit(result.to_json(), "json")
    else:
        emit(monte_carlo_rows(result), "table", title="monte carlo")


def _config(
    initial_equity: float,
    risk_pct: float,
    leverage: float,
    taker_fee: float,
    maker_fee: float,
    slippage: float,
    time_stop: int,
) -> Any:
    from perpscope.backtest.types import EngineConfig

    return EngineConfig(
        initial_equity=initial_equity,
        risk_frac=risk_pct / 100.0,
        leverage=leverage,
        taker_fee=taker_fee,
        maker_fee=maker_fee,
        slippage=slippage,
        time_stop_bars=time_stop,
    )


def _fmt_value(v: Any) -> str:
    if isinstance(v, tuple):
        return "/".join(f"{x:g}" for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _sweep_rows(report: dict[str, Any], swept: list[str], top: int) -> list[dict[str, str]]:
    out = []
    for r in report["rows"][:top]:
        row = {"market": r["market"], **{k: _fmt_value(r[k]) for k in swept}}
        row.update(_stat_cells(r))
        out.append(row)
    return out


def _stat_cells(r: dict[str, Any]) -> dict[str, str]:
    return {
        "trades": str(r["trades"]),
        "return": _pct(r["total_return"]),
        "sharpe": _num(r["sharpe"]),
        "win rate": _pct(r["win_rate"]),
        "expectancy": _num(r["expectancy_r"], "{:+.3f}R"),
        "profit factor": _num(r["profit_factor"]),
        "max drawdown": _pct(r["max_drawdown"]),
    }


_MARKET_HELP = (
    "VENUE:INSTRUMENT[:PRICE_INSTRUMENT], e.g. binance:BTC-USDT-PERP:BTC-USDT (spot candles "
    "pricing the perp) or binance:ETH-USDT-PERP"
)
_GRID_HELP = "Swept parameter KEY=V1,V2,... (repeatable; a tuple value as 1/2.6/5.8)."
_OBJECTIVE_HELP = "What 'best' means: sharpe, total_return, expectancy_r, profit_factor, cagr."
_WORKERS_HELP = "Local worker processes (0 = every core)."
_DASK_HELP = "Run on Dask: a local 2-worker LocalCluster (or --scheduler's cluster)."
_SCHEDULER_HELP = "Dask scheduler address, e.g. tcp://10.0.0.5:8786 (implies --dask)."


@app.command("sweep")
def sweep_cmd(
    ctx: typer.Context,
    strategy: StrategyArg,
    markets: Annotated[list[str], typer.Option("--market", help=_MARKET_HELP + " (repeatable).")],
    grid: Annotated[list[str] | None, typer.Option("--grid", help=_GRID_HELP)] = None,
    params: SweepParamOpt = None,
    random: RandomOpt = 0,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of --random.")] = 0,
    timeframe: Annotated[str, typer.Option("--timeframe", help="Bar length: 1h, 4h...")] = "1h",
    since: Annotated[
        str | None, typer.Option("--since", help="Trade from this date (ISO); earlier = warm-up.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Trade before this date.")] = None,
    confirm_venues: SweepConfirmOpt = None,
    oi_market: OiMarketOpt = None,
    objective: Annotated[str, typer.Option("--objective", help=_OBJECTIVE_HELP)] = "sharpe",
    top: Annotated[int, typer.Option("--top", min=1, help="Rows in the table.")] = 20,
    workers: Annotated[int, typer.Option("--workers", min=0, help=_WORKERS_HELP)] = 0,
    dask: Annotated[bool, typer.Option("--dask", help=_DASK_HELP)] = False,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help=_SCHEDULER_HELP)] = None,
    initial_equity: EquityOpt = 10_000.0,
    risk_pct: RiskOpt = 1.0,
    leverage: LeverageOpt = 5.0,
    taker_fee: TakerOpt = 0.0005,
    maker_fee: MakerOpt = 0.0002,
    slippage: SlippageOpt = 0.0002,
    time_stop: TimeStopOpt = 0,
    results: Annotated[
        Path | None, typer.Option("--results", help="Write every row to this CSV file.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Objective against the first swept parameter: FILE.png."),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Sweep STRATEGY's parameters over one or more markets (grid or --random draws).

    Each combination runs on each market with the same engine as 'backtest run'; rows are ranked
    by --objective. Local processes by default; --dask for a Dask cluster (same numbers).
    """
    from perpscope.cli._market_opts import parse_at
    from perpscope.services.backtest_sweep import (
        backend,
        build_combos,
        load_sweep_markets,
        parse_market,
        run_sweep,
        write_sweep_chart,
    )

    if out is not None and out.suffix.lower() != ".png":
        raise UsageError(f"--out {out.name}: use a .png file")
    specs = [parse_market(m) for m in markets]
    combos, swept = build_combos(strategy, grid or [], params or [], random=random, seed=seed)
    n_workers, address, text = backend(workers, dask, scheduler)
    config = _config(initial_equity, risk_pct, leverage, taker_fee, maker_fee, slippage, time_stop)
    loaded = load_sweep_markets(
        state(ctx).lake(), specs, timeframe, confirm_venues=tuple(confirm_venues or ()),
        since=parse_at(since, "--since"), until=parse_at(until, "--until"),
        oi_market=oi_market,
    )  # fmt: skip
    report = run_sweep(
        loaded, strategy, combos, swept, config, objective=objective, workers=n_workers,
        dask=address, backend_text=text,
    )  # fmt: skip
    if results is not None:
        import polars as pl

        frame = pl.DataFrame(
            [{k: (_fmt_value(v) if isinstance(v, tuple) else v) for k, v in r.items()}
             for r in report["rows"]]
        )  # fmt: skip
        frame.write_csv(results)
    if out is not None:
        write_sweep_chart(report, swept, out)
    if fmt is Format.JSON:
        emit(report, "json")
    else:
        emit(_sweep_rows(report, swept, top), "table", title=f"sweep by {objective}")
        err_console.print(
            f"note: {report['combinations']} combinations x {len(loaded)} market(s) on "
            f"{report['backend']}",
            markup=False,
            highlight=False,
        )


@app.command("walkforward")
def walkforward_cmd(
    ctx: typer.Context,
    strategy: StrategyArg,
    market: Annotated[str, typer.Option("--market", help=_MARKET_HELP + ".")],
    grid: Annotated[list[str] | None, typer.Option("--grid", help=_GRID_HELP)] = None,
    params: SweepParamOpt = None,
    random: RandomOpt = 0,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of --random.")] = 0,
    folds: Annotated[int, typer.Option("--folds", min=1, help="Out-of-sample folds.")] = 4,
    is_ratio: Annotated[
        int, typer.Option("--is-ratio", min=1, help="In-sample length in out-of-sample lengths.")
    ] = 3,
    anchored: Annotated[
        bool, typer.Option("--anchored", help="In-sample windows all start at the first bar.")
    ] = False,
    min_trades: Annotated[
        int, typer.Option("--min-trades", min=0, help="In-sample trades a choice needs.")
    ] = 5,
    timeframe: Annotated[str, typer.Option("--timeframe", help="Bar length: 1h, 4h...")] = "1h",
    since: Annotated[
        str | None, typer.Option("--since", help="Start from this date (ISO); earlier = warm-up.")
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="End before this date.")] = None,
    confirm_venues: SweepConfirmOpt = None,
    oi_market: OiMarketOpt = None,
    objective: Annotated[str, typer.Option("--objective", help=_OBJECTIVE_HELP)] = "sharpe",
    workers: Annotated[int, typer.Option("--workers", min=0, help=_WORKERS_HELP)] = 0,
    dask: Annotated[bool, typer.Option("--dask", help=_DASK_HELP)] = False,
    scheduler: Annotated[str | None, typer.Option("--scheduler", help=_SCHEDULER_HELP)] = None,
    initial_equity: EquityOpt = 10_000.0,
    risk_pct: RiskOpt = 1.0,
    leverage: LeverageOpt = 5.0,
    taker_fee: TakerOpt = 0.0005,
    maker_fee: MakerOpt = 0.0002,
    slippage: SlippageOpt = 0.0002,
    time_stop: TimeStopOpt = 0,
    out: Annotated[
        Path | None, typer.Option("--out", help="In- vs out-of-sample per fold: FILE.png.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.TABLE,
) -> None:
    """Walk-forward STRATEGY on one market: choose the best in-sample combination per fold and
    run it on the next, unseen segment.

    The bars are cut into --folds + --is-ratio segments; each fold is in-sample on --is-ratio
    segments and out-of-sample on the next one. Prints each fold, the out-of-sample segments
    chained, and how stable each parameter's choice was.
    """
    from perpscope.cli._market_opts import parse_at
    from perpscope.services.backtest_sweep import (
        backend,
        build_combos,
        load_sweep_markets,
        parse_market,
        run_walkforward,
        write_walkforward_chart,
    )

    if out is not None and out.suffix.lower() != ".png":
        raise UsageError(f"--out {out.name}: use a .png file")
    spec = parse_market(market)
    combos, _ = build_combos(strategy, grid or [], params or [], random=random, seed=seed)
    n_workers, address, text = backend(workers, dask, scheduler)
    config = _config(initial_equity, risk_pct, leverage, taker_fee, maker_fee, slippage, time_stop)
    [loaded] = load_sweep_markets(
        state(ctx).lake(), [spec], timeframe, confirm_venues=tuple(confirm_venues or ()),
        since=parse_at(since, "--since"), until=parse_at(until, "--until"),
        oi_market=oi_market,
    )  # fmt: skip
    report = run_walkforward(
        loaded, strategy, combos, config, folds=folds, is_ratio=is_ratio, anchored=anchored,
        objective=objective, min_trades=min_trades, workers=n_workers, dask=address,
        backend_text=text,
    )  # fmt: skip
    if out is not None:
        write_walkforward_chart(report, out)
    if fmt is Format.JSON:
        emit(report, "json")
        return
    rows = []
    for f in report["folds"]:
        row = {
            "fold": str(f["fold"]),
            "out of sample": f"{f['oos_start']:%Y-%m-%d} to {f['oos_end']:%Y-%m-%d}",
        }
        if f["chosen"] is None:
            row["chosen"] = f"none with >= {min_trades} trades"
        else:
            row["chosen"] = " ".join(f"{k}={_fmt_value(v)}" for k, v in f["chosen"].items())
            row[f"is {objective}"] = _num(f["is"][objective], "{:.3f}")
            row.update({f"oos {k}": v for k, v in _stat_cells(f["oos"]).items()})
        rows.append(row)
    emit(rows, "table", title="walk-forward folds")
    o = report["oos"]
    chained = [
        {"field": "trades", "value": str(o["trades"])},
        {"field": "return", "value": _pct(o["total_return"])},
        {"field": "sharpe", "value": _num(o["sharpe"])},
        {"field": "max drawdown", "value": _pct(o["max_drawdown"])},
        {"field": "win rate", "value": _pct(o.get("win_rate"))},
        {"field": "efficiency", "value": _num(report["efficiency"], "{:.2f}")},
    ]
    chained += [
        {"field": f"stability {s['parameter']}",
         "value": f"{s['stability'] * 100:.0f}% chose {_fmt_value(s['most_chosen'])}"}
        for s in report["stability"]
    ]  # fmt: skip
    emit(chained, "table", title="out of sample, chained")
