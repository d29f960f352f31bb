"""Session operations, written once as sans-IO generators (see :mod:`rcache.ops`).

Load and save live here; rotate, flush and delete in ``_rotation``; the per-user index in
``_users``. Round trips (one :class:`~rcache.ops.Batch` each; on Cluster a batch is one
pipelined send to every node it touches):

============================  ==========================================================
load                          0 without a valid cookie; else 1 (HGETALL and the sliding
                              PEXPIRE, pipelined; a DEL after it once past the absolute
                              lifetime)
save                          0 when nothing changed or the new session is empty; else 1
                              (save.lua, plus the user index when a user was set)
set_user                      0 on a session not stored yet (written by its save); else 1
rotate                        0 on a session not stored; else 1 (rotate.lua) on standalone
                              and Sentinel, 2 on Cluster (3 when a logout raced it)
flush, delete                 1 (0 for flush of a session that is not stored)
sessions_for, revoke_all      2 (sessions_for: 3 when it drops stale index entries)
============================  ==========================================================

Time: a session's creation time is the server's clock (TIME in save.lua). The absolute
deadline is checked against the app server's clock at the load (as Django checks its own
session expiry), so a clock off by a few seconds ends a session that much early or late;
the same deadline, carried on the monotonic clock, caps the TTL a save sets. The idle
timeout is Redis's own TTL.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable
from time import monotonic, time_ns
from typing import Any, NoReturn

from rcache.errors import BackendError, RCacheError
from rcache.ops import Batch, Command, Op
from rcache.scripts import Script
from rcache.sessions._errors import SessionTooLarge, SessionUnavailable
from rcache.sessions._layout import (
    META_CREATED,
    META_TOKEN,
    META_USER,
    Storage,
    field_name,
    key_of_field,
)
from rcache.sessions._session import UNDECODED, Session, new_session_id

__all__ = [
    "NEW_ID_ATTEMPTS",
    "SaveStatus",
    "changed_in_place",
    "index_commands",
    "load",
    "refuse_degraded",
    "save",
    "utf8",
    "write_changes",
]

SAVE = Script.from_package("rcache.sessions", "save.lua")

_NUL = b"\x00"  # the first byte of a meta field (or of an escaped key)

SLID_MEMO = 10_000  # sessions whose last slide time a process remembers

NEW_ID_ATTEMPTS = 3  # a taken id is a 2**-256 event; three in a row means a bug


class SaveStatus(enum.StrEnum):
    """What :meth:`SessionStore.save` did."""

    UNCHANGED = "unchanged"
    """Nothing to write (no change, or a new session that holds no data): no round trip."""
    CREATED = "created"
    """A new session was stored: send its cookie."""
    SAVED = "saved"
    """The changed keys of an existing session were written."""
    GONE = "gone"
    """The session was deleted (logout, revoke) or expired meanwhile: nothing was written."""


# -- load --------------------------------------------------------------------------------------


def load(st: Storage, session_id: str | None) -> Op[Session]:
    """Return the session ``session_id`` (a verified id), or a new empty one.

    One round trip that also slides the expiry. A missing or expired session gives a new
    session with a *new* id: a client-chosen id is never adopted (session fixation).
    """
    if session_id is None:
        return Session()
    cfg = st.config
    key = st.key(session_id)
    # Plain commands, no script: the sliding PEXPIRE is a no-op on a missing key (nothing is
    # brought back). The absolute deadline is checked here, on this process's clock.
    sent = monotonic()  # before the round trip: the deadline on this clock errs early
    slid = st.slid
    last = slid.get(key)
    if last is not None and sent - last < cfg.slide_s:
        commands: tuple[tuple[Any, ...], ...] = (("HGETALL", key),)  # slid a moment ago
        sliding = False
    else:
        commands = (("HGETALL", key), ("PEXPIRE", key, min(cfg.idle_ms, cfg.absolute_ms)))
        sliding = True
    try:
        fields = (yield Batch(commands))[0]
    except BackendError as err:
        if cfg.on_load_error == "raise":
            raise
        st.load_failures.failed(err)
        stand_in = Session(session_id)
        stand_in._stored = True  # it may exist: a flush must still delete it
        stand_in._degraded = err
        return stand_in
    if st.load_failures._failing:  # the end of an outage (one attribute read otherwise)
        st.load_failures.succeeded()
    if not fields:
        slid.pop(key, None)
        return Session()
    if sliding:
        if len(slid) >= SLID_MEMO:
            try:
                del slid[next(iter(slid))]  # the oldest
            except (KeyError, RuntimeError, StopIteration):  # another thread got there first
                pass
        slid[key] = sent
    session = _from_fields(st, session_id, fields)
    created = session._lifetime_left_ms
    if created is None:  # not a session hash (no creation time): never served
        return Session()
    left = created + cfg.absolute_ms - time_ns() // 1_000_000
    if left <= 0:
        # Past its absolute lifetime: never served. Deleting it is housekeeping (its key
        # would expire within the idle timeout anyway), so a failure here is ignored.
        try:
            yield Batch((("DEL", key),))
        except BackendError:
            pass
        return Session()
    session._lifetime_left_ms = left
    session._deadline = sent + left / 1000
    return session


def _from_fields(st: Storage, session_id: str, fields: list[bytes] | dict[bytes, bytes]) -> Session:
    """Build the session from its hash (HGETALL's field/value pairs; a dict on Cluster).

    Leaves the creation time (ms, server clock) in ``_lifetime_left_ms``, None without one.
    """
    session = Session(session_id)
    session._is_new = False
    session._stored = True
    data = session._data
    stored = session._raw
    session._decode = st.config.codec.decode
    session._lazy = True
    if type(fields) is dict:
        items: Iterable[tuple[bytes, bytes]] = fields.items()
    else:
        pairs = iter(fields)
        items = zip(pairs, pairs, strict=False)
    for name, raw in items:
        if name[:1] == _NUL:
            key = key_of_field(name)
            if key is None:
                if name == META_CREATED:
                    session._lifetime_left_ms = int(raw)
                elif name == META_USER:
                    session._user_id = raw.decode("utf-8", "surrogatepass")
                elif name == META_TOKEN:
                    session._token = raw.decode("ascii", "replace")
                continue
        else:
            key = name.decode("utf-8", "surrogatepass")
        data[key] = UNDECODED  # decoded when first read (see Session)
        stored[key] = raw
    return session


_IMMUTABLE = frozenset({str, int, float, bool, bytes, type(None)})


def changed_in_place(st: Storage, session: Session) -> list[str]:
    """Return the keys whose value changed in place since the load or the last save.

    ``session["cart"].append(1)`` changes the value without telling the session; this finds
    such keys by encoding each stored mutable value again and comparing with the bytes it
    was stored as (and, when those differ, by comparing the stored value decoded anew, so a
    value that merely encodes differently is not rewritten). Keys already changed or
    deleted are left out; values of immutable types are skipped. A value that cannot be
    compared counts as changed (its save then writes it, or raises if it cannot be encoded).
    """
    codec = st.config.codec
    data, dirty = session._data, session._dirty
    changed = []
    for key, raw in session._raw.items():
        if key in dirty or key not in data:
            continue
        value = data[key]
        if value is UNDECODED or type(value) in _IMMUTABLE:  # never read: not changed
            continue
        try:
            if codec.encode(value) == raw or bool(codec.decode(raw) == value):
                continue
        except Exception:  # any value may fail to encode or to compare
            pass
        changed.append(key)
    return changed


# -- save --------------------------------------------------------------------------------------


def save(st: Storage, session: Session) -> Op[SaveStatus]:
    """Write what changed in ``session``; raise on any failure (never drop a write silently).

    A session that is not stored yet is created only when it holds data or a user, with a
    guard against an existing hash under the same id. A stored session gets only its
    changed and deleted keys, and only if it still exists: a session deleted meanwhile is
    not brought back (:attr:`SaveStatus.GONE`). Raises :class:`SessionTooLarge` (nothing
    written) when the result would exceed ``max_session_bytes``, ``EncodeError`` for a value
    the codec cannot encode, :class:`SessionUnavailable` for changes to a stand-in session,
    and :class:`~rcache.errors.BackendError` when Redis fails.
    """
    if session._degraded is not None:
        if not session.modified:
            return SaveStatus.UNCHANGED
        refuse_degraded(session, "saved")
    if session._gone:
        return SaveStatus.GONE
    if not session.modified:
        return SaveStatus.UNCHANGED
    if not session._stored:
        if not session._data and session._user_id is None:
            return SaveStatus.UNCHANGED  # an empty session is never stored
        return (yield from _create(st, session))
    return (yield from write_changes(st, session, set(session._dirty)))


def refuse_degraded(session: Session, verb: str) -> NoReturn:
    """Raise SessionUnavailable: ``session`` is a stand-in after a failed load."""
    raise SessionUnavailable(
        f"the session could not be loaded, so it cannot be {verb}"
    ) from session._degraded


def _encode(
    st: Storage, session: Session, keys: set[str]
) -> tuple[list[bytes], list[bytes], dict[str, bytes]]:
    """Return (field/value pairs to set, fields to delete, {key: bytes} written).

    Raises SessionTooLarge when the stored session would exceed ``max_session_bytes``.
    """
    encode = st.config.codec.encode
    data = session._data
    pairs: list[bytes] = []
    deletes: list[bytes] = []
    written: dict[str, bytes] = {}
    for key in sorted(keys) if len(keys) > 1 else keys:
        name = field_name(key)
        if key in data:
            value = data[key]
            # A key marked modified but never read is written back as it was stored.
            raw = session._raw[key] if value is UNDECODED else encode(value)
            pairs += (name, raw)
            written[key] = raw
        else:
            deletes.append(name)
    # Field name plus value per key; a field name is the key itself unless the key is
    # not ASCII or starts with NUL (see field_name).
    size = 0
    for key, raw in session._raw.items():
        if key not in keys:
            plain = key.isascii() and key[:1] != "\x00"
            size += len(raw) + (len(key) if plain else len(field_name(key)))
    for key, raw in written.items():
        plain = key.isascii() and key[:1] != "\x00"
        size += len(raw) + (len(key) if plain else len(field_name(key)))
    if session._user_id is not None:
        size += len(META_USER) + len(utf8(session._user_id))
    if size > st.config.max_session_bytes:
        raise SessionTooLarge(size, st.config.max_session_bytes)
    return pairs, deletes, written


def _commit(session: Session, written: dict[str, bytes], keys: set[str]) -> None:
    """Record a successful write: the keys are clean and their stored bytes known."""
    stored = session._raw
    for key in keys:
        raw = written.get(key)
        if raw is None:
            stored.pop(key, None)
        else:
            stored[key] = raw
    session._dirty -= keys


def utf8(text: str) -> bytes:
    """Return ``text`` as stored in Redis (UTF-8; lone surrogates kept)."""
    return text.encode("utf-8", "surrogatepass")


def index_commands(
    st: Storage, session_id: str, user_id: str, old_user: str | None
) -> list[Command]:
    """Commands that add ``session_id`` to its user's index (and drop it from the old one)."""
    ukey = st.user_key(user_id)
    # Each member session ends within absolute_lifetime from now, so the set may too.
    cmds: list[Command] = [("SADD", ukey, session_id), ("PEXPIRE", ukey, st.config.absolute_ms)]
    if old_user is not None and old_user != user_id:
        cmds.append(("SREM", st.user_key(old_user), session_id))
    return cmds


def _create(st: Storage, session: Session) -> Op[SaveStatus]:
    cfg = st.config
    keys = set(session._data)
    pairs, _, written = _encode(st, session, keys)
    user = session._user_id
    meta = [] if user is None else [META_USER, utf8(user)]
    token = secrets.token_urlsafe(12)
    for _ in range(NEW_ID_ATTEMPTS):
        args = ["create", cfg.idle_ms, cfg.absolute_ms, token, len(pairs) // 2 + len(meta) // 2]
        cmds: list[Command] = [SAVE([st.key(session.id)], [*args, *pairs, *meta])]
        if user is not None:
            cmds += index_commands(st, session.id, user, None)
        sent = monotonic()  # before the server reads its clock: the deadline errs early
        # Idempotent: a retried create finds its own token and writes the same values again.
        replies = yield Batch(cmds, idempotent=True)
        if replies[0] == b"created":
            session._stored = True
            session._token = token
            session._lifetime_left_ms = cfg.absolute_ms
            session._deadline = sent + cfg.absolute_ms / 1000
            session._user_dirty = False
            session._raw.clear()
            _commit(session, written, keys)
            session._dirty.clear()
            return SaveStatus.CREATED
        session._id = new_session_id()  # 'collision': another session owns this id
    raise RCacheError("no free session id found; is the random number generator broken?")


def write_changes(
    st: Storage,
    session: Session,
    keys: set[str],
    user_change: tuple[str, str | None] | None = None,
) -> Op[SaveStatus]:
    """Write ``keys`` (and a new user: ``(user, previous user)``) to a stored session."""
    cfg = st.config
    pairs, deletes, written = _encode(st, session, keys)
    if user_change is not None:
        pairs += (META_USER, utf8(user_change[0]))
    key = st.key(session.id)
    # The TTL: the idle timeout, capped by the absolute deadline learnt at the load (the
    # server's clock then, this process's monotonic clock since).
    ttl = min(cfg.idle_ms, cfg.absolute_ms)
    if session._deadline is not None:
        left = int((session._deadline - monotonic()) * 1000)
        if left <= 0:  # past its absolute lifetime: delete, never write
            yield Batch((("DEL", key),), idempotent=True)
            session._gone = True
            session._stored = False
            return SaveStatus.GONE
        ttl = min(ttl, left)
    cmds: list[Command] = [
        ("EVALSHA", SAVE.sha, 1, key, "update", ttl, "", "", len(pairs) // 2, *pairs, *deletes)
    ]
    if user_change is not None:
        cmds += index_commands(st, session.id, *user_change)
    replies = yield Batch(cmds, idempotent=True)
    if replies[0] == b"gone":
        session._gone = True
        session._stored = False
        return SaveStatus.GONE
    _commit(session, written, keys)
    return SaveStatus.SAVED
