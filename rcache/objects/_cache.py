"""``ObjectCache`` and ``AsyncObjectCache``: thin shells over the operations.

Every public method builds one operation (``_verbs``, ``_tags``, ``_scan``, ``_fill``)
and runs it through the adapter: ``self._adapter.run(op)`` or ``await
self._adapter.run(op)``. There is no logic here to keep in step between the two.

With a local tier (``local=LocalTier()``), reads consult it inside the read path, and the
operations that may write are wrapped by ``self._track`` so that the keys they write are
dropped from it when Redis answers (see :mod:`rcache.objects._local`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, ParamSpec, TypeVar, overload

from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.codecs import Codec
from rcache.config import split_options
from rcache.keys import KeySpace
from rcache.objects import _scan, _tags, _verbs
from rcache.objects._context import CacheContext, NodeScanner
from rcache.objects._decorator import AsyncCachedFunction, CachedFunction, Options, decorate
from rcache.objects._failures import Failures, OnError
from rcache.objects._local import LocalTier
from rcache.objects._locks import AsyncLock, Lock
from rcache.objects._nodes import AsyncClusterScanner, ClusterScanner
from rcache.objects._read import Missing
from rcache.ops import Op
from rcache.ttl import DEFAULT, TTL, Default

__all__ = ["AsyncObjectCache", "ObjectCache"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_CACHE_OPTIONS = frozenset({"prefix", "version", "codec", "default_ttl", "on_error", "local"})


class _CacheBase:
    """Configuration shared by both caches (no I/O)."""

    def __init__(
        self,
        adapter: RedisAdapter | AsyncRedisAdapter,
        scanner: NodeScanner | None,
        prefix: str,
        version: int,
        codec: Codec | None,
        default_ttl: TTL,
        on_error: OnError,
        local: LocalTier | None,
    ) -> None:
        parts = [p.strip(":") for p in (adapter.key_prefix, prefix)]
        space = KeySpace(prefix=":".join(p for p in parts if p), version=version)
        self._ctx = CacheContext(
            space=space,
            codec=codec if codec is not None else Codec(),
            default_ttl=default_ttl,
            failures=Failures(on_error),
            stats=adapter.stats,
            scanner=scanner if adapter.settings.mode == "cluster" else None,
        )
        self._local = local
        if local is not None:
            is_async = isinstance(adapter, AsyncRedisAdapter)
            self._ctx = local.bind(self._ctx, adapter.settings, is_async)
        self._owns_adapter = False

    def _track(self, op: Op[T]) -> Op[T]:
        """Return ``op``, wrapped so that its writes drop local copies (with a local tier)."""
        return op if self._local is None else self._local.track(op)

    @property
    def local(self) -> LocalTier | None:
        """The local tier in front of Redis, if the cache was given one."""
        return self._local

    @property
    def key_space(self) -> KeySpace:
        """The key space: prefix (the adapter's ``key_prefix`` first) and version."""
        return self._ctx.space

    @property
    def codec(self) -> Codec:
        """The codec values are stored with."""
        return self._ctx.codec

    @property
    def default_ttl(self) -> TTL:
        """The TTL used when a call leaves ``ttl`` out (seconds; None = no expiry)."""
        return self._ctx.default_ttl

    def make_key(self, key: str) -> str:
        """Return the Redis key that stores entry ``key``."""
        return self._ctx.key(key)

    def __repr__(self) -> str:
        space = self._ctx.space
        return f"{type(self).__name__}(prefix={space.prefix!r}, version={space.version})"


class ObjectCache(_CacheBase):
    """A Redis object cache for blocking code, with Django's cache verbs.

    ``prefix`` (after the adapter's ``key_prefix``) and ``version`` make the key space;
    ``codec`` defaults to ``Codec()`` (json); ``default_ttl`` in seconds (None = no
    expiry) applies when a call leaves ``ttl`` out; ``on_error="miss"`` turns Redis
    failures into misses and ``False`` writes (logged once per outage), ``"raise"``
    raises them. ``ttl`` arguments: seconds or a timedelta; None = no expiry; ``<= 0`` =
    expired at once (``set`` then deletes the key and returns True). ``local``: a
    :class:`~rcache.objects.LocalTier` answering repeated reads in-process (None = none).
    """

    def __init__(
        self,
        adapter: RedisAdapter,
        *,
        prefix: str = "",
        version: int = 1,
        codec: Codec | None = None,
        default_ttl: TTL = 300,
        on_error: OnError = "miss",
        local: LocalTier | None = None,
    ) -> None:
        super().__init__(
            adapter, ClusterScanner(adapter), prefix, version, codec, default_ttl, on_error, local
        )
        self._adapter = adapter

    def _run(self, op: Op[T]) -> T:
        """Run ``op`` with its writes tracked (the decorator's runner with a local tier)."""
        return self._adapter.run(self._track(op))

    @classmethod
    def from_url(cls, url: str, **options: Any) -> ObjectCache:
        """Build a cache with its own adapter (closed by :meth:`close`).

        ``options``: the cache's keyword arguments and any :class:`~rcache.RedisSettings`.
        """
        mine, settings = split_options(options, _CACHE_OPTIONS)
        cache = cls(RedisAdapter.from_url(url, **settings), **mine)
        cache._owns_adapter = True
        return cache

    @property
    def adapter(self) -> RedisAdapter:
        """The adapter this cache runs its operations with."""
        return self._adapter

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key``, or ``default`` when it is absent."""
        return self._adapter.run(_verbs.get(self._ctx, key, default))

    def set(
        self, key: str, value: Any, ttl: TTL | Default = DEFAULT, *, tags: Iterable[str] = ()
    ) -> bool:
        """Store ``value`` under ``key``; return False if Redis failed ("miss" mode)."""
        return self._adapter.run(self._track(_verbs.set_value(self._ctx, key, value, ttl, tags)))

    def add(
        self, key: str, value: Any, ttl: TTL | Default = DEFAULT, *, tags: Iterable[str] = ()
    ) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored."""
        return self._adapter.run(self._track(_verbs.add(self._ctx, key, value, ttl, tags)))

    def touch(self, key: str, ttl: TTL | Default = DEFAULT) -> bool:
        """Give ``key`` a new TTL; return whether the key exists."""
        return self._adapter.run(self._track(_verbs.touch(self._ctx, key, ttl)))

    def delete(self, key: str) -> bool:
        """Delete ``key``; return whether it existed."""
        return self._adapter.run(self._track(_verbs.delete(self._ctx, key)))

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Return ``{key: value}`` for the keys present (one round trip)."""
        return self._adapter.run(_verbs.get_many(self._ctx, keys))

    def set_many(self, mapping: Mapping[str, Any], ttl: TTL | Default = DEFAULT) -> list[str]:
        """Store every item (one round trip); return the keys that could not be stored."""
        return self._adapter.run(self._track(_verbs.set_many(self._ctx, mapping, ttl)))

    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete the keys (one round trip); return how many existed."""
        return self._adapter.run(self._track(_verbs.delete_many(self._ctx, keys)))

    def has_key(self, key: str) -> bool:
        """Return whether ``get(key)`` would find a value."""
        return self._adapter.run(_verbs.has_key(self._ctx, key))

    def incr(self, key: str, delta: int = 1) -> int:
        """Add ``delta`` to the integer at ``key``; raise ValueError if the key is absent."""
        return self._adapter.run(self._track(_verbs.incr(self._ctx, key, delta)))

    def decr(self, key: str, delta: int = 1) -> int:
        """Subtract ``delta`` from the integer at ``key``; raise ValueError if absent."""
        return self._adapter.run(self._track(_verbs.incr(self._ctx, key, -delta)))

    def get_or_set(self, key: str, default: Any, ttl: TTL | Default = DEFAULT) -> Any:
        """Return the value of ``key``, storing ``default`` (called if callable) if absent."""
        return self._adapter.run(self._track(_verbs.get_or_set(self._ctx, key, default, ttl)))

    def clear(self) -> None:
        """Delete every key of this cache's space (SCAN + UNLINK; other prefixes untouched)."""
        self._adapter.run(self._track(_scan.clear(self._ctx)))
        if self._local is not None:
            self._local.flush()

    def ttl(self, key: str) -> float | None | Missing:
        """Return the seconds ``key`` has left; None if it never expires; MISSING if absent."""
        return self._adapter.run(_verbs.ttl(self._ctx, key))

    def expire(self, key: str, ttl: TTL) -> bool:
        """Set the TTL of ``key`` (None: no expiry; <= 0: delete); return whether it exists."""
        return self._adapter.run(self._track(_verbs.touch(self._ctx, key, ttl)))

    def persist(self, key: str) -> bool:
        """Remove the TTL of ``key``; return whether it exists."""
        return self._adapter.run(self._track(_verbs.touch(self._ctx, key, None)))

    def iter_keys(self, pattern: str = "*") -> Iterator[str]:
        """Yield the keys matching the glob ``pattern`` (SCAN; a key may come twice)."""
        cursor = _scan.ScanCursor(self._ctx.entry_pattern(pattern))
        while not cursor.done:
            yield from self._adapter.run(_scan.user_keys(self._ctx, cursor))

    def delete_pattern(self, pattern: str) -> int:
        """Delete the entries whose key matches the glob ``pattern``; return how many."""
        return self._adapter.run(self._track(_scan.delete_pattern(self._ctx, pattern)))

    def invalidate_tags(self, *tags: str) -> bool:
        """Invalidate every entry stored with any of ``tags`` (one round trip)."""
        return self._adapter.run(self._track(_tags.invalidate(self._ctx, tags)))

    def lock(
        self, name: str, *, timeout: float | None = 10.0, blocking_timeout: float | None = None
    ) -> Lock:
        """Return a lock (not yet taken) with a lease of ``timeout`` s; see :class:`Lock`."""
        return Lock(self._adapter, self._ctx.lock_key(name), name, timeout, blocking_timeout)

    @overload
    def cached(self, ttl: Callable[P, R], /) -> CachedFunction[P, R]: ...

    @overload
    def cached(
        self,
        ttl: TTL | Default = DEFAULT,
        *,
        key: str | Callable[..., str] | None = None,
        tags: Iterable[str] | Callable[..., Iterable[str]] = (),
        stale_ttl: TTL = 0,
        lock: bool | float = True,
        cache_none: bool = True,
        xfetch_beta: float = 1.0,
    ) -> Callable[[Callable[P, R]], CachedFunction[P, R]]: ...

    def cached(
        self,
        ttl: Any = DEFAULT,
        *,
        key: str | Callable[..., str] | None = None,
        tags: Iterable[str] | Callable[..., Iterable[str]] = (),
        stale_ttl: TTL = 0,
        lock: bool | float = True,
        cache_none: bool = True,
        xfetch_beta: float = 1.0,
    ) -> Any:
        """Cache the results of a function (see :mod:`rcache.objects` for the options)."""
        if callable(ttl):
            return self.cached()(ttl)
        options = Options(ttl, key, tags, stale_ttl, lock, cache_none, xfetch_beta)
        run = self._adapter.run if self._local is None else self._run
        return lambda fn: decorate(self._ctx, run, False, fn, options)

    def close(self) -> None:
        """Close the local tier, and the adapter if :meth:`from_url` created it."""
        if self._local is not None:
            self._local.close()
        if self._owns_adapter:
            self._adapter.close()

    def __enter__(self) -> ObjectCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncObjectCache(_CacheBase):
    """A Redis object cache for asyncio code: :class:`ObjectCache`'s methods, awaited."""

    def __init__(
        self,
        adapter: AsyncRedisAdapter,
        *,
        prefix: str = "",
        version: int = 1,
        codec: Codec | None = None,
        default_ttl: TTL = 300,
        on_error: OnError = "miss",
        local: LocalTier | None = None,
    ) -> None:
        super().__init__(
            adapter,
            AsyncClusterScanner(adapter),
            prefix,
            version,
            codec,
            default_ttl,
            on_error,
            local,
        )
        self._adapter = adapter

    async def _run(self, op: Op[T]) -> T:
        """Run ``op`` with its writes tracked (the decorator's runner with a local tier)."""
        return await self._adapter.run(self._track(op))

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AsyncObjectCache:
        """Build a cache with its own adapter (closed by :meth:`aclose`)."""
        mine, settings = split_options(options, _CACHE_OPTIONS)
        cache = cls(AsyncRedisAdapter.from_url(url, **settings), **mine)
        cache._owns_adapter = True
        return cache

    @property
    def adapter(self) -> AsyncRedisAdapter:
        """The adapter this cache runs its operations with."""
        return self._adapter

    async def get(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key``, or ``default`` when it is absent."""
        return await self._adapter.run(_verbs.get(self._ctx, key, default))

    async def set(
        self, key: str, value: Any, ttl: TTL | Default = DEFAULT, *, tags: Iterable[str] = ()
    ) -> bool:
        """Store ``value`` under ``key``; return False if Redis failed ("miss" mode)."""
        return await self._adapter.run(
            self._track(_verbs.set_value(self._ctx, key, value, ttl, tags))
        )

    async def add(
        self, key: str, value: Any, ttl: TTL | Default = DEFAULT, *, tags: Iterable[str] = ()
    ) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored."""
        return await self._adapter.run(self._track(_verbs.add(self._ctx, key, value, ttl, tags)))

    async def touch(self, key: str, ttl: TTL | Default = DEFAULT) -> bool:
        """Give ``key`` a new TTL; return whether the key exists."""
        return await self._adapter.run(self._track(_verbs.touch(self._ctx, key, ttl)))

    async def delete(self, key: str) -> bool:
        """Delete ``key``; return whether it existed."""
        return await self._adapter.run(self._track(_verbs.delete(self._ctx, key)))

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """Return ``{key: value}`` for the keys present (one round trip)."""
        return await self._adapter.run(_verbs.get_many(self._ctx, keys))

    async def set_many(self, mapping: Mapping[str, Any], ttl: TTL | Default = DEFAULT) -> list[str]:
        """Store every item (one round trip); return the keys that could not be stored."""
        return await self._adapter.run(self._track(_verbs.set_many(self._ctx, mapping, ttl)))

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete the keys (one round trip); return how many existed."""
        return await self._adapter.run(self._track(_verbs.delete_many(self._ctx, keys)))

    async def has_key(self, key: str) -> bool:
        """Return whether ``get(key)`` would find a value."""
        return await self._adapter.run(_verbs.has_key(self._ctx, key))

    async def incr(self, key: str, delta: int = 1) -> int:
        """Add ``delta`` to the integer at ``key``; raise ValueError if the key is absent."""
        return await self._adapter.run(self._track(_verbs.incr(self._ctx, key, delta)))

    async def decr(self, key: str, delta: int = 1) -> int:
        """Subtract ``delta`` from the integer at ``key``; raise ValueError if absent."""
        return await self._adapter.run(self._track(_verbs.incr(self._ctx, key, -delta)))

    async def get_or_set(self, key: str, default: Any, ttl: TTL | Default = DEFAULT) -> Any:
        """Return the value of ``key``, storing ``default`` (called, awaited) if absent."""
        return await self._adapter.run(self._track(_verbs.get_or_set(self._ctx, key, default, ttl)))

    async def clear(self) -> None:
        """Delete every key of this cache's space (SCAN + UNLINK; other prefixes untouched)."""
        await self._adapter.run(self._track(_scan.clear(self._ctx)))
        if self._local is not None:
            self._local.flush()

    async def ttl(self, key: str) -> float | None | Missing:
        """Return the seconds ``key`` has left; None if it never expires; MISSING if absent."""
        return await self._adapter.run(_verbs.ttl(self._ctx, key))

    async def expire(self, key: str, ttl: TTL) -> bool:
        """Set the TTL of ``key`` (None: no expiry; <= 0: delete); return whether it exists."""
        return await self._adapter.run(self._track(_verbs.touch(self._ctx, key, ttl)))

    async def persist(self, key: str) -> bool:
        """Remove the TTL of ``key``; return whether it exists."""
        return await self._adapter.run(self._track(_verbs.touch(self._ctx, key, None)))

    async def iter_keys(self, pattern: str = "*") -> AsyncIterator[str]:
        """Yield the keys matching the glob ``pattern`` (SCAN; a key may come twice)."""
        cursor = _scan.ScanCursor(self._ctx.entry_pattern(pattern))
        while not cursor.done:
            for key in await self._adapter.run(_scan.user_keys(self._ctx, cursor)):
                yield key

    async def delete_pattern(self, pattern: str) -> int:
        """Delete the entries whose key matches the glob ``pattern``; return how many."""
        return await self._adapter.run(self._track(_scan.delete_pattern(self._ctx, pattern)))

    async def invalidate_tags(self, *tags: str) -> bool:
        """Invalidate every entry stored with any of ``tags`` (one round trip)."""
        return await self._adapter.run(self._track(_tags.invalidate(self._ctx, tags)))

    def lock(
        self, name: str, *, timeout: float | None = 10.0, blocking_timeout: float | None = None
    ) -> AsyncLock:
        """Return a lock (not yet taken) with a lease of ``timeout`` s; see :class:`AsyncLock`."""
        return AsyncLock(self._adapter, self._ctx.lock_key(name), name, timeout, blocking_timeout)

    @overload
    def cached(self, ttl: Callable[P, Awaitable[R]], /) -> AsyncCachedFunction[P, R]: ...

    @overload
    def cached(
        self,
        ttl: TTL | Default = DEFAULT,
        *,
        key: str | Callable[..., str] | None = None,
        tags: Iterable[str] | Callable[..., Iterable[str]] = (),
        stale_ttl: TTL = 0,
        lock: bool | float = True,
        cache_none: bool = True,
        xfetch_beta: float = 1.0,
    ) -> Callable[[Callable[P, Awaitable[R]]], AsyncCachedFunction[P, R]]: ...

    def cached(
        self,
        ttl: Any = DEFAULT,
        *,
        key: str | Callable[..., str] | None = None,
        tags: Iterable[str] | Callable[..., Iterable[str]] = (),
        stale_ttl: TTL = 0,
        lock: bool | float = True,
        cache_none: bool = True,
        xfetch_beta: float = 1.0,
    ) -> Any:
        """Cache the results of a coroutine function (see :mod:`rcache.objects`)."""
        if callable(ttl):
            return self.cached()(ttl)
        options = Options(ttl, key, tags, stale_ttl, lock, cache_none, xfetch_beta)
        run = self._adapter.run if self._local is None else self._run
        return lambda fn: decorate(self._ctx, run, True, fn, options)

    async def aclose(self) -> None:
        """Close the local tier, and the adapter if :meth:`from_url` created it."""
        if self._local is not None:
            await self._local.aclose()
        if self._owns_adapter:
            await self._adapter.aclose()

    async def __aenter__(self) -> AsyncObjectCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
