"""Fixtures of this test folder: the fake exchange on 127.0.0.1."""

from tests.fakex.fixture import fake_binance

__all__ = ["fake_binance"]
