"""Where the page cache keeps things in Redis. Pure: key names and script calls, no I/O.

Keys (``<space>`` is the :class:`~rcache.keys.KeySpace` head, e.g. ``page:1:``; ``<url>``
the SHA-256 of the normalized URL, ``<variant>`` the SHA-1 of the Vary values, see
:mod:`rcache.pages.keys`)::

    <space>page:{<url>}                    the Vary spec of the URL (string)
    <space>page:{<url>}:v:<variant>        one variant (hash: e = entry, g = epoch, t = keys)
    <space>page:{<url>}[:v:<variant>]:lock single-flight lease (random token, or "pass")
    <space>page:{<url>}:purged             purge key of the URL
    <space>path:<prefix>                   purge key of a path prefix ("/", "/blog", ...)
    <space>tag:<tag>                       purge key of a tag
    <space>epoch                           the purge clock

Purging works on a logical clock instead of deleting pages. A purge advances the clock and
stamps the purge keys it names with the new epoch (``purge.lua``, one round trip whatever
the number of pages). Every entry records the epoch read *before* its response was produced
and the purge keys it answers to: its URL, each prefix of its path (whole segments, at most
:data:`MAX_PATH_DEPTH`) and its tags. ``lookup.lua`` serves it only while each of those keys
holds an epoch no later than the entry's, so a purge is seen by every worker at once, and a
page produced while a purge ran can never outlive it.

Scripts read the variant and purge keys without declaring them. That is fine on a
standalone server (and Sentinel); on Cluster the page cache's whole key space gets one hash
tag (:func:`page_space`), so every key of one page cache lives in one slot: a hit stays one
round trip and purges stay atomic, at the price of the page cache sitting on one primary.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from rcache.errors import ConfigurationError
from rcache.keys import KeySpace
from rcache.ops import Command
from rcache.pages.headers import Headers
from rcache.pages.keys import LOOKUP_SCRIPT, lookup_header_args, primary_key
from rcache.pages.model import Request, StoredEntry
from rcache.pages.policy import PageCachePolicy
from rcache.pages.vary import request_vary_values, variant_suffix, vary_spec
from rcache.scripts import Script

__all__ = [
    "CLAIM",
    "LOOKUP",
    "MAX_PATH_DEPTH",
    "PASS",
    "PURGE",
    "RELEASE",
    "STORE",
    "Layout",
    "page_space",
    "path_prefixes",
    "request_from_url",
]

LOOKUP = Script.from_package("rcache.pages", LOOKUP_SCRIPT)
CLAIM = Script.from_package("rcache.pages", "claim.lua")
STORE = Script.from_package("rcache.pages", "store.lua")
RELEASE = Script.from_package("rcache.pages", "release.lua")
PURGE = Script.from_package("rcache.pages", "purge.lua")

_NO_VARY_SUFFIX = variant_suffix((), {})

PASS = b"pass"
"""Value of a lease whose holder did not store a response (see ``release.lua``)."""

MAX_PATH_DEPTH = 8
"""Path segments that get a purge key; a deeper prefix purge covers its depth-8 ancestor."""


def page_space(adapter_prefix: str, prefix: str, *, cluster: bool) -> KeySpace:
    """Return the key space of a page cache: ``<adapter prefix>:<prefix>``, version 1.

    On Cluster the space gets a hash tag made of the same text (``{prefix}``), so every
    key of the page cache shares one slot (see the module docstring).
    """
    text = ":".join(part for part in (adapter_prefix.strip(":"), prefix.strip(":")) if part)
    if not cluster:
        return KeySpace(prefix=text)
    tag = text or "page"
    if "#" in tag:
        tag = hashlib.sha256(tag.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return KeySpace(prefix=text, hash_tag=tag)


def path_prefixes(path: str) -> list[str]:
    """Return the prefixes of ``path`` that have purge keys, shortest first.

    Whole segments only, empty segments ignored: ``"/blog/2024/"`` gives ``["/", "/blog",
    "/blog/2024"]``. Paths deeper than :data:`MAX_PATH_DEPTH` stop at that depth.
    """
    segments = [segment for segment in path.split("/") if segment][:MAX_PATH_DEPTH]
    return ["/" + "/".join(segments[:depth]) for depth in range(len(segments) + 1)]


def request_from_url(url: str) -> Request:
    """Return a GET :class:`Request` for an absolute ``http(s)`` URL (for purging by URL)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"purge_url needs an absolute http(s) URL, got {url!r}")
    host = parts.netloc.rpartition("@")[2]  # user info is not part of the cache key
    return Request("GET", parts.scheme, host, parts.path or "/", parts.query, Headers())


