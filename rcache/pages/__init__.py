"""The framework-neutral half of the full-page cache: HTTP caching rules, no I/O.

RFC 9111 (caching) and RFC 9110 (semantics) for a shared cache in front of one application.
Adapters translate their framework's request and response into :class:`Request` and
:class:`Response`; the storage layer keeps :class:`StoredEntry` bytes in Redis under the keys
of :mod:`rcache.pages.keys`, looked up in one round trip by ``lookup.lua``.

One module per idea:

=====================================  =====================================================
:mod:`~rcache.pages.headers`           the case-insensitive multi-value :class:`Headers`
:mod:`~rcache.pages.model`             Request, Response, StoredEntry and its binary layout
:mod:`~rcache.pages.fields`            Cache-Control and HTTP-date parsing
:mod:`~rcache.pages.policy`            settings; may we look up, may we store, what is kept
:mod:`~rcache.pages.freshness`         freshness lifetime, stale windows, fresh or stale
:mod:`~rcache.pages.vary`              Vary names and the variant key suffix
:mod:`~rcache.pages.keys`              cache keys and the lookup script's inputs
:mod:`~rcache.pages.conditional`       ETags, If-None-Match / If-Modified-Since, 304, Age
:mod:`~rcache.pages.serving`           Accept-Encoding, served body and header fields
:mod:`~rcache.pages.lifecycle`         building a stored entry from a response
=====================================  =====================================================

None of the modules above imports ``redis`` or a web framework. The engine that applies
these rules against Redis is :class:`PageCache` / :class:`AsyncPageCache`: private modules
``_layout`` (keys and scripts), ``_lookup`` and ``_store`` (the operations, written once),
``_render`` (the responses that leave), ``_cache`` (the two thin shells).
"""

from __future__ import annotations

from rcache.pages._cache import AsyncPageCache, PageCache
from rcache.pages._context import LookupResult
from rcache.pages._failures import OnError
from rcache.pages._render import XCache
from rcache.pages.conditional import (
    age,
    build_304,
    etag_matches,
    make_etag,
    not_modified,
    representation_headers,
)
from rcache.pages.fields import (
    directive_seconds,
    format_http_date,
    parse_cache_control,
    parse_http_date,
)
from rcache.pages.freshness import (
    State,
    classify,
    entry_ttl,
    freshness_lifetime,
    stale_windows,
)
from rcache.pages.headers import Headers
from rcache.pages.keys import (
    LOOKUP_SCRIPT,
    cache_key,
    canonical_url,
    lookup_args,
    normalize_query,
    primary_key,
    read_lookup_reply,
    variant_key,
)
from rcache.pages.lifecycle import build_entry, gzip_compress, is_compressible
from rcache.pages.model import Encoding, Request, Response, StoredEntry
from rcache.pages.options import PageOptions
from rcache.pages.policy import (
    DEFAULT_CACHEABLE_STATUSES,
    PageCachePolicy,
    is_request_cacheable,
    response_coding,
    storable,
    strip_for_storage,
)
from rcache.pages.serving import accepts_gzip, serve_body, serve_headers
from rcache.pages.vary import variant_suffix, vary_names, vary_spec

__all__ = [
    "AsyncPageCache",
    "DEFAULT_CACHEABLE_STATUSES",
    "Encoding",
    "Headers",
    "LOOKUP_SCRIPT",
    "LookupResult",
    "OnError",
    "PageCache",
    "PageCachePolicy",
    "PageOptions",
    "Request",
    "Response",
    "State",
    "StoredEntry",
    "XCache",
    "accepts_gzip",
    "age",
    "build_304",
    "build_entry",
    "cache_key",
    "canonical_url",
    "classify",
    "directive_seconds",
    "entry_ttl",
    "etag_matches",
    "format_http_date",
    "freshness_lifetime",
    "gzip_compress",
    "is_compressible",
    "is_request_cacheable",
    "lookup_args",
    "make_etag",
    "normalize_query",
    "not_modified",
    "parse_cache_control",
    "parse_http_date",
    "primary_key",
    "read_lookup_reply",
    "representation_headers",
    "response_coding",
    "serve_body",
    "serve_headers",
    "stale_windows",
    "storable",
    "strip_for_storage",
    "variant_key",
    "variant_suffix",
    "vary_names",
    "vary_spec",
]
