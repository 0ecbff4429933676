"""Real data (../shared/data): funding extremes and the Binance-Bybit spread, cross-checked.

The supervik files write ``Date`` in UTC+3 without a zone; 3 hours are subtracted here. The
figures of docs/methodology.md ("Real-data figures") are read from the page and compared with an
independent computation on the raw CSV written in this file (pandas to read, plain Python or
numpy to count and average), never with numbers pasted into the test; perpscope's own functions
are checked against the same independent computation.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest
from tests.conftest import REPO, require_shared

from perpscope.analytics.funding_series import (
    cross_venue_spread_history,
    extremes_per_year,
    funding_extremes,
)

pytestmark = pytest.mark.shared_data


def _path(asset: str, venue: str) -> str:
    start = "2020" if venue == "binance" else "2021"
    return str(
        require_shared(
            f"funding/supervik_{asset}-USDT_{venue}_{start}-01-01_2024-01-01_funding_history.csv.gz"
        )
    )


def _raw(asset: str, venue: str) -> pd.DataFrame:
    """The raw CSV read with pandas (independent of perpscope's loader): UTC ``ts``, ``rate``."""
    df = pd.read_csv(_path(asset, venue))
    ts = pd.to_datetime(df["Date"]).dt.tz_localize("UTC") - pd.Timedelta(hours=3)
    return pd.DataFrame({"ts": ts, "rate": df["Funding Rate"].astype(float)})


def _load(asset: str, venue: str) -> pl.DataFrame:
    raw = pl.read_csv(_path(asset, venue))
    return raw.select(
        pl.lit(venue).alias("venue"),
        pl.lit(f"{asset}-USDT-PERP").alias("instrument"),
        (
            pl.col("Date").str.to_datetime(time_unit="us").dt.replace_time_zone("UTC")
            - timedelta(hours=3)
        ).alias("ts"),
        pl.col("Funding Rate").cast(pl.Float64).alias("rate"),
        pl.lit(8.0).alias("interval_h"),
    )


def _plain_python_runs(
    ts: list[datetime], rates: list[float], threshold: float = 0.0005
) -> list[tuple[datetime, str, int]]:
    """Runs of >= 3 consecutive 8h settlements beyond the threshold: (start, side, settlements)."""
    runs: list[tuple[datetime, str, int]] = []
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    run: list[datetime] = []
    side = 0
    prev: datetime | None = None

    def close() -> None:
        if side != 0 and len(run) >= 3:
            runs.append((run[0], "positive" if side > 0 else "negative", len(run)))

    for t, rate in sorted(zip(ts, rates, strict=True)):
        period = epoch + timedelta(hours=8 * ((t - epoch) // timedelta(hours=8)))
        s = 1 if rate >= threshold else -1 if rate <= -threshold else 0
        contiguous = prev is not None and period - prev == timedelta(hours=8)
        if s != 0 and s == side and contiguous:
            run.append(period)
        else:
            close()
            run, side = ([period] if s != 0 else []), s
        prev = period
    close()
    return runs


def _raw_runs(asset: str) -> list[tuple[datetime, str, int]]:
    raw = _raw(asset, "binance")
    return _plain_python_runs(raw["ts"].dt.to_pydatetime().tolist(), raw["rate"].tolist())


def _docs_section(title: str) -> list[list[str]]:
    """The cells of the table rows under the ``### {title}`` heading of docs/methodology.md."""
    text = (REPO / "docs" / "methodology.md").read_text(encoding="utf-8")
    section = text.split(f"### {title}", 1)[1].split("\n#", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| BTC") or line.startswith("| ETH"):
            rows.append(cells)
    assert rows, f"no table under '{title}' in docs/methodology.md"
    return rows


def _num(cell: str) -> float:
    """A table cell as a number: '1,328' -> 1328, '216h' -> 216, '-0.0070%' -> -7e-05, '' -> 0."""
    cell = cell.replace(",", "").replace("h", "")
    if not cell:
        return 0.0
    if cell.endswith("%"):
        return float(cell[:-1]) / 100
    return float(cell)


@pytest.mark.parametrize("asset", ["BTC", "ETH"])
def test_binance_extremes_per_year_match_a_plain_python_count(asset: str) -> None:
    frame = _load(asset, "binance")
    assert frame.height == len(_raw(asset, "binance"))
    ours = extremes_per_year(funding_extremes(frame, min_venues=1))
    runs = _raw_runs(asset)
    expected = Counter((start.year, side) for start, side, _ in runs)
    assert {(r["year"], r["side"]): r["episodes"] for r in ours.iter_rows(named=True)} == dict(
        expected
    )
    hours: Counter[tuple[int, str]] = Counter()
    for start, side, n in runs:
        hours[(start.year, side)] += 8 * n
    assert {(r["year"], r["side"]): r["hours"] for r in ours.iter_rows(named=True)} == dict(hours)


def _independent_extremes_table(asset: str) -> dict[tuple[int, str], tuple[int, int, int]]:
    """(year, side) -> (episodes, hours, longest h) from the plain-Python runs on the raw CSV."""
    out: dict[tuple[int, str], tuple[int, int, int]] = {}
    for start, side, n in _raw_runs(asset):
        e, h, longest = out.get((start.year, side), (0, 0, 0))
        out[(start.year, side)] = (e + 1, h + 8 * n, max(longest, 8 * n))
    return out


def test_the_docs_extremes_table_is_what_the_raw_files_give() -> None:
    rows = _docs_section("Extremes of Binance funding, single venue (N = 1), 2020-2023")
    assert len(rows) == 8  # BTC and ETH, 2020-2023, years without an episode shown as 0
    tables = {asset: _independent_extremes_table(asset) for asset in ("BTC", "ETH")}
    for asset, year, *cells in rows:
        pos = tuple(int(_num(c)) for c in cells[0:3])
        neg = tuple(int(_num(c)) for c in cells[3:6])
        indep = tables[asset]
        assert pos == indep.get((int(year), "positive"), (0, 0, 0)), (asset, year)
        assert neg == indep.get((int(year), "negative"), (0, 0, 0)), (asset, year)
    # Every independent episode is on the page (no year is missing from the table).
    listed = {(a, int(y)) for a, y, *_ in rows}
    assert {(a, y) for a, t in tables.items() for (y, _) in t} <= listed


def _raw_aligned(asset: str) -> pd.DataFrame:
    """Binance and Bybit settlements joined on the minute (pandas), with their difference."""
    a, b = _raw(asset, "binance"), _raw(asset, "bybit")
    a["ts"], b["ts"] = a["ts"].dt.floor("min"), b["ts"].dt.floor("min")
    both = a.merge(b, on="ts", suffixes=("_a", "_b")).sort_values("ts")
    both["spread"] = both["rate_a"] - both["rate_b"]
    return both


def test_binance_bybit_spread_matches_numpy_on_aligned_settlements() -> None:
    for asset in ("BTC", "ETH"):
        binance, bybit = _load(asset, "binance"), _load(asset, "bybit")
        spread = cross_venue_spread_history(pl.concat([binance, bybit]), "binance", "bybit")
        both = _raw_aligned(asset)
        assert spread.height == len(both)
        np.testing.assert_allclose(
            spread.sort("period")["spread_8h"].to_numpy(), both["spread"].to_numpy()
        )
    # PROVENANCE.md: Binance and Bybit BTC correlate at 0.72 over 3,285 common settlements.
    btc = _raw_aligned("BTC")
    assert len(btc) == 3285
    assert np.corrcoef(btc["rate_a"], btc["rate_b"])[0, 1] == pytest.approx(0.72, abs=0.005)


def test_the_docs_spread_table_is_what_the_raw_files_give() -> None:
    # Columns: periods, mean, mean abs, std, min, max, share >= 0.03%, correlation; each compared
    # with numpy on the raw settlements to half a unit of its last printed digit.
    rows = _docs_section("Binance minus Bybit funding spread, 2021-2023 (per 8h period)")
    assert len(rows) == 6
    aligned = {asset: _raw_aligned(asset) for asset in ("BTC", "ETH")}
    for asset, year, *cells in rows:
        both = aligned[asset]
        part = both[both["ts"].dt.year == int(year)]
        s = part["spread"].to_numpy()
        # Rates have 8 decimals: round the difference before comparing with the 0.03% alert.
        share = np.mean(np.round(np.abs(s), 10) >= 0.0003)
        corr = np.corrcoef(part["rate_a"], part["rate_b"])[0, 1]
        computed = [len(s), s.mean(), np.abs(s).mean(), s.std(ddof=1), s.min(), s.max(), share]
        for cell, value in zip(cells[:7], computed, strict=True):
            decimals = len(cell.rstrip("%").split(".")[1]) if "." in cell else 0
            unit = 10.0**-decimals / (100 if cell.endswith("%") else 1)
            assert value == pytest.approx(_num(cell), abs=unit / 2 + 1e-15), (asset, year, cell)
        assert corr == pytest.approx(_num(cells[7]), abs=5e-4), (asset, year)
    # perpscope's own per-year alert share and correlation agree with the same numpy figures.
    for asset, both in aligned.items():
        frame = pl.concat([_load(asset, "binance"), _load(asset, "bybit")])
        spread = cross_venue_spread_history(frame, "binance", "bybit")
        for year in (2021, 2022, 2023):
            part = spread.filter(pl.col("period").dt.year() == year)
            raw = both[both["ts"].dt.year == year]
            assert np.mean(np.abs(part["spread_8h"].to_numpy()) >= 0.0003 - 1e-12) == (
                pytest.approx(np.mean(np.round(np.abs(raw["spread"].to_numpy()), 10) >= 0.0003))
            )
            r = np.corrcoef(part["rate_8h_a"].to_numpy(), part["rate_8h_b"].to_numpy())[0, 1]
            assert r == pytest.approx(np.corrcoef(raw["rate_a"], raw["rate_b"])[0, 1])
