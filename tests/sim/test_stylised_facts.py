"""Stylised facts of the 90-day default run, read from its output tables."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tests.sim.helpers import (
    cascade_bars,
    cascade_hours,
    excess_kurtosis,
    hourly_returns,
    rate_8h,
)

pytestmark = pytest.mark.slow

PERPS = [("sim1", f"{a}-USDT-PERP") for a in ("BTC", "ETH", "SOL")]


@pytest.mark.parametrize(("venue", "instrument"), PERPS)
def test_hourly_returns_are_fat_tailed_and_volatility_clusters(
    default_run: dict[str, pl.DataFrame], venue: str, instrument: str
) -> None:
    r = hourly_returns(default_run, venue, instrument)
    assert r.size == 90 * 24 - 1
    assert excess_kurtosis(r) > 3.0
    a = np.abs(r)
    assert np.corrcoef(a[1:], a[:-1])[0, 1] > 0.1


def test_funding_sits_at_the_interest_rate_with_excursions_both_ways(
    default_run: dict[str, pl.DataFrame],
) -> None:
    r8 = rate_8h(default_run["funding"])["r8"].to_numpy()
    # The formula returns exactly 0.01% per 8h whenever |premium - interest| <= 0.05%: that
    # happens at a share of settlements inside issue 11's band (real: 43% on Binance 2020-23).
    base = np.mean(np.abs(r8 - 0.0001) < 1e-9)
    assert 0.2 <= base <= 0.65, base
    assert (r8 > 0.0005).sum() >= 5
    assert (r8 < -0.0005).sum() >= 5


def test_at_least_ten_thousand_positions_open(default_run: dict[str, pl.DataFrame]) -> None:
    pos = default_run["sim_positions"]
    traders = pos.filter(pl.col("event") == "open", pl.col("agent") != "market_maker")
    assert traders["position_id"].n_unique() >= 10_000
    assert set(traders["agent"].unique()) == {
        "trend_follower",
        "mean_reverter",
        "noise_trader",
        "position_trader",
    }
    # Fast traders draw 5x-100x and size it to the asset's swings (lev_vol_ref 0.8, rounded half
    # up), by hand: BTC 5 x 0.8 = 4x .. 100 x 0.8 = 80x; ETH (1.25 x BTC's volatility) 5 x 0.64
    # = 3.2 -> 3x .. 64x; SOL (1.6x) 5 x 0.5 = 2.5 -> 3x .. 50x.
    fast = traders.filter(pl.col("agent") != "position_trader")
    span = fast.group_by(pl.col("instrument").str.head(3).alias("asset")).agg(
        lo=pl.col("leverage").min(), hi=pl.col("leverage").max()
    )
    assert sorted(span.iter_rows()) == [("BTC", 4.0, 80.0), ("ETH", 3.0, 64.0), ("SOL", 3.0, 50.0)]
    # the default market's slow money: 12% of openers, all at 2x, held about 8 times as long
    slow = traders.filter(agent="position_trader")
    assert slow["leverage"].unique().to_list() == [2.0]
    assert 0.1 <= slow["position_id"].n_unique() / traders["position_id"].n_unique() <= 0.3


def _hourly_oi_change(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    # OI rows are stamped at the hour's end: the change over the hour starting at ts - 1h.
    return (
        tables["open_interest"]
        .sort("ts")
        .with_columns(
            d_oi=pl.col("oi_base").diff().over("venue", "instrument"),
            hour=pl.col("ts") - pl.duration(hours=1),
        )
        .drop_nulls("d_oi")
    )


def test_oi_rises_with_openings_and_falls_in_cascades(
    default_run: dict[str, pl.DataFrame],
) -> None:
    oi = _hourly_oi_change(default_run)
    opened = (
        default_run["sim_positions"]
        .filter(pl.col("event") == "open", pl.col("agent") != "market_maker")
        .group_by("venue", "instrument", pl.col("ts").dt.truncate("1h").alias("hour"))
        .agg(pl.col("qty_base").sum().alias("opened"))
    )
    liquidated = (
        default_run["liquidations"]
        .select("venue", "instrument", pl.col("ts").dt.truncate("1h").alias("hour"))
        .unique()
    )
    j = (
        oi.join(opened, on=["venue", "instrument", "hour"], how="left")
        .fill_null(0.0)
        .join(liquidated, on=["venue", "instrument", "hour"], how="anti")
    )
    for _, g in j.group_by("venue", "instrument"):
        # In hours without liquidations (the cascade hours are checked below: there OI falls
        # while knife-catchers still open), an hour's openings are a few percent of OI and its
        # closes about as large, so the correlation is moderate: 0.36-0.48 on every market of
        # seeds 7, 11 and 23. Over all hours it is 0.04-0.16: a few cascade hours dominate it.
        assert g.height > 1000
        assert np.corrcoef(g["d_oi"], g["opened"])[0, 1] > 0.25
    # Cascade hours: the 30 with the most liquidated notional among those whose liquidations
    # reached 2% of the market's OI at the hour's start. The calibrated default market has few
    # hours of large liquidations (issue 11's band: at most one at 5% of OI per market per 30
    # days), so a quiet 90 days has fewer than 30 of them (seed 7: 8; seed 11: 27), and the
    # hours below 2% are stray liquidations that move OI little either way.
    oi_start = default_run["open_interest"].select(
        "venue", "instrument", pl.col("ts").alias("hour"), "oi_usd"
    )
    cascades = (
        cascade_hours(default_run, default_run["liquidations"].height)
        .join(oi_start, on=["venue", "instrument", "hour"])
        .filter(pl.col("liq_usd") >= 0.02 * pl.col("oi_usd"))
        .sort("liq_usd", "venue", "instrument", "hour", descending=True)
        .head(30)
        .join(oi, on=["venue", "instrument", "hour"])
    )
    assert cascades.height >= 5
    # OI falls when the liquidated side's counterparty (the market maker) is closing too, which
    # is the case whenever the crowd is one-sided: most, not all, cascade hours.
    assert (cascades["d_oi"] < 0).mean() >= 0.7
    assert (cascades["d_oi"] / cascades["oi_base"]).median() < -0.05


def test_cascade_hours_are_climax_volume_bars(
    default_run: dict[str, pl.DataFrame],
) -> None:
    bars = (
        default_run["ohlcv"]
        .filter(pl.col("instrument").str.ends_with("-PERP"), kind="trade")
        .sort("ts")
        .with_columns(
            avg20=pl.col("volume").rolling_mean(20).shift(1).over("venue", "instrument"),
        )
        .rename({"ts": "hour"})
    )
    top = cascade_hours(default_run, 10).join(bars, on=["venue", "instrument", "hour"])
    # Climax: volume a multiple of its trailing 20-hour average (the playbook's 5-10x at the
    # largest ones).
    ratio = top["volume"] / top["avg20"]
    assert ratio.median() > 2.5
    assert ratio.max() > 5.0


def test_cascades_reverse_within_the_same_or_next_bar(default_run: dict[str, pl.DataFrame]) -> None:
    # The playbook: the reversal from a climax "often retraces 50-70% of the cascade move within
    # the same or next candle". Retraced share = best recovery (this bar's close or the next
    # bar's extreme) from the cascade bar's extreme, over the bar's move from its open.
    bars = (
        default_run["ohlcv"]
        .filter(pl.col("instrument").str.ends_with("-PERP"), kind="trade")
        .sort("ts")
        .with_columns(
            nh=pl.col("h").shift(-1).over("venue", "instrument"),
            nl=pl.col("l").shift(-1).over("venue", "instrument"),
        )
        .rename({"ts": "hour"})
    )
    top = cascade_hours(default_run, 10).join(bars, on=["venue", "instrument", "hour"])
    retraced = (
        pl.when(pl.col("long_usd") > pl.col("short_usd"))
        .then((pl.max_horizontal("c", "nh") - pl.col("l")) / (pl.col("o") - pl.col("l")))
        .otherwise((pl.col("h") - pl.min_horizontal("c", "nl")) / (pl.col("h") - pl.col("o")))
    )
    assert top.height == 10
    assert top.select(retraced.median()).item() > 0.5


def _perp_bars(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return (
        tables["ohlcv"]
        .filter(pl.col("instrument").str.ends_with("-PERP"), kind="trade")
        .sort("ts")
        .with_columns(
            avg20=pl.col("volume").rolling_mean(20).shift(1).over("venue", "instrument"),
        )
        .rename({"ts": "hour"})
    )


def test_most_cascade_bars_have_a_reversal_wick_and_climax_volume(
    default_run: dict[str, pl.DataFrame],
) -> None:
    # The playbook's climax: "a high-volume spike candle with an extended wick" where forced
    # orders were absorbed, "a volume spike that is 5-10x the trailing hourly average" and "an
    # immediate reversal candle (long lower wick for a sell cascade, long upper wick for a buy
    # cascade)". Cascade bars as defined in helpers.cascade_bars (one per cascade: its hour
    # with the most liquidated notional), the 20 largest of the run among the cascades whose
    # hours each liquidated 2% of OI or more: the calibrated default market has few large
    # cascades (issue 11: at most one hour at 5% of OI per market per 30 days), and in a quiet
    # 90 days (seed 7: 8 such cascades) the 20 largest at 1% were mostly stray liquidations of
    # 1-2% of OI, no climax at all.
    top = cascade_bars(default_run, 20, min_oi_share=0.02).join(
        _perp_bars(default_run), on=["venue", "instrument", "hour"]
    )
    assert top.height >= 5
    # Reversal wick: the share of the bar's range by which the close sits back from the
    # extreme the cascade drove it to (from the low for a sell cascade, the high for a buy
    # cascade). 30% is a visible wick: a close in the middle third of the range or beyond,
    # not a bar that closes at its extreme (a hammer's wick is 2/3 of the range; the existing
    # reversal test reads the 50-70% retrace over this bar and the next).
    sell = pl.col("long_usd") > pl.col("short_usd")
    wick = top.select(
        pl.when(sell)
        .then((pl.col("c") - pl.col("l")) / (pl.col("h") - pl.col("l")))
        .otherwise((pl.col("h") - pl.col("c")) / (pl.col("h") - pl.col("l")))
    ).to_series()
    # At least half of them, on every seed checked: the share is 50-75% over seeds (the
    # figures per seed are in docs/simulator.md); the playbook says "often", not "always".
    assert (wick >= 0.3).mean() >= 0.5
    # Not only the perp book's own bounce: the index (spot) bar of the same hour reverses too.
    index = top.select("venue", "instrument", "hour", "long_usd", "short_usd").join(
        default_run["ohlcv"].filter(kind="index").rename({"ts": "hour"}),
        on=["venue", "instrument", "hour"],
    )
    index_wick = index.select(
        pl.when(sell)
        .then((pl.col("c") - pl.col("l")) / (pl.col("h") - pl.col("l")))
        .otherwise((pl.col("h") - pl.col("c")) / (pl.col("h") - pl.col("l")))
    ).to_series()
    assert index.height == top.height
    assert (index_wick >= 0.3).mean() >= 0.5
    # Climax volume: at least 5x the average of the 20 bars before it, for at least half of
    # them, and the median cascade bar a 5x climax.
    ratio = top["volume"] / top["avg20"]
    assert (ratio >= 5.0).mean() >= 0.5
    assert ratio.median() >= 5.0


def test_forced_orders_are_counted_in_traded_volume(default_run: dict[str, pl.DataFrame]) -> None:
    # Every liquidation is a market order on the perp: a bar's volume is at least the base
    # quantity liquidated in its hour (the rest is the traders' own orders).
    liq = (
        default_run["liquidations"]
        .group_by("venue", "instrument", pl.col("ts").dt.truncate("1h").alias("hour"))
        .agg(pl.col("qty_base").sum().alias("liq_base"))
    )
    j = liq.join(_perp_bars(default_run), on=["venue", "instrument", "hour"], how="left")
    assert j["volume"].null_count() == 0
    assert (j["volume"] >= j["liq_base"] * (1 - 1e-12)).all()
