"""``perpscope funding|oi|basis|cvd`` through the real entry point, on a small hand-built store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from perpscope.cli.main import run
from perpscope.store.lake import Lake
from tests.conftest import json_data

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _h(i: float) -> datetime:
    return T0 + timedelta(hours=i)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        run(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def _json(capsys: pytest.CaptureFixture[str], store: str, *args: str) -> Any:
    code, out, err = _run(capsys, "--store", store, *args, "--format", "json")
    assert code == 0, err
    return json_data(out)


def _funding_rows() -> pl.DataFrame:
    rows = []
    # binance BTC 8h: three settlements at 0.06% (an extreme of 24h), then 0.01%.
    for i, r in enumerate([0.0006, 0.0006, 0.0006, 0.0001]):
        rows.append(("binance", "BTC-USDT-PERP", _h(8 * i), r, 8.0))
    # bybit BTC hourly at 0.005%/h (= 0.04% per 8h); okx BTC 4h at 0.01% (= 0.02% per 8h).
    rows += [("bybit", "BTC-USDT-PERP", _h(i), 0.00005, 1.0) for i in range(25)]
    rows += [("okx", "BTC-USDT-PERP", _h(4 * i), 0.0001, 4.0) for i in range(7)]
    rows.append(("binance", "ETH-USDT-PERP", _h(24), 0.0002, 8.0))
    # binance SOL 8h: 0.10% at 00/08/16/24h, then 0 (for the funding-price divergence).
    rows += [
        ("binance", "SOL-USDT-PERP", _h(8 * i), 0.001 if i <= 3 else 0.0, 8.0) for i in range(10)
    ]
    return pl.DataFrame(
        rows, schema=["venue", "instrument", "ts", "rate", "interval_h"], orient="row"
    )


def _sol_frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    # 73 hourly bars: price 145 -> 168 while OI 4.2B -> 3.7B (the playbook's SOL example).
    n = 73
    ts = [_h(i) for i in range(n)]
    close = np.linspace(145.0, 168.0, n)
    oi = pl.DataFrame(
        {
            "venue": "binance",
            "instrument": "SOL-USDT-PERP",
            "source": "snapshot",
            "ts": ts,
            "oi_value": np.linspace(4.2e9, 3.7e9, n),
            "oi_unit": "usd",
            "oi_usd": np.linspace(4.2e9, 3.7e9, n),
        }
    )
    candles = pl.DataFrame(
        {
            "venue": "binance",
            "instrument": "SOL-USDT-PERP",
            "kind": "trade",
            "timeframe": "1h",
            "ts": ts,
            "o": close,
            "h": close,
            "l": close,
            "c": close,
            "volume": 10.0,
            "taker_buy_volume": 6.0,  # delta +2 per bar
        }
    )
    return oi, candles


@pytest.fixture
def store(tmp_path: Path) -> str:
    root = tmp_path / "store"
    lake = Lake(root)
    lake.init()
    lake.ingest("funding", _funding_rows())
    oi_weights = pl.DataFrame(
        {
            "venue": ["binance", "bybit"],
            "instrument": ["BTC-USDT-PERP"] * 2,
            "source": "snapshot",
            "ts": [_h(24)] * 2,
            "oi_value": [3e9, 1e9],
            "oi_unit": "usd",
            "oi_usd": [3e9, 1e9],
        }
    )
    sol_oi, sol_candles = _sol_frames()
    lake.ingest("open_interest", pl.concat([oi_weights, sol_oi]))
    spot_index = pl.DataFrame(
        {
            "venue": "binance",
            "instrument": ["SOL-USDT", "SOL-USDT-PERP", "SOL-USDT-28JUN24"],
            "kind": ["trade", "index", "trade"],
            "timeframe": "1h",
            "ts": [_h(72), _h(72), _h(72)],
            "o": [167.0, 168.5, 170.0],
            "h": [167.0, 168.5, 170.0],
            "l": [167.0, 168.5, 170.0],
            "c": [167.0, 168.5, 170.0],
        }
    )
    lake.ingest("ohlcv", pl.concat([sol_candles, spot_index], how="diagonal"))
    lake.ingest(
        "long_short",
        pl.DataFrame(
            {
                "venue": "binance",
                "instrument": "SOL-USDT-PERP",
                "kind": ["global_account", "top_position"] * 3,
                "period": "1h",
                "ts": [_h(0), _h(0), _h(1), _h(1), _h(2), _h(2)],
                "long_short_ratio": [1.5, 1.1, 1.8, 1.0, 2.2, 0.9],
            }
        ),
    )
    return str(root)


def test_funding_table_json_oi_weighted_aggregate(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _json(capsys, store, "funding", "table")
    btc = next(a for a in data["assets"] if a["asset"] == "BTC")
    # Latest 8h rates: binance 0.0001, bybit 0.0004, okx 0.0002. OI: binance 3B, bybit 1B, okx none
    # -> (3 x 0.0001 + 1 x 0.0004) / 4 = 0.000175, by hand.
    assert btc["weighting"] == "oi"
    assert btc["agg_rate_8h"] == pytest.approx(0.000175)
    assert btc["agg_annualized"] == pytest.approx(0.000175 * 1095)
    assert (btc["high_venue"], btc["low_venue"]) == ("bybit", "binance")
    assert btc["spread_8h"] == pytest.approx(0.0003)
    assert {v["venue"] for v in data["venues"]} == {"binance", "bybit", "okx"}


def test_funding_arbitrage_ranks_the_widest_pair(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _json(capsys, store, "funding", "arbitrage", "--asset", "BTC")
    assert (rows[0]["short_venue"], rows[0]["long_venue"]) == ("bybit", "binance")
    assert rows[0]["carry_annualized"] == pytest.approx(0.0003 * 1095)
    assert rows[0]["alert"] is True


def test_funding_extremes_single_venue_episode(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _json(
        capsys, store, "funding", "extremes", "--venue", "binance", "--asset", "BTC",
        "--min-venues", "1",
    )  # fmt: skip
    # binance: 0.06% for three 8h periods = one 24h positive episode.
    assert [(e["asset"], e["side"], e["duration_h"]) for e in data["episodes"]] == [
        ("BTC", "positive", 24.0)
    ]
    assert data["per_year"] == [
        {
            "asset": "BTC",
            "year": 2024,
            "side": "positive",
            "episodes": 1,
            "hours": 24.0,
            "longest_h": 24.0,
        }
    ]
    # With the default N = 2 no other venue is extreme at the same time.
    assert _json(capsys, store, "funding", "extremes")["episodes"] == []


def test_funding_history_tail_and_columns(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _json(
        capsys, store, "funding", "history", "--venue", "binance", "--asset", "BTC", "--tail", "2"
    )
    assert [r["rate"] for r in rows] == [0.0006, 0.0001]
    # accumulated funding after four settlements: 3 x 0.0006 + 0.0001.
    assert rows[-1]["cum_rate"] == pytest.approx(0.0019)
    assert rows[-1]["ts"] == "2024-03-02T00:00:00Z"


def test_funding_spread_summary(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, store, "funding", "spread", "binance", "bybit", "--history")
    # Common 8h periods 0, 8, 16, 24: binance 0.0006 x3, 0.0001; bybit 0.0004 (all eight hours
    # except the last period, which has one hourly settlement: still 0.0004 as a mean).
    assert [p["spread_8h"] for p in data["periods"]] == pytest.approx(
        [0.0002, 0.0002, 0.0002, -0.0003]
    )
    assert data["summary"][0]["periods"] == 4


def test_oi_summary_and_divergence_reproduce_sol(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _json(capsys, store, "oi", "summary", "--instrument", "SOL-USDT-PERP")["venues"]
    sol = rows[0]
    # 24h change at h72 against h48, on linear OI: (4.2 - 0.5) / (4.2 - 0.5 x 48/72) - 1.
    assert sol["oi_change_24h"] == pytest.approx(3.7 / (4.2 - 0.5 * 48 / 72) - 1)
    assert sol["quadrant"] == "short_covering"
    div = _json(capsys, store, "oi", "divergence", "--asset", "SOL")
    last = div["divergences"][-1]
    assert last["divergence_ratio"] == pytest.approx(0.75, abs=0.001)
    assert (last["oi_divergence"], last["oi_divergence_grade"]) == ("bearish", "moderate")


def test_basis_premium_to_spot_and_index(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, store, "basis", "--asset", "SOL")
    perp = data["perps"][0]
    assert perp["premium_spot"] == pytest.approx(168 / 167 - 1)
    assert perp["premium_index"] == pytest.approx(168 / 168.5 - 1)
    # 1% per 8h annualised like funding.
    assert perp["premium_spot_annualized"] == pytest.approx((168 / 167 - 1) * 1095)
    fut = data["futures"][0]
    # 2024-03-04 00:00 -> 2024-06-28 08:00 UTC = 116 days + 8h = 2,792h, by hand.
    assert fut["hours_to_expiry"] == pytest.approx(2792.0)
    assert fut["basis"] == pytest.approx(170 / 167 - 1)
    assert fut["basis_annualized"] == pytest.approx((170 / 167 - 1) * 8760 / 2792)


def test_cvd_from_taker_buy_volume(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    data = _json(capsys, store, "cvd", "--instrument", "SOL-USDT-PERP", "--tail", "1")
    # 73 bars of 2 x 6 - 10 = +2 each.
    assert data["cvd"][0]["cvd_base"] == pytest.approx(146.0)
    assert data["cvd"][0]["market"] == "perp"


def test_bad_arguments_print_one_line_and_exit_2(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "--store", store, "funding", "table", "--instrument", "NOPE")
    assert code == 2
    assert "unknown instrument" in err
    assert "Traceback" not in err
    code, _, err = _run(capsys, "--store", store, "funding", "table", "--asset", "DOGE")
    assert code == 2
    assert "no funding" in err
    code, _, err = _run(capsys, "--store", store, "funding", "history", "--since", "last tuesday")
    assert code == 2
    assert "--since" in err


def test_table_format_renders(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--store", store, "funding", "table")
    assert code == 0
    assert "assets" in out
    assert "bybit" in out


def test_basis_without_dated_futures_gives_an_empty_section(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _json(capsys, store, "basis", "--instrument", "SOL-USDT-PERP")
    assert data["futures"] == []
    assert data["perps"][0]["instrument"] == "SOL-USDT-PERP"


def test_funding_history_since_keeps_full_windows_and_restarts_the_sum(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("funding", "history", "--venue", "binance", "--asset", "BTC", "--tail", "0")
    every = _json(capsys, store, *args)
    since = _json(capsys, store, *args, "--since", "2024-03-01T16:00Z")
    # Settlements from 16:00 on; the z-score at 16:00 still sees the two earlier settlements.
    assert [r["ts"] for r in since] == ["2024-03-01T16:00:00Z", "2024-03-02T00:00:00Z"]
    assert since[0]["percentile"] == every[2]["percentile"]
    # Accumulated funding restarts at --since: 0.0006, then 0.0006 + 0.0001.
    assert [r["cum_rate"] for r in since] == pytest.approx([0.0006, 0.0007])


def test_funding_divergence_bearish_after_funding_cools(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _json(capsys, store, "funding", "divergence", "--asset", "SOL")
    # Price makes a new high every hour. Funding is 0.10% until the 24h settlement and 0 from
    # 32h on, so from h32 the 7-day mean at each high is below the mean at the high 24h
    # earlier: 41 bearish bars (h32..h72). At h72 the prior high is h48, where the mean was
    # 0.032/49; at h72 it is 0.032/73 (by hand).
    assert len(rows) == 41
    assert {r["divergence"] for r in rows} == {"bearish"}
    assert rows[0]["ts"] == "2024-03-02T08:00:00Z"
    last = rows[-1]
    assert last["prior_ts"] == "2024-03-03T00:00:00Z"
    assert last["prior_funding_mean_8h"] == pytest.approx(0.032 / 49)
    assert last["funding_mean_8h"] == pytest.approx(0.032 / 73)


def test_longshort_crowd_against_top_and_extremes(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _json(capsys, store, "longshort", "--asset", "SOL")
    # Latest (h2): crowd 2.2 long, top traders 0.9 -> crowd long, top short.
    crowd = data["crowd_vs_top"][0]
    assert (crowd["global_account"], crowd["top_position"]) == (2.2, 0.9)
    assert crowd["lean"] == "crowd_long_top_short"
    by_kind = {r["kind"]: r for r in data["extremes"]}
    # global rose every hour: its latest is the highest of the window (percentile 1.0);
    # top_position fell every hour: 1 of 3 values <= 0.9. Three values are too few for an
    # extreme label (the guard wants 10 in the window).
    assert by_kind["global_account"]["ls_percentile"] == 1.0
    assert by_kind["global_account"]["extreme"] is None
    assert by_kind["top_position"]["ls_percentile"] == pytest.approx(1 / 3)
    assert by_kind["top_position"]["extreme"] is None


def test_enum_options_are_validated_with_the_choices_listed(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "--store", store, "oi", "summary", "--timeframe", "banana")
    assert code == 2
    assert out == ""
    assert "banana" in err
    assert "1h" in err
    assert "4h" in err
    assert "Traceback" not in err
    code, _, err = _run(capsys, "--store", store, "longshort", "--period", "7h")
    assert code == 2
    assert "5m" in err


def test_threshold_reads_a_bare_number_and_a_percent_sign_alike(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("funding", "extremes", "--venue", "binance", "--asset", "BTC", "--min-venues", "1")
    # binance BTC sits at 0.06% for 24h: an episode at 0.05 (= 0.05%), none at 0.07.
    bare = _json(capsys, store, *args, "--threshold", "0.05")
    sign = _json(capsys, store, *args, "--threshold", "0.05%")
    assert bare == sign
    assert len(bare["episodes"]) == 1
    assert _json(capsys, store, *args, "--threshold", "0.07")["episodes"] == []
    code, _, err = _run(capsys, "--store", store, *args, "--threshold", "lots")
    assert code == 2
    assert "bad --threshold 'lots'" in err


def test_asset_is_repeatable_and_comma_separated(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def assets(*extra: str) -> list[str]:
        return [a["asset"] for a in _json(capsys, store, "funding", "table", *extra)["assets"]]

    assert assets("--asset", "BTC", "--asset", "ETH") == ["BTC", "ETH"]
    assert assets("--asset", "BTC,ETH") == ["BTC", "ETH"]
    assert assets("--asset", "sol") == ["SOL"]


def test_empty_results_name_what_is_in_the_store(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "--store", store, "funding", "table", "--venue", "sim9")
    assert code == 2
    assert "no funding for venue sim9; venues in the store: binance, bybit, okx" in err
    code, _, err = _run(capsys, "--store", store, "oi", "summary", "--since", "2026-01-05")
    assert code == 2
    assert "no open interest after 2026-01-05; the data ends 2024-03-04" in err


def test_until_and_relative_since_bound_the_history(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("funding", "history", "--venue", "binance", "--asset", "BTC", "--tail", "0")
    # binance BTC settles at 00, 08, 16 and 24h of 2024-03-01; the funding table ends at
    # 2024-03-04 00:00 (SOL), so --since 3d starts at 2024-03-01 00:00.
    rows = _json(capsys, store, *args, "--since", "3d", "--until", "2024-03-01T16:00Z")
    assert [r["ts"] for r in rows] == ["2024-03-01T00:00:00Z", "2024-03-01T08:00:00Z"]


def test_newcomer_path_demo_then_funding_table_without_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    default = tmp_path / "data" / "store"
    monkeypatch.setenv("PERPSCOPE_STORE", str(default))
    monkeypatch.setenv("PERPSCOPE_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    code, out, err = _run(capsys, "demo", "--days", "2", "--seed", "5")
    assert code == 0, err
    assert f"Demo store: {default}" in out
    assert "need no --store" in out
    try_next = out.split("Try next:", 1)[1]
    assert "--store" not in try_next
    assert "perpscope funding table" in try_next
    assert "perpscope oi divergence" in try_next
    # no cross-venue spread of a venue against itself: the line after "widest spread" names
    # the two venues ("sim1 +0.0100% vs sim3 +0.0050% per 8h")
    lines = out.splitlines()
    pairs = [lines[i + 1].split(" vs ") for i, line in enumerate(lines) if "widest spread" in line]
    assert pairs, out  # the demo has three venues per asset: every asset has a spread
    for ends in pairs:
        assert len(ends) == 2, ends
        assert ends[0].split()[0] != ends[1].split()[0], ends
    code, _, err = _run(capsys, "store", "info")
    assert code == 0, err
    code, _, err = _run(capsys, "funding", "table")
    assert code == 0, err
    # a second demo rebuilds the demo store in place
    code, out, err = _run(capsys, "demo", "--days", "1", "--seed", "5")
    assert code == 0, err
    assert f"Demo store: {default}" in out


def test_demo_beside_a_users_own_store_prints_store_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    own = Lake(tmp_path / "store")
    own.init()
    own.ingest("funding", _funding_rows().head(2))
    monkeypatch.setenv("PERPSCOPE_STORE", str(own.root))
    monkeypatch.setenv("PERPSCOPE_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    code, out, err = _run(capsys, "demo", "--days", "1", "--seed", "5")
    assert code == 0, err
    demo = tmp_path / "demo"
    assert f"Demo store: {demo}" in out
    try_next = out.split("Try next:", 1)[1].strip().splitlines()
    assert all(line.strip().startswith(f"perpscope --store {demo} ") for line in try_next)
    assert own.read("funding").height == 2  # the user's store is untouched


def test_a_mistyped_store_path_says_there_is_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = str(tmp_path / "stroe")
    code, out, err = _run(capsys, "--store", typo, "funding", "table")
    assert (code, out) == (2, "")
    assert f"no store at {typo}" in err


def test_funding_table_on_old_data_says_how_old_it_is(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The fixture's funding ends 2024-03-04 00:00, long before the wall clock of any test run.
    code, _, err = _run(capsys, "--store", store, "funding", "table")
    assert code == 0
    assert "stale: the latest settlement is 2024-03-04 00:00Z, " in err
    assert "days ago" in err
    rows = _json(capsys, store, "funding", "table")["venues"]
    assert all(r["stale"] for r in rows)


def test_demo_into_a_store_named_on_the_command_line_keeps_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERPSCOPE_STORE", str(tmp_path / "default"))
    monkeypatch.setenv("PERPSCOPE_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    named = tmp_path / "named"
    code, out, err = _run(capsys, "--store", str(named), "demo", "--days", "1", "--seed", "5")
    assert code == 0, err
    assert f"Demo store: {named}" in out
    try_next = out.split("Try next:", 1)[1].strip().splitlines()
    assert all(line.strip().startswith(f"perpscope --store {named} ") for line in try_next)
    assert not (tmp_path / "default").exists()
