"""The shared payload checks (``venues/_parse_common.py``) through each venue's parser choices:
the strictness each venue had before the checks were shared, pinned value by value (every
expectation here was read off the per-venue helpers as they were before the refactor)."""

from __future__ import annotations

from typing import Any

import pytest

from perpscope.errors import DataContractError
from perpscope.venues import binance_parse, bybit_parse, deribit_parse, okx_parse
from perpscope.venues._parse_common import Wire


def test_an_empty_string_is_refused_by_binance_and_null_elsewhere() -> None:
    with pytest.raises(DataContractError, match=r"^binance e: field 'x' holds a non-number ''$"):
        binance_parse._num(["1", ""], "x", "e")
    for module in (bybit_parse, okx_parse, deribit_parse):
        assert module._num(["1.5", "", None], "x", "e").to_list() == [1.5, None, None]


def test_booleans_pass_as_numbers_only_on_the_cast_path() -> None:
    # binance and bybit cast in bulk (as before: float(True) is 1.0 there); OKX and Deribit
    # check every value and refuse a boolean where a number belongs
    assert Wire("bybit", bools_are_numbers=True).is_number(True)
    assert not Wire("okx").is_number(True)
    with pytest.raises(DataContractError, match=r"^okx e: field 'x' holds a non-number True$"):
        okx_parse._num(["1", True], "x", "e")
    with pytest.raises(DataContractError, match=r"^deribit e: field 'x' holds a non-number 'a'"):
        deribit_parse._num([1, "a"], "x", "e")


@pytest.mark.parametrize(
    ("module", "value", "ok"),
    [
        (okx_parse, "-5", False),  # OKX times are plain digits
        (deribit_parse, "-5", True),  # Deribit's are any integer
        (okx_parse, "1700000000000", True),
        (bybit_parse, "1.5", False),
        (binance_parse, 1_700_000_000_000, True),
    ],
)
def test_times_follow_each_venues_rule(module: Any, value: object, ok: bool) -> None:
    if ok:
        assert module._ms([value], "t", "e").to_list() == [int(str(value))]
    else:
        with pytest.raises(DataContractError, match="field 't' holds a non-integer time"):
            module._ms([value], "t", "e")


def test_rows_and_fields_are_named_in_each_venues_wording() -> None:
    missing = r"^okx e: data\[1\] has no field 'k' \(fields: j\)$"
    with pytest.raises(DataContractError, match=missing):
        okx_parse._field([{"k": 1}, {"j": 2}], "k", "e")
    with pytest.raises(DataContractError, match=r"^bybit e: row 0 is a list, expected an object$"):
        bybit_parse._dicts([[1]], "e")
    with pytest.raises(DataContractError, match=r"^deribit e: result is a str, expected an array$"):
        deribit_parse._dicts("x", "e")
    assert binance_parse._field([{"k": 1}, {"k": 2}], "k", "e") == [1, 2]
