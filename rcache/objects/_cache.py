"""``ObjectCache`` and ``AsyncObjectCache``: thin shells over the operations.

Every public method builds one operation (``_verbs``, ``_tags``, ``_scan``, ``_fill``)
and runs it through the adapter: ``self._adapter.run(op)`` or ``await
self._adapter.run(op)``. There is no logic here to keep in step between the two, with one
exception, the hottest call: ``get`` of a plain value is one ``GET`` sent with the
adapter's ``execute`` and decoded here (or one look into the local tier); anything else
it meets (an envelope to open, bytes that do not decode) is finished by the operation
:func:`rcache.objects._verbs.finish_get`, so the rules stay in one place.

With a local tier (``local=LocalTier()``), reads consult it inside the read path, and the
operations that may write are wrapped by ``self._track`` so that the keys they write are
dropped from it when Redis answers (see :mod:`rcache.objects._local`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, ParamSpec, TypeVar, overload

from rcache._degrade import async_redo, sync_redo
from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.codecs import Codec
from rcache.config import split_options
from rcache.errors import BackendError, DecodeError
from rcache.hotkeys import HotKeys
from rcache.keys import KeySpace
from rcache.objects import _scan, _tags, _verbs
from rcache.objects._context import CacheContext, NodeScanner, remember
from rcache.objects._decorator import AsyncCachedFunction, CachedFunction, Options, decorate
from rcache.objects._failures import Failures, OnError
from rcache.objects._local import LocalTier
from rcache.objects._locks import AsyncLock, Lock
from rcache.objects._nodes import AsyncClusterScanner, ClusterScanner
from rcache.objects._read import MISSING, Missing
from rcache.ops import Batch, Op
from rcache.ttl import DEFAULT, TTL, Default

__all__ = ["AsyncObjectCache", "ObjectCache"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_CACHE_OPTIONS = frozenset(
    {"prefix", "version", "codec", "default_ttl", "on_error", "local", "hot_keys"}
)
_VERSIONS = 64  # key versions other than the cache's own whose contexts are kept
_NOT_PLAIN: Any = object()
_log = logging.getLogger("rcache.objects")


def _decoded(ctx: CacheContext, raw: bytes) -> Any:
    """Return the value of plain stored bytes; _NOT_PLAIN for an envelope or bad bytes."""
    if raw[:1] == b"\x01":  # an envelope (see _envelope): tags to check
        return _NOT_PLAIN
    try:
        return ctx.codec.decode(raw)
    except DecodeError:
        return _NOT_PLAIN  # finish_get deletes and reports it


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
        self._store = None if local is None else local._store
        if local is not None:
            is_async = isinstance(adapter, AsyncRedisAdapter)
            self._ctx = local.bind(self._ctx, adapter.settings, is_async)
        self._versions: dict[int, CacheContext] = {}
        self._owns_adapter = False

    def _at(self, version: int | None) -> CacheContext:
        """Return the context of key ``version`` (None: the cache's own).

        Another version changes the entries' keys only: tags stay the cache's own (so
        ``invalidate_tags`` reaches entries of every version), and the local tier holds
        the cache's own version only (it tracks that key space).
        """
        own = self._ctx
        if version is None:
            return own
        if isinstance(version, bool) or not isinstance(version, int):
            raise TypeError(f"a key version must be an int, got {type(version).__name__}")
        ctx = self._versions.get(version)
        if ctx is None:
            if version == own.space.version:
                ctx = own
            else:
                ctx = CacheContext(
                    space=own.space.with_version(version),
                    codec=own.codec,
                    default_ttl=own.default_ttl,
                    failures=own.failures,
                    stats=own.stats,
                    scanner=own.scanner,
                    clock=own.clock,
                )
                ctx.tag_head = own.tag_head
            remember(self._versions, version, ctx, _VERSIONS)
        return ctx

    def _held(self, ctx: CacheContext, key: str) -> Any:
        """Return the value the live local tier holds for ``key``; _NOT_PLAIN if it can't."""
        store = self._store
        if store is None or not store.live or ctx is not self._ctx:
            return _NOT_PLAIN
        raw = store.get_one(ctx.key(key))
        if raw is None:
            return _NOT_PLAIN
        value = _decoded(ctx, raw)
        if value is not _NOT_PLAIN:
            store.stats.hits += 1
            ctx.stats.hits += 1
        return value

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
    ``hot_keys``: a :class:`~rcache.hotkeys.HotKeys` board counting the reads that reach
    Redis (None = none).
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
        hot_keys: HotKeys | None = None,
    ) -> None:
        super().__init__(
            adapter, ClusterScanner(adapter), prefix, version, codec, default_ttl, on_error, local
        )
        self._adapter = adapter
        self._hot = hot_keys
        self._ctx.failures.on_redo = sync_redo(lambda: adapter.run(_verbs.redo(self._ctx)), _log)

    def _note(self, redis_key: Any) -> None:
        """Count a read for the hot-keys board; flush the counts when due (fails open)."""
        hot = self._hot
        if hot is not None and hot.note(redis_key):
            try:
                hot.flush(self._adapter)
            except BackendError as err:  # the counts of this interval are dropped
                _log.debug("hot-keys flush failed: %s", err)

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

    def get(self, key: str, default: Any = None, *, version: int | None = None) -> Any:
        """Return the value of ``key``, or ``default`` when it is absent."""
        ctx = self._ctx if version is None else self._at(version)
        if self._local is not None and ctx is self._ctx:
            value = self._held(ctx, key)
            if value is not _NOT_PLAIN:
                return value
            return self._adapter.run(_verbs.get(ctx, key, default))
        redis_key = ctx.key(key)
        if self._hot is not None:
            self._note(redis_key)
        try:
            raw = self._adapter.execute("GET", redis_key)
        except BackendError as err:
            ctx.failures.backend(err, "get")
            return default
        if raw is None:
            ctx.failures.ok()
            ctx.stats.misses += 1
            return default
        value = _decoded(ctx, raw)
        if value is _NOT_PLAIN:
            return self._adapter.run(_verbs.finish_get(ctx, redis_key, raw, default))
        ctx.failures.ok()
        ctx.stats.hits += 1
        return value

    def set(
        self,
        key: str,
        value: Any,
        ttl: TTL | Default = DEFAULT,
        *,
        tags: Iterable[str] = (),
        version: int | None = None,
    ) -> bool:
        """Store ``value`` under ``key``; return False if Redis failed ("miss" mode)."""
        return self._adapter.run(
            self._track(_verbs.set_value(self._at(version), key, value, ttl, tags))
        )

    def add(
        self,
        key: str,
        value: Any,
        ttl: TTL | Default = DEFAULT,
        *,
        tags: Iterable[str] = (),
        version: int | None = None,
    ) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored."""
        return self._adapter.run(self._track(_verbs.add(self._at(version), key, value, ttl, tags)))

    def touch(self, key: str, ttl: TTL | Default = DEFAULT, *, version: int | None = None) -> bool:
        """Give ``key`` a new TTL; return whether the key exists."""
        return self._adapter.run(self._track(_verbs.touch(self._at(version), key, ttl)))

    def delete(self, key: str, *, version: int | None = None) -> bool:
        """Delete ``key``; return whether it existed."""
        return self._adapter.run(self._track(_verbs.delete(self._at(version), key)))

    def get_many(self, keys: Iterable[str], *, version: int | None = None) -> dict[str, Any]:
        """Return ``{key: value}`` for the keys present (one round trip)."""
        ctx = self._at(version)
        if self._hot is not None:
            keys = list(keys)
            for key in keys:
                self._note(ctx.key(key))
        return self._adapter.run(_verbs.get_many(ctx, keys))

    def set_many(
        self,
        mapping: Mapping[str, Any],
        ttl: TTL | Default = DEFAULT,
        *,
        version: int | None = None,
    ) -> list[str]:
        """Store every item (one round trip); return the keys that could not be stored."""
        return self._adapter.run(self._track(_verbs.set_many(self._at(version), mapping, ttl)))

    def delete_many(self, keys: Iterable[str], *, version: int | None = None) -> int:
        """Delete the keys (one round trip); return how many existed."""
        return self._adapter.run(self._track(_verbs.delete_many(self._at(version), keys)))

    def has_key(self, key: str, *, version: int | None = None) -> bool:
        """Return whether ``get(key)`` would find a value."""
        return self.get(key, MISSING, version=version) is not MISSING

    def incr(self, key: str, delta: int = 1, *, version: int | None = None) -> int:
        """Add ``delta`` to the integer at ``key``; raise ValueError if the key is absent."""
        return self._adapter.run(self._track(_verbs.incr(self._at(version), key, delta)))

    def decr(self, key: str, delta: int = 1, *, version: int | None = None) -> int:
        """Subtract ``delta`` from the integer at ``key``; raise ValueError if absent."""
        return self._adapter.run(self._track(_verbs.incr(self._at(version), key, -delta)))

    def get_or_set(
        self, key: str, default: Any, ttl: TTL | Default = DEFAULT, *, version: int | None = None
    ) -> Any:
        """Return the value of ``key``, storing ``default`` (called if callable) if absent."""
        return self._adapter.run(
            self._track(_verbs.get_or_set(self._at(version), key, default, ttl))
        )

    def clear(self) -> None:
        """Delete every key of this cache's space (SCAN + UNLINK; other prefixes untouched)."""
        self._adapter.run(self._track(_scan.clear(self._ctx)))
        if self._local is not None:
            self._local.flush()

    def ttl(self, key: str, *, version: int | None = None) -> float | None | Missing:
        """Return the seconds ``key`` has left; None if it never expires; MISSING if absent."""
        return self._adapter.run(_verbs.ttl(self._at(version), key))

    def expire(self, key: str, ttl: TTL, *, version: int | None = None) -> bool:
        """Set the TTL of ``key`` (None: no expiry; <= 0: delete); return whether it exists."""
        return self._adapter.run(self._track(_verbs.touch(self._at(version), key, ttl)))

    def persist(self, key: str, *, version: int | None = None) -> bool:
        """Remove the TTL of ``key``; return whether it exists."""
        return self._adapter.run(self._track(_verbs.touch(self._at(version), key, None)))

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
        if self._local is None:
            run, send = self._adapter.run, self._adapter.execute_batch
            if self._hot is not None:
                read = send

                def send(batch: Batch) -> list[Any]:  # the entry's read, counted
                    self._note(batch.commands[0][1])
                    return read(batch)

            return lambda fn: decorate(self._ctx, run, False, fn, options, send)
        return lambda fn: decorate(self._ctx, self._run, False, fn, options)

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
        hot_keys: HotKeys | None = None,
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
        self._hot = hot_keys
        self._ctx.failures.on_redo = async_redo(lambda: adapter.run(_verbs.redo(self._ctx)), _log)

    async def _note(self, redis_key: Any) -> None:
        """Count a read for the hot-keys board; flush the counts when due (fails open)."""
        hot = self._hot
        if hot is not None and hot.note(redis_key):
            try:
                await hot.aflush(self._adapter)
            except BackendError as err:  # the counts of this interval are dropped
                _log.debug("hot-keys flush failed: %s", err)

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

    async def get(self, key: str, default: Any = None, *, version: int | None = None) -> Any:
        """Return the value of ``key``, or ``default`` when it is absent."""
        ctx = self._ctx if version is None else self._at(version)
        if self._local is not None and ctx is self._ctx:
            value = self._held(ctx, key)
            if value is not _NOT_PLAIN:
                return value
            return await self._adapter.run(_verbs.get(ctx, key, default))
        redis_key = ctx.key(key)
        if self._hot is not None:
            await self._note(redis_key)
        try:
            raw = await self._adapter.execute("GET", redis_key)
        except BackendError as err:
            ctx.failures.backend(err, "get")
            return default
        if raw is None:
            ctx.failures.ok()
            ctx.stats.misses += 1
            return default
        value = _decoded(ctx, raw)
        if value is _NOT_PLAIN:
            return await self._adapter.run(_verbs.finish_get(ctx, redis_key, raw, default))
        ctx.failures.ok()
        ctx.stats.hits += 1
        return value

    async def set(
        self,
        key: str,
        value: Any,
        ttl: TTL | Default = DEFAULT,
        *,
        tags: Iterable[str] = (),
        version: int | None = None,
    ) -> bool:
        """Store ``value`` under ``key``; return False if Redis failed ("miss" mode)."""
        return await self._adapter.run(
            self._track(_verbs.set_value(self._at(version), key, value, ttl, tags))
        )

    async def add(
        self,
        key: str,
        value: Any,
        ttl: TTL | Default = DEFAULT,
        *,
        tags: Iterable[str] = (),
        version: int | None = None,
    ) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored."""
        return await self._adapter.run(
            self._track(_verbs.add(self._at(version), key, value, ttl, tags))
        )

    async def touch(
        self, key: str, ttl: TTL | Default = DEFAULT, *, version: int | None = None
    ) -> bool:
        """Give ``key`` a new TTL; return whether the key exists."""
        return await self._adapter.run(self._track(_verbs.touch(self._at(version), key, ttl)))

    async def delete(self, key: str, *, version: int | None = None) -> bool:
        """Delete ``key``; return whether it existed."""
        return await self._adapter.run(self._track(_verbs.delete(self._at(version), key)))

    async def get_many(self, keys: Iterable[str], *, version: int | None = None) -> dict[str, Any]:
        """Return ``{key: value}`` for the keys present (one round trip)."""
        ctx = self._at(version)
        if self._hot is not None:
            keys = list(keys)
            for key in keys:
                await self._note(ctx.key(key))
        return await self._adapter.run(_verbs.get_many(ctx, keys))

    async def set_many(
        self,
        mapping: Mapping[str, Any],
        ttl: TTL | Default = DEFAULT,
        *,
        version: int | None = None,
    ) -> list[str]:
        """Store every item (one round trip); return the keys that could not be stored."""
        return await self._adapter.run(
            self._track(_verbs.set_many(self._at(version), mapping, ttl))
        )

    async def delete_many(self, keys: Iterable[str], *, version: int | None = None) -> int:
        """Delete the keys (one round trip); return how many existed."""
        return await self._adapter.run(self._track(_verbs.delete_many(self._at(version), keys)))

    async def has_key(self, key: str, *, version: int | None = None) -> bool:
        """Return whether ``get(key)`` would find a value."""
        return await self.get(key, MISSING, version=version) is not MISSING

    async def incr(self, key: str, delta: int = 1, *, version: int | None = None) -> int:
        """Add ``delta`` to the integer at ``key``; raise ValueError if the key is absent."""
        return await self._adapter.run(self._track(_verbs.incr(self._at(version), key, delta)))

    async def decr(self, key: str, delta: int = 1, *, version: int | None = None) -> int:
        """Subtract ``delta`` from the integer at ``key``; raise ValueError if absent."""
        return await self._adapter.run(self._track(_verbs.incr(self._at(version), key, -delta)))

    async def get_or_set(
        self, key: str, default: Any, ttl: TTL | Default = DEFAULT, *, version: int | None = None
    ) -> Any:
        """Return the value of ``key``, storing ``default`` (called, awaited) if absent."""
        return await self._adapter.run(
            self._track(_verbs.get_or_set(self._at(version), key, default, ttl))
        )

    async def clear(self) -> None:
        """Delete every key of this cache's space (SCAN + UNLINK; other prefixes untouched)."""
        await self._adapter.run(self._track(_scan.clear(self._ctx)))
        if self._local is not None:
            self._local.flush()

    async def ttl(self, key: str, *, version: int | None = None) -> float | None | Missing:
        """Return the seconds ``key`` has left; None if it never expires; MISSING if absent."""
        return await self._adapter.run(_verbs.ttl(self._at(version), key))

    async def expire(self, key: str, ttl: TTL, *, version: int | None = None) -> bool:
        """Set the TTL of ``key`` (None: no expiry; <= 0: delete); return whether it exists."""
        return await self._adapter.run(self._track(_verbs.touch(self._at(version), key, ttl)))

    async def persist(self, key: str, *, version: int | None = None) -> bool:
        """Remove the TTL of ``key``; return whether it exists."""
        return await self._adapter.run(self._track(_verbs.touch(self._at(version), key, None)))

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
        if self._local is None:
            run, send = self._adapter.run, self._adapter.execute_batch
            if self._hot is not None:
                read = send

                async def send(batch: Batch) -> list[Any]:  # the entry's read, counted
                    await self._note(batch.commands[0][1])
                    return await read(batch)

            return lambda fn: decorate(self._ctx, run, True, fn, options, send)
        return lambda fn: decorate(self._ctx, self._run, True, fn, options)

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
