"""What the local tier holds, and the bookkeeping that keeps it coherent. Pure, no I/O.

:class:`LocalStore` is a bounded LRU (entries and bytes) of *stored bytes*, keyed by the full
Redis key, plus three pieces of bookkeeping that make it safe to fill from a round trip
that races with writes elsewhere:

- **fill tickets**: before a read goes to Redis, each key it misses gets a pending mark
  owned by that read. An invalidation of the key (a message from Redis, or a write by this
  process) removes the mark, and a fill is stored only while its mark is still there. So a
  value read just before another process overwrote it can never land after that write's
  invalidation and linger.
- **epochs**: every flush (a lost invalidation connection, a flush-all message, ``clear()``)
  starts a new epoch and drops every mark; fills from an older epoch are refused.
- **tags**: an entry stored with tags is indexed under the Redis key of each tag's version
  token. Tag keys share the cache's prefix, so their changes are tracked too: when a tag
  key is invalidated (``invalidate_tags`` anywhere, or the key evicted), every local entry
  that recorded a token for it is dropped, and tagged fills started before that are
  refused (a tag sequence number, since a read does not know an entry's tags until it
  sees the entry).

While the store is not *live* (no confirmed invalidation connection) it is empty and
refuses fills: the tier is bypassed. Thread-safe: one lock, held briefly, never across I/O.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields

__all__ = ["LocalEntry", "LocalStats", "LocalStore", "Ticket"]

Clock = Callable[[], float]


@dataclass(slots=True)
class LocalStats:
    """Counters of a local tier (plain ints; approximate under threads).

    ``hits``/``misses``: keys looked up locally while the tier was live (a miss goes on to
    Redis). ``bypassed``: keys read straight from Redis because the tier was not live.
    ``fills``: entries stored after a Redis read. ``evictions``: entries dropped to stay
    within ``max_entries``/``max_bytes``. ``invalidations``: entries dropped because their
    key (or one of their tags) changed, here or in another process. ``flushes``: times the
    whole tier was emptied (lost connection, a flush-all message from Redis, ``clear()``).
    ``connects``/``disconnects``: invalidation connections established / lost.
    """

    hits: int = 0
    misses: int = 0
    bypassed: int = 0
    fills: int = 0
    evictions: int = 0
    invalidations: int = 0
    flushes: int = 0
    connects: int = 0
    disconnects: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counters as a dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class LocalEntry:
    """One entry held locally: the bytes Redis stored, and when they stop being valid."""

    __slots__ = ("raw", "expires", "until", "tags", "tag_keys")

    def __init__(
        self,
        raw: bytes,
        expires: float | None,
        until: float | None,
        tags: tuple[tuple[str, bytes], ...],
        tag_keys: tuple[str, ...],
    ) -> None:
        self.raw = raw
        self.expires = expires  # Redis's expiry on our clock (None = never)
        self.until = until  # when the local copy is dropped (None = never)
        self.tags = tags  # (tag id, token) recorded in the envelope; valid when filled
        self.tag_keys = tag_keys

    def pttl(self, now: float) -> int:
        """Return the entry's remaining Redis TTL in ms as PTTL would (-1 = no expiry)."""
        if self.expires is None:
            return -1
        return max(1, int((self.expires - now) * 1000))

    def knows(self, tag_ids: Sequence[str]) -> bool:
        """Return whether the entry recorded a token for each of ``tag_ids``."""
        have = {tid for tid, _ in self.tags}
        return all(tid in have for tid in tag_ids)


@dataclass(frozen=True, slots=True)
class Ticket:
    """The right of one read to fill the keys it missed (see the module docs)."""

    number: int
    epoch: int
    tag_seq: int
    keys: tuple[str, ...]


