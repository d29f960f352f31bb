"""A tiny Starlette app on the rcache SessionMiddleware, and a client that sets cookies.

``HOOKS["after_load"]``, when a test sets it, is awaited inside an endpoint right after the
session was read and before it is changed: the place where a concurrent request, a logout
or an outage is staged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from http.cookies import SimpleCookie
from typing import Any

import httpx
import redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from rcache.sessions import AsyncSessionStore
from rcache_asgi.sessions import SessionMiddleware, flush_session, regenerate_session

SECRET = "asgi-session-secret-0123456789abcdef"

#: Adapter settings that make an outage show within a request, not after seconds.
FAST = {
    "breaker_cooldown": 0.1,
    "retry_attempts": 1,
    "socket_timeout": 0.5,
    "socket_connect_timeout": 0.5,
}

HOOKS: dict[str, Callable[[], Awaitable[None]]] = {}


async def _after_load() -> None:
    hook = HOOKS.get("after_load")
    if hook is not None:
        await hook()


async def read(request: Request) -> Response:
    return JSONResponse(dict(request.session.items()))


async def untouched(request: Request) -> Response:
    return PlainTextResponse("no session here")


async def set_value(request: Request) -> Response:
    request.session.get("user")  # read first, as an endpoint that checks the login would
    await _after_load()
    request.session[request.path_params["key"]] = request.path_params["value"]
    return JSONResponse({"set": request.path_params["key"]})


async def login(request: Request) -> Response:
    await regenerate_session(request.scope)
    request.session["user"] = request.path_params["name"]
    return JSONResponse({"user": request.path_params["name"]})


async def logout(request: Request) -> Response:
    await flush_session(request.scope)
    return JSONResponse({"user": None})


async def append(request: Request) -> Response:
    cart = request.session.setdefault("cart", [])
    await _after_load()
    cart.append(request.path_params["value"])
    request.session.mark_modified("cart")  # type: ignore[attr-defined]  # an rcache Session
    return JSONResponse({"cart": cart})


async def failed(request: Request) -> Response:
    request.session["half-done"] = True
    return PlainTextResponse("it went wrong", status_code=500)


async def stream(request: Request) -> Response:
    request.session["streamed"] = "yes"

    async def chunks() -> AsyncIterator[bytes]:
        yield b"one,"
        yield b"two"

    return StreamingResponse(chunks(), media_type="text/plain")


async def websocket(ws: WebSocket) -> None:
    await ws.accept()
    ws.session["from-websocket"] = True  # never saved: websockets only load
    await ws.send_json({"user": ws.session.get("user")})
    await ws.close()


def make_app(store: AsyncSessionStore) -> Starlette:
    """Return the app on ``store`` (the caller closes the store)."""
    return Starlette(
        routes=[
            Route("/read", read),
            Route("/untouched", untouched),
            Route("/set/{key}/{value}", set_value),
            Route("/login/{name}", login),
            Route("/logout", logout),
            Route("/append/{value}", append),
            Route("/failed", failed),
            Route("/stream", stream),
            WebSocketRoute("/ws", websocket),
        ],
        middleware=[Middleware(SessionMiddleware, store=store)],
    )


class Site:
    """The app and its store; requests carry exactly the cookie a test gives them."""

    def __init__(self, store: AsyncSessionStore, raw: redis.Redis) -> None:
        self.store = store
        self.raw = raw
        self.app = make_app(store)
        self.name = store.config.cookie_name

    async def get(self, path: str, cookie: str | None = None) -> httpx.Response:
        headers = {"cookie": f"{self.name}={cookie}"} if cookie is not None else {}
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.get(path, headers=headers)

    def cookie_of(self, response: httpx.Response) -> str | None:
        """The session cookie the response sets ("" for a deletion), None if it sets none."""
        morsels = [SimpleCookie(h) for h in response.headers.get_list("set-cookie")]
        values = [m[self.name].value for m in morsels if self.name in m]
        assert len(values) <= 1, values
        return values[0] if values else None

    async def login(self, name: str = "alice") -> str:
        response = await self.get(f"/login/{name}")
        assert response.status_code == 200
        cookie = self.cookie_of(response)
        assert cookie
        return cookie

    def session_id(self, cookie: str) -> str:
        session_id = self.store.load_id_from_cookie(cookie)
        assert session_id is not None, "the cookie does not verify"
        return session_id

    def key(self, cookie: str) -> str:
        return self.store._storage.key(self.session_id(cookie))

    def stored(self, cookie: str) -> bool:
        return bool(self.raw.exists(self.key(cookie)))

    async def aclose(self) -> None:
        await self.store.aclose()
        self.raw.close()


def vary(response: Any) -> str:
    return ", ".join(response.headers.get_list("vary"))
