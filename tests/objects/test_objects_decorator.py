"""The cached decorator, through the sync and the async cache."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import objects_keyfuncs
import pytest
from objects_harness import Counter

import rcache
from rcache.objects import AsyncObjectCache, ObjectCache

HERE = Path(__file__).parent


def commandstats(client: Any) -> dict[str, int]:
    return {k: v["calls"] for k, v in client.info("commandstats").items()}


def test_a_hit_is_exactly_one_round_trip(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()
    f = c.decorate(lambda x: {"x": x, "n": counter()}, ttl=60, tags=["t1", "t2"])
    assert f(1) == {"x": 1, "n": 1}
    raw = redis_server.client()
    try:
        before = commandstats(raw)
        processed = raw.info("stats")["total_commands_processed"]
        rt = c.stats.round_trips
        assert f(1) == {"x": 1, "n": 1}
        assert c.stats.round_trips - rt == 1
        after = commandstats(raw)
        # the INFO calls themselves are the only other commands the server saw
        assert raw.info("stats")["total_commands_processed"] - processed == 3 + 2
    finally:
        raw.close()
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    delta = {k: v for k, v in delta.items() if v and k != "cmdstat_info"}
    assert delta == {"cmdstat_get": 1, "cmdstat_pttl": 1, "cmdstat_mget": 1}
    assert counter.n == 1


def test_hit_round_trips_on_cluster(make_cache: Any, cluster: Any) -> None:
    c = make_cache(cluster.url)
    f = c.decorate(lambda x: x * 2, ttl=60, tags=["a", "b", "c"])
    assert f(21) == 42
    rt = c.stats.round_trips
    assert f(21) == 42
    assert c.stats.round_trips - rt == 1


def test_miss_stores_and_later_calls_hit(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()
    f = c.decorate(lambda x, y=2: [x * y, counter()], ttl=30)
    assert f(3) == [6, 1]
    assert f(3) == [6, 1] and f(x=3) == [6, 1] and f(3, 2) == [6, 1] and f(3, y=2) == [6, 1]
    assert f(4) == [8, 2]
    assert counter.n == 2
    assert f.key_for(3) == f.key_for(x=3, y=2) != f.key_for(4)
    assert 29 < c.ttl(f.key_for(3)) <= 30
    assert c.get(f.key_for(3)) == [6, 1]  # plain get unwraps the entry


def test_none_is_cached_unless_told_not_to(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()

    def nothing(x: int) -> None:
        counter()
        return None

    f = c.decorate(nothing, ttl=30)
    assert f(1) is None and f(1) is None
    assert counter.n == 1
    assert c.has_key(f.key_for(1))
    g = c.decorate(nothing, ttl=30, cache_none=False, key="nothing:{x}")
    assert g(1) is None and g(1) is None
    assert counter.n == 3 and not c.has_key("nothing:1")


def test_exceptions_are_not_cached_and_release_the_lock(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()

    def flaky(x: int) -> int:
        if counter() == 1:
            raise RuntimeError("boom")
        return x

    f = c.decorate(flaky, ttl=30, lock=30)
    with pytest.raises(RuntimeError, match="boom"):
        f(5)
    t0 = time.monotonic()
    assert f(5) == 5  # no wait for the 30 s lease: the failed filler released it
    assert time.monotonic() - t0 < 1
    assert f(5) == 5 and counter.n == 2


class Repo:
    calls = Counter()

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant

    def __cache_key__(self) -> str:
        return self.tenant


def test_methods(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    calls = Counter()
    if c.kind == "sync":

        class SyncRepo(Repo):
            @c.cache.cached(ttl=30)
            def find(self, item: int) -> str:
                calls()
                return f"{self.tenant}:{item}"

        repo_cls: Any = SyncRepo
    else:

        class AsyncRepo(Repo):
            @c.cache.cached(ttl=30)
            async def find(self, item: int) -> str:
                calls()
                return f"{self.tenant}:{item}"

        repo_cls = AsyncRepo
    a, b = repo_cls("a"), repo_cls("b")
    assert c.resolve(a.find(1)) == "a:1" and c.resolve(a.find(1)) == "a:1"
    assert c.resolve(b.find(1)) == "b:1"
    assert c.resolve(repo_cls("a").find(1)) == "a:1"  # equal instances share the entry
    assert calls.n == 2
    assert repo_cls.find.key_for(a, 1) != repo_cls.find.key_for(b, 1)
    assert c.resolve(repo_cls.find.invalidate(a, 1)) is True
    assert c.resolve(a.find(1)) == "a:1" and calls.n == 3


def test_arguments_without_a_canonical_form_need_key(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    f = c.decorate(lambda obj: 1, ttl=30)
    with pytest.raises(TypeError, match="key="):
        f(object())
    g = c.decorate(lambda obj: obj.real, ttl=30, key=lambda obj: f"num:{obj.real}")
    assert g(3) == 3 and c.get("num:3") == 3
    h = c.decorate(lambda user_id, page=1: [user_id, page], ttl=30, key="u:{user_id}:{page}")
    assert h(7) == [7, 1] and c.get("u:7:1") == [7, 1] and h.key_for(7, page=2) == "u:7:2"


def test_invalidate_and_refresh(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()
    f = c.decorate(lambda x: counter(), ttl=30)
    assert f(1) == 1 and f(1) == 1
    assert f.invalidate(1) is True and f.invalidate(1) is False
    assert f(1) == 2
    assert f.refresh(1) == 3  # computed now, whatever was cached
    assert f(1) == 3 and counter.n == 3
    assert f.refresh(2) == 4 and f(2) == 4


def test_short_ttl_expires(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()
    f = c.decorate(lambda: counter(), ttl=0.2, xfetch_beta=0)
    assert f() == 1 and f() == 1
    time.sleep(0.3)
    assert f() == 2
    g = c.decorate(lambda: counter(), ttl=0)  # ttl <= 0: never cached, just called
    assert g() == 3 and g() == 4


def test_sync_and_async_functions_go_to_their_own_cache(redis_server: Any) -> None:
    async def coroutine_fn() -> int:
        return 1

    def plain_fn() -> int:
        return 1

    with ObjectCache.from_url(redis_server.url) as cache:
        with pytest.raises(TypeError, match="AsyncObjectCache"):
            cache.cached(coroutine_fn)

    async def check() -> None:
        async with AsyncObjectCache.from_url(redis_server.url) as acache:
            with pytest.raises(TypeError, match="ObjectCache.cached"):
                acache.cached(plain_fn)
            wrapped = acache.cached(ttl=5)(coroutine_fn)
            assert asyncio.iscoroutinefunction(wrapped)

    asyncio.run(check())


def test_keys_are_stable_across_processes() -> None:
    expected = objects_keyfuncs.sample_key()
    assert expected.startswith("objects_keyfuncs.lookup:")
    root = Path(rcache.__file__).resolve().parents[1]
    code = "import objects_keyfuncs; print(objects_keyfuncs.sample_key())"
    for seed in ("1", "12345"):  # set and dict iteration orders differ with the hash seed
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": f"{HERE}{os.pathsep}{root}"}
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=HERE
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == expected
