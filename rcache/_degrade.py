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

import logging
import threading
from collections.abc import Mapping
from typing import Literal

from rcache.errors import (
    BackendError,
    BackendOutOfMemory,
    BackendReadOnly,
    BackendUnavailable,
    ConfigurationError,
)

__all__ = ["FailureLog", "OnError", "failure_kind"]

OnError = Literal["miss", "raise"]

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
    """Apply ``on_error`` to failed round trips and rate-limit their warnings.

    ``what`` names the cache in log lines ("object cache"); ``consequences`` says, per kind,
    what the cache does meanwhile. A successful round trip ends "unreachable" and "error";
    only a successful write ends "out of memory" and "read-only".
    """

    __slots__ = ("_lock", "_reported", "consequences", "logger", "raise_errors", "what")

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
        """Note a successful round trip (a read is enough to end an outage)."""
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
            self.logger.info(
                "%s: Redis works again (after: %s)", self.what, ", ".join(sorted(kinds))
            )
