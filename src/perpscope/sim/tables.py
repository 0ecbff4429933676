"""Turn a run's per-step series and position events into frames shaped like the store tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import numpy.typing as npt
import polars as pl

from perpscope.sim.config import (
    SIM_FUNDING_INTERVAL_H,
    STEP_MINUTES,
    STEPS_PER_HOUR,
    SimConfig,
)
from perpscope.sim.engine import Recorder
from perpscope.sim.positions import AGENT_KINDS, SIM_TIERS, PositionBook

__all__ = ["build_tables"]

_EVENTS = ("open", "close", "liquidated", "adl")


class _Grid:
    """Markets (asset x venue), hours and timestamps of one run."""

    def __init__(self, config: SimConfig, rec: Recorder) -> None:
        self.cfg = config
        self.hours = rec.steps // STEPS_PER_HOUR
        self.start = config.end - timedelta(days=config.days)
        self.assets = [a for a in config.assets for _ in config.venues]
        self.venues = [v for _ in config.assets for v in config.venues]
        self.perp = [f"{a}-USDT-PERP" for a in self.assets]
        self.spot = [f"{a}-USDT" for a in self.assets]
        self.n_m = len(self.assets)

    def step_ts(self, steps: np.ndarray) -> pl.Series:
        start_us = int(self.start.timestamp()) * 1_000_000
        us = start_us + np.asarray(steps, np.int64) * (STEP_MINUTES * 60 * 1_000_000)
        return pl.Series(us, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))

    def hourly(
        self, values: dict[str, np.ndarray], instrument: list[str], end: bool
    ) -> pl.DataFrame:
        """One row per hour and market from arrays of shape ``(hours, markets)``."""
        hours = np.arange(self.hours) + (1 if end else 0)
        ts = [self.start + timedelta(hours=int(h)) for h in hours]
        frame = pl.DataFrame(
            {
                "ts": pl.Series(ts, dtype=pl.Datetime("us", "UTC")).gather(
                    np.repeat(np.arange(self.hours), self.n_m)
                ),
                "venue": np.tile(np.array(self.venues), self.hours),
                "instrument": np.tile(np.array(instrument), self.hours),
                **{k: v.ravel() for k, v in values.items()},
            }
        )
        return frame


def _bars(rec: Recorder, key: str, hours: int) -> dict[str, np.ndarray]:
    s = rec.series
    shape = (hours, STEPS_PER_HOUR, -1)
    return {
        "o": s[f"{key}_o"].reshape(shape)[:, 0],
        "h": s[f"{key}_h"].reshape(shape).max(axis=1),
        "l": s[f"{key}_l"].reshape(shape).min(axis=1),
        "c": s[f"{key}_c"].reshape(shape)[:, -1],
    }


def _ohlcv(g: _Grid, rec: Recorder) -> pl.DataFrame:
    s, hours = rec.series, g.hours
    per_hour = (hours, STEPS_PER_HOUR, -1)
    buy = s["buy_base"].reshape(per_hour)
    vol = (s["buy_base"] + s["sell_base"]).reshape(per_hour)
    quote = ((s["buy_base"] + s["sell_base"]) * s["perp_c"]).reshape(per_hour)
    spot_vol = s["spot_vol_base"].reshape(per_hour)
    spot_quote = (s["spot_vol_base"] * s["spot_c"]).reshape(per_hour)
    prem = s["prem"].reshape(per_hour)
    frames = [
        g.hourly(
            {**_bars(rec, "perp", hours), "volume": vol.sum(1), "quote_volume": quote.sum(1),
             "taker_buy_volume": buy.sum(1)},
            g.perp, end=False,
        ).with_columns(kind=pl.lit("trade")),
        g.hourly(_bars(rec, "mark", hours), g.perp, end=False).with_columns(kind=pl.lit("mark")),
        g.hourly(_bars(rec, "index", hours), g.perp, end=False).with_columns(kind=pl.lit("index")),
        g.hourly(
            {"o": prem[:, 0], "h": prem.max(1), "l": prem.min(1), "c": prem[:, -1]},
            g.perp, end=False,
        ).with_columns(kind=pl.lit("premium")),
        g.hourly(
            {**_bars(rec, "spot", hours), "volume": spot_vol.sum(1),
             "quote_volume": spot_quote.sum(1)},
            g.spot, end=False,
        ).with_columns(kind=pl.lit("trade")),
    ]  # fmt: skip
    return pl.concat(frames, how="diagonal_relaxed").with_columns(timeframe=pl.lit("1h"))


def _funding(g: _Grid, rec: Recorder) -> pl.DataFrame:
    st = np.array(rec.settlements, dtype=float).reshape(-1, 5)
    m = st[:, 1].astype(np.int64)
    return pl.DataFrame(
        {
            "venue": [g.venues[i] for i in m],
            "instrument": [g.perp[i] for i in m],
            "ts": g.step_ts(st[:, 0].astype(np.int64)),
            "rate": st[:, 2],
            "interval_h": st[:, 4],
            "mark_px": st[:, 3],
        }
    )


def _hour_ends(rec: Recorder, key: str) -> np.ndarray:
    return rec.series[key][STEPS_PER_HOUR - 1 :: STEPS_PER_HOUR]


def _funding_snapshot(g: _Grid, rec: Recorder) -> pl.DataFrame:
    interval = np.array([SIM_FUNDING_INTERVAL_H[v] for v in g.venues])
    h_end = np.arange(1, g.hours + 1)[:, None]
    next_h = np.ceil(h_end / interval) * interval
    accrual = _hour_ends(rec, "accrual_rate")
    frame = g.hourly(
        {
            "rate": accrual,
            "predicted_rate": accrual,
            "interval_h": np.broadcast_to(interval, accrual.shape),
            "next_h": np.broadcast_to(next_h, accrual.shape),
            "mark_px": _hour_ends(rec, "mark_c"),
            "index_px": _hour_ends(rec, "index_c"),
        },
        g.perp,
        end=True,
    )
    start = pl.lit(g.start).cast(pl.Datetime("us", "UTC"))
    return frame.with_columns(
        next_funding_ts=start + pl.duration(hours=pl.col("next_h").cast(pl.Int64))
    ).drop("next_h")


def _alive_by_hour(
    g: _Grid, book: PositionBook, end_step: np.ndarray, weights: np.ndarray, side: int
) -> np.ndarray:
    """Sum of ``weights`` over positions of ``side`` alive at each hour's end, per market."""
    n = book.n
    sel = book.side[:n] == side
    open_step = np.asarray(book.events["step"])[np.asarray(book.events["event"]) == 0]
    diff = np.zeros((g.hours + 1, g.n_m))
    first = open_step[sel] // STEPS_PER_HOUR
    last = np.minimum(end_step[sel] // STEPS_PER_HOUR, g.hours)
    m = book.market[:n][sel]
    w = weights[sel]
    np.add.at(diff, (first, m), w)
    np.add.at(diff, (last, m), -w)
    return np.cumsum(diff, axis=0)[: g.hours]


def _end_steps(book: PositionBook, steps: int) -> np.ndarray:
    ev = book.events
    end = np.full(book.n, steps + STEPS_PER_HOUR, dtype=np.int64)
    code = np.asarray(ev["event"])
    closed = code > 0
    end[np.asarray(ev["pid"])[closed]] = np.asarray(ev["step"])[closed]
    return end


def _oi_and_ratios(g: _Grid, rec: Recorder, book: PositionBook) -> tuple[pl.DataFrame, ...]:
    end = _end_steps(book, rec.steps)
    qty = book.qty[: book.n]
    house = _hour_ends(rec, "house_qty")
    longs = _alive_by_hour(g, book, end, qty, 1) + np.maximum(house, 0.0)
    n_long = _alive_by_hour(g, book, end, np.ones(book.n), 1)
    n_short = _alive_by_hour(g, book, end, np.ones(book.n), -1)
    mark = _hour_ends(rec, "mark_c")
    oi = g.hourly(
        {"oi_value": longs, "oi_base": longs, "oi_usd": longs * mark}, g.perp, end=True
    ).with_columns(source=pl.lit("snapshot"), oi_unit=pl.lit("base"))
    total = np.maximum(n_long + n_short, 1.0)
    ls = g.hourly(
        {
            "long_frac": n_long / total,
            "short_frac": n_short / total,
            "long_short_ratio": np.where(n_short > 0, n_long / np.maximum(n_short, 1.0), np.nan),
        },
        g.perp,
        end=True,
    ).with_columns(kind=pl.lit("global_account"), period=pl.lit("1h"))
    return oi, ls.with_columns(pl.col("long_short_ratio").fill_nan(None))


def _taker(g: _Grid, rec: Recorder) -> pl.DataFrame:
    per_hour = (g.hours, STEPS_PER_HOUR, -1)
    buy = rec.series["buy_base"].reshape(per_hour).sum(1)
    sell = rec.series["sell_base"].reshape(per_hour).sum(1)
    ratio = np.where(sell > 0, buy / np.where(sell > 0, sell, 1.0), np.nan)
    frame = g.hourly(
        {"buy_volume_base": buy, "sell_volume_base": sell, "buy_sell_ratio": ratio},
        g.perp,
        end=False,
    )
    return frame.with_columns(
        period=pl.lit("1h"), buy_sell_ratio=pl.col("buy_sell_ratio").fill_nan(None)
    )


def _label(names: Sequence[str], codes: npt.ArrayLike) -> pl.Series:
    """``names[codes]`` as a String series, gathered from the few names: polars builds a string
    column from a numpy string array one value at a time, which was most of the tables' time."""
    return pl.Series(list(names), dtype=pl.String).gather(np.asarray(codes, dtype=np.int64))


def _side(sign: npt.ArrayLike) -> pl.Series:
    """``long`` where ``sign`` > 0, else ``short``."""
    return _label(("short", "long"), np.asarray(sign) > 0)


def _trader_events(g: _Grid, book: PositionBook) -> pl.DataFrame:
    ev = {k: np.asarray(v) for k, v in book.events.items()}
    pid = ev["pid"].astype(np.int64)
    m = book.market[pid]
    lev = book.leverage[pid]
    qty = np.where(ev["event"] == 0, book.qty[pid], 0.0)
    entry = book.entry[pid]
    liq = book.liq[pid]
    return pl.DataFrame(
        {
            "venue": _label(g.venues, m),
            "instrument": _label(g.perp, m),
            "ts": g.step_ts(ev["step"].astype(np.int64)),
            "position_id": pid,
            "event": _label(_EVENTS, ev["event"]),
            "_order": np.arange(pid.size, dtype=np.int64),
            "agent": _label(AGENT_KINDS, book.kind[pid]),
            "side": _side(book.side[pid]),
            "entry_px": entry,
            "qty_base": qty,
            "notional_usd": qty * entry,
            "leverage": lev,
            "margin_usd": book.qty[pid] * entry / lev,
            "liquidation_px": np.where(liq > 0, liq, np.nan),
            "funding_paid_usd": ev["funding"],
        }
    ).with_columns(pl.col("liquidation_px").fill_nan(None))


def _house_events(g: _Grid, rec: Recorder, first_id: int) -> pl.DataFrame:
    """The market maker's net inventory per market as positions, one event per changed step."""
    hq = rec.series["house_qty"]
    prev = np.vstack([np.zeros((1, g.n_m)), hq[:-1]])
    s, ps = np.sign(hq), np.sign(prev)
    opened = (s != 0) & (s != ps)
    closed = (ps != 0) & (s != ps)
    changed = (s != 0) & (s == ps) & (hq != prev)
    ids = np.cumsum(opened.ravel(order="F")).reshape(hq.shape, order="F") + first_id - 1
    prev_ids = np.vstack([np.full((1, g.n_m), -1), ids[:-1]])
    parts = []
    entry, fund = rec.series["house_entry"], rec.series["house_funding"]
    prev_entry = np.vstack([np.zeros((1, g.n_m)), entry[:-1]])
    prev_fund = np.vstack([np.zeros((1, g.n_m)), fund[:-1]])
    for phase, (mask, event, pid, qty, ent, paid, sign) in enumerate(
        (
            (closed, "close", prev_ids, np.zeros_like(hq), prev_entry, prev_fund, ps),
            (opened, "open", ids, hq, entry, fund, s),
            (changed, "change", ids, hq, entry, fund, s),
        )
    ):
        t, m = np.nonzero(mask)
        parts.append(
            pl.DataFrame(
                {
                    "venue": _label(g.venues, m),
                    "instrument": _label(g.perp, m),
                    "ts": g.step_ts(t),
                    "position_id": pid[t, m].astype(np.int64),
                    "event": _label((event,), np.zeros(t.size)),
                    # after every trader event of the step: the close of the old inventory id
                    # before the open of the new one
                    "_order": (1 + phase) * (1 << 40) + m,
                    "side": _side(sign[t, m]),
                    "entry_px": ent[t, m],
                    "qty_base": np.abs(qty[t, m]),
                    "notional_usd": np.abs(qty[t, m]) * ent[t, m],
                    "funding_paid_usd": paid[t, m],
                }
            )
        )
    return pl.concat(parts).with_columns(agent=pl.lit("market_maker"))


def _sequenced(positions: pl.DataFrame) -> pl.DataFrame:
    """Sort events into the order they happened and number them: ``seq`` 0, 1, 2...

    Within a step, the traders' events keep the order of the event log (an open before that
    position's close or liquidation) and the market maker's inventory events follow them
    (closing an inventory id before opening the next), so a position's events read by
    ``(ts, seq)`` are in the order they happened.
    """
    ordered = positions.sort("ts", "_order").drop("_order")
    cols = ordered.columns
    ordered = ordered.with_columns(seq=pl.int_range(ordered.height, dtype=pl.Int64))
    return ordered.select(*cols[: cols.index("event") + 1], "seq", *cols[cols.index("event") + 1 :])


def _liquidations(g: _Grid, book: PositionBook) -> pl.DataFrame:
    ev = {k: np.asarray(v) for k, v in book.events.items()}
    sel = ev["event"] == 2
    pid = ev["pid"][sel].astype(np.int64)
    m = book.market[pid]
    qty = book.qty[pid]
    return pl.DataFrame(
        {
            "venue": _label(g.venues, m),
            "instrument": _label(g.perp, m),
            "ts": g.step_ts(ev["step"][sel].astype(np.int64)),
            "event_id": [f"sim-{i}" for i in pid.tolist()],
            "side": _side(book.side[pid]),
            "px": ev["liq_fill"][sel],
            "qty_base": qty,
            "notional_usd": qty * ev["liq_fill"][sel],
        }
    )


def _insurance(g: _Grid, rec: Recorder, book: PositionBook) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The funds' hourly series (a row at the run's start, then one per hour's end) and the
    ADL log, one row per deleveraged position."""
    f = rec.insurance
    assert f is not None
    per_hour = (g.hours, STEPS_PER_HOUR, -1)
    # the balance after each step: the last settlement's, carried forward (the start before any)
    seen = ~np.isnan(f.balance_at)
    last = np.maximum.accumulate(np.where(seen, np.arange(rec.steps)[:, None], -1), axis=0)
    cols = np.broadcast_to(np.arange(g.n_m), last.shape)
    bal = np.where(last >= 0, f.balance_at[np.maximum(last, 0), cols], f.start)
    log = {k: np.asarray(v) for k, v in f.adl.items()}
    pid = log["pid"].astype(np.int64)
    step = log["step"].astype(np.int64)
    m = book.market[pid]
    counts = np.zeros((rec.steps, g.n_m))
    np.add.at(counts, (step, m), 1.0)
    zero = np.zeros((1, g.n_m))
    values = {
        "balance_usd": np.vstack([f.start[None, :], bal[STEPS_PER_HOUR - 1 :: STEPS_PER_HOUR]]),
        "inflow_usd": np.vstack([zero, f.inflow.reshape(per_hour).sum(1)]),
        "outflow_usd": np.vstack([zero, f.outflow.reshape(per_hour).sum(1)]),
        "uncovered_usd": np.vstack([zero, f.uncovered.reshape(per_hour).sum(1)]),
        "unrecovered_usd": np.vstack([zero, f.unrecovered.reshape(per_hour).sum(1)]),
        "adl_closes": np.vstack([zero, counts.reshape(per_hour).sum(1)]).astype(np.int64),
    }
    ts = [g.start + timedelta(hours=h) for h in range(g.hours + 1)]
    fund = pl.DataFrame(
        {
            "venue": _label(g.venues, np.tile(np.arange(g.n_m), g.hours + 1)),
            "instrument": _label(g.perp, np.tile(np.arange(g.n_m), g.hours + 1)),
            "ts": pl.Series(ts, dtype=pl.Datetime("us", "UTC")).gather(
                np.repeat(np.arange(g.hours + 1), g.n_m)
            ),
            **{k: v.ravel() for k, v in values.items()},
        }
    )
    adl = pl.DataFrame(
        {
            "venue": _label(g.venues, m),
            "instrument": _label(g.perp, m),
            "ts": g.step_ts(step),
            "position_id": pid,
            "liquidated_position_id": log["liquidated_pid"].astype(np.int64),
            "side": _side(book.side[pid]),
            "qty_base": book.qty[pid],
            "px": log["px"],
            "mark_px": log["mark_px"],
            "pnl_pct": log["pnl_pct"],
            "effective_leverage": log["effective_leverage"],
            "adl_score": log["score"],
            "queue_rank": log["queue_rank"].astype(np.int64),
        },
        schema_overrides={"venue": pl.String, "instrument": pl.String, "side": pl.String},
    )
    return fund, adl


def _reference(g: _Grid) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ``instruments`` listing and the ``leverage_tiers`` of every simulated perpetual."""
    rows = []
    for venue in g.cfg.venues:
        for asset in g.cfg.assets:
            for kind, inst in (("spot", f"{asset}-USDT"), ("perp", f"{asset}-USDT-PERP")):
                rows.append(
                    {
                        "venue": venue, "instrument": inst, "ts": g.start,
                        "venue_symbol": f"{asset}USDT" if kind == "spot" else f"{asset}USDT-P",
                        "kind": kind, "base": asset, "quote": "USDT", "settle": "USDT",
                        "contract_size": 1.0, "lot_size": 1e-6,
                        "funding_interval_h": SIM_FUNDING_INTERVAL_H[venue] if kind == "perp"
                        else None,
                        "status": "trading",
                    }
                )  # fmt: skip
    instruments = pl.DataFrame(rows).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    tiers = pl.DataFrame(
        [
            {
                "venue": venue,
                "instrument": f"{asset}-USDT-PERP",
                "ts": g.start,
                "tier": t.tier,
                "notional_floor_usd": t.floor,
                "notional_cap_usd": t.cap,
                "mmr": t.mmr,
                "maint_amount_usd": t.maint_amount,
                "max_leverage": t.max_leverage,
            }
            for venue in g.cfg.venues
            for asset in g.cfg.assets
            for t in SIM_TIERS
        ]  # fmt: skip
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"), pl.col("tier").cast(pl.Int32))
    return instruments, tiers


def build_tables(config: SimConfig, rec: Recorder, book: PositionBook) -> dict[str, pl.DataFrame]:
    """Every output table of a run, keyed by store table name."""
    g = _Grid(config, rec)
    oi, long_short = _oi_and_ratios(g, rec, book)
    positions = pl.concat(
        [_trader_events(g, book), _house_events(g, rec, book.n)], how="diagonal_relaxed"
    )
    instruments, tiers = _reference(g)
    tables = {
        "instruments": instruments,
        "leverage_tiers": tiers,
        "ohlcv": _ohlcv(g, rec),
        "funding": _funding(g, rec),
        "funding_snapshot": _funding_snapshot(g, rec),
        "open_interest": oi,
        "long_short": long_short,
        "taker_volume": _taker(g, rec),
        "liquidations": _liquidations(g, book),
        "sim_positions": _sequenced(positions),
    }
    fund, adl = _insurance(g, rec, book)
    seq = (
        tables["sim_positions"]
        .filter(event="adl")
        .select("venue", "instrument", "position_id", "seq")
    )
    tables["insurance_fund"] = fund
    tables["adl_events"] = adl.join(
        seq, on=["venue", "instrument", "position_id"], how="left"
    ).sort("seq")
    return {k: v.with_columns(pl.col("ts").dt.cast_time_unit("us")) for k, v in tables.items()}
