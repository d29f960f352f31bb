"""Sending requests to the page-cache apps in process, and checking what they answer.

A driver sends ``GET <path>`` with a given ``Accept-Encoding`` through each framework's
in-process machinery: Django's and Flask's test clients, and a direct ASGI call (the scope,
``receive`` and ``send`` an ASGI server gives a GET) in an event loop of the driver's own,
one ``loop.run_until_complete`` per request, as in the sessions suite. Every driver returns
a :class:`Reply`.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench._loop import OwnLoop, asgi_get
from bench._pages_apps import PAGE

__all__ = ["AsgiDriver", "Driver", "Reply", "check_page", "django_driver", "flask_driver"]


@dataclass
class Reply:
    """What came back: the status, the header fields (lowercased names) and the body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


def check_page(reply: Reply, who: str) -> None:
    """Raise AssertionError unless ``reply`` is a 200 carrying :data:`PAGE` (maybe gzip)."""
    if reply.status != 200:
        raise AssertionError(f"{who}: status {reply.status}")
    body = reply.body
    if reply.header("content-encoding") == "gzip":
        body = gzip.decompress(body)
    if body != PAGE:
        raise AssertionError(f"{who}: the body is not the page ({len(body)} bytes)")


Get = Callable[[str, str | None], Reply]


@dataclass
class Driver:
    """``get(path, accept_encoding)``; ``close()`` releases what the app holds."""

    get: Get
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def close(self) -> None:
        while self.closers:
            self.closers.pop()()


def django_driver(client: Any) -> Driver:
    def get(path: str, accept_encoding: str | None) -> Reply:
        extra = {} if accept_encoding is None else {"HTTP_ACCEPT_ENCODING": accept_encoding}
        response = client.get(path, **extra)
        headers = [(k.lower(), v) for k, v in response.items()]
        return Reply(response.status_code, headers, response.content)

    return Driver(get)


def flask_driver(app: Any) -> Driver:
    client = app.test_client(use_cookies=False)

    def get(path: str, accept_encoding: str | None) -> Reply:
        headers = {} if accept_encoding is None else {"Accept-Encoding": accept_encoding}
        response = client.get(path, headers=headers)
        fields = [(k.lower(), v) for k, v in response.headers.items()]
        return Reply(response.status_code, fields, response.get_data())

    return Driver(get, list(app.extensions.get("bench_closers", [])))


class AsgiDriver(OwnLoop):
    """An ASGI app called directly, in an event loop of its own (clients are built in it)."""

    def __init__(self) -> None:
        super().__init__()
        self.app: Any = None

    async def _get(self, path: str, accept_encoding: str | None) -> Reply:
        headers = [(b"host", b"testserver"), (b"user-agent", b"bench"), (b"accept", b"*/*")]
        if accept_encoding is not None:
            headers.append((b"accept-encoding", accept_encoding.encode("latin-1")))
        status, raw, body = await asgi_get(self.app, path, headers)
        fields = [(bytes(k).decode("latin-1").lower(), bytes(v).decode("latin-1")) for k, v in raw]
        return Reply(status, fields, body)

    def get(self, path: str, accept_encoding: str | None) -> Reply:
        return self.run(self._get(path, accept_encoding))

    def driver(self) -> Driver:
        return Driver(self.get, [self.close])
