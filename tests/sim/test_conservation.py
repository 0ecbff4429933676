"""Conservation on the 90-day default run: liquidations, OI and funding add up."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tests.sim.helpers import open_book

pytestmark = pytest.mark.slow


def test_every_liquidation_is_a_ground_truth_position_whose_price_the_mark_crossed(
    default_run: dict[str, pl.DataFrame],
) -> None:
    liq = default_run["liquidations"]
    pos = default_run["sim_positions"]
    assert liq.height > 100
    opened = pos.filter(event="open").select(
        "venue", "instrument", "position_id", pl.col("qty_base").alias("open_qty"), "side",
        "liquidation_px",
    )  # fmt: skip
    ended = pos.filter(event="liquidated").select("venue", "instrument", "position_id", "ts")
    mark = (
        default_run["ohlcv"]
        .filter(kind="mark")
        .select("venue", "instrument", pl.col("ts").alias("hour"), "h", "l")
    )
    j = (
        liq.with_columns(position_id=pl.col("event_id").str.strip_prefix("sim-").cast(pl.Int64))
        .join(ended, on=["venue", "instrument", "position_id", "ts"], how="left", coalesce=False)
        .join(opened, on=["venue", "instrument", "position_id"], how="left", suffix="_pos")
        .with_columns(hour=pl.col("ts").dt.truncate("1h"))
        .join(mark, on=["venue", "instrument", "hour"], how="left")
    )
    assert j["ts_right"].null_count() == 0, "a liquidation without its ground-truth event"
    assert j["side"].to_list() == j["side_pos"].to_list()
    np.testing.assert_allclose(j["qty_base"], j["open_qty"], rtol=1e-12)
    longs = j.filter(side="long")
    shorts = j.filter(side="short")
    assert (longs["l"] <= longs["liquidation_px"] * (1 + 1e-12)).all()
    assert (shorts["h"] >= shorts["liquidation_px"] * (1 - 1e-12)).all()
    assert ended.height == liq.height


def _bisect_liquidation_px(
    side: int, entry: float, qty: float, leverage: float, tiers: list[tuple[float, ...]]
) -> float:
    """Independent of the risk module: the price where isolated equity meets maintenance.

    Equity at price ``p`` is ``margin + side x qty x (p - entry)`` with margin = notional /
    leverage; maintenance is ``qty x p x mmr - maint_amount`` of the tier holding the notional
    ``qty x p`` (as published in ``leverage_tiers``). Equity minus maintenance is monotone in
    ``p`` (towards the liquidation side), so bisection finds the single root.
    """
    margin = qty * entry / leverage

    def gap(p: float) -> float:
        n = qty * p
        _, _, mmr, cum = next(t for t in tiers if t[0] <= n < t[1])
        return margin + side * qty * (p - entry) - (n * mmr - cum)

    lo, hi = (1e-9 * entry, entry) if side > 0 else (entry, 10.0 * entry)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        # long: gap < 0 below the root; short: gap < 0 above it
        if (gap(mid) < 0) == (side > 0):
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def test_liquidation_prices_solve_the_margin_equation_on_the_published_tiers(
    default_run: dict[str, pl.DataFrame],
) -> None:
    # Independent path: the tiers as published in the leverage_tiers table and a bisection root
    # of "equity = maintenance margin" written here, not the risk module's closed form.
    tiers_rows = default_run["leverage_tiers"].filter(venue="sim1", instrument="BTC-USDT-PERP")
    tiers = [
        (r["notional_floor_usd"], r["notional_cap_usd"], r["mmr"], r["maint_amount_usd"])
        for r in tiers_rows.sort("tier").iter_rows(named=True)
    ]
    opened = default_run["sim_positions"].filter(pl.col("event") == "open")
    sample = pl.concat(
        [
            opened.filter(agent="noise_trader").sample(200, seed=1),
            # the largest positions reach the higher tiers, where the maintenance amount matters
            opened.filter(pl.col("agent") != "market_maker").sort("notional_usd").tail(100),
        ]
    )
    for r in sample.iter_rows(named=True):
        side = 1 if r["side"] == "long" else -1
        want = _bisect_liquidation_px(side, r["entry_px"], r["qty_base"], r["leverage"], tiers)
        assert r["liquidation_px"] == pytest.approx(want, rel=1e-9)
        assert r["margin_usd"] == pytest.approx(r["notional_usd"] / r["leverage"], rel=1e-12)


def test_oi_equals_the_open_positions_on_each_side(default_run: dict[str, pl.DataFrame]) -> None:
    oi = default_run["open_interest"]
    pos = default_run["sim_positions"]
    stamps = oi["ts"].unique().sort().gather_every(97)
    for ts in stamps:
        book = open_book(pos, ts)
        sides = book.group_by("venue", "instrument", "side").agg(pl.col("qty_base").sum())
        wide = sides.pivot("side", index=["venue", "instrument"], values="qty_base")
        j = oi.filter(ts=ts).join(wide, on=["venue", "instrument"], how="left").fill_null(0.0)
        np.testing.assert_allclose(j["oi_base"], j["long"], rtol=1e-9)
        np.testing.assert_allclose(j["long"], j["short"], rtol=1e-9)


def test_funding_paid_equals_funding_received(default_run: dict[str, pl.DataFrame]) -> None:
    funding = default_run["funding"]
    pos = default_run["sim_positions"]
    for ts in funding["ts"].unique().sort().gather_every(23):
        book = open_book(pos, ts)
        f = funding.filter(ts=ts)
        pay = book.join(f, on=["venue", "instrument"]).with_columns(
            usd=pl.col("qty_base") * pl.col("mark_px") * pl.col("rate")
        )
        assert pay.height > 0
        by_side = pay.group_by("venue", "instrument", "side").agg(pl.col("usd").sum())
        wide = by_side.pivot("side", index=["venue", "instrument"], values="usd")
        np.testing.assert_allclose(wide["long"], wide["short"], rtol=1e-9, atol=1e-9)


def test_closed_positions_paid_the_funding_of_every_settlement_they_held(
    default_run: dict[str, pl.DataFrame],
) -> None:
    # Independent recomputation: side x qty x mark x rate over settlements in (open, close].
    pos = default_run["sim_positions"].filter(pl.col("agent") != "market_maker")
    opened = pos.filter(event="open").select(
        "venue", "instrument", "position_id", "side", "qty_base", pl.col("ts").alias("t0")
    )
    closed = pos.filter(pl.col("event").is_in(["close", "liquidated", "adl"])).select(
        "venue", "instrument", "position_id", pl.col("ts").alias("t1"), "funding_paid_usd"
    )
    life = opened.join(closed, on=["venue", "instrument", "position_id"]).sample(400, seed=3)
    paid = (
        life.join(default_run["funding"], on=["venue", "instrument"])
        .filter(pl.col("ts") > pl.col("t0"), pl.col("ts") <= pl.col("t1"))
        .group_by("position_id")
        .agg(
            (
                pl.when(pl.col("side") == "long").then(1.0).otherwise(-1.0)
                * pl.col("qty_base")
                * pl.col("mark_px")
                * pl.col("rate")
            )
            .sum()
            .alias("expected")
        )  # fmt: skip
    )
    j = life.join(paid, on="position_id", how="left").fill_null(0.0)
    assert (j["expected"] != 0).sum() > 50
    np.testing.assert_allclose(j["funding_paid_usd"], j["expected"], rtol=1e-9, atol=1e-6)


def test_no_position_outlived_a_mark_that_crossed_its_liquidation_price(
    default_run: dict[str, pl.DataFrame],
) -> None:
    # Every mark price a bar shows was checked against the open positions, so a position still
    # open (or closed by its owner) never saw a mark bar beyond its liquidation price in the
    # hours strictly between its opening hour and its closing hour.
    pos = default_run["sim_positions"].filter(pl.col("agent") != "market_maker")
    opened = pos.filter(event="open").select(
        "venue", "instrument", "position_id", "side", "liquidation_px",
        pl.col("ts").dt.truncate("1h").alias("h0"),
    )  # fmt: skip
    ends = pos.filter(pl.col("event").is_in(["close", "liquidated", "adl"])).select(
        "venue", "instrument", "position_id", "event", pl.col("ts").dt.truncate("1h").alias("h1")
    )
    life = (
        opened.join(ends, on=["venue", "instrument", "position_id"], how="left")
        .filter(pl.col("event").is_null() | pl.col("event").is_in(["close", "adl"]))
        .drop_nulls("liquidation_px")
        .sample(3000, seed=5)
    )
    mark = (
        default_run["ohlcv"]
        .filter(kind="mark")
        .select("venue", "instrument", pl.col("ts").alias("hour"), "h", "l")
    )
    seen = life.join(mark, on=["venue", "instrument"]).filter(
        pl.col("hour") > pl.col("h0"),
        pl.col("h1").is_null() | (pl.col("hour") < pl.col("h1")),
    )
    assert seen.height > 10_000
    crossed = seen.filter(
        pl.when(pl.col("side") == "long")
        .then(pl.col("l") <= pl.col("liquidation_px"))
        .otherwise(pl.col("h") >= pl.col("liquidation_px"))
    )
    assert crossed.height == 0, crossed.head()
