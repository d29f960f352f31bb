"""Helpers of the messaging tests: :class:`Side` (sync or async facade), ``publish_later``."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.counters import AsyncCounter, AsyncLeaderboard, Counter, Leaderboard
from rcache.messaging import (
    AsyncPublisher,
    AsyncReliableQueue,
    AsyncSubscriber,
    Publisher,
    ReliableQueue,
    Subscriber,
)


class Side:
    """Build sync or async objects and call them through one blocking facade.

    ``side(x)`` returns ``x``, or runs it on the side's private event loop when it is
    awaitable, so ``side(queue.get(timeout=1))`` works for both kinds.
    """

    def __init__(self, kind: str, key_prefix: str) -> None:
        self.kind = kind
        self.key_prefix = key_prefix
        self.loop = asyncio.new_event_loop() if kind == "async" else None
        self._closers: list[Callable[[], Any]] = []

    @property
    def is_async(self) -> bool:
        return self.loop is not None

    def __call__(self, value: Any) -> Any:
        if inspect.isawaitable(value):
            assert self.loop is not None
            return self.loop.run_until_complete(value)  # type: ignore[arg-type]
        return value

    def adapter(self, url: str, **settings: Any) -> RedisAdapter | AsyncRedisAdapter:
        settings.setdefault("key_prefix", self.key_prefix)
        cls = AsyncRedisAdapter if self.is_async else RedisAdapter
        adapter = cls.from_url(url, **settings)
        self._closers.append(adapter.aclose if self.is_async else adapter.close)  # type: ignore[union-attr]
        return adapter

    def subscriber(self, url: str, **options: Any) -> Subscriber | AsyncSubscriber:
        settings = {k: options.pop(k) for k in ("socket_timeout", "client_name") if k in options}
        adapter = self.adapter(url, **settings)
        sub = (AsyncSubscriber if self.is_async else Subscriber)(adapter, **options)
        self._closers.insert(0, sub.aclose if self.is_async else sub.close)  # type: ignore[union-attr]
        return sub

    def publisher(self, url: str, **options: Any) -> Publisher | AsyncPublisher:
        cls = AsyncPublisher if self.is_async else Publisher
        return cls(self.adapter(url), **options)  # type: ignore[arg-type]

    def queue(self, url: str, name: str = "jobs", consumer: str = "c1", **options: Any) -> Any:
        settings = {k: options.pop(k) for k in ("socket_timeout",) if k in options}
        cls = AsyncReliableQueue if self.is_async else ReliableQueue
        return cls(self.adapter(url, **settings), name, consumer, **options)  # type: ignore[arg-type]

    def counter(self, url: str) -> Any:
        return (AsyncCounter if self.is_async else Counter)(self.adapter(url))  # type: ignore[arg-type]

    def leaderboard(self, url: str, name: str) -> Any:
        cls = AsyncLeaderboard if self.is_async else Leaderboard
        return cls(self.adapter(url), name)  # type: ignore[arg-type]

    def close(self) -> None:
        for close in self._closers:
            self(close())
        if self.loop is not None:
            self.loop.close()


def publish_later(
    url: str, channel: str, data: bytes, *, delay: float = 0.0, retry_for: float = 10.0
) -> tuple[threading.Thread, list[Any]]:
    """Publish from a thread (after ``delay`` s) until one subscriber got it.

    Return the thread and a list that receives the PublishResult (or the error).
    """
    out: list[Any] = []

    def run() -> None:
        time.sleep(delay)
        with RedisAdapter.from_url(url, socket_timeout=0.5) as adapter:
            try:
                out.append(
                    Publisher(adapter).publish(channel, data, min_receivers=1, retry_for=retry_for)
                )
            except Exception as exc:  # reported by the test
                out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out
