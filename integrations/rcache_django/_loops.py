"""One blocking backend per process, one asyncio backend per event loop.

Django runs async views on more than one event loop (one per request under WSGI, through
``async_to_sync``; one per server under ASGI), and an asyncio adapter belongs to the loop
that uses it. :class:`PerLoop` builds the asyncio backend of each loop on first use and
closes it with that loop (an async generator the loop finalizes in
``shutdown_asyncgens()``), and builds the blocking backend once. ``reset()`` (a setting
changed) drops them all; a backend still in use by a running loop is closed by that loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Callable
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["PerLoop"]


class _Backend(Protocol):
    @property
    def adapter(self) -> Any: ...


C = TypeVar("C")
S = TypeVar("S", bound=_Backend)
A = TypeVar("A", bound=_Backend)


async def _close_with_loop(backend: _Backend) -> AsyncGenerator[None, None]:
    """Stay suspended until the loop shuts down its async generators; then close."""
    try:
        yield
    finally:
        await backend.adapter.aclose()


class PerLoop(Generic[C, S, A]):
    """The process-wide blocking backend and the per-event-loop asyncio backends."""

    def __init__(
        self,
        load_config: Callable[[], C],
        build_sync: Callable[[C], S],
        build_async: Callable[[C], A],
    ) -> None:
        self._load_config = load_config
        self._build_sync = build_sync
        self._build_async = build_async
        self._lock = threading.Lock()
        self._config: C | None = None
        self._sync: S | None = None
        # loop -> (backend, the generator that closes it). The references keep each closer
        # alive until its loop shuts it down; backends dropped by reset() while their loop
        # still runs wait in _retired for that, so a request using one is not cut off.
        self._async: dict[asyncio.AbstractEventLoop, tuple[A, AsyncGenerator[None, None]]] = {}
        self._retired: list[tuple[asyncio.AbstractEventLoop, tuple[A, Any]]] = []

    def config(self) -> C:
        """Return the configuration (read from the settings on first use)."""
        config = self._config
        if config is None:
            config = self._config = self._load_config()
        return config

    def sync(self) -> S:
        """Return the blocking backend (built on first use)."""
        backend = self._sync
        if backend is not None:
            return backend
        with self._lock:
            if self._sync is None:
                self._sync = self._build_sync(self.config())
            return self._sync

    async def async_(self) -> A:
        """Return the asyncio backend of the running event loop (built on first use)."""
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is not None:
            return entry[0]
        backend = self._build_async(self.config())
        closer = _close_with_loop(backend)
        await anext(closer)  # now tracked by the loop: closed by shutdown_asyncgens()
        with self._lock:
            self._forget_closed_loops()
            self._async[loop] = (backend, closer)
        return backend

    def _forget_closed_loops(self) -> None:
        for old in [lp for lp in self._async if lp.is_closed()]:
            del self._async[old]
        self._retired = [(lp, entry) for lp, entry in self._retired if not lp.is_closed()]

    def reset(self) -> None:
        """Drop every backend (the settings changed); each loop still closes its own."""
        with self._lock:
            sync, self._sync = self._sync, None
            self._config = None
            self._retired.extend(self._async.items())
            self._async.clear()
            self._forget_closed_loops()
        if sync is not None:
            sync.adapter.close()
