"""Validators and conditional requests against a stored entry (RFC 9110 §8.8, §13).

- :func:`make_etag`: a strong entity tag from the body's SHA-256, for responses that lack
  one; entries stored gzip-coded carry a weak tag instead (see :mod:`rcache.pages.lifecycle`).
- :func:`etag_matches`: the weak comparison ``If-None-Match`` uses (RFC 9110 §8.8.3.2):
  two tags match when their opaque parts are equal, whether or not either is ``W/``.
- :func:`not_modified`: whether the cache may answer 304 (RFC 9110 §13.2.2). Only GET and
  HEAD, and only for a stored 2xx. ``If-None-Match`` is evaluated when present, and then
  ``If-Modified-Since`` is ignored. ``If-Modified-Since`` is ignored when it is not exactly
  one valid HTTP-date, or when that date is later than ``now`` (a client clock ahead of ours
  must not hide later changes). It is compared with the stored ``Last-Modified``, else the
  stored ``Date`` (RFC 9111 §4.3.2).
- :func:`build_304`: the fields a 304 must carry when the 200 would have (RFC 9110
  §15.4.5): ``Cache-Control``, ``Content-Location``, ``Date``, ``ETag``, ``Expires`` and
  ``Vary``, plus ``Age``. ``Last-Modified`` is added only when there is no ``ETag``: the
  RFC allows metadata that guides cache updates, and without an entity tag it is what the
  client revalidates with next time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from rcache.pages.fields import parse_http_date
from rcache.pages.model import Request, StoredEntry

__all__ = [
    "age",
    "build_304",
    "etag_matches",
    "make_etag",
    "not_modified",
    "representation_headers",
]

MAX_AGE_VALUE = 2**31
_NOT_MODIFIED_FIELDS = frozenset(
    {"cache-control", "content-location", "date", "etag", "expires", "vary"}
)


def make_etag(body: bytes) -> str:
    """Return a strong entity tag for ``body``: 32 hex digits (128 bits) of SHA-256, quoted."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _opaque_tags(value: str) -> Iterator[str]:
    """Yield the opaque part (without quotes or ``W/``) of each entity tag in a list.

    Unquoted members, which some clients send, are taken whole.
    """
    i = 0
    n = len(value)
    while i < n:
        while i < n and value[i] in " \t,":
            i += 1
        if i >= n:
            return
        if value.startswith(("W/", "w/"), i):
            i += 2
        if i < n and value[i] == '"':
            end = value.find('"', i + 1)
            end = n if end < 0 else end
            yield value[i + 1 : end]
            i = end + 1
        else:
            start = i
            while i < n and value[i] != ",":
                i += 1
            yield value[start:i].strip(" \t")


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Return whether ``etag`` weakly matches the ``If-None-Match`` value (or it is ``*``)."""
    if if_none_match.strip(" \t") == "*":
        return True
    target = next(_opaque_tags(etag), None)
    return target is not None and any(tag == target for tag in _opaque_tags(if_none_match))


def _stored_value(entry: StoredEntry, name: str) -> str | None:
    for field, value in entry.headers:
        if field.lower() == name:
            return value
    return None


def age(entry: StoredEntry, now: float) -> int:
    """Return the ``Age`` of ``entry`` at ``now``: whole seconds, never negative.

    The age the response had when stored (``stored_at - date``) plus the time since.
    """
    seconds = max(0.0, entry.stored_at - entry.date) + max(0.0, now - entry.stored_at)
    return min(int(seconds), MAX_AGE_VALUE)


def not_modified(req: Request, entry: StoredEntry, now: float) -> bool:
    """Return whether ``req`` may be answered with 304 Not Modified from ``entry``.

    ``now`` is epoch seconds. Call it only with an entry the cache would serve.
    """
    if req.method not in ("GET", "HEAD") or not 200 <= entry.status < 300:
        return False
    if_none_match = req.headers.get("if-none-match")
    if if_none_match is not None:
        if if_none_match.strip(" \t") == "*":
            return True
        return entry.etag is not None and etag_matches(if_none_match, entry.etag)
    values = req.headers.get_all("if-modified-since")
    if len(values) != 1:
        return False
    since = parse_http_date(values[0], now=now)
    if since is None or since > now:
        return False
    modified = parse_http_date(entry.last_modified, now=now)
    if modified is None:
        modified = parse_http_date(_stored_value(entry, "date"), now=now)
    if modified is None:
        modified = entry.stored_at
    return modified <= since


def representation_headers(entry: StoredEntry) -> list[tuple[str, str]]:
    """Return the stored fields as sent with the entry, 200 or 304 alike.

    ``ETag`` is added from ``entry.etag`` if the stored fields lack it. A gzip-coded entry may
    be served coded or not, so its ``Vary`` gains ``Accept-Encoding``.
    """
    headers = list(entry.headers)
    names = {name.lower() for name, _ in headers}
    if entry.etag is not None and "etag" not in names:
        headers.append(("ETag", entry.etag))
    if entry.encoding == "gzip":
        members = {
            member.strip(" \t").lower()
            for name, value in headers
            if name.lower() == "vary"
            for member in value.split(",")
        }
        if "accept-encoding" not in members and "*" not in members:
            headers.append(("Vary", "Accept-Encoding"))
    return headers


def build_304(entry: StoredEntry, now: float) -> list[tuple[str, str]]:
    """Return the header fields of a 304 Not Modified answered from ``entry`` at ``now``."""
    headers = [
        (name, value)
        for name, value in representation_headers(entry)
        if name.lower() in _NOT_MODIFIED_FIELDS
    ]
    if entry.etag is None and entry.last_modified is not None:
        headers.append(("Last-Modified", entry.last_modified))
    headers.append(("Age", str(age(entry, now))))
    return headers
