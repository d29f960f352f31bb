"""Helpers to run the same page-cache test through PageCache and AsyncPageCache.

A :class:`PagesHarness` is a page cache behind a blocking facade (the async cache runs on the
harness's own event loop). Views are plain callables wrapped by :class:`View`, which counts
calls and becomes a blocking function for the sync cache and an ``async def`` for the async
one. No web framework is involved: requests and responses are :mod:`rcache.pages` values.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

from rcache.pages import AsyncPageCache, Headers, PageCache, Request, Response

HOST = "example.com"


def space_prefix(key_prefix: str) -> str:
    """Turn the suite's ``key_prefix`` into a page-cache prefix (one non-integer segment)."""
    return "pg-" + key_prefix.strip(":").replace(":", "-")


def request(
    path: str = "/",
    *headers: tuple[str, str],
    method: str = "GET",
    query: str = "",
    host: str = HOST,
    authenticated: bool = False,
) -> Request:
    """Return a request for ``path`` with the given header fields."""
    return Request(method, "https", host, path, query, Headers(headers), authenticated)


def page(
    body: bytes | None = b"<html>hello</html>",
    *headers: tuple[str, str],
    status: int = 200,
    content_type: str = "text/html; charset=utf-8",
) -> Response:
    """Return a response with a Content-Type and the given header fields."""
    return Response(status, Headers([("Content-Type", content_type), *headers]), body)


class View:
    """A plain view: returns ``make(request)`` (or a fixed response), counting its calls.

    ``delay`` seconds are slept first (``time.sleep`` or ``asyncio.sleep``). ``make`` may
    raise; the exception then comes out of the view.
    """

    def __init__(self, make: Response | Callable[[Request], Response], delay: float = 0.0):
        self.make = make if callable(make) else (lambda _request: make)
        self.delay = delay
        self.calls = 0
        self.requests: list[Request] = []
        self._lock = threading.Lock()

    def _count(self, req: Request) -> None:
        with self._lock:
            self.calls += 1
            self.requests.append(req)

    def sync(self, req: Request) -> Response:
        self._count(req)
        if self.delay:
            time.sleep(self.delay)
        return self.make(req)

    async def asynchronous(self, req: Request) -> Response:
        self._count(req)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.make(req)


class PagesHarness:
    """One page cache (sync or async) behind a blocking facade."""

    def __init__(self, kind: str, url: str, **options: Any) -> None:
        self.kind = kind
        self.loop: asyncio.AbstractEventLoop | None = None
        self.offset = 0.0
        if kind == "sync":
            self.cache: PageCache | AsyncPageCache = PageCache.from_url(url, **options)
        else:
            self.loop = asyncio.new_event_loop()
            self.cache = self.wait(self._make_async(url, options))
        self.cache._ctx.clock = lambda: time.time() + self.offset

    @staticmethod
    async def _make_async(url: str, options: dict[str, Any]) -> AsyncPageCache:
        return AsyncPageCache.from_url(url, **options)

    def wait(self, coro: Any) -> Any:
        assert self.loop is not None
        return self.loop.run_until_complete(coro)

    def resolve(self, value: Any) -> Any:
        """Return ``value``, awaited on the harness's loop if it is awaitable."""
        return self.wait(value) if inspect.isawaitable(value) else value

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.cache, name)
        if not callable(attr) or not inspect.iscoroutinefunction(attr):
            return attr
        return lambda *args, **kwargs: self.wait(attr(*args, **kwargs))

    def advance(self, seconds: float) -> None:
        """Move the cache's clock ``seconds`` ahead (entries age; Redis TTLs do not)."""
        self.offset += seconds

    def view_for(self, view: View) -> Callable[[Request], Any]:
        return view.sync if self.kind == "sync" else view.asynchronous

    def handle(self, req: Request, view: View, **options: Any) -> Response:
        return self.resolve(self.cache.handle(req, self.view_for(view), **options))  # type: ignore[no-any-return]

    def concurrently(self, n: int, req: Request, view: View, **options: Any) -> list[Any]:
        """Handle ``req`` ``n`` times at once (threads or tasks); responses or exceptions."""
        fn = self.view_for(view)
        cache = self.cache
        if isinstance(cache, AsyncPageCache):

            async def gather() -> list[Any]:
                calls = (cache.handle(req, fn, **options) for _ in range(n))
                return await asyncio.gather(*calls, return_exceptions=True)

            return self.wait(gather())  # type: ignore[no-any-return]
        results: list[Any] = [None] * n
        barrier = threading.Barrier(n)

        def worker(i: int) -> None:
            barrier.wait()
            try:
                results[i] = cache.handle(req, fn, **options)
            except Exception as exc:
                results[i] = exc

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    @property
    def stats(self) -> Any:
        return self.cache.adapter.stats

    def close(self) -> None:
        if isinstance(self.cache, PageCache):
            self.cache.close()
        else:
            self.wait(self.cache.aclose())
            assert self.loop is not None
            self.loop.close()


def x_cache(resp: Response) -> str | None:
    """Return the X-Cache value of ``resp``."""
    return resp.headers.get("x-cache")


def on_the_wire(raw: Any, action: Callable[[], Any]) -> tuple[Any, dict[str, int], int]:
    """Run ``action``; return its result, the commands Redis ran and the reads it processed.

    ``raw`` is a client of the server. Commands count those a Lua script runs; the INFO
    that reads the counters afterwards is left out of both counts, so ``reads`` is the
    number of times clients' requests reached the server: one per round trip.
    """
    before = raw.execute_command("INFO", "stats", "commandstats")
    result = action()
    after = raw.execute_command("INFO", "stats", "commandstats")
    calls = {
        name.removeprefix("cmdstat_"): stats["calls"] - before.get(name, {"calls": 0})["calls"]
        for name, stats in after.items()
        if name.startswith("cmdstat_")
    }
    calls["info"] -= 1
    reads = after["total_reads_processed"] - before["total_reads_processed"] - 1
    return result, {name: n for name, n in calls.items() if n}, reads
