"""Answering a request from a stored entry: content coding, body and header fields.

The cache stores one body per variant, gzip-coded when that made it smaller. It is sent as
stored to clients that accept gzip and decoded for the others; either way the response
carries ``Vary: Accept-Encoding`` so downstream caches keep the two apart::

    gzip_ok = accepts_gzip(request.headers.get("accept-encoding"))
    body = serve_body(entry, gzip_ok=gzip_ok)
    headers = serve_headers(entry, now, x_cache="HIT", gzip_ok=gzip_ok, content_length=len(body))

A request without ``Accept-Encoding`` gets the decoded body: RFC 9110 §12.5.3 would allow
any coding, but such clients (scripts, old tools) rarely decode gzip.
"""

from __future__ import annotations

import threading
import zlib

from rcache.errors import DecodeError
from rcache.pages.conditional import age, representation_headers
from rcache.pages.model import StoredEntry

__all__ = ["DEFAULT_MAX_DECODED_BYTES", "accepts_gzip", "serve_body", "serve_headers"]

DEFAULT_MAX_DECODED_BYTES = 64 * 1024 * 1024
"""A stored gzip body that decodes to more bytes than this is refused as corrupt."""

DECODED_MEMO_BYTES = 8 * 1024 * 1024
"""Decoded bodies kept in memory, at most, so that clients without gzip skip the decoding."""

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_NO_CONTENT_LENGTH = frozenset({204, 304})


def _qvalue(params: list[str]) -> float:
    """Return the ``q`` weight among a member's parameters; 1 if absent, 0 if malformed."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip(" \t").lower() == "q":
            try:
                weight = float(value.strip(" \t"))
            except ValueError:
                return 0.0
            return weight if 0.0 <= weight <= 1.0 else 0.0
    return 1.0


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Return whether a client sending this ``Accept-Encoding`` may be sent gzip.

    ``gzip`` (or ``x-gzip``) with a non-zero weight: yes; with ``q=0``: no, whatever ``*``
    says. Not listed: the weight of ``*`` decides, and without ``*`` the answer is no. An
    absent or empty header, or ``identity`` alone, means no. A malformed weight counts as 0.
    """
    if accept_encoding is None:
        return False
    weights: dict[str, float] = {}
    for member in accept_encoding.split(","):
        coding, *params = member.split(";")
        coding = coding.strip(" \t").lower()
        if coding == "x-gzip":
            coding = "gzip"
        if coding and coding not in weights:
            weights[coding] = _qvalue(params)
    weight = weights.get("gzip", weights.get("*", 0.0))
    return weight > 0.0


def _gunzip(data: bytes, limit: int) -> bytes:
    """Return ``data`` (one or more gzip members) decoded; DecodeError if bad or too large."""
    chunks: list[bytes] = []
    total = 0
    while data:
        decoder = zlib.decompressobj(_GZIP_WBITS)
        try:
            chunk = decoder.decompress(data, limit - total + 1)
        except zlib.error as exc:
            raise DecodeError("stored gzip body is corrupt") from exc
        total += len(chunk)
        if total > limit:
            raise DecodeError(f"stored gzip body decodes to more than {limit} bytes")
        if not decoder.eof:
            raise DecodeError("stored gzip body is truncated")
        chunks.append(chunk)
        data = decoder.unused_data
    return b"".join(chunks)


class _DecodedBodies:
    """The decoded form of recently served gzip bodies, keyed by the gzip bytes themselves.

    Equal gzip bytes always decode to equal bytes, so a hit can never serve another page;
    the bytes are compared in full by the dict. Bounded by :data:`DECODED_MEMO_BYTES` of
    decoded bodies (the oldest go first); a body larger than an eighth of that is never kept.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._bodies: dict[bytes, bytes] = {}
        self._size = 0
        self._lock = threading.Lock()

    def get(self, data: bytes, max_bytes: int) -> bytes:
        known = self._bodies.get(data)
        if known is not None and len(known) <= max_bytes:
            return known
        decoded = _gunzip(data, max_bytes)
        if len(decoded) <= self._limit // 8:
            with self._lock:
                if data not in self._bodies:
                    self._bodies[data] = decoded
                    self._size += len(decoded)
                    while self._size > self._limit:
                        oldest = next(iter(self._bodies))
                        self._size -= len(self._bodies.pop(oldest))
        return decoded

    def clear(self) -> None:
        with self._lock:
            self._bodies.clear()
            self._size = 0


_decoded = _DecodedBodies(DECODED_MEMO_BYTES)


def serve_body(
    entry: StoredEntry, *, gzip_ok: bool, max_bytes: int = DEFAULT_MAX_DECODED_BYTES
) -> bytes:
    """Return the body to send: as stored, or decoded when it is gzip and gzip is not ok.

    ``max_bytes`` bounds the decoded size; raises DecodeError if the stored body is not
    valid gzip or decodes to more.
    """
    if entry.encoding == "gzip" and not gzip_ok:
        return _decoded.get(entry.body, max_bytes)
    return entry.body


def serve_headers(
    entry: StoredEntry,
    now: float,
    *,
    x_cache: str,
    gzip_ok: bool,
    content_length: int | None = None,
) -> list[tuple[str, str]]:
    """Return the header fields of a response answered from ``entry`` at ``now``.

    The stored fields plus ``Vary: Accept-Encoding`` for a gzip entry, ``Content-Encoding:
    gzip`` when the body is sent coded, ``Content-Length`` (none for 204), ``Age`` and
    ``X-Cache: <x_cache>``. ``content_length``: length in bytes of the body actually sent,
    normally ``len(serve_body(...))``; None computes it, decoding the body if needed. A HEAD
    response gets the same fields as the GET would.
    """
    headers = representation_headers(entry)
    coded = entry.encoding == "gzip" and gzip_ok
    if coded:
        headers.append(("Content-Encoding", "gzip"))
    if entry.status not in _NO_CONTENT_LENGTH:
        if content_length is None:
            content_length = len(serve_body(entry, gzip_ok=gzip_ok))
        headers.append(("Content-Length", str(content_length)))
    headers.append(("Age", str(age(entry, now))))
    headers.append(("X-Cache", x_cache))
    return headers
