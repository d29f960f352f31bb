"""Flask requests and responses as the page cache sees them, and back; the config. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any
from urllib.parse import quote

from flask import Flask, Request, current_app
from flask import Response as FlaskResponse
from werkzeug.datastructures import Headers as WerkzeugHeaders

from rcache.errors import ConfigurationError
from rcache.pages import Headers, PageCache, PageCachePolicy, Response
from rcache.pages import Request as PageRequest
from rcache.pages.options import PageOptions

__all__ = [
    "CONFIG_PREFIX",
    "EARLY_HITS_KEY",
    "PageOptions",
    "cache_from_config",
    "flask_response",
    "page_request",
    "page_response",
    "wsgi_answer",
]

CONFIG_PREFIX = "RCACHE_PAGES_"
_POLICY_FIELDS = tuple(f.name for f in fields(PageCachePolicy))
_CACHE_FIELDS = ("prefix", "on_error", "lock_timeout", "wait_timeout")
_OWN_KEYS = ("URL", "OPTIONS", "CACHE_ALL_VIEWS", "EARLY_HITS")
EARLY_HITS_KEY = CONFIG_PREFIX + "EARLY_HITS"
# werkzeug's own choice when it rebuilds a URL (get_current_url): the same keys as url_for
_PATH_SAFE = "!$&'()*+,/:;=@%"


def cache_from_config(app: Flask) -> tuple[PageCache, bool]:
    """Build the page cache ``app.config`` describes; return it and ``CACHE_ALL_VIEWS``."""
    conf = app.config
    url = conf.get(CONFIG_PREFIX + "URL")
    if not isinstance(url, str):
        raise ConfigurationError(f"{CONFIG_PREFIX}URL must be set to a Redis URL")
    names = (*_OWN_KEYS, *(name.upper() for name in (*_POLICY_FIELDS, *_CACHE_FIELDS)))
    known = {CONFIG_PREFIX + name for name in names}
    unknown = sorted(k for k in conf if k.startswith(CONFIG_PREFIX) and k not in known)
    if unknown:
        raise ConfigurationError(f"unknown config key(s): {', '.join(unknown)}")
    policy: dict[str, Any] = {
        name: conf[CONFIG_PREFIX + name.upper()]
        for name in _POLICY_FIELDS
        if CONFIG_PREFIX + name.upper() in conf
    }
    if "ignored_query_params" in policy:
        policy["ignored_query_params"] = tuple(policy["ignored_query_params"])
    if "cacheable_statuses" in policy:
        policy["cacheable_statuses"] = frozenset(policy["cacheable_statuses"])
    engine = {
        name: conf[CONFIG_PREFIX + name.upper()]
        for name in _CACHE_FIELDS
        if CONFIG_PREFIX + name.upper() in conf
    }
    redis_options = conf.get(CONFIG_PREFIX + "OPTIONS") or {}
    if not isinstance(redis_options, Mapping):
        raise ConfigurationError(f"{CONFIG_PREFIX}OPTIONS must be a dict")
    cache = PageCache.from_url(
        url, policy=PageCachePolicy(**policy), **engine, **dict(redis_options)
    )
    return cache, bool(conf.get(CONFIG_PREFIX + "CACHE_ALL_VIEWS", True))


_paths: dict[tuple[str, str], str] = {}


def _quoted_path(root_path: str, path: str) -> str:
    """Return the request's path as the cache keys it, percent-encoded (remembered)."""
    quoted = _paths.get((root_path, path))
    if quoted is None:
        quoted = quote(root_path + path, safe=_PATH_SAFE)
        if len(_paths) >= 4096:
            _paths.clear()
        _paths[root_path, path] = quoted
    return quoted


def page_request(request: Request, *, authenticated: bool) -> PageRequest:
    """Return the page cache's view of a Flask request."""
    environ = request.environ
    return PageRequest(
        method=request.method,
        scheme=request.scheme,
        host=request.host,
        path=_quoted_path(request.root_path, request.path),
        query_string=environ.get("QUERY_STRING", ""),
        headers=Headers.from_environ(environ),
        is_authenticated=authenticated,
    )


def page_response(response: FlaskResponse) -> Response:
    """Return the page cache's view of a Flask response (body None when streamed)."""
    body = None if response.is_streamed else response.get_data()
    return Response(response.status_code, Headers(response.headers.items()), body)


def flask_response(
    out: Response, original: FlaskResponse | None = None, sent: bytes | None = None
) -> FlaskResponse:
    """Return the Flask response for what the page cache answered.

    ``original`` and ``sent``: the view's response and the body handed to the cache. When
    the cache kept that body (or it streams), the view's response is reused with the new
    header fields; otherwise the app's ``response_class`` builds a new one.
    """
    same_status = original is not None and out.status == original.status_code
    if original is not None and same_status and (out.body is None or out.body is sent):
        original.headers = WerkzeugHeaders(out.headers.to_list())
        return original
    headers = WerkzeugHeaders(out.headers.to_list())
    # The body goes in as a sequence: werkzeug then leaves Content-Length as the cache set
    # it (a HEAD answer keeps the GET's), and a given Content-Type keeps it from adding one.
    response: FlaskResponse = current_app.response_class([out.body or b""], out.status, headers)
    if "content-type" not in out.headers:  # a 304: werkzeug added its default
        del response.headers["Content-Type"]
    return response


_status_lines: dict[int, str] = {}
#: Fields werkzeug rewrites on the way out (IRIs to URIs): such answers go through it.
_REWRITTEN = ("location", "content-location")


def wsgi_answer(out: Response, start_response: Any) -> list[bytes] | None:
    """Send ``out`` through ``start_response`` as werkzeug would; None if it must do it.

    A 1xx, 204 or 304 answer, or one with ``Location`` or ``Content-Location``, is left to
    werkzeug (it adjusts those); any other is sent with its fields as they are (the cache
    set ``Content-Length``).
    """
    status = out.status
    headers = out.headers
    if status < 200 or status in (204, 304) or any(name in headers for name in _REWRITTEN):
        return None
    line = _status_lines.get(status)
    if line is None:
        line = _status_lines[status] = FlaskResponse(status=status).status
    start_response(line, headers.to_list())
    body = out.body
    return [body] if body else []
