"""rcache for ASGI apps (Starlette, FastAPI): framework glue only; the logic is in `rcache`."""

from __future__ import annotations

from rcache_asgi.cache import cache_lifespan, cached, get_cache
from rcache_asgi.dashboard import Dashboard
from rcache_asgi.pages import PageCacheMiddleware, PageOptions, page_cache
from rcache_asgi.sessions import (
    SessionMiddleware,
    flush_session,
    regenerate_session,
    session_store,
)

__all__: list[str] = [
    "Dashboard",
    "PageCacheMiddleware",
    "PageOptions",
    "SessionMiddleware",
    "cache_lifespan",
    "cached",
    "flush_session",
    "get_cache",
    "page_cache",
    "regenerate_session",
    "session_store",
]
