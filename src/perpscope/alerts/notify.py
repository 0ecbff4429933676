"""Notifications through apprise, delivered in the background, retried, never lost.

Each notification channel is an apprise URL (``json://host/path``, ``tgram://token/chat``,
``discord://...``, ``mailto://...``, ``ntfy://...``: see apprise's list). A URL holds secrets
(tokens, passwords), so perpscope never prints one: a channel is named by its scheme and a
short hash of the whole URL (``json#3f2a91c0``), which is also how the store records who has
received an event.

:class:`Dispatcher` delivers on its own thread, so a slow or dead channel never blocks the
service: a failed delivery is retried with exponential backoff (1 s doubling to a minute), and
whatever is still undelivered when the service stops stays marked so in the store; the next
start delivers it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from perpscope.errors import ConfigError

__all__ = [
    "Delivery",
    "Dispatcher",
    "channel_id",
    "notify_urls",
    "validate_urls",
]

BACKOFF_S = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0)


def channel_id(url: str) -> str:
    """The printable name of a channel: its scheme and 8 hex digits of the URL's SHA-256."""
    scheme = url.split("://", 1)[0] if "://" in url else "url"
    return f"{scheme}#{hashlib.sha256(url.encode()).hexdigest()[:8]}"


def notify_urls(configured: Sequence[str], environ: Mapping[str, str]) -> tuple[str, ...]:
    """The configured URLs plus ``PERPSCOPE_NOTIFY`` (comma-separated), without repeats."""
    extra = [u.strip() for u in environ.get("PERPSCOPE_NOTIFY", "").split(",") if u.strip()]
    return tuple(dict.fromkeys([*configured, *extra]))


def _apprise(url: str) -> object | None:
    import apprise

    logging.getLogger("apprise").setLevel(logging.CRITICAL)  # failures are reported by us
    client = apprise.Apprise()
    return client if client.add(url) else None


def validate_urls(urls: Sequence[str]) -> None:
    """Refuse a URL apprise cannot use.

    Raises:
        ConfigError: naming the channel (never the URL) and why.
    """
    for i, url in enumerate(urls):
        if "://" not in url:
            raise ConfigError(
                f"alerts.notify[{i}] ({channel_id(url)}): not a URL (apprise URLs look like "
                "'json://host/path' or 'tgram://token/chat')"
            )
        if _apprise(url) is None:
            scheme = url.split("://", 1)[0]
            raise ConfigError(
                f"alerts.notify[{i}] ({channel_id(url)}): apprise cannot use this "
                f"'{scheme}://' URL (unknown service or malformed)"
            )


@dataclass
class Delivery:
    """One message for the channels that have not received it yet."""

    key: object
    title: str
    body: str
    pending: set[str]
    attempts: dict[str, int] = field(default_factory=dict)
    next_try: dict[str, float] = field(default_factory=dict)


Sender = Callable[[str, str, str], bool]


def apprise_sender(urls: Iterable[str]) -> Sender:
    """A sender over ``urls``: ``send(channel, title, body)`` -> accepted."""
    clients = {channel_id(u): _apprise(u) for u in urls}

    def send(channel: str, title: str, body: str) -> bool:
        client = clients.get(channel)
        try:
            return bool(client is not None and client.notify(title=title, body=body))  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - a broken channel must not stop the service
            return False

    return send


class Dispatcher:
    """Delivers messages on a background thread with retries.

    Args:
        channels: the channel ids to deliver to.
        send: ``send(channel, title, body) -> bool`` (see :func:`apprise_sender`).
        backoff_s: waits between attempts of one channel (the last repeats).
        clock: monotonic time source.
    """

    def __init__(
        self,
        channels: Sequence[str],
        send: Sender,
        *,
        backoff_s: Sequence[float] = BACKOFF_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channels = tuple(channels)
        self._send = send
        self._backoff = tuple(backoff_s)
        self._clock = clock
        self._queue: list[Delivery] = []
        self._done: list[tuple[object, str]] = []
        self._failed: list[tuple[object, str, int]] = []
        self._cv = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="perpscope-notify", daemon=True)
        self._thread.start()

    def submit(self, key: object, title: str, body: str, channels: Iterable[str]) -> None:
        """Queue ``body`` for ``channels`` (those of this dispatcher; others are ignored)."""
        pending = {c for c in channels if c in self.channels}
        if not pending:
            return
        with self._cv:
            self._queue.append(Delivery(key, title, body, pending))
            self._cv.notify()

    def results(self) -> tuple[list[tuple[object, str]], list[tuple[object, str, int]]]:
        """Deliveries since the last call: ``(key, channel)`` done, ``(key, channel, attempt)``
        failed."""
        with self._cv:
            done, failed = self._done, self._failed
            self._done, self._failed = [], []
        return done, failed

    def pending(self) -> int:
        """Messages with at least one channel still to deliver."""
        with self._cv:
            return len(self._queue)

    def drain(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for every queued message to be delivered; True if so."""
        end = self._clock() + timeout_s
        with self._cv:
            while self._queue and self._clock() < end:
                self._cv.wait(min(0.05, max(0.0, end - self._clock())))
            return not self._queue

    def close(self) -> None:
        """Stop the thread (undelivered messages stay undelivered)."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._thread.join(timeout=10)

    def _due(self) -> tuple[Delivery, str] | None:
        now = self._clock()
        for d in self._queue:
            for c in sorted(d.pending):
                if d.next_try.get(c, 0.0) <= now:
                    return d, c
        return None

    def _run(self) -> None:
        while True:
            with self._cv:
                job = None
                while not self._stopping and (job := self._due()) is None:
                    self._cv.wait(0.05)
                if self._stopping:
                    return
            assert job is not None
            delivery, channel = job
            ok = self._send(channel, delivery.title, delivery.body)
            with self._cv:
                n = delivery.attempts[channel] = delivery.attempts.get(channel, 0) + 1
                if ok:
                    delivery.pending.discard(channel)
                    self._done.append((delivery.key, channel))
                    if not delivery.pending:
                        self._queue.remove(delivery)
                else:
                    wait = self._backoff[min(n - 1, len(self._backoff) - 1)]
                    delivery.next_try[channel] = self._clock() + wait
                    self._failed.append((delivery.key, channel, n))
                self._cv.notify_all()
