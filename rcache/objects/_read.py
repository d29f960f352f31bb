"""The read path: every entry the object cache reads comes through :func:`read`.

:func:`read` is the one place that fetches stored bytes (plus, in the same round trip,
their PTTL and the tokens of the tags the caller already knows). A local in-process tier
plugs in there: it answers what it holds and sends the rest on to Redis (see
:mod:`rcache.objects._local`; a context with a tier is a ``LocalContext``). (The fill
protocol of ``@cached`` - its lock batch and polls - reads Redis directly on purpose: it
waits for what other processes write.)
:func:`open_values` turns what was read into values: it unwraps envelopes, checks their
tags (one more round trip only for tags the caller did not know), decodes, and deletes
entries that cannot be read.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

from rcache.errors import BackendError, DecodeError
from rcache.objects._context import CacheContext
from rcache.objects._envelope import Entry, is_envelope, unpack
from rcache.objects._local import LocalContext
from rcache.ops import Batch, Command, Op

__all__ = ["MISSING", "Missing", "Reading", "drop", "open_values", "read", "tags_valid"]


class Missing(enum.Enum):
    """The type of :data:`MISSING`: "no such entry", distinct from a cached ``None``."""

    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return False


MISSING: Final = Missing.MISSING
"""Returned where "absent" must differ from a stored ``None`` (e.g. ``ttl()`` of no key)."""


class Reading(NamedTuple):
    """What one read round trip returned."""

    raws: list[bytes | None]
    """Stored bytes per key, None where the key is absent."""
    pttls: list[int] | None
    """PTTL per key in ms (-1 = no expiry, -2 = absent), when asked for."""
    tokens: dict[str, bytes | None]
    """Current token of each tag id asked for (None = the tag key is absent)."""


def read(
    ctx: CacheContext,
    redis_keys: Sequence[str],
    *,
    pttl: bool = False,
    tag_ids: Sequence[str] = (),
    direct: bool = False,
) -> Op[Reading]:
    """Read entries (and their PTTL and tag tokens if asked) in one round trip.

    With a local tier, held entries cost no round trip (``direct``: read Redis only).
    """
    if type(ctx) is LocalContext and not direct:
        raws, pttls, tokens = yield from ctx.local.read(ctx, redis_keys, pttl, tag_ids, read)
        return Reading(raws, pttls, tokens)
    if len(redis_keys) == 1:
        cmds: list[Command] = [("GET", redis_keys[0])]
        if pttl:
            cmds.append(("PTTL", redis_keys[0]))
    else:
        cmds = [("MGET", *redis_keys)]
        if pttl:
            cmds += [("PTTL", k) for k in redis_keys]
    if tag_ids:
        cmds.append(("MGET", *[ctx.tag_key(t) for t in tag_ids]))
    replies = yield Batch(cmds)
    ctx.failures.ok()
    raws = [replies[0]] if len(redis_keys) == 1 else replies[0]
    pttls = replies[1 : 1 + len(redis_keys)] if pttl else None
    tokens = dict(zip(tag_ids, replies[-1], strict=True)) if tag_ids else {}
    return Reading(raws, pttls, tokens)


def tags_valid(entry: Entry, tokens: Mapping[str, bytes | None]) -> bool:
    """Return whether every tag recorded in ``entry`` still holds the recorded token."""
    for tid, token in entry.tags:
        if tokens.get(tid) != token:
            return False  # a changed token (invalidated) or a missing key (invalidated/evicted)
    return True


def drop(ctx: CacheContext, redis_keys: Sequence[str]) -> Op[None]:
    """Delete entries that cannot be read (best effort: a failure is ignored)."""
    if type(ctx) is LocalContext:
        ctx.local.invalidate(redis_keys)
    try:
        yield Batch([("UNLINK", *redis_keys)])
    except BackendError:
        pass


def open_values(
    ctx: CacheContext,
    redis_keys: Sequence[str],
    raws: Sequence[bytes | None],
    tokens: Mapping[str, bytes | None],
) -> Op[list[Any]]:
    """Return the value stored at each key, or MISSING (absent, invalidated or unreadable).

    Envelopes whose tags are not in ``tokens`` cost one more round trip (one ``MGET`` for
    all of them). Unreadable entries are deleted and reported (which raises in
    ``on_error="raise"`` mode, after the delete).
    """
    opened: list[Entry | bytes | None] = []
    bad: list[tuple[int, DecodeError]] = []
    unknown: set[str] = set()
    for i, raw in enumerate(raws):
        if raw is None or not is_envelope(raw):
            opened.append(raw)
            continue
        try:
            entry = unpack(raw)
        except DecodeError as err:
            bad.append((i, err))
            opened.append(None)
            continue
        unknown.update(tid for tid, _ in entry.tags if tid not in tokens)
        opened.append(entry)
    if unknown:
        tids = sorted(unknown)
        (current,) = yield Batch([("MGET", *[ctx.tag_key(t) for t in tids])])
        tokens = {**tokens, **dict(zip(tids, current, strict=True))}
    decode = ctx.codec.decode
    values: list[Any] = []
    for i, item in enumerate(opened):
        if item is None:
            values.append(MISSING)
            continue
        if isinstance(item, Entry):
            if not tags_valid(item, tokens):
                values.append(MISSING)
                continue
            item = item.value
        try:
            values.append(decode(item))
        except DecodeError as err:
            bad.append((i, err))
            values.append(MISSING)
    if bad:
        yield from drop(ctx, [redis_keys[i] for i, _ in bad])
        for i, problem in bad:
            ctx.failures.decode(problem, redis_keys[i])
    return values
