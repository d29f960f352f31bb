"""The pure ASGI page cache through Starlette, httpx and raw ASGI calls, against real Redis."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessions
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from rcache.pages import AsyncPageCache, PageCachePolicy
from rcache_asgi.pages import (
    PageCacheMiddleware,
    PageOptions,
    page_cache,
    page_cache_of,
    set_page_options,
)

FAST = {"retry_attempts": 1, "socket_timeout": 0.5, "socket_connect_timeout": 0.5}
LAST_MODIFIED = "Tue, 14 Nov 2023 22:13:20 GMT"
BIG = b"".join(b"<tr><td>item %d</td><td>%d.00</td></tr>\n" % (i, i * 7) for i in range(600))


class HeaderAuth(AuthenticationBackend):
    """``X-User: name`` logs a request in (scope["user"] for the page cache)."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        name = conn.headers.get("x-user")
        return None if name is None else (AuthCredentials(["user"]), SimpleUser(name))


class Site:
    """A Starlette app behind the page cache, its call counts and the state its pages show."""

    def __init__(self, cache: AsyncPageCache, **middleware_options: Any) -> None:
        self.cache = cache
        self.calls: Counter[str] = Counter()
        self.state: dict[Any, Any] = {}
        self.gate = asyncio.Event()
        calls, state = self.calls, self.state

        async def plain(request: Request) -> Response:
            name = request.path_params["name"]
            calls[name] += 1
            return Response(f"<p>{name} #{calls[name]}</p>", media_type="text/html")

        async def by_language(request: Request) -> Response:
            calls["lang"] += 1
            lang = request.headers.get("accept-language", "-")
            return Response(
                f"<p>{lang}</p>", media_type="text/html", headers={"Vary": "Accept-Language"}
            )

        async def big(request: Request) -> Response:
            calls["big"] += 1
            return Response(BIG, media_type="text/html")

        async def dated(request: Request) -> Response:
            calls["dated"] += 1
            headers = {"Last-Modified": LAST_MODIFIED, "Cache-Control": "max-age=300"}
            return Response("<p>dated</p>", media_type="text/html", headers=headers)

        def with_header(name: str, value: str) -> Callable[[Request], Any]:
            async def endpoint(request: Request) -> Response:
                calls[name] += 1
                response = Response(f"<p>{name}</p>", media_type="text/html")
                response.headers.append(name, value)
                return response

            return endpoint

        @page_cache(allow_set_cookie=True)
        async def cookie_allowed(request: Request) -> Response:
            calls["cookie"] += 1
            response = Response("<p>cookie</p>", media_type="text/html")
            response.set_cookie("seen", "1")
            return response

        async def whoami(request: Request) -> Response:
            calls["whoami"] += 1
            return PlainTextResponse(request.user.display_name or "anonymous")

        async def visits(request: Request) -> Response:
            calls["visits"] += 1
            request.session["visits"] = request.session.get("visits", 0) + 1
            return PlainTextResponse(f"visit {request.session['visits']}")

        @page_cache(tags=["posts"])
        async def post(request: Request) -> Response:
            pk = request.path_params["pk"]
            calls["post"] += 1
            headers = {"Cache-Tag": f"post-{pk}"}
            return Response(
                f"<h1>{state.get(pk, 'draft')}</h1>", media_type="text/html", headers=headers
            )

        async def edit(request: Request) -> Response:
            pk = request.path_params["pk"]
            state[pk] = parse_qs((await request.body()).decode())["title"][0]
            await page_cache_of(request).purge_tag(f"post-{pk}")
            return PlainTextResponse("saved")

        @page_cache(ttl=0.2)
        def fragile(request: Request) -> Response:  # a sync endpoint (thread pool)
            calls["fragile"] += 1
            if state.get("fail"):
                raise RuntimeError("the database is down")
            return PlainTextResponse("fragile")

        async def chunked(request: Request) -> Response:
            calls["chunked"] += 1

            async def chunks() -> AsyncIterator[bytes]:
                for part in (b"one,", b"two,", b"three"):
                    yield part

            return StreamingResponse(chunks(), media_type="text/plain")

        async def endless(request: Request) -> Response:
            calls["endless"] += 1

            async def chunks() -> AsyncIterator[bytes]:
                yield b"first"
                await self.gate.wait()  # the test opens it once "first" reached the server
                yield b"second"

            return StreamingResponse(chunks(), media_type="text/plain")

        async def huge_stream(request: Request) -> Response:
            calls["huge"] += 1

            async def chunks() -> AsyncIterator[bytes]:
                for _ in range(8):
                    yield b"x" * 4096

            return StreamingResponse(chunks(), media_type="text/plain")

        async def events(request: Request) -> Response:
            calls["events"] += 1

            async def chunks() -> AsyncIterator[bytes]:
                yield b"data: 1\n\n"
                await self.gate.wait()
                yield b"data: 2\n\n"

            return StreamingResponse(chunks(), media_type="text/event-stream")

        async def fastapi_style(request: Request) -> Response:
            set_page_options(request, ttl=600, tags=["fastapi"])
            calls["fastapi"] += 1
            return PlainTextResponse("set in the endpoint")

        async def ws(websocket: WebSocket) -> None:
            await websocket.accept()
            await websocket.send_text("hello over a websocket")
            await websocket.close()

        @asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            calls["startup"] += 1
            yield
            calls["shutdown"] += 1

        routes = [
            Route("/page/{name}", plain, methods=["GET", "POST"]),
            Route("/lang", by_language),
            Route("/big", big),
            Route("/dated", dated),
            Route("/cookie", with_header("set-cookie", "seen=1; Path=/")),
            Route("/cookie-allowed", cookie_allowed),
            Route("/private", with_header("cache-control", "private, max-age=60")),
            Route("/no-store", with_header("cache-control", "no-store")),
            Route("/whoami", whoami),
            Route("/visits", visits),
            Route("/post/{pk:int}", post),
            Route("/post/{pk:int}/edit", edit, methods=["POST"]),
            Route("/fragile", fragile),
            Route("/chunked", chunked),
            Route("/endless", endless),
            Route("/huge-stream", huge_stream),
            Route("/events", events),
            Route("/fastapi-style", fastapi_style),
            Route("/admin/{name}", plain),
            WebSocketRoute("/ws", ws),
        ]
        self.middleware_options = middleware_options
        options = {"cache": cache, **middleware_options}
        self.app = Starlette(
            routes=routes,
            lifespan=lifespan,
            middleware=[
                Middleware(StarletteSessions, secret_key="asgi-pages-secret"),
                Middleware(AuthenticationMiddleware, backend=HeaderAuth()),
                Middleware(PageCacheMiddleware, **options),
            ],
        )

    async def get(self, path: str, method: str = "GET", **headers: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.request(method, path, headers=headers)

    async def raw(
        self, path: str, headers: dict[str, str] | None = None, on_send: Any = None
    ) -> list[tuple[float, dict[str, Any]]]:
        """Call the app as a server would; return ``(time, message)`` for each message sent."""
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"testserver"),
                *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
            ],
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 50000),
        }
        sent: list[tuple[float, dict[str, Any]]] = []
        requested = False

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # no disconnect: the client stays
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append((time.monotonic(), message))
            if on_send is not None:
                on_send(message)

        await self.app(scope, receive, send)
        return sent


