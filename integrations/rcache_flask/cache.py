"""The rcache object cache for Flask: ``RCache(app)`` / ``init_app`` and ``@rc.cached``.

::

    rc = RCache()

    def create_app():
        app = Flask(__name__)
        app.config["RCACHE_URL"] = "redis://127.0.0.1:6379/0"
        rc.init_app(app)
        return app

    @bp.get("/products/")
    @rc.cached(60)                     # a view: keyed by its URL
    def products(): ...

    @rc.cached(300, tags=["catalog"])  # a function: keyed by its arguments
    def price(product_id: int) -> dict: ...

    rc.cache.invalidate_tags("catalog")  # rc.cache: the current app's ObjectCache

The extension never stores the app: each app's :class:`~rcache.objects.ObjectCache` lives in
``app.extensions["rcache"]`` and is found through ``current_app`` at each call.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any
from weakref import WeakKeyDictionary

from flask import Flask, current_app, has_request_context, request

from rcache.errors import ConfigurationError
from rcache.objects import ObjectCache
from rcache.pages import is_request_cacheable
from rcache.ttl import DEFAULT, TTL, Default
from rcache_flask._cache_config import make_codec
from rcache_flask._cache_views import (
    VIEW_POLICY,
    Pass,
    from_stored,
    neutral_request,
    page_bytes,
    view_key,
)

__all__ = ["EXTENSION", "RCache"]

#: The key of ``app.extensions`` holding the app's ObjectCache.
EXTENSION = "rcache"

_CODEC_KEYS = {
    "RCACHE_SERIALIZER": "serializer",
    "RCACHE_COMPRESSOR": "compressor",
    "RCACHE_COMPRESS_MIN_SIZE": "compress_min_size",
    "RCACHE_SIGNING_KEYS": "signing_keys",
    "RCACHE_ACCEPT_PICKLE": "accept_pickle",
}


def cache_from_config(app: Flask) -> ObjectCache:
    """Build the ObjectCache the app's ``RCACHE_*`` config describes (see :class:`RCache`)."""
    config = app.config
    url = config.get("RCACHE_URL")
    if not isinstance(url, str) or not url:
        raise ConfigurationError('RCache needs app.config["RCACHE_URL"] = "redis://host:port/db"')
    options = config.get("RCACHE_OPTIONS") or {}
    if not isinstance(options, dict):
        raise ConfigurationError("RCACHE_OPTIONS must be a dict of connection settings")
    codec_options = {name: config[key] for key, name in _CODEC_KEYS.items() if key in config}
    codec = make_codec(config, codec_options, default_serializer="json", what="RCache")
    return ObjectCache.from_url(
        url,
        prefix=config.get("RCACHE_PREFIX", ""),
        version=config.get("RCACHE_VERSION", 1),
        default_ttl=config.get("RCACHE_DEFAULT_TTL", 300),
        on_error=config.get("RCACHE_ON_ERROR", "miss"),
        codec=codec,
        **options,
    )


def _current_cache() -> ObjectCache:
    try:
        cache: ObjectCache = current_app.extensions[EXTENSION]
    except KeyError:
        raise RuntimeError("RCache is not set up for this app: call rc.init_app(app)") from None
    return cache


def _is_view_call(wrapper: Callable[..., Any]) -> bool:
    """Return whether ``wrapper`` is (or is inside) the view serving the current request."""
    if not has_request_context() or request.endpoint is None:
        return False
    view: Any = current_app.view_functions.get(request.endpoint)
    while view is not None:
        if view is wrapper:
            return True
        view = getattr(view, "__wrapped__", None)
    return False


class _Decorated:
    """One decorated function: its options and its core wrappers, per app cache."""

    def __init__(self, fn: Callable[..., Any], options: dict[str, Any]) -> None:
        self.fn = fn
        self.options = options
        self._wrappers: dict[bool, WeakKeyDictionary[ObjectCache, Any]] = {
            False: WeakKeyDictionary(),
            True: WeakKeyDictionary(),
        }
        name = f"{fn.__module__}.{fn.__qualname__}"

        def key(*args: Any, **kwargs: Any) -> str:
            return view_key(name)

        self.view_key = key

        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> bytes:
            return page_bytes(fn(*args, **kwargs))

        self.inner = inner

    def core(self, cache: ObjectCache, view: bool) -> Any:
        """Return the core's wrapper of this function (or of its view form) on ``cache``."""
        wrapper = self._wrappers[view].get(cache)
        if wrapper is None:
            options = dict(self.options)
            if options["lock"] is None:
                # A view's response may turn out not storable (someone's own page): waiting
                # behind it would queue those requests one after another, so no lock.
                options["lock"] = not view
            if view and options["key"] is None:
                options["key"] = self.view_key
            wrapper = cache.cached(**options)(self.inner if view else self.fn)
            self._wrappers[view][cache] = wrapper
        return wrapper


