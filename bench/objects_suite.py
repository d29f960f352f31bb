"""The object cache against raw redis-py and the Python caching libraries people use.

Groups (each with raw redis-py, hiredis parser, as its baseline; values are ASCII ``str``
of the size named, keys the same for every library; see :mod:`bench._peers` for how each
library is configured and what it stores):

- ``get``/``set`` 100 B and 10 KB: rcache ``ObjectCache``, django-redis, Django's built-in
  ``RedisCache``, Flask-Caching, cachelib. ``set`` uses each library's default TTL
  (300 s everywhere; the baseline sends ``SET ... EX 300``).
- ``get_many(100)``: one ``MGET`` of 100 keys; rcache, django-redis, Django's built-in.
- ``cached-function hit``: the same function, the same argument, warm: rcache
  ``@cache.cached``, Flask-Caching ``@cache.memoize``, cashews ``@cache`` (async, so one
  ``run_until_complete`` per call); the baseline is one ``GET``.
- ``async get 100 B``: redis.asyncio (baseline), rcache ``AsyncObjectCache``, cashews,
  aiocache. "1 task": one task awaiting gets back to back (``SEQUENTIAL`` per timed call,
  so the event loop's start and stop do not dilute the comparison); "100 tasks": one
  ``asyncio.gather`` of 100 gets per timed call.
- ``async cached-function hit``: rcache ``AsyncObjectCache.cached`` and cashews ``@cache``,
  sequential like "1 task"; the baseline is one redis.asyncio ``GET``.
- ``local-tier hit``: rcache ``ObjectCache(..., local=LocalTier())`` answering a repeated
  ``get`` in-process (its invalidation listener live), against one redis-py ``GET``.

Libraries run with their defaults (cashews' pool holds 10 connections, rcache's 64,
redis-py's and aiocache's are unbounded), as an application would get them.

Every contender writes its entry through its own API during setup and must read it back
(decorated functions: the second call must not run the function), so nothing measures a
miss. Entries live an hour, longer than any run; at the end a decorated function that ran
again, or a local tier that missed or was bypassed, during the run is reported on stderr.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

from bench._peers import TTL, AsyncPeers, SyncPeers, check_hit, value_of
from bench._peers_decorated import ARG, DecoratedFunctions
from bench.harness import Contender

__all__ = ["contenders"]

DEFAULT_TTL = 300  # seconds: every library's default, used by the set groups
SEQUENTIAL = 10  # gets per timed call in the "1 task" groups
CONCURRENT = 100  # tasks per timed call in the "100 tasks" group
MANY = 100  # keys per get_many

SYNC = [  # (contender name, SyncPeers attribute); the first is the baseline
    ("redis-py (hiredis)", "redis_py"),
    ("rcache ObjectCache (json codec)", "rcache"),
    ("django-redis (pickle)", "django_redis"),
    ("Django RedisCache (pickle)", "django"),
    ("Flask-Caching (pickle)", "flask_caching"),
    ("cachelib (pickle)", "cachelib"),
]
ASYNC = [  # (contender name, AsyncPeers attribute); the first is the baseline
    ("redis.asyncio (hiredis)", "redis_py"),
    ("rcache AsyncObjectCache (json codec)", "rcache"),
    ("cashews (pickle; pool of 10)", "cashews"),
    ("aiocache (json)", "aiocache"),
]

Body = Callable[[], Any]


def _sync_get_set(peers: SyncPeers, size_name: str, size: int) -> list[Contender]:
    value = value_of(size)
    get_key, set_key = f"objects:get:{size}", f"objects:set:{size}"
    out: list[Contender] = []
    for i, (name, attr) in enumerate(SYNC):

        def get(attr: str = attr) -> Body:
            client = peers.stored(attr, get_key, value)
            return lambda: client.get(get_key)

        def put(attr: str = attr) -> Body:
            client = peers.stored(attr, set_key, value)
            if attr == "redis_py":
                return lambda: client.set(set_key, value, ex=DEFAULT_TTL)
            return lambda: client.set(set_key, value)

        out.append(Contender(f"get {size_name}", name, get, baseline=i == 0))
        out.append(Contender(f"set {size_name}", name, put, baseline=i == 0))
    out.sort(key=lambda c: c.group)  # stable: the baseline stays first in its group
    return out


def _get_many(peers: SyncPeers) -> list[Contender]:
    value = value_of(100)
    keys = [f"objects:many:{i}" for i in range(MANY)]
    group = f"get_many({MANY})"

    def raw() -> Body:
        client = peers.redis_py
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(key, value, ex=TTL)
            pipe.execute()
        check_hit(client.mget(keys), [value.encode()] * MANY, "redis_py")
        return lambda: client.mget(keys)

    def library(attr: str) -> Callable[[], Body]:
        def setup() -> Body:
            client = getattr(peers, attr)
            client.set_many(dict.fromkeys(keys, value), TTL)
            check_hit(client.get_many(keys), dict.fromkeys(keys, value), attr)
            return lambda: client.get_many(keys)

        return setup

    return [
        Contender(group, "redis-py MGET (hiredis)", raw, baseline=True),
        Contender(group, "rcache ObjectCache (json codec)", library("rcache")),
        Contender(group, "django-redis (pickle)", library("django_redis")),
        Contender(group, "Django RedisCache (pickle)", library("django")),
    ]


def _cached_hits(sync: SyncPeers, aio: AsyncPeers, fns: DecoratedFunctions) -> list[Contender]:
    key = "objects:get:100"
    group = "cached-function hit"

    def raw() -> Body:
        client = sync.stored("redis_py", key, fns.value)
        return lambda: client.get(key)

    def rcache() -> Body:
        product = fns.rcache
        return lambda: product(ARG)

    def flask_caching() -> Body:
        product = fns.flask_caching
        return lambda: product(ARG)

    def cashews() -> Body:
        product = fns.cashews
        return lambda: aio.run(product(ARG))

    return [
        Contender(group, "redis-py GET (hiredis)", raw, baseline=True),
        Contender(group, "rcache @cache.cached (json codec)", rcache),
        Contender(group, "Flask-Caching @cache.memoize (pickle)", flask_caching),
        Contender(group, "cashews @cache, run_until_complete per call (pickle)", cashews),
    ]


def _sequential(aio: AsyncPeers, step: Callable[[], Any]) -> Body:
    async def body() -> None:
        for _ in range(SEQUENTIAL):
            await step()

    return lambda: aio.run(body())


def _async_groups(aio: AsyncPeers, fns: DecoratedFunctions) -> list[Contender]:
    value = value_of(100)
    key = "objects:get:100"
    one, many = "async get 100 B, 1 task", f"async get 100 B, {CONCURRENT} tasks"
    out: list[Contender] = []

    def store(attr: str) -> Any:
        client = getattr(aio, attr)
        if attr == "redis_py":
            aio.run(client.set(key, value, ex=TTL))
            check_hit(aio.run(client.get(key)), value.encode(), attr)
        elif attr == "rcache":
            aio.run(client.set(key, value, TTL))
            check_hit(aio.run(client.get(key)), value, attr)
        else:  # cashews: expire=; aiocache: ttl=
            ttl = {"cashews": {"expire": TTL}, "aiocache": {"ttl": TTL}}[attr]
            aio.run(client.set(key, value, **ttl))
            check_hit(aio.run(client.get(key)), value, attr)
        return client

    for i, (name, attr) in enumerate(ASYNC):

        def sequential(attr: str = attr) -> Body:
            client = store(attr)
            return _sequential(aio, lambda: client.get(key))

        def concurrent(attr: str = attr) -> Body:
            client = store(attr)

            async def body() -> None:
                await asyncio.gather(*[client.get(key) for _ in range(CONCURRENT)])

            return lambda: aio.run(body())

        out.append(Contender(one, name, sequential, ops_per_call=SEQUENTIAL, baseline=i == 0))
        out.append(Contender(many, name, concurrent, ops_per_call=CONCURRENT, baseline=i == 0))
    out.sort(key=lambda c: c.group != one)

    group = "async cached-function hit"

    def raw() -> Body:
        client = store("redis_py")
        return _sequential(aio, lambda: client.get(key))

    def rcache() -> Body:
        product = fns.rcache_async
        return _sequential(aio, lambda: product(ARG))

    def cashews() -> Body:
        product = fns.cashews
        return _sequential(aio, lambda: product(ARG))

    n = SEQUENTIAL
    return [
        *out,
        Contender(group, "redis.asyncio GET (hiredis)", raw, ops_per_call=n, baseline=True),
        Contender(group, "rcache AsyncObjectCache.cached (json codec)", rcache, ops_per_call=n),
        Contender(group, "cashews @cache (pickle)", cashews, ops_per_call=n),
    ]


def _local_tier(sync: SyncPeers, checks: list[Callable[[], None]]) -> list[Contender]:
    value = value_of(100)
    key = "objects:get:100"
    group = "local-tier hit 100 B"

    def raw() -> Body:
        client = sync.stored("redis_py", key, value)
        return lambda: client.get(key)

    def local() -> Body:
        cache = sync.stored("rcache_local", key, value)
        tier = cache.local
        # Redis reports our own SET to the tier's listener a moment later, and a fill that
        # races with that message is refused: read until a read is answered locally.
        deadline = time.monotonic() + 5.0
        while True:
            hits = tier.stats.hits
            check_hit(cache.get(key), value, "rcache_local")
            if tier.stats.hits == hits + 1:
                break
            if time.monotonic() > deadline:
                raise AssertionError("rcache_local: reads did not hit the local tier")
            time.sleep(0.01)
        missed = tier.stats.misses + tier.stats.bypassed

        def check() -> None:
            now = tier.stats.misses + tier.stats.bypassed
            if now != missed:
                print(
                    f"objects suite: the local tier missed or was bypassed {now - missed} "
                    "times during the run",
                    file=sys.stderr,
                )

        checks.append(check)
        return lambda: cache.get(key)

    return [
        Contender(group, "redis-py GET (hiredis)", raw, baseline=True),
        Contender(group, "rcache ObjectCache + LocalTier (json codec)", local),
    ]


def contenders(tcp_url: str, unix_url: str) -> list[Contender]:
    """Return the suite's contenders (TCP only: the peers' usual deployment)."""
    sync, aio = SyncPeers(tcp_url), AsyncPeers(tcp_url)
    fns = DecoratedFunctions(sync, aio)
    out: list[Contender] = []
    for size_name, size in (("100 B", 100), ("10 KB", 10_000)):
        out += _sync_get_set(sync, size_name, size)
    out.sort(key=lambda c: not c.group.startswith("get"))
    out += _get_many(sync)
    out += _cached_hits(sync, aio, fns)
    out += _async_groups(aio, fns)
    checks: list[Callable[[], None]] = [fns.check]
    out += _local_tier(sync, checks)

    def teardown() -> None:
        for check in checks:
            check()
        aio.close()
        sync.close()

    out[-1].teardown = teardown
    return out
