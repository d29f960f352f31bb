"""What a process remembers between lookups, so that a hit is plain reads in one round trip.

Nothing here is trusted: every hit re-reads from Redis what the memo predicts and checks it.

- **URL keys**: the URL-level key of a (scheme, host, path, query), which costs a query
  normalization and a SHA-256 to compute.
- **Specs**: the Vary spec last read (or written) at a URL-level key, which names the
  request headers that select a variant.
- **Variants**: for a variant key, the purge keys its entry answers to (field ``t`` of the
  variant hash, see ``lookup.lua``), with the ``GET`` of each ready to send.
- **Entries**: the last decoded entry of a variant together with its stored bytes; a hit
  whose bytes are equal reuses the decoded form (equal bytes decode to equal entries).

With a spec and a variant remembered, a lookup is one pipeline of two plain reads:
``HMGET`` of the variant (``e``, ``g``, ``t``), then ``MGET`` of the URL-level key and every
remembered purge key. The answer is used only if the spec read equals the remembered one
(the variant read is the one the URL's current Vary selects) and ``t`` equals the
remembered purge keys (the keys read are the entry's); the purge check is then the one
``lookup.lua`` makes: every purge key present and no later than ``g``.

Why that order is safe: the purge keys are read after the variant. A purge key only ever
moves forward (``purge.lua``), or disappears (which reads as purged) and is recreated at
the clock's current epoch (``store.lua``), so a purge that completed before the variant was
read is always seen, and one that completes in between makes a miss, never a stale hit.
Whatever the spec, the variant's key encodes the Vary names and the request's values for
them, so an entry read there was stored for a request that matches this one (RFC 9111
§4.1); reading the spec in the same pipeline only makes sure a Vary change is followed.

Anything else (a Vary or tag change, a URL or variant this process has not seen) goes
through ``lookup.lua``, which also teaches the memo.

Every table is bounded (the oldest entries go first) and shared by the threads of a
process; a lost update only costs one ``lookup.lua`` later.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Generic, TypeVar

from rcache.pages.model import StoredEntry

__all__ = ["DEFAULT_MEMO_SIZE", "ENTRY_MEMO_BYTES", "LookupMemo", "VariantRecord"]

DEFAULT_MEMO_SIZE = 4096
"""URL keys, specs and variants each remembered per cache, at most."""

ENTRY_MEMO_BYTES = 8 * 1024 * 1024
"""Stored bytes of the decoded entries kept per cache, at most."""

K = TypeVar("K")
V = TypeVar("V")


class _Bounded(Generic[K, V]):
    """A dict that forgets its oldest items past ``size`` (reads take no lock)."""

    __slots__ = ("_items", "_lock", "size")

    def __init__(self, size: int, lock: threading.Lock) -> None:
        self.size = size
        self._items: dict[K, V] = {}
        self._lock = lock

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def put(self, key: K, value: V) -> None:
        if self.size <= 0:
            return
        with self._lock:
            items = self._items
            items.pop(key, None)
            items[key] = value
            while len(items) > self.size:
                del items[next(iter(items))]

    def pop(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


class VariantRecord:
    """What a variant's entry answers to: field ``t`` as stored, and its purge keys."""

    __slots__ = ("keys", "t")

    def __init__(self, t: bytes) -> None:
        self.t = t
        self.keys: tuple[bytes, ...] = tuple(key for key in t.split(b"\n") if key)


class LookupMemo:
    """The per-cache memo described in the module docstring."""

    __slots__ = ("_entries", "_entry_bytes", "_entry_limit", "_lock", "specs", "urls", "variants")

    def __init__(self, size: int = DEFAULT_MEMO_SIZE, entry_bytes: int = ENTRY_MEMO_BYTES) -> None:
        self._lock = threading.Lock()
        self.urls: _Bounded[tuple[str, str, str, str], str] = _Bounded(size, self._lock)
        self.specs: _Bounded[str, tuple[bytes, tuple[str, ...]]] = _Bounded(size, self._lock)
        self.variants: _Bounded[str, VariantRecord] = _Bounded(size, self._lock)
        self._entries: dict[str, tuple[bytes, StoredEntry]] = {}
        self._entry_bytes = 0
        self._entry_limit = entry_bytes

    def learn(self, url_key: str, spec: bytes, names: Sequence[str]) -> None:
        """Remember the Vary spec read or written at ``url_key``."""
        known = self.specs.get(url_key)
        if known is None or known[0] != spec:
            self.specs.put(url_key, (spec, tuple(names)))

    def learn_variant(self, variant_key: str, t: bytes) -> None:
        """Remember the purge keys (field ``t``) of the entry at ``variant_key``."""
        known = self.variants.get(variant_key)
        if known is None or known.t != t:
            self.variants.put(variant_key, VariantRecord(t))

    def decoded(self, variant_key: str, raw: bytes) -> StoredEntry | None:
        """Return the entry decoded from bytes equal to ``raw`` at ``variant_key``, if kept."""
        known = self._entries.get(variant_key)
        if known is not None and known[0] == raw:
            return known[1]
        return None

    def keep(self, variant_key: str, raw: bytes, entry: StoredEntry) -> None:
        """Keep ``entry``, decoded from ``raw``, for the next hits of ``variant_key``."""
        size = len(raw)
        if size > self._entry_limit // 8:
            return
        with self._lock:
            entries = self._entries
            old = entries.pop(variant_key, None)
            if old is not None:
                self._entry_bytes -= len(old[0])
            entries[variant_key] = (raw, entry)
            self._entry_bytes += size
            while self._entry_bytes > self._entry_limit:
                oldest = next(iter(entries))
                self._entry_bytes -= len(entries.pop(oldest)[0])
