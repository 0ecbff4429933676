"""``perpscope scenario``, ``perpscope signals`` and ``perpscope signals journal``.

Heavy libraries and the services are imported inside the commands so the CLI starts fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from perpscope.cli._common import Format, state

if TYPE_CHECKING:
    from perpscope.signals import Signal

__all__ = ["app", "journal", "scenario", "signals"]

app = typer.Typer(
    help="The playbook's setups with evidence, entry, invalidation and targets; the journal.",
    invoke_without_command=True,
    no_args_is_help=False,
)

FormatArg = Annotated[Format, typer.Option("--format", help="Output format.")]
AtArg = Annotated[
    str | None,
    typer.Option("--at", help="As of this UTC time (ISO 8601); only data up to it is used."),
]


def _rate(x: Any) -> str:
    return "" if x is None or x != x else f"{x * 100:+.4f}%"


def _px(x: Any) -> str:
    return "" if x is None or x != x else f"{x:,.6g}"


def _opt_value(name: str, v: Any) -> str:
    """An options evidence value for humans (put/call 0.62, skew -3.1 vol pts, IV 55.0%)."""
    if not isinstance(v, int | float) or isinstance(v, bool) or v != v:
        return "" if v is None else str(v)
    if "vol pts" in name:
        return f"{v:+.1f} vol pts"
    if "ATM IV" in name:
        return f"{v * 100:.1f}%"
    if "percentile" in name:
        return f"{v * 100:.0f}th pct"
    if "distance %" in name:
        return f"{v:+.2f}%"
    if name.endswith(" px"):
        return f"${v:,.6g}"
    if "days" in name:
        return f"{v:.1f} d"
    return f"{v:.2f}"


def _options_summary(evidence: Any) -> dict[str, str] | None:
    """The options evidence of a reading or a signal in one row (None when it has none)."""
    ev = {e.name: e.value for e in evidence if e.name.startswith("options ")}
    if not ev:
        return None

    def v(name: str) -> str:
        return _opt_value(name, ev.get(name))

    mp = v("options max pain px")
    if mp:
        mp += f" ({v('options max pain distance %')}, {ev.get('options expiry')})"
    return {
        "chain": f"{ev.get('options venue')} {str(ev.get('options chain ts'))[:16]}",
        "put/call": v("options put/call OI"),
        "pctl": v("options put/call percentile"),
        "skew 25d": v("options 25d skew vol pts"),
        "fear": v("options fear grade"),
        "ATM IV front/back": f"{v('options front ATM IV')} / {v('options back ATM IV')}",
        "term": v("options term structure"),
        "max pain": mp,
        "walls put/call": f"{v('options put wall px')} / {v('options call wall px')}",
    }


def options_rows(found: Sequence[Signal]) -> list[dict[str, str]]:
    """One options row per asset, from the setup carrying the most options evidence.

    Most setups carry only a part of the reading (venue, put/call, skew, max pain; see
    :data:`perpscope.signals.options.CONTEXT`): the first one found would leave the percentile,
    the IVs and the walls blank beside the scenario command's full reading.
    """

    def filled(row: dict[str, str]) -> int:
        return sum(bool(v.strip(" /()")) for v in row.values())

    best: dict[str, dict[str, str]] = {}
    for s in found:
        opt = _options_summary(s.evidence)
        if opt is not None and (s.asset not in best or filled(opt) > filled(best[s.asset])):
            best[s.asset] = opt
    return [{"asset": a, **row} for a, row in best.items()]


def _value(name: str, v: Any) -> str:
    from perpscope.formats import fmt_evidence

    return _opt_value(name, v) if name.startswith("options ") else fmt_evidence(name, v)


def scenario(
    ctx: typer.Context,
    asset: Annotated[str, typer.Option("--asset", help="Base asset, e.g. BTC.")],
    at: AtArg = None,
    fmt: FormatArg = Format.TABLE,
) -> None:
    """Which of the playbook's six confluence scenarios applies to ASSET (or none)."""
    from perpscope.cli._common import emit
    from perpscope.cli._market_opts import parse_at
    from perpscope.services.signals import scenario_report

    r = scenario_report(state(ctx).lake(), asset, parse_at(at))
    if fmt is Format.JSON:
        emit(r.to_json(), "json")
        return
    emit(
        {
            "asset": r.asset,
            "as of": r.ts,
            "scenario": r.scenario,
            "confidence": f"{r.confidence:.0%}",
        },
        "table",
        title="scenario",
    )
    emit(
        [
            {"reading": e.name, "value": _value(e.name, e.value)}
            for e in r.evidence
            if not e.name.startswith("options ")
        ],
        "table",
        title="evidence",
    )
    opt = _options_summary(r.evidence)
    if opt is not None:
        emit(opt, "table", title="options evidence")
    emit(
        [{"scenario": k, "score": f"{v:.0%}"} for k, v in r.scores.items()], "table", title="scores"
    )


