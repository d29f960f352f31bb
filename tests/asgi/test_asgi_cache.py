"""rcache_asgi's lifespan, get_cache and cached on Starlette and FastAPI, against real Redis."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from rcache.adapter import AsyncRedisAdapter
from rcache.errors import ConfigurationError
from rcache.objects import AsyncObjectCache
from rcache.server import RedisServer
from rcache_asgi import cache_lifespan, cached, get_cache

CALLS: Counter[str] = Counter()
FAST = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5, "retry_attempts": 1}


# -- Starlette endpoints --------------------------------------------------------------------


@cached(60)
async def homepage(request: Request) -> Response:
    CALLS["home"] += 1
    return PlainTextResponse(f"home {CALLS['home']} {request.url.query}", headers={"X-Made": "yes"})


@cached(60)
async def with_cookie(request: Request) -> Response:
    CALLS["cookie"] += 1
    response = PlainTextResponse("cookie")
    response.set_cookie("seen", "1")
    return response


@cached(60)
async def missing(request: Request) -> Response:
    CALLS["missing"] += 1
    return PlainTextResponse("nothing", status_code=404)


@cached(60)
async def with_session(request: Request) -> Response:
    CALLS["session"] += 1
    if "login" in request.query_params:
        request.session["user"] = "ann"
    return PlainTextResponse(f"hello {request.session.get('user', 'anonymous')}")


@cached(60)
async def whoami(request: Request) -> Response:
    CALLS["whoami"] += 1
    return PlainTextResponse(f"you are {request.user.display_name or 'anonymous'}")


class PlainSession:
    """Puts a plain dict session in the scope when asked (as older session middlewares do)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        original = scope.get("session")

        async def restoring_send(message: Any) -> None:
            scope["session"] = original  # Starlette's middleware outside reads its own
            await send(message)

        for name, value in scope.get("headers", ()):
            if name == b"x-plain-session":
                scope["session"] = {"user": value.decode()}
        await self.app(scope, receive, restoring_send)


