"""The rcache object cache for Starlette and FastAPI: lifespan, dependency, ``cached``.

::

    app = FastAPI(lifespan=cache_lifespan("redis://127.0.0.1:6379/0", prefix="api"))

    @app.get("/items/{item_id}")
    @cached(60)                                       # below the route decorator
    async def read_item(item_id: int) -> dict: ...   # keyed by the request's URL

    @app.post("/items/{item_id}")
    async def update(item_id: int, cache: AsyncObjectCache = Depends(get_cache)):
        await cache.invalidate_tags(f"item:{item_id}")

    # Starlette: Starlette(routes=[Route("/", cached(60)(homepage))], lifespan=cache_lifespan(url))

:func:`cache_lifespan` builds the :class:`~rcache.objects.AsyncObjectCache` when the app
starts, inside the server's event loop (an asyncio connection belongs to the loop that opened
it), puts it on ``app.state.rcache`` and closes it when the app stops. Run Starlette's
``TestClient`` as a context manager (``with TestClient(app) as client:``) so the lifespan runs.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any
from weakref import WeakKeyDictionary

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from rcache.errors import ConfigurationError
from rcache.objects import AsyncObjectCache
from rcache.pages import (
    Headers,
    PageCachePolicy,
    StoredEntry,
    canonical_url,
    is_request_cacheable,
    response_coding,
    storable,
    strip_for_storage,
    vary_names,
)
from rcache.pages import Request as NeutralRequest
from rcache.pages import Response as NeutralResponse
from rcache.ttl import DEFAULT, TTL, Default

__all__ = ["STATE_KEY", "cache_lifespan", "cached", "get_cache"]

#: The attribute of ``app.state`` that holds the cache.
STATE_KEY = "rcache"
#: What an endpoint call may store: the core's page rules, for 200 responses only.
VIEW_POLICY = PageCachePolicy(cacheable_statuses=frozenset({200}))
#: The keyword parameter added to endpoints without a request parameter (FastAPI fills it).
REQUEST_PARAMETER = "rcache_request__"

Lifespan = Callable[[Any], AbstractAsyncContextManager[None]]

_request: contextvars.ContextVar[Request] = contextvars.ContextVar("rcache_asgi_request")


def cache_lifespan(
    url: str | None = None,
    /,
    *,
    cache: AsyncObjectCache | None = None,
    state_key: str = STATE_KEY,
    **options: Any,
) -> Lifespan:
    """Return a lifespan that puts an :class:`~rcache.objects.AsyncObjectCache` on the app.

    ``url`` and ``options`` (``prefix``, ``default_ttl``, ``codec``, ``on_error`` and any
    :class:`~rcache.config.RedisSettings` field) build the cache at startup; or pass a
    ``cache`` you built. At shutdown the cache is closed (``aclose()``, which closes the
    adapter if the cache created it). Use it as the app's lifespan, or inside your own::

        @asynccontextmanager
        async def lifespan(app):
            async with cache_lifespan(url)(app):
                yield
    """
    if (url is None) == (cache is None):
        raise ConfigurationError("cache_lifespan() takes a Redis URL or a cache=, not both")
    if cache is not None and options:
        raise ConfigurationError("options build a cache from the URL; with cache= give none")

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        made = cache if cache is not None else AsyncObjectCache.from_url(str(url), **options)
        setattr(app.state, state_key, made)
        try:
            yield
        finally:
            await made.aclose()

    return lifespan


def get_cache(request: HTTPConnection) -> AsyncObjectCache:
    """Return the app's cache (``app.state.rcache``); a FastAPI/Starlette dependency.

    ``cache: AsyncObjectCache = Depends(get_cache)`` in FastAPI; ``get_cache(request)`` in a
    Starlette endpoint.
    """
    cache = getattr(request.app.state, STATE_KEY, None)
    if not isinstance(cache, AsyncObjectCache):
        raise RuntimeError(
            "no rcache cache on app.state: give the app lifespan=cache_lifespan(url) (and run "
            "TestClient as a context manager so the lifespan runs)"
        )
    return cache


def _personal(request: Request) -> bool:
    """Return whether the request is known to be someone's: a logged-in user, or a session.

    A session that tracks its use (rcache's, Starlette's ``Session``) is left alone here:
    pages that used it are simply not stored. A plain dict session (older middlewares) was
    loaded before the endpoint ran and cannot tell, so a non-empty one makes the request
    personal.
    """
    if getattr(request.scope.get("user"), "is_authenticated", False):
        return True
    session = request.scope.get("session")
    return getattr(session, "accessed", None) is None and bool(session)


def _neutral(request: Request) -> NeutralRequest:
    return NeutralRequest(
        method=request.method,
        scheme=request.url.scheme,
        host=request.headers.get("host") or request.url.netloc,
        path=request.url.path,
        query_string=request.url.query,
        headers=Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw),
        is_authenticated=_personal(request),
    )


class _Pass(Exception):
    """Carries a result that must not be stored out of the cached call (nothing is cached)."""

    def __init__(self, result: Any) -> None:
        super().__init__("result not stored")
        self.result = result


def _session_used(request: Request) -> bool:
    session = request.scope.get("session")
    if session is None:
        return False
    accessed = getattr(session, "accessed", None)  # rcache's and Starlette's Session track it
    return bool(session) if accessed is None else bool(accessed)  # a plain dict: if not empty


def _stored(request: Request, result: Any) -> Any:
    """What an endpoint call stores: page bytes for a Response, ``[value]`` for the rest.

    Not stored: any result of a request that used the session, and responses that are
    streamed, carry background tasks, vary on a request header, or that
    :func:`rcache.pages.storable` refuses (status other than 200, ``Set-Cookie``, ...).
    Pydantic models are stored as their JSON form, which is what FastAPI would send.
    """
    if _session_used(request):
        raise _Pass(result)
    if not isinstance(result, Response):
        dump = getattr(result, "model_dump", None)
        return [dump(mode="json", by_alias=True) if callable(dump) else result]
    body = getattr(result, "body", None)
    if not isinstance(body, bytes) or result.background is not None:
        raise _Pass(result)
    headers = Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in result.raw_headers)
    neutral = NeutralResponse(status=result.status_code, headers=headers, body=body)
    allowed, _ = storable(_neutral(request), neutral, VIEW_POLICY)
    encoding = response_coding(headers)
    if not allowed or vary_names(headers) or encoding is None:
        raise _Pass(result)
    kept, _ = strip_for_storage(neutral, tag_header=VIEW_POLICY.tag_header)
    now = time.time()
    entry = StoredEntry(
        status=neutral.status,
        headers=tuple(kept),
        body=body,
        encoding=encoding,
        etag=None,
        last_modified=None,
        stored_at=now,
        date=now,
        fresh_until=now,
    )
    return entry.to_bytes()


def _from_stored(stored: Any) -> Any:
    if isinstance(stored, list):
        return stored[0]
    entry = StoredEntry.from_bytes(stored)
    response = Response(entry.body, status_code=entry.status)
    raw = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in entry.headers]
    raw.append((b"content-length", str(len(entry.body)).encode("ascii")))
    if entry.encoding == "gzip":
        raw.append((b"content-encoding", b"gzip"))
    response.raw_headers = raw
    return response


def _request_parameter(signature: inspect.Signature) -> str | None:
    """Return the name of the endpoint's request parameter, if it has one."""
    for name, parameter in signature.parameters.items():
        annotation = parameter.annotation
        if isinstance(annotation, type) and issubclass(annotation, HTTPConnection):
            return name
        if name == "request" and annotation in (inspect.Parameter.empty, "Request"):
            return name
    return None


