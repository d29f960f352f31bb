"""The decorated functions of the object-cache suite: one per library, counting its calls.

Each function returns the suite's 100 B value. Warming calls it twice (a miss, then a hit)
and checks that the hit did not run it; :meth:`DecoratedFunctions.check` reports, at the
end, any function that ran again (a timed call that missed).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import Any

from bench._peers import TTL, AsyncPeers, SyncPeers, check_hit, value_of

__all__ = ["ARG", "Calls", "DecoratedFunctions"]

ARG = 42  # the argument every decorated function is called with


class Calls:
    """Counts the calls of a decorated function: more than one means a timed miss."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.count = 0

    def check(self) -> None:
        if self.count != 1:
            print(
                f"objects suite: {self.who} ran {self.count} times (expected once): "
                "some timed calls were misses",
                file=sys.stderr,
            )


class DecoratedFunctions:
    """The decorated functions, one per library, built and warmed on first use.

    Each returns the 100 B value and counts its calls; warming calls it twice (a miss,
    then a hit) and checks the hit did not run it. A library's function is shared by
    every group that times it (cashews: the sync and the async group).
    """

    def __init__(self, sync: SyncPeers, aio: AsyncPeers) -> None:
        self.sync, self.aio = sync, aio
        self.value = value_of(100)
        self.counters: list[Calls] = []

    def _warm(self, call: Callable[[], Any], who: str, counter: Calls) -> None:
        check_hit(call(), self.value, who)
        check_hit(call(), self.value, who)
        if counter.count != 1:
            raise AssertionError(f"{who}: the second call was not a hit")
        self.counters.append(counter)

    @cached_property
    def rcache(self) -> Callable[[int], str]:
        counter, value = Calls("rcache @cached"), self.value

        @self.sync.rcache.cached(ttl=TTL)
        def product(product_id: int) -> str:
            counter.count += 1
            return value

        self._warm(lambda: product(ARG), counter.who, counter)
        return product

    @cached_property
    def flask_caching(self) -> Callable[[int], str]:
        counter, value = Calls("Flask-Caching @memoize"), self.value

        @self.sync.flask_caching.memoize(timeout=TTL)
        def product(product_id: int) -> str:
            counter.count += 1
            return value

        self._warm(lambda: product(ARG), counter.who, counter)
        return product

    @cached_property
    def rcache_async(self) -> Callable[[int], Awaitable[str]]:
        counter, value = Calls("rcache AsyncObjectCache.cached"), self.value

        @self.aio.rcache.cached(ttl=TTL)
        async def product(product_id: int) -> str:
            counter.count += 1
            return value

        self._warm(lambda: self.aio.run(product(ARG)), counter.who, counter)
        return product

    @cached_property
    def cashews(self) -> Callable[[int], Awaitable[str]]:
        counter, value = Calls("cashews @cache"), self.value

        @self.aio.cashews(ttl=TTL)
        async def product(product_id: int) -> str:
            counter.count += 1
            return value

        self._warm(lambda: self.aio.run(product(ARG)), counter.who, counter)
        return product

    def check(self) -> None:
        """Report every function that ran again after warming (a timed miss)."""
        for counter in self.counters:
            counter.check()
