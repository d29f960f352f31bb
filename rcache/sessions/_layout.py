"""Where sessions live in Redis: keys, hash fields and the meta fields. Pure, no I/O.

One Redis hash per session, one field per top-level key of the session::

    <prefix>:1:<session id>      hash    "cart" -> codec bytes, "user" -> ..., and the meta
                                         fields "\\x00created", "\\x00token", "\\x00user"
    <prefix>:user:1:<user id>    set     the ids of the user's sessions (a lazy index)

``<prefix>`` is the adapter's ``key_prefix`` followed by ``SessionConfig.prefix``; the
``1`` is the :class:`~rcache.keys.KeySpace` version. Meta field names start with a NUL
byte. A session key that itself starts with NUL is stored with one more NUL in front, so
no session key can ever be read or written as a meta field.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field

from rcache.keys import KeySpace
from rcache.sessions._config import SessionConfig

__all__ = [
    "META_CREATED",
    "META_TOKEN",
    "META_USER",
    "LoadFailureLog",
    "Storage",
    "field_name",
    "key_of_field",
]

logger = logging.getLogger("rcache.sessions")

#: Creation time, ms since the epoch by the server's clock (start of the absolute lifetime).
META_CREATED = b"\x00created"
#: Random value written at creation; lets a retried create or rotate recognise itself.
META_TOKEN = b"\x00token"
#: The user id recorded by ``set_user``.
META_USER = b"\x00user"

_NUL = b"\x00"
#: Session ids: 256 random bits in URL-safe base64 (see rcache.sessions._session).
ID_LENGTH = 43
_ID = re.compile(r"[A-Za-z0-9_-]{43}")


def field_name(key: str) -> bytes:
    """Return the hash field that stores session key ``key``."""
    raw = key.encode("utf-8", "surrogatepass")
    return _NUL + raw if raw.startswith(_NUL) else raw


def key_of_field(name: bytes) -> str | None:
    """Return the session key stored in field ``name``; None for a meta field."""
    if name.startswith(_NUL):
        if not name.startswith(_NUL + _NUL):
            return None
        name = name[1:]
    return name.decode("utf-8", "surrogatepass")


class LoadFailureLog:
    """Log one warning when loads start failing and one line when they work again."""

    __slots__ = ("_failing", "_lock")

    def __init__(self) -> None:
        self._failing = False
        self._lock = threading.Lock()

    def failed(self, err: BaseException) -> None:
        """Record a failed load; warn if it is the first of an outage."""
        if self._failing:
            return
        with self._lock:
            if self._failing:
                return
            self._failing = True
        logger.warning(
            "cannot load sessions (%s); serving empty read-only sessions until Redis answers",
            err,
        )

    def succeeded(self) -> None:
        """Record a successful load; note the end of an outage."""
        if not self._failing:
            return
        with self._lock:
            if not self._failing:
                return
            self._failing = False
        logger.warning("sessions load again")


@dataclass(frozen=True, slots=True)
class Storage:
    """Everything a session operation needs besides the adapter."""

    config: SessionConfig
    sessions: KeySpace
    users: KeySpace
    cluster: bool = False
    load_failures: LoadFailureLog = field(default_factory=LoadFailureLog, compare=False)
    slid: dict[str, float] = field(default_factory=dict, compare=False, repr=False)
    """Session key -> when this process last slid its expiry (monotonic; bounded)."""
    _id_head: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # KeySpace.key keeps a session id (43 URL-safe characters) as it is behind its head,
        # unless the key would be too long: checked once here, so key() can skip KeySpace.
        sample = "A" * (ID_LENGTH - 3) + "_-0"
        full = self.sessions.key(sample)
        head = full.removesuffix(sample) if full.endswith(sample) else None
        object.__setattr__(self, "_id_head", head)

    @classmethod
    def build(cls, config: SessionConfig, key_prefix: str = "", cluster: bool = False) -> Storage:
        """Return the storage for ``config`` behind an adapter's ``key_prefix``."""
        parts = [p.strip(":") for p in (key_prefix, config.prefix)]
        space = KeySpace(prefix=":".join(p for p in parts if p))
        return cls(config, space, space.child("user"), cluster)

    def key(self, session_id: str) -> str:
        """Return the Redis key of the session hash of ``session_id``."""
        head = self._id_head
        if head is not None and len(session_id) == ID_LENGTH and _ID.fullmatch(session_id):
            return head + session_id  # what KeySpace.key gives a session id
        return self.sessions.key(session_id)

    def user_key(self, user_id: str) -> str:
        """Return the Redis key of the index set of ``user_id``'s sessions."""
        return self.users.key(user_id)
