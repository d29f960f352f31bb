"""``rcache_django.cached``: the object cache's ``cached`` decorator for Django code and views.

The decorator looks the backend up by alias at call time (so ``override_settings`` and the
per-thread backend objects just work) and runs the call through the core's ``cached``
(single-flight, stale-while-revalidate, XFetch, tags). A call whose first argument is an
``HttpRequest`` is a *view call*; everything framework-neutral about it (which requests may
be answered from the cache, which responses may be stored, the canonical URL, the stored
format) comes from :mod:`rcache.pages`, so the three integrations decide alike.
"""

from __future__ import annotations

import functools
import inspect
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches  # type: ignore[import-untyped, unused-ignore]
from django.core.cache.backends.base import (  # type: ignore[import-untyped, unused-ignore]
    DEFAULT_TIMEOUT,
)
from django.core.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    ImproperlyConfigured,
)
from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped, unused-ignore]
from django.http.response import HttpResponseBase  # type: ignore[import-untyped, unused-ignore]

from rcache.objects import AsyncObjectCache, ObjectCache
from rcache.pages import (
    Headers,
    PageCachePolicy,
    Request,
    Response,
    StoredEntry,
    canonical_url,
    is_request_cacheable,
    response_coding,
    storable,
    strip_for_storage,
    vary_names,
)
from rcache.ttl import DEFAULT, TTL

__all__ = ["cached"]

#: What a view call may store: the core's page rules, for 200 responses only.
VIEW_POLICY = PageCachePolicy(cacheable_statuses=frozenset({200}))


class _Pass(Exception):
    """Carries a response that must not be stored out of the cached call (nothing is cached)."""

    def __init__(self, response: Any) -> None:
        super().__init__("response not stored")
        self.response = response


def neutral_request(request: Any) -> Request:
    """Translate a Django request for :mod:`rcache.pages`."""
    return Request(
        method=request.method or "GET",
        scheme=request.scheme or "http",
        host=request.get_host(),
        path=request.path,
        query_string=request.META.get("QUERY_STRING", ""),
        headers=Headers(request.headers.items()),
    )


def page_bytes(request: Any, response: Any) -> bytes:
    """Return the stored form of a view's response; raise _Pass if it must not be stored.

    Not stored, besides what :func:`rcache.pages.storable` refuses (non-GET, status other
    than 200, ``no-store``/``private``, ``Set-Cookie``, ...): streaming responses, responses
    that vary on a request header, and any response of a request that used the session
    (``SessionMiddleware`` would add ``Vary: Cookie``: the page may be someone's own) or
    put a CSRF token in the page.
    """
    if response.streaming:
        raise _Pass(response)
    if getattr(response, "is_rendered", True) is False:
        response.render()  # a TemplateResponse: its content is what gets stored
    session = getattr(request, "session", None)
    if getattr(session, "accessed", False) or request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
        raise _Pass(response)
    pairs = list(response.items())
    pairs += [("Set-Cookie", c.OutputString()) for c in response.cookies.values()]
    neutral = Response(status=response.status_code, headers=Headers(pairs), body=response.content)
    allowed, _ = storable(neutral_request(request), neutral, VIEW_POLICY)
    encoding = response_coding(neutral.headers)
    if not allowed or vary_names(neutral.headers) or encoding is None:
        raise _Pass(response)
    kept, _ = strip_for_storage(neutral, tag_header=VIEW_POLICY.tag_header)
    now = time.time()
    entry = StoredEntry(
        status=neutral.status,
        headers=tuple(kept),
        body=response.content,
        encoding=encoding,
        etag=None,
        last_modified=None,
        stored_at=now,
        date=now,
        fresh_until=now,
    )
    return entry.to_bytes()


def from_stored(stored: Any) -> Any:
    """Return the view's result from what was stored: a response, or a plain value."""
    if isinstance(stored, list):
        return stored[0]
    entry = StoredEntry.from_bytes(stored)
    response = HttpResponse(entry.body, status=entry.status)
    first: dict[str, str] = {}
    for name, value in entry.headers:
        lowered = name.lower()
        if lowered in first:
            response.headers[first[lowered]] += ", " + value
        else:
            first[lowered] = name
            response.headers[name] = value
    if entry.encoding == "gzip":
        response.headers["Content-Encoding"] = "gzip"
    return response


def _stored(request: Any, result: Any) -> Any:
    """What a view call stores: page bytes for a response, ``[value]`` for anything else."""
    if isinstance(result, HttpResponseBase):
        return page_bytes(request, result)
    return [result]


def _backend(alias: str) -> Any:
    from rcache_django.cache import RedisCache

    backend = caches[alias]
    if not isinstance(backend, RedisCache):
        raise ImproperlyConfigured(
            f"rcache_django.cached(cache={alias!r}) needs that cache's BACKEND to be "
            f"rcache_django.RedisCache, not {type(backend).__module__}.{type(backend).__name__}"
        )
    return backend


