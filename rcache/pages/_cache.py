"""``PageCache`` and ``AsyncPageCache``: thin shells over the page cache operations.

Every method builds one operation (:mod:`~rcache.pages._lookup`, :mod:`~rcache.pages._store`)
and runs it with ``self._adapter.run(op)`` or ``await self._adapter.run(op)``; the only
difference between the two classes is how the view is called (awaited or not).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any

from rcache._degrade import async_redo, sync_redo
from rcache.adapter import AdapterStats, AsyncRedisAdapter, RedisAdapter
from rcache.config import split_options
from rcache.errors import ConfigurationError
from rcache.keys import KeySpace
from rcache.pages import _store
from rcache.pages._context import LookupResult, PageContext, StoreOptions, seconds
from rcache.pages._failures import Failures, OnError, logger
from rcache.pages._layout import Layout, page_space
from rcache.pages._lookup import lookup
from rcache.pages.model import Request, Response
from rcache.pages.policy import PageCachePolicy

__all__ = ["AsyncPageCache", "PageCache"]

_OPTIONS = frozenset({"policy", "prefix", "on_error", "lock_timeout", "wait_timeout"})


class _PageCacheBase:
    """Configuration shared by both shells (no I/O)."""

    def __init__(
        self,
        adapter: RedisAdapter | AsyncRedisAdapter,
        policy: PageCachePolicy | None,
        prefix: str,
        on_error: OnError,
        lock_timeout: float | timedelta,
        wait_timeout: float | timedelta,
    ) -> None:
        policy = policy if policy is not None else PageCachePolicy()
        if not isinstance(policy, PageCachePolicy):
            raise ConfigurationError("policy must be a PageCachePolicy")
        lease = seconds(lock_timeout, "lock_timeout")
        wait = seconds(wait_timeout, "wait_timeout")
        if lease <= 0 or wait < 0:
            raise ConfigurationError("lock_timeout must be > 0 and wait_timeout >= 0 seconds")
        space = page_space(adapter.key_prefix, prefix, cluster=adapter.settings.mode == "cluster")
        self._ctx = PageContext(
            policy=policy,
            layout=Layout(space, policy),
            failures=Failures(on_error),
            stats=adapter.stats,
            lease_ms=math.ceil(lease * 1000),
            wait_timeout=wait,
        )
        self._owns_adapter = False

    @property
    def policy(self) -> PageCachePolicy:
        """The caching rules this cache applies."""
        return self._ctx.policy

    @property
    def key_space(self) -> KeySpace:
        """The key space every key of this cache lives in."""
        return self._ctx.layout.space

    @property
    def stats(self) -> AdapterStats:
        """The adapter's counters; ``hits`` and ``misses`` count page lookups."""
        return self._ctx.stats

    def _purge_url_keys(self, urls: Sequence[str | Request]) -> list[str]:
        return _store.url_purge_keys(self._ctx, urls)

    def _purge_tag_keys(self, tags: Sequence[str]) -> list[str]:
        return [self._ctx.layout.tag_purge_key(tag) for tag in dict.fromkeys(tags)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.key_space.prefix!r})"


