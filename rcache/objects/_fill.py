"""The ``@cached`` call as one operation: hit, single-flight fill, early refresh, stale.

Round trips of a call (one :class:`~rcache.ops.Batch` each):

- hit: **1** (``GET`` + ``PTTL`` of the entry and ``MGET`` of its tags' tokens);
- miss with ``lock``: 3 for the caller that computes (read; take the fill lock, re-read
  and create missing tag keys; store the value and release the lock); the others wait,
  polling with a growing pause, and return the value as soon as it lands;
- early refresh (XFetch) or a stale entry: the one caller that wins the fill lock
  recomputes (3 round trips); everyone else is served the current value in 1.

Stampede protection, three parts that compose:

1. *Single-flight*: on a miss, ``SET <key>#fill <token> NX PX <lease>``; the winner
   computes, stores and releases (compare-and-delete, ``unlock.lua``). Losers wait up to
   the lease for the value; when the lock vanishes without a value (the winner failed)
   one of them takes over; after the lease they compute themselves.
2. *XFetch*: the read returns the PTTL, so :func:`rcache.ttl.xfetch_should_refresh` with
   the stored compute time decides, without another round trip, whether this caller
   refreshes early. That caller takes the lock without waiting; if it is taken, someone
   is refreshing already and the current value is returned.
3. *Stale-while-revalidate*: Redis keeps the entry ``ttl + stale_ttl``; in the last
   ``stale_ttl`` the entry is stale: the lock winner recomputes while the others get the
   stale value. If the recompute raises, the stale value is returned (stale-if-error) and
   a warning is logged.

Failures: when Redis fails the function is simply called (``on_error="miss"``); a
failed write (out of memory, read-only replica) is logged and the value returned anyway.
Exceptions of the function are never cached; ``None`` is cached unless ``cache_none`` is
False, and a cached ``None`` is a hit.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rcache.errors import BackendError, DecodeError, EncodeError
from rcache.objects._context import CacheContext
from rcache.objects._envelope import Entry, is_envelope, pack, unpack
from rcache.objects._failures import logger
from rcache.objects._locks import UNLOCK, release
from rcache.objects._read import MISSING, drop, read
from rcache.objects._tags import create_commands, current_tokens
from rcache.objects._verbs import set_command
from rcache.ops import Batch, Call, Command, Op, Sleep
from rcache.ttl import xfetch_should_refresh

__all__ = [
    "EARLY",
    "FRESH",
    "STALE",
    "FillPolicy",
    "Job",
    "acapture",
    "call",
    "capture",
    "freshness",
    "open_entry",
    "refresh",
    "resume",
]

#: Uniform [0, 1) numbers for XFetch and poll jitter (a seam for tests).
random_source: Callable[[], float] = random.random

_FIRST_POLL = 0.005  # seconds; a waiting caller polls after 5 ms, then 1.5x longer, up to:
_MAX_POLL = 0.1

FRESH, STALE, EARLY = 0, 1, 2
"""What a valid entry that was read asks for: serve it; serve it while one caller
recomputes it (stale window); or recompute it early (XFetch)."""


@dataclass(frozen=True, slots=True)
class FillPolicy:
    """What one decorated function asked for (resolved once, at decoration time)."""

    name: str
    ttl_ms: int | None  # fresh for this long; None = never expires; 0 = never cached
    stale_ms: int  # then stale (served while one caller recomputes) for this long
    lease_ms: int | None  # single-flight lock lease; None = no lock
    cache_none: bool
    beta: float
    capture: Callable[..., Any]  # calls the function, returns its result or a _Failed


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def capture(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call ``fn``; return its result, or its exception wrapped so the operation sees it."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        return _Failed(exc)


async def acapture(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Await ``fn``; return its result, or its exception wrapped (see :func:`capture`)."""
    try:
        return await fn(*args, **kwargs)
    except Exception as exc:
        return _Failed(exc)


@dataclass(frozen=True, slots=True)
class Job:
    """One call being filled or refreshed."""

    ctx: CacheContext
    policy: FillPolicy
    redis_key: str
    tids: Sequence[str]
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def call_plain(self) -> Call:
        return Call(self.fn, self.args, self.kwargs)

    def lock_command(self, token: bytes) -> Command:
        assert self.policy.lease_ms is not None
        lock_key = self.ctx.fill_key(self.redis_key)
        return ("SET", lock_key, token, "NX", "PX", self.policy.lease_ms)


