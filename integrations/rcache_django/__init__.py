"""rcache for Django: framework glue only; everything else lives in the `rcache` core."""

from __future__ import annotations

from rcache_django.cache import RedisCache, cached
from rcache_django.dashboard import dashboard_urls
from rcache_django.pages import PageCacheMiddleware, page_cache

__all__: list[str] = [
    "PageCacheMiddleware",
    "RedisCache",
    "cached",
    "dashboard_urls",
    "page_cache",
]
