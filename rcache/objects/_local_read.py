"""The local tier in the object cache's operations: the read path and the write hook.

:func:`read_through` is what :func:`rcache.objects._read.read` does when the cache has a
local tier. While the tier is live, keys held locally are answered with no round trip:
their stored bytes, a PTTL computed from the expiry recorded at fill time, and the tag
tokens the entry was validated with (kept valid by tag-key invalidations), so that
``open_values`` and the decorator's ``_open`` accept them without asking Redis. The other
keys are read from Redis in one round trip, as without the tier, with their PTTL in the
same batch (the local copy must not outlive the key), and held if still valid. Tagged
entries are held only once their tag tokens are known and match, so the MGET of tokens
that ``open_values`` would send for entries with unknown tags is sent here instead (the
same number of round trips).

:func:`track` wraps an operation that may write: after every batch it drops the local
copies of the keys the batch wrote (answered or failed), so this process reads its own
writes at once instead of waiting for Redis's invalidation of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from rcache.errors import DecodeError, RCacheError
from rcache.objects._context import CacheContext
from rcache.objects._envelope import is_envelope, unpack
from rcache.objects._local_store import LocalEntry, LocalStore
from rcache.ops import Batch, Command, Op

__all__ = ["RawReading", "read_through", "track", "written_keys"]

T = TypeVar("T")

RawReading = tuple[list[bytes | None], list[int] | None, dict[str, bytes | None]]
"""``(raws, pttls, tokens)``, as in :class:`rcache.objects._read.Reading`."""

# Commands that change the keys at these positions (see written_keys).
_FIRST = frozenset({"SET", "PEXPIRE", "EXPIRE", "PERSIST", "PEXPIREAT", "EXPIREAT", "GETDEL"})
_FIRST |= {"INCRBY", "DECRBY", "INCR", "DECR", "APPEND", "GETEX", "SETEX", "PSETEX", "SETNX"}
_ALL = frozenset({"UNLINK", "DEL"})
_PAIRS = frozenset({"MSET", "MSETNX"})
_SCRIPTS = frozenset({"EVALSHA", "EVAL", "FCALL"})


def _name(value: Any) -> str:
    return (value.decode() if isinstance(value, bytes) else str(value)).upper()


def _key(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def written_keys(commands: Sequence[Command]) -> list[str]:
    """Return the keys that ``commands`` may change (scripts: every key they are given)."""
    keys: list[str] = []
    for cmd in commands:
        name = _name(cmd[0])
        if name in _FIRST:
            keys.append(_key(cmd[1]))
        elif name in _ALL:
            keys += [_key(k) for k in cmd[1:]]
        elif name in _PAIRS:
            keys += [_key(k) for k in cmd[1::2]]
        elif name in _SCRIPTS:
            keys += [_key(k) for k in cmd[3 : 3 + int(cmd[2])]]
    return keys


def track(store: LocalStore, op: Op[T]) -> Op[T]:
    """Run ``op``, dropping the local copies of the keys each of its batches writes."""
    result: Any = None
    error: BaseException | None = None
    while True:
        try:
            effect = op.throw(error) if error is not None else op.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        keys = written_keys(effect.commands) if type(effect) is Batch else None
        result, error = None, None
        try:
            result = yield effect
        except RCacheError as err:  # what a driver throws into a failed batch
            error = err
        if keys:
            store.invalidate(keys)  # after the reply: a read that started before is refused


def _parse_tags(raw: bytes) -> tuple[tuple[str, bytes], ...] | None:
    """Return the tags an entry recorded (``()`` for a plain value); None if unreadable."""
    if not is_envelope(raw):
        return ()
    try:
        return unpack(raw).tags
    except DecodeError:
        return None


def read_through(
    store: LocalStore,
    ctx: CacheContext,
    redis_keys: Sequence[str],
    pttl: bool,
    tag_ids: Sequence[str],
    fetch: Callable[..., Op[Any]],
) -> Op[RawReading]:
    """Answer what the tier holds; read the rest from Redis and hold it (see module docs).

    ``fetch(ctx, keys, pttl=, tag_ids=, direct=True)`` is the plain Redis read.
    """
    stats = store.stats
    if not store.live:
        stats.bypassed += len(redis_keys)
        reading = yield from fetch(ctx, redis_keys, pttl=pttl, tag_ids=tag_ids, direct=True)
        return reading.raws, reading.pttls, reading.tokens
    now = store.clock()
    found = store.lookup(redis_keys, now)
    tokens: dict[str, bytes | None] = {}
    missed: list[int] = []
    for i, entry in enumerate(found):
        if entry is None or (tag_ids and not entry.knows(tag_ids)):
            missed.append(i)
        else:
            tokens.update(entry.tags)
    stats.hits += len(found) - len(missed)
    stats.misses += len(missed)
    if not missed:
        hits: list[LocalEntry] = found  # type: ignore[assignment]
        pttls = [e.pttl(now) for e in hits] if pttl else None
        return [e.raw for e in hits], pttls, tokens

    keys = [redis_keys[i] for i in missed]
    ticket = store.begin(keys)
    try:
        reading = yield from fetch(ctx, keys, pttl=True, tag_ids=tag_ids, direct=True)
        fetched = dict(reading.tokens)
        parsed = [None if raw is None else _parse_tags(raw) for raw in reading.raws]
        if not tag_ids:  # a plain read: learn the tokens of the tagged entries it found
            unknown = sorted(
                {t for tags in parsed if tags for t, _ in tags if t not in fetched} - set(tokens)
            )
            if unknown:
                (current,) = yield Batch([("MGET", *[ctx.tag_key(t) for t in unknown])])
                fetched.update(zip(unknown, current, strict=True))
        merged = {**tokens, **fetched}  # Redis's word wins over what a local entry recorded
        pttls_read: list[int] = reading.pttls
        for key, raw, ms, tags in zip(keys, reading.raws, pttls_read, parsed, strict=True):
            if raw is None or tags is None or ms == -2:
                continue  # absent, unreadable, or gone between GET and PTTL
            if any(tok != merged.get(t) for t, tok in tags):
                continue  # invalidated: the caller sees it as a miss; nothing to hold
            expires = None if ms < 0 else now + ms / 1000
            store.fill(ticket, key, raw, expires, tags, now)
    finally:
        store.end(ticket)

    raws: list[bytes | None] = [e.raw if e is not None else None for e in found]
    out_pttls: list[int] | None = [e.pttl(now) if e else -2 for e in found] if pttl else None
    for j, i in enumerate(missed):
        raws[i] = reading.raws[j]
        if out_pttls is not None:
            out_pttls[i] = pttls_read[j]
    return raws, out_pttls, merged
