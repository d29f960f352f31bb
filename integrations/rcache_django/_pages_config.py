"""The page cache's settings (``RCACHE_PAGES``) and the caches built from them.

One blocking :class:`~rcache.pages.PageCache` serves the whole process (its adapter is
thread-safe). An :class:`~rcache.pages.AsyncPageCache` can serve only the event loop it
first ran on, and Django starts a fresh loop for every ``async_to_sync`` call (an async view
under WSGI, an async test), so there is one per running loop, closed when that loop shuts
down (a suspended async generator registered with the loop runs its ``aclose()`` from
``loop.shutdown_asyncgens()``, which ``asyncio.run``, asgiref, uvicorn and pytest-asyncio
call before closing a loop).

Changing ``RCACHE_PAGES`` (``override_settings`` in tests) drops the caches; the next
request builds them again.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from django.conf import settings  # type: ignore[import-untyped, unused-ignore]
from django.core.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    ImproperlyConfigured,
)
from django.core.signals import setting_changed  # type: ignore[import-untyped, unused-ignore]

from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.config import RedisSettings
from rcache.errors import ConfigurationError
from rcache.pages import AsyncPageCache, PageCache, PageCachePolicy

__all__ = ["SETTING", "PagesConfig", "caches", "load_config"]

#: The setting the caches are built from.
SETTING = "RCACHE_PAGES"

_TOP_LEVEL = frozenset({"URL", "OPTIONS", "CACHE_ALL_VIEWS", "EARLY_HITS"})
_POLICY_FIELDS = frozenset(f.name for f in fields(PageCachePolicy))
_CACHE_FIELDS = frozenset({"prefix", "on_error", "lock_timeout", "wait_timeout"})
_REDIS_FIELDS = frozenset(f.name for f in fields(RedisSettings))


@dataclass(frozen=True)
class PagesConfig:
    """What ``RCACHE_PAGES`` says, validated."""

    redis: RedisSettings
    policy: PageCachePolicy
    cache_options: Mapping[str, Any]
    cache_all_views: bool
    early_hits: bool = True


def _policy(options: Mapping[str, Any]) -> PageCachePolicy:
    values = dict(options)
    if "ignored_query_params" in values:
        values["ignored_query_params"] = tuple(values["ignored_query_params"])
    if "cacheable_statuses" in values:
        values["cacheable_statuses"] = frozenset(values["cacheable_statuses"])
    return PageCachePolicy(**values)


def load_config() -> PagesConfig:
    """Read ``RCACHE_PAGES``; raise ImproperlyConfigured when it is missing or wrong."""
    conf = getattr(settings, SETTING, None)
    if not isinstance(conf, Mapping) or not isinstance(conf.get("URL"), str):
        raise ImproperlyConfigured(
            'the rcache page cache needs RCACHE_PAGES = {"URL": "redis://...", '
            '"OPTIONS": {...}} in the settings'
        )
    unknown = set(conf) - _TOP_LEVEL
    if unknown:
        raise ImproperlyConfigured(f"unknown RCACHE_PAGES key(s): {', '.join(sorted(unknown))}")
    options = conf.get("OPTIONS") or {}
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured('RCACHE_PAGES["OPTIONS"] must be a dict')
    unknown = set(options) - _POLICY_FIELDS - _CACHE_FIELDS - _REDIS_FIELDS
    if unknown:
        raise ImproperlyConfigured(
            f"unknown RCACHE_PAGES['OPTIONS'] key(s): {', '.join(sorted(unknown))}"
        )
    try:
        return PagesConfig(
            redis=RedisSettings.from_url(
                conf["URL"], **{k: v for k, v in options.items() if k in _REDIS_FIELDS}
            ),
            policy=_policy({k: v for k, v in options.items() if k in _POLICY_FIELDS}),
            cache_options={k: v for k, v in options.items() if k in _CACHE_FIELDS},
            cache_all_views=bool(conf.get("CACHE_ALL_VIEWS", True)),
            early_hits=bool(conf.get("EARLY_HITS", True)),
        )
    except (ConfigurationError, TypeError) as exc:
        raise ImproperlyConfigured(f"RCACHE_PAGES: {exc}") from exc


async def _close_with_loop(cache: AsyncPageCache) -> AsyncGenerator[None, None]:
    """Stay suspended until the loop shuts down its async generators; then close."""
    try:
        yield
    finally:
        await cache.adapter.aclose()


_LoopCache = tuple[AsyncPageCache, AsyncGenerator[None, None]]


class _Caches:
    """The process-wide blocking cache and the per-event-loop asyncio caches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config: PagesConfig | None = None
        self._sync: PageCache | None = None
        # loop -> (cache, the generator that closes it). The references keep each closer
        # alive until its loop shuts it down; caches dropped by reset() while their loop
        # still runs wait in _retired for that, so a request using one is not cut off.
        self._async: dict[asyncio.AbstractEventLoop, _LoopCache] = {}
        self._retired: list[tuple[asyncio.AbstractEventLoop, _LoopCache]] = []

    def config(self) -> PagesConfig:
        config = self._config
        if config is None:
            config = self._config = load_config()
        return config

    def sync(self) -> PageCache:
        """Return the blocking cache (built on first use)."""
        cache = self._sync
        if cache is not None:
            return cache
        with self._lock:
            if self._sync is None:
                config = self.config()
                self._sync = PageCache(
                    RedisAdapter(config.redis), policy=config.policy, **config.cache_options
                )
            return self._sync

    async def async_(self) -> AsyncPageCache:
        """Return the asyncio cache of the running event loop (built on first use)."""
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is not None:
            return entry[0]
        config = self.config()
        cache = AsyncPageCache(
            AsyncRedisAdapter(config.redis), policy=config.policy, **config.cache_options
        )
        closer = _close_with_loop(cache)
        await anext(closer)  # now tracked by the loop: closed by shutdown_asyncgens()
        with self._lock:
            self._forget_closed_loops()
            self._async[loop] = (cache, closer)
        return cache

    def _forget_closed_loops(self) -> None:
        for old in [lp for lp in self._async if lp.is_closed()]:
            del self._async[old]
        self._retired = [(lp, entry) for lp, entry in self._retired if not lp.is_closed()]

    def reset(self) -> None:
        """Drop every cache (the settings changed); each loop still closes its own."""
        with self._lock:
            sync, self._sync = self._sync, None
            self._config = None
            self._retired.extend(self._async.items())
            self._async.clear()
            self._forget_closed_loops()
        if sync is not None:
            sync.adapter.close()


caches = _Caches()


def _reset(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: drop the caches when ``RCACHE_PAGES`` changes."""
    if setting == SETTING:
        caches.reset()


setting_changed.connect(_reset, dispatch_uid="rcache_django.pages.reset")
