"""``perpscope sim calibrate``: the simulator's stylised facts next to a real market's.

Runs the simulator on several seeds, computes every fact of :data:`perpscope.sim.facts.FACTS`
on sim1 BTC (against sim2 and ETH where a fact needs a second series), and computes the same
facts with the same functions on real data cut into windows of the same length: either files
laid out as the shared data set (``candles/``, ``funding/``, ``open_interest/``) or a store's
``ohlcv``, ``funding`` and ``open_interest`` tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from perpscope.errors import UsageError
from perpscope.sim import SCENARIOS, SimConfig, run_simulation
from perpscope.sim.facts import (
    FACTS,
    Fact,
    aggregate,
    funding_facts,
    funding_pair_facts,
    oi_facts,
    pair_price_facts,
    price_facts,
    run_facts,
)
from perpscope.store.lake import Lake

__all__ = [
    "CalibrationReport",
    "CalibrationRow",
    "calibrate",
    "real_facts_from_files",
    "real_facts_from_store",
    "sim_facts",
]

Values = dict[str, list[float]]
Step = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class CalibrationRow:
    """One fact: the simulator's value over seeds, the band, and the real value over windows."""

    fact: Fact
    sim: float
    sim_values: list[float]
    holds: bool
    real: float
    real_values: list[float]


@dataclass(frozen=True, slots=True)
class CalibrationReport:
    """Every fact of the simulator next to the real market's."""

    rows: list[CalibrationRow]
    seeds: list[int]
    days: int
    scenario: str
    real_source: str
    real_notes: list[str] = field(default_factory=list)

    @property
    def held(self) -> int:
        """How many facts are in their band."""
        return sum(r.holds for r in self.rows)


def sim_facts(
    seeds: list[int], days: int, scenario: str = "default", step: Step | None = None
) -> Values:
    """Each fact's value on each seed's run (sim1 BTC; sim2 and ETH as second series)."""
    out: Values = {f.key: [] for f in FACTS}
    for i, seed in enumerate(seeds):
        if step:
            step(f"seed {seed}", i, len(seeds))
        tables = run_simulation(SimConfig(seed=seed, days=days, scenario=scenario)).tables
        facts = run_facts(tables)
        for f in FACTS:
            out[f.key].append(facts.get(f.key, float("nan")))
    if step:
        step("done", len(seeds), len(seeds))
    return out


# --- real data ---------------------------------------------------------------------------------


def _windows(n: int, size: int) -> list[slice]:
    return [slice(i, i + size) for i in range(0, n - size + 1, size)]


def _add(out: Values, facts: dict[str, float]) -> None:
    for k, v in facts.items():
        out.setdefault(k, []).append(v)


def _candle_windows(out: Values, frame: pl.DataFrame, hours: int) -> None:
    """Price facts of hourly candles (ts, o, h, l, c), window by window."""
    frame = frame.sort("ts").unique("ts", keep="first").sort("ts")
    o, h, low, c = (frame[k].to_numpy().astype(float) for k in ("o", "h", "l", "c"))
    for w in _windows(frame.height, hours):
        _add(out, price_facts(o[w], h[w], low[w], c[w]))


def _pair_windows(out: Values, a: pl.DataFrame, b: pl.DataFrame, hours: int) -> None:
    j = a.select("ts", "c").join(b.select("ts", pl.col("c").alias("c2")), on="ts").sort("ts")
    ca, cb = j["c"].to_numpy().astype(float), j["c2"].to_numpy().astype(float)
    for w in _windows(j.height, hours):
        _add(out, pair_price_facts(ca[w], cb[w]))


def _funding_windows(out: Values, rates_8h: np.ndarray, days: int) -> None:
    for w in _windows(rates_8h.size, days * 3):
        _add(out, funding_facts(rates_8h[w]))


def _read_csv(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema_length=10_000)


def _ms_candles(path: Path) -> pl.DataFrame:
    raw = _read_csv(path)
    return raw.select(
        pl.from_epoch(pl.col("timestamp").cast(pl.Int64), "ms").alias("ts"),
        pl.col("open").alias("o"),
        pl.col("high").alias("h"),
        pl.col("low").alias("l"),
        pl.col("close").alias("c"),
    )


