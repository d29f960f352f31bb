"""A Django cache backend on the rcache object cache, and a ``cached`` decorator.

::

    CACHES = {
        "default": {
            "BACKEND": "rcache_django.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/0",
            "TIMEOUT": 300,
            "KEY_PREFIX": "shop",
            "OPTIONS": {"socket_timeout": 0.5, "compressor": "zlib"},
        }
    }

    from django.core.cache import cache
    cache.set("cart:42", cart, timeout=60)
    await cache.aget("cart:42")               # native asyncio, no thread hop

    @rcache_django.cached(60)                 # functions and views alike
    def product_list(request): ...

:class:`RedisCache` validates keys and timeouts the Django way and hands every call to an
:class:`~rcache.objects.ObjectCache` (blocking) or :class:`~rcache.objects.AsyncObjectCache`
(``a*`` methods); :mod:`._cache_config` owns those and their connections.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from django.core.cache.backends.base import (  # type: ignore[import-untyped, unused-ignore]
    DEFAULT_TIMEOUT,
    BaseCache,
    default_key_func,
)

from rcache.errors import BackendError, EncodeError
from rcache.objects import AsyncObjectCache, ObjectCache
from rcache.ttl import DEFAULT, TTL, Default
from rcache_django._cache_config import Profile, profile_for
from rcache_django._cache_views import cached

__all__ = ["RedisCache", "cached"]


def _ttl(timeout: Any) -> TTL | Default:
    """Translate a Django timeout: DEFAULT_TIMEOUT, None (forever), seconds (<= 0: expired)."""
    return DEFAULT if timeout is DEFAULT_TIMEOUT else timeout


def _not_an_integer(exc: ValueError) -> bool:
    """Return whether the core's incr failed because the stored value is not an integer."""
    # The core raises ValueError from the generic BackendError of Redis's "not an integer"
    # reply; outages come from its subclasses (unavailable, timeout, read-only, ...).
    return type(exc.__cause__) is BackendError


