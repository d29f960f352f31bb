"""Fail open, and say so once: the ``on_error`` policy shared by the caches.

A cache that cannot reach Redis should cost a request its caching, never a 500. With
``on_error="miss"`` a failed round trip is absorbed (the caller turns it into a miss, a
``False`` write, an uncached response) and one warning is logged per *kind* of failure
(unreachable, out of memory, read-only, other) until that kind is over, so an outage is
one log line per worker, not one per request. With ``on_error="raise"`` the
:class:`~rcache.errors.BackendError` rises to the caller.

Log lines name the failure and the action, never a value, a payload or a key.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Literal

from rcache.errors import (
    BackendError,
    BackendOutOfMemory,
    BackendReadOnly,
    BackendUnavailable,
    ConfigurationError,
)

__all__ = [
    "REDO_LIMIT",
    "REDO_PAUSE",
    "FailureLog",
    "OnError",
    "async_redo",
    "failure_kind",
    "sync_redo",
]

OnError = Literal["miss", "raise"]

#: Writes a cache remembers to redo once Redis answers again; beyond this many the rest are
#: dropped (with one warning) and their entries stay until their TTL.
REDO_LIMIT = 10_000
#: Seconds between two attempts to redo them when one failed (Redis read-only, say).
REDO_PAUSE = 1.0

# Reads keep working while Redis refuses writes, so only a write proves these are over.
_WRITE_KINDS = frozenset({"out of memory", "read-only"})


def failure_kind(err: BackendError) -> str:
    """Return the kind of ``err``: unreachable, out of memory, read-only or error."""
    if isinstance(err, BackendUnavailable | TimeoutError):
        return "unreachable"
    if isinstance(err, BackendOutOfMemory):
        return "out of memory"
    if isinstance(err, BackendReadOnly):
        return "read-only"
    return "error"


class FailureLog:
    """Apply ``on_error`` to failed round trips, rate-limit their warnings, redo lost writes.

    ``what`` names the cache in log lines ("object cache"); ``consequences`` says, per kind,
    what the cache does meanwhile. A successful round trip ends "unreachable" and "error";
    only a successful write ends "out of memory" and "read-only".

    Lost writes: a write that failed can leave a stale entry behind in a Redis that was
    only out of reach (a partition, a stalled server). The cache records what it was
    (:meth:`lost`: a kind, such as "key" or "tag", and the Redis keys, at most
    :data:`REDO_LIMIT`); the first round trip that succeeds afterwards calls ``on_redo``
    (set by the cache), which takes the records (:meth:`take_redo`) and redoes them in one
    round trip, sent once; a redo that fails is tried again after a later success, at most
    once per :data:`REDO_PAUSE`. A later write of the same thing takes it off the list
    before it is sent (:meth:`done`). Best effort: the round trip that ends the outage
    may still have read an old value, the asyncio redo runs in a task moments later, and
    the records belong to one cache object.
    """

    __slots__ = (
        "_dropped",
        "_lock",
        "_redo",
        "_redo_lock",
        "_redo_not_before",
        "_reported",
        "consequences",
        "logger",
        "on_redo",
        "raise_errors",
        "redo_due",
        "what",
    )

    def __init__(
        self,
        on_error: OnError,
        *,
        logger: logging.Logger,
        what: str,
        consequences: Mapping[str, str],
    ) -> None:
        if on_error not in ("miss", "raise"):
            raise ConfigurationError(f'on_error must be "miss" or "raise", not {on_error!r}')
        self.raise_errors = on_error == "raise"
        self.logger = logger
        self.what = what
        self.consequences = consequences
        self._reported: set[str] = set()
        self._lock = threading.Lock()
        self._redo: set[tuple[str, str]] = set()
        self._redo_lock = threading.Lock()
        self._redo_not_before = 0.0
        self._dropped = False
        self.redo_due = False
        self.on_redo: Callable[[], None] | None = None

    def backend(self, err: BackendError, action: str) -> None:
        """Handle a failed round trip of ``action``: raise it, or log it once per kind."""
        if self.raise_errors:
            raise err
        kind = failure_kind(err)
        with self._lock:
            first = kind not in self._reported
            self._reported.add(kind)
        if first:
            self.logger.warning(
                "%s: %s failed (%s); %s (logged once, until this is over)",
                self.what,
                action,
                err,
                self.consequences.get(kind, "treated as a miss"),
            )
        else:
            self.logger.debug("%s: %s failed again (%s)", self.what, action, kind)

    def ok(self) -> None:
        """Note a successful round trip (a read is enough to end an outage); redo if due."""
        if self._reported:
            self._end(self._reported - _WRITE_KINDS)
        if self.redo_due:
            self._redo_now()

    def written(self) -> None:
        """Note a successful write: every kind of failure is over; redo if due."""
        if self._reported:
            self._end(set(self._reported))
        if self.redo_due:
            self._redo_now()

    def _redo_now(self) -> None:
        if self.on_redo is not None and time.monotonic() >= self._redo_not_before:
            self.on_redo()

    def redo_failed(self) -> None:
        """Note that a redo failed: the next attempt waits :data:`REDO_PAUSE` seconds."""
        self._redo_not_before = time.monotonic() + REDO_PAUSE

    def lost(self, kind: str, keys: Iterable[str]) -> None:
        """Remember writes of ``kind`` to ``keys`` to redo once Redis answers again."""
        dropped = False
        with self._redo_lock:
            for key in keys:
                if len(self._redo) >= REDO_LIMIT:
                    dropped = True
                    break
                self._redo.add((kind, key))
            self.redo_due = bool(self._redo)
            first_drop = dropped and not self._dropped
            self._dropped = self._dropped or dropped
        if first_drop:
            self.logger.warning(
                "%s: more than %d failed writes to redo after the outage; the others stay "
                "stale until their TTL",
                self.what,
                REDO_LIMIT,
            )

    def done(self, kind: str, keys: Iterable[str]) -> None:
        """Forget writes of ``kind`` to ``keys``: a later write has just succeeded.

        Called before that write's :meth:`written`, so the redo it may set off leaves
        what it wrote alone.
        """
        if not self.redo_due:
            return
        with self._redo_lock:
            self._redo.difference_update((kind, key) for key in keys)
            self.redo_due = bool(self._redo)

    def take_redo(self) -> dict[str, list[str]]:
        """Return and forget what is to be redone, as {kind: [keys]}."""
        with self._redo_lock:
            taken, self._redo = self._redo, set()
            self.redo_due = False
            self._dropped = False
        out: dict[str, list[str]] = {}
        for kind, key in taken:
            out.setdefault(kind, []).append(key)
        return out

    def _end(self, kinds: set[str]) -> None:
        with self._lock:
            kinds &= self._reported
            self._reported -= kinds
        if kinds:
            self.logger.info(
                "%s: Redis works again (after: %s)", self.what, ", ".join(sorted(kinds))
            )


def sync_redo(run: Callable[[], object], logger: logging.Logger) -> Callable[[], None]:
    """Return an ``on_redo`` for blocking code: ``run()`` now, one thread at a time.

    ``run`` redoes the lost writes (its own failures put them back on the list); anything
    it raises is logged at debug level, never passed to the caller of the round trip that
    set it off.
    """
    busy = threading.Lock()

    def redo() -> None:
        if not busy.acquire(blocking=False):
            return
        try:
            run()
        except Exception:
            logger.debug("redoing the writes an outage lost failed", exc_info=True)
        finally:
            busy.release()

    return redo


def async_redo(run: Callable[[], Awaitable[object]], logger: logging.Logger) -> Callable[[], None]:
    """Return an ``on_redo`` for asyncio code: ``run()`` in a task of the running loop.

    One task at a time; outside a running loop nothing happens (the next success in one
    does it).
    """
    task: asyncio.Task[None] | None = None

    async def quietly() -> None:
        try:
            await run()
        except Exception:
            logger.debug("redoing the writes an outage lost failed", exc_info=True)

    def redo() -> None:
        nonlocal task
        if task is not None and not task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(quietly())

    return redo
