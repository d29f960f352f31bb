"""Carry out the listener's effects: a daemon thread (blocking caches) or an asyncio task.

Both run :func:`rcache.objects._local_listen.listen` over one dedicated RESP2 connection
opened from the adapter's settings (TCP, unix socket, TLS, ACL user, db; a Sentinel
master is resolved at each connect and checked every health-check interval). Errors from
redis-py become :class:`~rcache.errors.BackendError` here before the loop sees them. If
the driver ends for any reason, including a bug, the store is switched to bypass, so a
dead listener can never leave stale entries being served; the next read starts a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

import redis.exceptions as rex

from rcache._clients import async_client, sync_client
from rcache.adapter import translate_error
from rcache.config import RedisSettings
from rcache.errors import BackendError, BackendUnavailable
from rcache.objects._local_listen import (
    CHECK_MASTER,
    CONNECT,
    Drop,
    Effect,
    Listener,
    Pause,
    Read,
    Send,
    listen,
)

__all__ = ["TaskDriver", "ThreadDriver"]

logger = logging.getLogger("rcache.objects")

_IO_ERRORS = (rex.RedisError, OSError, TimeoutError)


def _error(exc: BaseException) -> BackendError:
    err = translate_error(exc)
    if not isinstance(err, BackendError):
        err = BackendUnavailable(str(err))
    err.__cause__ = exc
    return err


def _own_settings(settings: RedisSettings) -> RedisSettings:
    return settings.replace(max_connections=1, health_check_interval=0.0)


def _resp2(client: Any) -> Any:
    """Return the pool of ``client``, set to make RESP2 connections (pub/sub delivery)."""
    pool = client.connection_pool
    pool.connection_kwargs["protocol"] = 2
    return pool


class ThreadDriver:
    """Run the listener in a daemon thread (for :class:`~rcache.objects.ObjectCache`)."""

    def __init__(self, listener: Listener, settings: RedisSettings) -> None:
        self._m = listener
        self._client = sync_client(_own_settings(settings))
        self._pool = _resp2(self._client)
        self._conn: Any = None  # the connection while it is open
        self._made: Any = None
        self._guard = threading.Lock()  # connect versus close
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rcache-local-tier", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the listener; the connection is closed at once, the thread joined."""
        self._m.closed = True
        self._wake.set()
        self._disconnect()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._client.close()

    def _run(self) -> None:
        loop = listen(self._m)
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
                    result = self._do(effect)
                except _IO_ERRORS as exc:
                    error = _error(exc)
                except Exception as exc:
                    if not self._m.closed:
                        raise
                    error = BackendUnavailable(f"closed ({exc!r})")
        except Exception:
            logger.exception("local tier: the invalidation listener failed; bypassing")
        finally:
            loop.close()
            self._m.store.go_down(lost=False)
            self._disconnect()

    def _do(self, effect: Effect) -> Any:
        kind = type(effect)
        if kind is Read:
            conn = self._live()
            if not conn.can_read(timeout=effect.seconds):  # type: ignore[union-attr]
                return None
            try:
                return conn.read_response(disconnect_on_error=False)
            except rex.ResponseError as exc:
                return translate_error(exc)
        if kind is Send:
            conn = self._live()
            packed = conn.pack_commands(effect.commands)  # type: ignore[union-attr]
            conn.send_packed_command(packed, check_health=False)
        elif kind is Pause:
            self._wake.wait(effect.seconds)  # type: ignore[union-attr]
        elif kind is Drop:
            self._disconnect()
        elif effect is CONNECT:
            self._connect()
        elif effect is CHECK_MASTER:
            conn = self._live()
            host, port = self._pool.get_master_address()
            return (str(host), int(port)) != (str(conn.host), int(conn.port))
        return None

    def _live(self) -> Any:
        conn = self._conn
        if conn is None or self._m.closed:
            raise BackendUnavailable("the local tier was closed")
        return conn

    def _connect(self) -> None:
        self._disconnect()
        if self._made is None:  # one connection object, reconnected each time
            self._made = self._pool.make_connection()
        conn = self._made
        conn.connect()
        with self._guard:
            if self._m.closed:
                conn.disconnect()
                raise BackendUnavailable("the local tier was closed")
            self._conn = conn

    def _disconnect(self) -> None:
        with self._guard:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.disconnect()
            except Exception:
                logger.debug("local tier: error closing the connection", exc_info=True)


class TaskDriver:
    """Run the listener as a task on the running event loop (for ``AsyncObjectCache``)."""

    def __init__(self, listener: Listener, settings: RedisSettings) -> None:
        self._m = listener
        self._client = async_client(_own_settings(settings))
        self._pool = _resp2(self._client)
        self._conn: Any = None  # the connection while it is open
        self._made: Any = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start the task on the running loop (call from a coroutine on that loop)."""
        self.loop = asyncio.get_running_loop()
        self._task = self.loop.create_task(self._run(), name="rcache-local-tier")

    def is_alive(self) -> bool:
        loop, task = self.loop, self._task
        return task is not None and not task.done() and loop is not None and not loop.is_closed()

    async def aclose(self) -> None:
        """Stop the task and close the connection."""
        self._m.closed = True
        self._wake.set()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._disconnect()
        await self._client.aclose()

    async def _run(self) -> None:
        loop = listen(self._m)
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
                    error = _error(exc)
        except Exception:
            logger.exception("local tier: the invalidation listener failed; bypassing")
        finally:
            loop.close()
            self._m.store.go_down(lost=False)
            with contextlib.suppress(Exception):
                await self._disconnect()

    async def _do(self, effect: Effect) -> Any:
        kind = type(effect)
        if kind is Read:
            try:
                return await self._live().read_response(
                    timeout=effect.seconds,  # type: ignore[union-attr]
                    disconnect_on_error=False,
                )
            except rex.ResponseError as exc:
                return translate_error(exc)
        if kind is Send:
            conn = self._live()
            packed = conn.pack_commands(effect.commands)  # type: ignore[union-attr]
            await conn.send_packed_command(packed, check_health=False)
        elif kind is Pause:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), effect.seconds)  # type: ignore[union-attr]
        elif kind is Drop:
            await self._disconnect()
        elif effect is CONNECT:
            await self._disconnect()
            if self._made is None:  # one connection object, reconnected each time
                self._made = self._pool.make_connection()
            conn = self._made
            await conn.connect()
            self._conn = conn
        elif effect is CHECK_MASTER:
            conn = self._live()
            host, port = await self._pool.get_master_address()
            return (str(host), int(port)) != (str(conn.host), int(conn.port))
        return None

    def _live(self) -> Any:
        if self._conn is None:
            raise BackendUnavailable("not connected")
        return self._conn

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.disconnect(nowait=True)
            except Exception:
                logger.debug("local tier: error closing the connection", exc_info=True)
