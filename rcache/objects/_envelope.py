"""The envelope: what a decorated (or tagged) entry stores besides the value. Pure, no I/O.

Plain ``set`` stores the codec's bytes as they are, so ``INCR`` works and other clients
can read them. An entry that needs metadata (every ``@cached`` entry, and ``set(...,
tags=...)``) is wrapped in an envelope, all integers big-endian::

    offset  size  field
    0       1     marker 0x01 (a codec payload starts with an ASCII digit, '-' or >= 0x80,
                  so the first byte alone tells an envelope from a plain value)
    1       1     layout version (1)
    2       4     compute_ms: how long the value took to compute, in ms (for XFetch)
    6       4     stale_ms: the stale-while-revalidate window, in ms (see below)
    10      1     n: the number of tags
    11      ...   n times: name length (1) | tag id (UTF-8) | token length (1) | token
    ...     rest  the value, as the codec's bytes

Soft expiry: Redis keeps an entry ``ttl + stale_ttl``; the entry is *fresh* while its PTTL
is above ``stale_ms`` and *stale* (served while one caller recomputes) in the last
``stale_ms``. Storing the window instead of a wall-clock deadline makes Redis's own clock
the only one that matters, so app servers with skewed clocks agree on freshness.
``touch``/``expire`` move the hard expiry; the stale window then ends at the new one.

Tags: the id of each tag and the token its version key held when the value was computed;
the entry is valid while every one of those keys still holds that token.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from rcache.errors import DecodeError

__all__ = ["MARKER", "Entry", "is_envelope", "pack", "unpack"]

MARKER = 0x01
_LAYOUT = 1
_HEAD = struct.Struct(">BBIIB")
_U32 = 0xFFFFFFFF
_MAX_FIELD = 0xFF


class Entry(NamedTuple):
    """One stored entry: the value's codec bytes and what is known about it.

    A named tuple: one is made for every decorated hit, and a tuple is the cheapest
    immutable record to make.
    """

    value: bytes
    compute_ms: int = 0
    stale_ms: int = 0
    tags: tuple[tuple[str, bytes], ...] = ()


def is_envelope(data: bytes) -> bool:
    """Return whether stored bytes are an envelope (not a plain codec payload)."""
    return data[:1] == b"\x01"


def pack(entry: Entry) -> bytes:
    """Return the bytes of ``entry``'s envelope (times are clamped to 32 bits)."""
    if len(entry.tags) > _MAX_FIELD:
        raise ValueError(f"an entry may carry at most {_MAX_FIELD} tags")
    parts = [
        _HEAD.pack(
            MARKER,
            _LAYOUT,
            min(max(int(entry.compute_ms), 0), _U32),
            min(max(int(entry.stale_ms), 0), _U32),
            len(entry.tags),
        )
    ]
    for tag_id, token in entry.tags:
        name = tag_id.encode("utf-8")
        if len(name) > _MAX_FIELD or len(token) > _MAX_FIELD:
            raise ValueError("a tag id or token is longer than 255 bytes")
        parts += (bytes((len(name),)), name, bytes((len(token),)), token)
    parts.append(entry.value)
    return b"".join(parts)


def unpack(data: bytes) -> Entry:
    """Return the entry in an envelope; raise DecodeError if it is truncated or unknown."""
    try:
        marker, layout, compute_ms, stale_ms, n = _HEAD.unpack_from(data)
    except struct.error:
        raise DecodeError("truncated cache entry envelope") from None
    if marker != MARKER or layout != _LAYOUT:
        raise DecodeError(f"unknown cache entry envelope (layout {layout})")
    pos = _HEAD.size
    tags: list[tuple[str, bytes]] = []
    try:
        for _ in range(n):
            size = data[pos]
            name = data[pos + 1 : pos + 1 + size]
            pos += 1 + size
            token_size = data[pos]
            token = data[pos + 1 : pos + 1 + token_size]
            pos += 1 + token_size
            if len(name) != size or len(token) != token_size:
                raise IndexError
            tags.append((name.decode("utf-8"), token))
    except (IndexError, UnicodeDecodeError):
        raise DecodeError("truncated or corrupt tags in a cache entry envelope") from None
    if pos >= len(data):
        raise DecodeError("cache entry envelope without a value")
    return Entry(data[pos:], compute_ms, stale_ms, tuple(tags))
