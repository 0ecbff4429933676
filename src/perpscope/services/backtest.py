"""Backtest use-case: load a market from the store, run a strategy, compute the statistics.

The CLI (and any other front end) calls :func:`run_backtest_report` and renders its result.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from perpscope.backtest.loader import load_market
from perpscope.backtest.slicing import slice_market
from perpscope.backtest.stats import backtest_stats
from perpscope.backtest.strategies import STRATEGIES, run_strategy
from perpscope.backtest.types import EXIT_REASONS, BacktestRun, EngineConfig
from perpscope.domain.symbols import InstrumentKind, parse_instrument, parse_venue
from perpscope.errors import UsageError
from perpscope.store.lake import Lake

__all__ = [
    "BacktestReport",
    "coerce_param",
    "parse_oi_market",
    "parse_params",
    "run_backtest_report",
    "trades_frame",
    "window_bars",
    "write_equity_chart",
]

INTRABAR_RULE = (
    "conservative: when a bar touches both the stop and a target, the stop fills first and the "
    "target does not"
)


@dataclass(frozen=True, slots=True)
class BacktestReport:
    """The summary record (statistics at the top level), one row per trade, the equity curve."""

    summary: dict[str, Any]
    trades: pl.DataFrame
    equity: pl.DataFrame


def coerce_param(value: str, kind: Any) -> Any:
    """Text to the type of a parameters-dataclass field (float, int, bool, None, tuples)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        if value.lower() in ("none", ""):
            return None
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return coerce_param(value, inner[0])
    if origin is tuple:
        args = typing.get_args(kind)
        return tuple(coerce_param(v.strip(), args[0]) for v in value.split(","))
    if kind is bool:
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{value!r} is not true or false")
        return value.lower() in ("true", "1")
    if kind is int:
        return int(value)
    if kind is str:
        return value
    return float(value)


def parse_params(strategy: str, pairs: list[str]) -> Any:
    """The parameters dataclass of ``strategy`` from ``KEY=VALUE`` texts, validated.

    Raises:
        UsageError: unknown strategy, unknown key, a value of the wrong type, or a bad value.
    """
    spec = STRATEGIES.get(strategy)
    if spec is None:
        raise UsageError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    hints = typing.get_type_hints(spec.params)
    names = {f.name for f in dataclasses.fields(spec.params)}
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in names:
            raise UsageError(
                f"bad --param {pair!r}: use KEY=VALUE with KEY one of {', '.join(sorted(names))}"
            )
        try:
            values[key] = coerce_param(text.strip(), hints[key])
        except ValueError as exc:
            raise UsageError(f"bad --param {pair!r}: {exc}") from None
    params = spec.params(**values)
    try:
        params.validate()
    except ValueError as exc:
        raise UsageError(f"{strategy}: {exc}") from None
    return params


def trades_frame(run: BacktestRun) -> pl.DataFrame:
    """One row per trade; times are the open times of the entry and exit bars (UTC)."""
    t = run.trades
    ts = run.ts
    col = {name: run.column(name) for name in ("entry_bar", "exit_bar")}
    return pl.DataFrame(
        {
            "entry_ts": ts[col["entry_bar"].astype(np.int64)],
            "exit_ts": ts[col["exit_bar"].astype(np.int64)],
            "side": ["long" if s > 0 else "short" for s in run.column("side")],
            "entry_px": run.column("entry_px"),
            "exit_px": run.column("exit_px"),
            "qty": run.column("qty"),
            "pnl_usd": run.column("pnl_usd"),
            "funding_usd": run.column("funding_usd"),
            "fees_usd": run.column("fees_usd"),
            "r_multiple": run.column("r_multiple"),
            "exit_reason": [EXIT_REASONS[int(k)] for k in run.column("exit_reason")],
            "stop_first": run.column("stop_first").astype(bool) if len(t) else [],
        },
        schema_overrides={"entry_ts": pl.Int64, "exit_ts": pl.Int64, "stop_first": pl.Boolean},
    ).with_columns(
        pl.col("entry_ts").cast(pl.Datetime("ns", "UTC")),
        pl.col("exit_ts").cast(pl.Datetime("ns", "UTC")),
    )


