"""Which tier a position exactly on a tier bound belongs to, for every implemented venue.

The expected tier is derived here from each venue's published rule, applied to the venue-shaped
fixture rows (not to :class:`perpscope.risk.Tier`, and not through ``tier_for``):

* **Binance USDⓈ-M.** Binance publishes its brackets as ``0 < Position <= 50,000`` (125x),
  ``50,000 < Position <= 250,000`` (100x), ... ("Updates to Leverage and Margin Tiers of Binance
  Futures Contracts (2021-03-18)", BTCUSDT; every later per-symbol tier announcement uses the same
  ``floor < Position <= cap`` form). ``GET /fapi/v1/leverageBracket`` gives these bounds as
  ``notionalFloor`` ("notional threshold of this bracket") and ``notionalCap`` ("cap notional of
  this bracket"). So the floor is exclusive and the cap inclusive: a position of exactly 50,000
  may use 125x, and 110x there is allowed; 50,000.01 is bracket 2, where 110x is refused.
* **Binance COIN-M.** ``GET /dapi/v2/leverageBracket`` gives ``qtylFloor`` and ``qtyCap`` ("upper
  edge of base asset quantity"); Binance's COIN-M leverage table lists the 125x tier as "Max
  Position 5" (BTC): the cap is inclusive, as on USDⓈ-M.
* **Bybit.** ``riskLimitValue`` of ``GET /v5/market/risk-limit`` is the tier's position limit:
  "the maximum position value a trader can hold" under it (Bybit's risk-limit notes, BTCUSDT level
  1: 2,000,000 USDT). A position value equal to it is in that tier.
* **OKX.** ``GET /api/v5/public/position-tiers`` gives ``minSz``/``maxSz`` in contracts, and the
  next tier's ``minSz`` is one contract above the previous ``maxSz`` (20000, then 20001): ``maxSz``
  itself is in the tier.

research/anchors.md C.4 gives the tier maths (MM = notional x MMR - cum, the cum recursion) but
not the bound semantics; the sources above do. With the cum recursion the maintenance margin is
continuous, so at a bound only the tier label and its maximum leverage depend on the rule: the
leverage check is what these tests exercise end to end through ``liquidation_price``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from risk_tier_fixtures import (
    BINANCE_COINM_LEVERAGE_BRACKET,
    BINANCE_LEVERAGE_BRACKET,
    BYBIT_RISK_LIMIT,
    OKX_CT_VAL,
    OKX_POSITION_TIERS,
    binance_coinm_tiers,
    binance_tiers,
    bybit_tiers,
    okx_tiers,
)

from perpscope.risk import LiqVenue, PositionSide, PositionSpec, Tier, liquidation_price, tier_for

# (lower bound, exclusive; upper bound, inclusive; tier id; max leverage), read from the raw rows.
Row = tuple[float, float, int, float]


def _binance_rows() -> list[Row]:
    return [
        (b["notionalFloor"], b["notionalCap"], b["bracket"], b["initialLeverage"])
        for b in BINANCE_LEVERAGE_BRACKET[0]["brackets"]
    ]


def _coinm_rows() -> list[Row]:
    return [
        (b["qtylFloor"], b["qtyCap"], b["bracket"], b["initialLeverage"])
        for b in BINANCE_COINM_LEVERAGE_BRACKET[0]["brackets"]
    ]


def _bybit_rows() -> list[Row]:
    rows: list[Row] = []
    low = 0.0
    for r in BYBIT_RISK_LIMIT["result"]["list"]:
        rows.append((low, float(r["riskLimitValue"]), int(r["id"]), float(r["maxLeverage"])))
        low = float(r["riskLimitValue"])
    return rows


def _okx_contract_rows() -> list[tuple[int, int, int, float]]:
    """OKX rows in contracts, both bounds inclusive: ``minSz <= contracts <= maxSz``."""
    return [
        (int(r["minSz"]), int(r["maxSz"]), int(r["tier"]), float(r["maxLever"]))
        for r in OKX_POSITION_TIERS["data"]
    ]


def _documented(rows: list[Row], amount: float) -> tuple[int, float] | None:
    """The published rule: the row with ``low < amount <= high`` (the first row from 0 up)."""
    for i, (low, high, tier, lev) in enumerate(rows):
        if (amount > low or i == 0) and amount <= high:
            return tier, lev
    return None  # above every cap: the venue refuses the position


def _okx_documented(contracts: int) -> tuple[int, float] | None:
    for low, high, tier, lev in _okx_contract_rows():
        if low <= contracts <= high:
            return tier, lev
    return None


def _up(x: float) -> float:
    """The next float above ``x``: the smallest amount beyond a bound."""
    return math.nextafter(x, math.inf)


def _bound_amounts(rows: list[Row]) -> list[float]:
    """Every floor and cap, and the smallest amount above each."""
    out: list[float] = []
    for low, high, _, _ in rows:
        out += [low, _up(low), high, _up(high)] if low > 0 else [high, _up(high)]
    return sorted(set(out))


VENUE_TABLES: dict[str, tuple[list[Row], Any]] = {
    "binance_usdm": (_binance_rows(), binance_tiers),
    "binance_coinm": (_coinm_rows(), binance_coinm_tiers),
    "bybit": (_bybit_rows(), bybit_tiers),
}

BOUND_CASES = [
    pytest.param(venue, amount, id=f"{venue}-{amount!r}")
    for venue, (rows, _) in VENUE_TABLES.items()
    for amount in _bound_amounts(rows)
]


@pytest.mark.parametrize(("venue", "amount"), BOUND_CASES)
def test_tier_for_at_every_floor_and_cap_follows_the_published_rule(
    venue: str, amount: float
) -> None:
    rows, tiers = VENUE_TABLES[venue]
    expected = _documented(rows, amount)
    if expected is None:
        with pytest.raises(ValueError, match="above the largest tier's cap"):
            tier_for(tiers(), amount)
    else:
        assert tier_for(tiers(), amount).tier == expected[0]


OKX_CONTRACTS = sorted(
    {n for low, high, _, _ in _okx_contract_rows() for n in (low, low + 1, high, high + 1)} - {0}
)


@pytest.mark.parametrize("contracts", OKX_CONTRACTS)
def test_okx_tier_for_at_every_min_and_max_size_follows_the_published_rule(
    contracts: int,
) -> None:
    expected = _okx_documented(contracts)
    amount = contracts * OKX_CT_VAL  # perpscope's OKX tier basis: size in base units
    if expected is None:
        with pytest.raises(ValueError, match="above the largest tier's cap"):
            tier_for(okx_tiers(), amount)
    else:
        assert tier_for(okx_tiers(), amount).tier == expected[0]


LONG = PositionSide.LONG


def test_binance_110x_at_exactly_50000_notional_is_bracket_1_as_published() -> None:
    # "0 < Position <= 50,000: 125x": exactly 50,000 may use up to 125x, so 110x is accepted.
    res = liquidation_price(PositionSpec(LiqVenue.BINANCE, LONG, 50_000, 1, 110), binance_tiers())
    assert (res.entry_tier, res.mmr) == (1, 0.004)
    # 50,000.01 is "50,000 < Position <= 250,000: 100x": 110x is refused.
    with pytest.raises(ValueError, match="above the 100x maximum of tier 2"):
        liquidation_price(PositionSpec(LiqVenue.BINANCE, LONG, 50_000.01, 1, 110), binance_tiers())


def _spec(venue: str, amount_key: float, leverage: float) -> PositionSpec:
    """A long whose tier amount is exactly ``amount_key`` in the venue's tier unit."""
    if venue == "binance_usdm":  # notional = qty x price
        return PositionSpec(LiqVenue.BINANCE, LONG, amount_key, 1, leverage)
    if venue == "bybit":  # position value at entry = qty x entry
        return PositionSpec(LiqVenue.BYBIT, LONG, amount_key, 1, leverage)
    # COIN-M: coin notional = contracts x 100 USD / 20,000 = contracts / 200.
    contracts = amount_key * 200
    assert contracts * 100 / 20_000 == amount_key
    return PositionSpec(
        LiqVenue.BINANCE, LONG, 20_000, contracts, leverage, inverse=True, contract_size=100
    )