class RedisCache(BaseCache):  # type: ignore[misc, unused-ignore]
    """A Django cache backend storing in Redis through rcache.

    ``LOCATION``: one Redis URL: ``redis://[[user]:password@]host:port/db``, ``rediss://``
    (TLS), ``unix:///path.sock?db=0``, ``redis+sentinel://h1:26379,h2:26379/service/db`` or
    ``redis+cluster://h1:7000,h2:7001`` (every URL option is in ``docs/configuration.md``).
    A db number inside LOCATION (path or ``?db=``) overrides ``OPTIONS["db"]``.

    ``TIMEOUT``: the default timeout in seconds (Django's default 300); None = never expire;
    0 = expire at once. Per call, ``timeout`` follows Django: left out = TIMEOUT, None =
    forever, 0 or less = expired at once (``set`` deletes the key, ``add`` stores nothing).

    ``KEY_PREFIX``, ``VERSION``, ``KEY_FUNCTION``: Django's. The Redis key of an entry is
    ``KEY_PREFIX:version:key`` (``version:key`` without a prefix); keys with whitespace,
    control characters or ``#``, or longer than 200 bytes, are stored under a readable head
    plus a SHA-256 digest, so every key works (``validate_key`` still warns with
    ``CacheKeyWarning`` about keys memcached would refuse). A KEY_FUNCTION's result becomes
    the entry's name inside ``KEY_PREFIX:version:``, so ``clear()`` and versions keep working.
    KEY_PREFIX may not contain whitespace or braces, nor a segment (between colons) that is
    an integer.

    ``OPTIONS`` (all optional):

    - ``serializer``: ``"pickle"`` (default, what Django's own backends store, so model
      instances, querysets and responses can be cached), ``"json"``, ``"msgpack"``, or a
      :class:`rcache.codecs.Serializer`. ``str``, ``bytes`` and ``int`` values are stored as
      they are whatever the serializer (so ``incr`` is Redis's ``INCRBY``).
    - ``signing_keys``: HMAC-SHA256 keys that sign what is stored and are checked before
      anything is unpickled. Left out with pickle: derived from ``SECRET_KEY`` (signs) and
      ``SECRET_KEY_FALLBACKS`` (still verify), through ``salted_hmac`` so the derived key
      serves no other purpose. Why: unpickling runs code chosen by whoever wrote the bytes,
      and anything that can write to the Redis (another app, a compromised service, an
      exposed port) could then run code in this one. With signing, a forged or altered
      value is refused (a logged miss) and never unpickled. A list of keys sets them
      explicitly (first signs, all verify); None turns signing off, safe only when nothing
      else can write to the Redis.
    - ``compressor``: None (default), ``"zlib"``, ``"zstd"``, ``"lz4"`` or a
      :class:`rcache.codecs.Compressor`; ``compress_min_size``: bytes (default 1024) below
      which values are stored uncompressed. ``accept_pickle``: read pickled values although
      the serializer is not pickle (default only with the pickle serializer).
    - ``on_error``: ``"miss"`` (default): when Redis fails, reads are misses and writes do
      nothing (``add``/``touch``/``delete`` return False, ``set_many`` returns every key,
      ``incr`` raises ValueError as for a missing key), logged once per outage, so a site
      keeps serving pages without its cache; ``"raise"``: the
      :class:`rcache.errors.BackendError` rises.
    - ``db``: the database number when LOCATION names none.
    - Connection settings (:class:`rcache.config.RedisSettings`; seconds): ``username``,
      ``password``, ``socket_timeout`` (1.0), ``socket_connect_timeout`` (1.0),
      ``socket_keepalive``, ``health_check_interval`` (30), ``client_name``, the pool's
      ``max_connections`` (64) and ``pool_timeout`` (1.0); retries of failed round trips:
      ``retry_attempts`` (3), ``retry_backoff_base`` (0.05), ``retry_backoff_cap`` (1.0),
      ``retry_deadline`` (2.0); the circuit breaker that fails fast while Redis is down:
      ``breaker_threshold`` (5 failures) and ``breaker_cooldown`` (1.0); TLS:
      ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_cert_reqs``,
      ``ssl_check_hostname``; Sentinel: ``service_name``, ``sentinel_username``,
      ``sentinel_password``; and ``key_prefix``, put in front of KEY_PREFIX.
    - ``MAX_ENTRIES``, ``CULL_FREQUENCY``: accepted and ignored: Redis evicts by its
      ``maxmemory-policy`` (see ``rcache.eviction`` for checking it).

    Unknown OPTIONS raise ImproperlyConfigured naming them.

    Behaviour: ``clear()`` deletes this KEY_PREFIX's keys only (SCAN + UNLINK), never the
    whole database. ``close()`` keeps the connections: they are pooled per process and
    shared by every thread, so closing them after each request would only make the next
    one reconnect. The ``a*`` methods are native asyncio, with one connection pool per
    event loop. ``incr``/``decr`` raise TypeError when the value is not an integer.
    """

    def __init__(self, server: Any, params: Mapping[str, Any]) -> None:
        super().__init__(params)
        self._profile: Profile = profile_for(server, params, self.key_prefix, self.default_timeout)
        self._pickle = self._profile.config.codec.serializer.name == "pickle"

    # -- keys ------------------------------------------------------------------------------

    def _entry(self, key: Any, version: int | None) -> tuple[str, int]:
        """Return the entry name of ``key`` and its version (warning about odd keys)."""
        if version is None:
            version = self.version
        made = self.make_and_validate_key(key, version=version)
        if self.key_func is default_key_func:
            return (key if isinstance(key, str) else str(key)), version
        return made, version

    def _entries(self, keys: Iterable[Any], version: int | None) -> tuple[dict[str, Any], int]:
        """Return ``{entry name: key}`` for ``keys`` and their version."""
        names: dict[str, Any] = {}
        v = self.version if version is None else version
        for key in keys:
            name, v = self._entry(key, v)
            names[name] = key
        return names, v

    def _cache(self, version: int) -> ObjectCache:
        return self._profile.sync(version)

    async def _acache(self, version: int) -> AsyncObjectCache:
        return await self._profile.async_(version)

    def _encode_failed(self, exc: EncodeError) -> NoReturn:
        """Raise what pickle raised (Django's contract: pickle.PickleError and friends)."""
        if self._pickle and exc.__cause__ is not None:
            raise exc.__cause__ from None
        raise exc

    # -- blocking --------------------------------------------------------------------------

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        """Return the value of ``key``, or ``default`` if it is absent."""
        name, v = self._entry(key, version)
        return self._cache(v).get(name, default)

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        """Store ``value`` under ``key`` for ``timeout`` seconds."""
        name, v = self._entry(key, version)
        try:
            self._cache(v).set(name, value, _ttl(timeout))
        except EncodeError as exc:
            self._encode_failed(exc)

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored."""
        name, v = self._entry(key, version)
        try:
            return self._cache(v).add(name, value, _ttl(timeout))
        except EncodeError as exc:
            self._encode_failed(exc)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        """Give ``key`` a new timeout; return whether it exists."""
        name, v = self._entry(key, version)
        return self._cache(v).touch(name, _ttl(timeout))

    def delete(self, key: Any, version: int | None = None) -> bool:
        """Delete ``key``; return whether it existed."""
        name, v = self._entry(key, version)
        return self._cache(v).delete(name)

    def get_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        """Return ``{key: value}`` for the keys present (one round trip)."""
        names, v = self._entries(keys, version)
        found = self._cache(v).get_many(names)
        return {names[name]: value for name, value in found.items()}

    def set_many(
        self,
        data: Mapping[Any, Any],
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> list[Any]:
        """Store every item (one round trip); return the keys that could not be stored."""
        names, v = self._entries(data, version)
        try:
            failed = self._cache(v).set_many(
                {name: data[key] for name, key in names.items()}, _ttl(timeout)
            )
        except EncodeError as exc:
            self._encode_failed(exc)
        return [names[name] for name in failed]

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        """Delete the keys (one round trip)."""
        names, v = self._entries(keys, version)
        if names:
            self._cache(v).delete_many(names)

    def has_key(self, key: Any, version: int | None = None) -> bool:
        """Return whether ``key`` holds a value."""
        name, v = self._entry(key, version)
        return self._cache(v).has_key(name)

    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Add ``delta`` atomically; ValueError if ``key`` is absent, TypeError if not an int."""
        name, v = self._entry(key, version)
        try:
            return self._cache(v).incr(name, delta)
        except ValueError as exc:
            if _not_an_integer(exc):
                raise TypeError(f"the value of key {key!r} is not an integer") from exc
            raise

    def decr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Subtract ``delta`` atomically (see :meth:`incr`)."""
        return self.incr(key, -delta, version=version)

    def get_or_set(
        self,
        key: Any,
        default: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> Any:
        """Return the value of ``key``; if absent, :meth:`add` ``default`` (called if callable).

        When someone else stored a value first, theirs is returned (one more read).
        """
        value = self.get(key, self._missing_key, version=version)
        if value is not self._missing_key:
            return value
        if callable(default):
            default = default()
        if self.add(key, default, timeout=timeout, version=version):
            return default
        return self.get(key, default, version=version)

    def clear(self) -> None:
        """Delete every entry under this KEY_PREFIX, at every version (not the database)."""
        self._cache(self.version).clear()

    def close(self, **kwargs: Any) -> None:
        """Keep the pooled connections (shared by the process); see the class docs."""

    # -- asyncio ---------------------------------------------------------------------------

    async def aget(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        """Return the value of ``key``, or ``default`` if it is absent."""
        name, v = self._entry(key, version)
        return await (await self._acache(v)).get(name, default)

    async def aset(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        """Store ``value`` under ``key`` for ``timeout`` seconds."""
        name, v = self._entry(key, version)
        try:
            await (await self._acache(v)).set(name, value, _ttl(timeout))
        except EncodeError as exc:
            self._encode_failed(exc)

    async def aadd(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """Store ``value`` only if ``key`` is absent; return whether it was stored."""
        name, v = self._entry(key, version)
        try:
            return await (await self._acache(v)).add(name, value, _ttl(timeout))
        except EncodeError as exc:
            self._encode_failed(exc)

    async def atouch(
        self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """Give ``key`` a new timeout; return whether it exists."""
        name, v = self._entry(key, version)
        return await (await self._acache(v)).touch(name, _ttl(timeout))

    async def adelete(self, key: Any, version: int | None = None) -> bool:
        """Delete ``key``; return whether it existed."""
        name, v = self._entry(key, version)
        return await (await self._acache(v)).delete(name)

    async def aget_many(self, keys: Iterable[Any], version: int | None = None) -> dict[Any, Any]:
        """Return ``{key: value}`` for the keys present (one round trip)."""
        names, v = self._entries(keys, version)
        found = await (await self._acache(v)).get_many(names)
        return {names[name]: value for name, value in found.items()}

    async def aset_many(
        self,
        data: Mapping[Any, Any],
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> list[Any]:
        """Store every item (one round trip); return the keys that could not be stored."""
        names, v = self._entries(data, version)
        try:
            failed = await (await self._acache(v)).set_many(
                {name: data[key] for name, key in names.items()}, _ttl(timeout)
            )
        except EncodeError as exc:
            self._encode_failed(exc)
        return [names[name] for name in failed]

    async def adelete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        """Delete the keys (one round trip)."""
        names, v = self._entries(keys, version)
        if names:
            await (await self._acache(v)).delete_many(names)

    async def ahas_key(self, key: Any, version: int | None = None) -> bool:
        """Return whether ``key`` holds a value."""
        name, v = self._entry(key, version)
        return await (await self._acache(v)).has_key(name)

    async def aincr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Add ``delta`` atomically (see :meth:`incr`)."""
        name, v = self._entry(key, version)
        try:
            return await (await self._acache(v)).incr(name, delta)
        except ValueError as exc:
            if _not_an_integer(exc):
                raise TypeError(f"the value of key {key!r} is not an integer") from exc
            raise

    async def adecr(self, key: Any, delta: int = 1, version: int | None = None) -> int:
        """Subtract ``delta`` atomically (see :meth:`incr`)."""
        return await self.aincr(key, -delta, version=version)

    async def aget_or_set(
        self,
        key: Any,
        default: Any,
        timeout: Any = DEFAULT_TIMEOUT,
        version: int | None = None,
    ) -> Any:
        """Return the value of ``key``; if absent, :meth:`aadd` ``default`` (see get_or_set)."""
        value = await self.aget(key, self._missing_key, version=version)
        if value is not self._missing_key:
            return value
        if callable(default):
            default = default()
        if await self.aadd(key, default, timeout=timeout, version=version):
            return default
        return await self.aget(key, default, version=version)

    async def aclear(self) -> None:
        """Delete every entry under this KEY_PREFIX, at every version (not the database)."""
        await (await self._acache(self.version)).clear()

    async def aclose(self, **kwargs: Any) -> None:
        """Keep the pooled connections (closed with their event loop)."""

    # -- for the decorator -----------------------------------------------------------------

    def object_cache(self, version: int | None = None) -> ObjectCache:
        """Return the :class:`~rcache.objects.ObjectCache` behind this backend (tags, locks)."""
        return self._cache(self.version if version is None else version)

    async def aobject_cache(self, version: int | None = None) -> AsyncObjectCache:
        """Return the running loop's :class:`~rcache.objects.AsyncObjectCache` behind this."""
        return await self._acache(self.version if version is None else version)
