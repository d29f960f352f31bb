"""A fast asyncio transport to one Redis server (TCP, TLS or unix socket; or the master
a Sentinel group names).

:class:`AsyncTransport` keeps one long-lived connection (or a few) and lets every
task of the event loop write on them at once: commands are packed with hiredis, written in
order, and their replies are matched back in the same order by an :class:`asyncio.Protocol`
(pipelining falls out of it: 100 concurrent gets are 100 commands in flight on one socket).
There is no checkout and no lock on the way of a command.

Replies are exactly what redis-py's asyncio client returns for the same
``execute_command(*args)``: the same hiredis reader settings, redis-py's error-string
mapping (``NoScriptError``, ``ReadOnlyError``, ``OutOfMemoryError``,
``AuthenticationError``...), and redis-py's response callbacks for the protocol in use,
borrowed from the fallback client and called with no options, as ``execute_command`` does.
Socket trouble is :class:`redis.exceptions.ConnectionError` and a reply that does not come
within ``socket_timeout`` is :class:`redis.exceptions.TimeoutError`; in both cases every
command in flight on that connection fails (its replies can no longer be matched) and the
next command opens a new connection. Under Sentinel the master's address is asked for at
every connect, and READONLY (a demoted master) drops the connection as a ConnectionError.

Commands that hold or change a connection (blocking pops and moves, ``WAIT``, ``XREAD ...
BLOCK``, pub/sub, ``MULTI``/``WATCH``, ``SELECT``, ``CLIENT``...) never go on a shared
connection: they, and any batch holding one, are sent through the ``fallback`` redis-py
client and its bounded pool, as before.
"""

from __future__ import annotations

import asyncio
import select
import socket
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import hiredis
import redis.exceptions as rex
from redis._parsers.encoders import Encoder
from redis._parsers.hiredis import _AsyncHiredisParser
from redis.asyncio.connection import RedisSSLContext
from redis.utils import format_error_message

from rcache.config import RedisSettings

__all__ = ["AFFINE_COMMANDS", "AsyncTransport"]

Callback = Callable[..., Any]

#: Commands that block, hold a connection state or need a connection of their own: they go
#: to the fallback client (its pool), never on a shared connection.
AFFINE_COMMANDS: Final = frozenset(
    {
        "BLPOP",
        "BRPOP",
        "BRPOPLPUSH",
        "BLMOVE",
        "BLMPOP",
        "BZPOPMIN",
        "BZPOPMAX",
        "BZMPOP",
        "WAIT",
        "WAITAOF",
        "SUBSCRIBE",
        "PSUBSCRIBE",
        "SSUBSCRIBE",
        "UNSUBSCRIBE",
        "PUNSUBSCRIBE",
        "SUNSUBSCRIBE",
        "MONITOR",
        "MULTI",
        "EXEC",
        "DISCARD",
        "WATCH",
        "UNWATCH",
        "SELECT",
        "AUTH",
        "HELLO",
        "RESET",
        "QUIT",
        "CLIENT",
        "READONLY",
        "READWRITE",
        "SYNC",
        "PSYNC",
        "REPLCONF",
        "SHUTDOWN",
    }
)
#: Commands that block only with a ``BLOCK`` argument.
_BLOCK_OPTION: Final = frozenset({"XREAD", "XREADGROUP"})

_MUX, _AFFINE, _IF_BLOCK = 0, 1, 2
_MORE: Final = object()  # hiredis: "not enough data yet" (False and None are real replies)
_PUSH: Final[Any] = getattr(hiredis, "PushNotification", None)
_PARSE_ERROR: Final = _AsyncHiredisParser.parse_error  # redis-py's error -> class mapping
_PACK: Final[Callable[[Any], bytes]] = hiredis.pack_command
_ENCODER: Final[Any] = Encoder("utf-8", "strict", False)  # type: ignore[no-untyped-call]
_CLOSED_BY_SERVER: Final = "Connection closed by server."
#: An idle connection is checked for a close that the event loop has not seen yet (a
#: restarted server) when it has been quiet this long (seconds).
_QUICK: Final = 0.1
_GONE: Final = (
    select.POLLHUP
    | select.POLLERR
    | select.POLLNVAL
    | getattr(select, "POLLRDHUP", 0)  # Linux: the peer closed its side
)
_POLL_MASK: Final = select.POLLIN | getattr(select, "POLLRDHUP", 0)


