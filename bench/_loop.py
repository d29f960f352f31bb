"""An event loop of a benchmark's own, for ASGI apps called directly (no server)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["OwnLoop"]

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
