"""The HTTP client every REST gap filler (``*_trades``) shares: JSON answers of GET requests.

A plain aiohttp session, opened on the first request and one request at a time: gap fills are
rare and small, and this keeps the live path free of ccxt. Each venue module keeps only what is
its own: the path, the paging and the envelope of the answer.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from perpscope.errors import TransientVenueError

__all__ = ["RestJson"]


class RestJson:
    """GET requests to one venue's API, answered with JSON."""

    __slots__ = ("_base", "_session", "_timeout")

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def get(self, path: str, params: dict[str, Any], where: str) -> Any:
        """The decoded JSON answer of ``GET <base><path>?<params>``, whatever its shape.

        Raises:
            TransientVenueError: ``"<where>: <error>"`` when the request fails, times out or the
                answer is not JSON (a retry may succeed).
        """
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(self._base + path, params=params) as resp:
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise TransientVenueError(f"{where}: {type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        """Release the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
