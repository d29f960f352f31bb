"""How the object cache degrades: a logged miss, or an exception (``on_error``).

A cache that cannot reach Redis should cost a request a miss, not a 500. In ``"miss"``
mode a failed read is a miss and a failed write returns False; one warning is logged per
kind of failure (unreachable, out of memory, read-only, other) until that kind is over,
so an outage is one log line per worker, not one per request. In
``"raise"`` mode the :class:`~rcache.errors.BackendError` rises to the caller.

Log lines name the failure, never a value or a payload; keys appear at debug level only.
"""

from __future__ import annotations

import logging
import threading
from typing import Literal

from rcache.errors import (
    BackendError,
    BackendOutOfMemory,
    BackendReadOnly,
    BackendUnavailable,
    ConfigurationError,
    DecodeError,
)

__all__ = ["Failures", "OnError", "logger"]

logger = logging.getLogger("rcache.objects")

OnError = Literal["miss", "raise"]


_WRITE_KINDS = frozenset({"out of memory", "read-only"})
_CONSEQUENCE = {
    "unreachable": "serving misses until Redis answers",
    "out of memory": "values are returned uncached until writes succeed again",
    "read-only": "values are returned uncached until writes succeed again",
    "error": "treated as a miss",
}


def _kind(err: BackendError) -> str:
    if isinstance(err, BackendUnavailable | TimeoutError):
        return "unreachable"
    if isinstance(err, BackendOutOfMemory):
        return "out of memory"
    if isinstance(err, BackendReadOnly):
        return "read-only"
    return "error"


class Failures:
    """Apply the ``on_error`` policy to failures and rate-limit their warnings.

    One warning per kind of failure, until the kind is over: a successful round trip ends
    "unreachable" and "error"; only a successful *write* ends "out of memory" and
    "read-only" (reads keep working through those).
    """

    __slots__ = ("_lock", "_reported", "raise_errors")

    def __init__(self, on_error: OnError = "miss") -> None:
        if on_error not in ("miss", "raise"):
            raise ConfigurationError(f'on_error must be "miss" or "raise", not {on_error!r}')
        self.raise_errors = on_error == "raise"
        self._reported: set[str] = set()
        self._lock = threading.Lock()

    def backend(self, err: BackendError, action: str) -> None:
        """Handle a failed round trip of ``action``: raise it, or log it once per kind."""
        if self.raise_errors:
            raise err
        kind = _kind(err)
        if kind in self._reported:
            logger.debug("object cache: %s failed again (%s)", action, kind)
            return
        with self._lock:
            if kind in self._reported:
                return
            self._reported.add(kind)
        logger.warning(
            "object cache: %s failed (%s); %s (logged once, until this is over)",
            action,
            err,
            _CONSEQUENCE[kind],
        )

    def decode(self, err: DecodeError, key: str) -> None:
        """Handle an unreadable stored entry (deleted by the caller): raise it, or log it."""
        logger.warning("object cache: dropped an unreadable entry (%s)", err)
        logger.debug("object cache: the unreadable entry was at key %r", key)
        if self.raise_errors:
            raise err

    def ok(self) -> None:
        """Note a successful round trip (a read is enough to end an outage)."""
        if self._reported:
            self._end(self._reported - _WRITE_KINDS)

    def written(self) -> None:
        """Note a successful write: every kind of failure is over."""
        if self._reported:
            self._end(set(self._reported))

    def _end(self, kinds: set[str]) -> None:
        if not kinds:
            return
        with self._lock:
            self._reported -= kinds
        logger.info("object cache: Redis works again (after: %s)", ", ".join(sorted(kinds)))
