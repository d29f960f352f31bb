"""A full-page cache for any ASGI app: a pure ASGI middleware on the rcache page cache.

::

    app = Starlette(
        routes=[Route("/post/{pk:int}", post), ...],
        middleware=[
            Middleware(SessionMiddleware, store=sessions),          # if any
            Middleware(AuthenticationMiddleware, backend=...),      # if any: scope["user"]
            Middleware(PageCacheMiddleware, url="redis://127.0.0.1:6379/0",
                       policy=PageCachePolicy(stale_if_error=300),
                       paths={"/admin/*": None, "/api/*": PageOptions(ttl=5)}),
        ],
    )

    @page_cache(ttl=600, tags=["posts"])                # per-route options
    async def post(request):
        ...

    async def edit(request):
        ...
        await page_cache_of(request.scope).purge_tag(f"post-{pk}")

For every HTTP request the middleware builds the page cache's view of it from the scope
and looks it up. A hit is sent from the stored copy (one Redis round trip, with or without
``Vary``; a 304 when the request's validators match; a HEAD from the GET entry) and the
app is not called. On a miss the app runs and its response is captured and stored if the
core allows (see :mod:`rcache_asgi._pages_capture` for how long a response may be held:
bounded by ``max_body_bytes`` and ``buffer_timeout``; streams are never broken). Every
response says how it was answered in ``X-Cache``. Lifespan and WebSocket scopes pass
straight through (an owned cache is closed when the lifespan shutdown completes).

Per-route options. ``paths`` maps ``fnmatch`` patterns of the path to
:class:`PageOptions`, first match first; ``None`` leaves matching paths out (no lookup at
all). ``default``: the options of paths no pattern matches (None: cache only what a pattern
names). While the app runs, an endpoint can set its own store options, which win: the
:func:`page_cache` decorator (Starlette endpoints taking the request), or
:func:`set_page_options` (anywhere with the request or scope, e.g. FastAPI), which writes
``scope["state"]["rcache_page"]`` (``request.state.rcache_page``).

Users and sessions. ``is_authenticated(scope)`` (may be async) says whether the request is a
logged-in user's, whose pages bypass the cache; by default ``scope["user"].is_authenticated``
as Starlette's ``AuthenticationMiddleware`` (placed before this one) sets it. A session in
``scope["session"]`` is looked at when the response starts: one that was read makes the
page vary on ``Cookie``, one that changed (or a non-empty plain dict, which Starlette's
session middleware re-sends as a cookie) keeps the page from being stored, whichever side
of this middleware the session middleware sits.

Errors. An app that raises before its response started gets a stale copy sent in its place
while one is within its stale-if-error window (the error is logged); otherwise the
exception propagates, the single-flight lease given back. With Redis unreachable every
request goes to the app (``X-Cache: BYPASS``).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Any, TypeVar, overload

from rcache.pages import AsyncPageCache, Headers
from rcache.pages.options import PageOptions
from rcache_asgi._pages_capture import Capture, Message, Scope, Send, page_request, send_response

__all__ = [
    "PageCacheMiddleware",
    "PageOptions",
    "page_cache",
    "page_cache_of",
    "set_page_options",
]

Receive = Callable[[], Awaitable[Message]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
V = TypeVar("V", bound=Callable[..., Any])

#: Where the middleware leaves its cache in the scope (see :func:`page_cache_of`).
CACHE_SCOPE_KEY = "rcache.page_cache"
#: The ``scope["state"]`` key of an endpoint's own options (``request.state.rcache_page``).
STATE_KEY = "rcache_page"

logger = logging.getLogger("rcache.pages")


def _scope_of(target: Any) -> Scope:
    scope = getattr(target, "scope", target)
    if not isinstance(scope, Mapping) or "type" not in scope:
        raise TypeError("expected an ASGI scope or a request that has one (.scope)")
    return scope  # type: ignore[return-value]


def page_cache_of(target: Any) -> AsyncPageCache:
    """Return the cache of the :class:`PageCacheMiddleware` serving a request or scope."""
    try:
        cache: AsyncPageCache = _scope_of(target)[CACHE_SCOPE_KEY]
    except KeyError:
        raise RuntimeError("no rcache PageCacheMiddleware serves this request") from None
    return cache


def set_page_options(target: Any, options: PageOptions | None = None, **kwargs: Any) -> None:
    """Set the store options of this request's response (a request or a scope).

    Either a :class:`PageOptions` or its fields as keywords. They win over ``paths``.
    """
    if options is None:
        options = PageOptions(**kwargs)
    elif kwargs:
        raise TypeError("give a PageOptions or keyword options, not both")
    _scope_of(target).setdefault("state", {})[STATE_KEY] = options


def _find_request(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    for candidate in (*args, *kwargs.values()):
        if isinstance(getattr(candidate, "scope", None), Mapping):
            return candidate
    raise TypeError("@page_cache needs the endpoint to receive the request")


def _decorate(endpoint: V, options: PageOptions) -> V:
    if inspect.iscoroutinefunction(endpoint):

        @functools.wraps(endpoint)
        async def async_endpoint(*args: Any, **kwargs: Any) -> Any:
            set_page_options(_find_request(args, kwargs), options)
            return await endpoint(*args, **kwargs)

        return async_endpoint  # type: ignore[return-value]

    @functools.wraps(endpoint)
    def sync_endpoint(*args: Any, **kwargs: Any) -> Any:
        set_page_options(_find_request(args, kwargs), options)
        return endpoint(*args, **kwargs)

    return sync_endpoint  # type: ignore[return-value]


@overload
def page_cache(endpoint: V, /) -> V: ...


@overload
def page_cache(
    *,
    ttl: float | timedelta | None = None,
    tags: Sequence[str] = (),
    vary: Sequence[str] = (),
    allow_set_cookie: bool | None = None,
) -> Callable[[V], V]: ...


def page_cache(
    endpoint: V | None = None,
    /,
    *,
    ttl: float | timedelta | None = None,
    tags: Sequence[str] = (),
    vary: Sequence[str] = (),
    allow_set_cookie: bool | None = None,
) -> V | Callable[[V], V]:
    """Give an endpoint its own store options: ``@page_cache`` or ``@page_cache(...)``.

    For endpoints that receive the request (Starlette's, or FastAPI's with a ``Request``
    parameter); sync or async. See :class:`PageOptions` for the options. The request was
    looked up before the endpoint ran, so this cannot keep a path out of the cache: use
    ``paths`` for that.
    """
    options = PageOptions(ttl, tuple(tags), tuple(vary), allow_set_cookie)
    if endpoint is not None:
        return _decorate(endpoint, options)
    return lambda fn: _decorate(fn, options)


_EVERY_PATH = PageOptions()


def _user_is_authenticated(scope: Scope) -> bool:
    return bool(getattr(scope.get("user"), "is_authenticated", False))


def _with_vary_cookie(headers: Headers) -> Headers:
    members = {m.strip().lower() for line in headers.get_all("vary") for m in line.split(",")}
    if "cookie" in members or "*" in members:
        return headers
    return headers.add("Vary", "Cookie")


def _prepare(scope: Scope) -> Callable[[Headers], tuple[Headers, bool]]:
    """Return what the capture asks at the start: the session's effect on the response."""

    def prepare(headers: Headers) -> tuple[Headers, bool]:
        session = scope.get("session")
        if session is None:
            return headers, True
        if hasattr(session, "accessed") and hasattr(session, "modified"):
            accessed, modified = bool(session.accessed), bool(session.modified)
        else:  # a plain mapping (Starlette's sessions): a cookie goes out unless it is empty
            accessed = modified = bool(session)
        if accessed or modified:
            headers = _with_vary_cookie(headers)
        return headers, not modified

    return prepare


