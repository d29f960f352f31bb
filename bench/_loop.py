"""An event loop of a benchmark's own, and a GET sent to an ASGI app directly (no server)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["OwnLoop", "asgi_get"]

T = TypeVar("T")


class OwnLoop:
    """An event loop made at construction; the app's asyncio clients are built inside it.

    ``closers`` are coroutine functions run (last first) by :meth:`close`, before the loop
    itself is closed.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.closers: list[Callable[[], Coroutine[Any, Any, Any]]] = []

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def build(self, make: Callable[[], T]) -> T:
        """Call ``make()`` inside the loop (asyncio clients bind to the loop they start in)."""

        async def inside() -> T:
            return make()

        return self.run(inside())

    def close(self) -> None:
        while self.closers:
            self.run(self.closers.pop()())
        self.loop.close()


_REQUEST = {"type": "http.request", "body": b"", "more_body": False}
_DISCONNECT = {"type": "http.disconnect"}

RawHeaders = list[tuple[bytes, bytes]]


async def asgi_get(app: Any, path: str, headers: RawHeaders) -> tuple[int, RawHeaders, bytes]:
    """Call ``app`` with the GET an ASGI server would pass on; return (status, headers, body).

    The scope is a GET of ``path`` on ``http://testserver`` from 127.0.0.1 with ``headers``
    (raw, as a server passes them: give the ``host`` header too).
    """
    status = 0
    sent: RawHeaders = []
    body = b""
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            return _DISCONNECT
        received = True
        return _REQUEST

    async def send(message: Any) -> None:
        nonlocal status, sent, body
        if message["type"] == "http.response.start":
            status = message["status"]
            sent = list(message.get("headers", ()))
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("ascii"),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    return status, sent, body
