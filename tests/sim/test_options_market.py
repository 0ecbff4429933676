"""The simulated options market, checked on its output tables only.

Every expected value is rebuilt here from the stored rows, independently of ``sim/options.py``:
put-call parity from the stored prices and forwards (rate 0: Deribit's, and the simulator's), open
interest from the traders' positions rebuilt out of ``option_trades`` (each position's opening
and closing trade, linked by ``sim_option_positions.trade_id``), settlement values from the
index candles, trade IVs by perpscope's own Black-76 inversion (``analytics.black76``, a
different implementation from the simulator's).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from perpscope.analytics.black76 import implied_vol
from perpscope.domain.symbols import InstrumentKind, parse_instrument
from perpscope.sim import PRESETS, SimConfig, run_simulation

DAYS = 30
CONFIG = SimConfig(seed=7, days=DAYS)  # the demo's market
YEAR_US = 365.0 * 86_400e6


@pytest.fixture(scope="module")
def run() -> dict[str, pl.DataFrame]:
    return run_simulation(CONFIG).tables


@pytest.fixture(scope="module")
def live(run: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Chain rows of live options (the settlement rows, at expiry, left out)."""
    snap = run["options_snapshot"]
    return snap.filter(pl.col("expiry_ts") > pl.col("ts")).with_columns(
        ((pl.col("expiry_ts") - pl.col("ts")).dt.total_microseconds() / YEAR_US).alias("t")
    )


def test_options_are_listed_on_sim1_for_btc_and_eth_with_deribit_names(
    run: dict[str, pl.DataFrame],
) -> None:
    snap = run["options_snapshot"]
    assert set(snap["venue"].unique()) == {"sim1"}
    assert set(snap["underlying"].unique()) == {"BTC", "ETH"}  # no SOL options (as on Deribit)
    assert snap["price_currency"].to_list() == snap["underlying"].to_list()  # coin-quoted
    rows = snap.unique("instrument")
    for r in rows.iter_rows(named=True):
        inst = parse_instrument(r["instrument"])
        assert inst.kind is InstrumentKind.OPTION
        assert inst.base == r["underlying"]
        assert inst.expiry == r["expiry_ts"].date()
        assert float(inst.strike or 0) == r["strike_px"]
        assert inst.right is not None
        assert inst.right.value == r["option_type"]
    # expiries at 08:00 UTC, dailies and Friday weeklies among them
    expiries = snap["expiry_ts"].unique()
    assert (expiries.dt.hour() == 8).all()
    assert (expiries.dt.minute() == 0).all()
    assert (expiries.dt.weekday() == 5).sum() >= 3  # Fridays (polars: Monday = 1)
    assert (expiries.dt.weekday() != 5).sum() >= DAYS // 2  # dailies


def test_put_call_parity_holds_on_quoted_marks_and_mids(live: pl.DataFrame) -> None:
    usd = pl.col("underlying_px")
    pairs = live.with_columns(
        (pl.col("mark_price") * usd).alias("mark_usd"),
        ((pl.col("bid_price") + pl.col("ask_price")) / 2 * usd).alias("mid_usd"),
    ).pivot(
        on="option_type",
        index=["ts", "underlying", "expiry_ts", "strike_px", "underlying_px", "t"],
        values=["mark_usd", "mid_usd"],
    )
    rate = 0.0
    df = np.exp(-rate * pairs["t"].to_numpy())
    fwd, strike = pairs["underlying_px"].to_numpy(), pairs["strike_px"].to_numpy()
    expected = df * (fwd - strike)
    assert pairs.height == live.height // 2  # every strike quotes a call and a put
    for side in ("mark_usd", "mid_usd"):
        gap = pairs[f"{side}_C"].to_numpy() - pairs[f"{side}_P"].to_numpy() - expected
        quoted = np.isfinite(gap)  # a far wing worth nothing has no bid and ask, so no mid
        assert quoted.mean() > (0.99 if side == "mark_usd" else 0.8), side
        assert np.abs(gap[quoted]).max() <= 1e-9 * fwd.max(), side
    # the quotes around the mark: bid below, ask above, bid positive; only a worthless far wing
    # (its price below a billionth of the coin) goes unquoted
    quoted = live.filter(pl.col("bid_price").is_not_null())
    assert quoted.height >= 0.9 * live.height
    assert (live.filter(pl.col("bid_price").is_null())["mark_price"] <= 1e-10).all()
    assert (quoted["bid_price"] > 0).all()
    assert (quoted["bid_price"] < quoted["mark_price"]).all()
    assert (quoted["ask_price"] > quoted["mark_price"]).all()


