"""The per-user index: which sessions belong to a user, and "log out everywhere".

Each session records its user in the meta field ``\\x00user``; the set
``<prefix>:user:1:<user id>`` lists the user's session ids. The set is an index, not the
truth: entries of sessions that expired, were deleted or changed user are dropped lazily,
by checking the meta field of every member.
"""

from __future__ import annotations

from time import time_ns

from rcache.ops import Batch, Command, Op
from rcache.scripts import Script
from rcache.sessions._layout import META_CREATED, META_USER, Storage
from rcache.sessions._ops import SaveStatus, refuse_degraded, utf8, write_changes
from rcache.sessions._session import Session

__all__ = ["revoke_all", "sessions_for", "set_user"]

REVOKE = Script.from_package("rcache.sessions", "revoke.lua")


def set_user(st: Storage, session: Session, user_id: str | int) -> Op[SaveStatus]:
    """Record that ``session`` belongs to ``user_id`` and add it to the user's index.

    On a stored session this writes the user at once (one round trip; other pending changes
    wait for :func:`save`) and returns SAVED, or GONE when the session was deleted
    meanwhile. On a session not stored yet it returns UNCHANGED: its save stores the user
    with the data (a session with a user is never "empty").
    """
    uid = _user_text(user_id)
    if session._degraded is not None:
        refuse_degraded(session, "given a user")
    previous = session._user_id
    session._user_id = uid
    if session._gone:
        return SaveStatus.GONE
    if not session._stored:
        session._user_dirty = True
        return SaveStatus.UNCHANGED
    if previous == uid:
        return SaveStatus.UNCHANGED
    status = yield from write_changes(st, session, set(), (uid, previous))
    return status


def _user_text(user_id: str | int) -> str:
    if isinstance(user_id, bool) or not isinstance(user_id, str | int):
        raise TypeError(f"a user id must be str or int, not {type(user_id).__name__}")
    uid = str(user_id)
    if not uid:
        raise ValueError("a user id cannot be empty")
    return uid


def sessions_for(st: Storage, user_id: str | int) -> Op[list[str]]:
    """Return the ids of ``user_id``'s live sessions, sorted; drop stale index entries.

    A session counts when it exists, still records this user (a flushed or re-assigned
    session does not) and is within its absolute lifetime.
    """
    uid = _user_text(user_id)
    ukey = st.user_key(uid)
    (members,) = yield Batch([("SMEMBERS", ukey)])
    ids = sorted(m.decode("ascii", "replace") for m in members)
    if not ids:
        return []
    metas = yield Batch([("HMGET", st.key(i), META_USER, META_CREATED) for i in ids])
    want = utf8(uid)
    # A session past its absolute lifetime may outlive it in Redis (by up to the idle
    # timeout) but is never served: it does not count (the same clock as the load's).
    born_after = time_ns() // 1_000_000 - st.config.absolute_ms
    live = [
        i
        for i, (owner, created) in zip(ids, metas, strict=True)
        if owner == want and created is not None and int(created) > born_after
    ]
    stale = sorted(set(ids) - set(live))
    if stale:
        yield Batch([("SREM", ukey, *stale)])
    return live


def revoke_all(st: Storage, user_id: str | int) -> Op[int]:
    """Delete every session of ``user_id`` ("log out everywhere"); return how many.

    Requests of those sessions still running cannot write them back (their save is GONE).
    A session created for the user while this runs survives.
    """
    uid = _user_text(user_id)
    ukey = st.user_key(uid)
    (members,) = yield Batch([("SMEMBERS", ukey)])
    ids = sorted(m.decode("ascii", "replace") for m in members)
    if not ids:
        return 0
    cmds: list[Command] = [REVOKE([st.key(i)], [uid]) for i in ids]
    # SREM of these ids, not DEL: an id added meanwhile stays indexed.
    cmds.append(("SREM", ukey, *ids))
    replies = yield Batch(cmds, idempotent=True)
    return sum(int(r) for r in replies[:-1])
