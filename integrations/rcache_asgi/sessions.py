"""Sessions for any ASGI app: a pure ASGI middleware on the rcache session store.

::

    store = AsyncSessionStore.from_url(url, SessionConfig(secret_keys=[key]))
    app = Starlette(routes=..., middleware=[Middleware(SessionMiddleware, store=store)])

    async def view(request):
        request.session["cart"] = [42]            # scope["session"]: an rcache Session
        await regenerate_session(request.scope)   # at login: a new id, the old one dies
        await flush_session(request.scope)        # at logout: delete the stored session

For every HTTP request the middleware reads the session cookie from the headers, loads the
session (no round trip without a valid cookie) and puts the
:class:`~rcache.sessions.Session`, a ``MutableMapping``, in ``scope["session"]``, which is
what Starlette's ``request.session`` returns. Just before ``http.response.start`` goes out
it saves what the request changed (only the changed keys; never a session deleted
meanwhile) and adds ``Set-Cookie`` when the cookie changes and ``Vary: Cookie`` when the
session was read or written. Nothing is saved for a 5xx response; streaming responses pass
through untouched once their headers are out. WebSocket connections get the session loaded
(and never saved); lifespan and other scopes pass straight through.

Failures: a save that fails replaces the response with a 503 (its headers had not been
sent), and so does a Redis error that escapes the app before it started its response (a
failed :func:`regenerate_session` or :func:`flush_session`, say). A failed load gives an
empty read-only session (``on_load_error="anonymous"``) or a 503 (``"raise"``; a WebSocket
is closed with code 1013, "try again later").

The store's asyncio adapter belongs to the event loop it first runs on, which is the
server's. With Starlette's ``TestClient``, use it as a context manager (``with
TestClient(app) as client:``) so every request runs on that one loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from rcache.errors import BackendError
from rcache.sessions import AsyncSessionStore, Session

__all__ = ["SessionMiddleware", "flush_session", "regenerate_session", "session_store"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Where the middleware leaves its store in the scope, for the helpers below.
STORE_SCOPE_KEY = "rcache.session_store"

_UNAVAILABLE_BODY = b"Service Unavailable: the session store cannot be reached; please retry.\n"
_TRY_AGAIN_LATER = 1013  # WebSocket close code


def session_store(scope: Scope) -> AsyncSessionStore:
    """Return the store the :class:`SessionMiddleware` serving this scope uses."""
    try:
        store: AsyncSessionStore = scope[STORE_SCOPE_KEY]
    except KeyError:
        raise RuntimeError("no rcache SessionMiddleware serves this request") from None
    return store


async def regenerate_session(scope: Scope) -> None:
    """Give the request's session a new id, keeping its data (call it at login).

    The old id stops working at once; the response carries the new cookie. Pass
    ``request.scope`` from Starlette or FastAPI.
    """
    await session_store(scope).rotate(scope["session"])


async def flush_session(scope: Scope) -> None:
    """Delete the request's stored session and start a new empty one (logout).

    The response deletes the cookie, or sets the new session's if data is added.
    """
    await session_store(scope).flush(scope["session"])


def _session_id(scope: Scope, prefix: bytes, store: AsyncSessionStore) -> str | None:
    """Return the id in the first session cookie that verifies (``prefix``: ``b"name="``).

    Each cookie is checked once; the store then loads the id without checking it again.
    """
    for key, value in scope.get("headers", ()):
        if key != b"cookie" and key.lower() != b"cookie":
            continue
        if prefix not in value:
            continue
        for pair in value.split(b";"):
            pair = pair.strip()
            if pair.startswith(prefix):  # a stale cookie on another path may come first
                session_id = store.load_id_from_cookie(pair[len(prefix) :].strip(b'"'))
                if session_id is not None:
                    return session_id
    return None


def _with_session_headers(
    headers: list[tuple[bytes, bytes]], session: Session, store: AsyncSessionStore
) -> list[tuple[bytes, bytes]]:
    if store.vary_cookie(session):
        varies = b",".join(v for k, v in headers if k.lower() == b"vary").lower()
        tokens = {t.strip() for t in varies.split(b",")}
        if b"cookie" not in tokens and b"*" not in tokens:
            headers.append((b"vary", b"Cookie"))
    if store.should_set_cookie(session):
        headers.append((b"set-cookie", store.cookie_header(session).encode("latin-1")))
    return headers


async def _send_unavailable(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(_UNAVAILABLE_BODY)).encode("ascii")),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _UNAVAILABLE_BODY})


class SessionMiddleware:
    """Load the session before the app runs; save it before the response starts.

    ``store``: the :class:`~rcache.sessions.AsyncSessionStore` to use (its config names
    the cookie, the lifetimes and what a failed load gives). The caller closes it
    (``await store.aclose()``, e.g. in the app's lifespan).
    """

    def __init__(self, app: ASGIApp, store: AsyncSessionStore) -> None:
        self.app = app
        self.store = store
        self._prefix = store.config.cookie_name.encode("latin-1") + b"="

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _load(self, scope: Scope) -> Session:
        store = self.store
        session = await store.load_verified(_session_id(scope, self._prefix, store))
        scope["session"] = session
        scope[STORE_SCOPE_KEY] = store
        return session

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._load(scope)
        except BackendError:  # on_load_error="raise"
            await send({"type": "websocket.close", "code": _TRY_AGAIN_LATER})
            return
        await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        store = self.store
        try:
            session = await self._load(scope)
        except BackendError:  # on_load_error="raise"
            await _send_unavailable(send)
            return
        started = False
        replaced = False

        async def send_with_session(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return  # the app's response was replaced by a 503: drop the rest of it
            if message["type"] != "http.response.start":
                await send(message)
                return
            started = True
            if message["status"] < 500:
                try:
                    await store.save(session)
                except BackendError:
                    replaced = True
                    await _send_unavailable(send)
                    return
            headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
            message["headers"] = _with_session_headers(headers, session, store)
            await send(message)

        try:
            await self.app(scope, receive, send_with_session)
        except BackendError:
            if started:
                raise
            # Redis failed under the app (a rotation or a logout, say) before it answered.
            await _send_unavailable(send)