class PageCache(_PageCacheBase):
    """A full-page cache for blocking code (WSGI, Django's sync views).

    ``policy``: the HTTP caching rules (:class:`~rcache.pages.PageCachePolicy`).
    ``prefix``: after the adapter's ``key_prefix``, names this cache's keys; two caches
    with the same prefix share their pages and purges. ``on_error``: ``"miss"`` lets the
    view answer when Redis fails (``X-Cache: BYPASS``, one warning per outage on the
    ``rcache.pages`` logger), ``"raise"`` raises the :class:`~rcache.errors.BackendError`.
    ``lock_timeout``: seconds a request producing a page holds its lease (a crashed holder
    blocks nobody longer). ``wait_timeout``: seconds other requests for the same page wait
    for it before running the view themselves (0: they never wait).

    On Redis Cluster every key of one page cache shares one hash slot, so a hit stays one
    round trip and purges stay atomic; the pages of one prefix then sit on one primary
    (give separate sites separate prefixes to spread them).
    """

    def __init__(
        self,
        adapter: RedisAdapter,
        *,
        policy: PageCachePolicy | None = None,
        prefix: str = "page",
        on_error: OnError = "miss",
        lock_timeout: float | timedelta = 30.0,
        wait_timeout: float | timedelta = 5.0,
    ) -> None:
        super().__init__(adapter, policy, prefix, on_error, lock_timeout, wait_timeout)
        self._adapter = adapter
        self._ctx.failures.on_redo = sync_redo(
            lambda: adapter.run(_store.redo_purges(self._ctx)), logger
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PageCache:
        """Build a cache with its own adapter (closed by :meth:`close`).

        ``options``: the cache's keyword arguments and any :class:`~rcache.RedisSettings`.
        """
        mine, settings = split_options(options, _OPTIONS)
        cache = cls(RedisAdapter.from_url(url, **settings), **mine)
        cache._owns_adapter = True
        return cache

    @property
    def adapter(self) -> RedisAdapter:
        """The adapter this cache runs its operations with."""
        return self._adapter

    def handle(
        self,
        request: Request,
        view: Callable[[Request], Response],
        *,
        ttl: float | timedelta | None = None,
        tags: Iterable[str] = (),
        allow_set_cookie: bool | None = None,
        vary: Sequence[str] = (),
    ) -> Response:
        """Answer ``request`` from the cache, or call ``view(request)`` and store its response.

        ``ttl``: seconds the stored page stays fresh here, whatever its ``max-age`` or
        ``Expires`` (the fields sent to clients are unchanged; ``no-store``, ``private``
        and ``no-cache`` still win); None: from the response, else the policy's
        ``default_ttl``. ``tags``: purge tags, added to those of the tag header.
        ``allow_set_cookie``: overrides the policy for this view. ``vary``: request header
        names added to the response's ``Vary``. An exception of the view propagates unless
        a stale copy may be served instead.
        """
        options = StoreOptions.of(ttl, tags, allow_set_cookie, vary)
        op = _store.handle(self._ctx, request, view, _store.call_view, options)
        return self._adapter.run(op)

    def lookup(self, request: Request) -> LookupResult:
        """Look ``request`` up; see :class:`~rcache.pages.LookupResult` for what follows."""
        return self._adapter.run(lookup(self._ctx, request))

    def store(
        self,
        request: Request,
        response: Response,
        result: LookupResult | None,
        *,
        ttl: float | timedelta | None = None,
        tags: Iterable[str] = (),
        allow_set_cookie: bool | None = None,
        vary: Sequence[str] = (),
    ) -> Response:
        """Store the view's ``response`` to ``request`` if it may be; return what to send.

        ``result``: what :meth:`lookup` returned for this request (None: the request was not
        looked up; the response is only finished). Options as for :meth:`handle`.
        """
        options = StoreOptions.of(ttl, tags, allow_set_cookie, vary)
        result = result or LookupResult(None, "BYPASS", "not looked up")
        return self._adapter.run(_store.store(self._ctx, request, response, result, options))

    def recover(self, request: Request, result: LookupResult | None) -> Response | None:
        """After the view raised: release the lease; return a stale answer, or None."""
        if result is None:
            return None
        return self._adapter.run(_store.recover(self._ctx, request, result))

    def purge_url(self, *urls: str | Request) -> bool:
        """Purge every variant of each URL (absolute URL or request); one round trip.

        The query string is part of the URL. Returns False if Redis failed ("miss" mode).
        """
        return self._adapter.run(_store.purge(self._ctx, self._purge_url_keys(urls), "purge"))

    def purge_tag(self, *tags: str) -> bool:
        """Purge every page stored with any of ``tags``; one round trip, however many."""
        return self._adapter.run(_store.purge(self._ctx, self._purge_tag_keys(tags), "purge"))

    def purge_prefix(self, path_prefix: str) -> bool:
        """Purge every page whose path starts with ``path_prefix``, on every host.

        Whole segments: ``"/blog"`` purges ``/blog``, ``/blog/`` and ``/blog/x``, not
        ``/blogroll``; ``"/"`` purges everything. One round trip, however many pages.
        """
        keys = [self._ctx.layout.path_purge_key(path_prefix)]
        return self._adapter.run(_store.purge(self._ctx, keys, "purge"))

    def close(self) -> None:
        """Close the adapter if this cache made it (:meth:`from_url`)."""
        if self._owns_adapter:
            self._adapter.close()

    def __enter__(self) -> PageCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncPageCache(_PageCacheBase):
    """A full-page cache for asyncio code (ASGI, Django's async views).

    The same options and methods as :class:`PageCache`, awaited; views may be ``async def``
    (awaited) or plain functions (called on the event loop). Close with :meth:`aclose`.
    """

    def __init__(
        self,
        adapter: AsyncRedisAdapter,
        *,
        policy: PageCachePolicy | None = None,
        prefix: str = "page",
        on_error: OnError = "miss",
        lock_timeout: float | timedelta = 30.0,
        wait_timeout: float | timedelta = 5.0,
    ) -> None:
        super().__init__(adapter, policy, prefix, on_error, lock_timeout, wait_timeout)
        self._adapter = adapter
        self._ctx.failures.on_redo = async_redo(
            lambda: adapter.run(_store.redo_purges(self._ctx)), logger
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AsyncPageCache:
        """Build a cache with its own adapter (closed by :meth:`aclose`)."""
        mine, settings = split_options(options, _OPTIONS)
        cache = cls(AsyncRedisAdapter.from_url(url, **settings), **mine)
        cache._owns_adapter = True
        return cache

    @property
    def adapter(self) -> AsyncRedisAdapter:
        """The adapter this cache runs its operations with."""
        return self._adapter

    async def handle(
        self,
        request: Request,
        view: Callable[[Request], Response | Awaitable[Response]],
        *,
        ttl: float | timedelta | None = None,
        tags: Iterable[str] = (),
        allow_set_cookie: bool | None = None,
        vary: Sequence[str] = (),
    ) -> Response:
        """Answer ``request`` from the cache or through ``view``; see :meth:`PageCache.handle`."""
        options = StoreOptions.of(ttl, tags, allow_set_cookie, vary)
        op = _store.handle(self._ctx, request, view, _store.acall_view, options)
        return await self._adapter.run(op)

    async def lookup(self, request: Request) -> LookupResult:
        """Look ``request`` up; see :class:`~rcache.pages.LookupResult` for what follows."""
        return await self._adapter.run(lookup(self._ctx, request))

    async def store(
        self,
        request: Request,
        response: Response,
        result: LookupResult | None,
        *,
        ttl: float | timedelta | None = None,
        tags: Iterable[str] = (),
        allow_set_cookie: bool | None = None,
        vary: Sequence[str] = (),
    ) -> Response:
        """Store the view's ``response`` if it may be; see :meth:`PageCache.store`."""
        options = StoreOptions.of(ttl, tags, allow_set_cookie, vary)
        result = result or LookupResult(None, "BYPASS", "not looked up")
        return await self._adapter.run(_store.store(self._ctx, request, response, result, options))

    async def recover(self, request: Request, result: LookupResult | None) -> Response | None:
        """After the view raised: release the lease; return a stale answer, or None."""
        if result is None:
            return None
        return await self._adapter.run(_store.recover(self._ctx, request, result))

    async def purge_url(self, *urls: str | Request) -> bool:
        """Purge every variant of each URL; see :meth:`PageCache.purge_url`."""
        keys = self._purge_url_keys(urls)
        return await self._adapter.run(_store.purge(self._ctx, keys, "purge"))

    async def purge_tag(self, *tags: str) -> bool:
        """Purge every page stored with any of ``tags``; one round trip, however many."""
        keys = self._purge_tag_keys(tags)
        return await self._adapter.run(_store.purge(self._ctx, keys, "purge"))

    async def purge_prefix(self, path_prefix: str) -> bool:
        """Purge every page under ``path_prefix``; see :meth:`PageCache.purge_prefix`."""
        keys = [self._ctx.layout.path_purge_key(path_prefix)]
        return await self._adapter.run(_store.purge(self._ctx, keys, "purge"))

    async def aclose(self) -> None:
        """Close the adapter if this cache made it (:meth:`from_url`)."""
        if self._owns_adapter:
            await self._adapter.aclose()

    async def __aenter__(self) -> AsyncPageCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
