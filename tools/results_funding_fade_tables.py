"""The tables of docs/results/funding-fade.md from the JSON that results_funding_fade.sh writes.

python tools/results_funding_fade_tables.py OUT_DIR > tables.md
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def load(out: Path, name: str) -> Any:
    return json.loads((out / f"{name}.json").read_text())["data"]


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x * 100:+.{digits}f}%"


def num(x: float | None, fmt: str = "{:.2f}") -> str:
    return "n/a" if x is None else fmt.format(x)


def run_row(label: str, d: dict[str, Any]) -> str:
    ratio = None
    if d["avg_win_r"] is not None and d["avg_loss_r"]:
        ratio = d["avg_win_r"] / -d["avg_loss_r"]
    total = d["final_equity"] / d["initial_equity"] - 1
    cells = [
        label, str(d["trades"]), pct(d["win_rate"], 0), num(ratio), num(d["expectancy_r"],
        "{:+.2f}R"), num(d["profit_factor"]), num(d["sharpe"]), pct(d["max_drawdown"]),
        pct(total), num(d["avg_trade_duration_h"], "{:.0f} h"),
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


HEAD = (
    "| run | trades | win rate | avg win / avg loss | expectancy | profit factor | Sharpe | "
    "max drawdown | return | avg duration |\n|---|---|---|---|---|---|---|---|---|---|"
)


def main(out: Path) -> None:
    print("### Extreme prints per year\n")
    print("| instrument | venue | year | settlements | >= +0.05% | <= -0.05% |")
    print("|---|---|---|---|---|---|")
    for r in load(out, "extremes"):
        print(f"| {r['instrument']} | {r['venue']} | {r['year']} | {r['settlements']} | "
              f"{r['above_plus_005']} | {r['below_minus_005']} |")  # fmt: skip
    print("\n### Whole period\n")
    print(HEAD)
    runs = [
        ("BTC 4h, defaults", "btc-4h-default"), ("BTC 1h, defaults", "btc-1h-default"),
        ("BTC 4h, half size when ADX > 30", "btc-4h-half"),
        ("BTC 4h, skip when ADX > 30", "btc-4h-skip"),
        ("BTC 4h, choppy rules", "btc-4h-choppy"),
        ("BTC 4h, half + choppy (overlay)", "btc-4h-overlay"),
        ("BTC 4h, skip + choppy", "btc-4h-overlay-skip"),
        ("ETH 4h, defaults", "eth-4h-default"), ("ETH 1h, defaults", "eth-1h-default"),
        ("ETH 4h, half size when ADX > 30", "eth-4h-half"),
        ("ETH 4h, skip when ADX > 30", "eth-4h-skip"),
        ("ETH 4h, choppy rules", "eth-4h-choppy"),
        ("ETH 4h, half + choppy (overlay)", "eth-4h-overlay"),
        ("ETH 4h, skip + choppy", "eth-4h-overlay-skip"),
    ]  # fmt: skip
    for label, name in runs:
        print(run_row(label, load(out, name)))
    print("\n### Two venues (2021-2023, Bybit's data starts 2021-01-01)\n")
    print(HEAD)
    for a in ("btc", "eth"):
        for label, suffix in (("Binance only", "one"), ("Binance + Bybit agree", "two"),
                              ("both agree + overlay", "two-overlay")):  # fmt: skip
            print(run_row(f"{a.upper()} 4h, {label}", load(out, f"{a}-4h-from2021-{suffix}")))
    print("\n### Per year (4h, defaults)\n")
    print(HEAD)
    for a in ("btc", "eth"):
        for y in (2020, 2021, 2022, 2023):
            print(run_row(f"{a.upper()} {y}", load(out, f"{a}-4h-{y}")))
    print("\n### Walk-forward (4h; 18 combinations; 4 folds, in-sample 3 segments)\n")
    for a in ("btc", "eth"):
        wf = load(out, f"wf-{a}")
        print(f"**{a.upper()}**\n")
        print(
            "| fold | in-sample | out-of-sample | chosen | IS trades | IS Sharpe | OOS trades "
            "| OOS return | OOS Sharpe |\n|---|---|---|---|---|---|---|---|---|"
        )
        for f in wf["folds"]:
            span = f"{f['is_start'][:10]} to {f['is_end'][:10]}"
            oos = f"{f['oos_start'][:10]} to {f['oos_end'][:10]}"
            if f["chosen"] is None:
                print(f"| {f['fold']} | {span} | {oos} | none | | | | | |")
                continue
            chosen = ", ".join(f"{k}={v}" for k, v in f["chosen"].items())
            print(f"| {f['fold']} | {span} | {oos} | {chosen} | {f['is']['trades']} | "
                  f"{num(f['is']['sharpe'])} | {f['oos']['trades']} | "
                  f"{pct(f['oos']['total_return'], 2)} | {num(f['oos']['sharpe'])} |")  # fmt: skip
        o = wf["oos"]
        stab = "; ".join(
            f"{s['parameter']} {s['stability'] * 100:.0f}% ({s['most_chosen']})"
            for s in wf["stability"]
        )
        print(f"\nChained out of sample: {o['trades']} trades, return {pct(o['total_return'], 2)}, "
              f"Sharpe {num(o['sharpe'])}, max drawdown {pct(o['max_drawdown'], 2)}; "
              f"efficiency {num(wf['efficiency'])} over {wf['efficiency_folds']} fold(s); "
              f"stability: {stab}.\n")  # fmt: skip
    print("### Sensitivity (4h, 54 combinations per market)\n")
    rows = load(out, "sweep")["rows"]
    for m in ("binance:BTC-USDT-PERP", "binance:ETH-USDT-PERP"):
        mine = [r for r in rows if r["market"] == m]
        pos = sum(1 for r in mine if (r["sharpe"] or 0) > 0)
        med = statistics.median(r["sharpe"] or 0.0 for r in mine)
        print(f"**{m}**: Sharpe > 0 in {pos} of {len(mine)} combinations; median Sharpe "
              f"{med:.2f}; best {max(r['sharpe'] or -9 for r in mine):.2f}.\n")  # fmt: skip
        print("| threshold | min_periods | trades | win rate | profit factor | Sharpe | return |")
        print("|---|---|---|---|---|---|---|")
        for r in mine:
            if r["stop_atr"] == 2.0 and r["final_target"] == "funding":
                print(f"| {r['threshold']} | {r['min_periods']} | {r['trades']} | "
                      f"{pct(r['win_rate'], 0)} | {num(r['profit_factor'])} | {num(r['sharpe'])} "
                      f"| {pct(r['total_return'])} |")  # fmt: skip
        print("\nMedian Sharpe (median trades) by value, over the other parameters:\n")
        for key in ("threshold", "min_periods", "stop_atr", "final_target"):
            vals = sorted({r[key] for r in mine}, key=str)
            cells = ", ".join(
                f"{v}: {statistics.median(r['sharpe'] or 0.0 for r in mine if r[key] == v):.2f} "
                f"({statistics.median(r['trades'] for r in mine if r[key] == v):.0f})"
                for v in vals
            )
            print(f"- `{key}`: {cells}")
        print()
    print("### Monte Carlo (10,000 paths, 1% risk, seed 0)\n")
    print(
        "| trades of | method | final p5 | p50 | p95 | max drawdown p5 | p50 | p95 | ruin (-50%) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for a in ("btc", "eth"):
        for suffix in ("", "-reshuffle"):
            d = load(out, f"mc-{a}{suffix}")
            fe, dd = d["final_equity"], d["max_drawdown"]
            ruin = f"{d['risk_of_ruin'] * 100:.1f}%"
            print(f"| {a.upper()} 4h defaults | {d['method']} | {pct(fe['p5'] - 1)} | "
                  f"{pct(fe['p50'] - 1)} | {pct(fe['p95'] - 1)} | {pct(dd['p5'])} | "
                  f"{pct(dd['p50'])} | {pct(dd['p95'])} | {ruin} |")  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]))
