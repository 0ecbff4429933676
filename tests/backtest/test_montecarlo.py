"""Monte Carlo of the trades: checked against a direct per-path computation and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perpscope.backtest.montecarlo import PERCENTILES, monte_carlo


def _direct(r: list[float], risk: float, idx: np.ndarray, ruin: float) -> tuple[list[float], ...]:
    """The readings path by path with plain Python loops over the same draws."""
    finals, dds = [], []
    for row in idx:
        eq, peak, worst = 1.0, 1.0, 0.0
        for k in row:
            eq = max(eq * (1.0 + risk * r[k]), 0.0)
            peak = max(peak, eq)
            worst = min(worst, eq / peak - 1.0)
        finals.append(eq)
        dds.append(worst)
    ruined = sum(d <= -ruin for d in dds) / len(dds)
    return finals, dds, [ruined]


@given(
    r=st.lists(st.floats(-3.0, 6.0), min_size=1, max_size=12),
    risk=st.floats(0.001, 0.5),
    seed=st.integers(0, 2**32 - 1),
    method=st.sampled_from(["bootstrap", "reshuffle"]),
)
def test_percentiles_equal_a_direct_computation_on_the_same_seeded_draws(
    r: list[float], risk: float, seed: int, method: str
) -> None:
    paths = 200
    got = monte_carlo(r, risk, paths=paths, method=method, seed=seed, ruin_drawdown=0.2)  # type: ignore[arg-type]
    # The draws, as documented: integers for the bootstrap, a permutation per row otherwise.
    rng = np.random.default_rng(seed)
    n = len(r)
    if method == "bootstrap":
        idx = rng.integers(0, n, size=(paths, n))
    else:
        idx = rng.permuted(np.tile(np.arange(n), (paths, 1)), axis=1)
    finals, dds, (ruined,) = _direct(r, risk, idx, 0.2)
    assert list(got.final_equity.values()) == pytest.approx(
        np.percentile(finals, PERCENTILES).tolist(), rel=1e-12, abs=1e-12
    )
    assert list(got.max_drawdown.values()) == pytest.approx(
        np.percentile(dds, PERCENTILES).tolist(), rel=1e-12, abs=1e-12
    )
    assert got.risk_of_ruin == pytest.approx(ruined)
    # The same seed gives the same numbers; the fan starts at 1 and ends at the finals' spread.
    again = monte_carlo(r, risk, paths=paths, method=method, seed=seed, ruin_drawdown=0.2)  # type: ignore[arg-type]
    assert again.to_json() == got.to_json()
    assert (got.fan[:, 0] == 1.0).all()
    assert got.fan[:, -1].tolist() == pytest.approx(list(got.final_equity.values()))


def test_two_trades_by_hand() -> None:
    # +1R and -1R at 10% risk: the four bootstrap sequences end at 1.1^2 = 1.21, 1.1 x 0.9 = 0.99
    # (twice) and 0.9^2 = 0.81, with maximum drawdowns 0, -10% (win then loss: 0.99 / 1.1 - 1),
    # -10% (loss first) and -19%. Every path of the reshuffle ends at 0.99.
    got = monte_carlo([1.0, -1.0], 0.10, paths=20_000, method="bootstrap", seed=1)
    assert got.final_equity[5] == pytest.approx(0.81)
    assert got.final_equity[50] == pytest.approx(0.99)
    assert got.final_equity[95] == pytest.approx(1.21)
    assert got.max_drawdown[5] == pytest.approx(-0.19)
    assert got.max_drawdown[50] == pytest.approx(-0.10)
    assert got.max_drawdown[95] == pytest.approx(0.0)
    shuffled = monte_carlo([1.0, -1.0], 0.10, paths=500, method="reshuffle", seed=1)
    assert list(shuffled.final_equity.values()) == pytest.approx([0.99] * len(PERCENTILES))
    assert shuffled.max_drawdown[50] == pytest.approx(-0.10)


def test_risk_of_ruin_rises_with_the_risk_per_trade() -> None:
    # A fair coin at 2R/-1R: ruin (a 50% drawdown) is rare at 1% risk, common at 25%.
    r = [2.0, -1.0] * 50
    low = monte_carlo(r, 0.01, paths=2000, seed=3).risk_of_ruin
    high = monte_carlo(r, 0.25, paths=2000, seed=3).risk_of_ruin
    assert low == 0.0  # 0.99^69 = 0.50: a stretch losing 69R net, out of 100 trades
    assert high > 0.5


def test_a_loss_beyond_the_account_floors_it_at_zero() -> None:
    got = monte_carlo([-20.0], 0.10, paths=10, seed=0)
    assert got.final_equity[50] == 0.0
    assert got.risk_of_ruin == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"r_multiples": []}, "no trades"),
        ({"r_multiples": [1.0, float("nan")]}, "finite"),
        ({"risk_frac": 0.0}, "above 0%"),
        ({"risk_frac": 1.5}, "at most 100%"),
        ({"ruin_drawdown": 0.0}, "ruin drawdown"),
        ({"method": "jackknife"}, "unknown method"),
        ({"paths": 0}, "paths x trades"),
        ({"paths": 10**9}, "paths x trades"),
    ],
)
def test_bad_inputs_are_refused(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"r_multiples": [1.0, -1.0], "risk_frac": 0.01, **kwargs}
    with pytest.raises(ValueError, match=message):
        monte_carlo(**args)  # type: ignore[arg-type]
