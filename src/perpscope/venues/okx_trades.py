"""OKX's past trades of a swap (or spot pair) by time, to fill a gap of its live trade stream.

``GET /api/v5/market/history-trades?instId=&type=2&after=&limit=100`` (``type=2``: paged by
timestamp) answers ``{code: "0", data: [{instId, tradeId, px, sz, side, ts}]}``, NEWEST first,
rows strictly older than ``after``. Sizes of a swap are contracts: one request to
``GET /api/v5/public/instruments?instType=SWAP&instId=`` gives ``ctVal x ctMult`` and ``ctType``
(linear: base coin per contract; inverse: USD, base = contracts x USD / price). ``side`` is the
taker's.

One request at a time (:class:`~perpscope.venues._rest_common.RestJson`), far under OKX's 10
requests per 2 s for this endpoint.
"""

from __future__ import annotations

from typing import Any, Final

from perpscope.domain.symbols import Instrument, InstrumentKind
from perpscope.errors import DataContractError, TransientVenueError
from perpscope.venues._rest_common import RestJson
from perpscope.venues.okx_parse import inst_id

__all__ = ["OKX_API_URL", "OkxTradeHistory"]

OKX_API_URL: Final = "https://www.okx.com"
_TRADES: Final = "/api/v5/market/history-trades"
_INSTRUMENTS: Final = "/api/v5/public/instruments"
_PAGE: Final = 100
_MAX_PAGES: Final = 500


class OkxTradeHistory:
    """OKX REST trades by time (a :class:`~perpscope.venues.ws.TradeHistory`)."""

    def __init__(
        self, *, api_url: str | None = None, timeout_s: float = 10.0, page: int = _PAGE
    ) -> None:
        self._page = max(1, min(page, _PAGE))
        self._http = RestJson(api_url or OKX_API_URL, timeout_s)
        self._sizes: dict[str, tuple[float, bool]] = {}

    async def _get(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        where = f"okx {path.lstrip('/')}"
        doc = await self._http.get(path, params, where)
        if not isinstance(doc, dict) or str(doc.get("code")) != "0":
            code = doc.get("code") if isinstance(doc, dict) else None
            msg = doc.get("msg") if isinstance(doc, dict) else None
            raise TransientVenueError(f"{where}: code {code!r}: {msg!r}")
        data = doc.get("data")
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DataContractError(f"{where}: 'data' is not a list of objects")
        return data

    async def _size(self, symbol: str) -> tuple[float, bool]:
        if symbol not in self._sizes:
            rows = await self._get(_INSTRUMENTS, {"instType": "SWAP", "instId": symbol})
            if not rows:
                raise DataContractError(f"okx public/instruments: no row for {symbol}")
            r = rows[0]
            try:
                per = float(r["ctVal"]) * float(r.get("ctMult") or 1)
            except (KeyError, TypeError, ValueError) as exc:
                raise DataContractError(f"okx public/instruments: bad ctVal ({exc})") from None
            if not per > 0 or r.get("ctType") not in ("linear", "inverse"):
                raise DataContractError(f"okx public/instruments: bad contract of {symbol}")
            self._sizes[symbol] = (per, r["ctType"] == "inverse")
        return self._sizes[symbol]

    async def fetch_trades(
        self, instrument: Instrument, start_ms: int, end_ms: int
    ) -> list[tuple[int, int, float, bool]]:
        """Trades with ``start_ms <= ts < end_ms`` as ``(tradeId, ms, base qty, taker bought)``,
        oldest first (pages walk backwards from ``end_ms``)."""
        spot = instrument.kind is InstrumentKind.SPOT
        symbol = f"{instrument.base}-{instrument.quote}" if spot else inst_id(instrument)
        per, inverse = (1.0, False) if spot else await self._size(symbol)
        out: dict[int, tuple[int, int, float, bool]] = {}
        after = end_ms
        for _ in range(_MAX_PAGES):
            rows = await self._get(_TRADES, {"instId": symbol, "type": "2", "after": after,
                                             "limit": self._page})  # fmt: skip
            if not rows:
                break
            oldest = after
            for r in rows:
                try:
                    tid, ts = int(r["tradeId"]), int(r["ts"])
                    px, sz = float(r["px"]), float(r["sz"])
                    side = r["side"]
                except (KeyError, TypeError, ValueError) as exc:
                    raise DataContractError(f"okx market/history-trades: bad row ({exc})") from None
                if not px > 0 or side not in ("buy", "sell"):
                    raise DataContractError(f"okx market/history-trades: bad row {r!r:.120}")
                oldest = min(oldest, ts)
                if start_ms <= ts < end_ms:
                    qty = sz * per / px if inverse else sz * per
                    out[tid] = (tid, ts, qty, side == "buy")
            if oldest < start_ms or len(rows) < self._page:
                break
            if oldest + 1 >= after:
                raise DataContractError(f"okx market/history-trades: more than {self._page} trades "
                                        "in one millisecond")  # fmt: skip
            after = oldest + 1  # strictly older than `after`: re-read the oldest ms, de-duplicated
        return sorted(out.values(), key=lambda r: (r[1], r[0]))

    async def close(self) -> None:
        """Release the HTTP session."""
        await self._http.close()
