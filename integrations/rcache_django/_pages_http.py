"""Django requests and responses as the page cache sees them, and back. No I/O.

What the page cache cannot see in a Django response, and this module tells it:

- the user: ``request.user`` as left by ``AuthenticationMiddleware``. A request without a
  session cookie whose lazy user nobody has looked at yet is anonymous without loading
  anything (session-based authentication could only find an empty session), so public
  pages of visitors without cookies neither cost a session round trip nor vary on
  ``Cookie`` because of the check;
- the CSRF token: a view (or template) that called ``get_token()`` leaves
  ``CSRF_COOKIE_NEEDS_UPDATE`` in ``request.META`` (``CSRF_COOKIE_USED`` before Django
  4.1); such a page carries a token of one visitor and is never stored, wherever the CSRF
  middleware sits;
- the session: one the request changed will be saved and may send a cookie, and the page
  reflects the change (a message shown once, a cart), so it is not stored; one that was
  read makes the page vary on ``Cookie``, as Django's ``SessionMiddleware`` says (and
  this is said here too, in case that middleware runs after the page cache's).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings  # type: ignore[import-untyped, unused-ignore]
from django.http import HttpResponse  # type: ignore[import-untyped, unused-ignore]
from django.utils.cache import patch_vary_headers  # type: ignore[import-untyped, unused-ignore]
from django.utils.encoding import escape_uri_path  # type: ignore[import-untyped, unused-ignore]
from django.utils.functional import (  # type: ignore[import-untyped, unused-ignore]
    SimpleLazyObject,
    empty,
)

from rcache.pages import Headers, Request, Response

__all__ = [
    "arender",
    "django_response",
    "early_response",
    "is_authenticated",
    "ais_authenticated",
    "mark_bypass",
    "page_request",
    "page_response",
    "prepare_for_storage",
    "render",
]

_SET_COOKIE = "set-cookie"
X_CACHE = "X-Cache"


def _anonymous_without_looking(request: Any) -> bool | None:
    """Return whether the user is known without loading anything; None if it is not."""
    user = getattr(request, "user", None)
    if user is None:
        return False  # no authentication middleware ran
    if (
        isinstance(user, SimpleLazyObject)
        and user._wrapped is empty
        and settings.SESSION_COOKIE_NAME not in request.COOKIES
    ):
        return False
    return None


def is_authenticated(request: Any) -> bool:
    """Return whether ``request`` comes from a logged-in user (see the module docstring)."""
    known = _anonymous_without_looking(request)
    if known is not None:
        return known
    return bool(request.user.is_authenticated)


async def ais_authenticated(request: Any) -> bool:
    """:func:`is_authenticated` for async code: through ``request.auser()`` when lazy."""
    known = _anonymous_without_looking(request)
    if known is not None:
        return known
    user = request.user
    auser = getattr(request, "auser", None)
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty and auser is not None:
        user = await auser()
    return bool(user.is_authenticated)


_paths: dict[str, str] = {}


def _escaped_path(path: str) -> str:
    """Return ``escape_uri_path(path)``, remembered for the paths seen last."""
    escaped = _paths.get(path)
    if escaped is None:
        escaped = escape_uri_path(path)
        if len(_paths) >= 4096:
            _paths.clear()
        _paths[path] = escaped
    return escaped


def page_request(request: Any, *, authenticated: bool) -> Request:
    """Return the page cache's view of a Django ``HttpRequest``.

    The header fields are read from ``META`` as ``request.headers`` would have them (names
    lowercased), without building that mapping.
    """
    meta = request.META
    return Request(
        method=request.method or "GET",
        scheme=request.scheme,
        host=request.get_host(),
        path=_escaped_path(request.path),
        query_string=meta.get("QUERY_STRING", ""),
        headers=Headers.from_environ(meta),
        is_authenticated=authenticated,
    )


def page_response(response: Any) -> Response:
    """Return the page cache's view of a Django response (body None when streaming)."""
    fields = [*response.items()]
    fields += [(_SET_COOKIE, morsel.output(header="")) for morsel in response.cookies.values()]
    body = None if response.streaming else response.content
    return Response(response.status_code, Headers(fields), body)


