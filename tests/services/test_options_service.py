"""Options import and use-cases: the real Deribit files against independent computations written
here over the raw CSV (csv module), plus bad chains built by hand."""

from __future__ import annotations

import csv
import gzip
import json
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from perpscope.errors import BadRowsError, DataContractError, UsageError
from perpscope.services.filters import parse_time
from perpscope.services.options import (
    ChainQuery,
    import_options,
    load_chain,
    maxpain_curve_report,
    maxpain_report,
    oi_report,
    pcr_report,
    smile_report,
    summary_report,
    unusual_report,
)
from perpscope.store.lake import Lake
from tests.conftest import require_shared

ETH = "options/deribit_eth_book_summary_2024-01-08.csv.gz"
BTC = "options/deribit_btc_option_chain_2021-02-11.csv.gz"


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", newline="") as fh:
        return list(csv.DictReader(fh))


def _independent_pcr_and_max_pain(
    rows: list[dict[str, str]], expiry_code: str
) -> tuple[float, float]:
    """Put/call OI ratio of all rows and max pain of one expiry, straight from the raw CSV."""
    oi = {"C": 0.0, "P": 0.0}
    legs = []
    for r in rows:
        _, code, strike, kind = r["instrument_name"].split("-")
        oi[kind] += float(r["open_interest"])
        if code == expiry_code:
            legs.append((float(strike), kind, float(r["open_interest"])))
    strikes = sorted({k for k, _, _ in legs})

    def payout(s: float) -> float:
        return sum(q * (max(s - k, 0) if c == "C" else max(k - s, 0)) for k, c, q in legs)

    return oi["P"] / oi["C"], min(strikes, key=payout)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "store")


# ----------------------------------------------------------------------------- real files


@pytest.mark.shared_data
def test_eth_book_summary_pcr_and_max_pain_equal_the_raw_csv(lake: Lake) -> None:
    path = require_shared(ETH)
    import_options(lake, path, venue="deribit")
    expected_pcr, expected_mp = _independent_pcr_and_max_pain(_csv_rows(path), "26JAN24")
    report = pcr_report(lake, ChainQuery("deribit", "ETH"))
    assert report["pcr_oi"] == pytest.approx(expected_pcr, rel=1e-12)
    assert round(report["pcr_oi"], 4) == 0.3248
    pains = {r["expiry"]: r for r in maxpain_report(lake, ChainQuery("deribit", "ETH"))}
    jan26 = pains[date(2024, 1, 26)]
    assert jan26["max_pain_px"] == expected_mp == 2200.0
    # days from the snapshot (2024-01-08 11:19:41.429) to expiry (2024-01-26 08:00 UTC)
    snap = datetime(2024, 1, 8, 11, 19, 41, 429000, tzinfo=UTC)
    expiry = datetime(2024, 1, 26, 8, tzinfo=UTC)
    assert jan26["days_to_expiry"] == pytest.approx((expiry - snap).total_seconds() / 86400)
    assert jan26["spot_px"] == 2222.19  # estimated_delivery_price, Deribit's index


@pytest.mark.shared_data
def test_btc_ticker_chain_uses_the_latest_snapshot_per_instrument(lake: Lake) -> None:
    path = require_shared(BTC)
    rows = _csv_rows(path)
    latest: dict[str, dict[str, str]] = {}
    for r in sorted(rows, key=lambda r: int(r["timestamp"])):
        latest[r["instrument_name"]] = r
    expected_pcr, expected_mp = _independent_pcr_and_max_pain(list(latest.values()), "26MAR21")
    report = import_options(lake, path, venue="deribit")
    assert report.rows_written == 976
    assert "2 snapshot(s), 488 instruments" in report.notes[0]
    pcr = pcr_report(lake, ChainQuery("deribit", "BTC"))
    assert pcr["pcr_oi"] == pytest.approx(expected_pcr, rel=1e-12)
    assert round(pcr["pcr_oi"], 4) == 0.2340
    assert pcr["history_snapshots"] == 1
    pains = {r["expiry"]: r for r in maxpain_report(lake, ChainQuery("deribit", "BTC"))}
    assert pains[date(2021, 3, 26)]["max_pain_px"] == expected_mp == 10_000.0
    # 5MAR21 has no open interest at all: no max pain, with the reason, not NaN
    assert pains[date(2021, 3, 5)]["max_pain_px"] is None
    assert pains[date(2021, 3, 5)]["reason"] == "no open interest"


