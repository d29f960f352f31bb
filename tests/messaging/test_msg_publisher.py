"""Publisher and AsyncPublisher: min_receivers, retry_for, codecs."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from messaging_helpers import Side

from rcache.codecs import Codec
from rcache.errors import BackendError, ConfigurationError, EncodeError


def _late_subscriber(server: Any, channel: str, delay: float) -> tuple[threading.Thread, list[Any]]:
    """Subscribe with plain redis-py after ``delay`` s; collect what arrives for 3 s."""
    got: list[Any] = []

    def run() -> None:
        with server.client() as r, r.pubsub() as p:
            time.sleep(delay)
            p.subscribe(channel)
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                m = p.get_message(ignore_subscribe_messages=True, timeout=0.1)
                if m is not None:
                    got.append(m["data"])
                    return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, got


def test_retries_until_a_subscriber_joins(side: Side, redis_server: Any, channel: str) -> None:
    pub = side.publisher(redis_server.url)
    thread, got = _late_subscriber(redis_server, channel, delay=0.3)
    t0 = time.monotonic()
    result = side(pub.publish(channel, b"hello", min_receivers=1, retry_for=5))
    elapsed = time.monotonic() - t0
    thread.join(5)
    assert result.ok and result.receivers == 1 and result.attempts > 1
    assert elapsed >= 0.25
    assert got == [b"hello"]


def test_gives_up_after_retry_for(side: Side, redis_server: Any, channel: str) -> None:
    pub = side.publisher(redis_server.url)
    t0 = time.monotonic()
    result = side(pub.publish(channel, b"nobody", min_receivers=1, retry_for=0.5))
    elapsed = time.monotonic() - t0
    assert result == (0, result.attempts, False) and result.attempts > 1
    assert 0.5 <= elapsed < 3.0  # wide margins: a shared machine


def test_defaults_publish_once(side: Side, redis_server: Any, channel: str) -> None:
    result = side(side.publisher(redis_server.url).publish(channel, "text"))
    assert tuple(result) == (0, 1, True)


def test_codec_round_trip(side: Side, redis_server: Any, channel: str) -> None:
    pub = side.publisher(redis_server.url, codec=Codec())
    sub = side.subscriber(redis_server.url, codec=Codec())
    side(sub.subscribe(channel))
    assert side(pub.publish(channel, {"id": 7})).receivers == 1
    assert side(sub.get_message(timeout=5)).data == {"id": 7}


def test_bad_arguments(side: Side, redis_server: Any, channel: str) -> None:
    pub = side.publisher(redis_server.url)
    with pytest.raises(EncodeError):
        side(pub.publish(channel, {"needs": "a codec"}))
    with pytest.raises(ConfigurationError):
        side(pub.publish(channel, b"x", min_receivers=-1))


def test_connection_errors_are_retried_then_raised(
    side: Side, fresh_server: Any, channel: str
) -> None:
    fresh_server.stop()
    pub = side.publisher(fresh_server.url)
    with pytest.raises(BackendError):
        side(pub.publish(channel, b"x", retry_for=0.3))