@pytest.fixture
async def make_site(key_prefix: str) -> AsyncIterator[Callable[..., Site]]:
    """Return ``make(server, policy=..., redis=..., **middleware_options) -> Site``."""
    caches: list[AsyncPageCache] = []

    def make(
        server: Any,
        policy: PageCachePolicy | None = None,
        redis: dict[str, Any] | None = None,
        **options: Any,
    ) -> Site:
        prefix = "t" + key_prefix.strip(":").replace(":", "")
        cache = AsyncPageCache.from_url(server.url, prefix=prefix, policy=policy, **(redis or {}))
        caches.append(cache)
        return Site(cache, **options)

    yield make
    for cache in caches:
        await cache.aclose()


def xc(response: httpx.Response) -> str:
    return str(response.headers.get("x-cache"))


def headers_of(message: dict[str, Any]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in message["headers"]}


def body_of(sent: list[tuple[float, dict[str, Any]]]) -> bytes:
    return b"".join(m.get("body", b"") for _, m in sent if m["type"] == "http.response.body")


async def assert_one_round_trip(server: Any, action: Callable[[], Any]) -> Any:
    """Await ``action()``: Redis must have served it in one round trip.

    Counted by the server: the commands it ran (those a Lua script runs included; the INFO
    calls that read the counters left out) and the requests it read. Steady state is plain
    reads (HMGET of the variant, MGET of the spec and purge keys); a process's first lookup
    of a URL may be one EVALSHA of ``lookup.lua`` instead. Either way one read: one round
    trip, and no second one.
    """
    with server.client() as raw:
        before = raw.execute_command("INFO", "stats", "commandstats")
        result = await action()
        after = raw.execute_command("INFO", "stats", "commandstats")
    _assert_one_round_trip(before, after)
    return result


