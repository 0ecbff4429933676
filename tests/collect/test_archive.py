"""Backfill from Binance's public archive, against a fake archive (127.0.0.1) serving test zips.

Expected values are the ones written into the CSVs (and, for shares, worked by hand from the
ratio: r = 1.5 gives 1.5 / 2.5 = 0.6 long and 0.4 short).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from perpscope.collect.archive import backfill_archive
from perpscope.collect.retry import RetryPolicy
from perpscope.domain.symbols import parse_instrument
from perpscope.errors import DataContractError, UsageError
from perpscope.store.lake import Lake
from perpscope.venues.binance_archive import plan_files
from tests.fakex.archive import FakeArchive

BTC = parse_instrument("BTC-USDT-PERP")
TODAY = date(2024, 3, 10)
KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
    "taker_buy_quote_volume,ignore"
)
METRICS_HEADER = (
    "create_time,symbol,sum_open_interest,sum_open_interest_value,"
    "count_toptrader_long_short_ratio,sum_toptrader_long_short_ratio,count_long_short_ratio,"
    "sum_taker_long_short_vol_ratio"
)


def _ms(day: date, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).timestamp() * 1000)


def klines_csv(first: date, hours: int, *, header: bool = True, base: float = 40_000.0) -> str:
    rows = [KLINE_HEADER] if header else []
    t0 = _ms(first)
    for h in range(hours):
        t = t0 + h * 3_600_000
        o = base + h
        rows.append(f"{t},{o},{o + 10},{o - 10},{o + 5},12.5,{t + 3_599_999},{12.5 * o},100,"
                    f"6.25,{6.25 * o},0")  # fmt: skip
    return "\n".join(rows) + "\n"


def metrics_csv(day: date) -> str:
    rows = [METRICS_HEADER]
    for i in range(288):
        t = datetime.fromtimestamp(_ms(day) / 1000 + 300 * i, UTC)
        rows.append(f"{t:%Y-%m-%d %H:%M:%S},BTCUSDT,{80_000 + i},{(80_000 + i) * 42_000.0},"
                    "1.5,0.25,3.0,1.2")  # fmt: skip
    return "\n".join(rows) + "\n"


def funding_csv(month: date, days: int) -> str:
    rows = ["calc_time,funding_interval_hours,last_funding_rate"]
    # 3 ms after each settlement: Binance's jitter
    rows += [f"{_ms(month) + i * 28_800_000 + 3},8,0.0001" for i in range(days * 3)]
    return "\n".join(rows) + "\n"


def publish_range(fake: FakeArchive) -> None:
    """2024-01-01 .. 2024-02-02: January monthly, February daily; funding monthly; metrics."""
    for ds in ("klines", "markPriceKlines"):
        fake.publish(f"data/futures/um/monthly/{ds}/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip",
                     klines_csv(date(2024, 1, 1), 744, header=ds == "klines"))  # fmt: skip
        for d in (1, 2):
            fake.publish(f"data/futures/um/daily/{ds}/BTCUSDT/1h/BTCUSDT-1h-2024-02-0{d}.zip",
                         klines_csv(date(2024, 2, d), 24))  # fmt: skip
    fake.publish("data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip",
                 funding_csv(date(2024, 1, 1), 31))  # fmt: skip
    fake.publish("data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-02.zip",
                 funding_csv(date(2024, 2, 1), 2))  # fmt: skip
    for d in (1, 2):  # metrics only for February here (January is 'not published': 404)
        fake.publish(f"data/futures/um/daily/metrics/BTCUSDT/BTCUSDT-metrics-2024-02-0{d}.zip",
                     metrics_csv(date(2024, 2, d)))  # fmt: skip


def run(lake: Lake, fake: FakeArchive, datasets: tuple[str, ...], since: date, until: date,
        logs: list[str] | None = None):  # type: ignore[no-untyped-def]  # fmt: skip
    return asyncio.run(
        backfill_archive(
            lake,
            BTC,
            datasets,
            since,
            until,
            base_url=fake.url,
            today=TODAY,
            policy=RetryPolicy(attempts=1, base_s=0.01, cap_s=0.01),
            log=(logs if logs is not None else []).append,
        )  # fmt: skip
    )


def test_the_plan_takes_whole_past_months_monthly_and_the_rest_daily() -> None:
    files = plan_files(BTC, ("klines", "fundingRate", "metrics"), date(2024, 1, 30),
                       date(2024, 3, 20), today=TODAY)  # fmt: skip
    kl = [f.path for f in files if f.dataset == "klines"]
    # Jan 30-31 daily (partial month), February monthly (whole, ended), March 1-9 daily (the
    # month in progress; the 10th is today: not published yet)
    assert kl[:3] == [
        "data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-30.zip",
        "data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-31.zip",
        "data/futures/um/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02.zip",
    ]
    assert kl[-1] == "data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-03-09.zip"
    assert len(kl) == 2 + 1 + 9
    funding = [f.name for f in files if f.dataset == "fundingRate"]
    assert funding == [f"BTCUSDT-fundingRate-2024-0{m}.zip" for m in (1, 2, 3)]
    assert sum(f.dataset == "metrics" for f in files) == 2 + 29 + 9
    with pytest.raises(UsageError, match="unknown archive dataset 'trades'"):
        plan_files(BTC, ("trades",), date(2024, 1, 1), date(2024, 1, 2), today=TODAY)
    with pytest.raises(UsageError, match="USDⓈ-M perpetuals"):
        plan_files(parse_instrument("BTC-USD-PERP"), ("klines",), date(2024, 1, 1),
                   date(2024, 1, 2), today=TODAY)  # fmt: skip


def test_archive_backfill_stores_every_dataset(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "store")
    with FakeArchive() as fake:
        publish_range(fake)
        report = run(lake, fake, ("klines", "markPriceKlines", "fundingRate", "metrics"),
                     date(2024, 1, 1), date(2024, 2, 2))  # fmt: skip
    assert report.files_stored == 2 * 3 + 2 + 2
    assert len(report.missing) == 31  # January's metrics are not published on this fake
    ohlcv = lake.read("ohlcv").sort("kind", "ts")
    trade = ohlcv.filter(pl.col("kind") == "trade")
    assert trade.height == 744 + 48
    assert trade["ts"][0] == datetime(2024, 1, 1, tzinfo=UTC)
    assert trade["o"][0] == 40_000.0
    assert trade["c"][0] == 40_005.0
    assert trade["taker_buy_volume"][0] == 6.25
    mark = ohlcv.filter(pl.col("kind") == "mark")
    assert mark.height == 744 + 48  # the header-less (older) layout reads the same
    assert mark["volume"].null_count() == mark.height  # mark candles carry no volume
    funding = lake.read("funding").sort("ts")
    assert funding.height == 93 + 6
    assert funding["ts"][1] == datetime(2024, 1, 1, 8, tzinfo=UTC)  # the 3 ms jitter snapped
    assert funding["interval_h"].unique().to_list() == [8.0]
    oi = lake.read("open_interest").sort("ts")
    assert oi.height == 2 * 288
    assert oi["source"].unique().to_list() == ["archive"]
    assert oi["oi_base"][0] == 80_000.0
    assert oi["oi_usd"][0] == 80_000 * 42_000.0
    ls = lake.read("long_short")
    top = ls.filter(pl.col("kind") == "top_account")
    assert top.height == 576
    assert top["long_frac"][0] == pytest.approx(0.6)
    assert top["short_frac"][0] == pytest.approx(0.4)
    pos = ls.filter(pl.col("kind") == "top_position")
    assert pos["long_frac"][0] == pytest.approx(0.2)  # r = 0.25: 0.25 / 1.25
    glob = ls.filter(pl.col("kind") == "global_account")
    assert glob["long_frac"][0] == pytest.approx(0.75)  # r = 3: 3 / 4
    taker = lake.read("taker_volume")
    assert taker["buy_sell_ratio"].unique().to_list() == [1.2]
    assert taker["buy_volume_base"].null_count() == taker.height


def test_a_corrupted_file_is_refused_and_downloaded_again(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "store")
    path = "data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02-01.zip"
    logs: list[str] = []
    with FakeArchive() as fake:
        fake.publish(path, klines_csv(date(2024, 2, 1), 24))
        fake.corrupt[path] = 1
        report = run(lake, fake, ("klines",), date(2024, 2, 1), date(2024, 2, 1), logs)
        assert fake.requests(path) == 2
    assert report.redownloads == 1
    assert report.files_stored == 1
    assert any("BTCUSDT-1h-2024-02-01.zip refused: SHA-256" in m for m in logs)
    assert lake.read("ohlcv").height == 24
    # the verified zip is cached with its checksum: a fresh store is filled from the cache
    fresh = Lake(tmp_path / "fresh")
    with FakeArchive() as empty:
        again = asyncio.run(backfill_archive(
            fresh, BTC, ("klines",), date(2024, 2, 1), date(2024, 2, 1), base_url=empty.url,
            cache_dir=tmp_path / "store" / ".cache" / "binance-archive", today=TODAY,
        ))  # fmt: skip
        assert empty.log == []
    assert again.files_from_cache == 1
    assert fresh.read("ohlcv").height == 24


def test_a_file_corrupted_twice_stops_the_run_and_stores_nothing_of_it(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "store")
    path = "data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02-01.zip"
    with FakeArchive() as fake:
        fake.publish(path, klines_csv(date(2024, 2, 1), 24))
        fake.corrupt[path] = 2
        with pytest.raises(DataContractError, match="failed its checksum twice"):
            run(lake, fake, ("klines",), date(2024, 2, 1), date(2024, 2, 1))
    assert not lake.has_table("ohlcv")


def _cli(store: Path, url: str) -> list[str]:
    return [
        sys.executable, "-m", "perpscope", "--store", str(store), "collect", "archive",
        "--instrument", "BTC-USDT-PERP", "--since", "2024-02-01", "--until", "2024-02-06",
        "--dataset", "klines", "--base-url", url, "--format", "json",
    ]  # fmt: skip


def test_a_killed_archive_backfill_resumes_without_duplicates(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    paths = [f"data/futures/um/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02-0{d}.zip"
             for d in range(1, 7)]  # fmt: skip
    with FakeArchive() as fake:
        for d, p in enumerate(paths, 1):
            fake.publish(p, klines_csv(date(2024, 2, d), 24))
        fake.hang_path = paths[3]  # the fourth file's download hangs: kill the run there
        env = {k: v for k, v in os.environ.items() if not k.startswith("PERPSCOPE_")}
        proc = subprocess.Popen(_cli(store, fake.url), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)  # fmt: skip
        try:
            assert fake.hung.wait(120), "the backfill never reached the fourth file"
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL
        assert Lake(store).read("ohlcv").height == 3 * 24  # three files were stored
        fake.hang_path = None
        fake.release()

        res = cli("--store", str(store), "collect", "archive", "--instrument", "BTC-USDT-PERP",
                  "--since", "2024-02-01", "--until", "2024-02-06", "--dataset", "klines",
                  "--base-url", fake.url, "--format", "json")  # fmt: skip
        assert res.code == 0, res.err
        assert [fake.requests(p) for p in paths] == [1, 1, 1, 2, 1, 1]
    data = res.json()
    assert data["files_skipped"] == 3
    assert data["files_stored"] == 3
    ohlcv = Lake(store).read("ohlcv")
    assert ohlcv.height == 6 * 24
    assert ohlcv.select(pl.struct("kind", "timeframe", "ts").n_unique()).item() == 6 * 24


def test_collect_archive_refuses_bad_options_on_one_line(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    store = str(tmp_path / "s")
    cases = [
        ([], "give --since"),
        (["--since", "2024-01-02", "--until", "2024-01-01"], "--until is before --since"),
        (["--since", "2024-01-01", "--timeframe", "7m"], "--timeframe '7m': use one of"),
        (["--since", "2024-01-01", "--base-url", "ftp://x"], "give an http:// or https:// URL"),
        (["--since", "2024-01-01", "--dataset", "trades"], "unknown archive dataset 'trades'"),
    ]
    for extra, message in cases:
        res = cli("--store", store, "collect", "archive", "--instrument", "BTC-USDT-PERP", *extra)
        assert res.code == 2, (extra, res.err)
        assert len(res.err.strip().splitlines()) == 1
        assert message in res.err
