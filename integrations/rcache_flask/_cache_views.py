"""View calls of ``RCache.cached``: Flask requests and responses for :mod:`rcache.pages`.

Everything framework-neutral about caching a view (which requests may be answered from the
cache, which responses may be stored, the canonical URL, the stored format) comes from
:mod:`rcache.pages`, so the Django, Flask and ASGI integrations decide alike. This module
only translates.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Response, current_app, request
from flask.globals import request_ctx

from rcache.pages import (
    Headers,
    PageCachePolicy,
    Request,
    StoredEntry,
    canonical_url,
    response_coding,
    storable,
    strip_for_storage,
    vary_names,
)
from rcache.pages import Response as NeutralResponse

__all__ = ["VIEW_POLICY", "Pass", "from_stored", "neutral_request", "page_bytes", "view_key"]

#: What a view call may store: the core's page rules, for 200 responses only.
VIEW_POLICY = PageCachePolicy(cacheable_statuses=frozenset({200}))


class Pass(Exception):
    """Carries a response that must not be stored out of the cached call (nothing is cached)."""

    def __init__(self, response: Response) -> None:
        super().__init__("response not stored")
        self.response = response


def neutral_request() -> Request:
    """Translate the current Flask request for :mod:`rcache.pages`."""
    return Request(
        method=request.method,
        scheme=request.scheme,
        host=request.host,
        path=request.script_root + request.path,
        query_string=request.query_string.decode("latin-1"),
        headers=Headers(request.headers.items()),
    )


def view_key(name: str) -> str:
    """Return the cache key of the current request for the view called ``name``."""
    return f"{name}:{canonical_url(neutral_request(), VIEW_POLICY)}"


def _session_accessed() -> bool:
    """Return whether the request used the session (without marking it used ourselves)."""
    ctx: Any = request_ctx._get_current_object()  # type: ignore[attr-defined]
    # Since Flask 3.1 reading ``ctx.session`` (what the ``session`` proxy does) marks the
    # session accessed, so look at the opened session itself.
    opened = vars(ctx)["_session"] if "_session" in vars(ctx) else ctx.session
    return bool(getattr(opened, "accessed", False))


def page_bytes(rv: Any) -> bytes:
    """Return the stored form of a view's return value; raise Pass if it must not be stored.

    Not stored, besides what :func:`rcache.pages.storable` refuses (non-GET, status other
    than 200, ``no-store``/``private``, ``Set-Cookie``, ...): streamed and pass-through
    (file) responses, responses that vary on a request header, and any response of a
    request that used the session (Flask then adds ``Vary: Cookie``: the page may be
    someone's own).
    """
    response = current_app.make_response(rv)
    if response.is_streamed or response.direct_passthrough:
        raise Pass(response)
    if _session_accessed():
        raise Pass(response)
    body = response.get_data()
    neutral = NeutralResponse(
        status=response.status_code, headers=Headers(response.headers.items()), body=body
    )
    allowed, _ = storable(neutral_request(), neutral, VIEW_POLICY)
    encoding = response_coding(neutral.headers)
    if not allowed or vary_names(neutral.headers) or encoding is None:
        raise Pass(response)
    kept, _ = strip_for_storage(neutral, tag_header=VIEW_POLICY.tag_header)
    now = time.time()
    entry = StoredEntry(
        status=neutral.status,
        headers=tuple(kept),
        body=body,
        encoding=encoding,
        etag=None,
        last_modified=None,
        stored_at=now,
        date=now,
        fresh_until=now,
    )
    return entry.to_bytes()


def from_stored(stored: bytes) -> Response:
    """Return the response stored as ``stored``."""
    entry = StoredEntry.from_bytes(stored)
    response: Response = current_app.response_class(
        entry.body, status=entry.status, headers=list(entry.headers)
    )
    if entry.encoding == "gzip":
        response.headers["Content-Encoding"] = "gzip"
    return response
