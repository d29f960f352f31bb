"""How the page cache degrades when Redis fails (``on_error``), and what it logs.

With ``on_error="miss"`` a failed lookup lets the view run (``X-Cache: BYPASS``), a failed
store or lease release is dropped (the response still goes out) and a failed purge returns
False, logged once per kind of failure (see :mod:`rcache._degrade`). With
``on_error="raise"`` the :class:`~rcache.errors.BackendError` rises.
"""

from __future__ import annotations

import logging

from rcache._degrade import FailureLog, OnError
from rcache.errors import DecodeError

__all__ = ["Failures", "OnError", "logger"]

logger = logging.getLogger("rcache.pages")

_SERVED_BY_APP = "pages are served by the application until Redis works again"
_CONSEQUENCES = dict.fromkeys(
    ("unreachable", "out of memory", "read-only", "error"), _SERVED_BY_APP
)


class Failures(FailureLog):
    """The page cache's failure policy and its log lines."""

    __slots__ = ()

    def __init__(self, on_error: OnError = "miss") -> None:
        super().__init__(on_error, logger=logger, what="page cache", consequences=_CONSEQUENCES)

    def decode(self, err: DecodeError) -> None:
        """Note an unreadable stored page: it is treated as a miss and overwritten."""
        logger.warning("page cache: ignored an unreadable stored page (%s)", err)
