"""``perpscope options``: put/call ratios, max pain, OI walls, unusual activity and volatility.

Also ``import_options``, the ``perpscope import options FILE --venue deribit`` command, registered
on the import group by ``cli/main.py``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from perpscope.cli._common import Format, emit, emit_import_report, out_console, state
from perpscope.cli._market_opts import SinceOpt, UntilOpt
from perpscope.errors import UsageError
from perpscope.services.filters import parse_time

if TYPE_CHECKING:
    from perpscope.services.options import ChainQuery

__all__ = ["app", "import_options"]

app = typer.Typer(
    help="Options positioning and volatility from stored chain snapshots.", no_args_is_help=True
)

VenueOpt = Annotated[
    str | None,
    typer.Option(
        "--venue",
        help="Venue id (default: deribit when the store has its chains, else the venue that "
        "has chains of the underlying, e.g. sim1 on the demo store).",
    ),
]
UnderlyingOpt = Annotated[str, typer.Option("--underlying", help="Underlying asset: BTC, ETH...")]
ExpiryOpt = Annotated[
    str | None, typer.Option("--expiry", help="Only this expiry date (YYYY-MM-DD).")
]
AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="Read the chain as of this UTC time (ISO 8601; default: latest)."),
]
FormatOpt = Annotated[Format, typer.Option("--format", help="Output format.")]
ThresholdOpt = Annotated[
    float, typer.Option("--threshold-usd", min=0, help="Notional that counts as unusual, USD.")
]


def _query(
    venue: str | None,
    underlying: str,
    expiry: str | None,
    at: str | None,
    since: str | None = None,
    until: str | None = None,
) -> ChainQuery:
    from perpscope.services.options import ChainQuery

    try:
        day = date.fromisoformat(expiry) if expiry is not None else None
    except ValueError:
        raise UsageError(f"bad --expiry {expiry!r}: use YYYY-MM-DD, e.g. 2024-01-26") from None
    when = None
    if at is not None:
        try:
            when = datetime.fromisoformat(at.replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"bad --at {at!r}: use ISO 8601, e.g. 2024-01-08T12:00Z") from None
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if not underlying.isalnum():
        raise UsageError(f"bad --underlying {underlying!r}: use an asset like BTC or ETH")
    lo = parse_time(since, "--since") if since is not None else None
    hi = parse_time(until, "--until") if until is not None else None
    if venue is not None and not venue.isalnum():
        raise UsageError(f"bad --venue {venue!r}: use a venue id like deribit or sim1")
    return ChainQuery(venue.lower() if venue else None, underlying.upper(), day, when, lo, hi)


def _record(report: dict[str, Any], fmt: Format, title: str, nested: str = "by_expiry") -> None:
    """Print a record with a nested list: one JSON document, or a record table plus a table."""
    if fmt is Format.JSON:
        emit(report, fmt.value)
        return
    emit({k: v for k, v in report.items() if not isinstance(v, list)}, fmt.value, title=title)
    for key, rows in report.items():
        if isinstance(rows, list):
            emit(rows, fmt.value, title=key if key != nested else f"{title} by expiry")


@app.command("summary")
def summary(
    ctx: typer.Context,
    venue: VenueOpt = None,
    underlying: UnderlyingOpt = "BTC",
    expiry: ExpiryOpt = None,
    at: AtOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    threshold_usd: ThresholdOpt = 10e6,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """One screen: put/call ratios and their reading, max pain of the largest expiry, the biggest
    OI walls, the term structure's shape and unusual activity."""
    from perpscope.services.options import summary_report

    q = _query(venue, underlying, expiry, at, since, until)
    report = summary_report(state(ctx).lake(), q, threshold_usd=threshold_usd)
    emit(report, fmt.value, title=f"options {report['venue']} {q.underlying}")