@app.callback()
def signals(
    ctx: typer.Context,
    assets: Annotated[
        str, typer.Option("--assets", help="Comma-separated base assets.")
    ] = "BTC,ETH",
    at: AtArg = None,
    fmt: FormatArg = Format.TABLE,
) -> None:
    """Live setups for ASSETS at a time, stored in the journal (the `signals` table)."""
    if ctx.invoked_subcommand is not None:
        return
    from perpscope.cli._common import emit
    from perpscope.cli._market_opts import parse_at
    from perpscope.services.signals import run_signals

    names = [a for a in (x.strip() for x in assets.split(",")) if a]
    found = run_signals(state(ctx).lake(), names, parse_at(at))
    if fmt is Format.JSON:
        emit([s.to_json() for s in found], "json")
        return
    emit(
        [
            {
                "setup": s.setup,
                "asset": s.asset,
                "time": s.ts,
                "direction": s.direction,
                "stage": s.stage,
                "strength": f"{s.strength:.0%}",
                "entry": ""
                if s.entry_low_px is None
                else f"{_px(s.entry_low_px)} - {_px(s.entry_high_px)}",
                "invalidation": _px(s.invalidation_px),
                "targets": ", ".join(_px(t) for t in s.targets_px),
                "missing": ",".join(s.missing),
            }
            for s in found
        ],
        "table",
        title="setups",
    )

    seen = options_rows(found)
    if seen:
        emit(seen, "table", title="options evidence")


@app.command("journal")
def journal(
    ctx: typer.Context,
    setup: Annotated[str | None, typer.Option("--setup", help="Only this setup.")] = None,
    fmt: FormatArg = Format.TABLE,
) -> None:
    """Stored signals with forward returns (4h/24h/72h), first hit, and per-setup hit rate and R."""
    from perpscope.cli._common import emit
    from perpscope.services.signals import journal as run_journal

    rep = run_journal(state(ctx).lake(), setup)
    if fmt is Format.JSON:
        emit({"signals": rep.signals, "per_setup": rep.per_setup}, "json")
        return
    emit(
        [
            {
                "time": r["ts"],
                "setup": r["setup"],
                "instrument": f"{r['venue']} {r['instrument']}",
                "dir": r["direction"],
                "stage": r["stage"],
                "entry": _px(r["entry_px"]),
                "stop": _px(r["invalidation_px"]),
                "T1": _px(r["target_px"]),
                **{
                    f"{h}h": "" if r[f"ret_{h}h"] is None else f"{r[f'ret_{h}h'] * 100:+.2f}%"
                    for h in (4, 24, 72)
                },
                "first hit": r["first_hit"] or "",
                "R": "" if r["r"] is None else f"{r['r']:+.2f}",
            }
            for r in rep.signals.iter_rows(named=True)
        ],
        "table",
        title="journal",
    )
    emit(
        [
            {
                "setup": r["setup"],
                "count": r["count"],
                "hit rate": ""
                if r["hit_rate"] is None or r["hit_rate"] != r["hit_rate"]
                else f"{r['hit_rate']:.0%}",
                "mean R": "" if r["mean_r"] is None else f"{r['mean_r']:+.2f}",
            }
            for r in rep.per_setup.iter_rows(named=True)
        ],
        "table",
        title="per setup",
    )
