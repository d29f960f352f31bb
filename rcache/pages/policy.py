"""Page cache settings and the two gatekeeping decisions: may we look up, may we store.

Both decisions return ``(allowed, reason)``; the reason is short and stable so adapters can
show it in ``X-Cache: BYPASS (reason)`` while debugging.

Request side (:func:`is_request_cacheable`): only GET and HEAD are looked up. A request
``Cache-Control: no-store`` bypasses the cache. Request ``no-cache``, ``max-age``,
``min-fresh``, ``max-stale`` and ``Pragma: no-cache`` are *preferences* (RFC 9111 §5.2.1)
that this shared cache does not honor, so a client cannot push every request through to the
application. A logged-in user (``Request.is_authenticated``) bypasses unless the policy
caches authenticated pages. A request with ``Authorization`` may be answered from the cache;
what may be stored from it is decided by :func:`storable`.

Response side (:func:`storable`, RFC 9111 §3): the response to a GET, not a HEAD (a HEAD
response has no body; a later GET fills the cache); a status in ``cacheable_statuses``; a
complete body no larger than ``max_body_bytes``; never ``no-store`` or ``private`` (a
``private="field"`` list is treated as plain ``private``), never ``Set-Cookie`` unless the
policy or the view allows it (it is then stripped from the stored copy), never ``Vary: *``;
a content coding the cache can serve (none or gzip); and, for a request with
``Authorization``, only if the response says ``public``, ``s-maxage`` or ``must-revalidate``
(RFC 9111 §3.5). A ``no-cache`` response may be stored but is never fresh, so it is served
only after the application has produced it again (see :mod:`rcache.pages.freshness`).
``206 Partial Content`` is not in the default statuses: partial content is not stored.

What is stored (:func:`strip_for_storage`, RFC 9111 §3.1) leaves out: hop-by-hop fields
(RFC 9110 §7.6.1: ``Connection`` and every field it names, ``Keep-Alive``, ``TE``,
``Trailer``, ``Transfer-Encoding``, ``Upgrade``, every ``Proxy-*``); ``Set-Cookie``, always
(a cookie belongs to one client); ``Age`` (recomputed when serving); ``Content-Length`` and
``Content-Encoding`` (the body may be re-encoded: the entry's ``encoding`` says how it is
coded); and the tag header, an instruction to the cache whose tags, separated by commas
and/or whitespace, are returned once each in order of appearance.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rcache.errors import ConfigurationError
from rcache.pages.fields import parse_cache_control
from rcache.pages.headers import Headers
from rcache.pages.model import Encoding, Request, Response
from rcache.pages.vary import vary_names

__all__ = [
    "DEFAULT_CACHEABLE_STATUSES",
    "HOP_BY_HOP",
    "PageCachePolicy",
    "is_request_cacheable",
    "parse_tags",
    "response_coding",
    "storable",
    "strip_for_storage",
]

DEFAULT_CACHEABLE_STATUSES = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
"""The statuses RFC 9110 §15.1 calls heuristically cacheable, minus 206 (partial content)."""

HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}
)
"""Lowercased hop-by-hop field names; ``Proxy-*`` fields are hop-by-hop too."""

_LOOKUP_METHODS = frozenset({"GET", "HEAD"})
_ALWAYS_DROPPED = frozenset({"set-cookie", "age", "content-length", "content-encoding"})
_TAG_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True)
class PageCachePolicy:
    """Settings of the page cache; the defaults are safe for any site.

    ``default_ttl``: seconds a response without explicit freshness (no ``s-maxage``,
    ``max-age`` or ``Expires``) stays fresh; this is an explicit heuristic the operator opts
    into by enabling the cache. ``ignored_query_params``: ``fnmatch`` patterns
    (case-sensitive) of query parameters left out of the cache key. ``cache_authenticated``:
    also cache pages for logged-in users (only for views whose output does not depend on the
    user, or that send ``Vary: Cookie``). ``allow_set_cookie``: store responses that set
    cookies, without their ``Set-Cookie``. ``stale_while_revalidate`` / ``stale_if_error``:
    seconds of RFC 5861 windows for responses that do not state their own. ``max_body_bytes``:
    larger bodies are not stored. ``cacheable_statuses``: statuses that may be stored.
    ``tag_header``: response header holding invalidation tags, stripped before storing.
    """

    default_ttl: float = 60.0
    ignored_query_params: tuple[str, ...] = ("utm_*", "fbclid", "gclid")
    cache_authenticated: bool = False
    allow_set_cookie: bool = False
    stale_while_revalidate: float = 0.0
    stale_if_error: float = 0.0
    max_body_bytes: int = 1024 * 1024
    cacheable_statuses: frozenset[int] = DEFAULT_CACHEABLE_STATUSES
    tag_header: str = "Cache-Tag"

    def __post_init__(self) -> None:
        for name in ("default_ttl", "stale_while_revalidate", "stale_if_error"):
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or value < 0:
                raise ConfigurationError(
                    f"{name} must be a finite number >= 0 (seconds), got {value!r}"
                )
        if type(self.max_body_bytes) is not int or self.max_body_bytes < 0:
            raise ConfigurationError(
                f"max_body_bytes must be an int >= 0, got {self.max_body_bytes!r}"
            )
        if isinstance(self.ignored_query_params, str) or not all(
            isinstance(pattern, str) for pattern in self.ignored_query_params
        ):
            raise ConfigurationError("ignored_query_params must be a tuple of str patterns")
        if not all(type(s) is int and 100 <= s <= 599 for s in self.cacheable_statuses):
            raise ConfigurationError("cacheable_statuses must hold status codes 100-599")
        if not isinstance(self.tag_header, str) or not self.tag_header:
            raise ConfigurationError("tag_header must be a non-empty header name")


def is_request_cacheable(req: Request, policy: PageCachePolicy) -> tuple[bool, str]:
    """Return whether ``req`` may be answered from the cache, and why not if it may not."""
    if req.method not in _LOOKUP_METHODS:
        return False, f"method {req.method}"
    if "no-store" in parse_cache_control(req.headers.get("cache-control")):
        return False, "request no-store"
    if req.is_authenticated and not policy.cache_authenticated:
        return False, "authenticated"
    return True, "cacheable"


def response_coding(headers: Headers) -> Encoding | None:
    """Return the content coding of a response: "identity", "gzip", or None (unsupported).

    ``identity`` members are ignored and ``x-gzip`` means gzip (RFC 9110 §8.4.1.3); any
    other coding, or gzip applied twice, is unsupported.
    """
    codings = [
        member.strip(" \t").lower()
        for line in headers.get_all("content-encoding")
        for member in line.split(",")
    ]
    codings = [coding for coding in codings if coding and coding != "identity"]
    if not codings:
        return "identity"
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip"):
        return "gzip"
    return None


def storable(
    req: Request,
    resp: Response,
    policy: PageCachePolicy,
    *,
    allow_set_cookie: bool | None = None,
) -> tuple[bool, str]:
    """Return whether ``resp`` to ``req`` may be stored, and why not if it may not.

    ``allow_set_cookie``: a per-view override of ``policy.allow_set_cookie`` (None: use the
    policy). Storing still never keeps the ``Set-Cookie`` fields themselves.
    """
    if req.method != "GET":
        return False, "HEAD response" if req.method == "HEAD" else f"method {req.method}"
    if "no-store" in parse_cache_control(req.headers.get("cache-control")):
        return False, "request no-store"
    if req.is_authenticated and not policy.cache_authenticated:
        return False, "authenticated"
    if resp.status not in policy.cacheable_statuses:
        return False, f"status {resp.status}"
    if resp.body is None:
        return False, "streaming body"
    if len(resp.body) > policy.max_body_bytes:
        return False, "body too large"
    directives = parse_cache_control(resp.headers.get("cache-control"))
    if "no-store" in directives:
        return False, "no-store"
    if "private" in directives:
        return False, "private"
    if allow_set_cookie is None:
        allow_set_cookie = policy.allow_set_cookie
    if "set-cookie" in resp.headers and not allow_set_cookie:
        return False, "set-cookie"
    if vary_names(resp.headers) is None:
        return False, "vary *"
    if response_coding(resp.headers) is None:
        return False, "content-encoding"
    if "authorization" in req.headers and not (
        "public" in directives or "s-maxage" in directives or "must-revalidate" in directives
    ):
        return False, "authorization"
    return True, "storable"


def parse_tags(values: list[str]) -> tuple[str, ...]:
    """Return the tags in tag-header ``values`` (comma or whitespace separated, unique)."""
    tags: dict[str, None] = {}
    for value in values:
        for tag in _TAG_SEPARATORS.split(value):
            if tag:
                tags.setdefault(tag, None)
    return tuple(tags)


def strip_for_storage(
    resp: Response, *, tag_header: str = "Cache-Tag"
) -> tuple[Headers, tuple[str, ...]]:
    """Return the header fields of ``resp`` worth storing, and the tags of its tag header."""
    named = {
        member.strip(" \t").lower()
        for line in resp.headers.get_all("connection")
        for member in line.split(",")
    }
    drop = HOP_BY_HOP | _ALWAYS_DROPPED | named | {tag_header.lower()}
    kept = Headers(
        (name, value)
        for name, value in resp.headers
        if (lowered := name.lower()) not in drop and not lowered.startswith("proxy-")
    )
    return kept, parse_tags(resp.headers.get_all(tag_header))