def _first(folder: Path, pattern: str) -> Path | None:
    found = sorted(folder.glob(pattern))
    return found[0] if found else None


def real_facts_from_files(root: Path, days: int) -> tuple[Values, list[str]]:
    """Facts of the real files under ``root`` (the shared data set's layout), by window.

    Uses what it finds: Binance BTC spot 2020-23 and perp 2025-26 hourly candles, the ETH perp
    for the BTC-ETH correlation, Binance and Bybit BTC funding 2020-23 (and Bybit 2025-26),
    Binance BTC 4h OI (about 28 days: one shorter window) and Binance COIN-M daily OI.

    Returns:
        fact -> values (one per window), and notes on what each side used.
    """
    if not root.is_dir():
        raise UsageError(f"real data directory {root} does not exist")
    out: Values = {}
    notes: list[str] = []
    hours = days * 24
    btc: list[pl.DataFrame] = []
    for pattern in ("*spot_BTCUSDT_1h_2020-2023*", "*perp_BTCUSDT_1h.csv*"):
        path = _first(root / "candles", pattern)
        if path:
            frame = _ms_candles(path)
            if pattern.startswith("*perp"):
                frame = frame.head(frame.height - 1)  # the last row is a still-open candle
            _candle_windows(out, frame, hours)
            btc.append(frame)
            notes.append(f"prices: {path.name}")
    eth = _first(root / "candles", "*perp_ETHUSDT_1h_2020-2026*")
    if eth and btc:
        _pair_windows(out, btc[0], _ms_candles(eth), hours)
        notes.append(f"BTC-ETH: {eth.name}")
    binance = _first(root / "funding", "*BTC-USDT_binance_*funding_history.csv*")
    bybit = _first(root / "funding", "*BTC-USDT_bybit_*funding_history.csv*")
    series: dict[str, pl.DataFrame] = {}
    for name, path in (("binance", binance), ("bybit", bybit)):
        if path:
            f = _read_csv(path).select(
                pl.col("Date").str.slice(0, 16).alias("ts"), pl.col("Funding Rate").alias("r")
            )
            series[name] = f.unique("ts", keep="first").sort("ts")
            notes.append(f"funding: {path.name}")
    if "binance" in series:
        _funding_windows(out, series["binance"]["r"].to_numpy(), days)
    recent = _first(root / "funding", "*bybit_funding_2025*.parquet")
    if recent:
        z = pl.read_parquet(recent).filter(pl.col("canonical_symbol").str.starts_with("BTC"))
        z = z.filter(pl.col("interval_hours") == 8).sort("settlement_ts")
        _funding_windows(out, z["rate_raw"].to_numpy().astype(float), days)
        notes.append(f"funding: {recent.name}")
    if len(series) == 2:
        both = series["binance"].join(series["bybit"], on="ts", suffix="_b").sort("ts")
        a, b = both["r"].to_numpy(), both["r_b"].to_numpy()
        for w in _windows(both.height, days * 3):
            _add(out, funding_pair_facts(a[w], b[w]))
    oi4 = _first(root / "open_interest", "*BTCUSDT_oi_4h*")
    if oi4 and btc:
        raw = _read_csv(oi4).select(
            pl.from_epoch(pl.col("timestamp").cast(pl.Int64), "ms").alias("ts"),
            pl.col("sum_open_interest").alias("oi"),
        )
        px = btc[-1].select((pl.col("ts") + pl.duration(hours=1)).alias("ts"), "c")
        j = raw.join(px, on="ts").sort("ts")
        _add(out, oi_facts(j["oi"].to_numpy(), j["c"].to_numpy(), None))
        notes.append(f"OI 4h: {oi4.name} ({j.height} snapshots)")
    daily = _first(root / "open_interest", "coinalyze_oi_daily*")
    if daily:
        d = _read_csv(daily).filter(symbol="BTCUSD_PERP.A").sort("timestamp")
        v = d["oi_close"].to_numpy().astype(float)
        for w in _windows(v.size, days):
            _add(out, oi_facts(None, None, v[w]))
        notes.append(f"OI daily: {daily.name} (BTC COIN-M)")
    return out, notes


