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

from collections.abc import Mapping
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
from rcache_django._loops import PerLoop

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


def _sync_cache(config: PagesConfig) -> PageCache:
    return PageCache(RedisAdapter(config.redis), policy=config.policy, **config.cache_options)


def _async_cache(config: PagesConfig) -> AsyncPageCache:
    return AsyncPageCache(
        AsyncRedisAdapter(config.redis), policy=config.policy, **config.cache_options
    )


caches: PerLoop[PagesConfig, PageCache, AsyncPageCache] = PerLoop(
    load_config, _sync_cache, _async_cache
)


def _reset(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: drop the caches when ``RCACHE_PAGES`` changes."""
    if setting == SETTING:
        caches.reset()


setting_changed.connect(_reset, dispatch_uid="rcache_django.pages.reset")