def _positions(run: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """Each position with its opening and closing trade (from ``option_trades``) or settlement."""
    trades = run["option_trades"]
    ev = run["sim_option_positions"]
    linked = ev.filter(pl.col("event") != "settled").join(
        trades.select(
            "trade_id",
            pl.col("ts").alias("trade_ts"),
            pl.col("side").alias("taker"),
            pl.col("qty_contracts").alias("trade_qty"),
            pl.col("instrument").alias("trade_instrument"),
        ),
        on="trade_id",
        how="left",
    )
    # every open and close is a trade of the same instrument and size, the taker buying to open a
    # long or close a short
    assert linked["trade_ts"].null_count() == 0
    assert (linked["trade_instrument"] == linked["instrument"]).all()
    assert (linked["trade_qty"] == linked["qty_contracts"]).all()
    assert (linked["trade_ts"] == linked["ts"]).all()
    buys = (linked["side"] == "long") == (linked["event"] == "open")
    assert ((linked["taker"] == "buy") == buys).all()
    # every trade is one position event
    assert linked.height == run["option_trades"].height
    opened = linked.filter(pl.col("event") == "open").select(
        "position_id", "instrument", "side", "qty_contracts", pl.col("trade_ts").alias("open_ts")
    )
    ended = pl.concat(
        [
            linked.filter(pl.col("event") == "close").select(
                "position_id", pl.col("trade_ts").alias("end_ts")
            ),
            ev.filter(pl.col("event") == "settled").select(
                "position_id", pl.col("ts").alias("end_ts")
            ),
        ]
    )
    assert ended["position_id"].n_unique() == ended.height  # closed or settled once
    return opened.join(ended, on="position_id", how="left")


def test_open_interest_is_the_sum_of_open_positions_rebuilt_from_trades(
    run: dict[str, pl.DataFrame], live: pl.DataFrame
) -> None:
    pos = _positions(run)
    snap = live.select("ts", "instrument", "open_interest_contracts")
    alive = (
        snap.join(pos, on="instrument", how="inner")
        .filter(
            (pl.col("open_ts") <= pl.col("ts"))
            & (pl.col("end_ts").is_null() | (pl.col("end_ts") > pl.col("ts")))
        )
        .group_by("ts", "instrument")
        .agg(
            pl.col("qty_contracts").filter(pl.col("side") == "long").sum().alias("longs"),
            pl.col("qty_contracts").filter(pl.col("side") == "short").sum().alias("shorts"),
        )
    )
    got = snap.join(alive, on=["ts", "instrument"], how="left").fill_null(0.0)
    # the market maker holds the traders' net (it is the other side of every trade), so the
    # long contracts of all accounts (= the short ones) are the larger of the traders' two sides
    expected = np.maximum(got["longs"].to_numpy(), got["shorts"].to_numpy())
    oi = got["open_interest_contracts"].to_numpy()
    np.testing.assert_allclose(oi, expected, rtol=0, atol=1e-6)
    assert oi.max() > 0
    assert (oi > 0).mean() > 0.1  # OI spread over many instruments and hours, not a few
    # the 24h volume is the traded contracts of the 24 hours up to each snapshot (checked on the
    # latest snapshot)
    last = snap["ts"].max()
    trades = run["option_trades"].filter(
        (pl.col("ts") > last - timedelta(hours=24)) & (pl.col("ts") <= last)
    )
    vol = trades.group_by("instrument").agg(pl.col("qty_contracts").sum().alias("v"))
    chain = live.filter(pl.col("ts") == last).join(vol, on="instrument", how="left")
    np.testing.assert_allclose(
        chain["volume_contracts"].to_numpy(), chain["v"].fill_null(0.0).to_numpy(), atol=1e-6
    )


def test_options_settle_at_the_index_at_expiry_and_open_interest_goes_to_zero(
    run: dict[str, pl.DataFrame],
) -> None:
    snap = run["options_snapshot"]
    settle = snap.filter(pl.col("ts") == pl.col("expiry_ts"))
    assert settle["expiry_ts"].n_unique() >= DAYS - 2  # a daily (or more) every day
    index = (
        run["ohlcv"]
        .filter((pl.col("kind") == "index") & (pl.col("venue") == "sim1"))
        .select(
            (pl.col("ts") + timedelta(hours=1)).alias("ts"),  # the bar's close is at its end
            pl.col("instrument").str.split("-").list.first().alias("underlying"),
            pl.col("c").alias("index_close"),
        )
    )
    s = settle.join(index, on=["ts", "underlying"], how="left")
    assert s["index_close"].null_count() == 0
    np.testing.assert_allclose(s["index_px"], s["index_close"], rtol=1e-12)
    np.testing.assert_allclose(s["underlying_px"], s["index_close"], rtol=1e-12)
    spot, strike = s["index_close"].to_numpy(), s["strike_px"].to_numpy()
    call = (s["option_type"] == "C").to_numpy()
    intrinsic = np.where(call, np.maximum(spot - strike, 0.0), np.maximum(strike - spot, 0.0))
    np.testing.assert_allclose(s["mark_price"].to_numpy() * spot, intrinsic, atol=1e-9 * spot.max())
    assert (s["open_interest_contracts"] == 0).all()
    assert (intrinsic > 0).any()
    assert (intrinsic == 0).any()
    # nothing is quoted after expiry
    after = snap.filter(pl.col("ts") > pl.col("expiry_ts"))
    assert after.height == 0
    # every position in an expired option was closed before or settled at expiry, at the
    # settlement value
    pos = _positions(run)
    expired = pos.join(
        s.select("instrument", pl.col("ts").alias("expiry"), "mark_price"),
        on="instrument",
        how="inner",
    )
    assert expired.height > 0
    assert expired["end_ts"].null_count() == 0
    assert (expired["end_ts"] <= expired["expiry"]).all()
    settled = run["sim_option_positions"].filter(pl.col("event") == "settled")
    paid = settled.join(s.select("instrument", "mark_price"), on="instrument")
    assert paid.height == settled.height > 0
    np.testing.assert_allclose(paid["price"], paid["mark_price"], rtol=1e-12)


def test_the_iv_surface_has_a_put_skew_and_a_smile(live: pl.DataFrame) -> None:
    # per snapshot and expiry, a quadratic in standardised log-moneyness x = ln(K/F) / (IV
    # sqrt(T)) through the strikes within two standard deviations: its slope at the money is
    # negative (a low strike's IV above the mirror high strike's: puts richer) and its
    # curvature positive (both wings above the money: a smile)
    slopes, curves = [], []
    calls = live.filter((pl.col("t") > 1 / 365) & (pl.col("option_type") == "C"))
    for _, g in calls.group_by("ts", "underlying", "expiry_ts"):
        x = np.log(g["strike_px"].to_numpy() / g["underlying_px"].to_numpy())
        x /= np.median(g["mark_iv"].to_numpy()) * np.sqrt(g["t"][0])
        near = np.abs(x) <= 1.5
        if near.sum() < 5 or x[near].min() > -0.5 or x[near].max() < 0.5:
            continue
        c2, c1, _ = np.polyfit(x[near], g["mark_iv"].to_numpy()[near], 2)
        slopes.append(c1)
        curves.append(c2)
    assert len(slopes) > 1000
    slope, curve = np.array(slopes), np.array(curves)
    assert (slope < 0).mean() >= 0.99
    assert (curve > 0).mean() >= 0.99
    # calls and puts of a strike carry one IV (one surface), so the smile is the surface's
    same = live.pivot(
        on="option_type", index=["ts", "expiry_ts", "strike_px", "underlying"], values="mark_iv"
    )
    np.testing.assert_allclose(same["C"], same["P"], rtol=0, atol=0)


def _atm(live: pl.DataFrame) -> pl.DataFrame:
    """ATM IV per snapshot and expiry: the IV of the strike nearest the forward."""
    return (
        live.filter(pl.col("option_type") == "C")
        .with_columns((pl.col("strike_px") / pl.col("underlying_px")).log().abs().alias("d"))
        .sort("d")
        .group_by("ts", "underlying", "expiry_ts")
        .first()
        .select("ts", "underlying", "expiry_ts", "t", pl.col("mark_iv").alias("atm"))
    )


def test_the_term_structure_slopes_and_follows_realised_volatility(
    run: dict[str, pl.DataFrame], live: pl.DataFrame
) -> None:
    atm = _atm(live.filter(pl.col("underlying") == "BTC"))
    front = atm.filter(pl.col("t") > 1 / 365).sort("t").group_by("ts").first()
    back = atm.sort("t").group_by("ts").last()
    spread = front.join(back, on="ts", suffix="_back").with_columns(
        (pl.col("atm") - pl.col("atm_back")).alias("spread")
    )
    s = spread["spread"].to_numpy()
    assert (np.abs(s) > 0.005).mean() > 0.9  # not flat
    assert (s < 0).mean() > 0.5  # contango most of the time
    # the front follows the last day's realised volatility (from the index candles, annualised
    # hourly returns); the back, anchored to a long-run level, moves less
    idx = (
        run["ohlcv"]
        .filter(
            (pl.col("kind") == "index")
            & (pl.col("venue") == "sim1")
            & (pl.col("instrument") == "BTC-USDT-PERP")
        )
        .sort("ts")
        .with_columns(pl.col("c").log().diff().pow(2).alias("r2"))
        .with_columns(
            (pl.col("r2").rolling_mean(24) * 24 * 365).sqrt().alias("rv24"),
            (pl.col("ts") + timedelta(hours=1)).alias("ts"),  # known at the bar's end
        )
        .drop_nulls("rv24")
    )
    joined = spread.join(idx.select("ts", "rv24"), on="ts", how="inner").sort("ts")
    assert joined.height > 500
    corr = np.corrcoef(joined["atm"].to_numpy(), joined["rv24"].to_numpy())[0, 1]
    assert corr > 0.7, corr
    assert joined["atm_back"].std() < 0.7 * joined["atm"].std()  # type: ignore[operator]
    # anchored to realised volatility plus a premium: above it most of the time, by a few points
    premium = joined["atm"].to_numpy() - joined["rv24"].to_numpy()
    assert (premium > 0).mean() > 0.8
    assert 0.0 < np.median(premium) < 0.2, np.median(premium)


def test_trades_are_calls_and_puts_bought_and_sold_with_blocks_at_their_iv(
    run: dict[str, pl.DataFrame], live: pl.DataFrame
) -> None:
    trades = run["option_trades"]
    assert set(trades["side"].unique()) == {"buy", "sell"}
    assert set(trades["instrument"].str.slice(-1).unique()) == {"C", "P"}
    blocks = trades.filter(pl.col("block"))
    assert 0 < blocks.height < trades.height * 0.1
    assert blocks["notional_usd"].median() > 10 * trades.filter(~pl.col("block"))[
        "notional_usd"
    ].median()  # fmt: skip
    assert trades["trade_id"].n_unique() == trades.height
    np.testing.assert_allclose(
        trades["notional_usd"], trades["qty_contracts"] * trades["index_px"], rtol=1e-12
    )
    # each trade's IV is the volatility at which Black-76 (perpscope's analytics, rate 0) on the
    # expiry's forward gives its price; the forward is the chain's at the next snapshot, moved
    # back to the trade by the index (the carry is the same within the hour to ~1e-5)
    meta = (
        live.select("instrument", "expiry_ts", "strike_px", "option_type")
        .unique("instrument")
    )  # fmt: skip
    t = trades.join(meta, on="instrument", how="inner")
    fwd_est = t["index_px"].to_numpy()  # within the carry of the index
    t_years = ((t["expiry_ts"] - t["ts"]).dt.total_microseconds() / YEAR_US).to_numpy()
    # the USD price needs the forward used (price is in coin x forward); recover it from the
    # index and the chain's carry at the next snapshot
    carry = (
        live.select("ts", "underlying", "expiry_ts", "underlying_px", "index_px", "t")
        .unique(["ts", "expiry_ts", "underlying"])
        .with_columns(
            ((pl.col("underlying_px") / pl.col("index_px")).log() / pl.col("t")).alias("carry")
        )
        .group_by("ts", "underlying")
        .agg(pl.col("carry").median())
        .sort("ts")
    )
    t = t.with_columns(
        pl.col("instrument").str.split("-").list.first().alias("underlying"),
        pl.col("ts").dt.truncate("1h").alias("hour"),
    ).join(carry.rename({"ts": "hour"}), on=["hour", "underlying"], how="left")
    carry_v = t["carry"].fill_null(0.1).to_numpy()
    fwd = fwd_est * np.exp(carry_v * t_years)
    iv = implied_vol(
        t["price"].to_numpy() * fwd, fwd, t["strike_px"].to_numpy(), t_years,
        (t["option_type"] == "C").to_numpy(),
    )  # fmt: skip
    ok = np.isfinite(iv)
    assert ok.mean() > 0.95
    rel = np.abs(iv[ok] / t["iv"].to_numpy()[ok] - 1.0)
    # the forward rebuilt here is the simulator's to the hour's carry, so most trades agree to a
    # small fraction of a vol point; far wings are sensitive to it
    assert np.median(rel) < 0.002, np.median(rel)
    assert (rel < 0.02).mean() > 0.95


def test_same_seed_same_tables_and_the_options_market_can_be_turned_off() -> None:
    small = SimConfig(seed=3, days=2, assets=("BTC",), venues=("sim1",))
    a = run_simulation(small).tables
    b = run_simulation(small).tables
    for name in ("options_snapshot", "option_trades", "sim_option_positions"):
        assert a[name].height > 0
        assert a[name].equals(b[name]), name
    other = run_simulation(SimConfig(seed=4, days=2, assets=("BTC",), venues=("sim1",))).tables
    assert not a["option_trades"].equals(other["option_trades"])
    off = run_simulation(
        SimConfig(seed=3, days=2, assets=("BTC",), venues=("sim1",), options=False)
    ).tables
    assert not {"options_snapshot", "option_trades", "sim_option_positions"} & set(off)
    assert off["ohlcv"].equals(a["ohlcv"])  # the options market does not move the perp market


def test_a_known_catalyst_is_priced_into_the_expiries_after_it_and_nothing_else() -> None:
    # pre-event-build's first shock is a scheduled catalyst (catalyst_vol 4%): the same run
    # with catalyst_vol 0 is the reference. Its event starts at 75% of the 8 days (hour 144).
    days, preset = 8, PRESETS["pre-event-build"]
    cfg = SimConfig(seed=11, days=days, assets=("BTC",), scenario="pre-event-build")
    known = run_simulation(cfg).tables
    blind = run_simulation(cfg, replace(preset, catalyst_vol=0.0)).tables
    assert known["ohlcv"].equals(blind["ohlcv"])  # the option makers' view moves no perp price
    event = cfg.end - timedelta(days=days) + timedelta(hours=0.75 * days * 24)
    keys = ["ts", "instrument"]

    def iv(t: dict[str, pl.DataFrame]) -> pl.DataFrame:
        return t["options_snapshot"].filter(pl.col("expiry_ts") > pl.col("ts"))

    both = iv(known).join(iv(blind).select(*keys, pl.col("mark_iv").alias("iv0")), on=keys)
    assert both.height == iv(known).height == iv(blind).height
    spans = (pl.col("ts") < event) & (pl.col("expiry_ts") > event)
    # options whose life does not span the event: quoted exactly as without it
    other = both.filter(~spans)
    assert other.height > 1000
    assert (other["mark_iv"] == other["iv0"]).all()
    # options whose life spans it: every one quoted at a higher IV
    over = both.filter(spans)
    assert over.height > 1000
    assert (over["mark_iv"] > over["iv0"]).all()
    # the front of the term structure rises most, so it stands above the back in the day
    # before the event (the catalyst's move spread over a day weighs more than over months)
    atm = _atm(
        known["options_snapshot"]
        .filter(pl.col("expiry_ts") > pl.col("ts"))
        .with_columns(
            ((pl.col("expiry_ts") - pl.col("ts")).dt.total_microseconds() / YEAR_US).alias("t")
        )
    ).filter((pl.col("ts") >= event - timedelta(hours=24)) & (pl.col("ts") < event))
    front = atm.filter(pl.col("t") > 1 / 365).sort("t").group_by("ts").first()
    back = atm.sort("t").group_by("ts").last()
    j = front.join(back, on="ts", suffix="_back")
    assert j.height >= 20
    assert (j["atm"] > j["atm_back"]).mean() >= 0.9, j