def _write_headers(target: Any, headers: Headers) -> None:
    """Make ``target``'s header fields those of ``headers`` (cookies stay in ``cookies``)."""
    grouped: dict[str, tuple[str, list[str]]] = {}
    for name, value in headers:
        grouped.setdefault(name.lower(), (name, []))[1].append(value)
    grouped.pop(_SET_COOKIE, None)
    for name in list(target.headers):
        if name.lower() not in grouped:
            del target.headers[name]
    for name, values in grouped.values():
        target.headers[name] = ", ".join(values)


def django_response(out: Response, original: Any = None, sent: bytes | None = None) -> Any:
    """Return the Django response for what the page cache answered.

    ``original`` and ``sent``: the view's response and the body handed to the cache. When
    the cache kept that body (or it streams), the view's response is reused with the new
    header fields, so its type and attributes survive; otherwise a new ``HttpResponse`` is
    built, with the view's cookies if the answer carries them.
    """
    same_status = original is not None and out.status == original.status_code
    if same_status and (out.body is None or out.body is sent):
        _write_headers(original, out.headers)
        return original
    if original is None:  # an answer from the cache: its fields as they are
        fields = _grouped(out.headers)
        response = HttpResponse(out.body or b"", status=out.status, headers=fields)
        if "content-type" not in out.headers:  # a 304: Django added its default
            del response.headers["Content-Type"]
        return response
    response = HttpResponse(out.body or b"", status=out.status)
    _write_headers(response, out.headers)
    if _SET_COOKIE in out.headers:
        response.cookies = original.cookies
    return response


def early_response(out: Response) -> Any:
    """Return the Django response for a hit answered before the middleware below runs.

    None for a 1xx, 204 or 304 answer, or one without ``Content-Length``, which
    ``CommonMiddleware`` would complete: those take the normal path.
    """
    status = out.status
    if status < 200 or status in (204, 304) or "content-length" not in out.headers:
        return None
    return django_response(out)


def _grouped(headers: Headers) -> dict[str, str]:
    """Return ``headers`` without ``Set-Cookie``, repeated fields joined by ``", "``."""
    grouped: dict[str, str] = {}
    spelled: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        if key == _SET_COOKIE:
            continue
        first = spelled.setdefault(key, name)
        grouped[first] = f"{grouped[first]}, {value}" if first in grouped else value
    return grouped


def mark_bypass(response: Any, tag_header: str) -> Any:
    """Mark a response the cache never looked at: ``X-Cache: BYPASS``, no tag header."""
    if tag_header in response.headers:
        del response.headers[tag_header]
    response.headers[X_CACHE] = "BYPASS"
    return response


def _needs_render(response: Any) -> bool:
    return callable(getattr(response, "render", None)) and not getattr(
        response, "is_rendered", True
    )


def render(response: Any) -> Any:
    """Render a ``TemplateResponse`` that is not rendered yet; return the response."""
    return response.render() if _needs_render(response) else response


async def arender(response: Any) -> Any:
    """:func:`render` for async code (templates may query the database: in a thread)."""
    if _needs_render(response):
        return await sync_to_async(response.render, thread_sensitive=True)()
    return response


def prepare_for_storage(request: Any, response: Any) -> str | None:
    """Add what later middleware will say about cookies; return why not to store, or None.

    ``Vary: Cookie`` when the session was read or the CSRF token used; a reason (the page
    must not be stored) when the CSRF token was used or the session changed.
    """
    meta = request.META
    csrf = "CSRF_COOKIE_NEEDS_UPDATE" in meta or bool(meta.get("CSRF_COOKIE_USED"))
    session = getattr(request, "session", None)
    accessed = bool(getattr(session, "accessed", False))
    modified = bool(getattr(session, "modified", False))
    if csrf or accessed or modified:
        patch_vary_headers(response, ("Cookie",))
    if csrf:
        return "csrf token"
    if modified:
        return "session modified"
    return None