def _leverage_cases() -> list[Any]:
    cases = []
    for venue, (rows, _) in VENUE_TABLES.items():
        for i, (_, cap, tier, lev) in enumerate(rows):
            above = None if i + 1 == len(rows) else rows[i + 1]
            cases.append(pytest.param(venue, cap, tier, lev, above, id=f"{venue}-tier{tier}"))
    return cases


@pytest.mark.parametrize(("venue", "cap", "tier", "max_lev", "above"), _leverage_cases())
def test_each_tier_accepts_its_maximum_leverage_at_its_cap_and_not_one_unit_above(
    venue: str, cap: float, tier: int, max_lev: float, above: Row | None
) -> None:
    tiers = VENUE_TABLES[venue][1]()
    at_cap = liquidation_price(_spec(venue, cap, max_lev), tiers)
    assert at_cap.entry_tier == tier
    # One unit above the cap (1 USDT of notional or value, 1 contract on COIN-M).
    beyond = cap + (1 / 200 if venue == "binance_coinm" else 1.0)
    if above is None:
        with pytest.raises(ValueError, match="above the largest tier's cap"):
            liquidation_price(_spec(venue, beyond, 1), tiers)
    else:
        assert max_lev > above[3]
        with pytest.raises(ValueError, match=f"above the {above[3]:g}x maximum of tier {above[2]}"):
            liquidation_price(_spec(venue, beyond, max_lev), tiers)
        assert liquidation_price(_spec(venue, beyond, above[3]), tiers).entry_tier == above[2]


def test_okx_each_tier_takes_its_max_leverage_at_max_size_and_not_one_contract_above() -> None:
    rows = _okx_contract_rows()
    for i, (_, max_sz, tier, lev) in enumerate(rows):
        at_max = PositionSpec(LiqVenue.OKX, LONG, 20_000, max_sz * OKX_CT_VAL, lev)
        assert liquidation_price(at_max, okx_tiers()).entry_tier == tier
        over = PositionSpec(LiqVenue.OKX, LONG, 20_000, (max_sz + 1) * OKX_CT_VAL, lev)
        if i + 1 == len(rows):
            with pytest.raises(ValueError, match="above the largest tier's cap"):
                liquidation_price(over, okx_tiers())
        else:
            with pytest.raises(ValueError, match=f"maximum of tier {rows[i + 1][2]}"):
                liquidation_price(over, okx_tiers())


def test_the_fixture_tiers_read_the_raw_rows_unchanged() -> None:
    # The Tier tables above are built from the same rows; check the reading keeps every bound.
    for rows, tiers in VENUE_TABLES.values():
        built: list[Tier] = tiers()
        assert [(t.floor, t.cap, t.tier, t.max_leverage) for t in built] == [
            (float(lo), float(hi), tid, float(lev)) for lo, hi, tid, lev in rows
        ]
