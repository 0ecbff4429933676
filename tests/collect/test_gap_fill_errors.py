"""The REST gap fillers (``okx_trades``, ``deribit_trades``) over their shared HTTP client: a venue
that cannot be reached is a transient error (the collector retries) named after the endpoint, and
the client can be closed after it, twice."""

from __future__ import annotations

import asyncio
import socket

import pytest

from perpscope.domain.symbols import parse_instrument
from perpscope.errors import TransientVenueError
from perpscope.venues.deribit_trades import DeribitTradeHistory
from perpscope.venues.okx_trades import OkxTradeHistory
from perpscope.venues.ws import TradeHistory


def _closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def _fetch(rest: TradeHistory, instrument: str) -> None:
    try:
        await rest.fetch_trades(parse_instrument(instrument), 1_793_620_830_000, 1_793_620_890_000)
    finally:
        await rest.close()
        await rest.close()  # a second close is harmless


@pytest.mark.parametrize(
    ("make", "instrument", "where"),
    [
        (OkxTradeHistory, "BTC-USDT-PERP", "okx api/v5/public/instruments: ClientConnectorError"),
        (OkxTradeHistory, "BTC-USDT", "okx api/v5/market/history-trades: ClientConnectorError"),
        (
            DeribitTradeHistory,
            "BTC-USD-PERP",
            "deribit public/get_last_trades_by_instrument_and_time: ClientConnectorError",
        ),
    ],
)
def test_an_unreachable_venue_is_a_transient_error_named_after_the_endpoint(
    make: type[OkxTradeHistory] | type[DeribitTradeHistory], instrument: str, where: str
) -> None:
    rest = make(api_url=f"http://127.0.0.1:{_closed_port()}/", timeout_s=5.0)
    with pytest.raises(TransientVenueError) as caught:
        asyncio.run(_fetch(rest, instrument))
    assert str(caught.value).startswith(where)
    assert "\n" not in str(caught.value)
