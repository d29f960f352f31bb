"""A Flask-Caching backend on the rcache object cache.

::

    app.config.update(
        CACHE_TYPE="rcache_flask.flask_caching.RCacheBackend",
        CACHE_REDIS_URL="redis://127.0.0.1:6379/0",
        CACHE_DEFAULT_TIMEOUT=300,
        CACHE_KEY_PREFIX="blog",
        CACHE_OPTIONS={"socket_timeout": 0.5},   # optional, see RCacheBackend
    )
    cache = Cache(app)                            # flask_caching.Cache: @cache.cached, memoize

Flask-Caching's ``cached`` and ``memoize`` then run on rcache: retries, the circuit breaker,
failures as misses instead of 500s, scoped ``clear()``, and signed pickle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_caching.backends.base import BaseCache

from rcache.errors import BackendError, ConfigurationError, EncodeError
from rcache.objects import ObjectCache
from rcache.ttl import DEFAULT, TTL, Default
from rcache_flask._cache_config import make_codec, uses_pickle

__all__ = ["RCacheBackend"]

_CODEC_OPTIONS = frozenset(
    {"serializer", "compressor", "compress_min_size", "signing_keys", "accept_pickle"}
)


class RCacheBackend(BaseCache):
    """Flask-Caching's (cachelib's) cache API over an :class:`~rcache.objects.ObjectCache`.

    Config: ``CACHE_REDIS_URL`` (required; any rcache URL), ``CACHE_KEY_PREFIX`` (the key
    space prefix; Flask-Caching's default ``flask_cache_``), ``CACHE_DEFAULT_TIMEOUT``.
    ``CACHE_OPTIONS`` may add: ``serializer`` (``"pickle"`` by default, as Flask-Caching's
    own backends, since ``@cache.cached`` stores response objects; or ``"json"``,
    ``"msgpack"``), ``signing_keys`` (with pickle, derived from ``SECRET_KEY`` and
    ``SECRET_KEY_FALLBACKS`` when left out: a forged value is refused, never unpickled;
    None turns signing off), ``compressor``, ``compress_min_size``, ``accept_pickle``,
    ``on_error`` (``"miss"`` default, or ``"raise"``) and any connection setting of
    :class:`rcache.config.RedisSettings` (``socket_timeout``, ``max_connections``, ...).

    Timeouts follow cachelib: None = the default timeout, 0 = never expire, a negative
    number expires at once. Return values follow cachelib too: ``set``/``add`` return False
    when Redis failed, ``get`` returns None for a missing key, ``inc``/``dec`` return None
    when Redis failed. Unpicklable values raise what pickle raised.
    """

    def __init__(
        self,
        cache: ObjectCache,
        default_timeout: int = 300,
        ignore_delete_many_errors: bool = False,
    ) -> None:
        super().__init__(
            default_timeout=default_timeout, ignore_delete_many_errors=ignore_delete_many_errors
        )
        self.object_cache = cache
        self._pickle = uses_pickle(cache.codec.serializer.name)

    @classmethod
    def factory(
        cls,
        app: Flask,
        config: dict[str, Any],
        args: list[Any],
        kwargs: dict[str, Any],
    ) -> RCacheBackend:
        """Build the backend from Flask-Caching's config (called by ``Cache.init_app``)."""
        options = dict(kwargs)
        default_timeout = options.pop("default_timeout", config.get("CACHE_DEFAULT_TIMEOUT", 300))
        ignore = options.pop("ignore_delete_many_errors", False)
        url = options.pop("url", None) or config.get("CACHE_REDIS_URL")
        if not url:
            raise ConfigurationError('RCacheBackend needs CACHE_REDIS_URL = "redis://host:port/db"')
        codec_options = {k: options.pop(k) for k in list(options) if k in _CODEC_OPTIONS}
        codec = make_codec(
            app.config, codec_options, default_serializer="pickle", what="RCacheBackend"
        )
        on_error = options.pop("on_error", "miss")
        prefix = config.get("CACHE_KEY_PREFIX") or ""
        cache = ObjectCache.from_url(
            url,
            prefix=prefix,
            codec=codec,
            default_ttl=cls._ttl_of(default_timeout, None),
            on_error=on_error,
            **options,
        )
        return cls(cache, default_timeout=default_timeout, ignore_delete_many_errors=ignore)

    # -- cachelib conventions -------------------------------------------------------------

    @staticmethod
    def _ttl_of(timeout: int | float | dt.timedelta | None, default: Any) -> TTL | Default:
        if timeout is None:
            return default  # type: ignore[no-any-return]
        seconds = timeout.total_seconds() if isinstance(timeout, dt.timedelta) else timeout
        if seconds == 0:
            return None  # cachelib: 0 = never expire
        return timeout

    def _ttl(self, timeout: int | float | dt.timedelta | None) -> TTL | Default:
        return self._ttl_of(timeout, DEFAULT)

    def _encode_failed(self, exc: EncodeError) -> Any:
        if self._pickle and exc.__cause__ is not None:
            raise exc.__cause__ from None
        raise exc

    # -- the API --------------------------------------------------------------------------

    def get(self, key: str) -> Any:
        """Return the value of ``key``, or None."""
        return self.object_cache.get(key)

    def get_many(self, *keys: str) -> list[Any]:
        """Return the values of ``keys`` in order (None where missing), in one round trip."""
        found = self.object_cache.get_many(keys)
        return [found.get(k) for k in keys]

    def get_dict(self, *keys: str) -> dict[str, Any]:
        """Return ``{key: value or None}`` for ``keys``."""
        return dict(zip(keys, self.get_many(*keys), strict=True))

    def has(self, key: str) -> bool:
        """Return whether ``key`` holds a value."""
        return self.object_cache.has_key(key)

    def set(self, key: str, value: Any, timeout: int | dt.timedelta | None = None) -> bool:
        """Store ``value``; return False if Redis failed."""
        try:
            return self.object_cache.set(key, value, self._ttl(timeout))
        except EncodeError as exc:
            return bool(self._encode_failed(exc))

    def add(self, key: str, value: Any, timeout: int | dt.timedelta | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored."""
        try:
            return self.object_cache.add(key, value, self._ttl(timeout))
        except EncodeError as exc:
            return bool(self._encode_failed(exc))

    def set_many(
        self, mapping: Mapping[str, Any], timeout: int | dt.timedelta | None = None
    ) -> list[Any]:
        """Store every item (one round trip); return the keys that were stored."""
        try:
            failed = set(self.object_cache.set_many(mapping, self._ttl(timeout)))
        except EncodeError as exc:
            return list(self._encode_failed(exc))
        return [k for k in mapping if k not in failed]

    def delete(self, key: str) -> bool:
        """Delete ``key``; return whether it existed."""
        return self.object_cache.delete(key)

    def delete_many(self, *keys: str) -> list[Any]:
        """Delete ``keys`` in one round trip; return them (absent afterwards counts as deleted).

        A failure during an outage is logged (``on_error="miss"``), not reported here.
        """
        self.object_cache.delete_many(keys)
        return list(keys)

    def clear(self) -> bool:
        """Delete every key of this prefix (SCAN + UNLINK; never the whole database)."""
        self.object_cache.clear()
        return True

    def inc(self, key: str, delta: int = 1) -> int | None:
        """Add ``delta`` atomically (a missing key starts at 0); None if Redis failed."""
        for _ in range(2):
            try:
                return self.object_cache.incr(key, delta)
            except ValueError as exc:
                cause = exc.__cause__
                if isinstance(cause, BackendError) and type(cause) is not BackendError:
                    return None  # Redis failed ("miss" mode)
                if cause is not None:
                    raise  # the value is not an integer
            if self.object_cache.add(key, delta, None):
                return delta
        return None

    def dec(self, key: str, delta: int = 1) -> int | None:
        """Subtract ``delta`` atomically (see :meth:`inc`)."""
        return self.inc(key, -delta)
