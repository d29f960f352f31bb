"""The apps of the page-cache benchmarks: one page, four contenders per framework.

Every app serves the same 20 KB HTML page (:data:`PAGE`, ``text/html; charset=utf-8``)
from three kinds of route:

- ``/static/``: the page's bytes, prepared once, no cache at all (the limit);
- ``/page/<who>/``: the page rendered by :func:`render_page`, which costs a few
  milliseconds of CPU the way a template and a few queries would; with or without a page
  cache in front;
- ``/count/<who>/``: how many times ``/page/<who>/`` ran (``Cache-Control: no-store``, so
  no cache keeps it). A cached contender must not run its view during the timed part.

Contenders (:data:`KINDS`): ``static`` and ``uncached`` (no cache), ``peer`` (the page
cache people use with that framework, configured as its docs show) and ``rcache``:

==========  =================================================  ===========================
framework   peer                                               rcache
==========  =================================================  ===========================
Django      ``UpdateCacheMiddleware`` +                        ``rcache_django.pages.``
            ``FetchFromCacheMiddleware`` on django-redis       ``PageCacheMiddleware``
Flask       Flask-Caching ``@cache.cached`` (``RedisCache``)   ``rcache_flask.pages.``
                                                               ``PageCache`` (hooks)
Starlette   cashews ``@cache`` on the endpoint (pickles the    ``rcache_asgi.pages.``
            ``HTMLResponse``)                                  ``PageCacheMiddleware``
FastAPI     fastapi-cache2 ``@cache`` (``RedisBackend``, the   ``rcache_asgi.pages.``
            default JSON coder; the endpoint returns a ``str``  ``PageCacheMiddleware``
            with ``response_class=HTMLResponse``)
==========  =================================================  ===========================

Every cache keeps the page for :data:`TTL` seconds. The peers store the page as the view
produced it; rcache stores it gzip-coded (it is text and gzip makes it smaller) and sends it
as stored to clients that accept gzip, decoded to the others. None of the apps compresses
responses otherwise (no GZip middleware anywhere), so a peer sends the plain page whatever
the client accepts.

Each library gets a Redis database of its own (:data:`DB`). Third-party imports stay
inside functions: importing this module needs none of them. :func:`build` returns the
WSGI or ASGI app of one (framework, kind); the in-process suite and the HTTP servers both
use it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "DB",
    "FRAMEWORKS",
    "KINDS",
    "PAGE",
    "PAGE_SIZE",
    "PEERS",
    "TTL",
    "build",
    "configure_django",
    "count_path",
    "db_url",
    "page_path",
    "render_page",
]

PAGE_SIZE = 20 * 1024
TTL = 3600  # seconds: nothing expires during a run
SECRET = "bench-pages-secret-0123456789abcdef0123456789abcdef"
#: CPU-bound work per render, in PBKDF2 rounds: a stand-in for a template and a few queries.
RENDER_ROUNDS = 10_000

FRAMEWORKS = ("django", "flask", "starlette", "fastapi")
KINDS = ("static", "uncached", "peer", "rcache")
PEERS = {
    "django": "Django cache middleware on django-redis",
    "flask": "Flask-Caching @cached (RedisCache)",
    "starlette": "cashews @cache",
    "fastapi": "fastapi-cache2 @cache (RedisBackend)",
}
OURS = {
    "django": "rcache_django PageCacheMiddleware",
    "flask": "rcache_flask PageCache",
    "starlette": "rcache_asgi PageCacheMiddleware",
    "fastapi": "rcache_asgi PageCacheMiddleware",
}
DB = {  # one database per library and framework
    ("django", "peer"): 1,
    ("django", "rcache"): 2,
    ("flask", "peer"): 3,
    ("flask", "rcache"): 4,
    ("starlette", "peer"): 5,
    ("starlette", "rcache"): 6,
    ("fastapi", "peer"): 7,
    ("fastapi", "rcache"): 8,
}


def db_url(url: str, db: int) -> str:
    """Return ``url`` (``redis://host:port/n``) pointing at database ``db``."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}", query=""))


def _make_page() -> bytes:
    """Return a blog index of exactly :data:`PAGE_SIZE` bytes (the same in every run)."""
    rng = random.Random(20)
    words = [
        "cache", "redis", "page", "server", "request", "header", "vary", "stale", "origin",
        "client", "latency", "worker", "python", "django", "flask", "asgi", "purge", "tag",
        "fresh", "entry", "gzip", "etag", "proxy", "shared", "private", "public", "store",
    ]  # fmt: skip

    def sentence(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n)).capitalize() + "."

    head = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>The rcache blog</title>\n"
        '<link rel="stylesheet" href="/static/site.css">\n</head>\n<body>\n'
        '<header><nav><a href="/">Home</a> <a href="/archive/">Archive</a> '
        '<a href="/about/">About</a></nav></header>\n<main>\n'
    )
    tail = "</main>\n<footer><p>&copy; 2026 The rcache blog</p></footer>\n</body>\n</html>\n"
    parts = [head]
    size = len(head) + len(tail)
    post = 0
    while True:
        post += 1
        article = (
            f'<article id="post-{post}">\n<h2><a href="/post/{post}/">{sentence(6)}</a></h2>\n'
            f'<p class="meta">Posted on 2026-11-{post % 28 + 1:02d} in '
            f'<a href="/tag/{rng.choice(words)}/">{rng.choice(words)}</a></p>\n'
            f"<p>{sentence(40)}</p>\n<p>{sentence(25)}</p>\n</article>\n"
        )
        if size + len(article) > PAGE_SIZE - 16:
            break
        parts.append(article)
        size += len(article)
    pad = PAGE_SIZE - size - len("<!--  -->\n")
    parts.append(f"<!-- {'x' * pad} -->\n")
    parts.append(tail)
    page = "".join(parts).encode("ascii")
    assert len(page) == PAGE_SIZE, len(page)
    return page


