"""The ASGI side of the page cache: scopes and messages in and out, and a response capture.

:class:`Capture` stands between the application and the server for a request the cache
looked up and must answer through the application. It holds ``http.response.start`` and
the body until the response is complete, then hands it to the cache's ``store()`` and sends
what that returns (the stored form: same ``ETag`` and coding as later hits). It never holds
a response longer than it may:

- a response the cache could not store whatever its body (its status, ``no-store``,
  ``private``, ``Set-Cookie``, an event stream, ...) goes out as soon as it starts;
- a body sent in several ``more_body`` chunks is buffered up to the policy's
  ``max_body_bytes`` and for at most ``buffer_timeout`` seconds after the start; past
  either, what was held goes out in one chunk, the rest streams as it comes, and the
  response is not stored;
- any other message (trailers, a ``pathsend``) ends the buffering the same way.

Nothing here decides what may be cached: that is :mod:`rcache.pages`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import quote

from rcache.pages import AsyncPageCache, Headers, LookupResult, Request, Response, storable

__all__ = ["Capture", "Message", "Scope", "Send", "page_request", "send_response"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]

_WAITING, _BUFFERING, _STREAMING, _DONE = "waiting", "buffering", "streaming", "done"
_EVENT_STREAM = "text/event-stream"


def page_request(scope: Scope, *, authenticated: bool) -> Request:
    """Return the page cache's view of an HTTP scope."""
    headers = Headers(
        (bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
        for name, value in scope.get("headers", ())
    )
    host = headers.first("host")
    if host is None:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    raw_path = scope.get("raw_path")
    if raw_path:
        path = bytes(raw_path).decode("latin-1")
    else:
        path = quote(scope.get("path") or "/", safe="/!$&'()*+,:;=@%~")
    return Request(
        method=scope.get("method", "GET"),
        scheme=scope.get("scheme", "http"),
        host=host,
        path=path,
        query_string=bytes(scope.get("query_string", b"")).decode("latin-1"),
        headers=headers,
        is_authenticated=authenticated,
    )


def _raw_headers(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def _headers(message: Message) -> Headers:
    return Headers(
        (bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
        for name, value in message.get("headers", ())
    )


async def send_response(send: Send, response: Response) -> None:
    """Send a complete response: ``http.response.start`` and one body message."""
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": _raw_headers(response.headers),
        }
    )
    await send({"type": "http.response.body", "body": response.body or b""})


class Capture:
    """Hold one response for the cache's ``store()``; see the module docstring.

    ``store_kwargs``: called when the response starts, returns the ``store()`` options
    (the application may have set them while it ran). ``buffering``: False to pass the
    response through at once (its headers still finished by the cache). ``prepare``:
    called with the start headers; returns them as later middleware will send them and
    whether the response may be stored at all (the session's say, for instance).
    """

    def __init__(
        self,
        cache: AsyncPageCache,
        page: Request,
        result: LookupResult,
        send: Send,
        *,
        store_kwargs: Callable[[], Mapping[str, Any]],
        buffering: bool,
        buffer_timeout: float,
        prepare: Callable[[Headers], tuple[Headers, bool]],
    ) -> None:
        self.cache = cache
        self.page = page
        self.result = result
        self._send = send
        self._store_kwargs = store_kwargs
        self._buffering = buffering
        self._buffer_timeout = buffer_timeout
        self._prepare = prepare
        self._state = _WAITING
        self._start: Message = {}
        self._status = 200
        self._response_headers = Headers()
        self._storable = True
        self._kwargs: dict[str, Any] = {}
        self._chunks: list[bytes] = []
        self._size = 0
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._flush: asyncio.Task[None] | None = None

    async def send(self, message: Message) -> None:
        """The ``send`` the application gets."""
        async with self._lock:
            kind = message["type"]
            if self._state == _WAITING and kind == "http.response.start":
                await self._started(message)
            elif self._state == _BUFFERING and kind == "http.response.body":
                await self._body(message)
            elif self._state == _BUFFERING:
                await self._give_up()
                await self._send(message)
            elif self._state == _DONE:
                return  # the response was replaced (a stale copy): drop the rest of it
            else:
                await self._send(message)

    async def _started(self, message: Message) -> None:
        self._start = message
        self._status = int(message["status"])
        self._response_headers, self._storable = self._prepare(_headers(message))
        self._kwargs = dict(self._store_kwargs())
        if not self._storable:
            self._kwargs["ttl"] = 0  # the cache releases the lease and stores nothing
        if self._buffering and self._storable and self._may_be_stored():
            self._state = _BUFFERING
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._buffer_timeout, self._on_timeout)
        else:
            await self._pass_through()

    def _may_be_stored(self) -> bool:
        """Whether the response could be stored by its status and header fields alone."""
        content_type = self._response_headers.get("content-type") or ""
        if content_type.split(";", 1)[0].strip().lower() == _EVENT_STREAM:
            return False
        probe = Response(self._status, self._response_headers, b"")
        allow = self._kwargs.get("allow_set_cookie")
        ok, _ = storable(self.page, probe, self.cache.policy, allow_set_cookie=allow)
        return ok

    async def _body(self, message: Message) -> None:
        chunk = bytes(message.get("body", b""))
        self._chunks.append(chunk)
        self._size += len(chunk)
        if not message.get("more_body", False):
            await self._complete()
        elif self._size > self.cache.policy.max_body_bytes:
            await self._give_up()

    async def _complete(self) -> None:
        """The whole body is here: store it (if it may be) and send the cache's answer."""
        self._cancel_timer()
        self._state = _DONE
        body = b"".join(self._chunks)
        self._chunks.clear()
        response = Response(self._status, self._response_headers, body)
        out = await self.cache.store(self.page, response, self.result, **self._kwargs)
        await send_response(self._send, out)

    async def _pass_through(self) -> None:
        """Send the start at once (finished by the cache) and stream what follows."""
        streaming = Response(self._status, self._response_headers, None)
        out = await self.cache.store(self.page, streaming, self.result, **self._kwargs)
        if out.body is not None:  # a stale copy in place of a failed response
            self._state = _DONE
            await send_response(self._send, out)
            return
        self._state = _STREAMING
        start = dict(self._start)
        start["headers"] = _raw_headers(out.headers)
        await self._send(start)

    async def _give_up(self) -> None:
        """Stop buffering: send what was held and stream the rest; nothing is stored."""
        self._cancel_timer()
        await self._pass_through()
        if self._state == _STREAMING and self._chunks:
            held = b"".join(self._chunks)
            self._chunks.clear()
            await self._send({"type": "http.response.body", "body": held, "more_body": True})

    def _on_timeout(self) -> None:
        self._timer = None
        self._flush = asyncio.ensure_future(self._flush_after_timeout())

    async def _flush_after_timeout(self) -> None:
        async with self._lock:
            if self._state == _BUFFERING:
                await self._give_up()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def finish(self) -> None:
        """After the application returned: wind down a response it left unfinished."""
        self._cancel_timer()
        if self._flush is not None:
            await asyncio.gather(self._flush, return_exceptions=True)
        async with self._lock:
            if self._state == _BUFFERING:  # ended without its last body message
                await self._give_up()
            elif self._state == _WAITING:  # never answered: give the lease back
                self._state = _DONE
                await self.cache.recover(self.page, self.result)

    async def fail(self, exc: BaseException) -> bool:
        """After the application raised: True if a stale copy was sent in its place.

        The lease is given back in any case; a cancellation is never answered.
        """
        self._cancel_timer()
        if self._flush is not None:
            await asyncio.gather(self._flush, return_exceptions=True)
        async with self._lock:
            if self._state in (_STREAMING, _DONE):
                return False  # the server has the start already: the error is the app's
            self._state = _DONE
            stale = await self.cache.recover(self.page, self.result)
            if stale is None or not isinstance(exc, Exception):
                return False
            await send_response(self._send, stale)
            return True
