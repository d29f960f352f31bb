"""The Redis adapter: runs operations, retries, trips the breaker, translates errors.

:class:`RedisAdapter` (blocking) and :class:`AsyncRedisAdapter` (asyncio) drive the same
operations (:mod:`rcache.ops`): each yielded :class:`~rcache.ops.Batch` is one pipelined
round trip. Around every round trip:

1. the circuit breaker is asked first; while it is open the call fails at once with
   :class:`~rcache.errors.CircuitOpen` instead of paying a connect timeout;
2. connection errors and timeouts are retried for idempotent batches (an immediate
   retry, then exponential backoff with jitter, bounded by attempts and a deadline);
3. ``redis.exceptions`` become the rcache error tree here, and only here.

A failed batch is thrown into the operation, which may catch it (caches fail open) or
let it rise. The breaker logs one warning when Redis goes away and one line when it is
back, so an outage is reported once, not per call.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

import redis
import redis.exceptions as rex

from rcache import _wire
from rcache._aio import AsyncTransport, pack_command
from rcache._clients import async_client, sync_client
from rcache._cluster import split_commands
from rcache.config import RedisSettings
from rcache.errors import (
    AuthenticationFailed,
    BackendError,
    BackendOutOfMemory,
    BackendReadOnly,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    ConfigurationError,
    PoolExhausted,
    RCacheError,
)
from rcache.ops import Batch, Call, Command, Op, Sleep
from rcache.resilience import CircuitBreaker, RetryPolicy
from rcache.scripts import source_for_sha

__all__ = ["AdapterStats", "AsyncRedisAdapter", "RedisAdapter", "translate_error"]

T = TypeVar("T")
logger = logging.getLogger("rcache.adapter")

# Errors that mean "Redis was not reached or did not answer": retried, counted by the breaker.
_TRANSIENT = (rex.ConnectionError, rex.TimeoutError, TimeoutError, ConnectionError)


@dataclass(slots=True)
class AdapterStats:
    """Counters kept by an adapter (plain ints: cheap, approximate under threads).

    ``hits``/``misses`` are counted by the backends that know what a hit is.
    """

    round_trips: int = 0
    commands: int = 0
    errors: int = 0
    retries: int = 0
    fast_failures: int = 0
    breaker_trips: int = 0
    hits: int = 0
    misses: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counters as a dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def translate_error(exc: BaseException) -> RCacheError:
    """Map an exception from redis-py (or the socket layer) to the rcache error tree."""
    if isinstance(exc, RCacheError):
        return exc
    msg = str(exc) or type(exc).__name__
    if _is_pool_exhausted(exc):
        return PoolExhausted(f"connection pool exhausted: {msg}")
    if isinstance(exc, rex.AuthenticationError | rex.AuthorizationError):
        return AuthenticationFailed(f"Redis refused the credentials: {msg}")
    if isinstance(exc, rex.NoPermissionError):
        return AuthenticationFailed(f"the Redis user may not run this command: {msg}")
    if isinstance(exc, rex.TimeoutError | TimeoutError):
        return BackendTimeout(f"Redis did not answer in time: {msg}")
    if isinstance(exc, rex.ConnectionError | ConnectionError | OSError):
        return BackendUnavailable(f"cannot reach Redis: {msg}")
    if isinstance(exc, rex.ReadOnlyError):
        return BackendReadOnly(f"Redis is read-only (a replica?): {msg}")
    if isinstance(exc, rex.OutOfMemoryError) or msg.startswith("OOM"):
        return BackendOutOfMemory(f"Redis is out of memory: {msg}")
    if isinstance(exc, rex.ClusterDownError | rex.TryAgainError | rex.RedisClusterException):
        return BackendUnavailable(f"Redis Cluster is not serving: {msg}")
    return BackendError(f"Redis error: {msg}")


def _is_pool_exhausted(exc: BaseException) -> bool:
    return isinstance(exc, rex.MaxConnectionsError) or "No connection available" in str(exc)


class _AdapterBase:
    """State and policy shared by the two drivers (no I/O here)."""

    def __init__(
        self,
        settings: RedisSettings | None = None,
        *,
        client: Any = None,
        breaker: CircuitBreaker | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings or RedisSettings()
        self.breaker = breaker or self.settings.breaker()
        self.retry = retry or self.settings.retry_policy()
        self.stats = AdapterStats()
        self._cluster = self.settings.mode == "cluster"
        self._client = client if client is not None else self._make_client()
        # Under Sentinel, ask who the master is every sentinel_check_interval seconds: an
        # adapter that only reads never meets READONLY, so without this it would keep
        # reading from a master demoted by SENTINEL FAILOVER.
        interval = self.settings.sentinel_check_interval
        self._watch_master = self.settings.mode == "sentinel" and interval > 0
        self._master_due = 0.0
        self._master_checking = False

    def _make_client(self) -> Any:
        raise NotImplementedError

    @property
    def client(self) -> Any:
        """The underlying redis-py client, for what rcache does not wrap."""
        return self._client

    @property
    def key_prefix(self) -> str:
        """The key prefix from the settings (``""`` when none)."""
        return self.settings.key_prefix

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings.redacted_url()!r})"

    def _master_check_due(self) -> bool:
        """Claim the Sentinel master check if one is due (one caller asks; others go on)."""
        now = time.monotonic()
        if now < self._master_due or self._master_checking:
            return False
        self._master_checking = True  # cleared by the caller when its check is over
        self._master_due = now + self.settings.sentinel_check_interval
        return True

    # -- breaker and retry bookkeeping -----------------------------------------------------

    def _fail_fast(self) -> CircuitOpen:
        self.stats.fast_failures += 1
        self.stats.errors += 1
        return CircuitOpen(
            f"Redis at {self.settings.redacted_url()} failed recently; "
            f"not retrying for up to {self.breaker.cooldown:g}s"
        )

    def _on_success(self) -> None:
        if self.breaker.record_success():
            logger.warning("Redis at %s is reachable again", self.settings.redacted_url())

    def _on_transient(self, exc: BaseException) -> RCacheError:
        err = translate_error(exc)
        self.stats.errors += 1
        if isinstance(err, AuthenticationFailed | PoolExhausted):
            return err  # the server answered (or never asked): not an outage
        if self.breaker.record_failure():
            self.stats.breaker_trips += 1
            logger.warning(
                "Redis at %s is unreachable (%s); failing fast, probing every %gs",
                self.settings.redacted_url(),
                err,
                self.breaker.cooldown,
            )
        return err

    def _retry_delay(
        self, batch: Batch, err: RCacheError, failures: int, t0: float
    ) -> float | None:
        if not batch.idempotent or isinstance(err, AuthenticationFailed | PoolExhausted):
            return None
        delay = self.retry.delay(failures, time.monotonic() - t0)
        if delay is not None:
            self.stats.retries += 1
        return delay

    def _prepare(self, commands: Sequence[Command]) -> tuple[Sequence[Command], Any]:
        if self._cluster and len(commands) and any(len(c) > 2 for c in commands):
            split = split_commands(commands)
            if split is not None:
                return split
        return commands, None

    def _finish(self, batch: Batch, replies: list[Any], merge: Any) -> list[Any]:
        if merge is not None:
            replies = merge(replies)
        for i, reply in enumerate(replies):
            if isinstance(reply, BaseException):
                err = translate_error(reply)
                if batch.raise_on_error:
                    raise err from reply
                replies[i] = err
        return replies


def _sentinels_of(pool: Any) -> list[Any]:
    """Return the clients a Sentinel-managed pool uses to ask for the master."""
    manager = getattr(pool, "sentinel_manager", None)
    return list(getattr(manager, "sentinels", ()))


def _noscript(replies: list[Any], commands: Sequence[Command]) -> list[int]:
    return [
        i
        for i, r in enumerate(replies)
        if isinstance(r, rex.NoScriptError) and str(commands[i][0]).upper() == "EVALSHA"
    ]


def _as_eval(cmd: Command) -> Command:
    source = source_for_sha(cmd[1])
    if source is None:
        raise ConfigurationError("EVALSHA of a script this process does not know")
    return ("EVAL", source, *cmd[2:])


def _sends_directly(client: Any) -> bool:
    """Return whether batches may be packed straight onto a pooled connection of ``client``.

    True for the plain (standalone or Sentinel-managed) ``redis.Redis`` clients rcache
    builds, and for such a client passed in, unless it pins a single connection. Anything
    else (Cluster, subclasses, look-alikes) keeps redis-py's pipeline.
    """
    return (
        type(client) is redis.Redis
        and getattr(client, "connection", None) is None
        and hasattr(client, "connection_pool")
    )


def _read_response(conn: Any) -> Any:
    return conn.read_response()


def _send_one(client: Any, command: Command) -> Any:
    """Send one command on a pooled connection of ``client``; return its parsed reply.

    What ``client.execute_command`` does (the same connection, parser, response callback
    and exceptions), without redis-py's per-call retry wrapper and timing, which rcache
    does not use (its own policy retries). An error Redis answered rises with the
    connection in step; any other failure disconnects it before it returns to the pool.
    """
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        if type(conn) in _wire.FAST:
            _wire.write(conn, pack_command(command))
            reply = _wire.read(conn)
        else:
            conn.send_packed_command((pack_command(command),))
            reply = conn.read_response()
    except rex.ResponseError:
        raise
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)
    name = command[0]
    callback = client.response_callbacks.get(name) if type(name) is str else None
    return reply if callback is None else callback(reply)


def _send_packed(client: Any, commands: Sequence[Command]) -> list[Any]:
    """Send ``commands`` in one write on one pooled connection; return the parsed replies.

    What a non-transactional redis-py ``Pipeline`` does for a batch, without building one:
    every reply is read (so the connection stays in step) and parsed with the client's
    response callbacks; an error Redis answered is returned in its place. Any other
    failure (connection lost, timeout, a reply that cannot be parsed) disconnects the
    connection before it returns to the pool, and rises.
    """
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        data = b"".join([pack_command(cmd) for cmd in commands])
        if type(conn) in _wire.FAST:
            _wire.write(conn, data)
            read = _wire.read
        else:
            conn.send_packed_command((data,))
            read = _read_response
        callbacks = client.response_callbacks
        replies: list[Any] = []
        for cmd in commands:
            try:
                reply = read(conn)
            except rex.ResponseError as exc:
                replies.append(exc)
                continue
            callback = callbacks.get(cmd[0]) if type(cmd[0]) is str else None
            replies.append(reply if callback is None else callback(reply))
        return replies
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)


class RedisAdapter(_AdapterBase):
    """Run operations against Redis from blocking code (thread-safe)."""

    @classmethod
    def from_url(cls, url: str, **settings: Any) -> RedisAdapter:
        """Build an adapter from a Redis URL; keyword ``settings`` override the URL."""
        return cls(RedisSettings.from_url(url, **settings))

    def __init__(
        self,
        settings: RedisSettings | None = None,
        *,
        client: Any = None,
        breaker: CircuitBreaker | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(settings, client=client, breaker=breaker, retry=retry)
        self._direct = not self._cluster and _sends_directly(self._client)

    def _make_client(self) -> Any:
        return sync_client(self.settings)

    def run(self, op: Op[T]) -> T:
        """Drive ``op`` to completion and return its result."""
        try:
            effect = next(op)
            while True:
                kind = type(effect)
                if kind is Batch:
                    try:
                        commands = effect.commands  # type: ignore[union-attr]
                        if len(commands) == 1 and effect.raise_on_error:  # type: ignore[union-attr]
                            result: Any = [
                                self._execute_one(commands[0], effect.idempotent)  # type: ignore[union-attr]
                            ]
                        else:
                            result = self.execute_batch(effect)  # type: ignore[arg-type]
                    except RCacheError as err:
                        effect = op.throw(err)
                        continue
                elif kind is Sleep:
                    time.sleep(effect.seconds)  # type: ignore[union-attr]
                    result = None
                elif kind is Call:
                    result = effect.fn(*effect.args, **(effect.kwargs or {}))  # type: ignore[union-attr]
                else:
                    raise TypeError(f"an operation yielded {effect!r}, not an effect")
                effect = op.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def execute(self, *command: Any, idempotent: bool = True) -> Any:
        """Send one command and return its reply (one round trip)."""
        return self._execute_one(command, idempotent)

    def _check_master(self) -> None:
        if not self._master_check_due():
            return
        try:
            # When the address changed, redis-py's Sentinel pool drops its idle
            # connections now and the busy ones when they come back.
            self._client.connection_pool.get_master_address()
        except (rex.RedisError, AttributeError):
            pass  # Sentinels unreachable (or no Sentinel pool): commands find out themselves
        finally:
            self._master_checking = False

    def _execute_one(self, command: Command, idempotent: bool) -> Any:
        if self._watch_master:
            self._check_master()
        if self.breaker._opened_at is None and not self._cluster:
            # The hot path: breaker closed, one command, no splitting. Same semantics as
            # execute_batch, with fewer calls (this runs on every cache hit).
            stats = self.stats
            stats.round_trips += 1
            stats.commands += 1
            try:
                if self._direct:
                    reply = _send_one(self._client, command)
                else:
                    reply = self._client.execute_command(*command)
            except rex.NoScriptError:
                # Rare (a restarted server, SCRIPT FLUSH): send the source by the full path.
                batch = Batch((_as_eval(command),), idempotent=idempotent)
                replies = self._send_with_retry(batch, batch.commands, 0, 0.0)
                return self._finish(batch, replies, None)[0]
            except _TRANSIENT as exc:
                batch = Batch((command,), idempotent=idempotent)
                t0 = time.monotonic()
                self._pause_or_raise(batch, exc, 1, t0)
                return self._send_with_retry(batch, batch.commands, 1, t0)[0]
            except rex.RedisError as exc:
                self._on_success()
                raise translate_error(exc) from exc
            if self.breaker._failures:
                self._on_success()
            return reply
        return self.execute_batch(Batch((command,), idempotent=idempotent))[0]

    def execute_batch(self, batch: Batch) -> list[Any]:
        """Send the batch's commands in one round trip; return their replies in order."""
        if self._watch_master:
            self._check_master()
        if self._direct and self.breaker._opened_at is None and len(batch.commands) > 1:
            # The hot path (every decorated hit): the same steps as _send_with_retry and
            # _send, with fewer calls while the breaker is closed.
            commands = batch.commands
            stats = self.stats
            stats.round_trips += 1
            stats.commands += len(commands)
            try:
                replies = self._settle(commands, _send_packed(self._client, commands))
            except _TRANSIENT as exc:
                t0 = time.monotonic()
                self._pause_or_raise(batch, exc, 1, t0)
                replies = self._send_with_retry(batch, commands, 1, t0)
            else:
                if self.breaker._failures:
                    self._on_success()
            return self._finish(batch, replies, None)
        commands, merge = self._prepare(batch.commands)
        return self._finish(batch, self._send_with_retry(batch, commands, 0, 0.0), merge)

    def _pause_or_raise(self, batch: Batch, exc: BaseException, failures: int, t0: float) -> None:
        err = self._on_transient(exc)
        delay = self._retry_delay(batch, err, failures, t0)
        if delay is None:
            raise err from exc
        if delay:
            time.sleep(delay)

    def _send_with_retry(
        self, batch: Batch, commands: Sequence[Command], failures: int, t0: float
    ) -> list[Any]:
        while True:
            if not self.breaker.allow():
                raise self._fail_fast()
            try:
                replies = self._send(commands)
            except _TRANSIENT as exc:
                failures += 1
                if failures == 1:
                    t0 = time.monotonic()
                self._pause_or_raise(batch, exc, failures, t0)
                continue
            self._on_success()
            return replies

    def _send(self, commands: Sequence[Command]) -> list[Any]:
        self.stats.round_trips += 1
        self.stats.commands += len(commands)
        if len(commands) == 1:
            cmd = commands[0]
            try:
                return [self._one(cmd)]
            except rex.NoScriptError:
                pass  # re-sent as EVAL below, outside this handler
            except _TRANSIENT:
                raise
            except rex.RedisError as exc:
                return [exc]
            try:
                return [self._one(_as_eval(cmd))]
            except _TRANSIENT:
                raise
            except rex.RedisError as exc:
                return [exc]
        return self._settle(commands, self._pipeline(commands))

    def _settle(self, commands: Sequence[Command], replies: list[Any]) -> list[Any]:
        """Re-send as EVAL what met NOSCRIPT; raise a transient error found among replies."""
        missing = _noscript(replies, commands)
        if missing:
            again = self._pipeline([_as_eval(commands[i]) for i in missing])
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, _TRANSIENT):
                raise reply
        return replies

    def _one(self, command: Command) -> Any:
        """Send one command; return its reply (an error Redis answered rises)."""
        if self._direct:
            return _send_one(self._client, command)
        return self._client.execute_command(*command)

    def _pipeline(self, commands: Sequence[Command]) -> list[Any]:
        """Send several commands in one round trip; errors Redis answered stay in place."""
        if self._direct:
            return _send_packed(self._client, commands)
        pipe = self._client.pipeline(transaction=False)
        for cmd in commands:
            pipe.execute_command(*cmd)
        replies: list[Any] = pipe.execute(raise_on_error=False)
        return replies

    def ping(self) -> float:
        """Return the round-trip time of a PING in seconds (raises if Redis is down)."""
        t = time.perf_counter()
        self.execute("PING")
        return time.perf_counter() - t

    def close(self) -> None:
        """Close every pooled connection."""
        self._client.close()
        pool = getattr(self._client, "connection_pool", None)
        if pool is not None:  # a pool we passed in is not closed by the client itself
            pool.disconnect()
            for sentinel in _sentinels_of(pool):
                sentinel.close()

    def __enter__(self) -> RedisAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRedisAdapter(_AdapterBase):
    """Run operations against Redis from asyncio code (one event loop per adapter).

    Commands to a standalone server (TCP, TLS, unix socket) or a Sentinel-managed master go
    through :class:`rcache._aio.AsyncTransport`: one shared, pipelined connection, no
    checkout. Blocking and connection-bound commands, Redis Cluster and a ``client`` passed
    in go through the redis-py asyncio client (:attr:`client`) and its pool.
    """

    _transport: AsyncTransport | None = None

    @classmethod
    def from_url(cls, url: str, **settings: Any) -> AsyncRedisAdapter:
        """Build an adapter from a Redis URL; keyword ``settings`` override the URL."""
        return cls(RedisSettings.from_url(url, **settings))

    def _make_client(self) -> Any:
        client = async_client(self.settings)
        if self.settings.mode != "cluster":
            self._transport = AsyncTransport(self.settings, client)
        return client

    async def run(self, op: Op[T]) -> T:
        """Drive ``op`` to completion and return its result."""
        try:
            effect = next(op)
            while True:
                kind = type(effect)
                if kind is Batch:
                    try:
                        commands = effect.commands  # type: ignore[union-attr]
                        if len(commands) == 1 and effect.raise_on_error:  # type: ignore[union-attr]
                            result: Any = [
                                await self._execute_one(commands[0], effect.idempotent)  # type: ignore[union-attr]
                            ]
                        else:
                            result = await self.execute_batch(effect)  # type: ignore[arg-type]
                    except RCacheError as err:
                        effect = op.throw(err)
                        continue
                elif kind is Sleep:
                    await asyncio.sleep(effect.seconds)  # type: ignore[union-attr]
                    result = None
                elif kind is Call:
                    result = effect.fn(*effect.args, **(effect.kwargs or {}))  # type: ignore[union-attr]
                    if inspect.isawaitable(result):
                        result = await result
                else:
                    raise TypeError(f"an operation yielded {effect!r}, not an effect")
                effect = op.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def execute(self, *command: Any, idempotent: bool = True) -> Any:
        """Send one command and return its reply (one round trip)."""
        return await self._execute_one(command, idempotent)

    async def _check_master(self) -> None:
        if not self._master_check_due():
            return
        try:
            # redis-py's pool drops its idle connections when the address changed; the
            # transport retires its connections to any other address.
            address = await self._client.connection_pool.get_master_address()
            if self._transport is not None:
                self._transport.follow_master(tuple(address))
        except (rex.RedisError, AttributeError):
            pass  # Sentinels unreachable (or no Sentinel pool): commands find out themselves
        finally:
            self._master_checking = False

    async def _execute_one(self, command: Command, idempotent: bool) -> Any:
        if self._watch_master:
            await self._check_master()
        if self.breaker._opened_at is None and not self._cluster:
            # The hot path: see RedisAdapter.execute.
            stats = self.stats
            stats.round_trips += 1
            stats.commands += 1
            transport = self._transport
            try:
                if transport is not None:
                    reply = await transport.execute(command)
                else:
                    reply = await self._client.execute_command(*command)
            except rex.NoScriptError:
                # Rare (a restarted server, SCRIPT FLUSH): send the source by the full path.
                batch = Batch((_as_eval(command),), idempotent=idempotent)
                replies = await self._send_with_retry(batch, batch.commands, 0, 0.0)
                return self._finish(batch, replies, None)[0]
            except _TRANSIENT as exc:
                batch = Batch((command,), idempotent=idempotent)
                t0 = time.monotonic()
                await self._pause_or_raise(batch, exc, 1, t0)
                return (await self._send_with_retry(batch, batch.commands, 1, t0))[0]
            except rex.RedisError as exc:
                self._on_success()
                raise translate_error(exc) from exc
            if self.breaker._failures:
                self._on_success()
            return reply
        return (await self.execute_batch(Batch((command,), idempotent=idempotent)))[0]

    async def execute_batch(self, batch: Batch) -> list[Any]:
        """Send the batch's commands in one round trip; return their replies in order."""
        if self._watch_master:
            await self._check_master()
        commands, merge = self._prepare(batch.commands)
        replies = await self._send_with_retry(batch, commands, 0, 0.0)
        return self._finish(batch, replies, merge)

    async def _pause_or_raise(
        self, batch: Batch, exc: BaseException, failures: int, t0: float
    ) -> None:
        err = self._on_transient(exc)
        delay = self._retry_delay(batch, err, failures, t0)
        if delay is None:
            raise err from exc
        if delay:
            await asyncio.sleep(delay)

    async def _send_with_retry(
        self, batch: Batch, commands: Sequence[Command], failures: int, t0: float
    ) -> list[Any]:
        while True:
            if not self.breaker.allow():
                raise self._fail_fast()
            try:
                replies = await self._send(commands)
            except _TRANSIENT as exc:
                failures += 1
                if failures == 1:
                    t0 = time.monotonic()
                await self._pause_or_raise(batch, exc, failures, t0)
                continue
            self._on_success()
            return replies

    async def _send(self, commands: Sequence[Command]) -> list[Any]:
        self.stats.round_trips += 1
        self.stats.commands += len(commands)
        client = self._client
        transport = self._transport
        if len(commands) == 1:
            cmd = commands[0]
            try:
                if transport is not None:
                    return [await transport.execute(cmd)]
                return [await client.execute_command(*cmd)]
            except rex.NoScriptError:
                pass  # re-sent as EVAL below, outside this handler
            except _TRANSIENT:
                raise
            except rex.RedisError as exc:
                return [exc]
            try:
                if transport is not None:
                    return [await transport.execute(_as_eval(cmd))]
                return [await client.execute_command(*_as_eval(cmd))]
            except _TRANSIENT:
                raise
            except rex.RedisError as exc:
                return [exc]
        if transport is not None:
            return await self._send_many(transport, commands)
        pipe = client.pipeline(transaction=False)
        for cmd in commands:
            pipe.execute_command(*cmd)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        missing = _noscript(replies, commands)
        if missing:
            pipe = client.pipeline(transaction=False)
            for i in missing:
                pipe.execute_command(*_as_eval(commands[i]))
            for i, reply in zip(missing, await pipe.execute(raise_on_error=False), strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, _TRANSIENT):
                raise reply
        return replies

    @staticmethod
    async def _send_many(transport: AsyncTransport, commands: Sequence[Command]) -> list[Any]:
        # The whole batch in one write on a shared connection; no Pipeline object.
        try:
            replies = await transport.execute_many(commands)
            missing = _noscript(replies, commands)
            if missing:
                again = await transport.execute_many([_as_eval(commands[i]) for i in missing])
                for i, reply in zip(missing, again, strict=True):
                    replies[i] = reply
        except _TRANSIENT:
            raise
        except rex.RedisError as exc:  # a value that cannot be sent (DataError)
            raise translate_error(exc) from exc
        for reply in replies:
            if isinstance(reply, _TRANSIENT):
                raise reply
        return replies

    async def ping(self) -> float:
        """Return the round-trip time of a PING in seconds (raises if Redis is down)."""
        t = time.perf_counter()
        await self.execute("PING")
        return time.perf_counter() - t

    async def aclose(self) -> None:
        """Close every connection (shared and pooled)."""
        if self._transport is not None:
            await self._transport.aclose()
        await self._client.aclose()
        pool = getattr(self._client, "connection_pool", None)
        if pool is not None:  # a pool we passed in is not closed by the client itself
            await pool.disconnect()
            for sentinel in _sentinels_of(pool):
                await sentinel.aclose()

    async def __aenter__(self) -> AsyncRedisAdapter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
