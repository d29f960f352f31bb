"""``ReliableQueue`` and ``AsyncReliableQueue``: a work queue that loses nothing it accepted.

Key layout (``<q>`` = ``<key prefix>rq:1:{<name>}``; the braces are a Cluster hash tag, so
every key of one queue lives in one slot and BLMOVE and the scripts work on Cluster)::

    <q>:pending                  list   LPUSH by put(), taken from the right (FIFO)
    <q>:processing:<consumer>    list   jobs a consumer took and has not acked yet
    <q>:claims                   hash   job id -> claim time (server clock, ms)
    <q>:consumers                set    every consumer that ever took a job
    <q>:dead                     list   payloads that are not jobs or cannot be decoded
    <q>:once:<job id>            string idempotency markers (once())

A stored job is ``<32 hex job id>:<attempt>:<codec bytes>``. ``get()`` moves a job from
``pending`` to the consumer's processing list with BLMOVE (atomic: a job is always in
one of the lists), then records the claim. A consumer that dies leaves its jobs in its
processing list; :meth:`reap` puts those claimed longer ago than the visibility timeout
back at the front of ``pending`` (one Lua script, atomic per run), so every accepted job is
processed at least once.

After a failover the new master may miss the last writes the old one accepted (Redis
replicates asynchronously): a job taken or acked just before can come back and run twice.
:meth:`once` is the guard for work that must not be repeated.

Every operation is a generator (:mod:`rcache.ops`) run by either adapter.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.codecs import Codec
from rcache.errors import (
    BackendError,
    BackendReadOnly,
    BackendTimeout,
    BackendUnavailable,
    ConfigurationError,
    DecodeError,
)
from rcache.keys import KeySpace, key_head
from rcache.ops import Batch, Op, Sleep
from rcache.resilience import Backoff
from rcache.scripts import Script
from rcache.ttl import TTL, to_milliseconds

__all__ = ["AsyncReliableQueue", "Job", "QueueKeys", "ReliableQueue"]

logger = logging.getLogger("rcache.messaging")

CLAIM = Script.from_package("rcache.messaging", "claim.lua")
TOUCH = Script.from_package("rcache.messaging", "touch.lua")
REQUEUE = Script.from_package("rcache.messaging", "requeue.lua")
REAP = Script.from_package("rcache.messaging", "reap.lua")

_ID_LEN = 32
# Errors that mean "Redis is away for now": get() waits them out unless told to raise.
_OUTAGE = (BackendUnavailable, BackendTimeout, BackendReadOnly)


@dataclass(frozen=True, slots=True)
class Job:
    """A job taken from a queue: ``id``, decoded ``data``, ``attempt`` (1 = first delivery).

    ``attempt`` grows each time the job is given back (nack, retry) or reaped.
    """

    id: str
    data: Any
    attempt: int
    raw: bytes = field(repr=False)


def wrap(job_id: str, attempt: int, body: bytes) -> bytes:
    """Return the stored form of a job."""
    return b"%s:%d:%s" % (job_id.encode("ascii"), attempt, body)


def unwrap(raw: bytes) -> tuple[str, int, bytes]:
    """Return ``(job id, attempt, body)`` of a stored job; DecodeError if it is not one."""
    sep = raw.find(b":", _ID_LEN + 1)
    if raw[_ID_LEN : _ID_LEN + 1] != b":" or sep < 0:
        raise DecodeError("a queue item that is not a job")
    try:
        return raw[:_ID_LEN].decode("ascii"), int(raw[_ID_LEN + 1 : sep]), raw[sep + 1 :]
    except ValueError:
        raise DecodeError("a queue item that is not a job") from None


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """The Redis keys of one queue (see the module docs)."""

    lead: str
    name: str
    space: KeySpace = KeySpace(prefix="rq")

    def key(self, suffix: str) -> str:
        return self.lead + self.space.tagged(suffix, self.name)

    @property
    def pending(self) -> str:
        return self.key("pending")

    @property
    def claims(self) -> str:
        return self.key("claims")

    @property
    def consumers(self) -> str:
        return self.key("consumers")

    @property
    def dead(self) -> str:
        return self.key("dead")

    def processing(self, consumer: str) -> str:
        return self.key(f"processing:{consumer}")

    def once(self, job_id: str) -> str:
        return self.key(f"once:{job_id}")


# -- operations -------------------------------------------------------------------------


def _unblocked(err: BackendError) -> bool:
    """Whether Redis ended a blocking command because the server turned into a replica.

    A failover (Sentinel, ``CLUSTER FAILOVER``, ``REPLICAOF``) ends every BLMOVE blocked
    on the demoted master with ``UNBLOCKED ... (master -> replica?)``: the wait goes on
    against the new master (the next send meets READONLY or MOVED and is redirected).
    """
    return "UNBLOCKED" in str(err)


def put(keys: QueueKeys, body: bytes) -> Op[str]:
    """Queue ``body`` as a new job; return its id."""
    job_id = uuid.uuid4().hex
    yield Batch([("LPUSH", keys.pending, wrap(job_id, 1, body))], idempotent=False)
    return job_id


def get(
    keys: QueueKeys,
    consumer: str,
    codec: Codec,
    timeout: float | None,
    block_slice: float | None,
    backoff: Backoff,
    raise_on_disconnect: bool,
) -> Op[Job | None]:
    """Take the next job, waiting up to ``timeout`` s (None = until one comes).

    The wait is cut into BLMOVEs of at most ``block_slice`` seconds (None = no limit), so a
    wait longer than the socket timeout never reads as a timeout. While Redis is away, the
    wait goes on with backoff (the error is raised only with ``raise_on_disconnect``), and so
    it does when a failover turns the server into a replica under a blocked BLMOVE.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    processing = keys.processing(consumer)
    registered = False
    failures = 0
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        wait = (
            left
            if block_slice is None or (left is not None and left < block_slice)
            else block_slice
        )
        if wait is not None and wait <= 0:
            move: tuple[Any, ...] = ("LMOVE", keys.pending, processing, "RIGHT", "LEFT")
        else:  # BLMOVE 0 blocks for good: only reached with no timeout and no slice
            move = ("BLMOVE", keys.pending, processing, "RIGHT", "LEFT", round(wait or 0, 3))
        commands = [move] if registered else [("SADD", keys.consumers, consumer), move]
        try:
            replies = yield Batch(commands, idempotent=False)
        except BackendError as err:
            if raise_on_disconnect or not (isinstance(err, _OUTAGE) or _unblocked(err)):
                raise
            failures += 1
            (logger.warning if failures == 1 else logger.debug)(
                "queue %s: Redis unavailable while waiting (%s); retrying", keys.name, err
            )
            pause = backoff.compute(failures)
            if deadline is not None and time.monotonic() + pause >= deadline:
                return None
            if pause:
                yield Sleep(pause)
            continue
        registered, failures = True, 0
        raw = replies[-1]
        if raw is not None:
            job = yield from _claim(keys, consumer, codec, processing, raw)
            if job is not None:
                return job
        elif left is not None and left <= 0:
            return None


