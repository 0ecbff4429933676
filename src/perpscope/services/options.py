"""Options use-cases shared by the front ends: read the stored chain and run the analytics.

Every use-case reads ``options_snapshot`` for one venue and underlying, takes the chain as of a
time (the latest row per instrument unless ``at`` is given; expiry judged against the chain's
time), optionally narrows it to one expiry, and returns plain records and frames ready to render.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import polars as pl

from perpscope.analytics.options import (
    chain_as_of,
    max_pain,
    max_pain_curve,
    oi_walls,
    pcr_history,
    pcr_percentile,
    pcr_reading,
    put_call_ratios,
    put_call_totals,
)
from perpscope.analytics.options_flow import unusual_oi_changes, unusual_trades, unusual_volume
from perpscope.analytics.options_vol import (
    smile,
    term_structure_shape,
    vol_by_expiry,
    with_iv_and_greeks,
)
from perpscope.errors import UsageError
from perpscope.services._market_read import require_store
from perpscope.services.filters import TimeBound
from perpscope.services.options_import import import_options
from perpscope.store.lake import Lake

__all__ = [
    "ChainQuery",
    "import_options",
    "load_chain",
    "maxpain_curve_report",
    "maxpain_report",
    "oi_report",
    "pcr_report",
    "resolve_venue",
    "smile_report",
    "summary_report",
    "unusual_report",
]


@dataclass(frozen=True, slots=True)
class ChainQuery:
    """Which chain to read: venue, underlying, optional expiry date and time.

    ``venue`` ``None`` reads the venue that has chains of the underlying: ``deribit`` when the
    store has it, else the one with the most snapshot rows (the simulator's ``sim1`` on a demo
    store).

    ``since`` and ``until`` bound the snapshots read (``[since, until)``; relative
    :class:`~perpscope.services.filters.TimeBound` values count back from the latest stored
    snapshot): the chain is the latest one inside the window (or as of ``at``), and history
    such as the put/call percentile uses only the window's snapshots.
    """

    venue: str | None = None
    underlying: str = "BTC"
    expiry: date | None = None
    at: datetime | None = None
    since: datetime | TimeBound | None = None
    until: datetime | TimeBound | None = None


@dataclass(frozen=True, slots=True)
class Chain:
    """A chain as of a time, with the rows it was read from (``venue``: the one read)."""

    query: ChainQuery
    venue: str
    snapshots: pl.DataFrame
    live: pl.DataFrame
    rows: pl.DataFrame
    chain_ts: datetime
    spot_px: float | None


PREFERRED_VENUE = "deribit"
"""The venue read when a query names none and the store has its chains."""


def resolve_venue(lake: Lake, underlying: str) -> str | None:
    """The venue whose chains of ``underlying`` a query without a venue reads.

    ``deribit`` when the store has its chains of the underlying, else the venue with the most
    snapshot rows of it; ``None`` when no venue has any.
    """
    if not lake.exists() or not lake.has_table("options_snapshot"):
        return None
    counts = (
        lake.read(
            "options_snapshot",
            columns=["venue"],
            where=pl.col("underlying") == underlying.upper(),
        )
        .group_by("venue")
        .len()
        .sort(["len", "venue"], descending=[True, False])
    )
    venues = counts["venue"].to_list()
    if not venues:
        return None
    return PREFERRED_VENUE if PREFERRED_VENUE in venues else str(venues[0])


def _snapshots(lake: Lake, q: ChainQuery, venue: str | None) -> pl.DataFrame:
    require_store(lake)
    if venue is None:
        raise UsageError(
            f"no options snapshots for {q.underlying.upper()} in the store, on any venue "
            f"(import a chain with: perpscope import options FILE --venue {PREFERRED_VENUE})"
        )
    where = (pl.col("venue") == venue) & (pl.col("underlying") == q.underlying.upper())
    frame = (
        lake.read("options_snapshot", where=where) if lake.has_table("options_snapshot") else None
    )
    if frame is None or frame.height == 0:
        raise UsageError(
            f"no options snapshots for {venue} {q.underlying.upper()} in the store "
            f"(import a chain with: perpscope import options FILE --venue {venue})"
        )
    first, last = frame["ts"].min(), frame["ts"].max()
    assert isinstance(first, datetime)
    assert isinstance(last, datetime)
    lo = q.since.resolve(last) if isinstance(q.since, TimeBound) else q.since
    hi = q.until.resolve(last) if isinstance(q.until, TimeBound) else q.until
    if lo is not None:
        frame = frame.filter(pl.col("ts") >= lo)
    if hi is not None:
        frame = frame.filter(pl.col("ts") < hi)
    if frame.height == 0:
        what = f"no options snapshots for {venue} {q.underlying.upper()}"
        if lo is not None and lo > last:
            raise UsageError(f"{what} after {lo:%Y-%m-%d %H:%M}Z; the data ends {last:%Y-%m-%d}")
        if hi is not None and hi <= first:
            raise UsageError(
                f"{what} before {hi:%Y-%m-%d %H:%M}Z; the data starts {first:%Y-%m-%d}"
            )
        raise UsageError(
            f"{what} in the window; the data runs {first:%Y-%m-%d %H:%M}Z to {last:%Y-%m-%d %H:%M}Z"
        )
    return frame


def _spot(chain: pl.DataFrame) -> float | None:
    """Spot of the chain: the index of its latest row, else the nearest expiry's forward."""
    latest = chain.sort("ts").filter(pl.col("index_px").is_not_null())
    if latest.height:
        return float(latest["index_px"][-1])
    fwd = chain.sort("expiry_ts").filter(pl.col("underlying_px").is_not_null())
    return float(fwd["underlying_px"][0]) if fwd.height else None


