"""The adapter against real redis-server processes, through both drivers."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import pytest

from rcache.errors import (
    AuthenticationFailed,
    BackendError,
    BackendOutOfMemory,
    BackendReadOnly,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    PoolExhausted,
)
from rcache.ops import Batch, Call, Op, Sleep
from rcache.scripts import Script

GET_OR_DEFAULT = Script(
    "local v = redis.call('GET', KEYS[1]) if v then return v end return ARGV[1]"
)


def incr_twice(key: str) -> Op[list[Any]]:
    first = yield Batch([("INCR", key)], idempotent=False)
    second = yield Batch([("INCR", key), ("GET", key)], idempotent=False)
    return [first[0], *second]


def test_tcp_round_trips(make_runner: Any, redis_server: Any, key_prefix: str) -> None:
    r = make_runner(redis_server.url)
    k = key_prefix + "n"
    assert r.run(incr_twice(k)) == [1, 2, b"2"]
    assert r.adapter.stats.round_trips == 2
    assert r.adapter.stats.commands == 3


def test_unix_socket(make_runner: Any, redis_server: Any, key_prefix: str) -> None:
    r = make_runner(redis_server.unix_url)
    assert r.execute("SET", key_prefix + "u", b"v") is True
    assert r.execute("GET", key_prefix + "u") == b"v"


def test_tls_with_ca(make_runner: Any, tls_server: Any, key_prefix: str) -> None:
    r = make_runner(tls_server.tls_url, ssl_ca_certs=str(tls_server.tls_files.ca_cert))
    r.execute("SET", key_prefix + "t", b"secure")
    assert r.execute("GET", key_prefix + "t") == b"secure"


def test_tls_without_trusted_ca_is_refused(make_runner: Any, tls_server: Any) -> None:
    r = make_runner(tls_server.tls_url, retry_attempts=1)
    with pytest.raises(BackendUnavailable):
        r.execute("PING")


def test_acl_user(make_runner: Any, acl_server: Any, key_prefix: str) -> None:
    url = f"redis://app:s3cret@127.0.0.1:{acl_server.port}/0"
    r = make_runner(url)
    assert r.execute("ACL", "WHOAMI") == b"app"


def test_acl_wrong_password_is_a_clear_error_and_not_retried(
    make_runner: Any, acl_server: Any
) -> None:
    r = make_runner(f"redis://app:wrong@127.0.0.1:{acl_server.port}/0")
    with pytest.raises(AuthenticationFailed) as info:
        r.execute("PING")
    assert "credentials" in str(info.value)
    assert "wrong" not in str(info.value)  # the password never appears in a message
    assert r.adapter.stats.retries == 0
    assert r.adapter.breaker.is_closed  # bad credentials are not an outage


def test_answered_errors_are_translated(
    make_runner: Any, redis_server: Any, key_prefix: str
) -> None:
    r = make_runner(redis_server.url)
    r.execute("LPUSH", key_prefix + "list", b"x", idempotent=False)
    with pytest.raises(BackendError, match="WRONGTYPE"):
        r.execute("GET", key_prefix + "list")
    replies = r.batch(
        Batch([("GET", key_prefix + "list"), ("LLEN", key_prefix + "list")], raise_on_error=False)
    )
    assert isinstance(replies[0], BackendError) and replies[1] == 1
    assert r.adapter.breaker.is_closed


def test_errors_are_thrown_into_the_operation(
    make_runner: Any, redis_server: Any, key_prefix: str
) -> None:
    k = key_prefix + "h"

    def op() -> Op[str]:
        yield Batch([("HSET", k, "f", "v")])
        try:
            yield Batch([("GET", k)])
        except BackendError:
            return "caught"
        return "not raised"

    assert make_runner(redis_server.url).run(op()) == "caught"


def test_sleep_and_call_effects(make_runner: Any, redis_server: Any) -> None:
    seen: list[int] = []

    async def acompute(x: int) -> int:
        return x * 2

    def op() -> Op[int]:
        yield Sleep(0.01)
        a = yield Call(seen.append, (1,))
        b = yield Call(lambda: 21)
        return (a is None) + b

    r = make_runner(redis_server.url)
    assert r.run(op()) == 22 and seen == [1]
    if r.kind == "async":

        def aop() -> Op[int]:
            return (yield Call(acompute, (4,)))

        assert r.run(aop()) == 8


def test_script_survives_script_flush(make_runner: Any, redis_server: Any, key_prefix: str) -> None:
    r = make_runner(redis_server.url)
    k = key_prefix + "s"
    r.execute("SCRIPT", "FLUSH")
    assert r.execute(*GET_OR_DEFAULT([k], ["dflt"])) == b"dflt"
    r.execute("SET", k, b"x")
    r.execute("SCRIPT", "FLUSH")
    assert r.batch(Batch([GET_OR_DEFAULT([k], ["d"]), ("GET", k)])) == [b"x", b"x"]
    assert r.execute("SCRIPT", "EXISTS", GET_OR_DEFAULT.sha) == [1]


def test_out_of_memory_is_reported(make_runner: Any, fresh_server: Any, key_prefix: str) -> None:
    r = make_runner(fresh_server.url)
    r.execute("CONFIG", "SET", "maxmemory-policy", "noeviction")
    used = int(r.execute("INFO", "memory")["used_memory"])
    r.execute("CONFIG", "SET", "maxmemory", str(used + 64 * 1024))
    with pytest.raises(BackendOutOfMemory):
        for i in range(200):
            r.execute("SET", f"{key_prefix}{i}", b"x" * 4096)
    assert r.adapter.breaker.is_closed


def test_readonly_replica_is_reported(make_runner: Any, sentinel_group: Any) -> None:
    master = sentinel_group.master_address()
    replica = next(s for s in sentinel_group.servers if (s.host, s.port) != master)
    r = make_runner(f"redis://127.0.0.1:{replica.port}/0")
    with pytest.raises(BackendReadOnly):
        r.execute("SET", "ro", b"x")


def test_timeout_is_backend_timeout(make_runner: Any, fresh_server: Any) -> None:
    r = make_runner(fresh_server.url, socket_timeout=0.2, retry_attempts=1)
    r.execute("PING")
    blocker = fresh_server.client()
    t = threading.Thread(target=blocker.execute_command, args=("DEBUG", "SLEEP", "1"))
    t.start()
    time.sleep(0.1)
    try:
        with pytest.raises(BackendTimeout):
            r.execute("GET", "x")
    finally:
        t.join()
        blocker.close()


def test_breaker_fails_fast_while_down_and_resumes_after_restart(
    make_runner: Any, fresh_server: Any, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    r = make_runner(fresh_server.url, breaker_cooldown=0.5)
    k = key_prefix + "k"
    r.execute("SET", k, b"before")
    fresh_server.stop()
    caplog.set_level(logging.WARNING, logger="rcache.adapter")
    errors: list[type[BaseException]] = []
    t0 = time.perf_counter()
    for _ in range(1000):
        try:
            r.execute("GET", k)
        except BackendUnavailable as exc:
            errors.append(type(exc))
    elapsed = time.perf_counter() - t0
    assert len(errors) == 1000
    assert elapsed < 1.0, f"1,000 calls while down took {elapsed:.2f}s"
    assert errors.count(CircuitOpen) >= 990
    unreachable = [m for m in caplog.messages if "unreachable" in m]
    assert len(unreachable) == 1  # one warning per outage, not one per call

    fresh_server.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            r.execute("SET", k, b"after")
            break
        except BackendUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    assert r.execute("GET", k) == b"after"
    assert r.adapter.breaker.is_closed
    assert any("reachable again" in m for m in caplog.messages)


def test_idempotent_batches_are_retried_until_redis_is_back(
    make_runner: Any, fresh_server: Any, key_prefix: str
) -> None:
    r = make_runner(fresh_server.url, retry_attempts=30, retry_deadline=20, breaker_threshold=1000)
    r.execute("SET", key_prefix + "x", b"1")
    fresh_server.stop()
    starter = threading.Timer(0.5, fresh_server.start)
    starter.start()
    try:
        assert r.execute("GET", key_prefix + "x") is None  # no persistence: empty, but no error
    finally:
        starter.join()
    assert r.adapter.stats.retries >= 1


def test_a_dead_pooled_connection_is_replaced_transparently(
    make_runner: Any, fresh_server: Any, key_prefix: str
) -> None:
    r = make_runner(fresh_server.url)
    r.execute("SET", key_prefix + "x", b"1")
    fresh_server.restart()  # every pooled connection is now closed by the peer
    assert r.execute("GET", key_prefix + "x") == b"1"  # restart keeps data; no error seen


def test_a_connection_closed_while_idle_is_replaced_before_a_write(
    make_runner: Any, redis_server: Any, key_prefix: str
) -> None:
    # A write that may not be retried (INCR) must not be sent on a pooled connection the
    # server closed while it sat idle: the pool notices the EOF at checkout and
    # reconnects, so the write is applied once and nothing fails.
    import redis

    r = make_runner(redis_server.url, breaker_threshold=1000)
    k = key_prefix + "n"
    assert r.execute("INCR", k, idempotent=False) == 1
    mine = r.execute("CLIENT", "ID")
    killer = redis.Redis.from_url(redis_server.url)
    try:
        assert killer.execute_command("CLIENT", "KILL", "ID", mine) == 1
        time.sleep(0.05)  # the FIN reaches the idle connection
        assert r.execute("INCR", k, idempotent=False) == 2
        assert r.adapter.stats.retries == 0
        assert r.execute("CLIENT", "ID") != mine
        assert killer.get(k) == b"2"
    finally:
        killer.close()


def _fork_without_python_hooks() -> int:
    """fork() as servers that fork from C do (uWSGI's default): no Python fork hooks run."""
    import ctypes

    return int(ctypes.PyDLL(None).fork())  # PyDLL: the GIL stays held across the call


@pytest.mark.parametrize("fork", [os.fork, _fork_without_python_hooks], ids=["os", "libc"])
def test_a_forked_child_never_shares_the_parents_connections(
    redis_server: Any, key_prefix: str, fork: Any
) -> None:
    from rcache.adapter import RedisAdapter

    adapter = RedisAdapter.from_url(redis_server.url)
    try:
        parent_id = adapter.execute("CLIENT", "ID")
        pid = fork()
        assert pid >= 0
        if pid == 0:  # the child: its commands go on a connection of its own
            code = 1
            try:
                child_id = adapter.execute("CLIENT", "ID")
                adapter.execute("SET", key_prefix + "child", str(child_id))
                code = 0 if child_id != parent_id else 2
            finally:
                os._exit(code)
        deadline = time.monotonic() + 20
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                pytest.fail("the forked child did not finish")
            time.sleep(0.02)
        assert os.waitstatus_to_exitcode(status) == 0
        child_id = int(adapter.execute("GET", key_prefix + "child"))
        assert child_id != parent_id
        assert adapter.execute("CLIENT", "ID") == parent_id  # the parent's is untouched
    finally:
        adapter.close()


def test_non_idempotent_batches_are_not_retried(
    make_runner: Any, fresh_server: Any, key_prefix: str
) -> None:
    r = make_runner(fresh_server.url, retry_attempts=6, breaker_threshold=1000)
    r.execute("PING")
    fresh_server.stop()
    with pytest.raises(BackendUnavailable):
        r.execute("INCR", key_prefix + "n", idempotent=False)
    assert r.adapter.stats.retries == 0
    with pytest.raises(BackendUnavailable):
        r.execute("GET", key_prefix + "n")
    assert r.adapter.stats.retries == 5


def test_sentinel_follows_failover(make_runner: Any, sentinel_group: Any, key_prefix: str) -> None:
    r = make_runner(sentinel_group.url, retry_attempts=10, retry_deadline=20)
    k = key_prefix + "f"
    r.execute("SET", k, b"1")
    role = r.execute("ROLE")
    assert role[0] == b"master"
    old = sentinel_group.master_address()
    new = sentinel_group.failover()
    assert new != old
    deadline = time.monotonic() + 15
    while True:
        try:
            r.execute("SET", k, b"2")
            break
        except (BackendUnavailable, BackendReadOnly):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert r.execute("GET", k) == b"2"
    assert r.execute("ROLE")[0] == b"master"
    info = r.execute("INFO", "server")
    assert int(info["tcp_port"]) == new[1]


def test_cluster_batch_over_many_slots(make_runner: Any, cluster: Any, key_prefix: str) -> None:
    r = make_runner(cluster.url)
    keys = [f"{key_prefix}{i}" for i in range(50)]
    r.batch(Batch([("SET", k, str(i).encode()) for i, k in enumerate(keys)]))
    assert r.execute("MGET", *keys) == [str(i).encode() for i in range(50)]
    got = r.batch(Batch([("MGET", *keys[:10]), ("EXISTS", *keys), ("GET", keys[7])]))
    assert got == [[str(i).encode() for i in range(10)], 50, b"7"]
    r.execute("MSET", *[x for k in keys[:20] for x in (k, b"m")])
    assert r.execute("MGET", *keys[:20]) == [b"m"] * 20
    assert r.execute("UNLINK", *keys) == 50
    assert r.execute("MGET", *keys[:3]) == [None, None, None]


def test_cluster_script_routes_by_key(make_runner: Any, cluster: Any, key_prefix: str) -> None:
    r = make_runner(cluster.url)
    for i in range(5):
        k = f"{key_prefix}s{i}"
        r.execute("SET", k, b"v")
        assert r.execute(*GET_OR_DEFAULT([k], ["d"])) == b"v"


def test_bounded_pool_waits_for_a_free_connection(redis_server: Any, key_prefix: str) -> None:
    from rcache.adapter import RedisAdapter

    adapter = RedisAdapter.from_url(redis_server.url, max_connections=1, pool_timeout=2.0)
    try:
        blocker = threading.Thread(
            target=adapter.execute, args=("BLPOP", key_prefix + "nothing", "0.4")
        )
        blocker.start()
        time.sleep(0.1)  # the only connection is now busy for ~0.3 s more
        t0 = time.perf_counter()
        assert adapter.execute("PING") is True
        waited = time.perf_counter() - t0
        blocker.join()
        assert 0.1 < waited < 1.5
    finally:
        adapter.close()


def test_exhausted_pool_is_an_error_but_not_an_outage(redis_server: Any, key_prefix: str) -> None:
    from rcache.adapter import RedisAdapter

    adapter = RedisAdapter.from_url(redis_server.url, max_connections=1, pool_timeout=0.1)
    try:
        blocker = threading.Thread(
            target=adapter.execute, args=("BLPOP", key_prefix + "nothing", "0.5")
        )
        blocker.start()
        time.sleep(0.1)
        with pytest.raises(PoolExhausted, match="no free connection"):
            adapter.execute("PING")
        blocker.join()
        assert adapter.breaker.is_closed
        assert adapter.stats.retries == 0
        assert adapter.execute("PING") is True
    finally:
        adapter.close()


def test_an_error_answered_to_the_eval_after_noscript_is_translated(
    make_runner: Any, fresh_server: Any, key_prefix: str
) -> None:
    incr = Script("return redis.call('INCR', KEYS[1])")
    r = make_runner(fresh_server.url)
    k = key_prefix + "text"
    r.execute("SET", k, b"not a number")
    for send in (lambda: r.execute(*incr([k])), lambda: r.batch(Batch([incr([k])]))):
        r.execute("SCRIPT", "FLUSH")
        with pytest.raises(BackendError, match="not an integer"):
            send()
