"""The rcache dashboard as a pure ASGI app: mount it in Starlette, FastAPI or any ASGI router.

::

    metrics = Metrics()
    metrics.add("cache", cache)
    app = Starlette(routes=[Mount("/rcache", app=Dashboard(metrics, adapter))])

Below where it is mounted it serves ``/`` (the HTML page), ``/metrics`` (Prometheus text)
and ``/json``. Only ``GET`` and ``HEAD``; every response carries ``Cache-Control: no-store``.

Access control: the page reveals the internals of the site and its Redis. ``allow``
receives the ASGI scope and returns whether to serve it; by default only clients on this
machine are (loopback or a unix socket, with no ``Forwarded``/``X-Forwarded-For``/
``X-Real-IP`` header, see :func:`rcache.dashboard.is_local_client`); the others get a 403.
Starlette's ``TestClient`` reports its client as ``"testclient"``, which is not local:
pass ``allow`` in such tests, or use ``httpx.ASGITransport`` (client ``127.0.0.1``).

``adapter`` feeds the Redis server panel (one round trip of INFO per page or JSON view,
none for ``/metrics``): an :class:`~rcache.adapter.AsyncRedisAdapter` is awaited on the
server's loop, a sync :class:`~rcache.adapter.RedisAdapter` runs in a worker thread. When
Redis cannot be reached the page still renders, with a "Redis unreachable" line.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.dashboard import (
    FORBIDDEN_BODY,
    HTML_TYPE,
    JSON_TYPE,
    PROMETHEUS_TYPE,
    TEXT_TYPE,
    MetricsSource,
    checked_refresh,
    is_local_client,
    render_html,
    render_json,
    response_headers,
    view_for,
)
from rcache.metrics import aread_server

__all__ = ["Dashboard"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _route_path(scope: Scope) -> str:
    """Return the path below the mount point (Starlette keeps the full path in ``path``)."""
    path: str = scope.get("path", "/")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


def _default_allow(scope: Scope) -> bool:
    client = scope.get("client")
    peer = None if not client else str(client[0])
    names = (bytes(name).decode("latin-1") for name, _ in scope.get("headers", ()))
    return is_local_client(peer, names)


class Dashboard:
    """Serve the dashboard of ``metrics`` (and of the Redis behind ``adapter``, if given).

    ``allow(scope) -> bool``: who may see it; ``None`` = clients on this machine only.
    ``title``: the page heading; ``refresh``: seconds between reloads of the page (0: none).
    """

    def __init__(
        self,
        metrics: MetricsSource,
        adapter: AsyncRedisAdapter | RedisAdapter | None = None,
        *,
        allow: Callable[[Scope], bool] | None = None,
        title: str = "rcache",
        refresh: int = 5,
    ) -> None:
        self.metrics = metrics
        self.adapter = adapter
        self.allow = allow if allow is not None else _default_allow
        self.title = title
        self.refresh = checked_refresh(refresh)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":  # served on its own, not mounted: nothing to start or stop
            await _lifespan(receive, send)
            return
        if kind != "http":
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008})  # policy violation
            return
        head = scope.get("method", "GET") == "HEAD"
        if not self.allow(scope):
            await _respond(send, 403, TEXT_TYPE, FORBIDDEN_BODY, head)
            return
        view = view_for(_route_path(scope))
        if view is None:
            await _respond(send, 404, TEXT_TYPE, b"Not Found\n", head)
        elif scope.get("method", "GET") not in ("GET", "HEAD"):
            await _respond(
                send, 405, TEXT_TYPE, b"Method Not Allowed\n", head, [("Allow", "GET, HEAD")]
            )
        elif view == "metrics":
            body = self.metrics.prometheus().encode("utf-8")
            await _respond(send, 200, PROMETHEUS_TYPE, body, head)
        else:
            snapshot = self.metrics.snapshot()
            server, error = await aread_server(self.adapter)
            if view == "json":
                await _respond(
                    send, 200, JSON_TYPE, render_json(snapshot, server, error=error), head
                )
            else:
                page = render_html(
                    snapshot, server, title=self.title, refresh=self.refresh, error=error
                )
                await _respond(send, 200, HTML_TYPE, page.encode("utf-8"), head)


async def _respond(
    send: Send,
    status: int,
    content_type: str,
    body: bytes,
    head: bool,
    extra: list[tuple[str, str]] | None = None,
) -> None:
    headers = [*response_headers(content_type), *(extra or ()), ("Content-Length", str(len(body)))]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        }
    )
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
