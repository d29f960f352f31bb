"""Tags: invalidate any number of entries in one round trip, O(1) in their number.

Each tag has a version key holding a random token (see :mod:`rcache.objects._context` for
where it lives; all tag keys of a cache share one Cluster slot). An entry records the token
of each of its tags as it was *before* its value was computed; it is served only while
every one of those keys still holds that token:

- ``invalidate_tags(*tags)`` is one ``MSET`` of fresh tokens: every entry that recorded an
  older token is dead at once, however many there are (they expire on their own TTL);
- a missing tag key (never created, cleared, or evicted under memory pressure) also kills
  the entries that recorded a token for it, so eviction can only cause misses, never
  serve a value from before an invalidation.

Writing: tokens are read before the value is computed and never chosen by the writer.
``set(..., tags=...)`` sends ``SET tag <random> NX`` for each tag then ``MGET`` of them in
one batch (creating missing keys without overwriting a concurrent invalidation), and the
entry in a second batch; the decorator already has the tokens from its read (and creates
missing ones in the batch that takes its fill lock). So an invalidation that lands while
the value is computed or written changes the key after the token was read, and the entry
is born invalid: a race can cause an extra miss, never a stale hit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rcache.errors import BackendError
from rcache.objects._context import CacheContext, tag_id
from rcache.ops import Batch, Command, Op

__all__ = ["create_commands", "current_tokens", "invalidate", "tag_ids"]


def tag_ids(tags: Iterable[str]) -> tuple[str, ...]:
    """Return the ids of ``tags``, without duplicates, in their first order."""
    if isinstance(tags, str):
        raise TypeError("tags must be a sequence of str, not a single str")
    return tuple(dict.fromkeys(tag_id(t) for t in tags))


def create_commands(ctx: CacheContext, tids: Sequence[str]) -> list[Command]:
    """Return commands that create the missing version keys of ``tids`` (never overwrite)."""
    return [("SET", ctx.tag_key(t), ctx.new_token(), "NX") for t in tids]


def current_tokens(ctx: CacheContext, tids: Sequence[str]) -> Op[dict[str, bytes | None]]:
    """Return the current token of each tag, creating missing tag keys (one round trip)."""
    keys = [ctx.tag_key(t) for t in tids]
    replies = yield Batch([*create_commands(ctx, tids), ("MGET", *keys)])
    return dict(zip(tids, replies[-1], strict=True))


def invalidate(ctx: CacheContext, tags: Iterable[str]) -> Op[bool]:
    """Give each tag a new token (one ``MSET``); return False if Redis failed ("miss" mode)."""
    tag_keys = [ctx.tag_key(tid) for tid in tag_ids(tags)]
    if not tag_keys:
        return True
    args: list[str | bytes] = []
    for tag_key in tag_keys:
        args += (tag_key, ctx.new_token())
    ctx.failures.done("tag", tag_keys)  # this supersedes any lost invalidation of them
    try:
        yield Batch([("MSET", *args)])
    except BackendError as err:
        ctx.failures.lost("tag", tag_keys)  # the old versions may still be there
        ctx.failures.backend(err, "invalidate_tags")
        return False
    ctx.failures.written()
    return True