def pack_command(args: Any) -> bytes:
    """Pack one command as redis-py does (hiredis; bool and None refused with DataError)."""
    first = args[0]
    if type(first) is str and " " in first:  # "CONFIG GET": two words, as redis-py sends it
        args = (*first.split(), *args[1:])
    try:
        return _PACK(args)
    except TypeError:
        pass
    # bytearray and memoryview are sent as bytes; anything else is refused with
    # redis-py's own message (bool, None, objects).
    fixed = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
    for arg in fixed:
        _ENCODER.encode(arg)  # raises redis.exceptions.DataError for what cannot be sent
    try:
        return _PACK(fixed)
    except TypeError as exc:
        raise rex.DataError(str(exc)) from None


def _blocks(command: Sequence[Any]) -> bool:
    for arg in command[1:]:
        if isinstance(arg, str):
            if arg.upper() == "BLOCK":
                return True
        elif isinstance(arg, bytes) and arg.upper() == b"BLOCK":
            return True
    return False


class _Connection(asyncio.Protocol):
    """One shared connection: commands are written in order and replies matched in order.

    ``pending`` holds one ``(future, n)`` per write: one reply for a command, ``n`` for a
    batch. A future whose caller went away (cancelled) stays in line; its reply is read
    and dropped, so the connection never gets out of step.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float | None, where: str) -> None:
        self.loop = loop
        self.timeout = timeout
        self.where = where
        self.tls = False
        self.closed = True  # until connection_made
        self.transport: asyncio.Transport | None = None
        self.pending: deque[tuple[asyncio.Future[Any], int]] = deque()
        self.acc: list[Any] = []
        self.reader = hiredis.Reader(
            protocolError=rex.InvalidResponse, replyError=_PARSE_ERROR, notEnoughData=_MORE
        )
        self.last_rx = loop.time()  # last time bytes arrived (or the connection was checked)
        self.busy_since = 0.0  # when ``pending`` last went from empty to not empty
        self._timer: asyncio.TimerHandle | None = None
        self._poll: Any = None
        self.gone: asyncio.Future[None] = loop.create_future()  # done once connection_lost ran
        self.wbuf: list[bytes] | None = None  # writes held for the end of this loop pass
        self.address: tuple[Any, ...] | None = None  # (host, port) under Sentinel

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.closed = False
        self.tls = transport.get_extra_info("sslcontext") is not None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                poll = select.poll()
                poll.register(sock.fileno(), _POLL_MASK)
                self._poll = poll
            except (OSError, ValueError):
                self._poll = None

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.last_rx = self.loop.time()
        reader = self.reader
        reader.feed(data)
        pending = self.pending
        while True:
            try:
                reply = reader.gets()
            except rex.InvalidResponse as exc:
                self.abort(rex.ConnectionError(f"invalid reply from {self.where}: {exc}"))
                return
            if reply is _MORE:
                return
            if _PUSH is not None and reply.__class__ is _PUSH:
                continue  # a RESP3 push nobody asked for on a shared connection: dropped
            if not pending:
                self.abort(rex.ConnectionError(f"unexpected reply from {self.where}"))
                return
            fut, n = pending[0]
            if n == 1:
                pending.popleft()
                if not fut.done():
                    fut.set_result(reply)
            else:
                acc = self.acc
                acc.append(reply)
                if len(acc) == n:
                    pending.popleft()
                    self.acc = []
                    if not fut.done():
                        fut.set_result(acc)

    def eof_received(self) -> bool | None:
        self._shut(rex.ConnectionError(_CLOSED_BY_SERVER))  # no new command goes here
        return None  # and the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            err = rex.ConnectionError(_CLOSED_BY_SERVER)
        else:
            err = rex.ConnectionError(f"Error while reading from {self.where} : {exc.args}")
        self._shut(err)
        if not self.gone.done():
            self.gone.set_result(None)

    # -- used by AsyncTransport ---------------------------------------------------------------

    def send(self, data: bytes, n: int) -> asyncio.Future[Any]:
        """Write ``data`` (``n`` packed commands); return the future of its reply or replies."""
        fut = self.loop.create_future()
        pending = self.pending
        if not pending:
            self.busy_since = self.loop.time()
            if self._timer is None and self.timeout is not None:
                self._timer = self.loop.call_at(self.busy_since + self.timeout, self._tick)
            pending.append((fut, n))
            self.transport.write(data)  # type: ignore[union-attr]
            return fut
        pending.append((fut, n))
        # Replies are awaited already: hold the bytes and write everything the tasks of this
        # pass of the event loop send in one go (one syscall instead of one per task).
        buf = self.wbuf
        if buf is None:
            self.wbuf = [data]
            self.loop.call_soon(self._flush)
        else:
            buf.append(data)
        return fut

    def _flush(self) -> None:
        buf, self.wbuf = self.wbuf, None
        if buf and not self.closed:
            self.transport.write(b"".join(buf))  # type: ignore[union-attr]

    def stale(self) -> bool:
        """Tell whether an idle connection was closed (or got bytes) unseen by the loop."""
        poll = self._poll
        if poll is None:
            return False
        try:
            events = poll.poll(0)
        except OSError:
            return True
        if not events:
            return False
        # Plain data on an idle connection means it is out of step; on TLS it can be a
        # record the loop has not read yet (a session ticket), so only a hang-up counts.
        return bool(events[0][1] & _GONE) or not self.tls

    def abort(self, exc: BaseException) -> None:
        """Fail everything in flight with ``exc`` and drop the connection at once."""
        if self._shut(exc):
            transport = self.transport
            if transport is not None:
                try:
                    transport.abort()
                except RuntimeError:  # its event loop is closed
                    pass

    def close(self) -> None:
        """Close the connection (commands in flight fail with ConnectionError)."""
        if self._shut(rex.ConnectionError("Connection closed by the client.")):
            transport = self.transport
            if transport is not None:
                try:
                    transport.close()
                except RuntimeError:  # its event loop is closed
                    pass

    def _shut(self, exc: BaseException) -> bool:
        first = not self.closed
        self.closed = True
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        pending, self.pending = self.pending, deque()
        self.acc = []
        self.wbuf = None
        for fut, _ in pending:
            if not fut.done():
                fut.set_exception(type(exc)(*exc.args))
        return first

    def _tick(self) -> None:
        # The reply timeout: no byte for ``timeout`` seconds while a reply is awaited.
        self._timer = None
        if self.closed or not self.pending or self.timeout is None:
            return
        due = max(self.busy_since, self.last_rx) + self.timeout
        if self.loop.time() >= due:
            self.abort(rex.TimeoutError(f"Timeout reading from {self.where}"))
        else:
            self._timer = self.loop.call_at(due, self._tick)


class AsyncTransport:
    """Commands to one Redis server over shared, pipelined connections (one by default).

    ``fallback`` is the redis-py asyncio client of the same settings: it carries what must
    not share a connection (see :data:`AFFINE_COMMANDS`), and its response callbacks are
    the ones applied here. Use from one event loop at a time: once that loop is closed, the
    next loop that sends a command opens new connections.
    """

    def __init__(
        self,
        settings: RedisSettings,
        fallback: Any,
        *,
        connections: int = 1,
        callbacks: Mapping[str, Callback] | None = None,
    ) -> None:
        if settings.mode == "cluster":
            raise ValueError("AsyncTransport serves standalone and Sentinel-managed servers")
        if connections < 1:
            raise ValueError("connections must be >= 1")
        self.settings = settings
        self.fallback = fallback
        if callbacks is None:
            callbacks = getattr(fallback, "response_callbacks", None) or {}
        self._callbacks = {str(k).upper(): v for k, v in callbacks.items()}
        self._specs: dict[Any, tuple[int, Callback | None, tuple[Any, ...] | None]] = {}
        self._sentinel = settings.mode == "sentinel"
        self._n = connections
        self._conns: list[_Connection | None] = [None] * connections
        self._opening: list[asyncio.Task[_Connection] | None] = [None] * connections
        self._next = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeout = settings.socket_timeout
        connect_timeout = settings.socket_connect_timeout
        self._connect_timeout = self._timeout if connect_timeout is None else connect_timeout
        if settings.unix_socket_path is not None:
            self._where = settings.unix_socket_path
        elif self._sentinel:
            self._where = f"the master of {settings.service_name}"
        else:
            host, port = settings.hosts[0]
            self._where = f"{host}:{port}"
        self._ssl: Any = None
        if settings.ssl:
            self._ssl = RedisSSLContext(
                keyfile=settings.ssl_keyfile,
                certfile=settings.ssl_certfile,
                cert_reqs=settings.ssl_cert_reqs,
                ca_certs=settings.ssl_ca_certs,
                check_hostname=settings.ssl_check_hostname and settings.ssl_cert_reqs != "none",
            )
        self._handshake = self._handshake_commands()

    def __repr__(self) -> str:
        return f"AsyncTransport({self.settings.redacted_url()!r}, connections={self._n})"

    # -- commands ---------------------------------------------------------------------------

    async def execute(self, command: Sequence[Any]) -> Any:
        """Send one command and return its reply, as redis-py's ``execute_command`` does."""
        spec = self._specs.get(command[0])
        if spec is None:
            spec = self._learn(command[0])
        route, callback, head = spec
        if route and (route == _AFFINE or _blocks(command)):
            return await self.fallback.execute_command(*command)
        data = pack_command(
            (command if command.__class__ is tuple else tuple(command))
            if head is None
            else head + tuple(command[1:])
        )
        i = 0 if self._n == 1 else self._pick()
        conn = self._conns[i]
        if (
            conn is None
            or conn.closed
            or conn.loop is not asyncio.get_running_loop()
            or (not conn.pending and conn.loop.time() - conn.last_rx > _QUICK)
        ):
            conn = await self._ready(i)
        reply = await conn.send(data, 1)
        if isinstance(reply, rex.RedisError):
            if self._sentinel and isinstance(reply, rex.ReadOnlyError):
                raise _demoted(conn)
            raise reply
        if reply.__class__ is list and reply and isinstance(reply[0], rex.ConnectionError):
            raise reply[0]
        if callback is not None:
            return callback(reply)
        return reply

    async def execute_many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send ``commands`` in one write; return their replies in order.

        Like a redis-py non-transactional pipeline run with ``raise_on_error=False``: an
        error Redis answered is returned in place; a connection error or a timeout raises.
        """
        specs = self._specs
        parts: list[bytes] = []
        callbacks: list[Callback | None] = []
        for command in commands:
            spec = specs.get(command[0])
            if spec is None:
                spec = self._learn(command[0])
            route, callback, head = spec
            if route and (route == _AFFINE or _blocks(command)):
                return await self._fallback_many(commands)
            parts.append(
                pack_command(
                    (command if command.__class__ is tuple else tuple(command))
                    if head is None
                    else head + tuple(command[1:])
                )
            )
            callbacks.append(callback)
        n = len(parts)
        if n == 0:
            return []
        i = 0 if self._n == 1 else self._pick()
        conn = self._conns[i]
        if (
            conn is None
            or conn.closed
            or conn.loop is not asyncio.get_running_loop()
            or (not conn.pending and conn.loop.time() - conn.last_rx > _QUICK)
        ):
            conn = await self._ready(i)
        replies: Any = await conn.send(b"".join(parts), n)
        if n == 1:
            replies = [replies]
        for j, reply in enumerate(replies):
            if isinstance(reply, rex.RedisError):
                if not isinstance(reply, rex.ResponseError):
                    raise reply
                if self._sentinel and isinstance(reply, rex.ReadOnlyError):
                    raise _demoted(conn)
            elif reply.__class__ is list and reply and isinstance(reply[0], rex.ConnectionError):
                raise reply[0]
            else:
                callback = callbacks[j]
                if callback is not None:
                    replies[j] = callback(reply)
        return replies  # type: ignore[no-any-return]

    async def _fallback_many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        pipe = self.fallback.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return await pipe.execute(raise_on_error=False)  # type: ignore[no-any-return]

    def _learn(self, name: Any) -> tuple[int, Callback | None, tuple[Any, ...] | None]:
        if isinstance(name, bytes):
            text = name.decode("utf-8", "replace")
            callback = None  # redis-py looks callbacks up by str names only
            tokens: list[Any] = name.split()
        elif isinstance(name, str):
            text = name
            callback = self._callbacks.get(name.upper())
            tokens = name.encode().split()
        else:
            raise rex.DataError(f"a command name must be str or bytes, not {type(name).__name__}")
        first = (text.split() or [""])[0].upper()
        route = _MUX
        if first in AFFINE_COMMANDS:
            route = _AFFINE
        elif first in _BLOCK_OPTION:
            route = _IF_BLOCK
        head = tuple(tokens) if len(tokens) != 1 else None
        spec = (route, callback, head)
        if len(self._specs) < 4096:  # names are few; a flood of odd ones is not kept
            self._specs[name] = spec
        return spec

    # -- connections ------------------------------------------------------------------------

    def _pick(self) -> int:
        # The first idle connection, else the next in turn.
        conns = self._conns
        for i, conn in enumerate(conns):
            if conn is not None and not conn.pending and not conn.closed:
                return i
        i = self._next
        self._next = (i + 1) % self._n
        return i

    async def _ready(self, i: int) -> _Connection:
        """Return connection ``i`` checked and open: the slow path of every command."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._adopt(loop)
        conn = self._conns[i]
        if conn is not None and not conn.closed:
            if conn.pending:
                return conn
            if conn.stale():
                conn.abort(rex.ConnectionError(_CLOSED_BY_SERVER))
            else:
                now = loop.time()
                interval = self.settings.health_check_interval
                if interval and now - conn.last_rx > interval:
                    await self._health_check(conn)
                else:
                    conn.last_rx = now  # checked: no need to look again for a while
                if not conn.closed:
                    return conn
        task = self._opening[i]
        if task is None:
            task = self._opening[i] = loop.create_task(self._open(i))
            task.add_done_callback(_retrieve)
        return await asyncio.shield(task)

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        old = self._loop
        if old is not None and not old.is_closed():
            if any(c is not None and not c.closed for c in self._conns) or any(self._opening):
                raise RuntimeError(
                    "this AsyncRedisAdapter is in use by another event loop; "
                    "use one adapter per event loop"
                )
        for conn in self._conns:
            if conn is not None:
                conn.abort(rex.ConnectionError("its event loop was closed"))
        self._conns = [None] * self._n
        self._opening = [None] * self._n
        self._loop = loop

    async def _health_check(self, conn: _Connection) -> None:
        reply = await conn.send(pack_command(("PING",)), 1)
        if isinstance(reply, rex.RedisError):
            conn.abort(rex.ConnectionError(f"health check failed: {reply}"))
            raise reply
        if reply != b"PONG":
            conn.abort(rex.ConnectionError(f"bad health check reply from {self._where}"))
            raise rex.ConnectionError("Bad response from PING health check")

    async def _open(self, i: int) -> _Connection:
        try:
            conn = await self._connect()
            self._conns[i] = conn
            return conn
        finally:
            self._opening[i] = None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        s = self.settings
        if self._sentinel:  # ask the Sentinels at every connect (a failover moves it)
            host, port = await self.fallback.connection_pool.get_master_address()
            where = f"{host}:{port}"
        elif s.unix_socket_path is None:
            host, port = s.hosts[0]
            where = self._where
        else:
            where = self._where
        conn = _Connection(loop, self._timeout, where)
        if self._sentinel:
            conn.address = (host, port)
        try:
            async with asyncio.timeout(self._connect_timeout):
                if s.unix_socket_path is not None:
                    await loop.create_unix_connection(lambda: conn, s.unix_socket_path)
                else:
                    await loop.create_connection(
                        lambda: conn,
                        host,
                        port,
                        ssl=None if self._ssl is None else self._ssl.get(),
                    )
        except asyncio.CancelledError:
            conn.abort(rex.ConnectionError("connect cancelled"))
            raise
        except TimeoutError:
            conn.abort(rex.TimeoutError("Timeout connecting to server"))
            raise rex.TimeoutError("Timeout connecting to server") from None
        except OSError as exc:
            conn.abort(rex.ConnectionError(str(exc)))
            raise rex.ConnectionError(format_error_message(where, exc)) from exc
        transport = conn.transport
        assert transport is not None
        sock = transport.get_extra_info("socket")
        if sock is not None and s.unix_socket_path is None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if s.socket_keepalive:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            except OSError:  # pragma: no cover - a socket that refuses options still works
                pass
        try:
            await self._hello(conn)
        except BaseException:
            conn.abort(rex.ConnectionError("handshake failed"))
            raise
        return conn

    def _handshake_commands(self) -> list[tuple[Any, ...]]:
        s = self.settings
        hello: tuple[Any, ...] = ("HELLO", 3)
        if s.username or s.password:
            hello += ("AUTH", s.username or "default", s.password or "")
        commands = [hello]
        if s.client_name:
            commands.append(("CLIENT", "SETNAME", s.client_name))
        if s.db:
            commands.append(("SELECT", s.db))
        return commands

    async def _hello(self, conn: _Connection) -> None:
        # One write, one round trip: HELLO (with AUTH), CLIENT SETNAME, SELECT.
        commands = self._handshake
        replies: Any = await conn.send(b"".join(pack_command(c) for c in commands), len(commands))
        if len(commands) == 1:
            replies = [replies]
        for command, reply in zip(commands, replies, strict=True):
            if isinstance(reply, rex.RedisError):
                raise reply
            if command[0] == "HELLO":
                proto = reply.get(b"proto", reply.get("proto")) if isinstance(reply, dict) else None
                if proto != 3:
                    raise rex.ConnectionError("Invalid RESP version")
            elif command[0] == "CLIENT" and reply != b"OK":
                raise rex.ConnectionError("Error setting client name")
            elif command[0] == "SELECT" and reply != b"OK":
                raise rex.ConnectionError("Invalid Database")

    async def aclose(self) -> None:
        """Close the shared connections (commands in flight fail with ConnectionError)."""
        for task in self._opening:
            if task is not None:
                task.cancel()
        gone = []
        for conn in self._conns:
            if conn is not None:
                conn.close()
                if conn.transport is not None and conn.loop is asyncio.get_running_loop():
                    gone.append(conn.gone)
        self._conns = [None] * self._n
        self._opening = [None] * self._n
        if gone:  # let the transports finish closing before the loop may be closed
            await asyncio.wait(gone, timeout=1.0)

    def follow_master(self, address: tuple[Any, ...]) -> None:
        """Retire every connection to another address than ``address`` (Sentinel's master).

        Commands in flight on a retired connection fail with ConnectionError (the adapter
        retries the idempotent ones); the next command connects to the new master.
        """
        for i, conn in enumerate(self._conns):
            if conn is not None and conn.address is not None and conn.address != address:
                self._conns[i] = None
                conn.close()

    @property
    def connections(self) -> int:
        """How many shared connections are open."""
        return sum(1 for c in self._conns if c is not None and not c.closed)


def _demoted(conn: _Connection) -> rex.ConnectionError:
    # READONLY from what Sentinel called the master: it was demoted. Drop the connection so
    # that the next one asks the Sentinels again (what redis-py's Sentinel connection does).
    conn.abort(rex.ConnectionError("The previous master is now a slave"))
    return rex.ConnectionError("The previous master is now a slave")


def _retrieve(task: asyncio.Task[Any]) -> None:
    # A connect whose every caller was cancelled must not log "exception never retrieved".
    if not task.cancelled():
        task.exception()
