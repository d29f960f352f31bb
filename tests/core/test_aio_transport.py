"""The asyncio transport (rcache._aio) against real redis-server processes.

Replies are compared with redis.asyncio's for the same ``execute_command`` call, one by one
and in batches; then errors, authentication, TLS, unix sockets, databases, the reply
timeout, restarts, cancellation, ordering under concurrency and the commands that must not
share a connection.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio
import redis.exceptions as rex

from rcache._aio import AsyncTransport
from rcache._clients import async_client
from rcache.adapter import AsyncRedisAdapter
from rcache.config import RedisSettings
from rcache.errors import BackendTimeout, BackendUnavailable
from rcache.ops import Batch
from rcache.scripts import Script

Command = tuple[Any, ...]
ACL_APP_USER, ACL_APP_PASSWORD = "app", "s3cret"  # the acl_server fixture's user

MIXED = Script(
    "redis.call('SET', KEYS[1], ARGV[1]) "
    "return {1, 'two', redis.call('GET', KEYS[1]), {3, false}, "
    "redis.status_reply('FINE'), redis.error_reply('ERR inner')}"
)


async def _pair(url: str, **settings: Any) -> tuple[AsyncTransport, Any]:
    s = RedisSettings.from_url(url, **settings)
    raw = async_client(s)
    return AsyncTransport(s, raw), raw


async def _close(transport: AsyncTransport, raw: Any) -> None:
    await transport.aclose()
    await raw.aclose()
    await raw.connection_pool.disconnect()  # a pool passed in is not closed by its client


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[AsyncTransport, Any]]:
    transport, raw = await _pair(redis_url)
    yield transport, raw
    await _close(transport, raw)


def _commands(p: str) -> list[Command]:
    """The commands rcache sends (objects, sessions, pages, messaging, eviction, CLI)."""
    return [
        ("SET", p + "s", b"v1"),
        ("SET", p + "s", b"v2", "GET"),
        ("SET", p + "s", b"v3", "NX"),
        ("SET", p + "s", b"v4", "XX", "PX", 60000),
        ("SET", p + "s", b"v5", "EX", 60, "GET"),
        ("GET", p + "s"),
        ("GET", p + "missing"),
        ("GETEX", p + "s", "PX", 50000),
        ("SETEX", p + "x", 100, b"1"),
        ("PSETEX", p + "y", 100000, b"2"),
        ("MSET", p + "m1", b"a", p + "m2", b"b"),
        ("MGET", p + "m1", p + "m2", p + "missing"),
        ("EXISTS", p + "m1", p + "m2", p + "missing"),
        ("PTTL", p + "s"),
        ("TTL", p + "missing"),
        ("PEXPIRE", p + "m1", 100000),
        ("PEXPIREAT", p + "m2", 4102444800000),
        ("PERSIST", p + "m1"),
        ("PERSIST", p + "missing"),
        ("TYPE", p + "m1"),
        ("INCR", p + "n"),
        ("INCRBY", p + "n", 41),
        ("INCRBYFLOAT", p + "f", 1.5),
        ("DEL", p + "x"),
        ("UNLINK", p + "y", p + "missing"),
        ("SADD", p + "set", "a", "b", b"c"),
        ("SMEMBERS", p + "set"),
        ("SMEMBERS", p + "missing"),
        ("SISMEMBER", p + "set", "a"),
        ("SREM", p + "set", "a"),
        ("SCARD", p + "set"),
        ("HSET", p + "h", "f1", b"1", "f2", 2),
        ("HGET", p + "h", "f1"),
        ("HGETALL", p + "h"),
        ("HGETALL", p + "missing"),
        ("HMGET", p + "h", "f1", "nope"),
        ("HDEL", p + "h", "f2"),
        ("HINCRBY", p + "h", "n", 3),
        ("LPUSH", p + "l", b"a", b"b", b"c"),
        ("LLEN", p + "l"),
        ("LRANGE", p + "l", 0, -1),
        ("LMOVE", p + "l", p + "l2", "RIGHT", "LEFT"),
        ("LREM", p + "l", 1, b"b"),
        ("ZADD", p + "z", 1, "a", 2.5, "b", 3, "c"),
        ("ZINCRBY", p + "z", 2, "a"),
        ("ZSCORE", p + "z", "b"),
        ("ZREVRANK", p + "z", "a"),
        ("ZRANK", p + "z", "c"),
        ("ZCARD", p + "z"),
        ("ZRANGE", p + "z", 0, -1),
        ("ZRANGE", p + "z", 0, -1, "WITHSCORES"),
        ("ZRANGE", p + "z", 0, 1, "REV", "WITHSCORES"),
        ("ZREM", p + "z", "c"),
        ("ZREMRANGEBYRANK", p + "z", 0, 0),
        ("PUBLISH", p + "channel", b"hello"),
        ("PING",),
        ("PING", "hi"),
        ("ECHO", b"echo"),
        ("LASTSAVE",),
        ("ROLE",),
        ("MEMORY", "USAGE", p + "s"),
        ("MEMORY", "USAGE", p + "s", "SAMPLES", 0),
        ("OBJECT", "ENCODING", p + "s"),
        ("CONFIG", "GET", "maxmemory*"),
        ("CONFIG GET", "maxmemory-policy"),
        ("SCRIPT", "LOAD", MIXED.source),
        ("SCRIPT", "EXISTS", MIXED.sha, "0" * 40),
        ("SCRIPT EXISTS", MIXED.sha),
        ("EVALSHA", MIXED.sha, 1, p + "e", b"val"),
        ("EVAL", "return {1, 2.5, 'x', false, true}", 0),
        ("EVAL", "return redis.call('TIME')[1] > '0'", 0),
        ("SCAN", 0, "MATCH", p + "*", "COUNT", 100000),
        ("DUMP", p + "missing"),
        ("STRLEN", p + "s"),
        ("APPEND", p + "s", b"+"),
        ("GETDEL", p + "m2"),
    ]


_UNSTABLE = {"PTTL", "TTL"}  # a millisecond may pass between the two calls


def _same(name: str, mine: Any, theirs: Any) -> bool:
    if name in _UNSTABLE and isinstance(mine, int) and mine > 0:
        return abs(mine - theirs) < 1000
    return _plain(mine) == _plain(theirs)


def _plain(value: Any) -> Any:
    """Return ``value`` with its types spelled out and errors as (class, message)."""
    if isinstance(value, BaseException):
        return ("error", type(value), str(value))
    if isinstance(value, list | tuple):
        return (type(value), [_plain(v) for v in value])
    if isinstance(value, dict):
        return (dict, {k: _plain(v) for k, v in value.items()})
    if isinstance(value, set):
        return (set, sorted(value, key=repr))
    return (type(value), value)


async def test_replies_match_redis_asyncio_command_by_command(
    pair: tuple[AsyncTransport, Any], key_prefix: str
) -> None:
    transport, raw = pair
    # Each command runs on a fresh key space for each client, so both see the same state.
    for name, prefix in (("mine", key_prefix + "a:"), ("theirs", key_prefix + "b:")):
        replies: list[Any] = []
        for command in _commands(prefix):
            try:
                if name == "mine":
                    replies.append(await transport.execute(command))
                else:
                    replies.append(await raw.execute_command(*command))
            except rex.ResponseError as exc:
                replies.append((type(exc), str(exc)))
        if name == "mine":
            mine = replies
        else:
            theirs = replies
    for command, a, b in zip(_commands(""), mine, theirs, strict=True):
        a, b = _without_prefix(a, key_prefix), _without_prefix(b, key_prefix)
        assert _same(command[0], a, b), (command, a, b)


def _without_prefix(value: Any, prefix: str) -> Any:
    # SCAN and MEMORY USAGE replies depend on the key names: compare them without prefix.
    if isinstance(value, bytes):
        return value.replace(prefix.encode() + b"a:", b"").replace(prefix.encode() + b"b:", b"")
    if isinstance(value, tuple):
        return tuple(_without_prefix(v, prefix) for v in value)
    if isinstance(value, list):
        items = [_without_prefix(v, prefix) for v in value]
        return sorted(items, key=repr) if all(isinstance(v, bytes) for v in items) else items
    return value


async def test_batch_replies_match_a_redis_asyncio_pipeline(
    pair: tuple[AsyncTransport, Any], key_prefix: str
) -> None:
    transport, raw = pair
    mine = await transport.execute_many(_commands(key_prefix + "a:"))
    pipe = raw.pipeline(transaction=False)
    for command in _commands(key_prefix + "b:"):
        pipe.execute_command(*command)
    theirs = await pipe.execute(raise_on_error=False)
    assert len(mine) == len(theirs)
    for command, a, b in zip(_commands(""), mine, theirs, strict=True):
        if isinstance(b, Exception):
            assert type(a) is type(b) and str(a) == str(b), command
            continue
        a, b = _without_prefix(a, key_prefix), _without_prefix(b, key_prefix)
        assert _same(command[0], a, b), (command, a, b)


async def test_nested_script_replies_and_errors_match(
    pair: tuple[AsyncTransport, Any], key_prefix: str
) -> None:
    transport, raw = pair
    command = ("EVAL", MIXED.source, 1, key_prefix + "k", b"v")
    mine = await transport.execute(command)
    theirs = await raw.execute_command(*command)
    assert [type(x) for x in mine] == [type(x) for x in theirs]
    assert mine[:5] == theirs[:5]
    assert isinstance(mine[5], rex.ResponseError) and str(mine[5]) == str(theirs[5])


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (("EVALSHA", "0" * 40, 0), rex.NoScriptError),
        (("NOSUCHCOMMAND",), rex.ResponseError),
        (("INCR", "{k}:wrongtype"), rex.ResponseError),
        (("SET", "k"), rex.ResponseError),
    ],
)
async def test_answered_errors_raise_the_same_classes(
    pair: tuple[AsyncTransport, Any], command: Command, error: type[Exception]
) -> None:
    transport, raw = pair
    await raw.execute_command("LPUSH", "{k}:wrongtype", b"x")
    with pytest.raises(error) as mine:
        await transport.execute(command)
    with pytest.raises(error) as theirs:
        await raw.execute_command(*command)
    assert type(mine.value) is type(theirs.value)
    assert str(mine.value) == str(theirs.value)
    assert await transport.execute(("PING",)) is True  # still in step


async def test_errors_in_a_batch_stay_in_place(
    pair: tuple[AsyncTransport, Any], key_prefix: str
) -> None:
    transport, _ = pair
    k = key_prefix + "k"
    replies = await transport.execute_many(
        [("SET", k, b"1"), ("LPUSH", k, b"x"), ("EVALSHA", "0" * 40, 0), ("GET", k)]
    )
    assert replies[0] is True and replies[3] == b"1"
    assert isinstance(replies[1], rex.ResponseError) and "WRONGTYPE" in str(replies[1])
    assert isinstance(replies[2], rex.NoScriptError)


async def test_values_that_cannot_be_sent_are_refused_like_redis_py(
    pair: tuple[AsyncTransport, Any], key_prefix: str
) -> None:
    transport, raw = pair
    for bad in (True, None, object()):
        with pytest.raises(rex.DataError) as mine:
            await transport.execute(("SET", key_prefix + "k", bad))
        with pytest.raises(rex.DataError) as theirs:
            await raw.execute_command("SET", key_prefix + "k", bad)
        assert str(mine.value) == str(theirs.value)
    # bytearray and memoryview are sent as bytes
    assert await transport.execute(("SET", key_prefix + "b", bytearray(b"ba"))) is True
    assert await transport.execute(("SET", key_prefix + "m", memoryview(b"mv"))) is True
    assert await transport.execute(("MGET", key_prefix + "b", key_prefix + "m")) == [
        b"ba",
        b"mv",
    ]
    assert await transport.execute(("PING",)) is True


async def test_out_of_memory_and_read_only_errors(
    fresh_server: Any, redis_server: Any, key_prefix: str
) -> None:
    transport, raw = await _pair(fresh_server.url)
    try:
        await raw.execute_command("CONFIG", "SET", "maxmemory-policy", "noeviction")
        await raw.execute_command("CONFIG", "SET", "maxmemory", "1")
        with pytest.raises(rex.OutOfMemoryError):
            await transport.execute(("SET", key_prefix + "k", b"x" * 1000))
        await raw.execute_command("CONFIG", "SET", "maxmemory", "0")
        await raw.execute_command("REPLICAOF", "127.0.0.1", redis_server.port)
        with pytest.raises(rex.ReadOnlyError):
            await transport.execute(("SET", key_prefix + "k", b"x"))
        [reply] = await transport.execute_many([("SET", key_prefix + "k", b"x")])
        assert isinstance(reply, rex.ReadOnlyError)
    finally:
        await _close(transport, raw)


async def test_acl_user_and_refused_credentials(acl_server: Any, key_prefix: str) -> None:
    url = f"redis://127.0.0.1:{acl_server.port}/0"
    transport, raw = await _pair(url, username=ACL_APP_USER, password=ACL_APP_PASSWORD)
    try:
        assert await transport.execute(("SET", key_prefix + "k", b"v")) is True
        assert await transport.execute(("ACL", "WHOAMI")) == ACL_APP_USER.encode()
    finally:
        await _close(transport, raw)
    for settings in ({"username": ACL_APP_USER, "password": "wrong"}, {}):
        transport, raw = await _pair(url, **settings)
        try:
            with pytest.raises(rex.AuthenticationError):
                await transport.execute(("PING",))
            assert transport.connections == 0
        finally:
            await _close(transport, raw)


async def test_password_only_authenticates_the_default_user(acl_server: Any) -> None:
    transport, raw = await _pair(acl_server.url)  # the URL carries the default password
    try:
        assert await transport.execute(("ACL", "WHOAMI")) == b"default"
    finally:
        await _close(transport, raw)


async def test_tls(tls_server: Any, key_prefix: str) -> None:
    ca = str(tls_server.tls_files.ca_cert)
    transport, raw = await _pair(tls_server.tls_url, ssl_ca_certs=ca)
    try:
        assert await transport.execute(("SET", key_prefix + "t", b"secure")) is True
        values = await asyncio.gather(*(transport.execute(("GET", key_prefix + "t")),) * 50)
        assert values == [b"secure"] * 50
    finally:
        await _close(transport, raw)
    transport, raw = await _pair(tls_server.tls_url)  # no trusted CA
    try:
        with pytest.raises(rex.ConnectionError):
            await transport.execute(("PING",))
    finally:
        await _close(transport, raw)


async def test_unix_socket_database_and_client_name(redis_server: Any, key_prefix: str) -> None:
    url = redis_server.unix_url.replace("db=0", "db=3")
    transport, raw = await _pair(url, client_name="rcache-test-aio")
    try:
        assert await transport.execute(("SET", key_prefix + "db3", b"here")) is True
        assert await transport.execute(("CLIENT", "GETNAME")) == b"rcache-test-aio"  # fallback
        listing = await raw.client_list()
        mine = [c for c in listing if c["name"] == "rcache-test-aio"]
        assert len(mine) == 2  # the shared connection and the pooled one (CLIENT GETNAME)
        assert {c["db"] for c in mine} == {"3"}
    finally:
        await _close(transport, raw)
    db0 = redis_server.client()
    try:
        assert db0.get(key_prefix + "db3") is None
        assert redis_server.client(db=3).get(key_prefix + "db3") == b"here"
    finally:
        db0.close()


async def test_one_shared_connection_pipelines_concurrent_commands(
    pair: tuple[AsyncTransport, Any], redis_server: Any, key_prefix: str
) -> None:
    transport, raw = pair
    n = 2000
    await transport.execute_many([("SET", f"{key_prefix}{i}", str(i)) for i in range(n)])
    counter = redis_server.client()
    try:
        before = counter.info("stats")["total_reads_processed"]
        values = await asyncio.gather(
            *(transport.execute(("GET", f"{key_prefix}{i}")) for i in range(n))
        )
        reads = counter.info("stats")["total_reads_processed"] - before
    finally:
        counter.close()
    assert values == [str(i).encode() for i in range(n)]  # every reply to its own caller
    assert transport.connections == 1
    assert reads < n / 5, f"{n} concurrent GETs took {reads} reads by the server"
    # mixed single commands and batches keep their order too
    results = await asyncio.gather(
        *(
            transport.execute(("INCR", key_prefix + "c"))
            if i % 2
            else transport.execute_many([("INCR", key_prefix + "c"), ("GET", key_prefix + "c")])
            for i in range(200)
        )
    )
    seen: list[int] = []
    for r in results:
        if isinstance(r, list):
            assert int(r[1]) >= r[0]
            seen.append(r[0])
        else:
            seen.append(r)
    assert sorted(seen) == list(range(1, 201))


async def test_cancelled_callers_do_not_desynchronise_the_connection(
    pair: tuple[AsyncTransport, Any], key_prefix: str
) -> None:
    transport, _ = pair
    n = 300
    await transport.execute_many([("SET", f"{key_prefix}{i}", str(i)) for i in range(n)])
    for _round in range(5):
        tasks = [
            asyncio.ensure_future(
                transport.execute(("GET", f"{key_prefix}{i}"))
                if i % 3
                else transport.execute_many([("GET", f"{key_prefix}{i}"), ("PING",)])
            )
            for i in range(n)
        ]
        await asyncio.sleep(0)  # every command is written
        for i, task in enumerate(tasks):
            if i % 4 == 0:
                task.cancel()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        for i, result in enumerate(done):
            if i % 4 == 0:
                assert isinstance(result, asyncio.CancelledError)
            elif i % 3:
                assert result == str(i).encode()
            else:
                assert result == [str(i).encode(), True]
    assert await transport.execute(("GET", f"{key_prefix}7")) == b"7"
    assert transport.connections == 1


async def test_cancelled_while_connecting(redis_url: str) -> None:
    transport, raw = await _pair(redis_url)
    try:
        task = asyncio.ensure_future(transport.execute(("PING",)))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await transport.execute(("PING",)) is True
    finally:
        await _close(transport, raw)


async def _in_thread(fn: Callable[[], Any]) -> threading.Thread:
    t = threading.Thread(target=fn)
    t.start()
    await asyncio.sleep(0.1)
    return t


async def test_reply_timeout_fails_what_is_in_flight_and_reconnects(
    fresh_server: Any, key_prefix: str
) -> None:
    transport, raw = await _pair(fresh_server.url, socket_timeout=0.3)
    blocker = fresh_server.client()
    try:
        assert await transport.execute(("SET", key_prefix + "k", b"v")) is True
        t = await _in_thread(lambda: blocker.execute_command("DEBUG", "SLEEP", "1"))
        t0 = time.monotonic()
        results = await asyncio.gather(
            transport.execute(("GET", key_prefix + "k")),
            transport.execute_many([("GET", key_prefix + "k"), ("PTTL", key_prefix + "k")]),
            transport.execute(("PING",)),
            return_exceptions=True,
        )
        elapsed = time.monotonic() - t0
        assert all(isinstance(r, rex.TimeoutError) for r in results), results
        assert 0.15 < elapsed < 0.8
        assert transport.connections == 0  # dropped: late replies could not be matched
        await asyncio.to_thread(t.join)
        assert await transport.execute(("GET", key_prefix + "k")) == b"v"
        assert transport.connections == 1
    finally:
        blocker.close()
        await _close(transport, raw)


async def test_slow_streams_are_not_a_timeout(
    pair: tuple[AsyncTransport, Any], key_prefix: str
) -> None:
    transport, _ = pair
    big = b"x" * (8 * 1024 * 1024)
    await transport.execute(("SET", key_prefix + "big", big))
    values = await asyncio.gather(*(transport.execute(("GET", key_prefix + "big")),) * 8)
    assert all(v == big for v in values)


async def test_restart_between_commands_is_not_an_error(fresh_server: Any, key_prefix: str) -> None:
    transport, raw = await _pair(fresh_server.url)
    try:
        assert await transport.execute(("INCR", key_prefix + "n")) == 1
        await asyncio.to_thread(fresh_server.restart)  # the connection is closed by the peer
        # Not idempotent, so a failure could not be retried: the dead connection must be
        # noticed before the command is written.
        assert await transport.execute(("INCR", key_prefix + "n")) == 2
    finally:
        await _close(transport, raw)


async def test_server_killed_mid_stream_then_back(fresh_server: Any, key_prefix: str) -> None:
    transport, raw = await _pair(fresh_server.url, socket_timeout=5.0)
    try:
        await transport.execute(("SET", key_prefix + "k", b"v"))
        in_flight = [asyncio.ensure_future(transport.execute(("EVAL", "while true do end", 0)))] + [
            asyncio.ensure_future(transport.execute(("GET", key_prefix + "k"))) for _ in range(20)
        ]
        await asyncio.sleep(0.2)
        await asyncio.to_thread(fresh_server.kill)
        results = await asyncio.gather(*in_flight, return_exceptions=True)
        assert all(isinstance(r, rex.ConnectionError) for r in results), results
        with pytest.raises(rex.ConnectionError):
            await transport.execute(("PING",))  # down: refused at connect
        await asyncio.to_thread(fresh_server.start)
        assert await transport.execute(("PING",)) is True
    finally:
        await _close(transport, raw)


async def test_connect_timeout(key_prefix: str) -> None:
    # 10.255.255.1 is not routed: the SYN goes unanswered.
    transport, raw = await _pair("redis://10.255.255.1:6379/0", socket_connect_timeout=0.2)
    try:
        t0 = time.monotonic()
        with pytest.raises((rex.TimeoutError, rex.ConnectionError)):
            await transport.execute(("PING",))
        assert time.monotonic() - t0 < 1.0
    finally:
        await _close(transport, raw)


async def test_health_check_pings_an_idle_connection(fresh_server: Any, key_prefix: str) -> None:
    transport, raw = await _pair(fresh_server.url, health_check_interval=0.2)
    counter = fresh_server.client()

    def pings() -> int:
        stats = counter.info("commandstats").get("cmdstat_ping", {})
        return int(stats.get("calls", 0))

    try:
        await transport.execute(("GET", key_prefix + "k"))
        before = pings()
        await transport.execute(("GET", key_prefix + "k"))
        assert pings() == before  # busy connection: no check
        await asyncio.sleep(0.3)
        await transport.execute(("GET", key_prefix + "k"))
        assert pings() == before + 1
    finally:
        counter.close()
        await _close(transport, raw)


async def test_blocking_commands_use_their_own_connection(
    pair: tuple[AsyncTransport, Any], key_prefix: str
) -> None:
    transport, raw = pair
    k = key_prefix
    await transport.execute(("SET", k + "s", b"v"))
    blocking = [
        asyncio.ensure_future(
            transport.execute(("BLMOVE", k + "q", k + "p", "RIGHT", "LEFT", 0.6))
        ),
        asyncio.ensure_future(transport.execute(("BLPOP", k + "q2", 0.6))),
        asyncio.ensure_future(
            transport.execute_many([("SADD", k + "c", "me"), ("BRPOP", k + "q3", 0.6)])
        ),
        asyncio.ensure_future(transport.execute(("XREAD", "BLOCK", 600, "STREAMS", k + "x", "$"))),
    ]
    await asyncio.sleep(0.05)
    t0 = time.monotonic()
    for _ in range(20):
        assert await transport.execute(("GET", k + "s")) == b"v"
    assert time.monotonic() - t0 < 0.3  # not stuck behind the blocking commands
    empty = await raw.execute_command("XREAD", "STREAMS", k + "x", "0")
    assert await asyncio.gather(*blocking) == [None, None, [1, None], empty]
    # without BLOCK, XREAD shares the connection
    assert await transport.execute(("XREAD", "STREAMS", k + "x", "0")) == empty


async def test_transactions_go_through_the_fallback_client(
    pair: tuple[AsyncTransport, Any], key_prefix: str
) -> None:
    transport, raw = pair
    async with raw.pipeline(transaction=True) as pipe:
        await pipe.watch(key_prefix + "w")
        pipe.multi()
        pipe.set(key_prefix + "w", b"1")
        assert await pipe.execute() == [True]
    assert await transport.execute(("GET", key_prefix + "w")) == b"1"


async def test_a_second_live_event_loop_is_refused(redis_url: str) -> None:
    s = RedisSettings.from_url(redis_url)
    transport = AsyncTransport(s, async_client(s))
    assert await transport.execute(("PING",)) is True

    async def ping_and_close() -> Any:
        try:
            return await transport.execute(("PING",))
        finally:
            await transport.aclose()

    with pytest.raises(RuntimeError, match="another event loop"):
        await asyncio.to_thread(asyncio.run, ping_and_close())
    await transport.aclose()
    # closed: another loop may use it now, and this one again after that
    assert await asyncio.to_thread(asyncio.run, ping_and_close()) is True
    assert await transport.execute(("PING",)) is True
    await _close(transport, transport.fallback)


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_closed_event_loop_is_replaced(redis_url: str) -> None:
    s = RedisSettings.from_url(redis_url)
    transport = AsyncTransport(s, async_client(s))
    for _ in range(3):  # asyncio.run closes its loop; nobody closed the connection first
        assert asyncio.run(transport.execute(("PING",))) is True
    asyncio.run(_close(transport, transport.fallback))
    gc.collect()  # the abandoned transports warn here, not in another test


async def test_max_connections_bounds_the_pool_not_the_shared_connection(
    redis_url: str, key_prefix: str
) -> None:
    adapter = AsyncRedisAdapter.from_url(redis_url, max_connections=1, pool_timeout=0.1)
    try:
        values = await asyncio.gather(
            *(adapter.execute("GET", key_prefix + "k") for _ in range(100))
        )
        assert values == [None] * 100
    finally:
        await adapter.aclose()


async def test_adapter_uses_the_transport_except_on_cluster(redis_url: str) -> None:
    standalone = AsyncRedisAdapter.from_url(redis_url)
    sentinel = AsyncRedisAdapter.from_url("redis+sentinel://127.0.0.1:1/mymaster")
    cluster = AsyncRedisAdapter.from_url("redis+cluster://127.0.0.1:1")
    given = AsyncRedisAdapter(client=redis.asyncio.Redis.from_url(redis_url))
    try:
        assert standalone._transport is not None and sentinel._transport is not None
        assert cluster._transport is None and given._transport is None
        assert isinstance(standalone.client, redis.asyncio.Redis)  # still there for the rest
    finally:
        for a in (standalone, sentinel, cluster, given):
            await a.aclose()


async def test_sentinel_master_is_found_and_followed_after_a_failover(
    sentinel_group: Any, key_prefix: str
) -> None:
    adapter = AsyncRedisAdapter.from_url(sentinel_group.url, retry_attempts=10, retry_deadline=20)
    transport = adapter._transport
    assert transport is not None
    try:
        k = key_prefix + "f"
        assert await transport.execute(("SET", k, b"1")) is True
        assert (await transport.execute(("ROLE",)))[0] == b"master"
        new = await asyncio.to_thread(sentinel_group.failover)
        # The old connection now talks to a replica: READONLY becomes a ConnectionError
        # (retried by the adapter), and the next connection asks the Sentinels again.
        for _ in range(200):
            try:
                await adapter.execute("SET", k, b"2")
                break
            except BackendUnavailable:
                await asyncio.sleep(0.1)
        assert await adapter.execute("GET", k) == b"2"
        assert transport.connections == 1
        conn = transport._conns[0]
        assert conn is not None and conn.where == f"{new[0]}:{new[1]}"
    finally:
        await adapter.aclose()


async def test_adapter_errors_and_retries_over_the_transport(
    fresh_server: Any, key_prefix: str
) -> None:
    adapter = AsyncRedisAdapter.from_url(
        fresh_server.url, socket_timeout=0.2, retry_attempts=1, breaker_threshold=1000
    )
    blocker = fresh_server.client()
    try:
        await adapter.execute("SET", key_prefix + "k", b"v")
        t = await _in_thread(lambda: blocker.execute_command("DEBUG", "SLEEP", "0.6"))
        with pytest.raises(BackendTimeout):
            await adapter.execute("GET", key_prefix + "k")
        await asyncio.to_thread(t.join)
        fresh_server.stop()
        with pytest.raises(BackendUnavailable):
            await adapter.execute_batch(Batch([("GET", key_prefix + "k"), ("PING",)]))
        fresh_server.start()
        assert await adapter.execute_batch(Batch([("GET", key_prefix + "k"), ("PING",)])) == [
            None,
            True,
        ]
    finally:
        blocker.close()
        await adapter.aclose()