def load_chain(lake: Lake, q: ChainQuery) -> Chain:
    """The chain of ``q`` as of ``q.at`` (latest when ``None``), narrowed to ``q.expiry``.

    Raises:
        UsageError: nothing is stored for the venue and underlying, nothing at or before ``at``,
            or no live option expires on ``q.expiry`` (the message lists the expiries).
    """
    require_store(lake)
    venue = q.venue or resolve_venue(lake, q.underlying)
    snaps = _snapshots(lake, q, venue)
    rows = chain_as_of(snaps, q.at)
    if rows.height == 0:
        first = snaps["ts"].min()
        raise UsageError(
            f"no live {q.underlying.upper()} options on {venue} at or before {q.at} "
            f"(first snapshot {first!s})"
        )
    chain_ts: datetime = rows["chain_ts"][0]
    live = rows
    if q.expiry is not None:
        rows = live.filter(pl.col("expiry_ts").dt.date() == q.expiry)
        if rows.height == 0:
            expiries = live["expiry_ts"].dt.date().unique().sort().to_list()
            listed = ", ".join(d.isoformat() for d in expiries)
            raise UsageError(
                f"no live option expires on {q.expiry.isoformat()}; expiries: {listed}"
            )
    assert venue is not None  # _snapshots refused a missing one
    return Chain(q, venue, snaps, live, rows, chain_ts, _spot(live))


def _head(chain: Chain) -> dict[str, Any]:
    return {
        "venue": chain.venue,
        "underlying": chain.query.underlying.upper(),
        "chain_ts": chain.chain_ts,
        "spot_px": chain.spot_px,
    }


def pcr_report(lake: Lake, q: ChainQuery, *, min_history: int = 5) -> dict[str, Any]:
    """Put/call ratios (aggregate and per expiry), percentile against stored history, and the
    playbook's contrarian reading.

    The percentile compares the aggregate OI ratio with every earlier stored snapshot at or
    before the chain's time (null with fewer than ``min_history`` of them).
    """
    return _pcr(load_chain(lake, q), min_history)


def _pcr(chain: Chain, min_history: int = 5) -> dict[str, Any]:
    totals = put_call_totals(chain.rows)
    history = pcr_history(chain.snapshots.filter(pl.col("ts") < chain.chain_ts))
    percentile = pcr_percentile(history["pcr_oi"], totals.pcr_oi, min_history)
    reading = pcr_reading(totals.pcr_oi, percentile)
    by_expiry = put_call_ratios(chain.rows).drop("expiry_ts")
    return {
        **_head(chain),
        "pcr_oi": totals.pcr_oi,
        "pcr_volume": totals.pcr_volume,
        "put_oi": totals.put_oi,
        "call_oi": totals.call_oi,
        "put_volume": totals.put_volume,
        "call_volume": totals.call_volume,
        "history_snapshots": history.height,
        "pcr_oi_percentile": percentile,
        "positioning": reading.positioning,
        "extreme": reading.extreme,
        "contrarian": reading.contrarian,
        "reading_basis": reading.basis,
        "by_expiry": by_expiry.to_dicts(),
    }


def maxpain_report(lake: Lake, q: ChainQuery) -> list[dict[str, Any]]:
    """Max pain of every expiry (or of ``q.expiry``): strike, spot, distance, days to expiry."""
    chain = load_chain(lake, q)
    frame = max_pain(chain.rows, chain.spot_px)
    return frame.drop("expiry_ts").to_dicts()


def maxpain_curve_report(lake: Lake, q: ChainQuery) -> list[dict[str, Any]]:
    """The payout curve of one expiry: total USD paid to holders at each listed strike."""
    if q.expiry is None:
        raise UsageError("the payout curve needs --expiry YYYY-MM-DD")
    chain = load_chain(lake, q)
    curve = max_pain_curve(chain.rows)
    return curve.select(
        pl.col("expiry_ts").dt.date().alias("expiry"),
        "strike_px",
        "call_oi_base",
        "put_oi_base",
        "call_payout_usd",
        "put_payout_usd",
        "payout_usd",
    ).to_dicts()


def oi_report(lake: Lake, q: ChainQuery, *, top: int | None = 20) -> list[dict[str, Any]]:
    """OI walls: open interest by expiry and strike in contracts and USD, largest first.

    With ``q.expiry`` every strike of that expiry is returned in strike order; otherwise the
    ``top`` largest walls across expiries (all when ``top`` is ``None``).
    """
    return _walls(load_chain(lake, q), top)


