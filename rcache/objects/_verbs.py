"""The object cache's verbs as operations (Django ``BaseCache`` semantics), written once.

Round trips (one :class:`~rcache.ops.Batch` each; on Cluster one pipelined send to every
node involved):

=====================  =================================================================
get, has_key           1 (+1 if the entry carries tags: their tokens; +1 to delete an
                       unreadable entry)
get_many               1 (MGET; +1 for all tagged entries together; +1 for unreadable ones)
set, add               1; 2 with ``tags`` (tag tokens first); add with ttl <= 0: 1 (EXISTS)
set_many               1 (one SET ... PX per key, pipelined); ttl <= 0: 1 (UNLINK)
delete, delete_many    1 (UNLINK; delete_many of nothing: 0)
touch, expire,         1
persist, ttl
incr, decr             1 (incr.lua: atomic "exists, then INCRBY"; never retried)
get_or_set             1 on a hit; 2 on a miss (SET NX and GET in one batch, like
                       Django's add-then-get)
=====================  =================================================================

TTLs: :data:`~rcache.ttl.DEFAULT` is the cache's ``default_ttl``, None never expires, and
``<= 0`` expires at once: ``set`` deletes the key and returns True, ``add`` returns
whether the key was absent (and writes nothing), ``touch``/``expire`` delete it.

Failures follow ``on_error`` (:mod:`rcache.objects._failures`): in ``"miss"`` mode a read
is a miss, a write returns False (``set_many``: every key), ``delete_many`` returns 0.
``incr`` cannot fail open with a number: it raises ValueError as for a missing key, so
the usual ``except ValueError: set(key, 1)`` path runs (and its ``set`` returns False).
``incr`` of a value that is not an integer (or a result beyond 64 bits) raises
:class:`NotAnInteger`, both a ValueError and a TypeError. Values that cannot be encoded
always raise :class:`~rcache.errors.EncodeError` (its ``__cause__`` is what the serializer
raised, e.g. ``pickle.PicklingError``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rcache.errors import BackendError, RCacheError
from rcache.objects._context import CacheContext
from rcache.objects._envelope import Entry, pack
from rcache.objects._read import MISSING, Missing, open_values, read
from rcache.objects._tags import current_tokens, tag_ids
from rcache.ops import Batch, Call, Command, Op
from rcache.scripts import Script
from rcache.ttl import TTL, Default

__all__ = [
    "NotAnInteger",
    "add",
    "delete",
    "delete_many",
    "finish_get",
    "get",
    "get_many",
    "get_or_set",
    "has_key",
    "incr",
    "lookup",
    "set_command",
    "set_many",
    "set_value",
    "touch",
    "ttl",
]

INCR = Script.from_package("rcache.objects", "incr.lua")


class NotAnInteger(RCacheError, ValueError, TypeError):
    """``incr``/``decr`` of a value that is not an integer, or past the 64-bit range.

    A ValueError (what ``incr`` raises for a missing key too) and a TypeError (what
    Django's cache contract expects for a value that cannot be incremented). Its
    ``__cause__`` is the error Redis answered.
    """


def set_command(redis_key: str, data: bytes, ms: int | None, *flags: str) -> Command:
    """Return ``SET key data [PX ms] [flags...]`` (no PX when ``ms`` is None)."""
    if ms is None:
        return ("SET", redis_key, data, *flags)
    return ("SET", redis_key, data, "PX", ms, *flags)


def lookup(ctx: CacheContext, redis_keys: list[str]) -> Op[list[Any]]:
    """Return the value at each key, or MISSING; count hits and misses."""
    reading = yield from read(ctx, redis_keys)
    values = yield from open_values(ctx, redis_keys, reading.raws, reading.tokens)
    hits = sum(1 for v in values if v is not MISSING)
    ctx.stats.hits += hits
    ctx.stats.misses += len(values) - hits
    return values


def get(ctx: CacheContext, key: str, default: Any = None) -> Op[Any]:
    """Return the value of ``key``, or ``default`` if it is absent (or Redis failed)."""
    try:
        (value,) = yield from lookup(ctx, [ctx.key(key)])
    except BackendError as err:
        ctx.failures.backend(err, "get")
        return default
    return default if value is MISSING else value


def finish_get(ctx: CacheContext, redis_key: str, raw: bytes, default: Any = None) -> Op[Any]:
    """Finish a ``get`` whose ``GET`` already answered ``raw``, the way :func:`get` does.

    The caches read plain values in one step; an envelope (tags to check), or bytes that
    do not decode (deleted and reported), come here.
    """
    ctx.failures.ok()
    try:
        (value,) = yield from open_values(ctx, [redis_key], [raw], {})
    except BackendError as err:
        ctx.failures.backend(err, "get")
        return default
    if value is MISSING:
        ctx.stats.misses += 1
        return default
    ctx.stats.hits += 1
    return value


def has_key(ctx: CacheContext, key: str) -> Op[bool]:
    """Return whether ``get(key)`` would find a value (tags and envelopes included)."""
    value = yield from get(ctx, key, MISSING)
    return value is not MISSING


def get_many(ctx: CacheContext, keys: Iterable[str]) -> Op[dict[str, Any]]:
    """Return ``{key: value}`` for the keys that are present, in one ``MGET``."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return {}
    try:
        values = yield from lookup(ctx, ctx.keys(keys))
    except BackendError as err:
        ctx.failures.backend(err, "get_many")
        return {}
    return {k: v for k, v in zip(keys, values, strict=True) if v is not MISSING}


def set_value(
    ctx: CacheContext,
    key: str,
    value: Any,
    ttl: TTL | Default,
    tags: Iterable[str] = (),
    *,
    only_new: bool = False,
) -> Op[bool]:
    """Store ``value`` (``only_new``: only if ``key`` is absent, i.e. ``add``)."""
    ms = ctx.ttl_ms(ttl)
    tids = tag_ids(tags)
    data = ctx.codec.encode(value)  # EncodeError rises before any I/O
    redis_key = ctx.key(key)
    action = "add" if only_new else "set"
    if not only_new:  # this write supersedes any lost one: off the redo list before it goes
        ctx.failures.done("key", [redis_key])
    try:
        if ms == 0:  # expires at once: nothing to store
            if only_new:
                (exists,) = yield Batch([("EXISTS", redis_key)])
                return not exists
            yield Batch([("UNLINK", redis_key)])
            return True
        if tids:
            tokens = yield from current_tokens(ctx, tids)
            tagged = tuple((t, tokens[t] or b"") for t in tids)
            data = pack(Entry(data, tags=tagged))
        flags = ("NX",) if only_new else ()
        (reply,) = yield Batch([set_command(redis_key, data, ms, *flags)])
    except BackendError as err:
        if not only_new:  # the old value may still be there: delete it once Redis answers
            ctx.failures.lost("key", [redis_key])
        ctx.failures.backend(err, action)
        return False
    ctx.failures.written()
    return bool(reply)


def add(
    ctx: CacheContext, key: str, value: Any, ttl: TTL | Default, tags: Iterable[str]
) -> Op[bool]:
    """Store ``value`` only if ``key`` is absent (``SET NX``); return whether it was stored."""
    return (yield from set_value(ctx, key, value, ttl, tags, only_new=True))


def set_many(ctx: CacheContext, mapping: Mapping[str, Any], ttl: TTL | Default) -> Op[list[str]]:
    """Store every item in one round trip; return the keys that failed."""
    ms = ctx.ttl_ms(ttl)
    keys = list(mapping)
    if not keys:
        return []
    redis_keys = ctx.keys(keys)
    encode = ctx.codec.encode
    if ms == 0:
        cmds: list[Command] = [("UNLINK", *redis_keys)]
    else:
        cmds = [
            set_command(rk, encode(mapping[k]), ms) for k, rk in zip(keys, redis_keys, strict=True)
        ]
    ctx.failures.done("key", redis_keys)  # put back below for the keys that fail
    try:
        replies = yield Batch(cmds, raise_on_error=False)
    except BackendError as err:
        ctx.failures.lost("key", redis_keys)
        ctx.failures.backend(err, "set_many")
        return keys
    if ms == 0:
        failed = keys if isinstance(replies[0], RCacheError) else []
        errors = replies
    else:
        failed = [k for k, r in zip(keys, replies, strict=True) if isinstance(r, RCacheError)]
        errors = [r for r in replies if isinstance(r, RCacheError)]
    first = next((e for e in errors if isinstance(e, BackendError)), None)
    if first is not None:
        ctx.failures.lost("key", ctx.keys(failed))
        ctx.failures.backend(first, "set_many")
    else:
        ctx.failures.written()
    return failed


def delete(ctx: CacheContext, key: str) -> Op[bool]:
    """Delete ``key``; return whether it existed."""
    count = yield from delete_many(ctx, [key])
    return count > 0


def delete_many(ctx: CacheContext, keys: Iterable[str]) -> Op[int]:
    """Delete the keys in one ``UNLINK``; return how many existed."""
    redis_keys = ctx.keys(list(dict.fromkeys(keys)))
    if not redis_keys:
        return 0
    ctx.failures.done("key", redis_keys)  # this delete supersedes any lost write of them
    try:
        (count,) = yield Batch([("UNLINK", *redis_keys)])
    except BackendError as err:
        ctx.failures.lost("key", redis_keys)
        ctx.failures.backend(err, "delete")
        return 0
    ctx.failures.ok()
    return int(count)


def touch(ctx: CacheContext, key: str, ttl: TTL | Default) -> Op[bool]:
    """Give ``key`` a new TTL (None: no expiry; <= 0: delete it); return whether it exists."""
    ms = ctx.ttl_ms(ttl)
    redis_key = ctx.key(key)
    if ms is None:
        cmds: list[Command] = [("PERSIST", redis_key), ("EXISTS", redis_key)]
    elif ms == 0:
        cmds = [("UNLINK", redis_key)]
    else:
        cmds = [("PEXPIRE", redis_key, ms)]
    try:
        replies = yield Batch(cmds)
    except BackendError as err:
        ctx.failures.backend(err, "touch")
        return False
    ctx.failures.ok()
    return bool(replies[-1])


def ttl(ctx: CacheContext, key: str) -> Op[float | None | Missing]:
    """Return the seconds ``key`` has left; None if it never expires; MISSING if absent."""
    try:
        (ms,) = yield Batch([("PTTL", ctx.key(key))])
    except BackendError as err:
        ctx.failures.backend(err, "ttl")
        return MISSING
    ctx.failures.ok()
    if ms == -2:
        return MISSING
    if ms == -1:
        return None
    return int(ms) / 1000


def incr(ctx: CacheContext, key: str, delta: int) -> Op[int]:
    """Add ``delta`` to the integer at ``key``; raise ValueError if the key is absent."""
    if isinstance(delta, bool) or not isinstance(delta, int):
        raise TypeError(f"delta must be an int, got {type(delta).__name__}")
    try:
        (value,) = yield Batch([INCR([ctx.key(key)], [delta])], idempotent=False)
    except BackendError as err:
        text = str(err)
        if "not an integer" in text or "overflow" in text:
            what = "would overflow" if "overflow" in text else "is not an integer"
            raise NotAnInteger(f"the value of key {key!r} {what}") from err
        ctx.failures.backend(err, "incr")
        raise ValueError(f"cannot change key {key!r}: Redis did not answer") from err
    ctx.failures.written()
    if value is None:
        raise ValueError(f"Key {key!r} not found.")
    return int(value)


def get_or_set(
    ctx: CacheContext, key: str, default: Any | Callable[[], Any], ttl: TTL | Default
) -> Op[Any]:
    """Return the value of ``key``; if absent, store ``default`` (called if callable) first.

    Like Django: the value is added with ``SET NX`` and read back in the same round trip,
    so when another caller stored one in between, theirs is returned.
    """
    redis_key = ctx.key(key)
    try:
        (value,) = yield from lookup(ctx, [redis_key])
    except BackendError as err:
        ctx.failures.backend(err, "get_or_set")
        return (yield Call(default)) if callable(default) else default
    if value is not MISSING:
        return value
    if callable(default):
        default = yield Call(default)
    ms = ctx.ttl_ms(ttl)
    if ms == 0:
        return default
    data = ctx.codec.encode(default)
    try:
        replies = yield Batch([set_command(redis_key, data, ms, "NX"), ("GET", redis_key)])
        (value,) = yield from open_values(ctx, [redis_key], [replies[1]], {})
    except BackendError as err:
        ctx.failures.backend(err, "get_or_set")
        return default
    ctx.failures.written()
    return default if value is MISSING else value


def redo(ctx: CacheContext) -> Op[None]:
    """Redo what failed writes left undone (see ``FailureLog.lost``): one round trip.

    Deletes the entries (kind ``"key"``) and gives the tags (``"tag"``) new versions, sent
    once (no retry). If it fails or is interrupted, everything is remembered again and
    tried after the next success, a second later at the earliest. Never raises a
    BackendError.
    """
    lost = ctx.failures.take_redo()
    keys, tags = lost.get("key", []), lost.get("tag", [])
    cmds: list[Command] = []
    if keys:
        cmds.append(("UNLINK", *keys))
    if tags:
        args: list[str | bytes] = []
        for tag_key in tags:
            args += (tag_key, ctx.new_token())
        cmds.append(("MSET", *args))
    if not cmds:
        return
    try:
        yield Batch(cmds, idempotent=False)  # not retried: the next success tries again
    except BaseException as err:
        ctx.failures.lost("tag", tags)
        ctx.failures.lost("key", keys)
        ctx.failures.redo_failed()
        if not isinstance(err, BackendError):
            raise