@dataclass(frozen=True, slots=True)
class Layout:
    """The keys and script calls of one page cache (its key space and policy)."""

    space: KeySpace
    policy: PageCachePolicy

    @property
    def epoch_key(self) -> str:
        """The purge clock."""
        return self.space.key("epoch")

    def url_key(self, req: Request) -> str:
        """Return the URL-level key of ``req`` as sent to Redis."""
        return self.space.key(primary_key(req, self.policy))

    @staticmethod
    def variant_key(url_key: str, req: Request, names: Iterable[str]) -> str:
        """Return the key of the variant of ``req`` for a response varying on ``names``."""
        names = tuple(names)
        if not names:
            return url_key + _NO_VARY_SUFFIX
        return url_key + variant_suffix(names, request_vary_values(req.headers, names))

    @staticmethod
    def lock_key(key: str) -> str:
        """Return the single-flight lease key of a URL-level or variant key."""
        return key + ":lock"

    @staticmethod
    def url_purge_key(url_key: str) -> str:
        """Return the purge key of the URL whose URL-level key is ``url_key``."""
        return url_key + ":purged"

    def path_purge_key(self, prefix: str) -> str:
        """Return the purge key of a path prefix (normalized by :func:`path_prefixes`)."""
        return self.space.key("path:" + path_prefixes(prefix)[-1])

    def tag_purge_key(self, tag: str) -> str:
        """Return the purge key of ``tag``."""
        if not isinstance(tag, str):
            raise TypeError(f"a tag must be a str, got {type(tag).__name__}")
        return self.space.key("tag:" + tag)

    def purge_keys(self, url_key: str, req: Request, tags: Iterable[str]) -> list[str]:
        """Return every purge key an entry for ``req`` with ``tags`` answers to."""
        keys = [self.url_purge_key(url_key)]
        keys += (self.space.key("path:" + prefix) for prefix in path_prefixes(req.path))
        keys += (self.tag_purge_key(tag) for tag in tags)
        return list(dict.fromkeys(keys))

    def lookup(self, req: Request) -> tuple[str, Command]:
        """Return the URL-level key of ``req`` and the ``lookup.lua`` call for it."""
        url_key = self.url_key(req)
        return url_key, self.lookup_script(url_key, req)

    @staticmethod
    def lookup_script(url_key: str, req: Request) -> Command:
        """Return the ``lookup.lua`` call for ``req``, whose URL-level key is ``url_key``."""
        return LOOKUP([url_key], lookup_header_args(req))

    @staticmethod
    def memo_lookup(url_key: str, variant_key: str, purge_keys: Sequence[bytes]) -> list[Command]:
        """Return the plain reads of a lookup the memo predicts (see ``_memo.py``).

        The variant, then the spec and the purge keys: the order the purge check relies on.
        """
        return [("HMGET", variant_key, "e", "g", "t"), ("MGET", url_key, *purge_keys)]

    def claim(self, lock_key: str, token: bytes, lease_ms: int) -> Command:
        """Return the ``claim.lua`` call that takes ``lock_key`` and reads the purge clock."""
        return CLAIM([lock_key, self.epoch_key], [token, lease_ms])

    @staticmethod
    def release(lock_key: str, token: bytes, pass_ms: int) -> Command:
        """Return the ``release.lua`` call giving up ``lock_key`` (a pass for ``pass_ms``)."""
        return RELEASE([lock_key], [token, pass_ms])

    def store(
        self,
        url_key: str,
        req: Request,
        entry: StoredEntry,
        *,
        epoch: bytes,
        ttl_ms: int,
        lock_key: str,
        token: bytes | None,
    ) -> Command:
        """Return the ``store.lua`` call writing ``entry`` for ``req`` (URL-level key ``url_key``).

        ``epoch``: the purge clock read before the response was produced. ``lock_key`` and
        ``token``: the lease to release (``token`` None when the caller holds none).
        """
        keys = [
            url_key,
            self.variant_key(url_key, req, entry.vary),
            lock_key,
            self.epoch_key,
            *self.purge_keys(url_key, req, entry.tags),
        ]
        args = [vary_spec(entry.vary), entry.to_bytes(), epoch, ttl_ms, token or b""]
        return STORE(keys, args)

    def purge(self, keys: Sequence[str]) -> Command:
        """Return the ``purge.lua`` call that purges ``keys``."""
        return PURGE([self.epoch_key, *keys], [])
