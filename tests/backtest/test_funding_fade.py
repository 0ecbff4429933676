"""The funding fade's entry rule, on hand-built settlements (no look-ahead, 8h normalisation)."""

from __future__ import annotations

import pytest

from perpscope.backtest.strategies.funding_fade import FundingFadeParams, funding_fade
from tests.backtest._markets import flat_market


def test_three_extreme_settlements_then_fade_from_the_next_close() -> None:
    """+0.06% at 0h, 8h, 16h: the third is known at the close of the 16:00 bar (17:00), not at
    the close of the 15:00 bar (16:00, the same instant): short from bar 16's close on."""
    m = flat_market(30, funding=[(0, 6e-4, 8), (8, 6e-4, 8), (16, 6e-4, 8), (24, 0.5e-4, 8)])
    s = funding_fade(m, FundingFadeParams())
    assert s.entry[15] == 0
    assert all(s.entry[16:24] == -1)
    # 24h: +0.005% < 0.01%: funding normalised, exit, and no entry
    assert s.entry[24] == 0
    assert s.exit[24]
    assert not s.exit[23]
    assert s.stop_frac[16] == 0.02
    assert list(s.targets_r[16]) == [1.0, 2.6, 5.8]


def test_rates_are_normalised_to_8h_with_the_stored_interval() -> None:
    """-0.03% per 4h is -0.06% per 8h: extreme; three of them -> long."""
    m = flat_market(20, funding=[(0, -3e-4, 4), (4, -3e-4, 4), (8, -3e-4, 4)])
    assert funding_fade(m, FundingFadeParams()).entry[8] == 1
    # the same rates read as 8h rates are not extreme
    m8 = flat_market(20, funding=[(0, -3e-4, 8), (4, -3e-4, 8), (8, -3e-4, 8)])
    assert not funding_fade(m8, FundingFadeParams()).entry.any()


def test_a_sign_flip_or_a_mild_rate_breaks_the_streak() -> None:
    m = flat_market(40, funding=[(0, 6e-4, 8), (8, -6e-4, 8), (16, 6e-4, 8), (24, 6e-4, 8)])
    assert not funding_fade(m, FundingFadeParams()).entry.any()
    assert funding_fade(m, FundingFadeParams(min_periods=2)).entry[24] == -1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 0.0}, "threshold"),
        ({"min_periods": 0}, "min_periods"),
        ({"stop_frac": 1.5}, "stop_frac"),
        ({"targets_r": (2.0, 1.0, 3.0)}, "increasing"),
    ],
)
def test_parameters_are_validated(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FundingFadeParams(**kwargs).validate()  # type: ignore[arg-type]