def _claim(
    keys: QueueKeys, consumer: str, codec: Codec, processing: str, raw: bytes
) -> Op[Job | None]:
    try:
        job_id, attempt, body = unwrap(raw)
        data = codec.decode(body)
    except DecodeError as exc:
        logger.error("queue %s: moving an unreadable item to the dead letters: %s", keys.name, exc)
        yield Batch([("LREM", processing, 1, raw), ("LPUSH", keys.dead, raw)], idempotent=False)
        return None
    try:
        yield Batch([CLAIM([keys.claims, keys.consumers], [job_id, consumer])])
    except _OUTAGE as exc:  # unclaimed jobs get a claim from the next reap()
        logger.debug("queue %s: could not record the claim of %s: %s", keys.name, job_id, exc)
    return Job(job_id, data, attempt, raw)


def ack(keys: QueueKeys, consumer: str, job: Job) -> Op[bool]:
    """Drop a finished job; False if this consumer no longer held it (it was reaped)."""
    removed, _ = yield Batch(
        [("LREM", keys.processing(consumer), 1, job.raw), ("HDEL", keys.claims, job.id)]
    )
    return bool(removed)


def requeue(keys: QueueKeys, consumer: str, job: Job, where: str) -> Op[bool]:
    """Give a job back to ``pending`` (``where`` = "front" or "back")."""
    (moved,) = yield Batch(
        [REQUEUE([keys.processing(consumer), keys.pending, keys.claims], [job.raw, job.id, where])]
    )
    return bool(moved)


def touch(keys: QueueKeys, consumer: str, job: Job) -> Op[bool]:
    """Restart the visibility timeout of a job this consumer holds."""
    (held,) = yield Batch([TOUCH([keys.processing(consumer), keys.claims], [job.raw, job.id])])
    return bool(held)


