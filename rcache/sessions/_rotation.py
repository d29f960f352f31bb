"""Rotate, flush and delete: changing or ending a session's id.

Rotation is atomic on standalone Redis and Sentinel (rotate.lua renames the hash). On
Cluster the old and new ids hash to different slots, so the hash is copied and the old one
deleted; see :func:`rotate` for the window that leaves.
"""

from __future__ import annotations

import re

from rcache.errors import RCacheError
from rcache.ops import Batch, Command, Op
from rcache.scripts import Script
from rcache.sessions._layout import Storage
from rcache.sessions._ops import NEW_ID_ATTEMPTS, refuse_degraded
from rcache.sessions._session import Session, new_session_id

__all__ = ["delete", "flush", "rotate"]

ROTATE = Script.from_package("rcache.sessions", "rotate.lua")

_ID = re.compile(r"[A-Za-z0-9_-]{43}")


def rotate(st: Storage, session: Session) -> Op[None]:
    """Give ``session`` a new id, keeping its data; the old id stops working at once.

    Call it when privileges change (login), against session fixation. The stored hash moves
    whole: fields, creation time (rotation does not extend the absolute lifetime) and TTL.

    - Standalone and Sentinel: one atomic RENAME in rotate.lua.
    - Cluster: the two ids hash to different slots, so the session is copied (DUMP, then
      RESTORE under the new id and DEL of the old one in one pipelined round trip). A save
      to the old id by a concurrent request between those two round trips is lost; a
      concurrent delete (logout) is noticed and the copy removed.

    If the session no longer exists (deleted or expired meanwhile), it becomes a new
    session holding this request's data, stored at its next save (as a login that rotates
    and then writes expects). Pending changes are saved under the new id by :func:`save`.
    """
    if session._degraded is not None:
        refuse_degraded(session, "rotated")
    session._rotated = True
    if not session._stored:
        session._id = new_session_id()
        return
    moved = yield from (_move_cluster(st, session) if st.cluster else _move(st, session))
    if not moved:
        session._as_new_copy()


def _move(st: Storage, session: Session) -> Op[bool]:
    old = session.id
    user = session._user_id
    for _ in range(NEW_ID_ATTEMPTS):
        new = new_session_id()
        cmds: list[Command] = [ROTATE([st.key(old), st.key(new)], [session._token or ""])]
        if user is not None:
            ukey = st.user_key(user)
            cmds += [("SADD", ukey, new), ("SREM", ukey, old)]
        replies = yield Batch(cmds, idempotent=True)
        if replies[0] == 1:
            session._id = new
            return True
        if replies[0] == 0:
            return False
    raise RCacheError("no free session id found; is the random number generator broken?")


def _move_cluster(st: Storage, session: Session) -> Op[bool]:
    old, new = session.id, new_session_id()
    old_key, new_key = st.key(old), st.key(new)
    dump, pttl = yield Batch([("DUMP", old_key), ("PTTL", old_key)])
    if dump is None or pttl == -2:
        return False
    ttl = pttl if pttl > 0 else st.config.idle_ms
    cmds: list[Command] = [("RESTORE", new_key, ttl, dump), ("DEL", old_key)]
    user = session._user_id
    if user is not None:
        cmds += [("SADD", st.user_key(user), new), ("SREM", st.user_key(user), old)]
    # Not idempotent: a resent RESTORE would fail on the copy it made the first time.
    replies = yield Batch(cmds, idempotent=False, raise_on_error=False)
    restored, deleted = replies[0], replies[1]
    for reply in replies[1:]:
        if isinstance(reply, RCacheError):
            raise reply
    if isinstance(restored, RCacheError) or deleted == 0:
        # The new id was taken (BUSYKEY), or a logout deleted the session meanwhile: do
        # not keep a copy that would outlive that logout.
        if not isinstance(restored, RCacheError):
            yield Batch([("DEL", new_key)])
        return False
    session._id = new
    return True


def flush(st: Storage, session: Session) -> Op[None]:
    """Delete the stored session and make ``session`` a new empty one (logout).

    The response must then carry :func:`~rcache.sessions.cookie_header`: the new session's
    cookie if data is added and saved, else a deletion cookie. Raises when Redis fails: a
    logout is never silently dropped.
    """
    if session._stored:
        cmds: list[Command] = [("DEL", st.key(session.id))]
        if session._user_id is not None:
            cmds.append(("SREM", st.user_key(session._user_id), session.id))
        yield Batch(cmds, idempotent=True)
    session._restart()
    session._flushed = True


def delete(st: Storage, session_id: str) -> Op[bool]:
    """Delete session ``session_id``; return whether it existed.

    An id that cannot be a session id returns False without a round trip. The user index
    is cleaned lazily (by :func:`sessions_for` and :func:`revoke_all`).
    """
    if not isinstance(session_id, str) or _ID.fullmatch(session_id) is None:
        return False
    (n,) = yield Batch([("DEL", st.key(session_id))], idempotent=True)
    return bool(n)