class RCache:
    """A Flask extension giving each app an rcache :class:`~rcache.objects.ObjectCache`.

    Config read by :meth:`init_app` (``RCACHE_URL`` is required):

    - ``RCACHE_URL``: the Redis URL (``redis://``, ``rediss://``, ``unix://``,
      ``redis+sentinel://``, ``redis+cluster://``; see ``docs/configuration.md``).
    - ``RCACHE_OPTIONS``: a dict of connection settings
      (:class:`rcache.config.RedisSettings`: ``socket_timeout``, ``max_connections``,
      ``retry_attempts``, ``breaker_cooldown``, ...); they win over the URL's.
    - ``RCACHE_PREFIX`` (``""``) and ``RCACHE_VERSION`` (1): the key space
      ``prefix:version:``; ``clear()`` removes only its keys. Give each app its own prefix.
    - ``RCACHE_DEFAULT_TTL``: seconds (300); None = never expire.
    - ``RCACHE_SERIALIZER``: ``"json"`` (default), ``"msgpack"``, ``"pickle"`` or a
      :class:`rcache.codecs.Serializer`; ``RCACHE_COMPRESSOR`` (None, ``"zlib"``, ``"zstd"``,
      ``"lz4"``) and ``RCACHE_COMPRESS_MIN_SIZE`` (1024 bytes); ``RCACHE_ACCEPT_PICKLE``.
    - ``RCACHE_SIGNING_KEYS``: keys that sign stored values. With pickle and none given,
      derived from ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``: unpickling what another
      writer put in Redis would run its code, so pickle is never read unsigned (None turns
      signing off, safe only when nothing else can write to the Redis).
    - ``RCACHE_ON_ERROR``: ``"miss"`` (default: when Redis fails, reads miss, writes return
      False, decorated functions are simply called, one log line per outage) or ``"raise"``.

    The connections belong to the app's cache: ``rc.cache.close()`` (inside an app
    context) closes them, e.g. at the end of a test.
    """

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build the app's cache from its config and keep it in ``app.extensions``."""
        cache = cache_from_config(app)
        previous = app.extensions.get(EXTENSION)
        app.extensions[EXTENSION] = cache
        if isinstance(previous, ObjectCache):
            previous.close()  # init_app called again: the old connections are not needed

    @property
    def cache(self) -> ObjectCache:
        """The current app's :class:`~rcache.objects.ObjectCache` (needs an app context)."""
        return _current_cache()

    def cached(
        self,
        ttl: TTL | Default | Callable[..., Any] = DEFAULT,
        *,
        key: str | Callable[..., str] | None = None,
        tags: Iterable[str] | Callable[..., Iterable[str]] = (),
        stale_ttl: TTL = 0,
        lock: bool | float | None = None,
        cache_none: bool = True,
        xfetch_beta: float = 1.0,
    ) -> Any:
        """Cache what a view or a function returns, in the current app's cache.

        ``ttl``: seconds (DEFAULT = ``RCACHE_DEFAULT_TTL``; None = forever; <= 0 = do not
        cache). ``key``, ``tags``, ``stale_ttl``, ``cache_none``, ``xfetch_beta``: as in
        :mod:`rcache.objects`. ``lock``: single-flight on a miss (True = 10 s lease, seconds,
        False); None = True for function calls and False for view calls.

        A call is a *view call* when the function (or a decorator around it that uses
        ``functools.wraps``) is the view of the current request's endpoint: put
        ``@rc.cached`` below ``@app.route``, or in a ``View``'s ``decorators``. Its key is
        the function's name plus the request's canonical URL (scheme, host, path and sorted
        query; ``utm_*``, ``fbclid``, ``gclid`` left out) unless ``key`` says otherwise.
        GET and HEAD requests are answered from the cache; a response is stored only if it
        is a complete 200 answer to a GET without ``Set-Cookie``, ``no-store``/``private``
        or ``Vary`` (other than ``Accept-Encoding``), and the request did not use the
        session. Any other call caches the return value under a key built from the
        function and its arguments.

        The wrapper has ``invalidate(*args, **kwargs)`` and ``key_for(*args, **kwargs)`` (the
        entry's key, for ``rc.cache.get``); for a view, call it inside a
        request context for the URL: ``with app.test_request_context("/products/"):
        products.invalidate()``. Coroutine views are not supported: Flask runs each on a
        new event loop; use a plain function.
        """
        if callable(ttl):
            return self.cached()(ttl)
        options = {
            "ttl": ttl,
            "key": key,
            "tags": tags,
            "stale_ttl": stale_ttl,
            "lock": lock,
            "cache_none": cache_none,
            "xfetch_beta": xfetch_beta,
        }

        def decorate(fn: Callable[..., Any]) -> Any:
            if inspect.iscoroutinefunction(fn):
                raise TypeError(
                    f"RCache.cached() decorates plain functions; {fn.__qualname__} is a "
                    "coroutine function, which Flask runs on a new event loop per request"
                )
            decorated = _Decorated(fn, options)

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                cache = _current_cache()
                if not _is_view_call(wrapper):
                    return decorated.core(cache, False)(*args, **kwargs)
                if not is_request_cacheable(neutral_request(), VIEW_POLICY)[0]:
                    return fn(*args, **kwargs)
                try:
                    return from_stored(decorated.core(cache, True)(*args, **kwargs))
                except Pass as passed:
                    return passed.response

            def invalidate(*args: Any, **kwargs: Any) -> bool:
                view = _is_view_call(wrapper)
                return bool(decorated.core(_current_cache(), view).invalidate(*args, **kwargs))

            def key_for(*args: Any, **kwargs: Any) -> str:
                view = _is_view_call(wrapper)
                return str(decorated.core(_current_cache(), view).key_for(*args, **kwargs))

            wrapper.invalidate = invalidate  # type: ignore[attr-defined]
            wrapper.key_for = key_for  # type: ignore[attr-defined]
            return wrapper

        return decorate
