"""Monte Carlo use-case: read a trades file, replay it, render the fan chart."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from perpscope.backtest.montecarlo import METHODS, PERCENTILES, MonteCarloResult, monte_carlo
from perpscope.errors import UsageError

__all__ = ["monte_carlo_rows", "read_r_multiples", "run_monte_carlo", "write_fan_chart"]


def read_r_multiples(path: Path) -> list[float]:
    """The ``r_multiple`` column of a trades CSV.

    Raises:
        UsageError: the file is missing or unreadable, has no such column, or a bad value.
    """
    try:
        frame = pl.read_csv(
            path, columns=["r_multiple"], schema_overrides={"r_multiple": pl.Float64}
        )
    except FileNotFoundError:
        raise UsageError(f"--trades {path}: no such file") from None
    except (OSError, pl.exceptions.PolarsError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"--trades {path}: cannot read an r_multiple column ({first}); write the file with "
            "'perpscope backtest run ... --trades FILE.csv'"
        ) from None
    column = frame["r_multiple"]
    if column.null_count():
        raise UsageError(f"--trades {path}: {column.null_count()} trade(s) have no r_multiple")
    return column.to_list()


def run_monte_carlo(
    r_multiples: list[float],
    *,
    risk_pct: float,
    paths: int,
    method: str,
    seed: int,
    ruin_pct: float,
) -> MonteCarloResult:
    """:func:`perpscope.backtest.montecarlo.monte_carlo` with percent inputs and usage errors."""
    if method not in METHODS:
        raise UsageError(f"bad --method {method!r}: use {' or '.join(METHODS)}")
    try:
        return monte_carlo(
            r_multiples,
            risk_pct / 100.0,
            paths=paths,
            method=method,  # type: ignore[arg-type]
            seed=seed,
            ruin_drawdown=ruin_pct / 100.0,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def monte_carlo_rows(result: MonteCarloResult) -> list[dict[str, str]]:
    """The table: one row per percentile, final equity as a return and the maximum drawdown."""
    rows = [
        {
            "percentile": f"p{p}",
            "final return": f"{(result.final_equity[p] - 1.0) * 100:+.2f}%",
            "max drawdown": f"{result.max_drawdown[p] * 100:.2f}%",
        }
        for p in PERCENTILES
    ]
    rows.append(
        {
            "percentile": "ruin",
            "final return": f"{result.risk_of_ruin * 100:.2f}% of paths",
            "max drawdown": f"reach -{result.ruin_drawdown * 100:g}%",
        }
    )
    return rows


def write_fan_chart(result: MonteCarloResult, path: Path) -> None:
    """The equity paths' percentile bands after each trade, as a PNG (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = range(result.fan.shape[1])
    fig, ax = plt.subplots(figsize=(10, 5))
    lo, q1, mid, q3, hi = result.fan
    ax.fill_between(x, lo, hi, alpha=0.2, color="tab:blue", label="5th-95th percentile")
    ax.fill_between(x, q1, q3, alpha=0.35, color="tab:blue", label="25th-75th percentile")
    ax.plot(x, mid, color="tab:blue", lw=1.2, label="median")
    ax.set_xlabel("trade")
    ax.set_ylabel("equity (x initial)")
    ax.set_title(
        f"Monte Carlo ({result.method}, {result.paths:,} paths, "
        f"{result.risk_frac * 100:g}% risk per trade)"
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
