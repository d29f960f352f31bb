"""Everything an object-cache operation needs besides the adapter. Pure, no I/O.

Key layout (``<space>`` is ``prefix:version:`` of the cache's :class:`~rcache.keys.KeySpace`)::

    <space><key>                          an entry (plain codec bytes, or an envelope)
    <space><key>#fill                     single-flight lock of that entry (short lease)
    <space><name>#lock                    a lock taken with ObjectCache.lock(name)
    <space>{<space>tags}#tag:<tag id>     the version token of a tag

A plain key never contains ``#`` (the key space hashes keys that do, into ``head#<32 hex>``),
so these internal keys cannot collide with an entry. All tag keys of a cache share one
hash tag, hence one Cluster slot: ``invalidate_tags`` is one ``MSET`` and the tag tokens of
any read are one ``MGET``. Everything lives under ``<space>``, so ``clear()`` removes it all.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from rcache.codecs import Codec
from rcache.keys import KeySpace
from rcache.objects._failures import Failures
from rcache.ttl import TTL, Default, to_milliseconds

if TYPE_CHECKING:
    from rcache.adapter import AdapterStats

__all__ = ["KEY_MEMO_SIZE", "CacheContext", "NodeScanner", "remember", "tag_id"]

_PLAIN_TAG = re.compile(r"[^\x00-\x20\x7f-\x9f\s{}#]{1,100}")
_HASHED_KEY = re.compile(r"[^#]*#[0-9a-f]{32}")

#: Entry keys whose Redis key is remembered, per cache (the oldest is forgotten first).
KEY_MEMO_SIZE = 4096


def remember(memo: dict[Any, Any], key: Any, value: Any, size: int) -> None:
    """Store ``key -> value`` in a bounded memo, forgetting the oldest entry when full.

    Safe under threads: a lost race costs a recomputation, never a wrong answer.
    """
    if len(memo) >= size:
        try:
            del memo[next(iter(memo))]
        except (KeyError, RuntimeError, StopIteration):
            pass  # another thread changed the memo meanwhile
    memo[key] = value


def tag_id(tag: str) -> str:
    """Return the id of ``tag`` used in keys and envelopes: the tag, or a digest if odd/long."""
    if not isinstance(tag, str):
        raise TypeError(f"a tag must be a str, got {type(tag).__name__}")
    if _PLAIN_TAG.fullmatch(tag) and len(tag.encode("utf-8", "surrogatepass")) <= 100:
        return tag
    return "#" + hashlib.sha256(tag.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class NodeScanner(Protocol):
    """SCAN on each Cluster primary (the adapter's batches cannot target a node).

    Both methods return their result or the translated error (never raise it), so an
    operation handles a failed scan like a failed batch. The async variant's methods are
    coroutine functions; the async driver awaits them.
    """

    def primaries(self) -> Any: ...

    def scan(self, node: Any, cursor: int, match: str, count: int) -> Any: ...


@dataclass(slots=True, eq=False)
class CacheContext:
    """The configuration and helpers shared by the operations of one cache."""

    space: KeySpace
    codec: Codec
    default_ttl: TTL
    failures: Failures
    stats: AdapterStats
    scanner: NodeScanner | None = None
    clock: Callable[[], float] = time.monotonic
    head: str = field(init=False)
    tag_head: str = field(init=False)
    _keys: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        to_milliseconds(self.default_ttl)  # validates it once, early
        self._keys = {}
        self.head = self.space.key("")
        if self.space.hash_tag is None:
            self.tag_head = f"{self.head}{{{self.head}tags}}#tag:"
        else:  # the space's own hash tag already puts every key in one slot
            self.tag_head = f"{self.head}#tag:"

    def ttl_ms(self, ttl: TTL | Default) -> int | None:
        """Return ``ttl`` in ms (DEFAULT = the cache's default; None = never; 0 = expired)."""
        return to_milliseconds(ttl, self.default_ttl)

    def key(self, key: str) -> str:
        """Return the Redis key of entry ``key`` (remembered for recent ``str`` keys)."""
        if type(key) is not str:
            return self.space.key(key)
        redis_key = self._keys.get(key)
        if redis_key is None:
            redis_key = self.space.key(key)
            remember(self._keys, key, redis_key, KEY_MEMO_SIZE)
        return redis_key

    def keys(self, keys: Sequence[str]) -> list[str]:
        """Return the Redis keys of ``keys``, in order."""
        k = self.key
        return [k(key) for key in keys]

    @staticmethod
    def fill_key(redis_key: str) -> str:
        """Return the single-flight lock key of the entry at ``redis_key``."""
        return redis_key + "#fill"

    def lock_key(self, name: str) -> str:
        """Return the key of the user lock ``name``."""
        return self.space.key(name) + "#lock"

    def tag_key(self, tid: str) -> str:
        """Return the version key of the tag with id ``tid``."""
        return self.tag_head + tid

    @staticmethod
    def new_token() -> bytes:
        """Return a fresh random token (tag versions, lock ownership)."""
        return os.urandom(12)

    def user_key(self, redis_key: bytes | str) -> str | None:
        """Return the entry key behind ``redis_key``; None for internal or foreign keys."""
        try:
            k = self.space.unkey(redis_key)
        except ValueError:
            return None
        if "#" in k and not _HASHED_KEY.fullmatch(k):
            return None
        return k

    def entry_pattern(self, pattern: str) -> str:
        """Return the SCAN MATCH pattern of entry keys matching the glob ``pattern``."""
        return self.space.pattern()[:-1] + pattern

    def space_pattern(self) -> str:
        """Return a SCAN MATCH pattern of every key of this space, at any version."""
        v = f"{self.space.version}:*"
        return self.space.pattern()[: -len(v)] + "[-0-9]*"

    def owns(self, redis_key: bytes) -> bool:
        """Return whether a key matched by :meth:`space_pattern` belongs to this space."""
        try:
            self.space.unkey(redis_key)
        except ValueError:
            return False
        return True
