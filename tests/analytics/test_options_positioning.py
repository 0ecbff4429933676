"""Options positioning analytics on hand-built chains: golden numbers computed by hand (shown in
comments) and a brute-force max-pain reference checked by hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    snapshot_groups,
)
from perpscope.analytics.options_flow import unusual_oi_changes, unusual_trades, unusual_volume

T0 = datetime(2024, 1, 8, 12, 0, tzinfo=UTC)
E1 = datetime(2024, 1, 26, 8, 0, tzinfo=UTC)
E2 = datetime(2024, 2, 23, 8, 0, tzinfo=UTC)


def _row(
    expiry: datetime,
    strike: float,
    kind: str,
    oi: float,
    vol: float = 0.0,
    ts: datetime = T0,
    index_px: float = 100.0,
) -> dict[str, object]:
    name = f"ETH-USD-{expiry.day}{expiry.strftime('%b').upper()}{expiry:%y}-{strike:g}-{kind}"
    return {
        "instrument": name,
        "ts": ts,
        "expiry_ts": expiry,
        "strike_px": strike,
        "option_type": kind,
        "open_interest_contracts": oi,
        "volume_contracts": vol,
        "contract_size_base": 1.0,
        "index_px": index_px,
        "underlying_px": index_px,
    }


def _frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(rows).with_columns(
        pl.col("ts", "expiry_ts").dt.cast_time_unit("us").dt.convert_time_zone("UTC")
    )


# ----------------------------------------------------------------------------- chain selection


def test_chain_as_of_takes_latest_row_per_instrument_and_drops_expired_at_chain_time() -> None:
    near = T0 + timedelta(hours=1)  # expires between the two snapshots
    later = T0 + timedelta(hours=2)
    snaps = _frame(
        [
            _row(E1, 100, "C", 10, ts=T0),
            _row(E1, 100, "C", 14, ts=later),
            _row(near, 100, "P", 5, ts=T0),  # absent from the later snapshot
        ]
    )
    latest = chain_as_of(snaps)
    assert latest["open_interest_contracts"].to_list() == [14.0]
    assert latest["chain_ts"][0] == later
    # as of the first snapshot, the near option is still live and the old OI is used
    first = chain_as_of(snaps, T0)
    assert sorted(first["open_interest_contracts"].to_list()) == [5.0, 10.0]
    # days to expiry is measured from the snapshot time (1 h), not the wall clock
    assert first.filter(pl.col("option_type") == "P")["days_to_expiry"][0] == pytest.approx(1 / 24)


def test_chain_as_of_before_any_snapshot_is_empty() -> None:
    snaps = _frame([_row(E1, 100, "C", 10)])
    assert chain_as_of(snaps, T0 - timedelta(days=1)).height == 0


def test_snapshot_groups_split_on_pauses_and_take_last_quote_time() -> None:
    ts = pl.Series(
        "ts",
        [T0 + timedelta(seconds=s) for s in (5, 0, 2, 300, 301, 1)],
        dtype=pl.Datetime("us", "UTC"),
    )
    out = snapshot_groups(ts, gap_s=60)
    first, second = T0 + timedelta(seconds=5), T0 + timedelta(seconds=301)
    assert out.to_list() == [first, first, first, second, second, first]


# ----------------------------------------------------------------------------- put/call


def test_put_call_ratios_per_expiry_and_aggregate() -> None:
    chain = _frame(
        [
            _row(E1, 100, "C", 40, vol=10),
            _row(E1, 90, "P", 10, vol=5),
            _row(E1, 110, "P", 20, vol=15),
            _row(E2, 100, "P", 6, vol=0),  # one-sided: puts only
        ]
    )
    by = put_call_ratios(chain)
    assert by["expiry"].to_list() == [E1.date(), E2.date()]
    # E1: puts 30 / calls 40 = 0.75; volume 20 / 10 = 2.0
    assert by["pcr_oi"].to_list() == [0.75, None]
    assert by["pcr_volume"].to_list() == [2.0, None]
    assert by["note"].to_list() == [None, "no call open interest (puts only)"]
    totals = put_call_totals(chain)
    assert totals.pcr_oi == pytest.approx(36 / 40)
    assert totals.pcr_volume == pytest.approx(20 / 10)


def test_put_call_totals_without_calls_is_none_not_nan() -> None:
    totals = put_call_totals(_frame([_row(E1, 100, "P", 5)]))
    assert totals.pcr_oi is None
    assert totals.pcr_volume is None


def test_pcr_history_uses_each_snapshot_and_skips_expired_rows() -> None:
    t1 = T0 + timedelta(hours=1)
    snaps = _frame(
        [
            _row(E1, 100, "C", 10, ts=T0),
            _row(E1, 100, "P", 5, ts=T0),
            _row(E1, 100, "C", 10, ts=t1),
            _row(E1, 100, "P", 20, ts=t1),
            _row(T0, 100, "P", 99, ts=t1),  # expired at t1: ignored
        ]
    )
    assert pcr_history(snaps)["pcr_oi"].to_list() == [0.5, 2.0]


def test_pcr_percentile_and_reading() -> None:
    history = pl.Series([0.5, 0.6, 0.7, 0.8, 0.9])
    assert pcr_percentile(history, 0.65) == pytest.approx(2 / 5)
    assert pcr_percentile(history, 0.65, min_history=6) is None
    assert pcr_percentile(history, None) is None
    high = pcr_reading(1.5, pcr_percentile(history, 1.5))
    assert (high.positioning, high.extreme) == ("bearish", "high")
    assert high.contrarian is not None
    assert "bullish" in high.contrarian
    low = pcr_reading(0.3)  # no history: absolute threshold 0.4
    assert (low.positioning, low.extreme) == ("bullish", "low")
    assert pcr_reading(0.7).contrarian is None
    assert pcr_reading(None).positioning == "unknown"


# ----------------------------------------------------------------------------- max pain


def _hand_chain() -> pl.DataFrame:
    return _frame(
        [
            _row(E1, 90, "C", 2),
            _row(E1, 100, "C", 10),
            _row(E1, 110, "C", 5),
            _row(E1, 90, "P", 4),
            _row(E1, 100, "P", 6),
            _row(E1, 110, "P", 1),
        ]
    )


def test_max_pain_curve_matches_hand_payouts() -> None:
    # S=90:  calls 0;                      puts (100-90)*6 + (110-90)*1 = 80        -> 80
    # S=100: calls (100-90)*2 = 20;        puts (110-100)*1 = 10                    -> 30
    # S=110: calls 20*2 + 10*10 = 140;     puts 0                                   -> 140
    curve = max_pain_curve(_hand_chain())
    assert curve["payout_usd"].to_list() == [80.0, 30.0, 140.0]
    assert curve["call_payout_usd"].to_list() == [0.0, 20.0, 140.0]


def test_max_pain_picks_the_cheapest_strike_with_distance_and_days() -> None:
    chain = chain_as_of(_hand_chain())
    out = max_pain(chain, spot_px=104.0)
    row = out.row(0, named=True)
    assert row["max_pain_px"] == 100.0
    assert row["payout_usd"] == 30.0
    assert row["distance_pct"] == pytest.approx((100 - 104) / 104)
    assert row["days_to_expiry"] == pytest.approx((E1 - T0).total_seconds() / 86400)
    assert row["reason"] is None


@pytest.mark.parametrize(("spot", "expected"), [(108.0, 110.0), (92.0, 90.0), (101.0, 100.0)])
def test_max_pain_ties_go_to_the_strike_nearest_spot(spot: float, expected: float) -> None:
    # call at 110 and put at 90 pay nothing anywhere in [90, 110]: every strike ties at 0
    chain = _frame([_row(E1, 110, "C", 1), _row(E1, 90, "P", 1), _row(E1, 100, "C", 0)])
    assert max_pain(chain, spot)["max_pain_px"][0] == expected


def test_expiry_without_open_interest_has_null_max_pain_with_reason() -> None:
    chain = _frame([_row(E1, 100, "C", 0), _row(E1, 110, "P", 0), _row(E2, 100, "C", 3)])
    out = max_pain(chain, 100.0)
    assert out["max_pain_px"].to_list() == [None, 100.0]
    assert out["reason"].to_list() == ["no open interest", None]
    assert not out["distance_pct"].is_nan().any()


def _brute_force(rows: list[tuple[float, str, float]], spot: float) -> float:
    """Direct double sum over every strike and option: an independent max-pain reference."""
    strikes = sorted({k for k, _, _ in rows})
    pay = {
        s: sum(oi * (max(s - k, 0) if c == "C" else max(k - s, 0)) for k, c, oi in rows)
        for s in strikes
    }
    low = min(pay.values())
    tied = [s for s in strikes if pay[s] <= low + 1e-12 * abs(low)]
    return min(tied, key=lambda s: (abs(s - spot), s))


@settings(max_examples=150)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(1, 40).map(lambda i: i * 250.0),
            st.sampled_from(["C", "P"]),
            st.integers(0, 500).map(float),
        ),
        min_size=1,
        max_size=40,
        unique_by=lambda r: (r[0], r[1]),
    ),
    spot=st.floats(100.0, 11_000.0),
)
def test_max_pain_equals_brute_force(rows: list[tuple[float, str, float]], spot: float) -> None:
    chain = _frame([_row(E1, k, c, oi) for k, c, oi in rows])
    out = max_pain(chain, spot)
    if sum(oi for _, _, oi in rows) == 0:
        assert out["max_pain_px"][0] is None
    else:
        assert out["max_pain_px"][0] == _brute_force(rows, spot)


# ----------------------------------------------------------------------------- OI walls


def test_oi_walls_in_contracts_and_usd() -> None:
    walls = oi_walls(_hand_chain(), spot_px=2000.0)
    row = walls.filter(pl.col("strike_px") == 100).row(0, named=True)
    assert (row["call_oi_contracts"], row["put_oi_contracts"], row["oi_contracts"]) == (10, 6, 16)
    assert row["oi_usd"] == 16 * 2000.0
    # expiry total 28 contracts: this strike holds 16/28
    assert row["share_of_expiry"] == pytest.approx(16 / 28)
    no_spot = oi_walls(_hand_chain(), spot_px=None)
    assert no_spot["oi_usd"].null_count() == no_spot.height


# ----------------------------------------------------------------------------- unusual


def test_unusual_oi_changes_flags_large_changes_only() -> None:
    t1 = T0 + timedelta(minutes=7)
    snaps = _frame(
        [
            _row(E1, 3000, "C", 100, ts=T0, index_px=50_000),
            _row(E1, 3000, "C", 400, ts=t1, index_px=50_000),  # +300 x 50,000 = $15M
            _row(E1, 2000, "P", 100, ts=T0, index_px=50_000),
            _row(E1, 2000, "P", 50, ts=t1, index_px=50_000),  # -50 x 50,000 = $2.5M
        ]
    )
    out = unusual_oi_changes(snaps, threshold_usd=10e6)
    assert out.height == 1
    row = out.row(0, named=True)
    assert row["notional_usd"] == 15e6
    assert (row["direction"], row["contracts"], row["kind"]) == ("opened", 300.0, "oi_change")
    assert row["strike_distance_pct"] == pytest.approx((3000 - 50_000) / 50_000)
    assert unusual_oi_changes(snaps, threshold_usd=1e6).height == 2


def test_unusual_volume_flags_turnover_above_oi() -> None:
    chain = chain_as_of(_frame([_row(E1, 100, "C", 10, vol=25), _row(E1, 110, "C", 100, vol=5)]))
    out = unusual_volume(chain, spot_px=50_000.0, min_ratio=1.0, min_notional_usd=1e6)
    # 25 contracts x $50,000 = $1.25M, volume/OI 2.5; the other strike turns over 5%
    assert out["instrument"].to_list() == [chain["instrument"][0]]
    assert out["volume_oi_ratio"][0] == 2.5
    assert unusual_volume(chain, spot_px=None).height == 0


def test_unusual_trades_by_notional_and_by_size_against_typical() -> None:
    inst = "BTC-USD-26JAN24-60000-C"
    meta = pl.DataFrame(
        {"instrument": [inst], "expiry_ts": [E1], "strike_px": [60_000.0], "option_type": ["C"]}
    ).with_columns(pl.col("expiry_ts").dt.cast_time_unit("us"))
    qty = [1.0, 1.0, 2.0, 1.0, 25.0, 300.0]
    trades = pl.DataFrame(
        {
            "instrument": [inst] * 6,
            "ts": [T0 + timedelta(minutes=i) for i in range(6)],
            "side": ["buy", "sell", "buy", "buy", "buy", "buy"],
            "qty_contracts": qty,
            "notional_usd": [q * 50_000 for q in qty],
            "index_px": [50_000.0] * 6,
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    out = unusual_trades(trades, meta, threshold_usd=10e6, size_multiple=10, min_trades=5)
    # 300 x 50,000 = $15M >= $10M; 25 contracts = 16.7x the median of 1.5
    assert out["contracts"].to_list() == [300.0, 25.0]
    assert out["reason"][0].startswith("notional")
    assert out["size_multiple"][1] == pytest.approx(25 / 1.5)
    assert out["direction"].to_list() == ["buy", "buy"]
    assert out["strike_distance_pct"][0] == pytest.approx(0.2)  # "strike 20% above"


def test_max_pain_and_ratios_accept_other_time_units() -> None:
    chain = _hand_chain()
    as_ms = chain.with_columns(pl.col("expiry_ts").dt.cast_time_unit("ms"))
    assert max_pain(as_ms, 104.0)["max_pain_px"].to_list() == [100.0]
    assert max_pain(as_ms, 104.0)["expiry_ts"].to_list() == [E1]
    assert put_call_ratios(as_ms)["expiry"].to_list() == [E1.date()]