def open_entry(
    ctx: CacheContext, raw: bytes | None, tokens: Mapping[str, bytes | None], tids: Sequence[str]
) -> tuple[Entry, Any] | DecodeError | None:
    """Return ``(entry, value)`` for a valid entry, None for a miss, the error if unreadable."""
    if raw is None:
        return None
    try:
        entry = unpack(raw) if is_envelope(raw) else Entry(raw)
        if len(entry.tags) != len(tids):
            return None  # written with other tags than the function has now
        for tid, token in entry.tags:
            if tokens.get(tid) != token:
                return None  # invalidated
        return entry, ctx.codec.decode(entry.value)
    except DecodeError as err:
        return err


def freshness(policy: FillPolicy, entry: Entry, pttl: int) -> int:
    """Return FRESH, STALE or EARLY for a valid ``entry`` whose key has ``pttl`` ms left."""
    if pttl < 0:  # no expiry: never stale, never refreshed early
        return FRESH
    fresh_ms = pttl - entry.stale_ms
    if fresh_ms <= 0 and entry.stale_ms:
        return STALE
    if (
        policy.beta
        and entry.compute_ms
        and xfetch_should_refresh(
            compute_ms=entry.compute_ms,
            ttl_remaining_ms=fresh_ms,
            beta=policy.beta,
            rand=random_source,
        )
    ):
        return EARLY
    return FRESH


