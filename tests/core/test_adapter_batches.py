"""The blocking adapter's batch send: several commands packed onto one pooled connection.

Standalone and Sentinel clients skip redis-py's ``Pipeline`` object; these tests hold the
direct send to what the pipeline did: the same parsed replies, answered errors in place,
``NOSCRIPT`` re-sent as ``EVAL``, transient errors retried (or reported) with the
connection dropped so that it can never hand a late reply to the next batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from rcache.adapter import RedisAdapter
from rcache.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ConfigurationError,
    RCacheError,
)
from rcache.ops import Batch
from rcache.scripts import Script

ECHO_KEY = Script("return {KEYS[1], ARGV[1]}")


@pytest.fixture
def adapters() -> Iterator[list[RedisAdapter]]:
    """Collect adapters made by a test; close them afterwards."""
    made: list[RedisAdapter] = []
    yield made
    for adapter in made:
        adapter.close()


def make(adapters: list[RedisAdapter], url: str, **settings: Any) -> RedisAdapter:
    adapter = RedisAdapter.from_url(url, **settings)
    adapters.append(adapter)
    return adapter


def in_use(adapter: RedisAdapter) -> int:
    """Return how many pooled connections are checked out right now."""
    return len(adapter.client.connection_pool._in_use_connections)


def test_standalone_and_unix_adapters_send_batches_directly(
    adapters: list[RedisAdapter], redis_server: Any
) -> None:
    assert make(adapters, redis_server.url)._direct
    assert make(adapters, redis_server.unix_url)._direct


def test_a_client_that_pins_one_connection_keeps_the_pipeline(redis_server: Any) -> None:
    client = redis.Redis.from_url(redis_server.url, single_connection_client=True)
    adapter = RedisAdapter(client=client)
    try:
        assert not adapter._direct
        assert adapter.execute_batch(Batch([("PING",), ("ECHO", b"x")])) == [True, b"x"]
    finally:
        client.close()


def test_replies_are_parsed_exactly_like_the_pipeline(
    adapters: list[RedisAdapter], redis_server: Any, key_prefix: str
) -> None:
    adapter = make(adapters, redis_server.url)
    k = key_prefix + "k"

    def commands() -> list[tuple[Any, ...]]:
        return [
            ("SET", k, b"v", "PX", 60_000),
            ("SET", k, b"w", "NX"),
            ("GET", k),
            ("PTTL", k),
            ("EXISTS", k, key_prefix + "absent"),
            ("MGET", k, key_prefix + "absent"),
            ("HSET", k + "h", "f", "1"),
            ("HGETALL", k + "h"),
            ("EXPIRE", k + "h", 60),
            ("PING",),
            ("UNLINK", k + "h"),
        ]

    direct = adapter.execute_batch(Batch(commands()))
    pipe = adapter.client.pipeline(transaction=False)
    for cmd in commands():
        pipe.execute_command(*cmd)
    expected = pipe.execute()
    assert direct[3] > 0 and expected[3] > 0
    direct[3] = expected[3] = "pttl"  # the clock moved between the two
    assert direct == expected
    assert direct[:3] == [True, None, b"v"]
    assert in_use(adapter) == 0


def test_answered_errors_stay_in_place_and_the_connection_stays_in_step(
    adapters: list[RedisAdapter], redis_server: Any, key_prefix: str
) -> None:
    adapter = make(adapters, redis_server.url, max_connections=1)
    k = key_prefix + "list"
    adapter.execute("LPUSH", k, b"x", idempotent=False)
    replies = adapter.execute_batch(
        Batch([("LLEN", k), ("GET", k), ("INCR", k), ("LLEN", k)], raise_on_error=False)
    )
    assert replies[0] == 1 and replies[3] == 1
    assert isinstance(replies[1], BackendError) and "WRONGTYPE" in str(replies[1])
    assert isinstance(replies[2], BackendError)
    with pytest.raises(BackendError, match="WRONGTYPE"):
        adapter.execute_batch(Batch([("LLEN", k), ("GET", k)]))
    # One connection, every reply read: the next batch gets its own replies.
    assert adapter.execute_batch(Batch([("ECHO", b"a"), ("ECHO", b"b")])) == [b"a", b"b"]
    assert adapter.breaker.is_closed and in_use(adapter) == 0


def test_noscript_in_a_batch_is_resent_as_eval(
    adapters: list[RedisAdapter], fresh_server: Any, key_prefix: str
) -> None:
    adapter = make(adapters, fresh_server.url)
    k = key_prefix + "n"
    adapter.execute("SCRIPT", "FLUSH")
    batch = Batch(
        [("INCR", k), ECHO_KEY([k], ["a"]), ("GET", k), ECHO_KEY([k], ["b"])], idempotent=False
    )
    replies = adapter.execute_batch(batch)
    assert replies == [1, [k.encode(), b"a"], b"1", [k.encode(), b"b"]]
    # Only the EVALSHAs were sent again (as EVAL), in the same call: INCR ran once.
    assert adapter.execute("GET", k) == b"1"
    assert adapter.stats.round_trips == 3 and in_use(adapter) == 0


def test_noscript_for_an_unknown_script_is_a_configuration_error(
    adapters: list[RedisAdapter], fresh_server: Any
) -> None:
    adapter = make(adapters, fresh_server.url)
    unknown = ("EVALSHA", "0" * 40, 0)
    with pytest.raises(ConfigurationError, match="does not know"):
        adapter.execute_batch(Batch([("PING",), unknown]))
    assert adapter.execute_batch(Batch([("ECHO", b"a"), ("ECHO", b"b")])) == [b"a", b"b"]


def test_a_batch_on_a_dead_connection_is_retried_on_a_new_one(
    adapters: list[RedisAdapter], fresh_server: Any, key_prefix: str
) -> None:
    adapter = make(adapters, fresh_server.url, max_connections=1)
    k = key_prefix + "x"
    adapter.execute("SET", k, b"1")
    fresh_server.restart()  # the pooled connection is now closed by the peer
    assert adapter.execute_batch(Batch([("GET", k), ("EXISTS", k)])) == [b"1", 1]
    assert adapter.breaker.is_closed and in_use(adapter) == 0


def test_a_timeout_mid_batch_drops_the_connection(
    adapters: list[RedisAdapter], redis_server: Any, key_prefix: str
) -> None:
    adapter = make(adapters, redis_server.url, max_connections=1, socket_timeout=0.2)
    k = key_prefix + "q"
    conn_ids = adapter.execute_batch(Batch([("CLIENT", "ID"), ("PING",)]))
    # BLPOP answers after 0.6 s: the read times out with the reply still on its way.
    with pytest.raises(BackendTimeout):
        adapter.execute_batch(Batch([("ECHO", b"first"), ("BLPOP", k, 0.6)], idempotent=False))
    assert in_use(adapter) == 0
    # The late replies never reach the next batch: it runs on a new connection.
    replies = adapter.execute_batch(Batch([("CLIENT", "ID"), ("ECHO", b"next")]))
    assert replies[1] == b"next" and replies[0] != conn_ids[0]


def test_non_idempotent_batches_are_reported_not_retried(
    adapters: list[RedisAdapter], fresh_server: Any, key_prefix: str
) -> None:
    adapter = make(adapters, fresh_server.url, retry_attempts=6, breaker_threshold=1000)
    adapter.execute("PING")
    fresh_server.stop()
    batch = Batch([("INCR", key_prefix + "n"), ("GET", key_prefix + "n")], idempotent=False)
    with pytest.raises(BackendUnavailable):
        adapter.execute_batch(batch)
    assert adapter.stats.retries == 0
    with pytest.raises(BackendUnavailable):
        adapter.execute_batch(Batch([("GET", key_prefix + "n"), ("PTTL", key_prefix + "n")]))
    assert adapter.stats.retries == 5 and in_use(adapter) == 0


def test_cluster_keeps_the_cluster_pipeline(
    adapters: list[RedisAdapter], cluster: Any, key_prefix: str
) -> None:
    adapter = make(adapters, cluster.url)
    assert not adapter._direct
    keys = [f"{key_prefix}{i}" for i in range(20)]
    adapter.execute_batch(Batch([("SET", k, b"v") for k in keys]))
    assert adapter.execute_batch(Batch([("MGET", *keys), ("EXISTS", *keys)])) == [
        [b"v"] * 20,
        20,
    ]


def test_sentinel_batches_are_sent_directly(
    adapters: list[RedisAdapter], sentinel_group: Any, key_prefix: str
) -> None:
    adapter = make(adapters, sentinel_group.url)
    assert adapter._direct
    k = key_prefix + "k"
    assert adapter.execute_batch(Batch([("SET", k, b"v"), ("GET", k), ("ROLE",)]))[:2] == [
        True,
        b"v",
    ]


def test_commands_are_packed_as_redis_py_packs_them(make_runner: Any, redis_server: Any) -> None:
    """Floats, big ints, memoryviews, multi-word command names; bool and None refused."""
    runner = make_runner(redis_server.url)
    key = f"pack:{runner.kind}"
    runner.execute("SET", key, 0.1)
    assert runner.execute("GET", key) == b"0.1"
    runner.execute("SET", key, memoryview(b"mv"))
    assert runner.execute("GET", key) == b"mv"
    runner.execute("SET", key, bytearray(b"ba"))
    assert runner.execute("GET", key) == b"ba"
    runner.execute("SET", key, 10**30)
    assert runner.execute("GET", key) == b"1" + b"0" * 30
    assert runner.execute("CONFIG GET", "maxmemory-policy")  # split into two words
    replies = runner.batch(Batch([("CONFIG GET", "maxmemory-policy"), ("GET", key)]))
    assert replies[1] == b"1" + b"0" * 30
    for bad in (True, None):
        with pytest.raises(RCacheError):
            runner.execute("SET", key, bad)
    assert runner.execute("PING") in (True, b"PONG")  # the connection is still in step