def real_facts_from_store(
    lake: Lake, days: int, venue: str, other_venue: str | None = None
) -> tuple[Values, list[str]]:
    """Facts of a store's real tables (``ohlcv`` 1h trade, ``funding``, ``open_interest``).

    BTC-USDT-PERP of ``venue`` (ETH-USDT-PERP for the correlation, ``other_venue``'s funding for
    the venue-pair facts), by windows of ``days``.
    """
    if not lake.exists():
        raise UsageError(f"no store at {lake.root}")
    out: Values = {}
    hours = days * 24
    ohlcv = lake.read("ohlcv").filter(kind="trade", timeframe="1h", venue=venue)
    bars = {
        a: ohlcv.filter(instrument=f"{a}-USDT-PERP").sort("ts").select("ts", "o", "h", "l", "c")
        for a in ("BTC", "ETH")
    }
    if bars["BTC"].height < hours:
        raise UsageError(f"the store has fewer than {days} days of {venue} BTC-USDT-PERP candles")
    _candle_windows(out, bars["BTC"], hours)
    if bars["ETH"].height:
        _pair_windows(out, bars["BTC"], bars["ETH"], hours)
    fund = lake.read("funding").with_columns(r8=pl.col("rate") * 8.0 / pl.col("interval_h"))
    mine = fund.filter(venue=venue, instrument="BTC-USDT-PERP").sort("ts")
    _funding_windows(out, mine["r8"].to_numpy(), days)
    if other_venue:
        theirs = fund.filter(venue=other_venue, instrument="BTC-USDT-PERP")
        both = mine.join(theirs.select("ts", pl.col("r8").alias("b")), on="ts").sort("ts")
        a, b = both["r8"].to_numpy(), both["b"].to_numpy()
        for w in _windows(both.height, days * 3):
            _add(out, funding_pair_facts(a[w], b[w]))
    oi = lake.read("open_interest").filter(venue=venue, instrument="BTC-USDT-PERP").sort("ts")
    if oi.height:
        px = bars["BTC"].select((pl.col("ts") + pl.duration(hours=1)).alias("ts"), "c")
        j = oi.join(px, on="ts").sort("ts")
        e4 = j.filter(pl.col("ts").dt.hour() % 4 == 0)
        e1 = j.filter(pl.col("ts").dt.hour() == 0)
        for w4, w1 in zip(_windows(e4.height, days * 6), _windows(e1.height, days), strict=False):
            _add(
                out,
                oi_facts(
                    e4["oi_base"].to_numpy()[w4],
                    e4["c"].to_numpy()[w4],
                    e1["oi_base"].to_numpy()[w1],
                ),
            )
    return out, [f"store {lake.root}, venue {venue}"]


def calibrate(
    seeds: int = 5,
    days: int = 90,
    scenario: str = "default",
    real: tuple[Values, list[str], str] | None = None,
    step: Step | None = None,
) -> CalibrationReport:
    """The calibration table: each fact on the simulator (``seeds`` runs) and on real data.

    Args:
        seeds: number of simulator seeds (1, 2, ...).
        days: length of each run and of each real window.
        scenario: simulator preset.
        real: the real side's values, notes and a one-line source, or None for none.
        step: progress callback.
    """
    if not 1 <= seeds <= 50:
        raise UsageError("--seeds must be between 1 and 50")
    if not 7 <= days <= 3650:
        raise UsageError("--days must be between 7 and 3650")
    if scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {scenario!r}; scenarios: {', '.join(SCENARIOS)}")
    seed_list = list(range(1, seeds + 1))
    sim = sim_facts(seed_list, days, scenario, step)
    real_values, notes, source = real if real else ({}, [], "none")
    rows = []
    for f in FACTS:
        value = aggregate(f, sim[f.key])
        rv = [x for x in real_values.get(f.key, []) if np.isfinite(x)]
        rows.append(CalibrationRow(f, value, sim[f.key], f.holds(value), aggregate(f, rv), rv))
    return CalibrationReport(rows, seed_list, days, scenario, source, notes)
