"""ObjectCache / AsyncObjectCache verbs with Django's semantics, on standalone and Cluster."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from rcache.errors import ConfigurationError, EncodeError
from rcache.objects import MISSING, LockNotAcquired, ObjectCache
from rcache.objects._verbs import INCR


def test_get_set_and_defaults(make_cache: Any, server: Any) -> None:
    c = make_cache(server.url)
    assert c.get("absent") is None
    assert c.get("absent", "dflt") == "dflt"
    assert c.set("k", {"a": [1, 2]}) is True
    assert c.get("k") == {"a": [1, 2]}
    assert c.set("none", None) is True
    assert c.get("none", "dflt") is None  # a cached None is a hit, not the default
    assert c.has_key("none") and not c.has_key("absent")
    assert c.set("b", b"\x00\xff") and c.get("b") == b"\x00\xff"
    with pytest.raises(EncodeError):
        c.set("bad", {1, 2})  # json cannot store a set: a programming error, always raised


def test_ttl_conventions(make_cache: Any, server: Any) -> None:
    c = make_cache(server.url, default_ttl=30)
    c.set("default", 1)
    assert 29 < c.ttl("default") <= 30
    c.set("explicit", 1, 1.5)
    assert 1.0 < c.ttl("explicit") <= 1.5
    c.set("delta", 1, timedelta(minutes=2))
    assert 119 < c.ttl("delta") <= 120
    c.set("forever", 1, None)
    assert c.ttl("forever") is None
    assert c.ttl("absent") is MISSING
    # ttl <= 0 expires at once: set deletes the key and still returns True (Django's timeout=0)
    assert c.set("forever", 2, 0) is True
    assert c.get("forever") is None and c.ttl("forever") is MISSING
    assert c.set("neg", 2, -1) is True and not c.has_key("neg")


def test_add(make_cache: Any, server: Any) -> None:
    c = make_cache(server.url)
    assert c.add("k", "first") is True
    assert c.add("k", "second") is False
    assert c.get("k") == "first"
    assert c.add("zero", "x", 0) is True  # absent: "added", expired at once
    assert c.get("zero") is None
    assert c.add("k", "y", 0) is False and c.get("k") == "first"


def test_touch_expire_persist(make_cache: Any, server: Any) -> None:
    c = make_cache(server.url, default_ttl=100)
    assert c.touch("absent") is False
    c.set("k", 1, 5)
    assert c.touch("k", 50) is True and 49 < c.ttl("k") <= 50
    assert c.touch("k") is True and 99 < c.ttl("k") <= 100
    assert c.touch("k", None) is True and c.ttl("k") is None
    assert c.expire("k", 7) is True and 6 < c.ttl("k") <= 7
    assert c.persist("k") is True and c.ttl("k") is None
    assert c.persist("absent") is False
    assert c.touch("k", 0) is True and c.get("k") is None


def test_delete_and_many_verbs_are_one_round_trip_each(make_cache: Any, server: Any) -> None:
    c = make_cache(server.url)
    keys = [f"k{i}" for i in range(50)]  # spread over many Cluster slots
    rt = c.stats.round_trips
    assert c.set_many({k: i for i, k in enumerate(keys)}) == []
    assert c.stats.round_trips - rt == 1
    rt = c.stats.round_trips
    assert c.get_many([*keys, "absent"]) == {k: i for i, k in enumerate(keys)}
    assert c.stats.round_trips - rt == 1
    rt = c.stats.round_trips
    assert c.delete_many([*keys[:10], "absent"]) == 10
    assert c.stats.round_trips - rt == 1
    rt = c.stats.round_trips
    assert c.delete_many([]) == 0 and c.get_many([]) == {} and c.set_many({}) == []
    assert c.stats.round_trips == rt  # nothing to do: no round trip
    assert c.delete("k10") is True and c.delete("k10") is False
    assert c.set_many({"a": 1, "b": 2}, 0) == [] and c.get_many(["a", "b"]) == {}
    c.set_many({"x": 1}, None)
    assert c.ttl("x") is None


def test_incr_decr(make_cache: Any, server: Any) -> None:
    c = make_cache(server.url)
    with pytest.raises(ValueError, match="not found"):
        c.incr("absent")
    with pytest.raises(ValueError):
        c.decr("absent")
    assert not c.has_key("absent")  # never created as a side effect
    c.set("n", 41, 60)
    assert c.incr("n") == 42 and c.incr("n", 8) == 50 and c.decr("n", 10) == 40
    assert c.get("n") == 40 and 59 < c.ttl("n") <= 60  # INCRBY keeps the TTL
    assert c.decr("n", 50) == -10 and c.get("n") == -10
    c.set("s", "text")
    raw = server.client()
    try:  # on every primary, so the script is known wherever the key lives
        raw.script_load(INCR.source)
    finally:
        raw.close()
    with pytest.raises(ValueError, match="not an integer"):
        c.incr("s")


def test_incr_of_a_non_integer_before_the_script_is_loaded(
    make_cache: Any, fresh_server: Any
) -> None:
    c = make_cache(fresh_server.url)
    c.set("s", "text")
    c.resolve(c.cache.adapter.execute("SCRIPT", "FLUSH"))
    with pytest.raises(ValueError, match="not an integer"):
        c.incr("s")


def test_get_or_set(make_cache: Any, server: Any) -> None:
    c = make_cache(server.url)
    assert c.get_or_set("k", "v") == "v" and c.get("k") == "v"
    calls: list[int] = []

    def compute() -> str:
        calls.append(1)
        return "computed"

    assert c.get_or_set("k", compute) == "v" and calls == []
    assert c.get_or_set("c", compute, 30) == "computed" and calls == [1]
    assert 29 < c.ttl("c") <= 30
    assert c.get_or_set("zero", "x", 0) == "x" and not c.has_key("zero")
    c.set("held", None)
    assert c.get_or_set("held", "other") is None
    rt = c.stats.round_trips
    c.get_or_set("fresh", "y")
    assert c.stats.round_trips - rt == 2  # miss: GET, then SET NX + GET


def test_clear_removes_only_its_own_key_space(make_cache: Any, server: Any) -> None:
    mine = make_cache(server.url)
    prefix = mine.cache.key_space.prefix
    other = make_cache(server.url, prefix=prefix + "-other")
    child = make_cache(server.url, prefix=prefix + ":child")
    older = make_cache(server.url, version=7)
    for i in range(300):  # several SCAN pages, every Cluster node
        mine.set(f"k{i}", i)
    mine.set("tagged", 1, tags=["t"])
    lock = mine.lock("job")
    assert mine.resolve(lock.acquire())
    older.set("old", 1)
    other.set("k1", "kept")
    child.set("k1", "kept too")
    assert mine.clear() is None
    assert mine.get_many([f"k{i}" for i in range(300)]) == {}
    assert mine.iter_keys() == [] and older.get("old") is None  # every version
    assert not mine.resolve(lock.locked())
    assert other.get("k1") == "kept" and child.get("k1") == "kept too"
    raw = server.client()
    try:
        leftovers = [k for k in raw.scan_iter(match=prefix + ":*") if b":child:" not in k]
    finally:
        raw.close()
    assert leftovers == []


def test_versions_are_separate(make_cache: Any, server: Any) -> None:
    v1 = make_cache(server.url)
    v2 = make_cache(server.url, version=2)
    v1.set("k", "one")
    assert v2.get("k") is None
    v2.set("k", "two")
    assert v1.get("k") == "one" and v2.get("k") == "two"


def test_iter_keys_and_delete_pattern(make_cache: Any, server: Any) -> None:
    c = make_cache(server.url)
    c.set_many({f"user:{i}": i for i in range(30)} | {f"cart:{i}": i for i in range(5)})
    c.set("tagged:1", 1, tags=["t"])
    held = c.lock("user:lock")
    assert c.resolve(held.acquire())
    long_key = "user:" + "x" * 300  # hashed by the key space
    c.set(long_key, "long")
    users = set(c.iter_keys("user:*"))
    assert {f"user:{i}" for i in range(30)} <= users
    assert len(users) == 31  # plus the hashed form of the long key; no lock or tag keys
    assert set(c.iter_keys("cart:*")) == {f"cart:{i}" for i in range(5)}
    assert all("#" not in k or k.startswith("user:") for k in c.iter_keys())
    assert c.delete_pattern("user:*") == 31
    assert c.iter_keys("user:*") == [] and len(c.get_many([f"cart:{i}" for i in range(5)])) == 5
    assert c.resolve(held.locked())  # internal keys are not entries: left alone
    assert c.get("tagged:1") == 1


def test_lock(make_cache: Any, server: Any) -> None:
    c = make_cache(server.url)
    first = c.lock("job", timeout=0.3)
    second = c.lock("job", timeout=5, blocking_timeout=0)
    assert c.resolve(first.acquire()) is True and first.owned
    assert c.resolve(second.acquire()) is False
    assert c.resolve(c.lock("job", blocking_timeout=0.05).acquire()) is False
    assert c.resolve(first.extend(1.0)) is True
    assert c.resolve(first.release()) is True and not c.resolve(first.locked())
    assert c.resolve(second.acquire()) is True
    assert c.resolve(second.release()) is True
    # a lock whose lease ran out and was taken over is not released by its old holder
    assert c.resolve(first.acquire()) is True
    time.sleep(0.4)
    assert c.resolve(second.acquire()) is True
    assert c.resolve(first.release()) is False
    assert c.resolve(second.locked()) is True
    assert c.resolve(second.release()) is True
    # a blocking acquire waits until the holder's lease runs out
    holder = c.lock("wait", timeout=0.3)
    waiter = c.lock("wait", timeout=5, blocking_timeout=3)
    assert c.resolve(holder.acquire()) is True
    t0 = time.monotonic()
    assert c.resolve(waiter.acquire()) is True
    assert 0.2 < time.monotonic() - t0 < 1.5
    assert c.resolve(waiter.release()) is True


def test_lock_context_manager(make_cache: Any, server: Any) -> None:
    c = make_cache(server.url)
    lock = c.lock("cm", timeout=5)
    other = c.lock("cm", blocking_timeout=0)
    if c.kind == "sync":
        with lock:
            assert lock.locked()
            with pytest.raises(LockNotAcquired), other:
                pass
        assert not lock.locked()
    else:

        async def body() -> None:
            async with lock:
                assert await lock.locked()
                with pytest.raises(LockNotAcquired):
                    async with other:
                        pass
            assert not await lock.locked()

        c.wait(body())


def test_long_and_odd_keys(make_cache: Any, server: Any) -> None:
    c = make_cache(server.url)
    keys = ["with space", "x" * 500, "tab\tkey", "ünïcödé", "#hash"]
    for k in keys:
        c.set(k, k)
    assert c.get_many(keys) == {k: k for k in keys}


def test_options_are_checked(redis_server: Any) -> None:
    with pytest.raises(ConfigurationError, match="on_error"):
        ObjectCache.from_url(redis_server.url, on_error="ignore")
    with pytest.raises(ConfigurationError):
        ObjectCache.from_url(redis_server.url, default_ttl="300")
    with ObjectCache.from_url(redis_server.url, prefix="app", key_prefix="site") as c:
        assert c.make_key("k") == "site:app:1:k"  # the adapter's key_prefix comes first
