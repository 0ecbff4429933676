"""Position traders (``MarketParams.patient_share``): the default market's slow money."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from perpscope.sim import SimConfig, run_simulation
from perpscope.sim.constants import LEVERAGE_CHOICES
from perpscope.sim.params import MarketParams
from perpscope.sim.presets import PRESETS

DAYS = 10


@pytest.fixture(scope="module")
def run() -> dict[str, pl.DataFrame]:
    return run_simulation(SimConfig(seed=5, days=DAYS, options=False)).tables


def _lifetimes(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """One row per trader position: agent, leverage, first and last event, whether it ended."""
    return (
        tables["sim_positions"]
        .filter(pl.col("agent") != "market_maker")
        .sort("ts", "seq")
        .group_by("venue", "instrument", "position_id")
        .agg(
            pl.col("agent").first(),
            pl.col("leverage").first(),
            pl.col("ts").first().alias("t0"),
            pl.col("event").last().alias("last"),
        )
    )


def test_burn_in_holds_position_traders_at_their_equilibrium_share(
    run: dict[str, pl.DataFrame],
) -> None:
    # By hand: a kind's share of the open book is its share of openings times its mean hold.
    # Traders hold (10 / L) ** 0.75 of hold_mean_h at leverage L: weighted by the leverage mix,
    # 0.6 x 1.6818 + 0.3 x 1 + 0.06 x 0.5946 + 0.02 x 0.5030 + 0.013 x 0.2991 + 0.005 x 0.2205
    # + 0.002 x 0.1778 = 1.3602; position traders 8 times what a 5x trader holds: 8 x 1.6818.
    # Share: 0.12 x 13.454 / (0.12 x 13.454 + 0.88 x 1.3602) = 1.6145 / 2.8115 = 0.5743.
    p = PRESETS["default"]
    w = np.asarray(p.leverage_weights) / sum(p.leverage_weights)
    rel = (10.0 / np.asarray(LEVERAGE_CHOICES)) ** 0.75
    slow = p.patient_share * p.patient_hold * 2.0**0.75
    expected = slow / (slow + (1.0 - p.patient_share) * float((w * rel).sum()))
    life = _lifetimes(run)
    first = life.filter(pl.col("t0") == pl.col("t0").min())
    share = (first["agent"] == "position_trader").mean()
    # about 3,500 positions per market, 31,000 in all: the binomial sd of the share is 0.003
    assert expected == pytest.approx(0.5743, abs=1e-4)
    assert share == pytest.approx(expected, abs=0.02)


def test_position_traders_open_at_2x_at_their_share_and_hold_long(
    run: dict[str, pl.DataFrame],
) -> None:
    life = _lifetimes(run)
    later = life.filter(pl.col("t0") > pl.col("t0").min())
    slow = later.filter(agent="position_trader")
    # 12% of the openers after the burn-in (tens of thousands: the share's sd is under 0.3%)
    assert later.height > 20_000
    assert slow.height / later.height == pytest.approx(0.12, abs=0.01)
    assert slow["leverage"].unique().to_list() == [2.0]
    # Positions opened in the first two days, still open at the end (8 days later or more):
    # a position trader's mean hold is about 34 days (exp(-8/34) = 0.79 would stay), a 5x
    # trader's about 4.2 days (exp(-8/4.2) = 0.15), before stops and funding exits.
    early = later.filter(pl.col("t0") < pl.col("t0").min() + pl.duration(days=2))
    kept = early.group_by(
        pl.when(pl.col("agent") == "position_trader")
        .then(pl.lit("slow"))
        .otherwise(pl.col("leverage").cast(pl.Utf8))
        .alias("who")
    ).agg((pl.col("last").is_in(["open", "change"])).mean().alias("kept"))
    by = dict(kept.iter_rows())
    assert by["slow"] > 0.6
    assert by["5.0"] < 0.3


def test_without_position_traders_the_market_has_none() -> None:
    base = run_simulation(SimConfig(seed=5, days=2, options=False), MarketParams()).tables
    assert "position_trader" not in base["sim_positions"]["agent"].unique().to_list()
    assert MarketParams().patient_share == 0.0
    # the default preset is the base crowd with exactly these changes (issue 11's calibration)
    crowd = MarketParams()
    back = replace(
        PRESETS["default"],
        patient_share=0.0,
        lev_vol_ref=0.0,
        spike=0.0,
        quote_noise=crowd.quote_noise,
    )
    assert back == crowd


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("patient_share", 1.5, "patient_share must be between 0 and 1"),
        ("patient_share", -0.1, "patient_share must be between 0 and 1"),
        ("patient_lev", 6.0, "patient_lev must be between 1 and 5"),
        ("patient_lev", 0.5, "patient_lev must be between 1 and 5"),
        ("patient_hold", 0.5, "patient_hold must be >= 1"),
    ],
)
def test_bad_position_trader_parameters_are_refused(field: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MarketParams(**{field: value})  # type: ignore[arg-type]