def reap(keys: QueueKeys, visibility_ms: int) -> Op[int]:
    """Re-queue jobs claimed more than ``visibility_ms`` ago; return how many."""
    (members,) = yield Batch([("SMEMBERS", keys.consumers)])
    lists = sorted(keys.processing(m.decode("utf-8", "replace")) for m in members)
    (moved,) = yield Batch([REAP([keys.pending, keys.claims, keys.dead, *lists], [visibility_ms])])
    return int(moved)


def once(keys: QueueKeys, job_id: str, ttl_ms: int) -> Op[bool]:
    """Mark ``job_id`` as done for ``ttl_ms``; True only for the first caller."""
    (first,) = yield Batch([("SET", keys.once(job_id), b"1", "NX", "PX", ttl_ms)], idempotent=False)
    return bool(first)


def size(key: str) -> Op[int]:
    (n,) = yield Batch([("LLEN", key)])
    return int(n)


# -- the two shells ---------------------------------------------------------------------


class _QueueBase:
    def __init__(
        self,
        adapter: RedisAdapter | AsyncRedisAdapter,
        name: str,
        consumer: str | None,
        codec: Codec | None,
        backoff: Backoff | None,
        raise_on_disconnect: bool,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError("a queue needs a non-empty str name")
        if consumer is None:
            consumer = f"{socket.gethostname()}:{os.getpid()}"
        if not isinstance(consumer, str) or not consumer:
            raise ConfigurationError("a consumer id must be a non-empty str")
        s = adapter.settings
        self.keys = QueueKeys(key_head(adapter.key_prefix), name)
        self.name = name
        self.consumer = consumer
        self.codec = codec if codec is not None else Codec()
        self.backoff = backoff or Backoff(base=s.retry_backoff_base, cap=s.retry_backoff_cap)
        self.raise_on_disconnect = raise_on_disconnect
        # Half the socket timeout: room for a slow reply before the client gives up.
        self._block_slice = None if s.socket_timeout is None else s.socket_timeout / 2

    def _get(self, timeout: float | None) -> Op[Job | None]:
        if timeout is not None and timeout < 0:
            raise ConfigurationError("timeout must be >= 0 seconds or None")
        return get(
            self.keys,
            self.consumer,
            self.codec,
            timeout,
            self._block_slice,
            self.backoff,
            self.raise_on_disconnect,
        )

    @staticmethod
    def _visibility_ms(visibility_timeout: TTL) -> int:
        ms = to_milliseconds(visibility_timeout)
        if not ms:
            raise ConfigurationError("visibility_timeout must be > 0 seconds")
        return ms

    @staticmethod
    def _once_args(job: Job | str, ttl: TTL) -> tuple[str, int]:
        ms = to_milliseconds(ttl)
        if not ms:
            raise ConfigurationError("once() needs a ttl > 0 seconds")
        return (job.id if isinstance(job, Job) else job), ms

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, consumer={self.consumer!r})"