def _walls(chain: Chain, top: int | None) -> list[dict[str, Any]]:
    walls = oi_walls(chain.rows, chain.spot_px).drop("expiry_ts")
    if chain.query.expiry is None:
        walls = walls.sort("oi_contracts", descending=True)
        if top is not None:
            walls = walls.head(top)
    return walls.to_dicts()


def unusual_report(
    lake: Lake,
    q: ChainQuery,
    *,
    threshold_usd: float = 10e6,
    min_volume_oi: float = 1.0,
) -> list[dict[str, Any]]:
    """Unusual activity: large option trades (when trades are stored), large OI changes between
    stored snapshots, and instruments whose 24h volume rivals their open interest.
    """
    return _unusual(lake, load_chain(lake, q), threshold_usd, min_volume_oi)


def _unusual(
    lake: Lake, chain: Chain, threshold_usd: float, min_volume_oi: float
) -> list[dict[str, Any]]:
    q = chain.query
    snaps = chain.snapshots.filter(pl.col("ts") <= chain.chain_ts)
    frames = [
        unusual_oi_changes(snaps, threshold_usd),
        unusual_volume(chain.rows, chain.spot_px, min_ratio=min_volume_oi),
    ]
    if lake.has_table("option_trades"):
        ids = chain.snapshots["instrument"].unique()
        trades = lake.read(
            "option_trades",
            where=(pl.col("venue") == chain.venue) & pl.col("instrument").is_in(ids.to_list()),
        ).filter(pl.col("ts") <= chain.chain_ts)
        frames.append(
            unusual_trades(trades, chain.snapshots, chain.spot_px, threshold_usd=threshold_usd)
        )
    out = pl.concat(frames).sort("notional_usd", descending=True, nulls_last=True)
    if q.expiry is not None:
        out = out.filter(pl.col("expiry") == q.expiry)
    return out.to_dicts()


def smile_report(lake: Lake, q: ChainQuery, *, rate: float = 0.0) -> dict[str, Any]:
    """The volatility picture: ATM IV term structure with 25-delta risk reversal and butterfly
    per expiry, the inversion flag, and the smile of ``q.expiry`` (of every expiry without one).
    """
    return _vol(load_chain(lake, q), rate)


def _vol(chain: Chain, rate: float = 0.0) -> dict[str, Any]:
    chain_iv = with_iv_and_greeks(chain.live, rate)
    vol = vol_by_expiry(chain_iv)
    shape = term_structure_shape(vol)
    sources = chain_iv["iv_source"].drop_nulls().unique().sort().to_list()
    out: dict[str, Any] = {
        **_head(chain),
        "iv_source": ", ".join(sources) or None,
        "term_structure_inverted": shape.inverted,
        "front_expiry": shape.front_expiry_ts,
        "front_atm_iv": shape.front_atm_iv,
        "back_expiry": shape.back_expiry_ts,
        "back_atm_iv": shape.back_atm_iv,
        "term_note": shape.note,
        "by_expiry": vol.drop("expiry_ts").to_dicts(),
    }
    rows = chain_iv
    if chain.query.expiry is not None:
        rows = chain_iv.filter(pl.col("expiry_ts").dt.date() == chain.query.expiry)
    out["smile"] = smile(rows).drop("expiry_ts").to_dicts()
    return out


def summary_report(lake: Lake, q: ChainQuery, *, threshold_usd: float = 10e6) -> dict[str, Any]:
    """One screen of the options picture: PCR and its reading, max pain of the largest expiry,
    the three largest OI walls, the term structure's shape and the count of unusual items.
    """
    chain = load_chain(lake, q)
    pcr = _pcr(chain)
    pains = max_pain(chain.rows, chain.spot_px)
    main = pains.filter(pl.col("max_pain_px").is_not_null()).sort("oi_base", descending=True)
    walls = _walls(chain, top=3)
    vol = _vol(chain)
    unusual = _unusual(lake, chain, threshold_usd, 1.0)
    top = main.row(0, named=True) if main.height else None
    return {
        **_head(chain),
        "instruments": chain.rows.height,
        "expiries": chain.rows["expiry_ts"].n_unique(),
        "pcr_oi": pcr["pcr_oi"],
        "pcr_volume": pcr["pcr_volume"],
        "pcr_reading": pcr["contrarian"] or pcr["positioning"],
        "main_expiry": top["expiry"] if top else None,
        "main_expiry_max_pain_px": top["max_pain_px"] if top else None,
        "main_expiry_days": top["days_to_expiry"] if top else None,
        "top_walls": ", ".join(
            f"{w['expiry']} {w['strike_px']:g} ({w['oi_contracts']:,.0f})" for w in walls
        ),
        "term_structure_inverted": vol["term_structure_inverted"],
        "front_atm_iv": vol["front_atm_iv"],
        "unusual_items": len(unusual),
    }
