"""How the object cache degrades: a logged miss, or an exception (``on_error``).

In ``"miss"`` mode a failed read is a miss and a failed write returns False, logged once
per kind of failure (see :mod:`rcache._degrade`); in ``"raise"`` mode the
:class:`~rcache.errors.BackendError` rises to the caller. Keys appear at debug level only.
"""

from __future__ import annotations

import logging

from rcache._degrade import FailureLog, OnError
from rcache.errors import DecodeError

__all__ = ["Failures", "OnError", "logger"]

logger = logging.getLogger("rcache.objects")

_CONSEQUENCES = {
    "unreachable": "serving misses until Redis answers",
    "out of memory": "values are returned uncached until writes succeed again",
    "read-only": "values are returned uncached until writes succeed again",
    "error": "treated as a miss",
}


class Failures(FailureLog):
    """The object cache's failure policy and its log lines.

    Lost writes (see :class:`~rcache._degrade.FailureLog`) are of two kinds: ``"key"``, an
    entry a failed ``set`` or ``delete`` may have left (deleted by the redo), and ``"tag"``,
    a tag version a failed ``invalidate_tags`` left (renewed by the redo).
    """

    __slots__ = ()

    def __init__(self, on_error: OnError = "miss") -> None:
        super().__init__(on_error, logger=logger, what="object cache", consequences=_CONSEQUENCES)

    def decode(self, err: DecodeError, key: str) -> None:
        """Handle an unreadable stored entry (deleted by the caller): raise it, or log it."""
        logger.warning("object cache: dropped an unreadable entry (%s)", err)
        logger.debug("object cache: the unreadable entry was at key %r", key)
        if self.raise_errors:
            raise err
