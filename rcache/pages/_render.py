"""The responses that leave the page cache. Pure: no I/O.

Every response gets ``X-Cache`` and loses the tag header (an instruction to the cache, not
to clients):

- ``HIT``: answered from a fresh stored entry (or a 304 for a conditional request);
- ``STALE``: answered from a stale entry, while another request revalidates it
  (stale-while-revalidate) or because the view failed (stale-if-error);
- ``MISS``: the view produced it after a lookup (whether or not it was then stored);
- ``BYPASS``: the cache was not consulted (method, ``no-store``, a logged-in user) or Redis
  could not be reached.

Answers from an entry (:func:`from_entry`) carry the stored fields, ``Age``, and the body as
stored for clients that accept gzip, decoded for the others; a ``HEAD`` gets the same fields
without the body; a request whose ``If-None-Match`` / ``If-Modified-Since`` matches gets a
304 with the fields RFC 9110 §15.4.5 requires. A freshly stored response is sent the same
way (``X-Cache: MISS``), so the first client sees the same ``ETag`` and coding as the next
ones, plus the ``Set-Cookie`` fields the stored copy leaves out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal, TypeAlias

from rcache.pages.conditional import build_304, not_modified
from rcache.pages.headers import Headers
from rcache.pages.model import Request, Response, StoredEntry
from rcache.pages.serving import accepts_gzip, serve_body, serve_headers

__all__ = ["X_CACHE", "XCache", "finish", "from_entry", "with_vary"]

X_CACHE = "X-Cache"
"""Name of the header that says how the cache answered."""

XCache: TypeAlias = Literal["HIT", "STALE", "MISS", "BYPASS"]


def from_entry(
    req: Request,
    entry: StoredEntry,
    now: float,
    x_cache: XCache,
    *,
    set_cookies: Sequence[str] = (),
    identity_body: bytes | None = None,
) -> Response:
    """Return the answer to ``req`` from ``entry`` at ``now`` (epoch seconds).

    ``set_cookies``: ``Set-Cookie`` values to add (those of a response just stored).
    ``identity_body``: the uncoded body when the caller still has it, which spares decoding
    a gzip entry for a client that does not accept gzip. Raises DecodeError when a stored
    gzip body must be decoded and cannot be.
    """
    cookies = [("Set-Cookie", value) for value in set_cookies]
    if not_modified(req, entry, now):
        fields = [*build_304(entry, now), *cookies, (X_CACHE, x_cache)]
        return Response(304, Headers(fields), b"")
    gzip_ok = accepts_gzip(req.headers.get("accept-encoding"))
    if entry.encoding == "gzip" and not gzip_ok and identity_body is not None:
        body = identity_body
    else:
        body = serve_body(entry, gzip_ok=gzip_ok)
    fields = serve_headers(entry, now, x_cache=x_cache, gzip_ok=gzip_ok, content_length=len(body))
    fields[-1:-1] = cookies  # before X-Cache, which serve_headers puts last
    return Response(entry.status, Headers(fields), b"" if req.method == "HEAD" else body)


def finish(resp: Response, x_cache: XCache, tag_header: str) -> Response:
    """Return ``resp`` as it leaves the cache: without ``tag_header``, with ``X-Cache``.

    The body is untouched (a streaming body stays ``None``).
    """
    headers = resp.headers.without(tag_header).with_(X_CACHE, x_cache)
    return dataclasses.replace(resp, headers=headers)


def with_vary(resp: Response, names: Sequence[str]) -> Response:
    """Return ``resp`` with request header ``names`` added to its ``Vary`` (if missing)."""
    if isinstance(names, str):
        raise TypeError("vary must be a sequence of header names, not a single str")
    present = {
        member.strip(" \t").lower()
        for line in resp.headers.get_all("vary")
        for member in line.split(",")
    }
    missing = [name for name in dict.fromkeys(names) if name.lower() not in present]
    if not missing or "*" in present:
        return resp
    return dataclasses.replace(resp, headers=resp.headers.add("Vary", ", ".join(missing)))
