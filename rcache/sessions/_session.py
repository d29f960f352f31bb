"""The session object: a dict that remembers what a request read and changed.

Pure: no I/O, no ``redis``. The store (:mod:`rcache.sessions._ops`) reads the bookkeeping
to write only the keys that changed, so two requests that change different keys of one
session both keep their change.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, Final

from rcache.errors import DecodeError

__all__ = ["UNDECODED", "Session", "new_session_id"]

logger = logging.getLogger("rcache.sessions")


class _Undecoded:
    """The type of :data:`UNDECODED`: one instance, kept by copying and pickling."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDECODED"

    def __reduce__(self) -> str:
        return "UNDECODED"  # pickled by name: unpickles as this module's one instance

    def __copy__(self) -> _Undecoded:
        return self

    def __deepcopy__(self, memo: Any) -> _Undecoded:
        return self


#: The value of a loaded key whose stored bytes (in ``Session._raw``) are not decoded yet.
UNDECODED: Final = _Undecoded()


def new_session_id() -> str:
    """Return a new random session id: 256 bits, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


class Session(MutableMapping[str, Any]):
    """A session's data, as a mutable mapping of ``str`` keys to codec-encodable values.

    Change tracking works per top-level key: ``session["cart"] = cart`` marks ``"cart"``
    changed, ``del session["cart"]`` marks it deleted, and a save writes exactly those
    keys. A change *inside* a value is not seen::

        session["cart"].append(item)        # not detected: nothing is saved
        session.mark_modified("cart")       # now "cart" is written at the next save
        session["cart"] = session["cart"]   # same effect

    (Flask and Django sessions follow the same rule.)

    Attributes for the store and the framework glue:

    - ``id``: the session id (a bearer secret: never log it);
    - ``is_new``: no stored session was found for this request (or it was flushed);
    - ``accessed``: any key was read or written (the response then needs ``Vary: Cookie``);
    - ``modified``: a save has something to write;
    - ``user_id``: the user recorded by ``set_user``, or None.
    """

    __slots__ = (
        "_accessed",
        "_data",
        "_deadline",
        "_decode",
        "_degraded",
        "_dirty",
        "_flushed",
        "_gone",
        "_id",
        "_is_new",
        "_lazy",
        "_lifetime_left_ms",
        "_raw",
        "_rotated",
        "_stored",
        "_token",
        "_user_dirty",
        "_user_id",
    )

    def __init__(self, session_id: str | None = None) -> None:
        """Create a new, empty session (nothing is stored until it holds data and is saved).

        ``session_id``: None draws a new random id.
        """
        self._id = session_id if session_id is not None else new_session_id()
        self._data: dict[str, Any] = {}
        self._dirty: set[str] = set()
        # The stored bytes of each key, as of the load or the last save (for the size limit
        # and to tell a value changed in place from an unchanged one).
        self._raw: dict[str, bytes] = {}
        self._accessed = False
        self._is_new = True
        self._stored = False
        self._user_id: str | None = None
        self._user_dirty = False
        self._token: str | None = None
        self._lifetime_left_ms: int | None = None
        # The end of the absolute lifetime on this process's monotonic clock (seconds), an
        # estimate on the early side; None for a session not stored.
        self._deadline: float | None = None
        self._rotated = False
        self._flushed = False
        self._gone = False
        self._degraded: BaseException | None = None
        # Values are decoded when first read: a loaded key starts as UNDECODED, its bytes
        # in _raw. _lazy says some may still be; whole-mapping reads decode them all first.
        self._decode: Callable[[bytes], Any] | None = None
        self._lazy = False

    # -- the mapping -------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        self._accessed = True
        value = self._data[key]
        return self._decoded(key) if value is UNDECODED else value

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"session keys must be str, not {type(key).__name__}")
        self._accessed = True
        self._data[key] = value
        self._dirty.add(key)

    def __delitem__(self, key: str) -> None:
        self._accessed = True
        del self._data[key]
        self._dirty.add(key)

    def __iter__(self) -> Iterator[str]:
        self._accessed = True
        if self._lazy:
            self._decode_all()
        return iter(self._data)

    def __len__(self) -> int:
        self._accessed = True
        if self._lazy:
            self._decode_all()
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        self._accessed = True
        value = self._data.get(key, None) if isinstance(key, str) else None
        if value is UNDECODED:
            try:
                self._decoded(key)  # type: ignore[arg-type]
            except KeyError:
                return False
            return True
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of ``key``, or ``default`` when it is not in the session."""
        self._accessed = True
        value = self._data.get(key, default)
        if value is UNDECODED:
            try:
                return self._decoded(key)
            except KeyError:
                return default
        return value

    def clear(self) -> None:
        """Remove every key (each is deleted from the stored session at the next save)."""
        self._accessed = True
        if self._lazy:
            self._decode_all()
        self._dirty.update(self._data)
        self._data.clear()

    # -- copying and pickling: every value decoded, the codec's decode function left out ----

    def __getstate__(self) -> dict[str, Any]:
        if self._lazy:
            self._decode_all()
        return {name: getattr(self, name) for name in self.__slots__ if name != "_decode"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)
        self._decode = None
        self._lazy = False

    def _decoded(self, key: str) -> Any:
        """Decode the stored bytes of ``key``; an unreadable value is dropped (KeyError).

        A dropped value stays in Redis untouched unless this request sets the key.
        """
        assert self._decode is not None
        try:
            value = self._decode(self._raw[key])
        except DecodeError:
            del self._data[key]
            del self._raw[key]
            logger.warning("ignored an unreadable value of a session")
            raise KeyError(key) from None
        self._data[key] = value
        return value

    def _decode_all(self) -> None:
        """Decode every value not decoded yet (unreadable ones are dropped)."""
        self._lazy = False
        for key, value in list(self._data.items()):
            if value is UNDECODED:
                try:
                    self._decoded(key)
                except KeyError:
                    pass

    def __repr__(self) -> str:
        # Never the id (a bearer secret) nor the values.
        if self._lazy:
            self._decode_all()
        state = "new" if self._is_new else "loaded"
        return f"<Session {state} keys={sorted(self._data)!r} modified={self.modified}>"

    # -- tracking ----------------------------------------------------------------------------

    def mark_modified(self, key: str | None = None) -> None:
        """Write ``key`` at the next save although it was not assigned (a nested change).

        ``key=None`` marks every key. A key that is not in the session is deleted from the
        stored session.
        """
        if key is None:
            if self._lazy:
                self._decode_all()  # an unreadable value is left as it is in Redis
            self._dirty.update(self._data)
        else:
            self._dirty.add(key)

    @property
    def id(self) -> str:
        """The session id (a bearer secret: never log it). Changes on rotate and flush."""
        return self._id

    @property
    def is_new(self) -> bool:
        """True when no stored session was loaded for this request, or it was flushed."""
        return self._is_new

    @property
    def accessed(self) -> bool:
        """True once any key was read or written (the response varies on the cookie)."""
        return self._accessed

    @property
    def modified(self) -> bool:
        """True when a save has something to write (changed keys or a new user)."""
        return bool(self._dirty) or self._user_dirty

    @property
    def changed_keys(self) -> frozenset[str]:
        """The keys a save will write (set or changed in this request)."""
        if self._lazy:
            self._decode_all()
        return frozenset(k for k in self._dirty if k in self._data)

    @property
    def deleted_keys(self) -> frozenset[str]:
        """The keys a save will remove from the stored session."""
        if self._lazy:
            self._decode_all()
        return frozenset(k for k in self._dirty if k not in self._data)

    @property
    def user_id(self) -> str | None:
        """The user this session belongs to (set by ``set_user``), or None."""
        return self._user_id

    @property
    def stored(self) -> bool:
        """True when the session exists in Redis as far as this request knows."""
        return self._stored and self._degraded is None

    @property
    def rotated(self) -> bool:
        """True when the id changed in this request (``rotate``)."""
        return self._rotated

    @property
    def flushed(self) -> bool:
        """True when the session was deleted and restarted in this request (``flush``)."""
        return self._flushed

    @property
    def gone(self) -> bool:
        """True when a save found the session deleted meanwhile (logout elsewhere, expiry)."""
        return self._gone

    @property
    def degraded(self) -> bool:
        """True when loading failed and this is a stand-in empty session (read-only)."""
        return self._degraded is not None

    @property
    def lifetime_left(self) -> float | None:
        """Seconds until the absolute lifetime ends, as of the load; None for a new session."""
        if self._lifetime_left_ms is None:
            return None
        return self._lifetime_left_ms / 1000

    # -- for the store -----------------------------------------------------------------------

    def _restart(self) -> None:
        """Become a new, empty, unstored session with a fresh id (after a flush)."""
        self._id = new_session_id()
        self._data.clear()
        self._dirty.clear()
        self._raw.clear()
        self._is_new = True
        self._stored = False
        self._user_id = None
        self._user_dirty = False
        self._token = None
        self._lifetime_left_ms = None
        self._deadline = None
        self._gone = False
        self._degraded = None
        self._lazy = False

    def _as_new_copy(self) -> None:
        """Keep the data but become a new, unstored session with a fresh id."""
        if self._lazy:
            self._decode_all()  # the stored bytes are forgotten below
        self._id = new_session_id()
        self._dirty = set(self._data)
        self._raw.clear()
        self._is_new = True
        self._stored = False
        self._user_dirty = self._user_id is not None
        self._token = None
        self._lifetime_left_ms = None
        self._deadline = None