class HeaderAuth(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> Any:
        name = conn.headers.get("x-user")
        return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None


def starlette_app(url: str, prefix: str, **options: Any) -> Starlette:
    routes = [
        Route("/", homepage, methods=["GET", "HEAD", "POST"]),
        Route("/cookie", with_cookie),
        Route("/missing", missing),
        Route("/session", with_session),
        Route("/whoami", whoami),
    ]
    middleware = [
        Middleware(SessionMiddleware, secret_key="asgi-cache-tests"),
        Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
        Middleware(PlainSession),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=cache_lifespan(url, prefix=prefix, **options),
    )


# -- FastAPI endpoints ----------------------------------------------------------------------


class Item(BaseModel):
    id: int
    name: str


class Database:
    """Stands in for a dependency that cannot be part of a key."""


def get_db() -> Database:
    return Database()


def fastapi_app(url: str, prefix: str, **options: Any) -> FastAPI:
    app = FastAPI(lifespan=cache_lifespan(url, prefix=prefix, **options))

    @app.get("/items/{item_id}")
    @cached(60)
    async def read_item(
        item_id: int, db: Annotated[Database, Depends(get_db)], q: str = ""
    ) -> dict[str, Any]:
        assert isinstance(db, Database)  # the dependency is injected, not part of the key
        CALLS["item"] += 1
        return {"id": item_id, "q": q, "call": CALLS["item"]}

    @app.get("/models/{item_id}", response_model=Item)
    @cached(60)
    async def read_model(item_id: int) -> Item:
        CALLS["model"] += 1
        return Item(id=item_id, name=f"item {CALLS['model']}")

    @app.get("/with-request")
    @cached(60)
    async def with_request(request: Request) -> JSONResponse:
        CALLS["with_request"] += 1
        return JSONResponse({"path": request.url.path, "call": CALLS["with_request"]})

    @app.put("/notes/{name}")
    async def put_note(
        name: str, text: str, cache: Annotated[AsyncObjectCache, Depends(get_cache)]
    ) -> dict[str, bool]:
        return {"stored": await cache.set(f"note:{name}", text)}

    @app.get("/notes/{name}")
    async def get_note(name: str, cache: Annotated[AsyncObjectCache, Depends(get_cache)]) -> Any:
        return {"text": await cache.get(f"note:{name}")}

    return app


class Running:
    """An app whose lifespan runs (the ASGI lifespan protocol), with an httpx client."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def _say(self, what: str) -> None:
        await self._inbox.put({"type": f"lifespan.{what}"})
        reply = await asyncio.wait_for(self._outbox.get(), 5)
        assert reply["type"] == f"lifespan.{what}.complete", reply

    async def start(self) -> Running:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._task = asyncio.create_task(self.app(scope, self._inbox.get, self._outbox.put))
        await self._say("startup")
        return self

    async def stop(self) -> None:
        await self.client.aclose()
        await self._say("shutdown")
        assert self._task is not None
        await self._task

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(url, **kwargs)


@pytest.fixture
async def make_running(key_prefix: str) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    """Return ``await make(factory, url, **options) -> Running`` (stopped after the test)."""
    running: list[Running] = []
    prefix = "t" + key_prefix.strip(":").replace(":", "")

    async def make(factory: Callable[..., Any], url: str, **options: Any) -> Running:
        app = await Running(factory(url, prefix, **options)).start()
        running.append(app)
        return app

    CALLS.clear()
    yield make
    for app in reversed(running):
        await app.stop()


@pytest.fixture
async def starlette(make_running: Callable[..., Awaitable[Running]], redis_url: str) -> Running:
    return await make_running(starlette_app, redis_url)


@pytest.fixture
async def fastapi(make_running: Callable[..., Awaitable[Running]], redis_url: str) -> Running:
    return await make_running(fastapi_app, redis_url)


async def test_lifespan_puts_a_cache_on_the_app_and_closes_it(
    redis_url: str, key_prefix: str, monkeypatch: Any
) -> None:
    closed: list[AsyncRedisAdapter] = []
    original = AsyncRedisAdapter.aclose

    async def aclose(self: AsyncRedisAdapter) -> None:
        closed.append(self)
        await original(self)

    monkeypatch.setattr(AsyncRedisAdapter, "aclose", aclose)
    CALLS.clear()
    app = starlette_app(redis_url, "t" + key_prefix.strip(":").replace(":", ""))
    run = await Running(app).start()
    cache = app.state.rcache
    assert isinstance(cache, AsyncObjectCache)
    assert (await run.get("/")).status_code == 200
    assert closed == []
    await run.stop()
    assert closed == [cache.adapter]
    run = await Running(app).start()  # started again: a new cache
    try:
        assert app.state.rcache is not cache
        assert (await run.get("/")).text == "home 1 "  # the first run's entry, from Redis
    finally:
        await run.stop()


def test_lifespan_with_a_cache_built_before(redis_url: str, key_prefix: str) -> None:
    CALLS.clear()
    cache = AsyncObjectCache.from_url(
        redis_url, prefix="t" + key_prefix.strip(":").replace(":", "")
    )
    app = Starlette(routes=[Route("/", homepage)], lifespan=cache_lifespan(cache=cache))

    async def serve() -> str:
        run = await Running(app).start()
        try:
            assert app.state.rcache is cache
            return (await run.get("/")).text
        finally:
            await run.stop()

    # Two runs, two event loops: the connections reopen in each after the close.
    assert asyncio.run(serve()) == asyncio.run(serve()) == "home 1 "


def test_lifespan_arguments_are_checked() -> None:
    with pytest.raises(ConfigurationError):
        cache_lifespan()
    with pytest.raises(ConfigurationError):
        cache_lifespan("redis://x/0", cache=AsyncObjectCache.from_url("redis://x/0"))


async def test_starlette_endpoint_is_cached_by_url(starlette: Running) -> None:
    client = starlette.client
    first = await client.get("/?b=2&a=1")
    again = await client.get("/?a=1&b=2")
    other = await client.get("/?a=3")
    assert first.text == again.text == "home 1 b=2&a=1" and other.text == "home 2 a=3"
    assert again.headers["x-made"] == "yes"
    assert again.headers["content-type"] == "text/plain; charset=utf-8"
    assert again.headers["content-length"] == str(len(again.content))
    assert (await client.head("/?a=3")).status_code == 200 and CALLS["home"] == 2
    assert (await client.post("/?a=3")).text == "home 3 a=3"  # POST is never cached
    assert (await client.get("/", headers={"Cache-Control": "no-store"})).text == "home 4 "


@pytest.mark.parametrize("path, name", [("/cookie", "cookie"), ("/missing", "missing")])
async def test_odd_responses_are_not_stored(starlette: Running, path: str, name: str) -> None:
    assert (await starlette.get(path)).status_code == (await starlette.get(path)).status_code
    assert CALLS[name] == 2


async def test_personal_requests_bypass_the_cache(starlette: Running) -> None:
    assert (await starlette.get("/whoami")).text == "you are anonymous"
    assert (await starlette.get("/whoami")).text == "you are anonymous"
    assert (await starlette.get("/whoami", headers={"X-User": "ann"})).text == "you are ann"
    assert CALLS["whoami"] == 2
    # A plain dict session (no access tracking) is loaded before the endpoint runs.
    assert (await starlette.get("/")).text == "home 1 "
    assert (await starlette.get("/", headers={"X-Plain-Session": "bob"})).text == "home 2 "
    assert (await starlette.get("/")).text == "home 1 "


async def test_pages_that_use_the_session_are_not_stored(starlette: Running) -> None:
    assert (await starlette.get("/session")).text == "hello anonymous"
    assert (await starlette.get("/session")).text == "hello anonymous"
    assert CALLS["session"] == 2  # Starlette's Session says it was read: never stored
    assert (await starlette.get("/session?login=1")).text == "hello ann"  # sets the cookie
    assert (await starlette.get("/session")).text == "hello ann"
    await starlette.get("/")
    assert (await starlette.get("/")).text == "home 1 "  # a session, unused: still cached


async def test_fastapi_endpoint_keeps_its_parameters(fastapi: Running) -> None:
    first = await fastapi.get("/items/3?q=x")
    assert first.status_code == 200 and first.json() == {"id": 3, "q": "x", "call": 1}
    assert (await fastapi.get("/items/3?q=x")).json() == {"id": 3, "q": "x", "call": 1}
    assert (await fastapi.get("/items/3?q=y")).json()["call"] == 2
    assert (await fastapi.get("/items/abc")).status_code == 422  # FastAPI still validates
    models = [(await fastapi.get("/models/5")).json() for _ in range(2)]
    assert models == [{"id": 5, "name": "item 1"}] * 2
    requests = [(await fastapi.get("/with-request")).json() for _ in range(2)]
    assert requests == [{"path": "/with-request", "call": 1}] * 2
    assert (CALLS["item"], CALLS["model"], CALLS["with_request"]) == (2, 1, 1)
    schema = (await fastapi.get("/openapi.json")).json()
    names = [p["name"] for p in schema["paths"]["/items/{item_id}"]["get"]["parameters"]]
    assert names == ["item_id", "q"]  # the hidden request parameter is not a query


async def test_get_cache_dependency(fastapi: Running) -> None:
    assert (await fastapi.client.put("/notes/a?text=hello")).json() == {"stored": True}
    assert (await fastapi.get("/notes/a")).json() == {"text": "hello"}


async def test_invalidate_an_endpoint(starlette: Running) -> None:
    await starlette.get("/?a=1")
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "server": ("testserver", 80),
        "path": "/",
        "query_string": b"a=1",
        "headers": [(b"host", b"testserver")],
        "app": starlette.app,
    }
    assert await homepage.invalidate(Request(scope)) is True  # type: ignore[attr-defined]
    assert (await starlette.get("/?a=1")).text == "home 2 a=1"


async def test_endpoints_answer_when_redis_is_down(
    make_running: Callable[..., Awaitable[Running]], fresh_server: RedisServer
) -> None:
    starlette = await make_running(starlette_app, fresh_server.url, **FAST)
    fastapi = await make_running(fastapi_app, fresh_server.url, **FAST)
    assert (await starlette.get("/")).status_code == 200
    assert (await fastapi.get("/items/1")).status_code == 200
    fresh_server.stop()
    for _ in range(2):
        assert (await starlette.get("/")).status_code == 200
        assert (await fastapi.get("/items/1")).status_code == 200
    assert (await fastapi.get("/notes/a")).json() == {"text": None}
    assert CALLS["home"] == 3


async def test_plain_calls_need_a_cache(redis_url: str, key_prefix: str) -> None:
    cache = AsyncObjectCache.from_url(
        redis_url, prefix="t" + key_prefix.strip(":").replace(":", "")
    )

    @cached(60, cache=cache)
    async def square(x: int) -> int:
        CALLS["square"] += 1
        return x * x

    @cached(60)
    async def orphan(x: int) -> int:
        return x

    try:
        assert [await square(3), await square(3)] == [9, 9] and CALLS["square"] == 1
        assert await square.invalidate(3) is True  # type: ignore[attr-defined]
        with pytest.raises(RuntimeError, match="cache="):
            await orphan(1)
    finally:
        await cache.aclose()


def test_plain_functions_are_refused() -> None:
    def endpoint(request: Request) -> Response:
        return Response()

    with pytest.raises(TypeError, match="coroutine"):
        cached(60)(endpoint)
