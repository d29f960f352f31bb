"""Helpers to run the same object-cache test through ObjectCache and AsyncObjectCache.

A :class:`CacheHarness` is a cache behind a blocking facade (async methods run on the
harness's own event loop), with helpers to decorate a plain implementation as a sync or an
async function and to call something concurrently (threads for the sync cache, asyncio
tasks for the async one)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

from rcache.objects import AsyncObjectCache, ObjectCache


def space_prefix(key_prefix: str) -> str:
    """Turn the suite's ``key_prefix`` into a KeySpace prefix (one non-integer segment)."""
    return key_prefix.strip(":").replace(":", "-")


class Counter:
    """A thread-safe call counter for implementations of decorated functions."""

    def __init__(self) -> None:
        self.n = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self.n += 1
            return self.n


class Decorated:
    """A decorated function behind a blocking facade."""

    def __init__(self, harness: CacheHarness, fn: Any) -> None:
        self.harness = harness
        self.fn = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.harness.resolve(self.fn(*args, **kwargs))

    def invalidate(self, *args: Any, **kwargs: Any) -> Any:
        return self.harness.resolve(self.fn.invalidate(*args, **kwargs))

    def refresh(self, *args: Any, **kwargs: Any) -> Any:
        return self.harness.resolve(self.fn.refresh(*args, **kwargs))

    def key_for(self, *args: Any, **kwargs: Any) -> str:
        return str(self.fn.key_for(*args, **kwargs))

    def redis_key(self, *args: Any, **kwargs: Any) -> str:
        return self.harness.cache.make_key(self.key_for(*args, **kwargs))

    def concurrently(self, n: int, *args: Any) -> list[Any]:
        """Call the function ``n`` times at once; return results (or exceptions) in order."""
        return self.harness.concurrently(n, lambda: self.fn(*args))


class CacheHarness:
    """One cache (sync or async) behind a blocking facade."""

    def __init__(self, kind: str, url: str, **options: Any) -> None:
        self.kind = kind
        self.loop: asyncio.AbstractEventLoop | None = None
        if kind == "sync":
            self.cache: ObjectCache | AsyncObjectCache = ObjectCache.from_url(url, **options)
        else:
            self.loop = asyncio.new_event_loop()
            self.cache = self.wait(self._make_async(url, options))

    @staticmethod
    async def _make_async(url: str, options: dict[str, Any]) -> AsyncObjectCache:
        return AsyncObjectCache.from_url(url, **options)

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

    @property
    def stats(self) -> Any:
        return self.cache.adapter.stats

    def iter_keys(self, pattern: str = "*") -> list[str]:
        if isinstance(self.cache, ObjectCache):
            return list(self.cache.iter_keys(pattern))
        cache = self.cache

        async def collect() -> list[str]:
            return [k async for k in cache.iter_keys(pattern)]

        return self.wait(collect())  # type: ignore[no-any-return]

    def decorate(
        self, impl: Callable[..., Any], *, delay: float = 0.0, **options: Any
    ) -> Decorated:
        """Decorate ``impl`` as a sync or async function (sleeping ``delay`` s first)."""
        if self.kind == "sync":

            @functools.wraps(impl)
            def fn(*args: Any, **kwargs: Any) -> Any:
                if delay:
                    time.sleep(delay)
                return impl(*args, **kwargs)

        else:

            @functools.wraps(impl)  # type: ignore[no-redef]
            async def fn(*args: Any, **kwargs: Any) -> Any:
                if delay:
                    await asyncio.sleep(delay)
                return impl(*args, **kwargs)

        return Decorated(self, self.cache.cached(**options)(fn))

    def concurrently(self, n: int, call: Callable[[], Any]) -> list[Any]:
        """Run ``call()`` ``n`` times at once (threads or tasks); results or exceptions."""
        if self.kind == "async":

            async def gather() -> list[Any]:
                return await asyncio.gather(*(call() for _ in range(n)), return_exceptions=True)

            return self.wait(gather())  # type: ignore[no-any-return]
        results: list[Any] = [None] * n
        barrier = threading.Barrier(n)

        def worker(i: int) -> None:
            barrier.wait()
            try:
                results[i] = call()
            except Exception as exc:
                results[i] = exc

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    def close(self) -> None:
        if isinstance(self.cache, ObjectCache):
            self.cache.close()
        else:
            self.wait(self.cache.aclose())
            assert self.loop is not None
            self.loop.close()