class _Decorated:
    """One decorated function: its options and its core wrappers, per object cache."""

    def __init__(self, fn: Callable[..., Any], alias: str, options: dict[str, Any]) -> None:
        self.fn = fn
        self.alias = alias
        self.options = options
        self.is_async = inspect.iscoroutinefunction(fn)
        self._wrappers: dict[bool, weakref.WeakKeyDictionary[Any, Any]] = {
            False: weakref.WeakKeyDictionary(),
            True: weakref.WeakKeyDictionary(),
        }
        name = f"{fn.__module__}.{fn.__qualname__}"

        def view_key(request: Any, *args: Any, **kwargs: Any) -> str:
            return f"{name}:{canonical_url(neutral_request(request), VIEW_POLICY)}"

        self.view_key = view_key
        if self.is_async:

            @functools.wraps(fn)
            async def ainner(request: Any, *args: Any, **kwargs: Any) -> Any:
                return _stored(request, await fn(request, *args, **kwargs))

            self.inner: Callable[..., Any] = ainner
        else:

            @functools.wraps(fn)
            def inner(request: Any, *args: Any, **kwargs: Any) -> Any:
                return _stored(request, fn(request, *args, **kwargs))

            self.inner = inner

    def core(self, cache: ObjectCache | AsyncObjectCache, view: bool) -> Any:
        """Return the core's wrapper of this function (or of its view form) on ``cache``."""
        wrappers = self._wrappers[view]
        wrapper = wrappers.get(cache)
        if wrapper is None:
            options = dict(self.options)
            if options["lock"] is None:
                # A view's response may turn out not storable (someone's own page): waiting
                # behind it would queue those requests one after another, so no lock.
                options["lock"] = not view
            if view and options["key"] is None:
                options["key"] = self.view_key
            wrapper = cache.cached(**options)(self.inner if view else self.fn)
            wrappers[cache] = wrapper
        return wrapper

    def call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        cache = _backend(self.alias).object_cache()
        if not (args and isinstance(args[0], HttpRequest)):
            return self.core(cache, False)(*args, **kwargs)
        if not is_request_cacheable(neutral_request(args[0]), VIEW_POLICY)[0]:
            return self.fn(*args, **kwargs)
        try:
            return from_stored(self.core(cache, True)(*args, **kwargs))
        except _Pass as passed:
            return passed.response

    async def acall(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        cache = await _backend(self.alias).aobject_cache()
        if not (args and isinstance(args[0], HttpRequest)):
            return await self.core(cache, False)(*args, **kwargs)
        if not is_request_cacheable(neutral_request(args[0]), VIEW_POLICY)[0]:
            return await self.fn(*args, **kwargs)
        try:
            return from_stored(await self.core(cache, True)(*args, **kwargs))
        except _Pass as passed:
            return passed.response

    def invalidate(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        cache = _backend(self.alias).object_cache()
        view = bool(args) and isinstance(args[0], HttpRequest)
        return bool(self.core(cache, view).invalidate(*args, **kwargs))

    async def ainvalidate(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        cache = await _backend(self.alias).aobject_cache()
        view = bool(args) and isinstance(args[0], HttpRequest)
        return bool(await self.core(cache, view).invalidate(*args, **kwargs))


def cached(
    timeout: Any = DEFAULT_TIMEOUT,
    *,
    cache: str = DEFAULT_CACHE_ALIAS,
    key: str | Callable[..., str] | None = None,
    tags: Iterable[str] | Callable[..., Iterable[str]] = (),
    stale_ttl: TTL = 0,
    lock: bool | float | None = None,
    cache_none: bool = True,
    xfetch_beta: float = 1.0,
) -> Any:
    """Cache what a function, a coroutine function or a view returns, in ``caches[cache]``.

    ::

        @cached(60, tags=["catalog"])
        def product(product_id: int) -> dict: ...

        @cached(60 * 15)                       # a view: keyed by its URL
        def product_list(request): ...

        product.invalidate(3)                  # drop product(3); cache.delete works too

    ``timeout`` follows Django: left out = the cache's TIMEOUT, None = forever, 0 = do not
    cache (just call). ``cache``: the CACHES alias (an ``rcache_django.RedisCache``, looked
    up at each call). ``key``, ``tags``, ``stale_ttl``, ``cache_none``, ``xfetch_beta``: as
    in :mod:`rcache.objects` (the key of a plain call comes from the function and its
    arguments). ``lock``: single-flight on a miss (True = 10 s lease, seconds, False);
    None = True for function calls and False for view calls.

    A call whose first argument is an ``HttpRequest`` is a view call (for class-based views
    use ``method_decorator``): GET and HEAD requests (without ``Cache-Control: no-store``)
    are looked up under the function's name plus the request's canonical URL (scheme, host,
    path and sorted query; ``utm_*``, ``fbclid``, ``gclid`` left out) unless ``key`` says
    otherwise; other methods call the view. A response is stored only if it is a complete
    200 answer to a GET without ``Set-Cookie``, ``no-store``/``private``, or ``Vary`` (other
    than ``Accept-Encoding``), and the request neither used the session nor put a CSRF
    token in the page: pages that may belong to one visitor are never served to another.
    A ``TemplateResponse`` is rendered inside the decorator. Cached responses come back as
    ``HttpResponse`` with the stored headers (never ``Set-Cookie``).

    The wrapper has ``invalidate(*args, **kwargs)`` (awaitable for coroutine functions);
    for a view call, pass a request for the URL to drop.
    """
    if callable(timeout):
        return cached()(timeout)
    options = {
        "ttl": DEFAULT if timeout is DEFAULT_TIMEOUT else timeout,
        "key": key,
        "tags": tags,
        "stale_ttl": stale_ttl,
        "lock": lock,
        "cache_none": cache_none,
        "xfetch_beta": xfetch_beta,
    }

    def decorate(fn: Callable[..., Any]) -> Any:
        if not callable(fn):
            raise TypeError(f"cached() decorates functions, not {type(fn).__name__}")
        decorated = _Decorated(fn, cache, options)
        wrapper: Any
        if decorated.is_async:

            @functools.wraps(fn)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                return await decorated.acall(args, kwargs)

            async def ainvalidate(*args: Any, **kwargs: Any) -> bool:
                return await decorated.ainvalidate(args, kwargs)

            wrapper.invalidate = ainvalidate
        else:

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return decorated.call(args, kwargs)

            def invalidate(*args: Any, **kwargs: Any) -> bool:
                return decorated.invalidate(args, kwargs)

            wrapper.invalidate = invalidate
        return wrapper

    return decorate
