"""Deribit's past trades of a perpetual by time, to fill a gap of its live trade stream.

``GET /api/v2/public/get_last_trades_by_instrument_and_time?instrument_name=&start_timestamp=
&end_timestamp=&count=1000&sorting=asc`` answers ``{result: {trades: [...], has_more}}`` with the
trades of the live channel (``trade_seq``, ``timestamp``, ``price``, ``amount``, ``direction``),
both bounds inclusive. A full page (``has_more``) continues from its last trade's timestamp;
trades already taken (by ``trade_seq``) are skipped. Sizes follow the live feed's rule: inverse
perpetuals trade in USD (base = amount / price), ``_USDC`` ones in coin.

One request at a time (:class:`~perpscope.venues._rest_common.RestJson`), far under Deribit's 20
requests a second; the live path stays free of ccxt's market loading.
"""

from __future__ import annotations

from typing import Any, Final

from perpscope.domain.symbols import Instrument
from perpscope.errors import DataContractError, TransientVenueError
from perpscope.venues._rest_common import RestJson
from perpscope.venues.deribit_parse import venue_symbol

__all__ = ["DERIBIT_API_URL", "DeribitTradeHistory"]

DERIBIT_API_URL: Final = "https://www.deribit.com"
_PATH: Final = "/api/v2/public/get_last_trades_by_instrument_and_time"
_PAGE: Final = 1000
_MAX_PAGES: Final = 200
_WHERE: Final = "deribit public/get_last_trades_by_instrument_and_time"


class DeribitTradeHistory:
    """Deribit REST trades by time (a :class:`~perpscope.venues.ws.TradeHistory`)."""

    def __init__(self, *, api_url: str | None = None, timeout_s: float = 10.0) -> None:
        self._http = RestJson(api_url or DERIBIT_API_URL, timeout_s)

    async def _get(self, params: dict[str, Any]) -> Any:
        doc = await self._http.get(_PATH, params, _WHERE)
        if not isinstance(doc, dict):
            raise DataContractError(f"{_WHERE}: answer is not a JSON-RPC object")
        if "error" in doc:
            raise TransientVenueError(f"{_WHERE}: error {doc['error']}")
        result = doc.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("trades"), list):
            raise DataContractError(f"{_WHERE}: result has no 'trades' list")
        return result

    async def fetch_trades(
        self, instrument: Instrument, start_ms: int, end_ms: int
    ) -> list[tuple[int, int, float, bool]]:
        """Trades with ``start_ms <= timestamp < end_ms`` as ``(trade_seq, ms, base qty, taker
        bought)``, oldest first."""
        name = venue_symbol(instrument)
        inverse = instrument.quote == "USD"
        out: list[tuple[int, int, float, bool]] = []
        seen: set[int] = set()
        start = start_ms
        for _ in range(_MAX_PAGES):
            result = await self._get({
                "instrument_name": name, "start_timestamp": start,
                "end_timestamp": end_ms - 1, "count": _PAGE, "sorting": "asc",
            })  # fmt: skip
            trades = result["trades"]
            for t in trades:
                try:
                    seq, ts = t["trade_seq"], t["timestamp"]
                    px, amount = float(t["price"]), float(t["amount"])
                    buy = t["direction"] == "buy"
                except (KeyError, TypeError, ValueError) as exc:
                    raise DataContractError(f"{_WHERE}: bad trade row ({exc})") from None
                if type(seq) is not int or type(ts) is not int or not px > 0:
                    raise DataContractError(f"{_WHERE}: bad trade row {t!r:.120}")
                if seq in seen or not start_ms <= ts < end_ms:
                    continue
                seen.add(seq)
                out.append((seq, ts, amount / px if inverse else amount, buy))
            if not result.get("has_more") or not trades:
                break
            last = trades[-1]["timestamp"]
            if last <= start and len(trades) >= _PAGE:
                raise DataContractError(f"{_WHERE}: more than {_PAGE} trades in one millisecond")
            start = last
        out.sort(key=lambda r: r[0])
        return out

    async def close(self) -> None:
        """Release the HTTP session."""
        await self._http.close()