def run_backtest_report(
    lake: Lake,
    strategy: str,
    *,
    venue: str,
    instrument: str,
    timeframe: str,
    params: Any,
    config: EngineConfig,
    price_instrument: str | None = None,
    cascade_range: float = 0.03,
    confirm_venues: tuple[str, ...] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    oi_market: str | None = None,
) -> BacktestReport:
    """Run ``strategy`` on the stored market and summarise it.

    Raises:
        UsageError: bad venue/instrument/timeframe/configuration, or missing data.
    """
    try:
        parse_venue(venue)
        if parse_instrument(instrument).kind is not InstrumentKind.PERP:
            raise ValueError(f"{instrument} is not a perpetual: funding needs one")
        if price_instrument:
            parse_instrument(price_instrument)
        for other in confirm_venues:
            parse_venue(other)
        config.validate()
        loaded = load_market(
            lake,
            venue,
            instrument,
            timeframe,
            price_instrument=price_instrument,
            cascade_range=cascade_range,
            confirm_venues=confirm_venues,
            oi_from=parse_oi_market(oi_market),
        )
        market = loaded.market
        n_loaded = len(market.ts)
        i0, i1 = window_bars(market.ts, since, until)
        run = run_strategy(strategy, market, params, config, [(i0, i1)])[0]
        market = slice_market(market, i0, i1)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    stats = backtest_stats(run, loaded.bar_hours)
    ts = market.ts
    summary: dict[str, Any] = {
        "strategy": strategy,
        "venue": venue,
        "instrument": instrument,
        "price_instrument": loaded.price_instrument,
        "timeframe": timeframe,
        "start": _ts(int(ts[0])) if len(ts) else None,
        "end": _ts(int(ts[-1])) if len(ts) else None,
        "bars": len(ts),
        **stats,
        "intrabar_rule": INTRABAR_RULE,
        "funding_price": "mark" if loaded.mark_bars == len(ts) else (
            "mark where mark candles exist, else the traded candles"
            if loaded.mark_bars else f"{loaded.price_instrument} candles (no mark candles)"
        ),
        "notes": loaded.notes + (
            [f"traded bars {i0:,}-{i1 - 1:,} of the {n_loaded:,} loaded (--since/--until); "
             "the earlier ones warm the strategy's indicators up"]
            if (i0, i1) != (0, n_loaded) else []
        ),
        "params": dataclasses.asdict(params),
        "config": dataclasses.asdict(config),
    }  # fmt: skip
    eq = np.concatenate(([run.initial_equity], run.equity))
    drawdown = (eq / np.maximum.accumulate(eq) - 1.0)[1:]
    curve = pl.DataFrame(
        {"ts": ts, "equity": run.equity, "drawdown": drawdown},
        schema_overrides={"ts": pl.Int64},
    ).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    return BacktestReport(summary, trades_frame(run), curve)


def write_equity_chart(report: BacktestReport, path: Path) -> None:
    """Equity curve and drawdown: PNG (matplotlib) or HTML (plotly), by the file's suffix.

    Raises:
        UsageError: another suffix, or the plotting library is not installed.
    """
    suffix = path.suffix.lower()
    if suffix not in (".png", ".html"):
        raise UsageError(f"--out {path.name}: use a .png or .html file")
    s = report.summary
    title = f"{s['strategy']} {s['venue']} {s['instrument']} {s['timeframe']}"
    ts = report.equity["ts"].to_list()
    equity = report.equity["equity"].to_numpy()
    dd = report.equity["drawdown"].to_numpy() * 100.0
    try:
        if suffix == ".png":
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(11, 6))
            top.plot(ts, equity, lw=1)
            top.set_ylabel("equity (USD)")
            top.set_title(title)
            bottom.fill_between(ts, dd, 0, color="tab:red", alpha=0.5)
            bottom.set_ylabel("drawdown (%)")
            fig.tight_layout()
            fig.savefig(path, dpi=110)
            plt.close(fig)
        else:
            from plotly.subplots import make_subplots  # type: ignore[import-untyped,unused-ignore]

            fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3])
            fig.add_scatter(x=ts, y=equity, name="equity (USD)", row=1, col=1)
            fig.add_scatter(x=ts, y=dd, name="drawdown (%)", fill="tozeroy", row=2, col=1)
            fig.update_layout(title=title)
            fig.write_html(path, include_plotlyjs=True)  # self-contained: opens offline
    except ImportError as exc:
        raise UsageError(f"--out {suffix}: {exc.name} is not installed") from None


def parse_oi_market(text: str | None) -> tuple[str, str] | None:
    """An ``--oi-market VENUE:INSTRUMENT`` value.

    Raises:
        ValueError: not of that form, or a bad venue or instrument.
    """
    if text is None:
        return None
    venue, sep, instrument = text.partition(":")
    if not sep:
        raise ValueError(
            f"bad --oi-market {text!r}: use VENUE:INSTRUMENT, e.g. binance:BTC-USD-PERP"
        )
    parse_venue(venue)
    parse_instrument(instrument)
    return venue, instrument


def window_bars(
    ts: np.ndarray[Any, np.dtype[np.int64]], since: datetime | None, until: datetime | None
) -> tuple[int, int]:
    """Bar indices ``[i0, i1)`` with open times in ``[since, until)``.

    Raises:
        ValueError: fewer than 2 bars in the window.
    """
    i0 = 0 if since is None else int(np.searchsorted(ts, int(since.timestamp() * 1e9), "left"))
    i1 = len(ts) if until is None else int(np.searchsorted(ts, int(until.timestamp() * 1e9)))
    if i1 - i0 < 2:
        raise ValueError("fewer than 2 bars between --since and --until")
    return i0, i1


def _ts(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)
