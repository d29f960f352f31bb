"""The cache backend's configuration and the object caches it runs on.

Django builds a backend object per thread (and, under ASGI, per request task), so those
objects stay cheap: everything costly lives in a :class:`Profile`, shared by every backend
object with the same ``LOCATION``, ``OPTIONS``, ``KEY_PREFIX`` and ``TIMEOUT``:

- one blocking :class:`~rcache.objects.ObjectCache` per key version, on one thread-safe
  :class:`~rcache.adapter.RedisAdapter` per Redis (shared by every profile that talks to it);
- one :class:`~rcache.objects.AsyncObjectCache` per key version and *event loop*: an asyncio
  connection belongs to the loop that opened it, and Django starts a fresh loop for every
  ``async_to_sync`` call (an async view under WSGI, an async test). Each loop's adapter is
  closed when the loop shuts down: a suspended async generator registered with the loop runs
  ``aclose()`` from ``loop.shutdown_asyncgens()``, which ``asyncio.run`` (and so asgiref,
  uvicorn and pytest-asyncio) calls before closing the loop.

Changing ``CACHES`` (``override_settings`` in tests) drops every profile and closes the
blocking adapters; backend objects built afterwards get new ones.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator, Hashable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.conf import settings  # type: ignore[import-untyped, unused-ignore]
from django.core.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    ImproperlyConfigured,
)
from django.core.signals import setting_changed  # type: ignore[import-untyped, unused-ignore]
from django.utils.crypto import salted_hmac  # type: ignore[import-untyped, unused-ignore]

from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.codecs import Codec
from rcache.config import RedisSettings
from rcache.errors import ConfigurationError
from rcache.objects import AsyncObjectCache, ObjectCache, OnError
from rcache.ttl import TTL

__all__ = ["Profile", "derived_signing_keys", "pools", "profile_for", "reset"]

#: OPTIONS read by the codec (:class:`rcache.codecs.Codec`).
CODEC_OPTIONS = frozenset(
    {"serializer", "compressor", "compress_min_size", "signing_keys", "accept_pickle"}
)
#: OPTIONS that Django's BaseCache reads for culling; Redis evicts by itself, so ignored.
CULL_OPTIONS = frozenset({"MAX_ENTRIES", "CULL_FREQUENCY"})
#: RedisSettings fields that only LOCATION may set.
_URL_ONLY = frozenset({"mode", "hosts", "unix_socket_path", "ssl"})
REDIS_OPTIONS = frozenset(f.name for f in fields(RedisSettings)) - _URL_ONLY
_KNOWN = CODEC_OPTIONS | CULL_OPTIONS | REDIS_OPTIONS | {"on_error"}

_SIGNING_SALT = "rcache_django.cache.RedisCache"
_PICKLE_ID = 2


def derived_signing_keys() -> list[bytes]:
    """Return the pickle signing keys derived from SECRET_KEY, then SECRET_KEY_FALLBACKS.

    Each is ``salted_hmac(salt, "value signing", secret)``: a key used for nothing else, so a
    signed cache value can never serve as a signed cookie or session, and the other way round.
    """
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
    return [
        salted_hmac(_SIGNING_SALT, "value signing", secret=s, algorithm="sha256").digest()
        for s in secrets
        if s
    ]


def _url_names_db(url: str) -> bool:
    """Return whether ``url`` names a database (its path or a ``db`` query option)."""
    parts = urlsplit(url)
    if any(name == "db" for name, _ in parse_qsl(parts.query)):
        return True
    scheme = parts.scheme.lower()
    if scheme in ("unix", "redis+unix"):
        return False  # the path is the socket's
    segments = [s for s in parts.path.split("/") if s]
    return len(segments) > (1 if "sentinel" in scheme else 0)


def _uses_pickle(options: Mapping[str, Any]) -> bool:
    serializer = options.get("serializer", "pickle")
    return serializer == "pickle" or getattr(serializer, "id", None) == _PICKLE_ID


def _frozen(value: Any) -> Hashable:
    """Return a hashable stand-in for a settings value (dicts and lists become tuples)."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple | set | frozenset):
        items = [_frozen(v) for v in value]
        return tuple(sorted(items, key=repr) if isinstance(value, set | frozenset) else items)
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Config:
    """What LOCATION, OPTIONS, KEY_PREFIX and TIMEOUT say, validated."""

    redis: RedisSettings
    codec: Codec
    prefix: str
    default_ttl: TTL
    on_error: OnError


