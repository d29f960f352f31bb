"""How the page cache degrades when Redis fails (``on_error``), and what it logs.

A page cache in trouble must cost a request its caching, never a 500. With
``on_error="miss"`` a failed lookup lets the view run (``X-Cache: BYPASS``), a failed store
or lease release is dropped (the response still goes out) and a failed purge returns False.
One warning is logged per kind of failure (unreachable, out of memory, read-only, other)
until a later round trip shows that kind is over, so an outage is one line per worker, not
one per request. With ``on_error="raise"`` the :class:`~rcache.errors.BackendError` rises.

Log lines name the failure and the action, never a page, a header value or a key.
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

logger = logging.getLogger("rcache.pages")

OnError = Literal["miss", "raise"]

_WRITE_KINDS = frozenset({"out of memory", "read-only"})


def _kind(err: BackendError) -> str:
    if isinstance(err, BackendUnavailable | TimeoutError):
        return "unreachable"
    if isinstance(err, BackendOutOfMemory):
        return "out of memory"
    if isinstance(err, BackendReadOnly):
        return "read-only"
    return "error"


class Failures:
    """Apply ``on_error`` to failed round trips and rate-limit their warnings.

    A successful round trip ends "unreachable" and "error"; only a successful write ends
    "out of memory" and "read-only" (lookups keep working through those).
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
        with self._lock:
            first = kind not in self._reported
            self._reported.add(kind)
        if first:
            logger.warning(
                "page cache: %s failed (%s); pages are served by the application until "
                "Redis works again (logged once)",
                action,
                err,
            )
        else:
            logger.debug("page cache: %s failed again (%s)", action, kind)

    def decode(self, err: DecodeError) -> None:
        """Note an unreadable stored page: it is treated as a miss and overwritten."""
        logger.warning("page cache: ignored an unreadable stored page (%s)", err)

    def ok(self) -> None:
        """Note a successful round trip (enough to end an outage)."""
        if self._reported:
            self._end(self._reported - _WRITE_KINDS)

    def written(self) -> None:
        """Note a successful write: every kind of failure is over."""
        if self._reported:
            self._end(set(self._reported))

    def _end(self, kinds: set[str]) -> None:
        with self._lock:
            kinds &= self._reported
            self._reported -= kinds
        if kinds:
            logger.info("page cache: Redis works again (after: %s)", ", ".join(sorted(kinds)))