class LocalStore:
    """The bounded LRU and its coherence bookkeeping (see the module docs).

    ``max_entries``/``max_bytes`` bound what is held (bytes = the stored encoded sizes;
    an entry larger than ``max_bytes`` is not held); ``ttl``: seconds a local copy lives
    at most (None = until Redis's own expiry or an invalidation). ``tag_head``: the Redis
    key prefix of the cache's tag tokens.
    """

    def __init__(
        self,
        *,
        max_entries: int,
        max_bytes: int,
        ttl: float | None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.clock = clock
        self.tag_head = "\x00"  # set when the tier is attached to a cache
        self.stats = LocalStats()
        self.live = False
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, LocalEntry] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._bytes = 0
        self._by_tag: dict[str, set[str]] = {}
        self._pending: dict[str, int] = {}
        self._tickets = 0
        self._epoch = 0
        self._tag_seq = 0

    # -- reading ---------------------------------------------------------------------------

    @property
    def entries(self) -> int:
        """The number of entries held."""
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """The total encoded size of the entries held, in bytes."""
        return self._bytes

    def lookup(self, keys: Sequence[str], now: float) -> list[LocalEntry | None]:
        """Return the live entry of each key (None where absent or past its time)."""
        found: list[LocalEntry | None] = []
        with self._lock:
            entries = self._entries
            for key in keys:
                entry = entries.get(key)
                if entry is not None:
                    if entry.until is not None and now >= entry.until:
                        self._remove(key)
                        entry = None
                    else:
                        entries.move_to_end(key)
                found.append(entry)
        return found

    def get_one(self, key: str) -> bytes | None:
        """Return the stored bytes held for ``key`` while live (None: not held, or past its time).

        The one-key read of the caches' direct path: :meth:`lookup` without the lists.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or not self.live:
                return None
            until = entry.until
            if until is not None and self.clock() >= until:
                self._remove(key)
                return None
            self._entries.move_to_end(key)
            return entry.raw

    def begin(self, keys: Sequence[str]) -> Ticket:
        """Mark ``keys`` as being read from Redis by a new read; return its ticket."""
        with self._lock:
            self._tickets += 1
            number = self._tickets
            for key in keys:
                self._pending[key] = number
            return Ticket(number, self._epoch, self._tag_seq, tuple(keys))

    def fill(
        self,
        ticket: Ticket,
        key: str,
        raw: bytes,
        expires: float | None,
        tags: tuple[tuple[str, bytes], ...],
        now: float,
    ) -> bool:
        """Hold ``raw`` for ``key`` if nothing changed it since ``ticket``; return whether held.

        ``expires``: Redis's expiry on this clock (None = never); ``now``: when the read
        was sent (so the local deadline errs early).
        """
        size = len(raw)
        if size > self.max_bytes or self.max_entries <= 0:
            return False
        until = expires
        if self.ttl is not None and (until is None or now + self.ttl < until):
            until = now + self.ttl
        tag_keys = tuple(self.tag_head + tid for tid, _ in tags)
        with self._lock:
            if (
                not self.live
                or ticket.epoch != self._epoch
                or self._pending.get(key) != ticket.number
                or (tags and ticket.tag_seq != self._tag_seq)
            ):
                return False
            del self._pending[key]
            if key in self._entries:
                self._remove(key)
            self._entries[key] = LocalEntry(raw, expires, until, tags, tag_keys)
            self._sizes[key] = size
            self._bytes += size
            for tag_key in tag_keys:
                self._by_tag.setdefault(tag_key, set()).add(key)
            self.stats.fills += 1
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                oldest = next(iter(self._entries))
                self._remove(oldest)
                self.stats.evictions += 1
        return True

    def end(self, ticket: Ticket) -> None:
        """Forget the marks ``ticket`` still owns (its read is over, filled or not)."""
        pending = self._pending
        with self._lock:
            for key in ticket.keys:
                if pending.get(key) == ticket.number:
                    del pending[key]

    # -- changes ---------------------------------------------------------------------------

    def invalidate(self, keys: Iterable[str]) -> None:
        """Drop what is held (or being filled) for ``keys``: they changed in Redis."""
        tag_head = self.tag_head
        with self._lock:
            for key in keys:
                self._pending.pop(key, None)
                if key in self._entries:
                    self._remove(key)
                    self.stats.invalidations += 1
                if key.startswith(tag_head):
                    self._tag_seq += 1
                    for dependent in self._by_tag.pop(key, ()):
                        if dependent in self._entries:
                            self._remove(dependent)
                            self.stats.invalidations += 1

    def flush(self) -> None:
        """Drop everything held and every pending fill."""
        with self._lock:
            self._flush()
            self.stats.flushes += 1

    def go_live(self) -> None:
        """Start holding entries: the invalidation connection is subscribed and tracking."""
        with self._lock:
            self._flush()
            self.live = True
            self.stats.connects += 1

    def go_down(self, *, lost: bool) -> None:
        """Stop holding entries and flush: invalidations may be missed from now on."""
        with self._lock:
            was = self.live
            self.live = False
            self._flush()
            if was and lost:
                self.stats.disconnects += 1
                self.stats.flushes += 1

    def reset_lock(self) -> None:
        """Replace the lock (in a forked child, where another thread may have held it)."""
        self._lock = threading.Lock()

    def _flush(self) -> None:
        self._entries.clear()
        self._sizes.clear()
        self._by_tag.clear()
        self._pending.clear()
        self._bytes = 0
        self._epoch += 1
        self._tag_seq += 1

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._bytes -= self._sizes.pop(key)
        for tag_key in entry.tag_keys:
            dependents = self._by_tag.get(tag_key)
            if dependents is not None:
                dependents.discard(key)
                if not dependents:
                    del self._by_tag[tag_key]
