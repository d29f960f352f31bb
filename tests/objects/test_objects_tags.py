"""Tag invalidation: one round trip, O(1) in the number of tagged entries."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from objects_harness import Counter

import rcache
from rcache.objects import ObjectCache
from rcache.objects._envelope import Entry, pack

HERE = Path(__file__).parent


def tag_key(c: Any, tag: str) -> str:
    head = c.cache.make_key("")  # the documented layout: <space>{<space>tags}#tag:<tag>
    return f"{head}{{{head}tags}}#tag:{tag}"


def test_set_with_tags_and_invalidate(make_cache: Any, server: Any) -> None:
    c = make_cache(server.url)
    assert c.set("a", 1, tags=["red"]) and c.set("b", 2, tags=["red", "blue"])
    assert c.set("c", 3, tags=["blue"]) and c.set("plain", 4)
    assert c.get_many(["a", "b", "c", "plain"]) == {"a": 1, "b": 2, "c": 3, "plain": 4}
    rt = c.stats.round_trips
    assert c.invalidate_tags("red") is True
    assert c.stats.round_trips - rt == 1
    assert c.get("a") is None and c.get("b") is None
    assert c.get("c") == 3 and c.get("plain") == 4 and not c.has_key("a")
    rt = c.stats.round_trips
    assert c.get_many(["a", "b", "c", "plain"]) == {"c": 3, "plain": 4}
    assert c.stats.round_trips - rt == 2  # MGET, then every tagged entry's tokens at once
    rt = c.stats.round_trips
    assert c.get("c") == 3 and c.stats.round_trips - rt == 2  # tags unknown to a plain get
    assert c.invalidate_tags() is True
    assert c.set("a", 10, tags=["red"]) and c.get("a") == 10  # new writes see the new token


def test_a_missing_tag_key_means_invalidated(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    c.set("a", 1, tags=["gone"])
    raw = redis_server.client()
    try:
        assert raw.delete(tag_key(c, "gone")) == 1  # e.g. evicted under memory pressure
    finally:
        raw.close()
    assert c.get("a") is None


def test_decorated_tags(make_cache: Any, server: Any) -> None:
    c = make_cache(server.url)
    counter = Counter()
    f = c.decorate(lambda x: [x, counter()], ttl=60, tags=["catalog"])
    g = c.decorate(lambda x: [x, counter()], ttl=60, key="per-user:{x}", tags=lambda x: [f"u{x}"])
    assert f(1) == [1, 1] and f(1) == [1, 1] and g(5) == [5, 2] and g(5) == [5, 2]
    assert c.invalidate_tags("catalog")
    assert f(1) == [1, 3] and g(5) == [5, 2]
    assert c.invalidate_tags("u5", "u6")
    assert g(5) == [5, 4] and f(1) == [1, 3]
    assert counter.n == 4


def test_an_invalidation_during_the_compute_wins(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    other = ObjectCache.from_url(redis_server.url, prefix=c.cache.key_space.prefix)
    counter = Counter()

    def compute() -> int:
        n = counter()
        if n == 1:
            other.invalidate_tags("t")  # the data changed while we were computing
        return n

    try:
        f = c.decorate(compute, ttl=60, tags=["t"])
        assert f() == 1  # returned, but stored with the token from before the invalidation
        assert f() == 2 and f() == 2  # so it was never served; the recompute is
    finally:
        other.close()


def test_100k_tagged_entries_die_in_one_round_trip(make_cache: Any, redis_server: Any) -> None:
    n = 100_000
    c = make_cache(redis_server.url, default_ttl=120)
    assert c.set("seed", 0, tags=["bulk"])  # creates the tag's version key
    raw = redis_server.client()
    try:
        token = raw.get(tag_key(c, "bulk"))
        assert token
        keys = [f"e{i}" for i in range(n)]
        pipe = raw.pipeline(transaction=False)
        for i, k in enumerate(keys):
            blob = pack(Entry(c.cache.codec.encode(i), tags=(("bulk", token),)))
            pipe.set(c.cache.make_key(k), blob, px=120_000)
            if i % 10_000 == 9_999:
                pipe.execute()
        pipe.execute()
        sample = keys[:: n // 500]
        assert c.get_many(sample) == {k: int(k[1:]) for k in sample}

        rt, t0 = c.stats.round_trips, time.perf_counter()
        processed = raw.info("stats")["total_commands_processed"]
        assert c.invalidate_tags("bulk") is True
        elapsed = time.perf_counter() - t0
        assert c.stats.round_trips - rt == 1
        assert raw.info("stats")["total_commands_processed"] - processed == 1 + 1  # MSET, INFO
        assert elapsed < 0.1
        assert c.get_many(keys) == {}
        assert raw.exists(c.cache.make_key("e0")) == 1  # still stored, never served again
    finally:
        raw.close()
    # a second process sees the same
    root = Path(rcache.__file__).resolve().parents[1]
    code = (
        "import sys; from rcache.objects import ObjectCache\n"
        "c = ObjectCache.from_url(sys.argv[1], prefix=sys.argv[2])\n"
        "print(len(c.get_many([f'e{i}' for i in range(0, 100000, 7)])), c.get('seed'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", code, redis_server.url, c.cache.key_space.prefix],
        capture_output=True,
        text=True,
        env=env,
        cwd=HERE,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "None"]
    c.clear()  # and a space this big is cleared page by page
    raw = redis_server.client()
    try:
        assert list(raw.scan_iter(match=c.cache.key_space.pattern(), count=1000)) == []
    finally:
        raw.close()