class PageCacheMiddleware:
    """Cache whole responses of an ASGI app (see the module docstring).

    ``cache``: the :class:`~rcache.pages.AsyncPageCache` to use (the caller closes it), or
    ``url`` and ``options`` to build one (``AsyncPageCache.from_url(url, **options)``:
    ``policy``, ``prefix``, ``on_error``, ``lock_timeout``, ``wait_timeout`` and any
    :class:`~rcache.config.RedisSettings`), closed by :meth:`aclose` or at lifespan
    shutdown. Its asyncio connections belong to the event loop of the first request.
    ``buffer_timeout``: seconds a response sent in chunks may be held back to be stored.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        cache: AsyncPageCache | None = None,
        url: str | None = None,
        paths: Mapping[str, PageOptions | None] | None = None,
        default: PageOptions | None = _EVERY_PATH,
        is_authenticated: Callable[[Scope], bool | Awaitable[bool]] | None = None,
        buffer_timeout: float = 1.0,
        **options: Any,
    ) -> None:
        if (cache is None) == (url is None):
            raise TypeError("give PageCacheMiddleware either cache= or url=")
        if cache is not None and options:
            raise TypeError("options are for url=; configure a given cache yourself")
        if buffer_timeout < 0:
            raise ValueError("buffer_timeout must be >= 0 seconds")
        self.app = app
        self._owned = cache is None
        self.cache = cache if cache is not None else AsyncPageCache.from_url(str(url), **options)
        self.paths = dict(paths or {})
        self.default = default
        self.is_authenticated = is_authenticated or _user_is_authenticated
        self.buffer_timeout = buffer_timeout

    async def aclose(self) -> None:
        """Close the cache if this middleware built it (``url=``)."""
        if self._owned:
            await self.cache.aclose()

    def options_for(self, path: str) -> PageOptions | None:
        """Return the options of ``path`` from ``paths`` (or ``default``); None: not cached."""
        for pattern, options in self.paths.items():
            if fnmatchcase(path, pattern):
                return options
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan" and self._owned:
            await self.app(scope, receive, self._closing_at_shutdown(send))
        else:
            await self.app(scope, receive, send)

    def _closing_at_shutdown(self, send: Send) -> Send:
        async def lifespan_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.aclose()
            await send(message)

        return lifespan_send

    async def _authenticated(self, scope: Scope) -> bool:
        if self.cache.policy.cache_authenticated:
            return False  # nobody needs to know who it is
        verdict = self.is_authenticated(scope)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return bool(verdict)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        cache = self.cache
        scope[CACHE_SCOPE_KEY] = cache
        state = scope.setdefault("state", {})  # one dict, shared with the app's request.state
        options = self.options_for(scope.get("path") or "/")
        if options is None:
            await self.app(scope, receive, self._bypassing(send))
            return
        page = page_request(scope, authenticated=await self._authenticated(scope))
        result = await cache.lookup(page)
        if result.response is not None:
            await send_response(send, result.response)
            return
        route_options: PageOptions = options

        def store_kwargs() -> dict[str, Any]:
            chosen = state.get(STATE_KEY)
            return (chosen if isinstance(chosen, PageOptions) else route_options).store_kwargs()

        capture = Capture(
            cache,
            page,
            result,
            send,
            store_kwargs=store_kwargs,
            buffering=result.x_cache == "MISS" and page.method == "GET",
            buffer_timeout=self.buffer_timeout,
            prepare=_prepare(scope),
        )
        try:
            await self.app(scope, receive, capture.send)
        except BaseException as exc:
            if not await capture.fail(exc):
                raise
            logger.error("page cache: the application raised; a stale copy was sent", exc_info=exc)
            return
        await capture.finish()

    def _bypassing(self, send: Send) -> Send:
        """``send`` for a request not looked up: ``X-Cache: BYPASS``, no tag header."""
        tag_header = self.cache.policy.tag_header.lower().encode("latin-1")

        async def bypass_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (bytes(k), bytes(v))
                    for k, v in message.get("headers", ())
                    if bytes(k).lower() not in (tag_header, b"x-cache")
                ]
                message = {**message, "headers": [*headers, (b"x-cache", b"BYPASS")]}
            await send(message)

        return bypass_send
