"""The clients of the object-cache suite: rcache and its peers, configured as their docs show.

Every library gets a Redis database of its own on the benchmark server, so all of them
use the same keys and values without reading one another's entries. Each still adds its
own key prefix and serialization: that is part of what is measured.

=========================  ==  ==========================================================
library                    db  a stored value (the suite's values are ASCII ``str``)
=========================  ==  ==========================================================
redis-py (the baseline)    0   the UTF-8 bytes
rcache                     1   rcache's codec (json; a ``str`` is stored as a header byte
                               and its UTF-8, without going through json)
django-redis               2   pickle
Django's RedisCache        3   pickle
Flask-Caching              4   ``!`` + pickle (cachelib's serializer)
cachelib                   5   ``!`` + pickle
cashews                    6   pickle
aiocache                   7   json
rcache with a LocalTier    8   as rcache (key prefix ``local``, so no other contender's
                               writes reach the tier's invalidation listener)
=========================  ==  ==========================================================

Clients are built on first use. The asyncio clients are created inside the suite's one
event loop (they bind to the loop they first run in). :meth:`SyncPeers.close` and
:meth:`AsyncPeers.close` close what was built.
"""

from __future__ import annotations

import asyncio
import random
import string
from collections.abc import Awaitable, Callable, Coroutine
from functools import cached_property
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
import redis.asyncio

from rcache.objects import AsyncObjectCache, LocalTier, ObjectCache

__all__ = ["DB", "TTL", "AsyncPeers", "SyncPeers", "check_hit", "db_url", "value_of"]

T = TypeVar("T")

TTL = 3600  # seconds: the suite's entries outlive any run, so its reads keep hitting

DB = {
    "redis-py": 0,
    "rcache": 1,
    "django-redis": 2,
    "django": 3,
    "flask-caching": 4,
    "cachelib": 5,
    "cashews": 6,
    "aiocache": 7,
    "rcache-local": 8,
}


def value_of(size: int) -> str:
    """Return the suite's value of ``size`` ASCII characters (the same in every run)."""
    return "".join(random.Random(size).choices(string.ascii_letters, k=size))


def check_hit(got: Any, want: Any, who: str) -> None:
    """Raise AssertionError unless a warm-up read returned the value stored."""
    if got != want:
        raise AssertionError(f"{who}: the warm-up read missed ({type(got).__name__})")


def db_url(url: str, db: int) -> str:
    """Return ``url`` (``redis://host:port/n``) pointing at database ``db``."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}", query=""))


class SyncPeers:
    """The blocking clients, one per library, sharing one redis-server."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._parts = urlsplit(url)
        self._closers: list[Callable[[], Any]] = []

    @cached_property
    def redis_py(self) -> redis.Redis:
        client = redis.Redis.from_url(db_url(self.url, DB["redis-py"]))
        self._closers.append(client.close)
        return client

    @cached_property
    def rcache(self) -> ObjectCache:
        cache = ObjectCache.from_url(db_url(self.url, DB["rcache"]))
        self._closers.append(cache.close)
        return cache

    @cached_property
    def rcache_local(self) -> ObjectCache:
        """An rcache ``ObjectCache`` with a ``LocalTier`` whose listener is live."""
        url = db_url(self.url, DB["rcache-local"])
        cache = ObjectCache.from_url(url, prefix="local", local=LocalTier())
        self._closers.append(cache.close)
        assert cache.local is not None
        if not cache.local.wait_live(timeout=5.0):
            raise RuntimeError("the local tier's invalidation listener did not start")
        return cache

    @cached_property
    def _django_caches(self) -> Any:
        import django
        from django.conf import settings

        if settings.configured:
            raise RuntimeError("the objects suite configures Django itself; run it on its own")
        settings.configure(
            CACHES={
                "default": {
                    "BACKEND": "django_redis.cache.RedisCache",
                    "LOCATION": db_url(self.url, DB["django-redis"]),
                },
                "builtin": {
                    "BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": db_url(self.url, DB["django"]),
                },
            }
        )
        django.setup()
        from django.core.cache import caches

        self._closers.append(caches.close_all)
        return caches

    @property
    def django_redis(self) -> Any:
        return self._django_caches["default"]

    @property
    def django(self) -> Any:
        return self._django_caches["builtin"]

    @cached_property
    def flask_caching(self) -> Any:
        """Flask-Caching's ``Cache`` on a Flask app whose app context stays pushed.

        The context stands for the request every cache call of a Flask app runs in.
        """
        from flask import Flask
        from flask_caching import Cache

        app = Flask("bench")
        app.config.update(
            CACHE_TYPE="RedisCache",
            CACHE_REDIS_HOST=self._parts.hostname,
            CACHE_REDIS_PORT=self._parts.port,
            CACHE_REDIS_PASSWORD=self._parts.password,
            CACHE_REDIS_DB=DB["flask-caching"],
        )
        cache = Cache(app)
        context = app.app_context()
        context.push()
        self._closers.append(context.pop)
        return cache

    @cached_property
    def cachelib(self) -> Any:
        from cachelib import RedisCache

        return RedisCache(
            host=self._parts.hostname,
            port=self._parts.port or 6379,
            password=self._parts.password,
            db=DB["cachelib"],
        )

    def stored(self, attr: str, key: str, value: str) -> Any:
        """Store ``value`` with library ``attr``'s own API (TTL: :data:`TTL`); return its client.

        The value is read back first, so a contender never times misses.
        """
        client = getattr(self, attr)
        if attr == "redis_py":
            client.set(key, value, ex=TTL)
            check_hit(client.get(key), value.encode(), attr)
        else:
            client.set(key, value, TTL)
            check_hit(client.get(key), value, attr)
        return client

    def close(self) -> None:
        """Close what was built, last built first."""
        while self._closers:
            self._closers.pop()()


class AsyncPeers:
    """The asyncio clients, built and driven in one event loop for the whole suite.

    The harness times plain callables, so each timed call is one
    ``loop.run_until_complete(...)``; the suite keeps that cost small by doing several
    operations per call.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._parts = urlsplit(url)
        self.loop = asyncio.new_event_loop()
        self._closers: list[Callable[[], Awaitable[Any]]] = []

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to completion in the suite's loop."""
        return self.loop.run_until_complete(coro)

    def _build(self, make: Callable[[], T]) -> T:
        async def inside() -> T:
            return make()

        return self.run(inside())

    @cached_property
    def redis_py(self) -> redis.asyncio.Redis:
        client = self._build(lambda: redis.asyncio.Redis.from_url(db_url(self.url, DB["redis-py"])))
        self._closers.append(client.aclose)
        return client

    @cached_property
    def rcache(self) -> AsyncObjectCache:
        cache = self._build(lambda: AsyncObjectCache.from_url(db_url(self.url, DB["rcache"])))
        self._closers.append(cache.aclose)
        return cache

    @cached_property
    def cashews(self) -> Any:
        from cashews import Cache

        def make() -> Any:
            cache = Cache(name="bench")
            cache.setup(db_url(self.url, DB["cashews"]))
            return cache

        cache = self._build(make)
        self._closers.append(cache.close)
        return cache

    @cached_property
    def aiocache(self) -> Any:
        from aiocache import RedisCache

        cache = self._build(
            lambda: RedisCache(
                endpoint=self._parts.hostname,
                port=self._parts.port or 6379,
                password=self._parts.password,
                db=DB["aiocache"],
            )
        )
        self._closers.append(cache.close)
        return cache

    def close(self) -> None:
        """Close what was built, last built first, then the loop."""
        while self._closers:
            self.run(self._closers.pop()())
        self.loop.close()
