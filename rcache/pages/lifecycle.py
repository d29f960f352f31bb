"""Building the stored entry for a response: stripped fields, gzip, validators, times.

:func:`build_entry` turns a response that :func:`~rcache.pages.policy.storable` accepted
into a :class:`~rcache.pages.model.StoredEntry`:

- fields are stripped (:func:`~rcache.pages.policy.strip_for_storage`) and the tags of the
  tag header joined to the ones given;
- the body is gzip-coded (level 6) when it is not coded already, its media type is text-like
  (``text/*``, JSON, JavaScript, XML, SVG and other ``+json``/``+xml`` types), the response
  does not say ``no-transform``, and the coded body is smaller; otherwise it is kept as is.
  A response already gzip-coded by the application is stored as it came;
- an ``ETag`` is made from the body when the response has none. A gzip-coded entry may be
  sent coded or decoded, two representations, so its tag is made weak (``W/``), as
  nginx does when it compresses;
- a ``Date`` is added when missing (RFC 9110 §6.6.1); the response's age when received
  (``Date`` and ``Age``, RFC 9111 §4.2.3) is subtracted from its freshness lifetime.

:func:`classify` and :func:`entry_ttl` (defined in :mod:`rcache.pages.freshness`, with the
rest of the time arithmetic) are available from here too.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable

from rcache.pages.conditional import make_etag
from rcache.pages.fields import format_http_date, parse_cache_control, parse_http_date
from rcache.pages.freshness import (
    TTL_MARGIN,
    State,
    classify,
    entry_ttl,
    freshness_lifetime,
    stale_windows,
)
from rcache.pages.model import Encoding, Request, Response, StoredEntry
from rcache.pages.policy import PageCachePolicy, response_coding, strip_for_storage
from rcache.pages.vary import vary_names

__all__ = [
    "TTL_MARGIN",
    "State",
    "build_entry",
    "classify",
    "entry_ttl",
    "gzip_compress",
    "is_compressible",
]

_COMPRESSIBLE = frozenset(
    {
        "application/ecmascript",
        "application/javascript",
        "application/json",
        "application/x-javascript",
        "application/xml",
    }
)


def is_compressible(content_type: str | None) -> bool:
    """Return whether a body of this ``Content-Type`` is worth gzip-coding."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip(" \t").lower()
    return media.startswith("text/") or media in _COMPRESSIBLE or media.endswith(("+json", "+xml"))


def gzip_compress(data: bytes) -> bytes:
    """Return ``data`` gzip-coded at level 6, with a zero mtime so equal input gives equal bytes."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def _age_header(value: str | None) -> float:
    """Return the ``Age`` field value in seconds; 0 when absent or malformed."""
    if value is None or not value.isascii() or not value.isdigit():
        return 0.0
    return float(min(int(value[:11]), 2**31))


def build_entry(
    req: Request,
    resp: Response,
    policy: PageCachePolicy,
    now: float,
    tags: Iterable[str] = (),
    compress: Callable[[bytes], bytes] = gzip_compress,
) -> StoredEntry:
    """Return the entry to store for ``resp`` to ``req``, received at ``now`` (epoch seconds).

    ``tags``: invalidation tags added to those of the tag header. ``compress``: the gzip
    coder (a caller may pass one running elsewhere). Call only for a response
    :func:`~rcache.pages.policy.storable` accepted; raises ValueError for one that cannot be
    stored at all (streaming body, unsupported coding, ``Vary: *``).
    """
    del req  # the request's part (the key) is computed by rcache.pages.keys
    coding = response_coding(resp.headers)
    vary = vary_names(resp.headers)
    if resp.body is None or coding is None or vary is None:
        raise ValueError("response cannot be stored (streaming body, coding or Vary: *)")
    headers, header_tags = strip_for_storage(resp, tag_header=policy.tag_header)
    directives = parse_cache_control(resp.headers.get("cache-control"))

    body = resp.body
    encoding: Encoding = coding
    if (
        coding == "identity"
        and body
        and "no-transform" not in directives
        and "content-range" not in resp.headers
        and is_compressible(resp.headers.get("content-type"))
    ):
        packed = compress(body)
        if len(packed) < len(body):
            body, encoding = packed, "gzip"

    etag = resp.headers.first("etag") or make_etag(resp.body)
    if encoding == "gzip" and not etag.startswith("W/"):
        etag = "W/" + etag
    headers = headers.with_("ETag", etag)

    origin_date = parse_http_date(resp.headers.first("date"), now=now)
    if origin_date is None:
        origin_date = now
        headers = headers.with_("Date", format_http_date(now))
    initial_age = max(0.0, now - origin_date, _age_header(resp.headers.first("age")))
    lifetime = freshness_lifetime(resp, policy, now=now)
    swr, sie = stale_windows(resp, policy)
    last_modified = resp.headers.first("last-modified")
    if parse_http_date(last_modified, now=now) is None:
        last_modified = None

    return StoredEntry(
        status=resp.status,
        headers=tuple(headers),
        body=body,
        encoding=encoding,
        etag=etag,
        last_modified=last_modified,
        stored_at=now,
        date=now - initial_age,
        fresh_until=now - initial_age + lifetime,
        stale_while_revalidate=swr,
        stale_if_error=sie,
        vary=vary,
        tags=tuple(dict.fromkeys((*tags, *header_tags))),
    )
