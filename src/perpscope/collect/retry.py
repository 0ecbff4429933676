"""Retries and rate-limit pools: the one place perpscope retries a venue call.

Only the transient branch of the error tree is retried
(:class:`~perpscope.errors.TransientVenueError`): exponential backoff with jitter. A rate limit
(:class:`~perpscope.errors.RateLimitError`, HTTP 429) honours the venue's ``Retry-After`` and
pauses every request of that venue's rate-limit pool, not only the one that was refused; a ban
(HTTP 418) pauses every pool of the venue, and a ban without ``Retry-After`` is not retried.
Permanent venue errors and contract violations are never retried.

Pacing keeps a stream under its pool before the venue has to say no: each request takes a slot
``cost x window / (limit x fill)`` seconds after the previous one of its pool (``fill`` = 0.8, so
our own requests use at most 80% of a budget, and a request late on the wire does not overrun
it). Where the venue reports the weight already used (Binance's ``X-MBX-USED-WEIGHT-1m``, which
counts every client on the IP), a response showing that one more request would not fit pauses
the weight pool for a whole window, so the budget has drained before the next request.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from perpscope.errors import RateLimitError, TransientVenueError, VenueBannedError
from perpscope.venues.base import Capabilities, RatePool, last_response_header

__all__ = ["PoolGates", "RetryPolicy", "call_with_retry"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient errors are retried.

    Attributes:
        attempts: retries after the first try before giving up.
        base_s: backoff before the first retry; it doubles each retry, up to ``cap_s``.
        cap_s: longest backoff.
        default_retry_after_s: pause after a rate limit that sent no ``Retry-After``.
        max_retry_after_s: a longer ``Retry-After`` (a long ban) stops the stream instead.
    """

    attempts: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0
    default_retry_after_s: float = 10.0
    max_retry_after_s: float = 600.0

    def backoff_s(self, retry: int, rng: random.Random) -> float:
        """Backoff before retry ``retry`` (1-based): half fixed, half random ("equal jitter")."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (retry - 1))
        return float(ceiling / 2 + rng.uniform(0, ceiling / 2))


@dataclass
class PoolGates:
    """Per-pool gates of one venue: pacing between requests and pauses after rate limits.

    Args:
        capabilities: the venue's pools.
        pace: space requests to stay under each pool's limit.
        limits: pools that replace the venue's pools of the same name (a smaller budget).
        fill: share of each pool's limit that pacing aims at.
        clock: monotonic clock (seconds).
        sleep: how to wait (``asyncio.sleep``).
    """

    capabilities: Capabilities
    pace: bool = True
    limits: tuple[RatePool, ...] = ()
    fill: float = 0.8
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _paused_until: dict[str, float] = field(default_factory=dict)
    _next_slot: dict[str, float] = field(default_factory=dict)

    def pool(self, name: str) -> RatePool | None:
        """The pool called ``name`` (a replacement from ``limits`` first)."""
        for p in (*self.limits, *self.capabilities.pools):
            if p.name == name:
                return p
        return None

    def spacing_s(self, pool: str, cost: float = 1.0) -> float:
        """Seconds between two requests of ``cost`` in ``pool`` that keep it under its limit."""
        p = self.pool(pool)
        if not self.pace or p is None:
            return 0.0
        return cost * p.min_spacing_s / self.fill

    async def acquire(self, pool: str, cost: float = 1.0) -> None:
        """Wait until ``pool`` is neither paused nor ahead of its pace, then take a slot."""
        while True:
            now = self.clock()
            ready = max(self._paused_until.get(pool, 0.0), self._next_slot.get(pool, 0.0))
            if ready <= now:
                self._next_slot[pool] = now + self.spacing_s(pool, cost)
                return
            await self.sleep(ready - now)

    def pause(self, pool: str, seconds: float, *, every_pool: bool = False) -> None:
        """Hold every request of ``pool`` (or of every pool) for ``seconds`` from now."""
        until = self.clock() + seconds
        pools = [p.name for p in self.capabilities.pools] if every_pool else [pool]
        for name in pools:
            self._paused_until[name] = max(self._paused_until.get(name, 0.0), until)

    def paused_until(self, pool: str) -> float:
        """Monotonic time until which ``pool`` is paused (0 when it is not)."""
        return self._paused_until.get(pool, 0.0)

    def observe_used(self, used: float, cost: float) -> bool:
        """Take the venue's count of weight used in its weight pool (all clients of the IP).

        When one more request of ``cost`` would not fit, pause the weight pool for a whole
        window: the venue does not say when the used weight leaves its window, but after one
        window all of it has. Returns whether it paused.
        """
        name = self.capabilities.weight_pool
        p = self.pool(name) if name else None
        if not self.pace or p is None or name is None or used + cost <= p.limit:
            return False
        self.pause(name, p.window_s)
        return True

    def observe_response(self) -> bool:
        """Read the used-weight header of the calling task's latest response, if the venue
        sends one, and slow down as :meth:`observe_used` says."""
        header = self.capabilities.used_weight_header
        value = last_response_header(header) if header else None
        if value is None:
            return False
        try:
            used = float(value)
        except ValueError:
            return False
        heaviest = max([1.0, *self.capabilities.page_weight.values()])
        return self.observe_used(used, heaviest)


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    pool: str,
    gates: PoolGates,
    policy: RetryPolicy,
    cost: float = 1.0,
    rng: random.Random | None = None,
    on_retry: Callable[[Exception, float], None] | None = None,
) -> T:
    """Call ``fn`` through ``pool``'s gate (taking ``cost`` of it), retrying transient errors.

    Raises:
        RateLimitError: the venue asked for a pause longer than ``policy.max_retry_after_s``,
            or kept rate-limiting past ``policy.attempts`` retries.
        TransientVenueError: still failing after ``policy.attempts`` retries.
        PerpscopeError: any other error of ``fn``, at once.
    """
    rng = rng or random.Random()
    retry = 0
    while True:
        await gates.acquire(pool, cost)
        try:
            result = await fn()
        except RateLimitError as exc:
            retry += 1
            banned = isinstance(exc, VenueBannedError)
            if banned and exc.retry_after_s is None:
                raise  # a ban of unknown length: retrying blindly would only extend it
            wait = exc.retry_after_s
            wait = policy.default_retry_after_s if wait is None else wait
            if retry > policy.attempts or wait > policy.max_retry_after_s:
                raise
            gates.pause(pool, wait, every_pool=banned)
            if on_retry:
                on_retry(exc, wait)
        except TransientVenueError as exc:
            retry += 1
            if retry > policy.attempts:
                raise
            delay = policy.backoff_s(retry, rng)
            if on_retry:
                on_retry(exc, delay)
            await gates.sleep(delay)
        else:
            gates.observe_response()
            return result
