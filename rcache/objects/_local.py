"""``LocalTier``: an in-process tier in front of the object cache, kept coherent by Redis.

::

    cache = ObjectCache.from_url(url, prefix="shop", local=LocalTier(max_entries=50_000))
    cache.get("k")        # read from Redis, then held locally
    cache.get("k")        # answered in-process: no round trip
    # another process: cache.set("k", 2)  ->  Redis tells us, the local copy is dropped

How it stays coherent (Redis 7.0+, server-assisted client-side caching in broadcast
mode): one dedicated connection enables ``CLIENT TRACKING ... REDIRECT <itself> BCAST
PREFIX <key space>`` and subscribes to ``__redis__:invalidate`` (RESP2), so every change
of a key under the cache's key space, by anyone, arrives as a message that drops the
local copy. See :mod:`rcache.objects._local_listen` for the arrangement,
:mod:`rcache.objects._local_store` for how fills that race with writes are refused, and
:mod:`rcache.objects._local_read` for the read path.

- **Bypass**: while that connection is not confirmed (starting, lost, reconnecting with
  backoff, a missed health-check PING) the tier holds nothing and every read goes to
  Redis; losing it flushes the tier. So invalidations missed during an outage or a
  failover can never leave stale data behind.
- **This process's writes** (``set``, ``delete``, ``incr``, ``touch``, tag invalidation,
  the decorator's fills, ...) drop the local copy when Redis answers; the next read
  fetches the new value. (They are not written into the tier: Redis reports our own
  writes back too, since tracking belongs to the listener's connection and NOLOOP only
  silences a connection's own writes, so a stored copy would be dropped a moment later.)
- **Tags**: tag tokens live under the same prefix, so ``invalidate_tags`` anywhere drops
  every local entry stored with those tags. Tagged entries are held like the rest.
- **Expiry**: each fill reads the key's PTTL in the same round trip; the local copy dies
  no later than the Redis key (and after ``ttl`` seconds, if given).

What is held: the *stored bytes*, decoded on every hit. Holding decoded objects would
save the decode (about 2 us for a 100-byte JSON value; a round trip costs 30-60 us) but
hand every caller the same mutable object, so one request's ``result.append(...)`` would
change what the next request sees, across threads. Returning copies of mutable values
does not help: ``copy.deepcopy`` costs more than decoding (about 1.5-3x for JSON). So
decoding per hit is the fast option among the safe ones: a hit is exactly as safe as a
Redis read, the byte bound is exact (``max_bytes`` counts encoded sizes), and a hit is
still several times cheaper than a round trip.

Limits: standalone and Sentinel only (not Cluster); coherence is as fast as Redis's
messages (about a millisecond on a LAN; a network partition that leaves the connection
open is noticed after ``health_check_interval + reply_timeout`` at worst); writes by other
caches of *this* process are seen through Redis's message like any other process's; an
``AsyncObjectCache`` with a tier belongs to one event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from rcache.config import RedisSettings
from rcache.errors import ConfigurationError
from rcache.objects._context import CacheContext
from rcache.objects._local_drivers import TaskDriver, ThreadDriver
from rcache.objects._local_listen import Listener
from rcache.objects._local_read import RawReading, read_through, track
from rcache.objects._local_store import LocalStats, LocalStore
from rcache.ops import Op
from rcache.resilience import Backoff

__all__ = ["LocalContext", "LocalStats", "LocalTier"]

T = TypeVar("T")

_TIERS: weakref.WeakSet[LocalTier] = weakref.WeakSet()


def _seconds(value: float | timedelta | None, what: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not seconds > 0:
        raise ConfigurationError(f"{what} must be seconds > 0 or None")
    return seconds


class LocalTier:
    """A bounded in-process LRU in front of one object cache, invalidated by Redis.

    ``max_entries``: entries held at most; ``max_bytes``: their total encoded size at most
    (an entry larger than that is never held); least recently used entries go first.
    ``ttl``: seconds (or a timedelta) a local copy lives at most; None = until the Redis
    key expires or changes. ``health_check_interval``: seconds without traffic on the
    invalidation connection after which a PING checks it; ``reply_timeout``: seconds
    Redis has to answer (None = the settings' socket timeout, or 1 s); ``backoff``: pauses
    between reconnect attempts (default: the settings' retry backoff).

    Pass it to one cache: ``ObjectCache(adapter, local=LocalTier())`` (or
    ``AsyncObjectCache``). The listener starts on first use (a daemon thread for
    ``ObjectCache``, a task on the running loop for ``AsyncObjectCache``) or on
    :meth:`start`; until it is live, reads go to Redis. Closing the cache closes the tier.
    """

    def __init__(
        self,
        *,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        ttl: float | timedelta | None = None,
        health_check_interval: float = 3.0,
        reply_timeout: float | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError("max_entries must be an int >= 1")
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ConfigurationError("max_bytes must be an int >= 1")
        if not health_check_interval > 0:
            raise ConfigurationError("health_check_interval must be seconds > 0")
        self.health_check_interval = float(health_check_interval)
        self.reply_timeout = _seconds(reply_timeout, "reply_timeout")
        self.backoff = backoff
        self._store = LocalStore(
            max_entries=max_entries, max_bytes=max_bytes, ttl=_seconds(ttl, "ttl")
        )
        self._settings: RedisSettings | None = None
        self._is_async = False
        self._prefix = ""
        self._listener: Listener | None = None
        self._driver: ThreadDriver | TaskDriver | None = None
        self._lock = threading.Lock()
        self._closed = False
        _TIERS.add(self)

    # -- what it holds ---------------------------------------------------------------------

    @property
    def stats(self) -> LocalStats:
        """Counters: hits, misses, bypassed, fills, evictions, invalidations, flushes, ..."""
        return self._store.stats

    @property
    def live(self) -> bool:
        """True while the invalidation connection is tracking and entries are served."""
        return self._store.live

    @property
    def entries(self) -> int:
        """The number of entries held."""
        return self._store.entries

    @property
    def nbytes(self) -> int:
        """The total encoded size of the entries held, in bytes."""
        return self._store.nbytes

    @property
    def max_entries(self) -> int:
        """Entries held at most."""
        return self._store.max_entries

    @property
    def max_bytes(self) -> int:
        """Total encoded size held at most, in bytes."""
        return self._store.max_bytes

    @property
    def connection_id(self) -> int | None:
        """The Redis ``CLIENT ID`` of the invalidation connection, while there is one."""
        listener = self._listener
        return None if listener is None else listener.client_id

    def flush(self) -> None:
        """Drop every entry held locally (Redis is untouched)."""
        self._store.flush()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the invalidation listener now, if it is not running.

        For an ``AsyncObjectCache``, call it from a coroutine on the loop the cache is
        used on. Return at once; :meth:`wait_live` / :meth:`await_live` wait for it.
        """
        if self._settings is None:
            raise ConfigurationError("pass the LocalTier to a cache first (local=...)")
        self._kick()

    def wait_live(self, timeout: float = 5.0) -> bool:
        """Start the listener if needed and wait up to ``timeout`` s for it to be live."""
        self.start()
        deadline = time.monotonic() + timeout
        while not self._store.live and time.monotonic() < deadline:
            time.sleep(0.002)
        return self._store.live

    async def await_live(self, timeout: float = 5.0) -> bool:
        """Like :meth:`wait_live`, for an ``AsyncObjectCache`` (awaits instead of sleeping)."""
        self.start()
        deadline = time.monotonic() + timeout
        while not self._store.live and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        return self._store.live

    def close(self) -> None:
        """Stop the listener and drop everything held; reads then go to Redis."""
        self._closed = True
        driver, self._driver = self._driver, None
        if isinstance(driver, ThreadDriver):
            driver.close()
        elif driver is not None:
            self._stop_listener()
        self._store.go_down(lost=False)

    async def aclose(self) -> None:
        """Stop the listener task and drop everything held."""
        self._closed = True
        driver, self._driver = self._driver, None
        if isinstance(driver, TaskDriver):
            await driver.aclose()
        elif driver is not None:
            driver.close()
        self._store.go_down(lost=False)

    def _stop_listener(self) -> None:
        if self._listener is not None:
            self._listener.closed = True

    def _kick(self) -> None:
        """Start a listener if none is running (called on reads while not live)."""
        if self._closed or self._settings is None:
            return
        driver = self._driver
        if driver is not None and driver.is_alive():
            return
        if self._is_async:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return  # started by the first read on a loop
        with self._lock:
            driver = self._driver
            if self._closed or (driver is not None and driver.is_alive()):
                return
            self._stop_listener()
            settings = self._settings
            listener = Listener(
                self._store,
                prefix=self._prefix,
                backoff=self.backoff
                or Backoff(base=settings.retry_backoff_base, cap=settings.retry_backoff_cap),
                health_check_interval=self.health_check_interval,
                reply_timeout=self.reply_timeout or settings.socket_timeout or 1.0,
                check_master=settings.mode == "sentinel",
                clock=self._store.clock,
            )
            self._listener = listener
            if self._is_async:
                task_driver = TaskDriver(listener, settings)
                self._driver = task_driver
                task_driver.start()
            else:
                thread_driver = ThreadDriver(listener, settings)
                self._driver = thread_driver
                thread_driver.start()

    def _forked(self) -> None:
        """In a child process: the listener stayed in the parent; bypass until a new one."""
        self._lock = threading.Lock()
        self._store.reset_lock()
        self._store.go_down(lost=False)
        self._driver = None
        self._listener = None

    # -- the seams used by the cache -------------------------------------------------------

    def bind(self, ctx: CacheContext, settings: RedisSettings, is_async: bool) -> LocalContext:
        """Attach to the cache whose context is ``ctx``; return the context to use."""
        if self._settings is not None:
            raise ConfigurationError("a LocalTier serves one cache: create one per cache")
        if settings.mode == "cluster":
            raise ConfigurationError("the local tier needs a standalone or Sentinel Redis")
        self._settings = settings
        self._is_async = is_async
        self._prefix = ctx.head
        self._store.tag_head = ctx.tag_head
        values = {f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx) if f.init}
        return LocalContext(**values, local=self)

    def read(
        self,
        ctx: CacheContext,
        redis_keys: Sequence[str],
        pttl: bool,
        tag_ids: Sequence[str],
        fetch: Callable[..., Op[Any]],
    ) -> Op[RawReading]:
        """The read path with the tier (see :mod:`rcache.objects._local_read`)."""
        if not self._store.live:
            self._kick()
        return read_through(self._store, ctx, redis_keys, pttl, tag_ids, fetch)

    def track(self, op: Op[T]) -> Op[T]:
        """Wrap an operation so that the keys it writes are dropped locally."""
        return track(self._store, op)

    def invalidate(self, redis_keys: Sequence[str]) -> None:
        """Drop the local copies of ``redis_keys``."""
        self._store.invalidate(redis_keys)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "live" if self.live else "bypassed"
        return (
            f"LocalTier({state}, entries={self.entries}/{self.max_entries}, "
            f"bytes={self.nbytes}/{self.max_bytes})"
        )


@dataclass(slots=True, eq=False)
class LocalContext(CacheContext):
    """A cache context whose reads go through a local tier."""

    local: LocalTier = field(kw_only=True)


def _after_fork_in_child() -> None:
    for tier in list(_TIERS):
        tier._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