@pytest.mark.shared_data
def test_reimport_writes_nothing_and_first_snapshot_is_readable(lake: Lake) -> None:
    path = require_shared(BTC)
    import_options(lake, path, venue="deribit")
    again = import_options(lake, path, venue="deribit")
    assert (again.rows_written, again.rows_already_stored) == (0, 976)
    first_ts = datetime.fromtimestamp(
        max(int(r["timestamp"]) for r in _csv_rows(path)) / 1000 - 300, tz=UTC
    )
    early = load_chain(lake, ChainQuery("deribit", "BTC", at=first_ts))
    assert early.rows.height == 488
    assert early.chain_ts < first_ts


@pytest.mark.shared_data
def test_inverted_iv_matches_deribit_mark_iv(lake: Lake) -> None:
    # Independent check of the Black-76 inversion: drop the venue IV and recover it from the
    # coin mark price (USD = mark x underlying_price) for the liquid 26MAR21 expiry.
    from perpscope.analytics.options_vol import with_iv_and_greeks

    import_options(lake, require_shared(BTC), venue="deribit")
    chain = load_chain(lake, ChainQuery("deribit", "BTC", date(2021, 3, 26))).rows
    venue_iv = chain["mark_iv"]
    ours = with_iv_and_greeks(chain.with_columns(pl.lit(None, pl.Float64).alias("mark_iv")))
    both = pl.DataFrame({"venue": venue_iv, "ours": ours["iv"], "vega": ours["vega"]}).filter(
        pl.col("vega") > 5
    )
    assert both.height > 20
    assert (both["venue"] - both["ours"]).abs().max() < 2e-3  # marks are rounded to 1e-8 BTC


@pytest.mark.shared_data
def test_every_use_case_runs_on_real_data_without_nan(lake: Lake) -> None:
    import_options(lake, require_shared(ETH), venue="deribit")
    q = ChainQuery("deribit", "ETH")
    walls = oi_report(lake, q, top=3)
    assert walls[0]["oi_contracts"] >= walls[1]["oi_contracts"] >= walls[2]["oi_contracts"]
    vol = smile_report(lake, ChainQuery("deribit", "ETH", date(2024, 1, 26)))
    assert vol["iv_source"] == "black76"  # the book summary carries no IV
    assert all(r["atm_iv"] is not None for r in vol["by_expiry"])
    assert len(vol["smile"]) > 10
    curve = maxpain_curve_report(lake, ChainQuery("deribit", "ETH", date(2024, 1, 26)))
    assert min(curve, key=lambda r: r["payout_usd"])["strike_px"] == 2200.0
    summary = summary_report(lake, q)
    assert summary["main_expiry"] == date(2024, 1, 26)
    assert summary["main_expiry_max_pain_px"] == 2200.0
    for record in (summary, *unusual_report(lake, q)):
        assert not any(isinstance(v, float) and v != v for v in record.values())


# ----------------------------------------------------------------------------- bad chains

HEADER = (
    "instrument_name,creation_timestamp,open_interest,volume,volume_usd,mark_price,"
    "underlying_price,estimated_delivery_price,bid_price,ask_price\n"
)
MS = 1704712781414  # 2024-01-08 11:19:41.414 UTC


