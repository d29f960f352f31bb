"""The blocking wire under rcache's pool: kernel socket timeouts and the direct reply read.

Every test runs against a real redis-server, over TCP and over a unix socket. A slow
reply is made with ``DEBUG SLEEP`` from another connection (the server is single
threaded, so every client waits behind it).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.exceptions as rex

from rcache import _wire
from rcache.adapter import RedisAdapter
from rcache.errors import BackendTimeout
from rcache.ops import Batch


@pytest.fixture(params=["tcp", "unix"])
def url(request: pytest.FixtureRequest, fresh_server: Any) -> str:
    return str(fresh_server.url if request.param == "tcp" else fresh_server.unix_url)


@pytest.fixture
def adapter(url: str) -> Iterator[RedisAdapter]:
    made = RedisAdapter.from_url(url, socket_timeout=0.25, retry_attempts=1)
    yield made
    made.close()


def _stall(url: str, seconds: float) -> threading.Thread:
    """Keep the server busy for ``seconds`` from another connection; return the thread."""
    client = redis.Redis.from_url(url)

    def run() -> None:
        try:
            client.execute_command("DEBUG", "SLEEP", str(seconds))
        finally:
            client.close()

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.1)  # the DEBUG SLEEP has started
    return thread


def test_the_pool_builds_kernel_timeout_connections(adapter: RedisAdapter) -> None:
    adapter.execute("PING")
    pool = adapter.client.connection_pool
    [conn] = pool._available_connections
    assert type(conn) in _wire.FAST
    assert conn._sock.gettimeout() is None  # blocking: the kernel enforces the timeout


def test_a_slow_reply_is_a_timeout_and_the_connection_is_replaced(
    adapter: RedisAdapter, url: str, key_prefix: str
) -> None:
    adapter.execute("SET", key_prefix + "k", b"v")
    first = adapter.execute("CLIENT", "ID")
    stall = _stall(url, 1.0)
    t0 = time.monotonic()
    try:
        with pytest.raises(BackendTimeout):
            adapter.execute("GET", key_prefix + "k")
        waited = time.monotonic() - t0
    finally:
        stall.join()
    assert 0.2 < waited < 0.9  # the socket timeout (0.25 s), not the whole stall
    # The timed-out connection was dropped: the next command is answered on a new one,
    # never with the late reply of the command that timed out.
    assert adapter.execute("GET", key_prefix + "k") == b"v"
    assert adapter.execute("CLIENT", "ID") != first


def test_a_slow_batch_is_a_timeout(adapter: RedisAdapter, url: str, key_prefix: str) -> None:
    adapter.execute("PING")
    stall = _stall(url, 1.0)
    try:
        with pytest.raises(BackendTimeout):
            adapter.execute_batch(Batch([("GET", key_prefix + "a"), ("GET", key_prefix + "b")]))
    finally:
        stall.join()
    assert adapter.execute_batch(Batch([("PING",), ("ECHO", b"x")])) == [True, b"x"]


def test_redis_py_own_calls_on_these_connections_time_out_as_timeouts(
    adapter: RedisAdapter, url: str
) -> None:
    client = adapter.client  # redis-py's own read path on rcache's connections
    assert client.ping() is True
    stall = _stall(url, 1.0)
    try:
        with pytest.raises(rex.TimeoutError):
            client.get("x")
    finally:
        stall.join()
    assert client.ping() is True


def test_a_pub_sub_read_without_timeout_waits_past_the_socket_timeout(
    adapter: RedisAdapter, url: str, key_prefix: str
) -> None:
    channel = key_prefix + "ch"
    pubsub = adapter.client.pubsub()
    try:
        pubsub.subscribe(channel)
        assert pubsub.get_message(timeout=1.0)["type"] == "subscribe"
        publisher = redis.Redis.from_url(url)
        timer = threading.Timer(0.6, publisher.publish, args=(channel, b"late"))
        timer.start()
        try:
            message = next(pubsub.listen())  # blocks: no timeout, 0.6 s > 0.25 s
        finally:
            timer.join()
            publisher.close()
        assert message["type"] == "message" and message["data"] == b"late"
    finally:
        pubsub.close()


def test_error_replies_rise_in_place_and_keep_the_connection(
    adapter: RedisAdapter, key_prefix: str
) -> None:
    adapter.execute("SET", key_prefix + "s", b"text")
    before = adapter.execute("CLIENT", "ID")
    replies = adapter.execute_batch(
        Batch([("INCR", key_prefix + "s"), ("GET", key_prefix + "s")], raise_on_error=False)
    )
    assert isinstance(replies[0], Exception) and "not an integer" in str(replies[0])
    assert replies[1] == b"text"
    assert adapter.execute("CLIENT", "ID") == before  # an error reply is not a failure


def test_a_large_reply_arrives_whole(adapter: RedisAdapter, key_prefix: str) -> None:
    big = bytes(range(256)) * 40_000  # 10 MB: many reads into the parser's buffer
    adapter.execute("SET", key_prefix + "big", big)
    assert adapter.execute("GET", key_prefix + "big") == big
    values = adapter.execute("MGET", *[key_prefix + "big"] * 3)
    assert values == [big, big, big]


class _GreenLikeSocket(socket.socket):
    """A socket class from outside the standard library, as gevent's and eventlet's are."""


def test_a_socket_not_from_the_standard_library_keeps_python_timeouts(
    url: str, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # gevent keeps its sockets' descriptors non-blocking and times out itself: kernel
    # timeouts would never fire there, and clearing the socket's timeout would wait forever.
    monkeypatch.setattr(socket, "socket", _GreenLikeSocket)
    adapter = RedisAdapter.from_url(url, socket_timeout=0.25, retry_attempts=1)
    try:
        adapter.execute("PING")
        [conn] = adapter.client.connection_pool._available_connections
        assert type(conn._sock) is _GreenLikeSocket
        assert conn._sock.gettimeout() == 0.25
        stall = _stall(url, 1.0)
        try:
            t0 = time.monotonic()
            with pytest.raises(BackendTimeout):
                adapter.execute("GET", key_prefix + "k")
            assert time.monotonic() - t0 < 0.9
        finally:
            stall.join()
    finally:
        adapter.close()


def test_a_large_write_to_a_stalled_server_times_out_within_the_socket_timeout(
    adapter: RedisAdapter, url: str, key_prefix: str
) -> None:
    # Larger than the socket buffers: the write blocks while the server sleeps. It is
    # bounded as a whole by the socket timeout (0.25 s), not per send() (which took 0.8 s
    # here), and reported as a timeout on both paths.
    value = b"x" * (32 * 1024 * 1024)
    pool = adapter.client.connection_pool
    warm = [pool.get_connection(), pool.get_connection()]  # one connected socket per write
    for conn in warm:
        pool.release(conn)
    stall = _stall(url, 2.0)
    try:
        t0 = time.monotonic()
        with pytest.raises(BackendTimeout):
            adapter.execute("SET", key_prefix + "big", value, idempotent=False)
        first = time.monotonic() - t0
        t0 = time.monotonic()
        with pytest.raises(rex.TimeoutError):
            adapter.client.set(key_prefix + "big", value)
        second = time.monotonic() - t0
    finally:
        stall.join()
    assert first < 0.7 and second < 0.7
