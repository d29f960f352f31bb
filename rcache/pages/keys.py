"""Cache keys for pages, and the pure side of the one-round-trip lookup.

Keys (relative to the page cache's key space; the storage layer may prefix them)::

    page:{<url>}                  URL-level record: the Vary spec, e.g. "accept-language,cookie"
    page:{<url>}:v:<variant>      one variant: the StoredEntry bytes and its purge record

``<url>`` is the SHA-256 hex of the normalized URL (:func:`canonical_url`); ``<variant>``
is the SHA-1 hex of the request's values for the Vary names (:mod:`rcache.pages.vary`), so a
response without Vary lives at the suffix of the empty string. The braces are a Cluster hash
tag: every key of a URL lives in one slot, which the lookup script relies on.

Normalized URL: scheme and host lowercased, the default port (80 for http, 443 for https)
dropped, the path as the adapter gives it ("" becomes "/"), then the query: parsed (``+``
is a space, percent escapes decoded, bytes that are not UTF-8 kept exactly), parameters
matching ``policy.ignored_query_params`` dropped, the rest sorted by name then value and
re-encoded with ``%XX`` escapes (so ``?b=2&a=1`` and ``?a=1&b=2`` share a key, and
``?flag`` equals ``?flag=``). GET and HEAD share keys. Keys are SHA digests, never
``hash()``, so every process computes the same ones.

One round trip
--------------

A request's variant key depends on the Vary names of the *stored* response, which the
client does not know before it looks. The lookup is therefore one ``EVALSHA`` of
``lookup.lua`` with ``KEYS[1]`` = the URL-level key as sent to Redis and ``ARGV`` = every
request header as (lowercased name, normalized value) pairs, ``Accept-Encoding`` left out
(:func:`lookup_args`). The script reads the Vary spec at ``KEYS[1]``, builds the variant
material from those of the pairs the spec names, appends ``":v:" .. redis.sha1hex(material)``
to ``KEYS[1]`` and returns ``{spec, entry, t}``, or nil when the URL has no record; entry is
nil when the variant is absent or was purged (the variant's hash layout and the purge check
are described in ``lookup.lua`` and :mod:`rcache.pages._layout`). The variant
key is derived inside the script but shares the hash tag of ``KEYS[1]``, so it is in the
same slot on Cluster. Writes compute the same key in Python: the final URL-level key plus
:func:`~rcache.pages.vary.variant_suffix`, and store the spec at the URL-level key with a
TTL at least as long as the variant's. When a URL's Vary changes, the new spec replaces
the old one and the old variants simply expire.

A process that has looked a URL up before skips the script: it remembers the spec and the
variant's purge keys (the script's third reply) and reads them back with plain commands,
checked against what it remembered (:mod:`rcache.pages._memo`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from urllib.parse import parse_qsl, quote

from rcache.errors import DecodeError
from rcache.pages.model import Request
from rcache.pages.policy import PageCachePolicy
from rcache.pages.vary import (
    ACCEPT_ENCODING,
    normalize_vary_value,
    parse_vary_spec,
    request_vary_values,
    variant_suffix,
)

__all__ = [
    "LOOKUP_SCRIPT",
    "cache_key",
    "canonical_url",
    "lookup_args",
    "lookup_header_args",
    "normalize_host",
    "normalize_query",
    "primary_key",
    "read_lookup_reply",
    "variant_key",
]

LOOKUP_SCRIPT = "lookup.lua"
"""File name of the lookup script in this package (``Script.from_package(__package__, ...)``)."""

_DEFAULT_PORTS = {"http": "80", "https": "443"}
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"


def normalize_host(scheme: str, host: str) -> str:
    """Return ``host`` lowercased, without the default port of ``scheme``."""
    host = host.strip().lower()
    if host.startswith("["):  # IPv6 literal, maybe with a port: "[::1]:8080"
        end = host.find("]") + 1
        name, port = (host[:end], host[end + 1 :]) if end else (host, "")
    else:
        name, _, port = host.partition(":")
    if not port or port == _DEFAULT_PORTS.get(scheme.lower()):
        return name
    return f"{name}:{port}"


def normalize_query(query_string: str, ignored: Sequence[str] = ()) -> str:
    """Return ``query_string`` parsed, filtered by the ``ignored`` patterns, sorted, re-encoded."""
    if not query_string:
        return ""
    pairs = [
        (name, value)
        for name, value in parse_qsl(
            query_string, keep_blank_values=True, encoding=_ENCODING, errors=_ERRORS
        )
        if not any(fnmatchcase(name, pattern) for pattern in ignored)
    ]
    pairs.sort()
    return "&".join(
        f"{quote(name, safe='', errors=_ERRORS)}={quote(value, safe='', errors=_ERRORS)}"
        for name, value in pairs
    )


def canonical_url(req: Request, policy: PageCachePolicy) -> str:
    """Return the normalized URL of ``req`` that its keys are digests of."""
    scheme = req.scheme.lower()
    url = f"{scheme}://{normalize_host(scheme, req.host)}{req.path or '/'}"
    query = normalize_query(req.query_string, policy.ignored_query_params)
    return f"{url}?{query}" if query else url


def primary_key(req: Request, policy: PageCachePolicy) -> str:
    """Return the URL-level key of ``req``: ``"page:{" + sha256_hex(url) + "}"``."""
    digest = hashlib.sha256(canonical_url(req, policy).encode("utf-8", "surrogatepass"))
    return "page:{" + digest.hexdigest() + "}"


def cache_key(
    req: Request,
    policy: PageCachePolicy,
    vary_values: Mapping[str, str | None] | None = None,
) -> str:
    """Return the key of the variant selected by ``vary_values``.

    ``vary_values`` maps each Vary header name to the request's value for it (None: the
    request does not carry it); None or empty means the response has no Vary.
    """
    values = {name.lower(): value for name, value in (vary_values or {}).items()}
    return primary_key(req, policy) + variant_suffix(values.keys(), values)


def variant_key(req: Request, policy: PageCachePolicy, vary_names: Iterable[str]) -> str:
    """Return the key of the variant of ``req`` for a response that varies on ``vary_names``."""
    return cache_key(req, policy, request_vary_values(req.headers, vary_names))


def lookup_args(req: Request, policy: PageCachePolicy) -> tuple[list[str], list[bytes]]:
    """Return ``(KEYS, ARGV)`` for the lookup script; prefix ``KEYS[0]`` as the storage does."""
    return [primary_key(req, policy)], lookup_header_args(req)


def lookup_header_args(req: Request) -> list[bytes]:
    """Return the lookup script's ARGV: every header but Accept-Encoding, normalized."""
    args: list[bytes] = []
    for name in req.headers.names():
        if name == ACCEPT_ENCODING:
            continue
        value = normalize_vary_value(req.headers.get(name) or "")
        args += (name.encode("utf-8", "surrogatepass"), value.encode("utf-8", "surrogatepass"))
    return args


def read_lookup_reply(reply: object) -> tuple[tuple[str, ...], bytes | None] | None:
    """Return ``(vary names, entry bytes or None)`` from the script's reply; None: no record.

    The reply's third member (the entry's purge keys, field ``t``) is not part of the result.

    Raises DecodeError for a reply the script cannot have produced.
    """
    if reply is None:
        return None
    if not isinstance(reply, list | tuple) or len(reply) not in (2, 3):
        raise DecodeError("unexpected page lookup reply")
    spec, entry = reply[0], reply[1]
    if not isinstance(spec, bytes | str) or not (entry is None or isinstance(entry, bytes)):
        raise DecodeError("unexpected page lookup reply")
    return parse_vary_spec(spec), entry
