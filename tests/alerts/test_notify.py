"""Delivery through apprise to a real HTTP receiver on 127.0.0.1: retries, backoff, secrets."""

from __future__ import annotations

import time

import pytest

from perpscope.alerts.notify import (
    Dispatcher,
    apprise_sender,
    channel_id,
    notify_urls,
    validate_urls,
)
from perpscope.errors import ConfigError
from tests.alerts.receiver import Receiver, free_port


def test_channel_ids_hide_the_url() -> None:
    url = "tgram://123456789:AAE-secret-token/987654321"
    cid = channel_id(url)
    assert cid.startswith("tgram#")
    assert len(cid) == len("tgram#") + 8
    assert "secret" not in cid
    assert channel_id(url) == cid
    assert channel_id(url + "0") != cid


def test_environment_channels_add_to_the_configured_ones_without_repeats() -> None:
    env = {"PERPSCOPE_NOTIFY": " json://a/b , ntfy://topic,json://a/b,"}
    assert notify_urls(["json://a/b"], env) == ("json://a/b", "ntfy://topic")
    assert notify_urls([], {}) == ()


@pytest.mark.parametrize(
    ("url", "secret"),
    [("nosuch://t0ken/chat", "t0ken"), ("no-scheme-s3cret", "s3cret"), ("json://:p4ss@", "p4ss")],
)
def test_unusable_urls_are_refused_by_channel_never_by_url(url: str, secret: str) -> None:
    with pytest.raises(ConfigError, match=r"alerts\.notify\[1\]") as err:
        validate_urls(["json://127.0.0.1:1/ok", url])
    assert secret not in str(err.value)


def test_a_dead_channel_is_retried_with_backoff_and_delivered_when_it_returns() -> None:
    receiver = Receiver(free_port())
    cid = channel_id(receiver.url)
    d = Dispatcher([cid], apprise_sender([receiver.url]), backoff_s=(0.2, 0.4))
    try:
        d.submit("k1", "title", "body one", [cid])
        assert not d.drain(1.0)  # nobody listens: connection refused, retried
        done, failed = d.results()
        assert done == []
        attempts = [n for _, _, n in failed]
        assert attempts[:3] == [1, 2, 3]
        # backoff 0.2 then 0.4 s (repeating): about 3-4 attempts fit in a second, never dozens
        assert len(attempts) <= 5
        receiver.start()
        assert d.drain(5.0)
        done, _ = d.results()
        assert done == [("k1", cid)]
        assert [p["message"] for p in receiver.posts] == ["body one"]
        assert receiver.posts[0]["title"] == "title"
    finally:
        d.close()
        receiver.stop()


def test_one_dead_channel_does_not_hold_back_a_live_one() -> None:
    live, dead = Receiver(free_port()).start(), Receiver(free_port())
    ids = [channel_id(live.url), channel_id(dead.url)]
    d = Dispatcher(ids, apprise_sender([live.url, dead.url]), backoff_s=(0.1,))
    try:
        for k in range(3):
            d.submit(k, "t", f"m{k}", ids)
        deadline = time.monotonic() + 5
        while len(live.posts) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(p["message"] for p in live.posts) == ["m0", "m1", "m2"]
        assert d.pending() == 3  # still owed to the dead channel
        done, _ = d.results()
        assert sorted(k for k, c in done if c == ids[0]) == [0, 1, 2]
    finally:
        d.close()
        live.stop()


def test_messages_for_unknown_channels_are_ignored() -> None:
    d = Dispatcher(["json#00000000"], lambda c, t, b: True)
    try:
        d.submit("k", "t", "b", ["ntfy#11111111"])
        assert d.pending() == 0
    finally:
        d.close()
