"""Canonical instrument and venue ids: examples, errors and a parse/format round-trip."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perpscope.domain.symbols import (
    Instrument,
    InstrumentKind,
    OptionRight,
    format_expiry,
    parse_expiry,
    parse_instrument,
    parse_venue,
)


@pytest.mark.parametrize(
    ("text", "kind", "inverse"),
    [
        ("BTC-USDT", InstrumentKind.SPOT, False),
        ("BTC-USDT-PERP", InstrumentKind.PERP, False),
        ("BTC-USD-PERP", InstrumentKind.PERP, True),
        ("BTC-USD-26DEC26", InstrumentKind.FUTURE, True),
        ("BTC-USD-26DEC26-100000-C", InstrumentKind.OPTION, True),
        ("ETH-USDC-5JAN24-2500.5-P", InstrumentKind.OPTION, False),
        ("1000PEPE-USDT-PERP", InstrumentKind.PERP, False),
    ],
)
def test_canonical_ids_parse_to_their_kind_and_format_back(
    text: str, kind: InstrumentKind, inverse: bool
) -> None:
    inst = parse_instrument(text)
    assert inst.kind is kind
    assert inst.is_inverse is inverse
    assert str(inst) == text


def test_option_fields_are_parsed() -> None:
    inst = parse_instrument("BTC-USD-26DEC26-100000-C")
    assert inst.expiry == date(2026, 12, 26)
    assert inst.strike == Decimal(100000)
    assert inst.right is OptionRight.CALL
    assert inst.underlying == "BTC-USD"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "BTC",
        "btc-usdt",
        "BTC-USDT-PERPETUAL",
        "BTC-USD-32DEC26",
        "BTC-USD-26XYZ26",
        "BTC-USD-05JAN26",
        "BTC-USD-26DEC26-0-C",
        "BTC-USD-26DEC26-100000.0-C",
        "BTC-USD-26DEC26-100000-X",
        "BTC-USD-26DEC26-100000",
        "BTC_USDT",
    ],
)
def test_non_canonical_ids_are_refused_with_the_grammar(bad: str) -> None:
    with pytest.raises(ValueError, match="expected BTC-USDT, BTC-USDT-PERP"):
        parse_instrument(bad)


def test_venue_ids_are_lowercase_words() -> None:
    assert parse_venue("binance") == "binance"
    assert parse_venue("gate") == "gate"  # import accepts any venue id
    assert parse_venue("sim2", known_only=True) == "sim2"
    with pytest.raises(ValueError, match="lowercase word"):
        parse_venue("Binance")
    with pytest.raises(ValueError, match="lowercase word"):
        parse_venue("okx-v5")
    with pytest.raises(ValueError, match="unknown venue 'gate'"):
        parse_venue("gate", known_only=True)


def test_expiry_has_no_leading_zero_and_round_trips() -> None:
    assert format_expiry(date(2024, 1, 5)) == "5JAN24"
    assert parse_expiry("5JAN24") == date(2024, 1, 5)


_assets = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=8)
_expiries = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
_strikes = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("10000000"), places=3).filter(
    lambda d: d > 0
)


@st.composite
def instruments(draw: st.DrawFn) -> Instrument:
    kind = draw(st.sampled_from(list(InstrumentKind)))
    base, quote = draw(_assets), draw(_assets)
    if kind in (InstrumentKind.SPOT, InstrumentKind.PERP):
        return Instrument(base, quote, kind)
    expiry = draw(_expiries)
    if kind is InstrumentKind.FUTURE:
        return Instrument(base, quote, kind, expiry)
    return Instrument(
        base, quote, kind, expiry, draw(_strikes), draw(st.sampled_from(list(OptionRight)))
    )


@given(instruments())
def test_format_then_parse_round_trips(inst: Instrument) -> None:
    text = str(inst)
    again = parse_instrument(text)
    assert again == Instrument(
        inst.base,
        inst.quote,
        inst.kind,
        inst.expiry,
        inst.strike.normalize() if inst.strike is not None else None,
        inst.right,
    )
    assert str(again) == text
