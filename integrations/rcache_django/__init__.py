"""rcache for Django: framework glue only; everything else lives in the `rcache` core."""

from __future__ import annotations

from rcache_django.cache import RedisCache, cached

__all__: list[str] = ["RedisCache", "cached"]
