"""The ground-truth table reads in the order things happened (``seq``) and says who has no
liquidation price (the market maker), on short runs of several seeds."""

from __future__ import annotations

import polars as pl
import pytest

from perpscope.sim import SimConfig, run_simulation

_ORDER = {"open": 0, "change": 1, "close": 2, "liquidated": 2, "adl": 2}


@pytest.fixture(scope="module")
def runs() -> list[pl.DataFrame]:
    return [run_simulation(SimConfig(seed=s, days=7)).tables["sim_positions"] for s in (1, 2)]


def test_seq_numbers_every_event_once_in_time_order(runs: list[pl.DataFrame]) -> None:
    for pos in runs:
        assert pos["seq"].n_unique() == pos.height
        assert pos["seq"].is_sorted()
        assert pos["ts"].is_sorted()  # the table comes sorted by (ts, seq)


def test_within_a_timestamp_open_comes_before_change_before_close(
    runs: list[pl.DataFrame],
) -> None:
    for pos in runs:
        rank = pos.with_columns(r=pl.col("event").replace_strict(_ORDER, return_dtype=pl.Int8))
        per_pos = rank.sort("seq").group_by("venue", "instrument", "position_id").agg("r", "ts")
        for r, ts in zip(per_pos["r"].to_list(), per_pos["ts"].to_list(), strict=True):
            # each position: events in time order, and ranks never go backwards within a ts
            assert ts == sorted(ts)
            pairs = zip(ts, ts[1:], r, r[1:], strict=False)
            assert all(not (t0 == t1 and r0 > r1) for t0, t1, r0, r1 in pairs)


@pytest.mark.slow
def test_last_row_by_ts_seq_gives_the_true_open_count(
    default_run: dict[str, pl.DataFrame],
) -> None:
    # The 90-day run: long enough that some positions open and close in the same step.
    for pos in [default_run["sim_positions"]]:
        same = pos.group_by("venue", "instrument", "position_id", "ts").agg(pl.len())
        assert (same["len"] > 1).sum() > 0
        # Truth without any ordering: a position is open at the end iff it has no terminal event.
        ended = pos.filter(pl.col("event").is_in(["close", "liquidated", "adl"]))
        ids = pos.select("venue", "instrument", "position_id").unique()
        truly_open = ids.join(ended, on=["venue", "instrument", "position_id"], how="anti").height
        last = (
            pos.sort("ts", "seq")
            .group_by("venue", "instrument", "position_id")
            .agg(pl.col("event").last())
        )
        assert last.filter(pl.col("event").is_in(["open", "change"])).height == truly_open
        # The alphabetical order (the old bug) gets it wrong on the same data.
        wrong = (
            pos.sort("ts", "event")
            .group_by("venue", "instrument", "position_id")
            .agg(pl.col("event").last())
        )
        assert wrong.filter(pl.col("event").is_in(["open", "change"])).height > truly_open


def test_only_the_market_maker_has_no_liquidation_price(runs: list[pl.DataFrame]) -> None:
    for pos in runs:
        mm = pos.filter(agent="market_maker")
        traders = pos.filter(pl.col("agent") != "market_maker")
        assert mm.height > 0
        assert traders.height > 0
        assert mm["liquidation_px"].null_count() == mm.height
        assert traders["liquidation_px"].null_count() == 0