def _write(tmp_path: Path, lines: list[str], name: str = "chain.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(line + "\n" for line in lines))
    return path


def test_bad_rows_are_reported_with_lines_and_nothing_is_written(
    lake: Lake, tmp_path: Path
) -> None:
    path = _write(
        tmp_path,
        [
            f"ETH-26JAN24-2200-C,{MS},100,1,1,0.05,2240,2222,0.04,0.06",
            f"ETH-26JAN24-C,{MS},100,1,1,0.05,2240,2222,0.04,0.06",  # missing strike
            f"ETH-8JAN24-2200-P,{MS},100,1,1,0.05,2240,2222,0.04,0.06",  # expired at 08:00
            f"ETH-26JAN24-2300-C,{MS},,1,1,0.05,2240,2222,0.04,0.06",  # no OI
        ],
    )
    with pytest.raises(BadRowsError) as err:
        import_options(lake, path, venue="deribit")
    message = str(err.value)
    assert "3 of 4 rows are invalid" in message
    assert "line 3: instrument 'ETH-26JAN24-C' is not a Deribit" in message
    assert "line 4: option already expired at its quote" in message
    assert "line 5: missing open_interest" in message
    assert not lake.has_table("options_snapshot")
    report = import_options(lake, path, venue="deribit", skip_bad=True)
    assert (report.rows_written, report.rows_bad) == (1, 3)


def test_zero_oi_and_one_sided_expiries_give_nulls_with_reasons(lake: Lake, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            f"ETH-26JAN24-2200-C,{MS},0,0,0,0.05,2240,2222,0,0",
            f"ETH-26JAN24-2200-P,{MS},0,0,0,0.05,2240,2222,0,0",
            f"ETH-23FEB24-2000-P,{MS},50,3,1,0.05,2260,2222,0,0",
        ],
    )
    import_options(lake, path, venue="deribit")
    q = ChainQuery("deribit", "ETH")
    pcr = pcr_report(lake, q)
    assert pcr["pcr_oi"] is None  # no call OI anywhere
    assert pcr["positioning"] == "unknown"
    notes = [r["note"] for r in pcr["by_expiry"]]
    assert notes == ["no open interest", "no call open interest (puts only)"]
    pains = maxpain_report(lake, q)
    assert [p["max_pain_px"] for p in pains] == [None, 2000.0]
    assert pains[0]["reason"] == "no open interest"
    stored = lake.read("options_snapshot")
    assert stored["bid_price"].null_count() == 3  # Deribit's 0 bid means "no bid"


def test_repeated_snapshots_in_one_file_are_stored_separately(lake: Lake, tmp_path: Path) -> None:
    later = MS + 600_000  # ten minutes later: a second snapshot
    path = _write(
        tmp_path,
        [
            f"ETH-26JAN24-2200-C,{MS},100,1,1,0.05,2240,2222,0,0",
            f"ETH-26JAN24-2200-P,{MS},50,1,1,0.05,2240,2222,0,0",
            f"ETH-26JAN24-2200-C,{later},100,1,1,0.05,2240,2222,0,0",
            f"ETH-26JAN24-2200-P,{later},80,1,1,0.05,2240,2222,0,0",
        ],
    )
    import_options(lake, path, venue="deribit")
    assert lake.read("options_snapshot")["ts"].n_unique() == 2
    q = ChainQuery("deribit", "ETH")
    assert pcr_report(lake, q)["pcr_oi"] == 0.8
    at_first = ChainQuery("deribit", "ETH", at=datetime(2024, 1, 8, 11, 25, tzinfo=UTC))
    assert pcr_report(lake, at_first)["pcr_oi"] == 0.5


def test_json_ticker_responses_are_read_like_the_flattened_csv(lake: Lake, tmp_path: Path) -> None:
    doc = {
        "result": [
            {
                "instrument_name": "BTC-26MAR21-10000-C",
                "timestamp": 1613068625266,
                "open_interest": 120.5,
                "mark_price": 0.79,
                "mark_iv": 124.25,
                "underlying_price": 49653.08,
                "index_price": 47795.22,
                "best_bid_price": 0.0,
                "best_ask_price": 0.8,
                "stats": {"volume": 2.1},
                "greeks": {"delta": 0.99, "gamma": 1e-6, "vega": 1.5, "theta": -2.0},
            }
        ]
    }
    path = tmp_path / "ticker.json"
    path.write_text(json.dumps(doc))
    import_options(lake, path, venue="deribit")
    row = lake.read("options_snapshot").row(0, named=True)
    assert row["instrument"] == "BTC-USD-26MAR21-10000-C"
    assert row["mark_iv"] == pytest.approx(1.2425)
    assert row["volume_contracts"] == 2.1
    assert row["delta"] == 0.99
    assert row["bid_price"] is None
    assert row["expiry_ts"] == datetime(2021, 3, 26, 8, tzinfo=UTC)


