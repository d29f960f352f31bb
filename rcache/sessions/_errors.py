"""Errors of the session store (part of the tree in :mod:`rcache.errors`)::

RCacheError
├── SessionTooLarge                   a save would exceed max_session_bytes
└── BackendError
    └── BackendUnavailable
        └── SessionUnavailable        changes to a session that could not be loaded
"""

from __future__ import annotations

from rcache.errors import BackendUnavailable, RCacheError

__all__ = ["SessionTooLarge", "SessionUnavailable"]


class SessionTooLarge(RCacheError):
    """A save would make the session larger than ``SessionConfig.max_session_bytes``.

    Raised before anything is written: the stored session is unchanged. ``size`` and
    ``limit`` are in bytes (field names plus encoded values).
    """

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the session would hold about {size} bytes, more than max_session_bytes={limit}"
        )
        self.size = size
        self.limit = limit


class SessionUnavailable(BackendUnavailable):
    """The session could not be loaded (Redis failed), so it cannot be changed.

    With ``on_load_error="anonymous"`` a request whose session failed to load sees an empty
    session. Writing that empty session back would replace the visitor's real session, so
    saving, rotating or tagging it with a user raises this instead (the framework answers
    503). The load failure is the ``__cause__``.
    """