def call(
    ctx: CacheContext,
    policy: FillPolicy,
    redis_key: str,
    tids: Sequence[str],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Op[Any]:
    """Return ``fn(*args, **kwargs)``, cached at ``redis_key`` (see the module docs)."""
    if policy.ttl_ms == 0:
        return (yield Call(fn, args, kwargs))
    try:
        reading = yield from read(ctx, [redis_key], pttl=True, tag_ids=tids)
    except BackendError as err:
        ctx.failures.backend(err, "cached read")
        return (yield Call(fn, args, kwargs))
    found = open_entry(ctx, reading.raws[0], reading.tokens, tids)
    state = FRESH
    if type(found) is tuple:
        state = freshness(policy, found[0], reading.pttls[0] if reading.pttls else -1)
        if state == FRESH:
            ctx.stats.hits += 1
            return found[1]
    job = Job(ctx, policy, redis_key, tids, fn, args, kwargs)
    return (yield from resume(job, reading.tokens, found, state))


def resume(
    job: Job,
    tokens: Mapping[str, bytes | None],
    found: tuple[Entry, Any] | DecodeError | None,
    state: int,
) -> Op[Any]:
    """Carry on after a read that found no fresh value to serve.

    ``found`` and ``state`` are what :func:`open_entry` and :func:`freshness` said of the
    read: an unreadable entry (deleted, then filled), none (filled), or a valid entry that
    is STALE or due for an EARLY refresh (recomputed by one caller, served meanwhile).
    """
    ctx = job.ctx
    if isinstance(found, DecodeError):
        yield from drop(ctx, [job.redis_key])
        ctx.failures.decode(found, job.redis_key)
    elif found is not None:
        ctx.stats.hits += 1
        what = "stale" if state == STALE else "current"
        return (yield from _refresh_behind(job, tokens, found[1], what))
    ctx.stats.misses += 1
    return (yield from _fill(job, tokens))


def refresh(
    ctx: CacheContext,
    policy: FillPolicy,
    redis_key: str,
    tids: Sequence[str],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Op[Any]:
    """Compute ``fn(*args, **kwargs)`` now and store it, whatever is cached; return it."""
    if policy.ttl_ms == 0:
        return (yield Call(fn, args, kwargs))
    job = Job(ctx, policy, redis_key, tids, fn, args, kwargs)
    tokens: dict[str, bytes | None] = {}
    if tids:
        try:
            tokens = yield from current_tokens(ctx, tids)
        except BackendError as err:
            ctx.failures.backend(err, "cached refresh")
            return (yield job.call_plain())
    return (yield from _store(job, tokens, None))


def _fill(job: Job, tokens: Mapping[str, bytes | None]) -> Op[Any]:
    """Fill a miss: single-flight when the policy has a lease, else compute at once."""
    ctx, tids = job.ctx, job.tids
    missing = [t for t in tids if tokens.get(t) is None]
    if job.policy.lease_ms is None:
        if missing:
            try:
                tokens = yield from current_tokens(ctx, tids)
            except BackendError as err:
                ctx.failures.backend(err, "cached fill")
                return (yield job.call_plain())
        return (yield from _store(job, tokens, None))

    token = ctx.new_token()
    lock_key = ctx.fill_key(job.redis_key)
    tag_keys = [ctx.tag_key(t) for t in tids]
    deadline = ctx.clock() + job.policy.lease_ms / 1000
    delay = _FIRST_POLL
    while True:
        # Take the lock and re-read in one batch: a value stored since our read is used.
        creates = create_commands(ctx, missing)
        cmds = [job.lock_command(token), *creates, ("GET", job.redis_key)]
        if tids:
            cmds.append(("MGET", *tag_keys))
        try:
            replies = yield Batch(cmds)
        except BackendError as err:
            ctx.failures.backend(err, "cached fill")
            return (yield job.call_plain())
        won = bool(replies[0])
        if tids:
            tokens = dict(zip(tids, replies[-1], strict=True))
            missing = [t for t in tids if tokens[t] is None]
        found = open_entry(ctx, replies[1 + len(creates)], tokens, tids)
        if isinstance(found, tuple):
            if won:
                yield from release(lock_key, token)
            return found[1]
        if won:
            return (yield from _store(job, tokens, (lock_key, token)))
        # Someone else is computing: wait for their value, or for their lock to vanish.
        while True:
            left = deadline - ctx.clock()
            if left <= 0:
                logger.debug("object cache: waited a whole lease for %s", job.policy.name)
                return (yield from _store(job, tokens, None))
            yield Sleep(min(delay, left) * (0.5 + random_source() / 2))
            delay = min(delay * 1.5, _MAX_POLL)
            cmds = [("GET", job.redis_key), ("EXISTS", lock_key)]
            if tids:
                cmds.append(("MGET", *tag_keys))
            try:
                replies = yield Batch(cmds)
            except BackendError as err:
                ctx.failures.backend(err, "cached fill")
                return (yield job.call_plain())
            if tids:
                tokens = dict(zip(tids, replies[-1], strict=True))
                missing = [t for t in tids if tokens[t] is None]
            found = open_entry(ctx, replies[0], tokens, tids)
            if isinstance(found, tuple):
                return found[1]
            if not replies[1]:
                break  # the lock is gone without a value (the filler failed): take over


def _refresh_behind(job: Job, tokens: Mapping[str, bytes | None], value: Any, what: str) -> Op[Any]:
    """Recompute a stale or early-refreshed entry if no one else is; else serve ``value``."""
    lock = None
    if job.policy.lease_ms is not None:
        lock = (job.ctx.fill_key(job.redis_key), job.ctx.new_token())
        try:
            (won,) = yield Batch([job.lock_command(lock[1])])
        except BackendError as err:
            job.ctx.failures.backend(err, "cached refresh")
            return value
        if not won:
            return value  # someone is recomputing it: serve what we have
    return (yield from _store(job, tokens, lock, value, what))


def _store(
    job: Job,
    tokens: Mapping[str, bytes | None],
    lock: tuple[str, bytes] | None,
    fallback: Any = MISSING,
    what: str = "",
) -> Op[Any]:
    """Compute, store (releasing ``lock`` in the same batch) and return the value.

    If the function raises and there is a ``fallback`` (a stale or still-fresh value), the
    fallback is returned and a warning logged; otherwise the exception rises, uncached.
    """
    ctx, policy = job.ctx, job.policy
    started = ctx.clock()
    result = yield Call(policy.capture, (job.fn, job.args, job.kwargs))
    compute_ms = round((ctx.clock() - started) * 1000)
    if isinstance(result, _Failed):
        if lock is not None:
            yield from release(*lock)
        if fallback is MISSING:
            raise result.error
        logger.warning(
            "object cache: recomputing %s raised %s; serving the %s value",
            policy.name,
            type(result.error).__name__,
            what,
        )
        logger.debug("object cache: %s raised", policy.name, exc_info=result.error)
        return fallback
    if result is None and not policy.cache_none:
        if lock is not None:
            yield from release(*lock)
        return None
    try:
        data = ctx.codec.encode(result)
    except EncodeError:
        if lock is not None:
            yield from release(*lock)
        raise
    stale_ms = policy.stale_ms if policy.ttl_ms is not None else 0
    tagged = tuple((t, tokens.get(t) or b"") for t in job.tids)
    ms = None if policy.ttl_ms is None else policy.ttl_ms + stale_ms
    cmds = [set_command(job.redis_key, pack(Entry(data, compute_ms, stale_ms, tagged)), ms)]
    if lock is not None:
        cmds.append(UNLOCK([lock[0]], [lock[1]]))
    try:
        replies = yield Batch(cmds, raise_on_error=False)
    except BackendError as err:
        ctx.failures.backend(err, "cached write")
        return result
    if isinstance(replies[0], BackendError):
        ctx.failures.backend(replies[0], "cached write")
    else:
        ctx.failures.written()
    return result
