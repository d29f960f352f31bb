"""Walking a key space with SCAN (never KEYS): ``clear``, ``iter_keys``, ``delete_pattern``.

Standalone and Sentinel: ``SCAN cursor MATCH pattern COUNT n`` in ordinary batches.

Cluster: every primary holds part of the space and each has its own cursor, but a batch
cannot name the node it goes to. The operations therefore ask a :class:`NodeScanner`
(through :class:`~rcache.ops.Call`, so the async driver awaits it) for the primaries and
for one page of one primary; the scanner wraps the redis-py Cluster client's
``scan(..., target_nodes=node)`` and returns errors translated instead of raising them, so
a failed page reaches the operation like a failed batch (see :mod:`rcache.objects._nodes`).
The deletes stay ordinary batches (``UNLINK`` is split per slot by the adapter). Each page
is deleted before the next is fetched, so memory stays flat however large the space.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rcache.errors import BackendError, RCacheError
from rcache.objects._context import CacheContext
from rcache.ops import Batch, Call, Op

__all__ = ["ScanCursor", "clear", "delete_matching", "delete_pattern", "next_page", "user_keys"]

PAGE = 1000  # SCAN COUNT: keys examined per page and node


@dataclass(slots=True)
class ScanCursor:
    """Where a walk over the keys matching ``match`` stands."""

    match: str
    shards: list[Any] | None = None  # [None] on standalone; the primaries on Cluster
    cursor: int = 0
    done: bool = False


def next_page(ctx: CacheContext, cur: ScanCursor) -> Op[list[bytes]]:
    """Return the next page of full Redis keys (raise BackendError if Redis fails)."""
    if cur.shards is None:
        if ctx.scanner is None:
            cur.shards = [None]
        else:
            nodes = yield Call(ctx.scanner.primaries)
            if isinstance(nodes, RCacheError):
                raise nodes
            cur.shards = list(nodes)
    if not cur.shards:
        cur.done = True
        return []
    node = cur.shards[0]
    if node is None:
        ((cursor, keys),) = yield Batch([("SCAN", cur.cursor, "MATCH", cur.match, "COUNT", PAGE)])
    else:
        page = yield Call(ctx.scanner.scan, (node, cur.cursor, cur.match, PAGE))  # type: ignore[union-attr]
        if isinstance(page, RCacheError):
            raise page
        cursor, keys = page
    cur.cursor = int(cursor)
    if cur.cursor == 0:
        cur.shards.pop(0)
        cur.done = not cur.shards
    return list(keys)  # SCAN may return a key twice; deleting twice is harmless


def delete_matching(
    ctx: CacheContext, match: str, keep: Callable[[bytes], bool], action: str
) -> Op[int]:
    """Delete every key matching ``match`` for which ``keep(key)`` is true; return how many."""
    cur = ScanCursor(match)
    deleted = 0
    try:
        while not cur.done:
            keys = [k for k in (yield from next_page(ctx, cur)) if keep(k)]
            if keys:
                (count,) = yield Batch([("UNLINK", *keys)])
                deleted += int(count)
    except BackendError as err:
        ctx.failures.backend(err, action)
        return deleted
    ctx.failures.ok()
    return deleted


def user_keys(ctx: CacheContext, cur: ScanCursor) -> Op[list[str]]:
    """Return the next page of entry keys (as given to ``set``); internal keys are skipped.

    A hashed key comes back in its stored ``head#digest`` form. When Redis fails the walk
    ends (``"miss"`` mode) or raises.
    """
    try:
        page = yield from next_page(ctx, cur)
    except BackendError as err:
        cur.done = True
        ctx.failures.backend(err, "iter_keys")
        return []
    keys = []
    for full in page:
        key = ctx.user_key(full)
        if key is not None:
            keys.append(key)
    return keys


def delete_pattern(ctx: CacheContext, pattern: str) -> Op[int]:
    """Delete the entries whose key matches the glob ``pattern``; return how many."""
    return (
        yield from delete_matching(
            ctx, ctx.entry_pattern(pattern), lambda k: ctx.user_key(k) is not None, "delete_pattern"
        )
    )


def clear(ctx: CacheContext) -> Op[int]:
    """Delete every key of the cache's space (all versions, tags and locks included)."""
    return (yield from delete_matching(ctx, ctx.space_pattern(), ctx.owns, "clear"))
