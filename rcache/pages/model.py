"""What the page cache reasons about: a request, a response, and a stored entry.

Framework adapters translate their own request and response objects into :class:`Request`
and :class:`Response`; the storage layer keeps :class:`StoredEntry` values in Redis as the
bytes of :meth:`StoredEntry.to_bytes`.

Stored layout (version 1, big-endian)::

    magic "RCPE" | version u8 | status u16 | encoding u8 | flags u8
    | stored_at f64 | date f64 | fresh_until f64 | stale_while_revalidate f64
    | stale_if_error f64 | n_headers u16 | n_vary u16 | n_tags u16 | body_length u32
    | [etag] [last_modified] (name value)*n_headers vary*n_vary tag*n_tags
    | body | crc32 u32

Every string is a u32 byte length followed by UTF-8 (lone surrogates kept). ``encoding`` is
0 for identity and 1 for gzip; ``flags`` bit 0 says an etag follows, bit 1 a
last_modified. The CRC-32 covers every byte before it. :meth:`StoredEntry.from_bytes`
raises :class:`~rcache.errors.DecodeError` on any mismatch, truncation or trailing byte.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from rcache.errors import DecodeError, EncodeError
from rcache.pages.headers import Headers

__all__ = ["Encoding", "Request", "Response", "StoredEntry"]

Encoding: TypeAlias = Literal["gzip", "identity"]

_MAGIC = b"RCPE"
_VERSION = 1
_FIXED = struct.Struct(">4sBHBBdddddHHHI")
_LENGTH = struct.Struct(">I")
_CRC = struct.Struct(">I")
_ENCODING_IDS: dict[str, int] = {"identity": 0, "gzip": 1}
_ENCODINGS: tuple[Encoding, Encoding] = ("identity", "gzip")
_HAS_ETAG = 1
_HAS_LAST_MODIFIED = 2


@dataclass(frozen=True, slots=True)
class Request:
    """An incoming request, as seen by the cache.

    ``host`` may carry a port (``example.com:8080``); ``query_string`` is the raw text
    after ``?`` without it ("" if none). ``is_authenticated`` is set by the adapter from the
    framework's user (a session login, not only an ``Authorization`` header).
    """

    method: str
    scheme: str
    host: str
    path: str
    query_string: str = ""
    headers: Headers = field(default_factory=Headers)
    is_authenticated: bool = False


@dataclass(frozen=True, slots=True)
class Response:
    """A response produced by the application; ``body`` None means streaming (never stored)."""

    status: int
    headers: Headers = field(default_factory=Headers)
    body: bytes | None = b""


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One cached response, as kept in Redis.

    ``headers`` are already stripped of hop-by-hop fields, ``Set-Cookie``, ``Age``, the tag
    header, ``Content-Length`` and ``Content-Encoding`` (``encoding`` says how ``body`` is
    coded). Times are epoch seconds: ``stored_at`` is when the cache received the response,
    ``date`` when the origin generated it (its Date, moved back by any ``Age`` it came with),
    ``fresh_until`` the end of its freshness lifetime. The stale windows are seconds after
    ``fresh_until``. ``vary`` holds the lowercased names the variant key was built from and
    ``tags`` the invalidation tags. ``etag`` and ``last_modified`` are field values, None
    when absent.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    encoding: Encoding
    etag: str | None
    last_modified: str | None
    stored_at: float
    date: float
    fresh_until: float
    stale_while_revalidate: float = 0.0
    stale_if_error: float = 0.0
    vary: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        """Return the stable binary form; raise EncodeError for values it cannot hold."""
        encoding_id = _ENCODING_IDS.get(self.encoding)
        if encoding_id is None:
            raise EncodeError(f"unknown encoding {self.encoding!r}")
        times = (
            self.stored_at,
            self.date,
            self.fresh_until,
            self.stale_while_revalidate,
            self.stale_if_error,
        )
        if not all(math.isfinite(value) for value in times):
            raise EncodeError("stored entry times must be finite numbers")
        strings: list[str] = []
        flags = 0
        if self.etag is not None:
            flags |= _HAS_ETAG
            strings.append(self.etag)
        if self.last_modified is not None:
            flags |= _HAS_LAST_MODIFIED
            strings.append(self.last_modified)
        for name, value in self.headers:
            strings += (name, value)
        strings += self.vary
        strings += self.tags
        try:
            parts = [
                _FIXED.pack(
                    _MAGIC,
                    _VERSION,
                    self.status,
                    encoding_id,
                    flags,
                    *times,
                    len(self.headers),
                    len(self.vary),
                    len(self.tags),
                    len(self.body),
                )
            ]
            for text in strings:
                raw = text.encode("utf-8", "surrogatepass")
                parts += (_LENGTH.pack(len(raw)), raw)
        except struct.error as exc:
            raise EncodeError(f"stored entry field out of range ({exc})") from exc
        parts.append(self.body)
        data = b"".join(parts)
        return data + _CRC.pack(zlib.crc32(data))

    @classmethod
    def from_bytes(cls, data: bytes) -> StoredEntry:
        """Read bytes made by :meth:`to_bytes`; raise DecodeError if they are not exactly that."""
        if len(data) < _FIXED.size + _CRC.size:
            raise DecodeError("stored page entry is truncated")
        payload = memoryview(data)[: -_CRC.size]
        (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
        if data[:4] != _MAGIC:
            raise DecodeError("not a stored page entry (bad magic)")
        if zlib.crc32(payload) != crc:
            raise DecodeError("stored page entry is corrupt (checksum mismatch)")
        (_, version, status, encoding_id, flags, *times, n_headers, n_vary, n_tags, n_body) = (
            _FIXED.unpack_from(payload)
        )
        if version != _VERSION:
            raise DecodeError(f"unknown stored page entry version {version}")
        if encoding_id >= len(_ENCODINGS) or flags & ~(_HAS_ETAG | _HAS_LAST_MODIFIED):
            raise DecodeError("stored page entry has an unknown encoding or flag")
        if not all(math.isfinite(value) for value in times):
            raise DecodeError("stored page entry has a non-finite time")
        reader = _Reader(payload, _FIXED.size)
        etag = reader.text() if flags & _HAS_ETAG else None
        last_modified = reader.text() if flags & _HAS_LAST_MODIFIED else None
        headers = tuple((reader.text(), reader.text()) for _ in range(n_headers))
        vary = tuple(reader.texts(n_vary))
        tags = tuple(reader.texts(n_tags))
        body = reader.take(n_body)
        if reader.offset != len(payload):
            raise DecodeError("stored page entry has trailing bytes")
        stored_at, date, fresh_until, swr, sie = times
        return cls(
            status=status,
            headers=headers,
            body=body,
            encoding=_ENCODINGS[encoding_id],
            etag=etag,
            last_modified=last_modified,
            stored_at=stored_at,
            date=date,
            fresh_until=fresh_until,
            stale_while_revalidate=swr,
            stale_if_error=sie,
            vary=vary,
            tags=tags,
        )


class _Reader:
    """Read length-prefixed fields from a buffer, raising DecodeError past its end."""

    __slots__ = ("buffer", "offset")

    def __init__(self, buffer: memoryview, offset: int) -> None:
        self.buffer = buffer
        self.offset = offset

    def take(self, size: int) -> bytes:
        end = self.offset + size
        if end > len(self.buffer):
            raise DecodeError("stored page entry is truncated")
        chunk = self.buffer[self.offset : end].tobytes()
        self.offset = end
        return chunk

    def text(self) -> str:
        (size,) = _LENGTH.unpack(self.take(_LENGTH.size))
        try:
            return self.take(size).decode("utf-8", "surrogatepass")
        except UnicodeDecodeError as exc:
            raise DecodeError("stored page entry holds invalid UTF-8") from exc

    def texts(self, count: int) -> Iterator[str]:
        for _ in range(count):
            yield self.text()