def load_config(location: Any, options: Mapping[str, Any], prefix: str, timeout: TTL) -> Config:
    """Validate a CACHES entry; raise ImproperlyConfigured naming what is wrong."""
    if isinstance(location, list | tuple):
        if len(location) != 1:
            raise ImproperlyConfigured(
                "rcache_django.RedisCache takes one LOCATION URL; for replicas use a "
                "redis+sentinel:// URL, for a Cluster a redis+cluster:// URL"
            )
        location = location[0]
    if not isinstance(location, str) or not location:
        raise ImproperlyConfigured(
            'rcache_django.RedisCache needs LOCATION = "redis://host:port/db" (or rediss://, '
            "unix://, redis+sentinel://, redis+cluster://)"
        )
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured("CACHES OPTIONS must be a dict")
    unknown = sorted(set(options) - _KNOWN)
    if unknown:
        url_only = sorted(set(unknown) & _URL_ONLY)
        hint = f" ({', '.join(url_only)} come from LOCATION)" if url_only else ""
        raise ImproperlyConfigured(
            f"unknown rcache_django.RedisCache OPTIONS: {', '.join(unknown)}{hint}"
        )
    redis_options = {k: v for k, v in options.items() if k in REDIS_OPTIONS}
    if "db" in redis_options and _url_names_db(location):
        del redis_options["db"]  # a db inside LOCATION wins, as with Django's own backend
    codec_options = {k: v for k, v in options.items() if k in CODEC_OPTIONS}
    codec_options.setdefault("serializer", "pickle")
    if "signing_keys" not in codec_options and _uses_pickle(codec_options):
        codec_options["signing_keys"] = derived_signing_keys()
    try:
        config = Config(
            redis=RedisSettings.from_url(location, **redis_options),
            codec=Codec(**codec_options),
            prefix=prefix,
            default_ttl=timeout,
            on_error=options.get("on_error", "miss"),
        )
        # Build a cache once now, so a bad KEY_PREFIX, TIMEOUT or on_error fails here.
        ObjectCache(RedisAdapter(config.redis, client=object()), **_cache_kwargs(config, 1))
    except ConfigurationError as exc:
        raise ImproperlyConfigured(f"rcache_django.RedisCache: {exc}") from exc
    return config


def _cache_kwargs(config: Config, version: int) -> dict[str, Any]:
    return {
        "prefix": config.prefix,
        "version": version,
        "codec": config.codec,
        "default_ttl": config.default_ttl,
        "on_error": config.on_error,
    }


async def _close_with_loop(adapter: AsyncRedisAdapter) -> AsyncGenerator[None, None]:
    """Stay suspended until the loop shuts down its async generators; then close."""
    try:
        yield
    finally:
        await adapter.aclose()


@dataclass
class _LoopAdapters:
    adapters: dict[RedisSettings, AsyncRedisAdapter] = field(default_factory=dict)
    closers: list[AsyncGenerator[None, None]] = field(default_factory=list)


