"""The engine's ``SessionMiddleware`` (importable as ``rcache_django.sessions.SessionMiddleware``).

It never imports the engine: it works on whatever ``request.session`` is, through Django's
``SessionBase`` API.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings  # type: ignore[import-untyped, unused-ignore]
from django.contrib.sessions.backends.base import (  # type: ignore[import-untyped, unused-ignore]
    UpdateError,
)
from django.contrib.sessions.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    SessionInterrupted,
)
from django.contrib.sessions.middleware import (  # type: ignore[import-untyped, unused-ignore]
    SessionMiddleware as DjangoSessionMiddleware,
)
from django.http import HttpResponse  # type: ignore[import-untyped, unused-ignore]
from django.utils.cache import patch_vary_headers  # type: ignore[import-untyped, unused-ignore]
from django.utils.http import http_date  # type: ignore[import-untyped, unused-ignore]

from rcache.errors import BackendError

__all__ = ["SessionMiddleware", "service_unavailable"]


def service_unavailable() -> Any:
    """Return the 503 answered when the session store fails."""
    response = HttpResponse(
        "Service Unavailable: the session store cannot be reached; please retry.\n",
        status=503,
        content_type="text/plain; charset=utf-8",
    )
    response["Cache-Control"] = "no-store"
    patch_vary_headers(response, ("Cookie",))
    return response


class SessionMiddleware(DjangoSessionMiddleware):  # type: ignore[misc, unused-ignore]
    """Django's ``SessionMiddleware``, with a cookie only when it changes and 503s.

    Differences from Django's (which works with this engine too):

    - ``Set-Cookie`` is sent when the session's key changes (a new session, a rotation by
      ``cycle_key()``, a flush), not on every change of its data: the key stays the same
      and Redis slides the expiry itself, so pages that change the session stay
      cacheable. ``Max-Age`` is what is left of the session's lifetime.
    - A failed save, or a :class:`~rcache.errors.BackendError` raised by a view (a load
      with ``on_load_error="raise"``, say), answers 503 without ``Set-Cookie`` instead of
      Django's 500.

    The rest is Django's: ``Vary: Cookie`` when the session was used, the cookie deleted
    when the session is emptied, ``SessionInterrupted`` (400) when the session was deleted
    during the request, no save for a 5xx response.
    """

    def process_response(self, request: Any, response: Any) -> Any:
        try:
            session = request.session
            accessed, modified, empty = session.accessed, session.modified, session.is_empty()
        except AttributeError:
            return response
        name = settings.SESSION_COOKIE_NAME
        sent = request.COOKIES.get(name)
        if sent is not None and empty:
            response.delete_cookie(
                name,
                path=settings.SESSION_COOKIE_PATH,
                domain=settings.SESSION_COOKIE_DOMAIN,
                samesite=settings.SESSION_COOKIE_SAMESITE,
            )
            patch_vary_headers(response, ("Cookie",))
            return response
        vary = accessed
        if (modified or settings.SESSION_SAVE_EVERY_REQUEST) and not empty:
            if response.status_code < 500:
                try:
                    session.save()
                except UpdateError:
                    raise SessionInterrupted(
                        "The request's session was deleted before the request completed. "
                        "The user may have logged out in a concurrent request, for example."
                    ) from None
                except BackendError:
                    return service_unavailable()
            if session.session_key is not None and session.session_key != sent:
                self._set_cookie(response, session)
                vary = True
        if vary:
            patch_vary_headers(response, ("Cookie",))
        return response

    @staticmethod
    def _set_cookie(response: Any, session: Any) -> None:
        if session.get_expire_at_browser_close():
            max_age, expires = None, None
        else:
            max_age = session.get_expiry_age()
            expires = http_date(time.time() + max_age)
        response.set_cookie(
            settings.SESSION_COOKIE_NAME,
            session.session_key,
            max_age=max_age,
            expires=expires,
            domain=settings.SESSION_COOKIE_DOMAIN,
            path=settings.SESSION_COOKIE_PATH,
            secure=settings.SESSION_COOKIE_SECURE or None,
            httponly=settings.SESSION_COOKIE_HTTPONLY or None,
            samesite=settings.SESSION_COOKIE_SAMESITE,
        )

    def process_exception(self, request: Any, exception: Exception) -> Any:
        if isinstance(exception, BackendError):
            return service_unavailable()
        return None
