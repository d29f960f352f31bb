"""How the object cache degrades: a logged miss, or an exception (``on_error``).

In ``"miss"`` mode a failed read is a miss and a failed write returns False, logged once
per kind of failure (see :mod:`rcache._degrade`); in ``"raise"`` mode the
:class:`~rcache.errors.BackendError` rises to the caller. Keys appear at debug level only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from rcache._degrade import FailureLog, OnError
from rcache.errors import DecodeError

__all__ = ["REDO_LIMIT", "Failures", "OnError", "logger"]

#: Entries a cache remembers to delete or invalidate once Redis answers again; beyond this
#: many the rest are dropped (with one warning) and stay until their TTL.
REDO_LIMIT = 10_000

logger = logging.getLogger("rcache.objects")

_CONSEQUENCES = {
    "unreachable": "serving misses until Redis answers",
    "out of memory": "values are returned uncached until writes succeed again",
    "read-only": "values are returned uncached until writes succeed again",
    "error": "treated as a miss",
}


class Failures(FailureLog):
    """The object cache's failure policy and its log lines, and what to redo after an outage.

    A write that failed can leave a stale entry behind: a ``set`` or a ``delete`` that did
    not reach Redis leaves the old value, an ``invalidate_tags`` the old tag version, and a
    Redis that was only out of reach (a partition, a stalled server) still holds them when
    it answers again. Such writes are remembered (:meth:`lost`, at most
    :data:`REDO_LIMIT`) and redone by the first round trip that succeeds afterwards: the
    entries deleted, the tags given new versions. Redoing can only cost extra misses (a
    value written since is deleted too), never serve a stale one.

    ``redo``: set by the cache, called (at most once at a time) when something is to be
    redone and a round trip has just succeeded.
    """

    __slots__ = ("_dropped", "_redo_keys", "_redo_lock", "_redo_tags", "redo", "redo_due")

    def __init__(self, on_error: OnError = "miss") -> None:
        super().__init__(on_error, logger=logger, what="object cache", consequences=_CONSEQUENCES)
        self._redo_keys: set[str] = set()
        self._redo_tags: set[str] = set()
        self._redo_lock = threading.Lock()
        self._dropped = False
        self.redo_due = False
        self.redo: Callable[[], None] | None = None

    def lost(self, keys: Iterable[str] = (), tags: Iterable[str] = ()) -> None:
        """Remember Redis keys to delete and tag keys to renew once Redis answers again."""
        dropped = False
        with self._redo_lock:
            for target, items in ((self._redo_keys, keys), (self._redo_tags, tags)):
                for item in items:
                    if len(self._redo_keys) + len(self._redo_tags) >= REDO_LIMIT:
                        dropped = True
                        break
                    target.add(item)
            self.redo_due = bool(self._redo_keys or self._redo_tags)
            first_drop = dropped and not self._dropped
            self._dropped = self._dropped or dropped
        if first_drop:
            logger.warning(
                "object cache: more than %d failed writes to redo after the outage; the "
                "others stay stale until their TTL",
                REDO_LIMIT,
            )

    def done(self, keys: Iterable[str] = (), tags: Iterable[str] = ()) -> None:
        """Forget keys and tags a later write has just set, deleted or renewed.

        Called before that write's :meth:`written`, so the redo it may set off does not
        delete the value it wrote.
        """
        if not self.redo_due:
            return
        with self._redo_lock:
            self._redo_keys.difference_update(keys)
            self._redo_tags.difference_update(tags)
            self.redo_due = bool(self._redo_keys or self._redo_tags)

    def take_redo(self) -> tuple[list[str], list[str]]:
        """Return and forget what is to be redone: (keys to delete, tag keys to renew)."""
        with self._redo_lock:
            keys, tags = list(self._redo_keys), list(self._redo_tags)
            self._redo_keys.clear()
            self._redo_tags.clear()
            self.redo_due = False
            self._dropped = False
        return keys, tags

    def ok(self) -> None:
        """Note a successful round trip; redo the writes an outage lost, if any."""
        if self._reported:
            super().ok()
        if self.redo_due and self.redo is not None:
            self.redo()

    def written(self) -> None:
        """Note a successful write; redo the writes an outage lost, if any."""
        if self._reported:
            super().written()
        if self.redo_due and self.redo is not None:
            self.redo()

    def decode(self, err: DecodeError, key: str) -> None:
        """Handle an unreadable stored entry (deleted by the caller): raise it, or log it."""
        logger.warning("object cache: dropped an unreadable entry (%s)", err)
        logger.debug("object cache: the unreadable entry was at key %r", key)
        if self.raise_errors:
            raise err