class _Decorated:
    """One decorated coroutine function: its options and its core wrappers, per cache."""

    def __init__(
        self, fn: Callable[..., Any], options: dict[str, Any], cache: AsyncObjectCache | None
    ) -> None:
        self.fn = fn
        self.options = options
        self.cache = cache
        self._wrappers: dict[bool, WeakKeyDictionary[AsyncObjectCache, Any]] = {
            False: WeakKeyDictionary(),
            True: WeakKeyDictionary(),
        }
        try:
            self.signature = inspect.signature(fn, eval_str=True)
        except (NameError, TypeError):  # forward references: leave them to the framework
            self.signature = inspect.signature(fn)
        self.request_name = _request_parameter(self.signature)
        name = f"{fn.__module__}.{fn.__qualname__}"

        def view_key(*args: Any, **kwargs: Any) -> str:
            return f"{name}:{canonical_url(_neutral(_request.get()), VIEW_POLICY)}"

        self.view_key = view_key

        @functools.wraps(fn)
        async def inner(*args: Any, **kwargs: Any) -> Any:
            return _stored(_request.get(), await fn(*args, **kwargs))

        self.inner = inner

    def core(self, cache: AsyncObjectCache, view: bool) -> Any:
        wrapper = self._wrappers[view].get(cache)
        if wrapper is None:
            options = dict(self.options)
            if options["lock"] is None:
                # An endpoint's result may turn out not storable (someone's own page):
                # waiting behind it would queue those requests one after another, so no lock.
                options["lock"] = not view
            if view and options["key"] is None:
                options["key"] = self.view_key
            wrapper = cache.cached(**options)(self.inner if view else self.fn)
            self._wrappers[view][cache] = wrapper
        return wrapper

    def find_request(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Request | None:
        found = kwargs.pop(REQUEST_PARAMETER, None)
        if found is None:
            candidates = [*args, *kwargs.values()]
            found = next((a for a in candidates if isinstance(a, Request)), None)
        return found if isinstance(found, Request) else None

    def cache_for(self, request: Request | None) -> AsyncObjectCache:
        if self.cache is not None:
            return self.cache
        if request is None:
            raise RuntimeError(
                f"{self.fn.__qualname__} was called without a request, so its cache is "
                "unknown: pass cached(..., cache=...) to call it directly"
            )
        return get_cache(request)

    async def call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        request = self.find_request(args, kwargs)
        cache = self.cache_for(request)
        if request is None:
            return await self.core(cache, False)(*args, **kwargs)
        if not is_request_cacheable(_neutral(request), VIEW_POLICY)[0]:
            return await self.fn(*args, **kwargs)
        token = _request.set(request)
        try:
            return _from_stored(await self.core(cache, True)(*args, **kwargs))
        except _Pass as passed:
            return passed.result
        finally:
            _request.reset(token)

    async def invalidate(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        request = self.find_request(args, kwargs)
        cache = self.cache_for(request)
        if request is None:
            return bool(await self.core(cache, False).invalidate(*args, **kwargs))
        token = _request.set(request)
        try:
            return bool(await self.core(cache, True).invalidate(*args, **kwargs))
        finally:
            _request.reset(token)


def cached(
    ttl: TTL | Default | Callable[..., Any] = DEFAULT,
    *,
    key: str | Callable[..., str] | None = None,
    tags: Iterable[str] | Callable[..., Iterable[str]] = (),
    stale_ttl: TTL = 0,
    lock: bool | float | None = None,
    cache_none: bool = True,
    xfetch_beta: float = 1.0,
    cache: AsyncObjectCache | None = None,
) -> Any:
    """Cache what an async endpoint (or coroutine function) returns.

    ``ttl``: seconds (DEFAULT = the cache's ``default_ttl``; None = forever; <= 0 = do not
    cache). ``key``, ``tags``, ``stale_ttl``, ``cache_none``, ``xfetch_beta``: as in
    :mod:`rcache.objects`. ``lock``: single-flight on a miss (True = 10 s lease, seconds,
    False); None = True for plain calls and False for endpoint calls. ``cache``: the cache
    to use; None = the app's (``app.state.rcache``, see :func:`cache_lifespan`).

    How to use it on endpoints: put ``@cached(...)`` *below* the route decorator (FastAPI)
    or wrap the endpoint in the route (Starlette: ``Route("/", cached(60)(homepage))``).
    The endpoint keeps its signature, so FastAPI still injects path, query and body
    parameters and dependencies; an endpoint without a ``Request`` parameter gets a hidden
    one (:data:`REQUEST_PARAMETER`) that FastAPI fills. An endpoint call is keyed by the
    function's name plus the request's canonical URL (scheme, host, path, sorted query;
    ``utm_*``, ``fbclid``, ``gclid`` left out) unless ``key`` says otherwise, so
    dependencies such as a database session never enter the key. GET and HEAD requests are
    answered from the cache unless they are personal: ``scope["user"]`` is authenticated, or
    a plain-dict session (no access tracking) is not empty. What is stored: a returned
    value (FastAPI serializes it on every response; pydantic models as their JSON form),
    or a ``Response`` that is a complete
    200 answer to a GET without ``Set-Cookie``, ``no-store``/``private``, ``Vary`` (other
    than ``Accept-Encoding``) or background tasks; and nothing if the request used the
    session. Endpoints that set headers or cookies on an injected ``Response`` parameter
    should return a ``Response`` instead: the injected one is not replayed from the cache.

    A call without a request (a coroutine function called directly) is keyed by its
    arguments and needs ``cache=``. The wrapper has ``await invalidate(*args, **kwargs)``
    (pass the request for an endpoint).
    """
    if callable(ttl):
        return cached()(ttl)
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
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"rcache_asgi.cached() decorates coroutine functions (async def); "
                f"{getattr(fn, '__qualname__', fn)!r} is not one"
            )
        decorated = _Decorated(fn, options, cache)

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await decorated.call(args, kwargs)

        async def invalidate(*args: Any, **kwargs: Any) -> bool:
            return await decorated.invalidate(args, kwargs)

        signature = decorated.signature
        if decorated.request_name is None:
            hidden = inspect.Parameter(
                REQUEST_PARAMETER, inspect.Parameter.KEYWORD_ONLY, annotation=Request
            )
            parameters = list(signature.parameters.values())
            at = next(
                (i for i, p in enumerate(parameters) if p.kind is p.VAR_KEYWORD), len(parameters)
            )
            signature = signature.replace(parameters=[*parameters[:at], hidden, *parameters[at:]])
        wrapper.__signature__ = signature  # type: ignore[attr-defined]
        wrapper.invalidate = invalidate  # type: ignore[attr-defined]
        return wrapper

    return decorate
