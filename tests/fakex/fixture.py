"""The ``fake_binance`` pytest fixture: a fake Binance on 127.0.0.1 for one test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakex.server import FakeBinance, FakeServer


@pytest.fixture
def fake_binance() -> Iterator[FakeBinance]:
    """A running fake Binance; ``fake_binance.url`` is its base URL."""
    with FakeServer() as fake:
        yield fake
