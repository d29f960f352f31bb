"""Run the same test through the blocking and the asyncio adapter."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.ops import Batch, Op


class Runner:
    """One adapter (sync or async) behind a blocking facade, for driver-agnostic tests."""

    def __init__(self, kind: str, url: str, **settings: Any) -> None:
        self.kind = kind
        self.loop: asyncio.AbstractEventLoop | None = None
        if kind == "sync":
            self.adapter: RedisAdapter | AsyncRedisAdapter = RedisAdapter.from_url(url, **settings)
        else:
            self.loop = asyncio.new_event_loop()
            self.adapter = self._wait(self._make_async(url, settings))

    @staticmethod
    async def _make_async(url: str, settings: dict[str, Any]) -> AsyncRedisAdapter:
        return AsyncRedisAdapter.from_url(url, **settings)

    def _wait(self, coro: Any) -> Any:
        assert self.loop is not None
        return self.loop.run_until_complete(coro)

    def run(self, op: Op[Any]) -> Any:
        if isinstance(self.adapter, RedisAdapter):
            return self.adapter.run(op)
        return self._wait(self.adapter.run(op))

    def execute(self, *command: Any, idempotent: bool = True) -> Any:
        if isinstance(self.adapter, RedisAdapter):
            return self.adapter.execute(*command, idempotent=idempotent)
        return self._wait(self.adapter.execute(*command, idempotent=idempotent))

    def batch(self, batch: Batch) -> list[Any]:
        if isinstance(self.adapter, RedisAdapter):
            return self.adapter.execute_batch(batch)
        return self._wait(self.adapter.execute_batch(batch))  # type: ignore[no-any-return]

    def close(self) -> None:
        if isinstance(self.adapter, RedisAdapter):
            self.adapter.close()
        else:
            self._wait(self.adapter.aclose())
            assert self.loop is not None
            self.loop.close()


@pytest.fixture(params=["sync", "async"])
def make_runner(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Return ``make(url, **settings) -> Runner``; every runner is closed after the test."""
    made: list[Runner] = []

    def make(url: str, **settings: Any) -> Runner:
        runner = Runner(request.param, url, **settings)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        runner.close()
