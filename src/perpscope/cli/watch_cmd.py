"""``perpscope watch`` (the alerting service) and ``perpscope alerts list|test|history``.

Heavy libraries and the services are imported inside the commands so the CLI starts fast.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer

from perpscope.cli._common import Format, emit, err_console, out_console, state
from perpscope.errors import UsageError

if TYPE_CHECKING:
    from perpscope.alerts.engine import AlertEvent
    from perpscope.domain.alert_rules import Rule
    from perpscope.services.watch import WatchSummary

__all__ = ["app", "watch"]

app = typer.Typer(help="Alert rules and the alerts they fired.", no_args_is_help=True)

FormatArg = Annotated[Format, typer.Option("--format", help="Output format.")]
_SEVERITY_STYLE = {"info": "cyan", "warning": "yellow", "critical": "bold red"}


def _event_line(event: AlertEvent) -> str:
    from perpscope.formats import fmt_time

    style = _SEVERITY_STYLE.get(event.severity, "")
    return (
        f"{fmt_time(event.ts)}  [{style}]{event.severity.upper():8}[/]  "
        f"[bold]{event.rule}[/]  {event.message}"
    )


def watch(
    ctx: typer.Context,
    sim: Annotated[
        bool, typer.Option("--sim", help="Drive the pipeline from the simulator (offline).")
    ] = False,
    scenario: Annotated[
        str, typer.Option("--scenario", help="Simulator preset (with --sim).")
    ] = "default",
    seed: Annotated[int, typer.Option("--seed", help="Simulator seed (with --sim).")] = 7,
    days: Annotated[
        int, typer.Option("--days", min=1, max=3650, help="Simulated days (with --sim).")
    ] = 30,
    speed: Annotated[
        float,
        typer.Option(
            "--speed",
            min=0.0,
            help="Simulated seconds per real second (with --sim); 0 = as fast as possible, "
            "then exit at the end of the simulated period.",
        ),
    ] = 3600.0,
    venues: Annotated[
        str, typer.Option("--venues", help="Venues to collect (live), comma-separated.")
    ] = "binance,bybit",
    instrument: Annotated[
        list[str] | None,
        typer.Option("--instrument", help="Instrument to follow (live; repeatable)."),
    ] = None,
    every: Annotated[
        str, typer.Option("--every", help="Time between live snapshots, e.g. 60s, 5m.")
    ] = "5m",
    ticks: Annotated[
        int | None, typer.Option("--ticks", min=1, help="Stop after this many ticks.")
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option("--api-url", help="Base URL replacing the venues' hosts (a mirror)."),
    ] = None,
    drain: Annotated[
        float,
        typer.Option("--drain", min=0.0, help="Seconds to wait for pending deliveries at exit."),
    ] = 10.0,
    fmt: Annotated[
        Format,
        typer.Option(
            "--format", help="table: a line per alert as it fires; json: one document at the end."
        ),
    ] = Format.TABLE,
) -> None:
    """Collect, recompute the metrics, evaluate the alert rules and notify, until stopped.

    Rules and channels come from the [alerts] table of the configuration (and
    PERPSCOPE_NOTIFY). Every event is stored in alert_events; a restart sends nothing already
    sent and delivers what is still undelivered. Ctrl-C or SIGTERM stops it cleanly.
    """
    from perpscope.domain.alert_rules import parse_duration
    from perpscope.services.watch import LiveFeed, SimFeed, run_watch, wall_sleep

    st = state(ctx)
    alerts = st.config.alerts
    stop = threading.Event()
    sleep = wall_sleep(stop)
    if sim:
        from perpscope.sim import SimConfig

        try:
            feed: Any = SimFeed(SimConfig(seed=seed, days=days, scenario=scenario), speed, sleep)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        what = f"simulated {scenario} market, seed {seed}, {days} days"
    else:
        from perpscope.services.collection import DEFAULT_SNAPSHOT_INSTRUMENTS
        from perpscope.venues.registry import COLLECTABLE

        names = [v.strip() for v in venues.split(",") if v.strip()]
        bad = [v for v in names if v not in COLLECTABLE]
        if bad or not names:
            raise UsageError(f"--venues: unknown venue {bad[0] if bad else ''!r} "
                             f"(venues: {', '.join(COLLECTABLE)})")  # fmt: skip
        try:
            every_s = parse_duration(every)
        except ValueError as exc:
            raise UsageError(f"--every: {exc}") from None
        if every_s < 1:
            raise UsageError("--every: at least 1s")
        feed = LiveFeed(
            st.lake(),
            names,
            instrument or list(DEFAULT_SNAPSHOT_INSTRUMENTS),
            every_s=every_s,
            sleep=sleep,
            api_url=api_url,
        )
        what = f"{', '.join(names)} every {every}"

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    events: list[AlertEvent] = []
    live = _status_view(what) if fmt is Format.TABLE and out_console.is_terminal else None
    console = live.console if live is not None else out_console

    def on_event(event: AlertEvent) -> None:
        events.append(event)
        if fmt is Format.TABLE:
            console.print(_event_line(event), highlight=False)

    def on_tick(summary: WatchSummary, market: Any) -> None:
        if live is not None:
            live.update(_status(what, summary, market, events), refresh=True)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    err_console.print(f"watching {what}; rules: {_enabled(alerts.rules)}", markup=False)
    if live is not None:
        live.start()
    try:
        summary = run_watch(
            st.lake(),
            alerts,
            feed,
            environ=os.environ,
            stop=stop,
            on_event=on_event,
            on_tick=on_tick,
            on_note=lambda s: err_console.print(s, markup=False),
            drain_s=drain,
            max_ticks=ticks,
            flush_every=168 if sim and speed == 0 else 24,
            events_every=24 if sim and speed == 0 else 1,
        )
    finally:
        if live is not None:
            live.stop()
        for s, h in old.items():
            signal.signal(s, h)
    if fmt is Format.JSON:
        emit(_summary_json(summary, events), "json")
        return
    tail = []
    if summary.undelivered:
        tail.append(f"{summary.undelivered} undelivered (kept; sent at the next start)")
    if summary.resent:
        tail.append(f"{summary.resent} from an earlier run queued again")
    err_console.print(
        f"{'stopped' if summary.stopped else 'done'}: {summary.ticks} ticks, "
        f"{summary.events} new alerts, {summary.delivered} deliveries to "
        f"{len(summary.channels)} channel(s)" + "".join(f"; {t}" for t in tail),
        markup=False,
    )
    for note in summary.notes:
        err_console.print(f"note: {note}", markup=False)
    sys.stdout.flush()


def _status_view(what: str) -> Any:
    """A rich Live area at the bottom of the terminal (alert lines scroll above it)."""
    from rich.live import Live
    from rich.text import Text

    return Live(Text(f"watching {what}: starting"), console=out_console, auto_refresh=False,
                transient=False)  # fmt: skip


def _status(what: str, summary: WatchSummary, market: Any, events: list[AlertEvent]) -> Any:
    """The status panel: clock, markets, alerts, deliveries, outages, the last alerts."""
    from rich.panel import Panel
    from rich.table import Table

    from perpscope.formats import fmt_time

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    n = market.filter(market["level"] == "instrument").height if market.height else 0
    grid.add_row("clock", fmt_time(summary.last) if summary.last else "-")
    grid.add_row("ticks", f"{summary.ticks:,}")
    grid.add_row("markets", f"{n} perpetuals")
    grid.add_row("alerts", f"{len(events)} this run")
    grid.add_row("channels", f"{len(summary.channels)}: {summary.delivered} delivered, "
                             f"{summary.pending} pending")  # fmt: skip
    down = ", ".join(f"{v} ({k})" for v, k in summary.outages.items()) or "none"
    grid.add_row("outages", down)
    for e in events[-3:]:
        grid.add_row(e.rule, e.message)
    return Panel(grid, title=f"perpscope watch: {what}", title_align="left")


def _summary_json(summary: WatchSummary, events: list[AlertEvent]) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        **asdict(summary),
        "alerts": [
            {
                "rule": e.rule,
                "severity": e.severity,
                "asset": e.asset,
                "venue": e.venue,
                "instrument": e.instrument,
                "ts": e.ts,
                "value": e.value,
                "message": e.message,
                "evidence": dict(e.evidence),
            }
            for e in events
        ],
    }


def _enabled(rules: tuple[Rule, ...]) -> str:
    return ", ".join(r.name for r in rules if r.enabled) or "none"


def _rule_row(rule: Rule) -> dict[str, Any]:
    from perpscope.alerts.engine import format_value
    from perpscope.domain.alert_rules import OUTAGE

    value = (
        f"{rule.value:g} failed snapshot(s)"
        if rule.name == OUTAGE
        else format_value(rule.metric, rule.value)
    )
    hours = rule.cooldown_s / 3600
    return {
        "rule": rule.name,
        "on": "yes" if rule.enabled else "no",
        "condition": f"{rule.metric} {rule.op} {value}",
        "cooldown": f"{hours:g}h" if hours >= 1 else f"{rule.cooldown_s:g}s",
        "assets": ",".join(rule.assets) or "all",
        "venues": ",".join(rule.venues) or "all",
        "severity": rule.severity,
        "what": rule.doc,
    }


@app.command("list")
def list_cmd(ctx: typer.Context, fmt: FormatArg = Format.TABLE) -> None:
    """The rules in force (built-ins and the config's), and the notification channels."""
    from perpscope.alerts.notify import channel_id, notify_urls

    alerts = state(ctx).config.alerts
    rules = [_rule_row(r) for r in alerts.rules]
    channels = [channel_id(u) for u in notify_urls(alerts.notify, os.environ)]
    if fmt is Format.JSON:
        emit({"rules": rules, "channels": channels}, "json")
        return
    emit(rules, fmt.value, title="alert rules")
    if fmt is Format.TABLE:
        out_console.print(f"channels: {', '.join(channels) or 'none (console only)'}", markup=False)


@app.command("test")
def check_cmd(
    ctx: typer.Context,
    rule: Annotated[str, typer.Argument(help="Rule name (see 'perpscope alerts list').")],
    send: Annotated[
        bool, typer.Option("--send", help="Also send a test message to every channel.")
    ] = False,
    fmt: FormatArg = Format.TABLE,
) -> None:
    """Evaluate RULE on the store's latest data: which markets meet it now, with the values."""
    from perpscope.services.alerts import check_rule

    alerts = state(ctx).config.alerts
    try:
        r = alerts.rule(rule)
    except KeyError:
        names = ", ".join(x.name for x in alerts.rules)
        raise UsageError(f"no rule {rule!r} (rules: {names})") from None
    report = check_rule(state(ctx).lake(), r, alerts, os.environ, send=send)
    if fmt is Format.JSON:
        emit(report, "json")
        return
    emit(report["markets"], fmt.value, title=f"{rule} at {report['as_of'] or '-'}")
    for line in report["notes"]:
        out_console.print(line, markup=False)


@app.command("history")
def history_cmd(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="Only events from this UTC time (ISO 8601).")
    ] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule.")] = None,
    fmt: FormatArg = Format.TABLE,
) -> None:
    """Stored alerts, newest first, with their delivery state."""
    from perpscope.cli._market_opts import parse_at
    from perpscope.services.watch import alert_history

    rows = alert_history(state(ctx).lake(), since=parse_at(since), rule=rule)
    if fmt is Format.JSON:
        emit(rows, "json")
        return
    emit(
        [
            {
                "time": r["ts"],
                "severity": r["severity"],
                "rule": r["rule"],
                "market": f"{r['venue']} {r['instrument']}",
                "message": r["message"],
                "delivered": "yes" if r["delivered"] else "no",
            }
            for r in rows
        ],
        fmt.value,
        title="alerts",
    )
