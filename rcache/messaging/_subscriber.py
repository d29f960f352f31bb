"""``Subscriber``: pub/sub that reconnects and resubscribes by itself (blocking code).

Both drive the same loop (:func:`rcache.messaging._pump.pump`) over their own dedicated
connection, opened from the adapter's settings (TLS, ACL user, db, Sentinel master
resolution; on Cluster, one node of the URL at a time). What they add is I/O only:
open and close the connection, send what the machine says, read with a timeout, wait,
call the hooks. ``redis.exceptions`` become :class:`~rcache.errors.BackendError` here
before the loop sees them.

Threads and tasks: iterate (or call ``get_message``) from one thread or task at a time.
``subscribe()`` and friends may be called from anywhere; while another thread or task is
reading, they only send the command and the reader takes the confirmation in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import redis.exceptions as rex

from rcache.adapter import AsyncRedisAdapter, RedisAdapter, translate_error
from rcache.codecs import Codec
from rcache.config import RedisSettings
from rcache.errors import BackendError, BackendUnavailable, ConfigurationError
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
    SubscriberStats,
    SubscriptionMachine,
)
from rcache.messaging._pump import pump
from rcache.ops import Command
from rcache.resilience import Backoff

__all__ = ["Subscriber"]

logger = logging.getLogger("rcache.messaging")

Loop = Generator[Effect, Any, None]
_IO_ERRORS = (rex.RedisError, OSError, TimeoutError)


def _settings_of(source: RedisAdapter | AsyncRedisAdapter | RedisSettings) -> RedisSettings:
    return source if isinstance(source, RedisSettings) else source.settings


def _endpoints(settings: RedisSettings) -> list[RedisSettings]:
    """Return where the dedicated connection may go: one target, or each Cluster node."""
    own = {"health_check_interval": 0.0, "max_connections": 1}
    if settings.mode == "cluster":  # PUBLISH reaches every node of a Cluster
        return [settings.replace(mode="standalone", hosts=(h,), **own) for h in settings.hosts]
    return [settings.replace(**own)]


def _encode(names: Iterable[str | bytes]) -> list[bytes]:
    out = []
    for name in names:
        if isinstance(name, str):
            out.append(name.encode("utf-8"))
        elif isinstance(name, bytes):
            out.append(name)
        else:
            raise TypeError(f"a channel or pattern must be str or bytes, not {type(name).__name__}")
    return out


def _backend_error(exc: BaseException) -> BackendError:
    err = translate_error(exc)
    if not isinstance(err, BackendError):
        err = BackendUnavailable(str(err))
    err.__cause__ = exc
    return err


def _closed_error() -> BackendUnavailable:
    return BackendUnavailable("the subscriber was closed")


class _SubscriberBase:
    """Options and state shared by both drivers (no I/O)."""

    def __init__(
        self,
        adapter: RedisAdapter | AsyncRedisAdapter | RedisSettings,
        *,
        codec: Codec | None = None,
        health_check_interval: float = 5.0,
        reply_timeout: float | None = None,
        backoff: Backoff | None = None,
        on_reconnect: Iterable[Callable[[], Any]] = (),
        raise_on_disconnect: bool = False,
    ) -> None:
        settings = _settings_of(adapter)
        if health_check_interval < 0:
            raise ConfigurationError("health_check_interval must be >= 0 seconds (0 = never)")
        if reply_timeout is None:
            reply_timeout = settings.socket_timeout or 1.0
        if reply_timeout <= 0:
            raise ConfigurationError("reply_timeout must be > 0 seconds")
        if backoff is None:
            backoff = Backoff(base=settings.retry_backoff_base, cap=settings.retry_backoff_cap)
        self.settings = settings
        self.codec = codec
        self.raise_on_disconnect = raise_on_disconnect
        self.on_reconnect: list[Callable[[], Any]] = list(on_reconnect)
        self._m = SubscriptionMachine(
            backoff=backoff,
            health_check_interval=health_check_interval,
            reply_timeout=reply_timeout,
            check_master=settings.mode == "sentinel",
            decode=None if codec is None else codec.decode,
        )
        self._endpoints = _endpoints(settings)
        self._conns: list[Any] = [None] * len(self._endpoints)
        self._current: int | None = None  # index of the endpoint self._conn belongs to
        self._conn: Any = None
        self._setup()

    def _setup(self) -> None:
        """Create the driver's locks and clients."""
        raise NotImplementedError

    @property
    def connected(self) -> bool:
        """True while subscribed and delivering; False while (re)connecting or closed."""
        return self._m.connected

    @property
    def closed(self) -> bool:
        """True once ``close()``/``aclose()`` was called."""
        return self._m.closed

    @property
    def stats(self) -> SubscriberStats:
        """Counters: connects, reconnects, disconnects, messages, pings, last_outage, ..."""
        return self._m.stats

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels subscribed to (wanted, whether or not confirmed right now)."""
        return tuple(c.decode("utf-8", "replace") for c in self._m.channels)

    @property
    def patterns(self) -> tuple[str, ...]:
        """The patterns subscribed to."""
        return tuple(p.decode("utf-8", "replace") for p in self._m.patterns)

    def _settle(self) -> Loop:
        """The loop of a (un)subscribe: until confirmed, one failed attempt, or a backoff."""
        m, before = self._m, self._m.failures
        return pump(
            m,
            until=lambda: m.settled() or m.failures > before,
            timeout=None,
            wait=False,
            raise_on_disconnect=self.raise_on_disconnect,
        )

    def _receive(self, timeout: float | None) -> Loop:
        m = self._m
        return pump(
            m,
            until=lambda: bool(m.ready),
            timeout=timeout,
            raise_on_disconnect=self.raise_on_disconnect,
        )

    def _pop(self) -> Message | None:
        try:
            return self._m.ready.popleft()
        except IndexError:
            return None

    def _next_endpoint(self) -> int:
        # Stay on the first node while it works; move on after each failed attempt.
        return self._m.failures % len(self._endpoints)

    def _hook_failed(self) -> None:
        self._m.stats.hook_errors += 1
        logger.exception("a pub/sub reconnect hook failed")

    def __repr__(self) -> str:
        state = "closed" if self.closed else "connected" if self.connected else "disconnected"
        return f"{type(self).__name__}({self.settings.redacted_url()!r}, {state})"


class Subscriber(_SubscriberBase):
    """Receive pub/sub messages from blocking code, surviving restarts and failovers.

    ``adapter``: a :class:`~rcache.RedisAdapter` (or its settings); only its settings are
    used, to open a dedicated connection. ``codec``: decodes every payload (None = bytes;
    an undecodable message is logged and dropped). ``health_check_interval``: seconds
    without traffic after which a PING checks the connection (0 = never);
    ``reply_timeout``: seconds Redis has to answer it (None = the socket timeout, or 1 s).
    ``backoff``: pauses between reconnect attempts (default: the settings' retry backoff;
    the first retry is immediate). ``on_reconnect``: callables run after every reconnect,
    once every subscription is restored and before any message received on the new
    connection is delivered (messages published while disconnected are lost: flush what
    depends on them here); a hook that raises is logged. ``raise_on_disconnect``: raise
    the :class:`~rcache.errors.BackendError` into the reader when the connection is lost
    (it reconnects on the next read); by default connection problems are only logged.

    ::

        with Subscriber(adapter, on_reconnect=[local_cache.clear]) as sub:
            sub.subscribe("invalidate")
            for message in sub:            # or sub.run_in_thread(handle)
                handle(message)
    """

    def _setup(self) -> None:
        self._adapters: list[RedisAdapter | None] = [None] * len(self._endpoints)
        self._io = threading.Lock()  # one reader at a time
        self._send = threading.Lock()  # commands go out whole and in the order expected
        self._wake = threading.Event()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Subscriber:
        """Build a subscriber from a Redis URL (settings in the URL, options as keywords)."""
        return cls(RedisSettings.from_url(url), **options)

    # -- subscriptions ---------------------------------------------------------------------

    def subscribe(self, *channels: str | bytes) -> None:
        """Subscribe to ``channels``; return once Redis confirmed (or could not be reached)."""
        self._change(self._m.want, "channels", channels)

    def psubscribe(self, *patterns: str | bytes) -> None:
        """Subscribe to glob-style ``patterns`` (``news.*``)."""
        self._change(self._m.want, "patterns", patterns)

    def unsubscribe(self, *channels: str | bytes) -> None:
        """Stop receiving from ``channels``."""
        self._change(self._m.unwant, "channels", channels)

    def punsubscribe(self, *patterns: str | bytes) -> None:
        """Stop receiving from ``patterns``."""
        self._change(self._m.unwant, "patterns", patterns)

    def _change(self, apply: Callable[[str, list[bytes]], None], kind: str, names: Any) -> None:
        apply(kind, _encode(names))
        self._wake.set()
        if self._m.closed:
            return
        if self._io.acquire(blocking=False):
            try:
                self._drive(self._settle())
            finally:
                self._io.release()
            return
        with self._send:  # another thread is reading: it will take the confirmation in
            if self._conn is not None:
                try:
                    self._write(self._conn, self._m.take_sends(time.monotonic()))
                except Exception:  # the reader sees the broken connection and reconnects
                    logger.debug("could not send a pub/sub change", exc_info=True)

    # -- receiving -------------------------------------------------------------------------

    def get_message(self, timeout: float | None = None) -> Message | None:
        """Return the next message, waiting up to ``timeout`` s (None = until one comes).

        Return None when the time is up or the subscriber is closed.
        """
        if not self._m.ready and not self._m.closed:
            with self._io:
                self._drive(self._receive(timeout))
        return self._pop()

    def __iter__(self) -> Iterator[Message]:
        """Yield messages until the subscriber is closed."""
        while True:
            message = self.get_message()
            if message is None:
                return
            yield message

    def run_in_thread(
        self, handler: Callable[[Message], Any], *, name: str = "rcache-subscriber"
    ) -> threading.Thread:
        """Call ``handler(message)`` for every message in a daemon thread; return the thread.

        A handler that raises is logged. The thread ends when the subscriber is closed.
        """

        def run() -> None:
            for message in self:
                try:
                    handler(message)
                except Exception:
                    logger.exception("a pub/sub message handler failed")

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        """Unsubscribe by closing the connection; a reader in another thread returns soon."""
        self._m.close()
        self._wake.set()
        self._release()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the driver ------------------------------------------------------------------------

    def _drive(self, loop: Loop) -> None:
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
                    error = _backend_error(exc)
                except Exception:
                    if not self._m.closed:
                        raise
                    error = _closed_error()  # close() pulled the connection from under us
        finally:
            loop.close()
            if self._m.closed:
                self._release()

    def _do(self, effect: Effect) -> Any:
        kind = type(effect)
        if kind is Read:
            return self._read(effect.seconds)  # type: ignore[union-attr]
        if kind is Pause:
            self._wake.wait(effect.seconds)  # type: ignore[union-attr]
            self._wake.clear()
        elif kind is Drop:
            self._disconnect()
        elif effect is FLUSH:
            with self._send:
                self._write(self._live(), self._m.take_sends(time.monotonic()))
        elif effect is CONNECT:
            self._connect()
        elif effect is RUN_HOOKS:
            for hook in list(self.on_reconnect):
                try:
                    hook()
                except Exception:
                    self._hook_failed()
        elif effect is CHECK_MASTER:
            return self._master_moved()
        return None

    def _live(self) -> Any:
        conn = self._conn
        if conn is None:
            raise _closed_error() if self._m.closed else BackendUnavailable("not connected")
        return conn

    def _read(self, seconds: float) -> Any:
        conn = self._live()
        if not conn.can_read(timeout=seconds):
            return None
        try:
            # push_request: hiredis may hand pub/sub replies over as push notifications
            return conn.read_response(disconnect_on_error=False, push_request=True)
        except rex.ResponseError as exc:
            return translate_error(exc)

    @staticmethod
    def _write(conn: Any, commands: list[Command]) -> None:
        if commands:
            conn.send_packed_command(conn.pack_commands(commands), check_health=False)

    def _connect(self) -> None:
        self._disconnect()
        i = self._next_endpoint()
        conn = self._conns[i]
        if conn is None:
            adapter = self._adapters[i] = RedisAdapter(self._endpoints[i])
            conn = self._conns[i] = adapter.client.connection_pool.make_connection()
        conn.connect()
        with self._send:
            if self._m.closed:
                conn.disconnect()
                raise _closed_error()
            self._conn, self._current = conn, i

    def _disconnect(self) -> None:
        with self._send:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.disconnect()
            except Exception:
                logger.debug("error while closing a pub/sub connection", exc_info=True)

    def _master_moved(self) -> bool:
        conn, i = self._conn, self._current
        adapter = None if i is None else self._adapters[i]
        if conn is None or adapter is None:
            return False
        host, port = adapter.client.connection_pool.get_master_address()
        return (str(host), int(port)) != (str(conn.host), int(conn.port))

    def _release(self) -> None:
        self._disconnect()
        for i, conn in enumerate(self._conns):
            if conn is not None:
                try:
                    conn.disconnect()
                except Exception:
                    logger.debug("error while closing a pub/sub connection", exc_info=True)
            adapter, self._adapters[i] = self._adapters[i], None
            if adapter is not None:
                adapter.close()
