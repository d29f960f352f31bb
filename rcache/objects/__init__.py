"""The object cache: Django's cache verbs, a ``cached`` decorator, tags and locks.

::

    cache = ObjectCache.from_url("redis://localhost:6379/0", prefix="shop", default_ttl=300)
    cache.set("cart:42", {"items": [1, 2]}, ttl=60, tags=["user:42"])
    cache.get("cart:42")                      # {'items': [1, 2]}
    cache.invalidate_tags("user:42")          # one round trip, however many entries

    @cache.cached(ttl=60, stale_ttl=30, tags=["catalog"])
    def product(product_id: int) -> dict: ...

    acache = AsyncObjectCache.from_url(url)   # the same methods, awaited; aclose()

    @acache.cached(ttl=60)
    async def profile(user_id: int) -> dict: ...

``cached(ttl=DEFAULT, key=None, tags=(), stale_ttl=0, lock=True, cache_none=True,
xfetch_beta=1.0)``:

- ``ttl``: how long a value is fresh (seconds or timedelta; None = forever; <= 0 = never
  cache, just call). DEFAULT = the cache's ``default_ttl``.
- ``key``: None derives the key from the function's module, qualname and arguments
  (canonical, SHA-256: the same in every process); a format string over the arguments
  (``"user:{user_id}"``); or a callable taking the function's arguments.
- ``tags``: tag names (or a callable of the arguments returning them); entries die when
  any of their tags is invalidated. Known before the read, so a hit stays one round trip.
- ``stale_ttl``: after ``ttl``, serve the old value for this long while one caller
  recomputes; also served when that recompute raises (stale-if-error).
- ``lock``: single-flight on a miss (True = 10 s lease, a number = the lease in seconds,
  False = every caller computes).
- ``cache_none``: store ``None`` results (a cached ``None`` is a hit).
- ``xfetch_beta``: probabilistic early refresh (XFetch); 0 turns it off.

The wrapper has ``key_for(*args)``, ``invalidate(*args)`` and ``refresh(*args)``. A hit is
exactly one round trip. See ``_fill`` (stampede protection), ``_tags`` (invalidation),
``_envelope`` (what is stored), ``_verbs`` (round trips per verb), ``_failures`` (what
happens when Redis fails), ``_local`` (the optional in-process tier).

``ObjectCache(adapter, local=LocalTier(max_entries=10_000, max_bytes=64 MiB, ttl=None))``
puts a bounded in-process LRU in front of Redis: a repeated read costs no round trip, and
Redis's client-side-caching invalidations (tracking in broadcast mode on one dedicated
connection) drop local copies as soon as any process changes the keys; while that
connection is down the tier is flushed and bypassed.
"""

from __future__ import annotations

from rcache.objects._arguments import canonical, function_key
from rcache.objects._cache import AsyncObjectCache, ObjectCache
from rcache.objects._decorator import AsyncCachedFunction, CachedFunction
from rcache.objects._failures import OnError
from rcache.objects._local import LocalTier
from rcache.objects._local_store import LocalStats
from rcache.objects._locks import AsyncLock, Lock, LockNotAcquired
from rcache.objects._read import MISSING, Missing
from rcache.objects._verbs import NotAnInteger

__all__ = [
    "MISSING",
    "AsyncCachedFunction",
    "AsyncLock",
    "AsyncObjectCache",
    "CachedFunction",
    "LocalStats",
    "LocalTier",
    "Lock",
    "LockNotAcquired",
    "Missing",
    "NotAnInteger",
    "ObjectCache",
    "OnError",
    "canonical",
    "function_key",
]
