"""Django's full-page cache on rcache: one middleware, a view decorator, purges.

::

    RCACHE_PAGES = {
        "URL": "redis://127.0.0.1:6379/0",     # any rcache URL: TLS, unix, Sentinel, Cluster
        "CACHE_ALL_VIEWS": True,               # False: only views decorated with @page_cache
        "EARLY_HITS": True,                    # False: hits only from process_view
        "OPTIONS": {                           # optional
            # rcache.pages.PageCachePolicy: the HTTP caching rules
            "default_ttl": 60,                 # seconds, for responses that state no freshness
            "stale_while_revalidate": 0,
            "stale_if_error": 300,             # serve a stale page when the view fails
            "cache_authenticated": False,      # logged-in users bypass the cache
            "allow_set_cookie": False,
            "ignored_query_params": ["utm_*", "fbclid", "gclid"],
            "max_body_bytes": 1048576,
            "cacheable_statuses": [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501],
            "tag_header": "Cache-Tag",
            # rcache.pages.PageCache: the engine
            "prefix": "page", "on_error": "miss", "lock_timeout": 30, "wait_timeout": 5,
            # rcache.config.RedisSettings: the connection
            "socket_timeout": 0.5, "key_prefix": "mysite",
        },
    }
    MIDDLEWARE = [
        "rcache_django.pages.PageCacheMiddleware",   # first: it sees the final response
        "django.middleware.security.SecurityMiddleware",
        "rcache_django.sessions.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        ...,
    ]

One middleware replaces Django's ``UpdateCacheMiddleware`` / ``FetchFromCacheMiddleware``
pair. Put it first: its response side then sees what the others add (``Vary: Cookie``,
``Set-Cookie``, compression). It looks the request up in ``process_view``, which Django
calls after every middleware has seen the request, so ``request.user`` is there wherever
the authentication middleware sits, and the view's :func:`page_cache` options are known.
A hit is answered from there (one Redis round trip, with or without ``Vary``); a miss runs
the view and stores its response. The caching rules are the core's
(:mod:`rcache.pages`); what Django adds:

- logged-in users (``request.user.is_authenticated``) bypass the cache unless
  ``cache_authenticated``; a visitor without a session cookie is known to be anonymous
  without loading the session;
- a page that used the CSRF token, or changed the session, is never stored (and says
  ``Vary: Cookie``); one that read the session varies on ``Cookie``;
- a ``TemplateResponse`` is rendered before it is stored; a ``StreamingHttpResponse`` or
  ``FileResponse`` passes through untouched and is never stored;
- a view that raises gets a stale copy served in its place while one is within its
  stale-if-error window (``process_exception``).

Early hits. Once ``process_view`` has looked a URL up, the middleware looks later
requests for it up in ``__call__``, before the middleware below it and URL resolution, and
answers a fresh hit from there; only where skipping them changes nothing (the stack, the
request, the settings: see :mod:`rcache_django._pages_early`). Anything else goes on
through Django and ``process_view`` takes the lookup over: one lookup per request.
``"EARLY_HITS": False`` answers every hit from ``process_view``.

Every response says how it was answered in ``X-Cache``: ``HIT``, ``STALE``, ``MISS`` or
``BYPASS`` (not looked up, or Redis unreachable: the view answers, nothing fails).

Sync and async. The middleware is both: under WSGI it uses a
:class:`~rcache.pages.PageCache`, under ASGI an :class:`~rcache.pages.AsyncPageCache` of
the running event loop, with the user read through ``request.auser()``. The decorator
works on ``def`` and ``async def`` views.

Purging. From a view that changes content, ``purge_tag("post-42")`` (tags come from
:func:`page_cache` or the response's ``Cache-Tag`` header), ``purge_url(absolute_url)`` or
``purge_prefix("/blog")``; each is one round trip. Async views use ``apurge_tag`` and
friends.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar, overload

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from rcache.pages import AsyncPageCache, PageCache
from rcache_django import _pages_flow as flow
from rcache_django._pages_config import caches
from rcache_django._pages_early import EarlyHits, early_hits_for
from rcache_django._pages_flow import DEFAULT_OPTIONS, PageOptions, Pending

__all__ = [
    "PageCacheMiddleware",
    "PageOptions",
    "apurge_prefix",
    "apurge_tag",
    "apurge_url",
    "async_page_cache",
    "page_cache",
    "purge_prefix",
    "purge_tag",
    "purge_url",
    "sync_page_cache",
]

V = TypeVar("V", bound=Callable[..., Any])

#: The attribute a decorated view carries its :class:`PageOptions` in.
OPTIONS_ATTR = "rcache_page_options"
#: The request attribute where the middleware keeps its per-request state.
_STATE_ATTR = "_rcache_page"


class _Slot:
    """The middleware's state for one request (set by ``process_view`` if it looks up).

    ``early``: the lookup ``__call__`` made, for ``process_view`` to take over; ``learn``:
    the key to learn the URL by once ``process_view`` looks it up.
    """

    __slots__ = ("early", "learn", "pending")

    def __init__(self) -> None:
        self.pending: Pending | None = None
        self.early: Pending | None = None
        self.learn: tuple[Any, str] | None = None


def _view_options(view_func: Any) -> PageOptions | None:
    options = getattr(view_func, OPTIONS_ATTR, None)
    if options is None:
        options = getattr(getattr(view_func, "view_class", None), OPTIONS_ATTR, None)
    if options is None and caches.config().cache_all_views:
        return DEFAULT_OPTIONS
    return options if isinstance(options, PageOptions) else None


class PageCacheMiddleware:
    """The page cache as one middleware, sync and async (see the module docstring)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        caches.config()  # a configuration mistake shows when the server starts
        # Read from MIDDLEWARE now: Django is loading the stack this instance belongs to.
        self.early: EarlyHits | None = early_hits_for(type(self))
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
            # Django adapts process_view to the handler's mode: give it the native one.
            self.process_view = self._aprocess_view  # type: ignore[method-assign]

    def _early_key(self, request: Any) -> tuple[Any, str] | None:
        early = self.early
        if early is None:
            return None
        config = caches.config()
        if not config.early_hits:
            return None
        return early.key(request, config.policy.cache_authenticated)

    def __call__(self, request: Any) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        slot = _Slot()
        setattr(request, _STATE_ATTR, slot)
        key = self._early_key(request)
        if key is not None:
            assert self.early is not None
            if key in self.early.learned:
                slot.early, response = flow.early_lookup(request)
                if response is not None:
                    return response
            else:
                slot.learn = key
        try:
            response = self.get_response(request)
        finally:
            if slot.early is not None:  # process_view never took it: give the lease back
                flow.recover(slot.early)
        pending = slot.pending
        if pending is None or pending.done:
            return flow.finish_unlooked(response, pending)
        return flow.store(request, response, pending)

    async def __acall__(self, request: Any) -> Any:
        slot = _Slot()
        setattr(request, _STATE_ATTR, slot)
        key = self._early_key(request)
        if key is not None:
            assert self.early is not None
            if key in self.early.learned:
                slot.early, response = await flow.aearly_lookup(request)
                if response is not None:
                    return response
            else:
                slot.learn = key
        try:
            response = await self.get_response(request)
        finally:
            if slot.early is not None:
                await flow.arecover(slot.early)
        pending = slot.pending
        if pending is None or pending.done:
            return flow.finish_unlooked(response, pending)
        return await flow.astore(request, response, pending)

    def _take_early(self, slot: _Slot, options: PageOptions) -> tuple[Pending, Any] | None:
        """Return the early lookup for ``process_view`` to continue from; learn the URL."""
        early, slot.early = slot.early, None
        if early is not None:
            return flow.take_over(early, options)
        if slot.learn is not None and self.early is not None:
            self.early.learn(slot.learn)
        return None

    def process_view(self, request: Any, view_func: Any, view_args: Any, view_kwargs: Any) -> Any:
        """Look the request up once the view is known; answer a hit from here."""
        slot = getattr(request, _STATE_ATTR, None)
        options = _view_options(view_func)
        if slot is None or options is None:
            return None
        taken = self._take_early(slot, options)
        slot.pending, response = flow.lookup(request, options) if taken is None else taken
        return response

    async def _aprocess_view(
        self, request: Any, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> Any:
        slot = getattr(request, _STATE_ATTR, None)
        options = _view_options(view_func)
        if slot is None or options is None:
            return None
        taken = self._take_early(slot, options)
        if taken is None:
            taken = await flow.alookup(request, options)
        slot.pending, response = taken
        return response

    def process_exception(self, request: Any, exception: Exception) -> Any:
        """Serve a stale copy in place of a failing view, if one may be (else None)."""
        slot = getattr(request, _STATE_ATTR, None)
        if slot is None or slot.pending is None:
            return None
        return flow.recover(slot.pending)


def _decorate(view: V, options: PageOptions) -> V:
    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_view(request: Any, *args: Any, **kwargs: Any) -> Any:
            if hasattr(request, _STATE_ATTR):  # the middleware does the caching
                return await view(request, *args, **kwargs)
            pending, cached = await flow.alookup(request, options)
            if cached is not None:
                return cached
            try:
                response = await view(request, *args, **kwargs)
            except Exception:
                stale = await flow.arecover(pending)
                if stale is None:
                    raise
                return stale
            return await flow.astore(request, response, pending)

        wrapper: Any = async_view
    else:

        @functools.wraps(view)
        def sync_view(request: Any, *args: Any, **kwargs: Any) -> Any:
            if hasattr(request, _STATE_ATTR):
                return view(request, *args, **kwargs)
            pending, cached = flow.lookup(request, options)
            if cached is not None:
                return cached
            try:
                response = view(request, *args, **kwargs)
            except Exception:
                stale = flow.recover(pending)
                if stale is None:
                    raise
                return stale
            return flow.store(request, response, pending)

        wrapper = sync_view
    setattr(wrapper, OPTIONS_ATTR, options)
    return wrapper  # type: ignore[no-any-return]


@overload
def page_cache(view: V, /) -> V: ...


@overload
def page_cache(
    *,
    ttl: float | timedelta | None = None,
    tags: Sequence[str] = (),
    vary: Sequence[str] = (),
    allow_set_cookie: bool | None = None,
) -> Callable[[V], V]: ...


def page_cache(
    view: V | None = None,
    /,
    *,
    ttl: float | timedelta | None = None,
    tags: Sequence[str] = (),
    vary: Sequence[str] = (),
    allow_set_cookie: bool | None = None,
) -> V | Callable[[V], V]:
    """Cache a view's pages, with options of its own; ``@page_cache`` or ``@page_cache(...)``.

    ``ttl``: seconds the page stays fresh here, whatever the response says about its
    freshness (``no-store``, ``private`` and ``no-cache`` still win); None: from the
    response, else the policy's ``default_ttl``; 0: never stored. ``tags``: purge tags, added
    to those of the ``Cache-Tag`` header (set the header for tags that depend on the
    arguments). ``vary``: request header names added to the response's ``Vary``.
    ``allow_set_cookie``: store the page even if it sets cookies (stored without them).

    Under :class:`PageCacheMiddleware` the decorator only sets these options (and, with
    ``CACHE_ALL_VIEWS = False``, marks the view as cached); without the middleware it
    caches the view itself. Works on ``def`` and ``async def`` views and on
    ``SomeView.as_view()``.
    """
    options = PageOptions.of(ttl, tags, vary, allow_set_cookie)
    if view is not None:
        return _decorate(view, options)
    return lambda fn: _decorate(fn, options)


def sync_page_cache() -> PageCache:
    """Return the process's blocking :class:`~rcache.pages.PageCache` (from ``RCACHE_PAGES``)."""
    return caches.sync()


async def async_page_cache() -> AsyncPageCache:
    """Return the running event loop's :class:`~rcache.pages.AsyncPageCache`."""
    return await caches.async_()


def purge_tag(*tags: str) -> bool:
    """Purge every page stored with any of ``tags``; False if Redis could not be reached."""
    return caches.sync().purge_tag(*tags)


def purge_url(*urls: str) -> bool:
    """Purge every variant of each absolute URL (``request.build_absolute_uri(path)``)."""
    return caches.sync().purge_url(*urls)


def purge_prefix(path_prefix: str) -> bool:
    """Purge every page whose path starts with ``path_prefix`` (whole segments)."""
    return caches.sync().purge_prefix(path_prefix)


async def apurge_tag(*tags: str) -> bool:
    """:func:`purge_tag` for async views."""
    return await (await caches.async_()).purge_tag(*tags)


async def apurge_url(*urls: str) -> bool:
    """:func:`purge_url` for async views."""
    return await (await caches.async_()).purge_url(*urls)


async def apurge_prefix(path_prefix: str) -> bool:
    """:func:`purge_prefix` for async views."""
    return await (await caches.async_()).purge_prefix(path_prefix)
