"""The tables of docs/results/basis-carry.md and oi-divergence.md from results_other_strategies.sh.

python tools/results_other_strategies_tables.py OUT_DIR > tables.md
"""

from __future__ import annotations

import csv
import json
import statistics
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

HOURS_PER_YEAR = 365.25 * 24


def load(out: Path, name: str) -> Any:
    return json.loads((out / f"{name}.json").read_text())["data"]


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x * 100:+.{digits}f}%"


def num(x: float | None, fmt: str = "{:.2f}") -> str:
    return "n/a" if x is None else fmt.format(x)


def in_trade_rate(path: Path) -> tuple[float | None, float]:
    """Compound return of the trades annualised over the hours spent in them, and those hours."""
    growth, hours = 1.0, 0.0
    with path.open() as f:
        for row in csv.DictReader(f):
            growth *= 1 + float(row["r_multiple"])
            t0 = datetime.fromisoformat(row["entry_ts"].replace("Z", "+00:00"))
            t1 = datetime.fromisoformat(row["exit_ts"].replace("Z", "+00:00"))
            hours += (t1 - t0).total_seconds() / 3600 + 1  # the exit bar is held too (1h bars)
    if hours == 0:
        return None, 0.0
    return growth ** (HOURS_PER_YEAR / hours) - 1, hours


def carry(out: Path) -> None:
    print("### Basis carry per year (1h bars)\n")
    print("| market | period | trades | return on capital | time in trade | annualised while in "
          "| funding | fees | exits |\n|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for a in ("btc", "eth"):
        for period in ("2020", "2021", "2022", "2023", "all"):
            name = f"carry-{a}" if period == "all" else f"carry-{a}-{period}"
            d = load(out, name)
            rate, hours = in_trade_rate(out / f"{name}.csv")
            in_rate = pct(rate) if hours >= 24 * 7 else "n/a (under a week)"
            total = d["final_equity"] / d["initial_equity"] - 1
            exits = ", ".join(f"{k} {v}" for k, v in d["exits"].items() if v) or "-"
            label = "2020-2023" if period == "all" else period
            print(f"| {a.upper()} | {label} | {d['trades']} | {pct(total)} | "
                  f"{d['exposure'] * 100:.0f}% | {in_rate} | ${d['funding_usd']:,.0f} | "
                  f"${d['fees_usd']:,.0f} | {exits} |")  # fmt: skip
    print()
    rows = load(out, "carry-sweep")["rows"]
    print("### Basis carry sensitivity (2020-2023, total return)\n")
    print("| market | entry_avg | exit_below | margin_warning | trades | return | max drawdown |")
    print("|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["market"], r["entry_avg"], r["exit_below"],
                                         r["margin_warning"])):  # fmt: skip
        print(
            f"| {r['market']} | {r['entry_avg']} | {r['exit_below']} | {r['margin_warning']} | "
            f"{r['trades']} | {pct(r['total_return'])} | {pct(r['max_drawdown'], 2)} |"
        )
    print()


def oi(out: Path) -> None:
    print("### OI divergence, 2021-09-21 to 2023-12-31\n")
    print("| market | bars | min_ratio | trades | win rate | avg win / avg loss | expectancy | "
          "profit factor | Sharpe | max drawdown | return |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for a in ("btc", "eth"):
        for tf in ("1h", "4h", "1d"):
            for r in ("0.5", "1.0"):
                d = load(out, f"oi-{a}-{tf}-{r}")
                ratio = None
                if d["avg_win_r"] is not None and d["avg_loss_r"]:
                    ratio = d["avg_win_r"] / -d["avg_loss_r"]
                total = d["final_equity"] / d["initial_equity"] - 1
                print(f"| {a.upper()} | {tf} | {r} | {d['trades']} | {pct(d['win_rate'], 0)} | "
                      f"{num(ratio)} | {num(d['expectancy_r'], '{:+.2f}R')} | "
                      f"{num(d['profit_factor'])} | {num(d['sharpe'])} | "
                      f"{pct(d['max_drawdown'])} | {pct(total)} |")  # fmt: skip
    print()
    for a in ("btc", "eth"):
        rows = load(out, f"oi-sweep-{a}")["rows"]
        pos = sum(1 for r in rows if (r["sharpe"] or 0) > 0)
        med = statistics.median(r["sharpe"] or 0.0 for r in rows)
        wins = [r["win_rate"] for r in rows if r["win_rate"] is not None]
        print(f"**Sweep {a.upper()} 4h** (lookback 48/120/240 h x ratio 0.25/0.5/1 x move 2%/5%): "
              f"Sharpe > 0 in {pos} of {len(rows)}, median {med:.2f}, best "
              f"{max(r['sharpe'] or -9 for r in rows):.2f}; win rates "
              f"{min(wins) * 100:.0f}%-{max(wins) * 100:.0f}%.\n")  # fmt: skip
        for key in ("lookback_h", "min_ratio", "min_move"):
            vals = sorted({r[key] for r in rows})
            parts = []
            for v in vals:
                mine = [r for r in rows if r[key] == v]
                sharpe = statistics.median(r["sharpe"] or 0.0 for r in mine)
                win = statistics.median(r["win_rate"] or 0.0 for r in mine)
                parts.append(f"{v:g}: Sharpe {sharpe:.2f}, win {win * 100:.0f}%")
            cells = ", ".join(parts)
            print(f"- `{key}` (medians): {cells}")
        print()
        wf = load(out, f"oi-wf-{a}")
        o = wf["oos"]
        folds = "; ".join(
            f"fold {f['fold']} ({f['oos_start'][:10]} to {f['oos_end'][:10]}): "
            + ("none" if f["chosen"] is None else
               ", ".join(f"{k}={v:g}" for k, v in f["chosen"].items())
               + f", {f['oos']['trades']} trades, {pct(f['oos']['total_return'])}")
            for f in wf["folds"]
        )  # fmt: skip
        eff = num(wf["efficiency"])
        print(
            f"**Walk-forward {a.upper()} 4h** (3 folds, in-sample 2 segments): {folds}. "
            f"Chained: {o['trades']} trades, return {pct(o['total_return'])}, Sharpe "
            f"{num(o['sharpe'])}, win rate {pct(o['win_rate'], 0)}; efficiency {eff}.\n"
        )


def main(out: Path) -> None:
    carry(out)
    oi(out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
