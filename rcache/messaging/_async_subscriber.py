"""``AsyncSubscriber``: the asyncio driver of the subscriber loop (see ``_subscriber``)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.exceptions as rex

from rcache.adapter import AsyncRedisAdapter, translate_error
from rcache.config import RedisSettings
from rcache.errors import BackendUnavailable
from rcache.messaging._machine import (
    CHECK_MASTER,
    CONNECT,
    FLUSH,
    RUN_HOOKS,
    Drop,
    Effect,
    Message,
    Pause,
    Read,
)
from rcache.messaging._subscriber import (
    _IO_ERRORS,
    Loop,
    _backend_error,
    _closed_error,
    _encode,
    _SubscriberBase,
    logger,
)
from rcache.ops import Command

__all__ = ["AsyncSubscriber"]


class AsyncSubscriber(_SubscriberBase):
    """Receive pub/sub messages from asyncio code; see :class:`Subscriber`.

    The same options; ``on_reconnect`` hooks may be plain or async callables.

    ::

        async with AsyncSubscriber(adapter, on_reconnect=[flush]) as sub:
            await sub.subscribe("invalidate")
            async for message in sub:
                ...
    """

    def _setup(self) -> None:
        self._adapters: list[AsyncRedisAdapter | None] = [None] * len(self._endpoints)
        self._io = asyncio.Lock()
        self._send = asyncio.Lock()
        self._wake = asyncio.Event()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AsyncSubscriber:
        """Build a subscriber from a Redis URL (settings in the URL, options as keywords)."""
        return cls(RedisSettings.from_url(url), **options)

    async def subscribe(self, *channels: str | bytes) -> None:
        """Subscribe to ``channels``; return once Redis confirmed (or could not be reached)."""
        await self._change(self._m.want, "channels", channels)

    async def psubscribe(self, *patterns: str | bytes) -> None:
        """Subscribe to glob-style ``patterns`` (``news.*``)."""
        await self._change(self._m.want, "patterns", patterns)

    async def unsubscribe(self, *channels: str | bytes) -> None:
        """Stop receiving from ``channels``."""
        await self._change(self._m.unwant, "channels", channels)

    async def punsubscribe(self, *patterns: str | bytes) -> None:
        """Stop receiving from ``patterns``."""
        await self._change(self._m.unwant, "patterns", patterns)

    async def _change(
        self, apply: Callable[[str, list[bytes]], None], kind: str, names: Any
    ) -> None:
        apply(kind, _encode(names))
        self._wake.set()
        if self._m.closed:
            return
        if not self._io.locked():
            async with self._io:
                await self._drive(self._settle())
            return
        async with self._send:  # another task is reading: it takes the confirmation in
            if self._conn is not None:
                try:
                    await self._write(self._conn, self._m.take_sends(time.monotonic()))
                except Exception:
                    logger.debug("could not send a pub/sub change", exc_info=True)

    async def get_message(self, timeout: float | None = None) -> Message | None:
        """Return the next message, waiting up to ``timeout`` s (None = until one comes).

        Return None when the time is up or the subscriber is closed.
        """
        if not self._m.ready and not self._m.closed:
            async with self._io:
                await self._drive(self._receive(timeout))
        return self._pop()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self

    async def __anext__(self) -> Message:
        message = await self.get_message()
        if message is None:
            raise StopAsyncIteration
        return message

    async def aclose(self) -> None:
        """Close the connection; a reader in another task returns soon."""
        self._m.close()
        self._wake.set()
        await self._release()

    async def __aenter__(self) -> AsyncSubscriber:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the driver ------------------------------------------------------------------------

    async def _drive(self, loop: Loop) -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    effect = loop.throw(error) if error is not None else loop.send(result)
                except StopIteration:
                    return
                result, error = None, None
                try:
                    result = await self._do(effect)
                except _IO_ERRORS as exc:
                    error = _backend_error(exc)
                except Exception:
                    if not self._m.closed:
                        raise
                    error = _closed_error()
        finally:
            loop.close()
            if self._m.closed:
                await self._release()

    async def _do(self, effect: Effect) -> Any:
        kind = type(effect)
        if kind is Read:
            return await self._read(effect.seconds)  # type: ignore[union-attr]
        if kind is Pause:
            try:
                await asyncio.wait_for(self._wake.wait(), effect.seconds)  # type: ignore[union-attr]
            except TimeoutError:
                pass
            self._wake.clear()
        elif kind is Drop:
            await self._disconnect()
        elif effect is FLUSH:
            async with self._send:
                await self._write(self._live(), self._m.take_sends(time.monotonic()))
        elif effect is CONNECT:
            await self._connect()
        elif effect is RUN_HOOKS:
            for hook in list(self.on_reconnect):
                try:
                    result = hook()
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    self._hook_failed()
        elif effect is CHECK_MASTER:
            return await self._master_moved()
        return None

    def _live(self) -> Any:
        conn = self._conn
        if conn is None:
            raise _closed_error() if self._m.closed else BackendUnavailable("not connected")
        return conn

    async def _read(self, seconds: float) -> Any:
        conn = self._live()
        try:
            return await conn.read_response(
                timeout=seconds, disconnect_on_error=False, push_request=True
            )
        except rex.ResponseError as exc:
            return translate_error(exc)

    @staticmethod
    async def _write(conn: Any, commands: list[Command]) -> None:
        if commands:
            await conn.send_packed_command(conn.pack_commands(commands), check_health=False)

    async def _connect(self) -> None:
        await self._disconnect()
        i = self._next_endpoint()
        conn = self._conns[i]
        if conn is None:
            adapter = self._adapters[i] = AsyncRedisAdapter(self._endpoints[i])
            conn = self._conns[i] = adapter.client.connection_pool.make_connection()
        await conn.connect()
        if self._m.closed:
            await conn.disconnect(nowait=True)
            raise _closed_error()
        self._conn, self._current = conn, i

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.disconnect(nowait=True)
            except Exception:
                logger.debug("error while closing a pub/sub connection", exc_info=True)

    async def _master_moved(self) -> bool:
        conn, i = self._conn, self._current
        adapter = None if i is None else self._adapters[i]
        if conn is None or adapter is None:
            return False
        host, port = await adapter.client.connection_pool.get_master_address()
        return (str(host), int(port)) != (str(conn.host), int(conn.port))

    async def _release(self) -> None:
        await self._disconnect()
        for i, conn in enumerate(self._conns):
            if conn is not None:
                try:
                    await conn.disconnect(nowait=True)
                except Exception:
                    logger.debug("error while closing a pub/sub connection", exc_info=True)
            adapter, self._adapters[i] = self._adapters[i], None
            if adapter is not None:
                await adapter.aclose()
