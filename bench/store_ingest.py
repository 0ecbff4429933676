"""Store ingest benchmark: a 10-million-row funding-shaped backfill, then the same rows again.

Sides, each in its own subprocess so peak memory (ru_maxrss) is per side:

- ``perpscope``: ``Lake.ingest`` of 1M-row batches into the Delta ``funding`` table (idempotent on
  venue, instrument, ts), then the same batches again (every row already stored).
- ``duckdb_on_conflict`` (the honest peer: a keyed embedded store): a DuckDB database file with a
  ``PRIMARY KEY (venue, instrument, ts)`` table, ``INSERT ... SELECT * FROM <arrow batch> ON
  CONFLICT DO NOTHING`` of the same batches, then again.
- ``duckdb_executemany`` (context): row-by-row ``executemany`` into the same keyed table, timed on
  a 20,000-row sample and scaled linearly to the full size (it would take far too long in full).
- ``perpscope_quarter``: ours again with a quarter of the rows, to show that peak memory follows
  the batch size, not the total.

The data: 1,000 perpetuals x 10,000 settlements 8 h apart, batches of 100 instruments' full
histories, generated batch by batch so no side ever holds the whole set.

Run: ``python bench/store_ingest.py [--rows N]``. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

SETTLEMENTS = 10_000
INSTRUMENTS_PER_BATCH = 100
EXECUTEMANY_SAMPLE = 20_000
T0_US = 1_325_376_000_000_000  # 2012-01-01T00:00Z (10,000 8h settlements end in 2021)
STEP_US = 8 * 3_600_000_000


def batches(total_rows: int) -> Iterator[pa.Table]:
    """Funding-shaped batches of INSTRUMENTS_PER_BATCH x SETTLEMENTS rows."""
    rng = np.random.default_rng(1)
    size = INSTRUMENTS_PER_BATCH * SETTLEMENTS
    for b in range(total_rows // size):
        inst = np.repeat(
            np.arange(b * INSTRUMENTS_PER_BATCH, (b + 1) * INSTRUMENTS_PER_BATCH), SETTLEMENTS
        )
        names = pa.array(
            [
                f"C{i:04d}-USDT-PERP"
                for i in range(b * INSTRUMENTS_PER_BATCH, (b + 1) * INSTRUMENTS_PER_BATCH)
            ]
        )
        ts = T0_US + np.tile(
            np.arange(SETTLEMENTS, dtype=np.int64) * STEP_US, INSTRUMENTS_PER_BATCH
        )
        yield pa.table(
            {
                "venue": pa.array(["binance"] * size),
                "instrument": names.take(pa.array(inst - b * INSTRUMENTS_PER_BATCH)),
                "ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
                "rate": rng.normal(0.0001, 0.0002, size),
                "interval_h": np.full(size, 8.0),
                "mark_px": rng.uniform(1.0, 100_000.0, size),
            }
        )


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def side_perpscope(rows: int, workdir: Path) -> dict[str, float]:
    from perpscope.store.lake import Lake

    lake = Lake(workdir / "store")
    written = 0
    t = time.perf_counter()
    for batch in batches(rows):
        written += lake.ingest("funding", batch).rows_written
    new_s = time.perf_counter() - t
    again = 0
    t = time.perf_counter()
    for batch in batches(rows):
        again += lake.ingest("funding", batch).rows_written
    re_s = time.perf_counter() - t
    stored = lake.dataset("funding").count_rows()
    assert written == rows == stored, (written, rows, stored)
    assert again == 0
    return {"new_s": new_s, "reingest_s": re_s, "peak_rss_mib": _peak_rss_mib()}


_DDL = """
CREATE TABLE funding (
    venue VARCHAR NOT NULL, instrument VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL,
    rate DOUBLE NOT NULL, interval_h DOUBLE NOT NULL, mark_px DOUBLE,
    PRIMARY KEY (venue, instrument, ts)
)
"""


def side_duckdb_on_conflict(rows: int, workdir: Path) -> dict[str, float]:
    import duckdb

    con = duckdb.connect(str(workdir / "bench.duckdb"))
    con.execute(_DDL)

    def load() -> float:
        t = time.perf_counter()
        for batch in batches(rows):
            con.register("batch", batch)
            con.execute("INSERT INTO funding SELECT * FROM batch ON CONFLICT DO NOTHING")
            con.unregister("batch")
        con.execute("CHECKPOINT")
        return time.perf_counter() - t

    new_s = load()
    re_s = load()
    stored = con.execute("SELECT count(*) FROM funding").fetchone()
    assert stored is not None
    assert stored[0] == rows
    return {"new_s": new_s, "reingest_s": re_s, "peak_rss_mib": _peak_rss_mib()}


def side_duckdb_executemany(rows: int, workdir: Path) -> dict[str, float]:
    import duckdb

    con = duckdb.connect(str(workdir / "bench.duckdb"))
    con.execute(_DDL)
    sample = next(batches(INSTRUMENTS_PER_BATCH * SETTLEMENTS)).slice(0, EXECUTEMANY_SAMPLE)
    tuples = list(
        zip(*(sample.column(i).to_pylist() for i in range(sample.num_columns)), strict=True)
    )
    t = time.perf_counter()
    con.executemany("INSERT INTO funding VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", tuples)
    con.execute("CHECKPOINT")
    sample_s = time.perf_counter() - t
    scale = rows / EXECUTEMANY_SAMPLE
    return {
        "new_s": sample_s * scale,
        "sample_rows": EXECUTEMANY_SAMPLE,
        "sample_s": sample_s,
        "peak_rss_mib": _peak_rss_mib(),
    }


SIDES = {
    "perpscope": side_perpscope,
    "duckdb_on_conflict": side_duckdb_on_conflict,
    "duckdb_executemany": side_duckdb_executemany,
}


def run_side(name: str, rows: int) -> dict[str, float]:
    """Run one side in a fresh subprocess and return its figures."""
    proc = subprocess.run(
        [sys.executable, __file__, "--side", name, "--rows", str(rows)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"side {name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--side", choices=sorted(SIDES))
    args = parser.parse_args()
    size = INSTRUMENTS_PER_BATCH * SETTLEMENTS
    rows = max(size, args.rows // size * size)
    if args.side:
        workdir = Path(tempfile.mkdtemp(prefix="perpscope-bench-"))
        try:
            print(json.dumps(SIDES[args.side](rows, workdir)))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return

    ours = run_side("perpscope", rows)
    quarter = run_side("perpscope", max(size, rows // 4 // size * size))
    peer = run_side("duckdb_on_conflict", rows)
    many = run_side("duckdb_executemany", rows)
    result = {
        "rows": rows,
        "batch_rows": size,
        "perpscope_new_rows_per_s": rows / ours["new_s"],
        "perpscope_reingest_rows_per_s": rows / ours["reingest_s"],
        "perpscope_peak_rss_mib": ours["peak_rss_mib"],
        "perpscope_quarter_rows_peak_rss_mib": quarter["peak_rss_mib"],
        "duckdb_on_conflict_new_rows_per_s": rows / peer["new_s"],
        "duckdb_on_conflict_reingest_rows_per_s": rows / peer["reingest_s"],
        "duckdb_on_conflict_peak_rss_mib": peer["peak_rss_mib"],
        "duckdb_executemany_rows_per_s_scaled_from_sample": rows / many["new_s"],
        "duckdb_executemany_sample_rows": many["sample_rows"],
        "speedup": peer["new_s"] / ours["new_s"],
        "reingest_speedup": peer["reingest_s"] / ours["reingest_s"],
        "speedup_vs_executemany": many["new_s"] / ours["new_s"],
        "memory_growth_4x_rows": ours["peak_rss_mib"] / quarter["peak_rss_mib"],
    }
    print(
        f"perpscope: new {result['perpscope_new_rows_per_s'] / 1e6:.2f} M rows/s, "
        f"re-ingest {result['perpscope_reingest_rows_per_s'] / 1e6:.2f} M rows/s, "
        f"peak {ours['peak_rss_mib']:.0f} MiB ({quarter['peak_rss_mib']:.0f} MiB at a quarter "
        "of the rows)"
    )
    print(
        "duckdb ON CONFLICT: "
        f"new {result['duckdb_on_conflict_new_rows_per_s'] / 1e6:.2f} M rows/s, "
        f"re-ingest {result['duckdb_on_conflict_reingest_rows_per_s'] / 1e6:.2f} M rows/s, "
        f"peak {peer['peak_rss_mib']:.0f} MiB"
    )
    print(
        f"duckdb executemany (timed on {many['sample_rows']} rows, scaled): "
        f"{result['duckdb_executemany_rows_per_s_scaled_from_sample']:.0f} rows/s"
    )
    print(f"speedup (duckdb ON CONFLICT time / perpscope time, new data): {result['speedup']:.2f}x")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
