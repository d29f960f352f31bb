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

from rcache.pages.conditional import age, build_304, not_modified, representation_headers
from rcache.pages.headers import Headers
from rcache.pages.model import Request, Response, StoredEntry
from rcache.pages.serving import accepts_gzip, serve_body

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
    headers = req.headers
    cookies = [("Set-Cookie", value) for value in set_cookies]
    if ("if-none-match" in headers or "if-modified-since" in headers) and not_modified(
        req, entry, now
    ):
        fields = [*build_304(entry, now), *cookies, (X_CACHE, x_cache)]
        return Response(304, Headers(fields), b"")
    gzip_ok = _accepts_gzip(headers.get("accept-encoding"))
    if entry.encoding == "gzip" and not gzip_ok and identity_body is not None:
        body = identity_body
    else:
        body = serve_body(entry, gzip_ok=gzip_ok)
    items, keys = _representation(entry)
    extra: list[tuple[str, str]] = []
    if entry.encoding == "gzip" and gzip_ok:
        extra.append(("Content-Encoding", "gzip"))
    if entry.status not in _NO_CONTENT_LENGTH:
        extra.append(("Content-Length", str(len(body))))
    extra.append(("Age", str(age(entry, now))))
    extra += cookies
    extra.append((X_CACHE, x_cache))
    answer = Headers._trusted(
        items + tuple(extra), keys + tuple([name.lower() for name, _ in extra])
    )
    return Response(entry.status, answer, b"" if req.method == "HEAD" else body)


_NO_CONTENT_LENGTH = frozenset({204, 304})
_MEMO_SIZE = 1024
_representations: dict[int, tuple[StoredEntry, tuple[tuple[str, str], ...], tuple[str, ...]]] = {}
_codings: dict[str | None, bool] = {}


def _representation(entry: StoredEntry) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """Return :func:`representation_headers` of ``entry`` and their lowercased names.

    Kept for the last entries served (an entry decoded once is served many times); the
    entry itself is kept with them, so its id cannot be reused while they are.
    """
    known = _representations.get(id(entry))
    if known is not None and known[0] is entry:
        return known[1], known[2]
    items = tuple((name, value.strip(" \t")) for name, value in representation_headers(entry))
    keys = tuple([name.lower() for name, _ in items])
    if len(_representations) >= _MEMO_SIZE:
        _representations.clear()
    _representations[id(entry)] = (entry, items, keys)
    return items, keys


def _accepts_gzip(accept_encoding: str | None) -> bool:
    """:func:`accepts_gzip`, remembered for the values seen last (clients send few)."""
    known = _codings.get(accept_encoding)
    if known is None:
        known = accepts_gzip(accept_encoding)
        if len(_codings) >= _MEMO_SIZE:
            _codings.clear()
        _codings[accept_encoding] = known
    return known


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