class Pools:
    """The adapters of the process: one blocking adapter per Redis, one per loop for asyncio."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: dict[RedisSettings, RedisAdapter] = {}
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopAdapters] = (
            weakref.WeakKeyDictionary()
        )
        # Adapters dropped by reset() while their loop still runs wait here to be closed by
        # that loop's shutdown, not by garbage collection in the middle of a request.
        self._retired: list[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]] = []

    def sync(self, redis: RedisSettings) -> RedisAdapter:
        """Return the blocking adapter of ``redis`` (built on first use)."""
        adapter = self._sync.get(redis)
        if adapter is None:
            with self._lock:
                adapter = self._sync.get(redis)
                if adapter is None:
                    adapter = self._sync[redis] = RedisAdapter(redis)
        return adapter

    async def async_(self, redis: RedisSettings) -> AsyncRedisAdapter:
        """Return the asyncio adapter of ``redis`` for the running loop (closed with it)."""
        loop = asyncio.get_running_loop()
        entry = self._loops.get(loop)
        if entry is not None and redis in entry.adapters:
            return entry.adapters[redis]
        adapter = AsyncRedisAdapter(redis)
        closer = _close_with_loop(adapter)
        await anext(closer)  # now tracked by the loop: closed by shutdown_asyncgens()
        with self._lock:
            entry = self._loops.setdefault(loop, _LoopAdapters())
            entry.adapters[redis] = adapter
            entry.closers.append(closer)  # keeps the generator alive until the loop ends
        return adapter

    def reset(self) -> None:
        """Close the blocking adapters and forget every adapter (loops close their own)."""
        with self._lock:
            adapters = list(self._sync.values())
            self._sync.clear()
            self._retired = [old for old in self._retired if len(old)]
            if len(self._loops):
                self._retired.append(self._loops)
            self._loops = weakref.WeakKeyDictionary()
        for adapter in adapters:
            adapter.close()


pools = Pools()


class Profile:
    """The object caches of one configuration, per key version (and per loop for asyncio)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._sync: dict[int, ObjectCache] = {}
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[int, AsyncObjectCache]
        ] = weakref.WeakKeyDictionary()

    def sync(self, version: int) -> ObjectCache:
        """Return the blocking cache of key ``version``."""
        cache = self._sync.get(version)
        if cache is None:
            adapter = pools.sync(self.config.redis)
            cache = ObjectCache(adapter, **_cache_kwargs(self.config, version))
            cache = self._sync.setdefault(version, cache)
        return cache

    async def async_(self, version: int) -> AsyncObjectCache:
        """Return the asyncio cache of key ``version`` for the running loop."""
        loop = asyncio.get_running_loop()
        caches = self._async.get(loop)
        if caches is not None:
            cache = caches.get(version)
            if cache is not None:
                return cache
        adapter = await pools.async_(self.config.redis)
        cache = AsyncObjectCache(adapter, **_cache_kwargs(self.config, version))
        return self._async.setdefault(loop, {}).setdefault(version, cache)


_profiles: dict[Hashable, Profile] = {}
_profiles_lock = threading.Lock()


def profile_for(location: Any, params: Mapping[str, Any], prefix: str, timeout: TTL) -> Profile:
    """Return the shared profile of a CACHES entry (validated the first time)."""
    options = params.get("OPTIONS") or {}
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured("CACHES OPTIONS must be a dict")
    relevant = {k: v for k, v in options.items() if k not in CULL_OPTIONS}
    secrets: Hashable = None
    if "signing_keys" not in relevant and _uses_pickle(relevant):
        secrets = _frozen([settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())])
    key = (_frozen(location), _frozen(relevant), prefix, timeout, secrets)
    profile = _profiles.get(key)
    if profile is None:
        config = load_config(location, options, prefix, timeout)
        with _profiles_lock:
            profile = _profiles.setdefault(key, Profile(config))
    return profile


def reset(**kwargs: Any) -> None:
    """Drop every profile and close the blocking adapters (``setting_changed`` receiver)."""
    if kwargs.get("setting", "CACHES") != "CACHES":
        return  # secrets are part of a profile's identity: a new one gets a new profile
    with _profiles_lock:
        _profiles.clear()
    pools.reset()


setting_changed.connect(reset, dispatch_uid="rcache_django.cache.reset")
