"""What the object cache does when Redis fails: misses, False writes, one warning."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from objects_harness import Counter

from rcache.errors import BackendUnavailable, DecodeError


def cache_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "rcache.objects" and r.levelno >= logging.WARNING
    ]


def test_redis_down_is_a_miss_with_one_warning(
    make_cache: Any, fresh_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    c = make_cache(fresh_server.url, breaker_cooldown=0.3)
    counter = Counter()
    f = c.decorate(lambda x: [x, counter()], ttl=60)
    assert c.set("k", "v") and f(1) == [1, 1] and f(1) == [1, 1]
    fresh_server.stop()
    caplog.set_level(logging.DEBUG, logger="rcache.objects")
    assert c.get("k", "dflt") == "dflt"
    assert c.set("k", "w") is False and c.add("new", 1) is False
    assert c.get_many(["k", "x"]) == {} and c.set_many({"a": 1, "b": 2}) == ["a", "b"]
    assert c.delete("k") is False and c.delete_many(["k"]) == 0 and c.touch("k") is False
    assert c.has_key("k") is False and c.invalidate_tags("t") is False
    assert c.get_or_set("k", "computed") == "computed"
    with pytest.raises(ValueError):
        c.incr("k")  # no number to return: the "missing key" path of callers runs instead
    assert c.iter_keys() == [] and c.delete_pattern("*") == 0 and c.clear() is None
    assert f(1) == [1, 2] and f(2) == [2, 3]  # decorated functions just compute
    t0 = time.perf_counter()
    for i in range(300):
        assert c.get(f"k{i}") is None
        assert f(i)[0] == i
    assert time.perf_counter() - t0 < 1.5  # the breaker keeps it fast: no connect per call
    assert len(cache_warnings(caplog)) == 1  # one warning for the whole outage
    assert "unreachable" in caplog.text or "cannot reach" in caplog.text

    fresh_server.start()
    deadline = time.monotonic() + 10
    while not c.set("k", "back"):
        assert time.monotonic() < deadline, "the cache did not recover"
        time.sleep(0.1)
    assert c.get("k") == "back"
    caplog.clear()
    fresh_server.stop()
    assert c.get("k") is None
    assert len(cache_warnings(caplog)) == 1  # a new outage is reported again


def test_on_error_raise(make_cache: Any, fresh_server: Any) -> None:
    c = make_cache(fresh_server.url, on_error="raise", retry_attempts=1)
    f = c.decorate(lambda: 1, ttl=60)
    fresh_server.stop()
    with pytest.raises(BackendUnavailable):
        c.get("k")
    with pytest.raises(BackendUnavailable):
        c.set("k", 1)
    with pytest.raises(BackendUnavailable):
        f()


def test_an_unreadable_entry_is_a_miss_and_deleted(
    make_cache: Any, redis_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()
    f = c.decorate(lambda: ["fresh", counter()], ttl=60)
    raw = redis_server.client()
    caplog.set_level(logging.WARNING, logger="rcache.objects")
    try:
        garbage = {
            "bad-envelope": b"\x01\x01\x00",
            "bad-header": b"\xff\x00garbage",
            "bad-json": b"\x88{not json",
        }
        for key, payload in garbage.items():
            raw.set(c.cache.make_key(key), payload)
        raw.set(f.redis_key(), b"\x01garbage")
        assert c.get("bad-envelope", "d") == "d" and c.get("bad-header") is None
        assert c.get_many(["bad-json", "bad-header"]) == {}
        for key in garbage:
            assert raw.exists(c.cache.make_key(key)) == 0
        assert f() == ["fresh", 1] and f() == ["fresh", 1]  # recomputed and replaced
        assert counter.n == 1
        assert len(cache_warnings(caplog)) == 4
        assert all("garbage" not in m for m in cache_warnings(caplog))
    finally:
        raw.close()


def test_an_unreadable_entry_raises_in_raise_mode(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url, on_error="raise")
    raw = redis_server.client()
    try:
        raw.set(c.cache.make_key("bad"), b"\x01\x01")
        with pytest.raises(DecodeError):
            c.get("bad")
        assert raw.exists(c.cache.make_key("bad")) == 0
    finally:
        raw.close()


def test_out_of_memory_still_returns_the_value(
    make_cache: Any, fresh_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    c = make_cache(fresh_server.url)
    raw = fresh_server.client()
    try:
        raw.config_set("maxmemory-policy", "noeviction")
        raw.config_set("maxmemory", str(int(raw.info("memory")["used_memory"]) + 32 * 1024))
        big = "x" * 64 * 1024
        caplog.set_level(logging.WARNING, logger="rcache.objects")
        counter = Counter()
        f = c.decorate(lambda: [big, counter()], ttl=60)
        assert f() == [big, 1] and f() == [big, 2]  # computed, returned, not stored
        assert c.set("k", big) is False
        assert c.get("k") is None
        warnings = cache_warnings(caplog)
        assert len(warnings) == 1 and "out of memory" in warnings[0]
        assert c.adapter.breaker.is_closed  # an answered error is not an outage
    finally:
        raw.config_set("maxmemory", "0")
        raw.close()


def test_read_only_replica_still_returns_the_value(
    make_cache: Any, fresh_server: Any, redis_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    c = make_cache(fresh_server.url)
    raw = fresh_server.client()
    try:
        raw.execute_command("REPLICAOF", "127.0.0.1", str(redis_server.port))
        caplog.set_level(logging.WARNING, logger="rcache.objects")
        counter = Counter()
        f = c.decorate(lambda: counter(), ttl=60)
        assert f() == 1 and f() == 2
        assert c.set("k", 1) is False
        warnings = cache_warnings(caplog)
        assert len(warnings) == 1 and "read-only" in warnings[0]
    finally:
        raw.execute_command("REPLICAOF", "NO", "ONE")
        raw.close()


def test_writes_an_outage_lost_are_redone_once_redis_answers(
    make_cache: Any, fresh_server: Any
) -> None:
    # A stalled (not restarted) Redis keeps its data: a delete, a set and a tag
    # invalidation that failed meanwhile would leave stale entries there for good (until
    # their TTL). The cache redoes them with its first round trip that succeeds.
    import signal

    c = make_cache(fresh_server.url, socket_timeout=0.2, retry_attempts=1, breaker_cooldown=0.2)
    assert c.set("gone", 1) and c.set("stale", 1) and c.set("tagged", 1, tags=["t"])
    assert c.set("rewritten", 1)
    raw = fresh_server.client()
    fresh_server.kill(signal.SIGSTOP)
    try:
        assert c.delete("gone") is False
        assert c.set("stale", 2) is False  # the old value 1 is still in Redis
        assert c.invalidate_tags("t") is False
        assert c.set("rewritten", 2) is False
    finally:
        fresh_server.kill(signal.SIGCONT)
    deadline = time.monotonic() + 10
    while not c.set("rewritten", 3):  # written after the outage: not undone by the redo
        assert time.monotonic() < deadline, "the cache did not recover"
        time.sleep(0.05)
    while c.get("gone") is not None or c.get("stale") is not None or c.get("tagged") is not None:
        assert time.monotonic() < deadline, "the lost writes were not redone"
        time.sleep(0.05)
    assert c.get("rewritten") == 3
    assert raw.exists(c.cache._ctx.key("gone"), c.cache._ctx.key("stale")) == 0
    raw.close()