PAGE = _make_page()
PAGE_TEXT = PAGE.decode("ascii")
CONTENT_TYPE = "text/html; charset=utf-8"


def render_page() -> bytes:
    """Return :data:`PAGE` after the work of rendering it (deterministic, ~2 ms of CPU)."""
    hashlib.pbkdf2_hmac("sha256", PAGE[:64], b"bench", RENDER_ROUNDS)
    return PAGE


def page_path(framework: str, kind: str) -> str:
    """Return the path a contender is requested at."""
    return "/static/" if kind == "static" else f"/page/{kind}/"


def count_path(kind: str) -> str:
    """Return the path telling how many times the contender's view ran."""
    return f"/count/{kind}/"


class _Runs:
    """How many times each view ran, by contender kind (one per app or process)."""

    def __init__(self) -> None:
        self.n: dict[str, int] = {}

    def ran(self, who: str) -> None:
        self.n[who] = self.n.get(who, 0) + 1


# -- Django ----------------------------------------------------------------------------------

_DJANGO_RUNS = _Runs()


def configure_django(url: str) -> None:
    """Configure Django for every Django contender; this module is the URLconf."""
    import django
    from django.conf import settings

    if settings.configured:
        raise RuntimeError("the pages benchmark configures Django itself; run it on its own")
    settings.configure(
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=[],
        DATABASES={},
        MIDDLEWARE=[],
        ROOT_URLCONF=__name__,
        USE_TZ=True,
        CACHES={
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": db_url(url, DB["django", "peer"]),
            }
        },
        CACHE_MIDDLEWARE_SECONDS=TTL,
        RCACHE_PAGES={"URL": db_url(url, DB["django", "rcache"]), "OPTIONS": {"default_ttl": TTL}},
    )
    django.setup()


DJANGO_MIDDLEWARE: dict[str, list[str]] = {
    "static": [],
    "uncached": [],
    "peer": [
        "django.middleware.cache.UpdateCacheMiddleware",
        "django.middleware.cache.FetchFromCacheMiddleware",
    ],
    "rcache": ["rcache_django.pages.PageCacheMiddleware"],
}


