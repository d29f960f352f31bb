"""rcache for Flask: framework glue only; everything else lives in the `rcache` core."""

from __future__ import annotations

from rcache_flask.cache import RCache
from rcache_flask.dashboard import dashboard_blueprint
from rcache_flask.pages import PageCache
from rcache_flask.sessions import RCacheSession, RCacheSessionInterface

__all__: list[str] = [
    "PageCache",
    "RCache",
    "RCacheSession",
    "RCacheSessionInterface",
    "dashboard_blueprint",
]