def _assert_one_round_trip(before: dict[str, Any], after: dict[str, Any]) -> None:
    calls = {
        name.removeprefix("cmdstat_"): stats["calls"] - before.get(name, {"calls": 0})["calls"]
        for name, stats in after.items()
        if name.startswith("cmdstat_")
    }
    calls["info"] -= 1
    changed = {name: n for name, n in calls.items() if n}
    assert changed in (
        {"hmget": 1, "mget": 1},
        {"evalsha": 1, "hmget": 1, "get": changed.get("get")},
    ), changed
    assert after["total_reads_processed"] - before["total_reads_processed"] == 2  # + one INFO


# -- hit, miss, bypass, round trips -------------------------------------------------------------


async def test_miss_then_hit_then_bypass_for_post(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    first, second = await site.get("/page/a"), await site.get("/page/a")
    assert (xc(first), xc(second)) == ("MISS", "HIT") and site.calls["a"] == 1
    assert first.content == second.content == b"<p>a #1</p>"
    assert second.headers["etag"] == first.headers["etag"] and "age" in second.headers
    assert second.headers["content-length"] == "11"
    posted = await site.get("/page/a", method="POST")
    assert xc(posted) == "BYPASS" and posted.content == b"<p>a #2</p>"


async def test_a_hit_is_one_round_trip_with_and_without_vary(
    make_site: Any, fresh_server: Any
) -> None:
    site = make_site(fresh_server)
    lang = {"Accept-Language": "de"}
    for _ in range(2):  # the first miss loads the scripts
        await site.get("/page/rt")
        await site.get("/lang", **lang)
    plain = await assert_one_round_trip(fresh_server, lambda: site.get("/page/rt"))
    varied = await assert_one_round_trip(fresh_server, lambda: site.get("/lang", **lang))
    assert xc(plain) == xc(varied) == "HIT" and varied.content == b"<p>de</p>"


# -- HTTP semantics -----------------------------------------------------------------------------


async def test_vary_keeps_variants_apart(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    for lang in ("en", "de", "en", "de"):
        response = await site.get("/lang", **{"Accept-Language": lang})
        assert response.content == f"<p>{lang}</p>".encode()
    assert xc(response) == "HIT" and site.calls["lang"] == 2


async def test_304_for_if_none_match_and_if_modified_since(
    make_site: Any, redis_server: Any
) -> None:
    site = make_site(redis_server)
    etag = (await site.get("/dated")).headers["etag"]
    fresh = await site.get("/dated", **{"If-None-Match": etag})
    assert (fresh.status_code, fresh.content, xc(fresh)) == (304, b"", "HIT")
    for name in ("etag", "date", "cache-control", "age"):
        assert name in fresh.headers, name
    assert fresh.headers["etag"] == etag and "content-length" not in fresh.headers
    since = await site.get("/dated", **{"If-Modified-Since": "Wed, 15 Nov 2023 00:00:00 GMT"})
    assert (since.status_code, since.content) == (304, b"") and "etag" in since.headers
    older = await site.get("/dated", **{"If-Modified-Since": "Mon, 13 Nov 2023 00:00:00 GMT"})
    assert (older.status_code, older.content) == (200, b"<p>dated</p>")
    assert site.calls["dated"] == 1


async def test_head_is_served_from_the_get_entry(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    assert xc(await site.get("/page/h")) == "MISS"
    head = await site.get("/page/h", method="HEAD")
    assert (xc(head), head.status_code, head.content) == ("HIT", 200, b"")
    assert head.headers["content-length"] == str(len(b"<p>h #1</p>")) and site.calls["h"] == 1


async def test_gzip_for_gzip_clients_decoded_for_others(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    miss = await site.raw("/big", {"Accept-Encoding": "gzip, br"})
    hit = await site.raw("/big", {"Accept-Encoding": "gzip"})
    plain = await site.raw("/big", {"Accept-Encoding": "identity"})
    for sent in (miss, hit):
        headers = headers_of(sent[0][1])
        assert headers["content-encoding"] == "gzip" and gzip.decompress(body_of(sent)) == BIG
        assert int(headers["content-length"]) == len(body_of(sent)) < len(BIG) // 3
    headers = headers_of(plain[0][1])
    assert (headers["x-cache"], body_of(plain)) == ("HIT", BIG)
    assert "content-encoding" not in headers and "Accept-Encoding" in headers["vary"]
    assert site.calls["big"] == 1


# -- never cached -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name", "headers"),
    [
        ("/cookie", "set-cookie", {}),
        ("/private", "cache-control", {}),
        ("/no-store", "cache-control", {}),
        ("/page/auth", "auth", {"Authorization": "Bearer secret"}),
        ("/visits", "visits", {}),  # the session changed: a cookie goes out after us
    ],
)
async def test_never_cached(
    make_site: Any, redis_server: Any, path: str, name: str, headers: dict[str, str]
) -> None:
    site = make_site(redis_server)
    responses = [await site.get(path, **headers) for _ in range(2)]
    assert [xc(r) for r in responses] == ["MISS", "MISS"] and site.calls[name] == 2


async def test_set_cookie_allowed_per_route(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    first, second = await site.get("/cookie-allowed"), await site.get("/cookie-allowed")
    assert first.headers["set-cookie"].startswith("seen=1")
    assert xc(second) == "HIT" and "set-cookie" not in second.headers
    assert site.calls["cookie"] == 1


async def test_logged_in_users_bypass(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    assert [xc(await site.get("/whoami")) for _ in range(2)] == ["MISS", "HIT"]
    for _ in range(2):
        response = await site.get("/whoami", **{"X-User": "alice"})
        assert (xc(response), response.content) == ("BYPASS", b"alice")
    assert site.calls["whoami"] == 3


# -- purge, options, stale-if-error ------------------------------------------------------------


async def test_an_edit_purges_by_tag(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    site.state[7] = "First title"
    assert (await site.get("/post/7")).content == b"<h1>First title</h1>"
    assert xc(await site.get("/post/7")) == "HIT"
    transport = httpx.ASGITransport(app=site.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        edited = await c.post("/post/7/edit", data={"title": "Second title"})
    assert xc(edited) == "BYPASS"
    after = await site.get("/post/7")
    assert (xc(after), after.content) == ("MISS", b"<h1>Second title</h1>")
    assert "cache-tag" not in after.headers and site.calls["post"] == 2


async def test_options_set_inside_the_endpoint_win(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server, paths={"/fastapi-style": PageOptions(ttl=0)})
    assert [xc(await site.get("/fastapi-style")) for _ in range(2)] == ["MISS", "HIT"]
    assert await site.cache.purge_tag("fastapi")
    assert xc(await site.get("/fastapi-style")) == "MISS" and site.calls["fastapi"] == 2


async def test_paths_leave_routes_out_or_opt_them_in(make_site: Any, fresh_server: Any) -> None:
    site = make_site(
        fresh_server, paths={"/admin/*": None, "/page/in": PageOptions()}, default=None
    )

    async def two(path: str) -> list[str]:
        return [xc(await site.get(path)) for _ in range(2)]

    assert await two("/page/in") == ["MISS", "HIT"]
    with fresh_server.client() as raw:
        before = raw.info("stats")["total_commands_processed"]
        assert await two("/admin/x") == ["BYPASS", "BYPASS"]
        assert await two("/page/out") == ["BYPASS", "BYPASS"]
        after = raw.info("stats")["total_commands_processed"]
    assert after - before == 1  # the first INFO: not looked up at all
    assert site.calls["x"] == site.calls["out"] == 2


async def test_a_failing_endpoint_gets_its_stale_copy(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server, policy=PageCachePolicy(stale_if_error=60))
    assert xc(await site.get("/fragile")) == "MISS"
    site.state["fail"] = True
    await asyncio.sleep(0.3)  # the 0.2 s of freshness are over
    stale = await site.get("/fragile")
    assert (stale.status_code, xc(stale), stale.content) == (200, "STALE", b"fragile")
    await site.cache.purge_url("http://testserver/fragile")
    with pytest.raises(RuntimeError, match="database is down"):
        await site.get("/fragile")
    site.state["fail"] = False
    assert xc(await site.get("/fragile")) == "MISS"  # the lease was given back
    assert site.calls["fragile"] == 4


# -- streaming ----------------------------------------------------------------------------------


async def test_short_chunked_responses_are_stored(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    first, second = await site.get("/chunked"), await site.get("/chunked")
    assert first.content == second.content == b"one,two,three"
    assert (xc(first), xc(second)) == ("MISS", "HIT") and site.calls["chunked"] == 1


async def test_a_long_stream_passes_through_and_is_never_stored(
    make_site: Any, redis_server: Any
) -> None:
    site = make_site(redis_server, policy=PageCachePolicy(max_body_bytes=10_000))
    for _ in range(2):
        sent = await site.raw("/huge-stream")
        assert headers_of(sent[0][1])["x-cache"] == "MISS"
        assert body_of(sent) == b"x" * 4096 * 8
        assert sent[-1][1].get("more_body", False) is False
        chunks = [m for _, m in sent if m["type"] == "http.response.body"]
        assert len(chunks) > 2  # the tail went out as the app sent it
    assert site.calls["huge"] == 2


@pytest.mark.parametrize("path", ["/endless", "/events"])
async def test_a_slow_stream_is_not_held_back(make_site: Any, redis_server: Any, path: str) -> None:
    site = make_site(redis_server, buffer_timeout=0.2)

    def on_send(message: dict[str, Any]) -> None:
        if message.get("body"):
            site.gate.set()  # the first chunk reached the server: let the app go on

    for _ in range(2):
        site.gate.clear()
        t0 = time.monotonic()
        sent = await asyncio.wait_for(site.raw(path, on_send=on_send), timeout=5)
        first_chunk = next(t for t, m in sent if m.get("body"))
        limit = 0.1 if path == "/events" else 1.0  # an event stream is never held at all
        assert first_chunk - t0 < limit
        assert headers_of(sent[0][1])["x-cache"] == "MISS"
    assert site.calls[path.strip("/")] == 2  # never stored


# -- outages, lifespan, other scopes ------------------------------------------------------------


async def test_redis_down_pages_still_answer(make_site: Any, fresh_server: Any) -> None:
    site = make_site(fresh_server, redis=FAST)
    assert [xc(await site.get("/page/down")) for _ in range(2)] == ["MISS", "HIT"]
    fresh_server.stop()
    for _ in range(3):
        response = await site.get("/page/down")
        assert (response.status_code, xc(response)) == (200, "BYPASS")
    assert site.calls["down"] == 4
    assert await site.cache.purge_tag("anything") is False


class Lifespan:
    """Drive an app's lifespan protocol as a server does."""

    def __init__(self, app: Any) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outgoing: asyncio.Queue[str] = asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}

        async def send(message: dict[str, Any]) -> None:
            await self.outgoing.put(message["type"])

        self.task = asyncio.ensure_future(app(scope, self.incoming.get, send))

    async def event(self, name: str) -> str:
        await self.incoming.put({"type": f"lifespan.{name}"})
        return await asyncio.wait_for(self.outgoing.get(), timeout=5)


async def test_lifespan_and_websockets_pass_through(redis_server: Any, key_prefix: str) -> None:
    prefix = "t" + key_prefix.strip(":").replace(":", "")
    site = Site(None, url=redis_server.url, prefix=prefix)  # type: ignore[arg-type]
    lifespan = Lifespan(site.app)
    assert await lifespan.event("startup") == "lifespan.startup.complete"
    assert site.calls["startup"] == 1
    assert [xc(await site.get("/page/life")) for _ in range(2)] == ["MISS", "HIT"]
    sent: list[dict[str, Any]] = []
    incoming = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return incoming.pop() if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws",
        "raw_path": b"/ws",
        "headers": [],
        "query_string": b"",
        "root_path": "",
        "scheme": "ws",
        "subprotocols": [],
    }
    await site.app(scope, receive, send)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[1]["text"] == "hello over a websocket"
    assert await lifespan.event("shutdown") == "lifespan.shutdown.complete"
    await lifespan.task
    assert site.calls["shutdown"] == 1


def test_constructor_checks(redis_server: Any) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None: ...

    with pytest.raises(TypeError):
        PageCacheMiddleware(app)
    with pytest.raises(TypeError):
        PageOptions(tags="one-tag")  # type: ignore[arg-type]