class ReliableQueue(_QueueBase):
    """A work queue (blocking code) whose jobs survive crashed consumers and failovers.

    ``name``: the queue; ``consumer``: this worker's id, stable across restarts if possible
    (default ``hostname:pid``); ``codec``: encodes jobs (default json).
    ``raise_on_disconnect``: let ``get()`` raise while Redis is unreachable instead of
    waiting it out. ``put``, ``ack`` and the rest always raise
    :class:`~rcache.errors.BackendError` when Redis cannot be reached.

    ::

        queue = ReliableQueue(adapter, "emails", consumer="worker-1")
        queue.put({"to": "ada@example.com"})
        job = queue.get(timeout=5)
        if job is not None:
            send(job.data)
            queue.ack(job)
        queue.reap(visibility_timeout=60)   # now and then, in any worker
    """

    def __init__(
        self,
        adapter: RedisAdapter,
        name: str,
        consumer: str | None = None,
        *,
        codec: Codec | None = None,
        backoff: Backoff | None = None,
        raise_on_disconnect: bool = False,
    ) -> None:
        super().__init__(adapter, name, consumer, codec, backoff, raise_on_disconnect)
        self._adapter = adapter

    def put(self, item: Any) -> str:
        """Queue ``item`` (encoded by the codec); return the new job's id."""
        return self._adapter.run(put(self.keys, self.codec.encode(item)))

    def get(self, timeout: float | None = None) -> Job | None:
        """Take the next job, waiting up to ``timeout`` s (None = until one comes; 0 = no wait).

        The job stays in this consumer's processing list until :meth:`ack`, :meth:`nack`
        or :meth:`retry`. Waits of any length work whatever the socket timeout.
        """
        return self._adapter.run(self._get(timeout))

    def ack(self, job: Job) -> bool:
        """Mark ``job`` done; False if it was no longer held (reaped: it may run again)."""
        return self._adapter.run(ack(self.keys, self.consumer, job))

    def nack(self, job: Job) -> bool:
        """Give ``job`` back to be taken next (attempt + 1); False if no longer held."""
        return self._adapter.run(requeue(self.keys, self.consumer, job, "front"))

    def retry(self, job: Job) -> bool:
        """Give ``job`` back behind every waiting job (attempt + 1); False if no longer held."""
        return self._adapter.run(requeue(self.keys, self.consumer, job, "back"))

    def touch(self, job: Job) -> bool:
        """Restart ``job``'s visibility timeout (for long jobs); False if no longer held."""
        return self._adapter.run(touch(self.keys, self.consumer, job))

    def reap(self, visibility_timeout: TTL) -> int:
        """Re-queue jobs held longer than ``visibility_timeout`` s by any consumer; return how many.

        Claims use the Redis server's clock, so consumers' clocks do not matter. Call it
        periodically from one or more workers; runs are atomic.
        """
        return self._adapter.run(reap(self.keys, self._visibility_ms(visibility_timeout)))

    def once(self, job: Job | str, ttl: TTL) -> bool:
        """Return True the first time it is called for this job id within ``ttl`` s.

        For work that must not run twice when a job comes back after a failover::

            if queue.once(job, ttl=3600):
                charge_card(job.data)
            queue.ack(job)

        The marker is set before the work: a consumer that crashes after ``once()`` and
        before finishing leaves the job marked, and its next run skips the work.
        """
        return self._adapter.run(once(self.keys, *self._once_args(job, ttl)))

    def size(self) -> int:
        """Return the number of jobs waiting (not counting those being processed)."""
        return self._adapter.run(size(self.keys.pending))

    def processing(self) -> int:
        """Return the number of jobs this consumer holds."""
        return self._adapter.run(size(self.keys.processing(self.consumer)))


class AsyncReliableQueue(_QueueBase):
    """A work queue for asyncio code; see :class:`ReliableQueue` (same methods, awaited)."""

    def __init__(
        self,
        adapter: AsyncRedisAdapter,
        name: str,
        consumer: str | None = None,
        *,
        codec: Codec | None = None,
        backoff: Backoff | None = None,
        raise_on_disconnect: bool = False,
    ) -> None:
        super().__init__(adapter, name, consumer, codec, backoff, raise_on_disconnect)
        self._adapter = adapter

    async def put(self, item: Any) -> str:
        """Queue ``item``; return the new job's id."""
        return await self._adapter.run(put(self.keys, self.codec.encode(item)))

    async def get(self, timeout: float | None = None) -> Job | None:
        """Take the next job, waiting up to ``timeout`` s; see :meth:`ReliableQueue.get`."""
        return await self._adapter.run(self._get(timeout))

    async def ack(self, job: Job) -> bool:
        """Mark ``job`` done; False if it was no longer held."""
        return await self._adapter.run(ack(self.keys, self.consumer, job))

    async def nack(self, job: Job) -> bool:
        """Give ``job`` back to be taken next."""
        return await self._adapter.run(requeue(self.keys, self.consumer, job, "front"))

    async def retry(self, job: Job) -> bool:
        """Give ``job`` back behind every waiting job."""
        return await self._adapter.run(requeue(self.keys, self.consumer, job, "back"))

    async def touch(self, job: Job) -> bool:
        """Restart ``job``'s visibility timeout."""
        return await self._adapter.run(touch(self.keys, self.consumer, job))

    async def reap(self, visibility_timeout: TTL) -> int:
        """Re-queue jobs held longer than ``visibility_timeout`` s; return how many."""
        return await self._adapter.run(reap(self.keys, self._visibility_ms(visibility_timeout)))

    async def once(self, job: Job | str, ttl: TTL) -> bool:
        """Return True the first time it is called for this job id; see ReliableQueue.once."""
        return await self._adapter.run(once(self.keys, *self._once_args(job, ttl)))

    async def size(self) -> int:
        """Return the number of jobs waiting."""
        return await self._adapter.run(size(self.keys.pending))

    async def processing(self) -> int:
        """Return the number of jobs this consumer holds."""
        return await self._adapter.run(size(self.keys.processing(self.consumer)))