@app.command("pcr")
def pcr(
    ctx: typer.Context,
    venue: VenueOpt = None,
    underlying: UnderlyingOpt = "BTC",
    expiry: ExpiryOpt = None,
    at: AtOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Put/call ratios by open interest and volume, aggregate and per expiry, with the
    percentile against stored history and the playbook's contrarian reading at extremes."""
    from perpscope.services.options import pcr_report

    q = _query(venue, underlying, expiry, at, since, until)
    _record(pcr_report(state(ctx).lake(), q), fmt, "put/call")


@app.command("maxpain")
def maxpain(
    ctx: typer.Context,
    venue: VenueOpt = None,
    underlying: UnderlyingOpt = "BTC",
    expiry: ExpiryOpt = None,
    at: AtOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    curve: Annotated[
        bool, typer.Option("--curve/--no-curve", help="Print the payout curve of --expiry instead.")
    ] = False,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Max pain per expiry: the listed strike where holders are paid least, spot's distance to it
    and days to expiry from the snapshot time."""
    from perpscope.services.options import (
        maxpain_curve_report,
        maxpain_report,
    )

    q = _query(venue, underlying, expiry, at, since, until)
    lake = state(ctx).lake()
    if curve:
        emit(maxpain_curve_report(lake, q), fmt.value, title="payout curve (USD)")
        return
    emit(maxpain_report(lake, q), fmt.value, title="max pain")


@app.command("oi")
def oi(
    ctx: typer.Context,
    venue: VenueOpt = None,
    underlying: UnderlyingOpt = "BTC",
    expiry: ExpiryOpt = None,
    at: AtOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    top: Annotated[
        int, typer.Option("--top", min=1, help="Largest walls to show (without --expiry).")
    ] = 20,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Open interest by strike and expiry (the walls), in contracts and USD notional."""
    from perpscope.services.options import oi_report

    q = _query(venue, underlying, expiry, at, since, until)
    emit(oi_report(state(ctx).lake(), q, top=top), fmt.value, title="OI walls")


@app.command("unusual")
def unusual(
    ctx: typer.Context,
    venue: VenueOpt = None,
    underlying: UnderlyingOpt = "BTC",
    expiry: ExpiryOpt = None,
    at: AtOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    threshold_usd: ThresholdOpt = 10e6,
    min_volume_oi: Annotated[
        float, typer.Option("--min-volume-oi", min=0, help="24h volume / OI ratio to flag.")
    ] = 1.0,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Unusual activity: large trades, large OI changes between snapshots, and volume that
    rivals open interest."""
    from perpscope.services.options import unusual_report

    q = _query(venue, underlying, expiry, at, since, until)
    rows = unusual_report(
        state(ctx).lake(), q, threshold_usd=threshold_usd, min_volume_oi=min_volume_oi
    )
    if not rows and fmt is Format.TABLE:
        out_console.print("no unusual activity")
        return
    emit(rows, fmt.value, title="unusual activity")


@app.command("smile")
def smile(
    ctx: typer.Context,
    venue: VenueOpt = None,
    underlying: UnderlyingOpt = "BTC",
    expiry: ExpiryOpt = None,
    at: AtOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """ATM IV term structure, 25-delta risk reversal and butterfly per expiry, an inverted-term
    flag, and the IV smile of --expiry (of every expiry in JSON without --expiry)."""
    from perpscope.services.options import smile_report

    q = _query(venue, underlying, expiry, at, since, until)
    report = smile_report(state(ctx).lake(), q)
    if fmt is Format.TABLE and q.expiry is None:
        report.pop("smile")  # every expiry's smile is too long for a screen; JSON keeps it
    _record(report, fmt, "volatility")


def import_options(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="Deribit chain: CSV, CSV.gz or JSON.", show_default=False)
    ],
    venue: Annotated[str, typer.Option("--venue", help="Venue whose layout the file is in.")],
    skip_bad: Annotated[
        bool,
        typer.Option(
            "--skip-bad/--no-skip-bad", help="Import the valid rows even if some are invalid."
        ),
    ] = False,
    gap_s: Annotated[
        float,
        typer.Option("--gap-s", min=0, help="A pause in quote times this long starts a snapshot."),
    ] = 60.0,
    on_conflict: Annotated[
        str | None,
        typer.Option(
            "--on-conflict",
            help="An instrument quoted twice in a snapshot with other values: keep first or last "
            "(default: refuse the file).",
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite stored rows with the same keys.")
    ] = False,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Import Deribit option-chain snapshots (book summary or ticker layout)."""
    from perpscope.services.options import import_options as import_options_file

    if on_conflict not in (None, "first", "last"):
        raise UsageError(f"bad --on-conflict {on_conflict!r}: use first or last")
    policy: Literal["refuse", "first", "last"] = (
        "refuse" if on_conflict is None else "first" if on_conflict == "first" else "last"
    )
    report = import_options_file(
        state(ctx).lake(),
        file,
        venue=venue,
        skip_bad=skip_bad,
        gap_s=gap_s,
        on_conflict=policy,
        replace=replace,
    )
    emit_import_report(report, fmt)