def _django_views() -> list[Any]:
    from django.http import HttpResponse
    from django.urls import path
    from django.views.decorators.cache import never_cache

    def static(request: Any) -> Any:
        return HttpResponse(PAGE, content_type=CONTENT_TYPE)

    def page(request: Any, who: str) -> Any:
        _DJANGO_RUNS.ran(who)
        return HttpResponse(render_page(), content_type=CONTENT_TYPE)

    def count(request: Any, who: str) -> Any:
        return HttpResponse(str(_DJANGO_RUNS.n.get(who, 0)), content_type="text/plain")

    uncacheable_count: Any = never_cache(count)

    return [
        path("static/", static),
        path("page/<str:who>/", page),
        path("count/<str:who>/", uncacheable_count),
    ]


def __getattr__(name: str) -> Any:
    # Django's URL resolver asks this module for ``urlpatterns`` (ROOT_URLCONF) once the
    # settings are configured; building them on demand keeps Django out of the import.
    if name == "urlpatterns":
        patterns = _django_views()
        globals()["urlpatterns"] = patterns
        return patterns
    raise AttributeError(name)


def django_wsgi(kind: str) -> Any:
    """Return a WSGI handler running the contender's middleware (Django configured first)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import override_settings

    with override_settings(MIDDLEWARE=DJANGO_MIDDLEWARE[kind]):
        return WSGIHandler()  # loads its middleware now, for good


def django_client(kind: str) -> Any:
    """Return a ``django.test.Client`` whose handler runs the contender's middleware."""
    from django.test import Client, override_settings

    with override_settings(MIDDLEWARE=DJANGO_MIDDLEWARE[kind]):
        client = Client()
        client.handler.load_middleware()
    return client


# -- Flask -----------------------------------------------------------------------------------


def flask_app(kind: str, url: str) -> Any:
    """Return the Flask app of one contender (the peer's or rcache's extension installed)."""
    from flask import Flask, Response

    app = Flask(f"bench_pages_{kind}", static_folder=None)
    app.config.update(SECRET_KEY=SECRET)
    runs = _Runs()
    closers: list[Callable[[], Any]] = []
    decorate: Callable[[Any], Any] = lambda view: view  # noqa: E731

    if kind == "peer":
        from flask_caching import Cache

        cache = Cache(
            app,
            config={
                "CACHE_TYPE": "RedisCache",
                "CACHE_REDIS_URL": db_url(url, DB["flask", "peer"]),
                "CACHE_DEFAULT_TIMEOUT": TTL,
            },
        )
        decorate = cache.cached(timeout=TTL)
    elif kind == "rcache":
        from rcache_flask.pages import PageCache

        app.config.update(
            RCACHE_PAGES_URL=db_url(url, DB["flask", "rcache"]), RCACHE_PAGES_DEFAULT_TTL=TTL
        )
        pages = PageCache(app)
        closers.append(lambda: pages.close(app))

    @app.get("/static/")
    def static_page() -> Any:
        return Response(PAGE, content_type=CONTENT_TYPE)

    @app.get("/page/<who>/")
    @decorate
    def page(who: str) -> Any:
        runs.ran(who)
        return Response(render_page(), content_type=CONTENT_TYPE)

    @app.get("/count/<who>/")
    def count(who: str) -> Any:
        return Response(
            str(runs.n.get(who, 0)),
            content_type="text/plain",
            headers={"Cache-Control": "no-store"},
        )

    app.extensions["bench_closers"] = closers
    return app


# -- Starlette and FastAPI -------------------------------------------------------------------


def _rcache_middleware(framework: str, url: str, cache: Any) -> Any:
    """Return the ``Middleware`` entry of rcache's page cache (``cache`` or its own)."""
    from starlette.middleware import Middleware

    from rcache.pages import PageCachePolicy
    from rcache_asgi.pages import PageCacheMiddleware

    middleware: Any = PageCacheMiddleware  # starlette's factory protocol is stricter than ASGI
    if cache is not None:
        return Middleware(middleware, cache=cache)
    return Middleware(
        middleware,
        url=db_url(url, DB[framework, "rcache"]),
        policy=PageCachePolicy(default_ttl=TTL),
    )