def test_wrong_venue_layout_or_missing_store_are_one_clear_error(
    lake: Lake, tmp_path: Path
) -> None:
    path = _write(tmp_path, [f"ETH-26JAN24-2200-C,{MS},100,1,1,0.05,2240,2222,0,0"])
    with pytest.raises(UsageError, match="reads deribit layouts only"):
        import_options(lake, path, venue="okx")
    other = tmp_path / "other.csv"
    other.write_text("symbol,rate\nBTCUSDT,0.0001\n")
    with pytest.raises(DataContractError, match="not a Deribit option chain"):
        import_options(lake, other, venue="deribit")
    with pytest.raises(UsageError, match="no store at .*store"):
        pcr_report(lake, ChainQuery("deribit", "BTC"))
    import_options(lake, path, venue="deribit")
    with pytest.raises(UsageError, match="no options snapshots for deribit BTC"):
        pcr_report(lake, ChainQuery("deribit", "BTC"))
    with pytest.raises(UsageError, match="expiries: 2024-01-26"):
        maxpain_report(lake, ChainQuery("deribit", "ETH", date(2024, 1, 27)))
    per_instrument = defaultdict(int)
    for r in lake.read("options_snapshot").iter_rows(named=True):
        per_instrument[r["instrument"]] += 1
    assert dict(per_instrument) == {"ETH-USD-26JAN24-2200-C": 1}


def test_unusual_report_includes_large_stored_trades(lake: Lake, tmp_path: Path) -> None:
    path = _write(tmp_path, [f"ETH-26JAN24-2600-C,{MS},100,1,1,0.05,2240,2222,0,0"])
    import_options(lake, path, venue="deribit")
    ts = datetime(2024, 1, 8, 11, 0, tzinfo=UTC)
    trades = pl.DataFrame(
        {
            "venue": ["deribit", "deribit"],
            "instrument": ["ETH-USD-26JAN24-2600-C"] * 2,
            "ts": [ts, ts],
            "trade_id": ["1", "2"],
            "side": ["buy", "sell"],
            "qty_contracts": [5000.0, 10.0],
            "notional_usd": [5000 * 2222.0, 10 * 2222.0],  # $11.1M and $22k
            "index_px": [2222.0, 2222.0],
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    lake.ingest("option_trades", trades)
    rows = unusual_report(lake, ChainQuery("deribit", "ETH"), threshold_usd=10e6)
    flagged = [r for r in rows if r["kind"] == "trade"]
    assert len(flagged) == 1
    assert flagged[0]["direction"] == "buy"
    assert flagged[0]["expiry"] == date(2024, 1, 26)
    assert flagged[0]["strike_distance_pct"] == pytest.approx((2600 - 2222) / 2222)


def test_pcr_percentile_against_stored_history(lake: Lake, tmp_path: Path) -> None:
    # six snapshots ten minutes apart; put OI 10..60 against call OI 100: ratios 0.1..0.6
    lines = []
    for i in range(6):
        ms = MS + i * 600_000
        lines.append(f"ETH-26JAN24-2200-C,{ms},100,1,1,0.05,2240,2222,0,0")
        lines.append(f"ETH-26JAN24-2200-P,{ms},{10 * (i + 1)},1,1,0.05,2240,2222,0,0")
    import_options(lake, _write(tmp_path, lines), venue="deribit")
    report = pcr_report(lake, ChainQuery("deribit", "ETH"))
    assert report["pcr_oi"] == pytest.approx(0.6)
    assert report["history_snapshots"] == 5
    # all five earlier ratios (0.1..0.5) are at or below 0.6: the 100th percentile, a high extreme
    assert report["pcr_oi_percentile"] == 1.0
    assert report["extreme"] == "high"
    assert report["reading_basis"].startswith("percentile 1.00")


@pytest.mark.shared_data
def test_since_and_until_bound_the_snapshots_read(lake: Lake) -> None:
    # The ETH book summary is one snapshot at 2024-01-08 11:19:41 UTC.
    import_options(lake, require_shared(ETH), venue="deribit")
    inside = ChainQuery("deribit", "ETH", since=parse_time("1h"), until=parse_time("2024-01-09"))
    assert pcr_report(lake, inside)["chain_ts"] == datetime(
        2024, 1, 8, 11, 19, 41, 429000, tzinfo=UTC
    )
    with pytest.raises(UsageError, match=r"after 2024-01-09 00:00Z; the data ends 2024-01-08"):
        pcr_report(lake, ChainQuery("deribit", "ETH", since=parse_time("2024-01-09")))
    with pytest.raises(UsageError, match=r"before 2024-01-08 00:00Z; the data starts 2024-01-08"):
        pcr_report(lake, ChainQuery("deribit", "ETH", until=parse_time("2024-01-08T00:00Z")))