def rcache_async_cache(framework: str, url: str) -> Any:
    """Return the ``AsyncPageCache`` an in-process ASGI contender uses (build it in its loop)."""
    from rcache.pages import AsyncPageCache, PageCachePolicy

    return AsyncPageCache.from_url(
        db_url(url, DB[framework, "rcache"]), policy=PageCachePolicy(default_ttl=TTL)
    )


def starlette_app(kind: str, url: str, cache: Any = None) -> Any:
    """Return the Starlette app of one contender.

    ``cache``: for ``rcache``, a ready ``AsyncPageCache`` (in process), else the middleware
    builds its own from the URL (closed at lifespan shutdown).
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, PlainTextResponse, Response
    from starlette.routing import Route

    runs = _Runs()

    async def static(request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def page(request: Request) -> Response:
        runs.ran(request.path_params["who"])
        return HTMLResponse(render_page())

    if kind == "peer":
        from cashews import cache as cashews

        cashews.setup(db_url(url, DB["starlette", "peer"]))
        page = cashews(ttl=TTL, key="page:{request.url.path}")(page)

    async def count(request: Request) -> Response:
        who = request.path_params["who"]
        return PlainTextResponse(str(runs.n.get(who, 0)), headers={"Cache-Control": "no-store"})

    middleware = [_rcache_middleware("starlette", url, cache)] if kind == "rcache" else []
    routes = [
        Route("/static/", static),
        Route("/page/{who}/", page),
        Route("/count/{who}/", count),
    ]
    return Starlette(routes=routes, middleware=middleware)


def fastapi_app(kind: str, url: str, cache: Any = None) -> Any:
    """Return the FastAPI app of one contender (``cache`` as for :func:`starlette_app`)."""
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, PlainTextResponse

    runs = _Runs()
    lifespan: Any = None
    decorate: Callable[[Any], Any] = lambda view: view  # noqa: E731

    if kind == "peer":
        import redis.asyncio
        from fastapi_cache import FastAPICache
        from fastapi_cache.backends.redis import RedisBackend
        from fastapi_cache.decorator import cache as fastapi_cache

        def init() -> None:
            client = redis.asyncio.Redis.from_url(db_url(url, DB["fastapi", "peer"]))
            FastAPICache.init(RedisBackend(client), prefix="fastapi-cache")

        @asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[None]:
            init()
            yield

        decorate = fastapi_cache(expire=TTL)
        fastapi_init: Callable[[], None] | None = init
    else:
        fastapi_init = None

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    app.state.bench_init = fastapi_init

    @app.get("/static/", response_class=HTMLResponse)
    async def static() -> HTMLResponse:
        return HTMLResponse(PAGE)

    @app.get("/page/{who}/", response_class=HTMLResponse)
    @decorate
    async def page(who: str) -> str:
        runs.ran(who)
        return render_page().decode("ascii")

    @app.get("/count/{who}/", response_class=PlainTextResponse)
    async def count(who: str) -> PlainTextResponse:
        return PlainTextResponse(str(runs.n.get(who, 0)), headers={"Cache-Control": "no-store"})

    if kind == "rcache":
        entry = _rcache_middleware("fastapi", url, cache)
        app.add_middleware(entry.cls, *entry.args, **entry.kwargs)
    return app


def build(framework: str, kind: str, url: str, cache: Any = None) -> Any:
    """Return the WSGI or ASGI app of one contender (Django: configured first)."""
    if framework == "django":
        return django_wsgi(kind)
    if framework == "flask":
        return flask_app(kind, url)
    if framework == "starlette":
        return starlette_app(kind, url, cache)
    if framework == "fastapi":
        return fastapi_app(kind, url, cache)
    raise ValueError(f"unknown framework {framework!r}")
