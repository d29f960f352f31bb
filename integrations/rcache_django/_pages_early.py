"""Early hits: when the middleware may answer a request before Django resolves its URL.

The middleware answers a hit from ``process_view`` (the normal path), after the middleware
below it has seen the request and the URL resolved to a cached view. It may answer one from
its own ``__call__`` instead (before any of that) only when skipping it changes nothing:

- the stack: every middleware after it is one known to add nothing to a hit of a visitor
  without a session cookie (:data:`SAFE_MIDDLEWARE`), and every one before it either has no
  ``process_view`` (its request and response halves run either way) or is one of those.
  The stack is read when Django loads the middleware;
- the URL: the normal path has looked it up in this process (so it resolves to a cached
  view), under the same settings (any setting change forgets every URL);
- the request: GET or HEAD; no session cookie (the user is then anonymous, and neither
  ``SessionMiddleware`` nor the authentication middleware would do anything); a CSRF
  cookie, if any, that ``CsrfViewMiddleware`` would not replace; no user set by a
  middleware before this one (unless the policy caches logged-in users' pages); and
  nothing the settings of a middleware in the stack turn into an answer of its own
  (``SECURE_SSL_REDIRECT`` on a plain HTTP request, ``PREPEND_WWW``,
  ``DISALLOWED_USER_AGENTS``).
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings  # type: ignore[import-untyped, unused-ignore]
from django.core.signals import setting_changed  # type: ignore[import-untyped, unused-ignore]
from django.middleware.csrf import (  # type: ignore[import-untyped, unused-ignore]
    CSRF_ALLOWED_CHARS,
    CSRF_SECRET_LENGTH,
    CSRF_TOKEN_LENGTH,
)
from django.utils.functional import (  # type: ignore[import-untyped, unused-ignore]
    SimpleLazyObject,
    empty,
)
from django.utils.module_loading import (  # type: ignore[import-untyped, unused-ignore]
    import_string,
)

__all__ = ["SAFE_MIDDLEWARE", "EarlyHits", "early_hits_for"]

SECURITY = "django.middleware.security.SecurityMiddleware"
COMMON = "django.middleware.common.CommonMiddleware"
CSRF = "django.middleware.csrf.CsrfViewMiddleware"

#: Middleware that adds nothing to a hit of a GET or HEAD without a session cookie: its
#: response half only sets fields the stored page already has (the page went through it),
#: and its request half answers nothing by itself (within the conditions above).
SAFE_MIDDLEWARE = (
    SECURITY,
    "django.contrib.sessions.middleware.SessionMiddleware",
    "rcache_django.sessions.SessionMiddleware",
    COMMON,
    CSRF,
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)
_METHODS = frozenset({"GET", "HEAD"})
_LEARNED_SIZE = 4096
_CSRF_LENGTHS = (CSRF_SECRET_LENGTH, CSRF_TOKEN_LENGTH)

_generation = [0]


def _settings_changed(**kwargs: Any) -> None:
    _generation[0] += 1  # every URL learned is forgotten, every rule read again


setting_changed.connect(_settings_changed, dispatch_uid="rcache_django.pages.early")


def _safe_classes(dotted_names: list[str]) -> dict[Any, str]:
    """Return the classes of :data:`SAFE_MIDDLEWARE` named in ``dotted_names`` (only those
    are imported: an app's middleware may need the app installed)."""
    return {import_string(d): d for d in SAFE_MIDDLEWARE if d in dotted_names}


def early_hits_for(own: type) -> EarlyHits | None:
    """Return the early-hit rules of the stack in ``MIDDLEWARE``; None if it has none.

    ``own``: the class of the page cache middleware, which must appear exactly once.
    """
    dotted_names = list(settings.MIDDLEWARE)
    try:
        stack = [import_string(dotted) for dotted in dotted_names]
        safe = _safe_classes(dotted_names)
    except Exception:  # Django reports it when it loads the stack itself
        return None
    if stack.count(own) != 1:
        return None  # built by hand, or twice in the stack
    at = stack.index(own)
    before, after = stack[:at], stack[at + 1 :]
    if any(item not in safe for item in after):
        return None
    for item in before:
        if item not in safe and (not isinstance(item, type) or hasattr(item, "process_view")):
            return None
    return EarlyHits({safe[item] for item in stack if item in safe})


def _user_unknown(request: Any) -> bool:
    """Return whether no middleware before this one has decided who the user is."""
    user = getattr(request, "user", None)
    return user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty)


class _Rules:
    """What the settings say, read once per settings generation."""

    __slots__ = ("csrf_cookie", "generation", "session_cookie", "ssl_redirect", "usable")

    def __init__(self, names: frozenset[str], generation: int) -> None:
        self.generation = generation
        self.session_cookie: str = settings.SESSION_COOKIE_NAME
        self.csrf_cookie: str | None = (
            settings.CSRF_COOKIE_NAME if CSRF in names and not settings.CSRF_USE_SESSIONS else None
        )
        self.ssl_redirect = SECURITY in names and bool(settings.SECURE_SSL_REDIRECT)
        self.usable = COMMON not in names or (
            not settings.DISALLOWED_USER_AGENTS and not settings.PREPEND_WWW
        )


class EarlyHits:
    """The URLs this process has learned, and whether a request may be answered early."""

    def __init__(self, names: frozenset[str] | set[str]) -> None:
        self.names = frozenset(names)
        self.learned: dict[tuple[Any, str], bool] = {}
        self._lock = threading.Lock()
        self._rules = _Rules(self.names, _generation[0])

    def _current(self) -> _Rules:
        rules = self._rules
        if rules.generation != _generation[0]:
            with self._lock:
                self.learned = {}
                rules = self._rules = _Rules(self.names, _generation[0])
        return rules

    def key(self, request: Any, cache_authenticated: bool) -> tuple[Any, str] | None:
        """Return the key a request is learned by, or None if it must take the normal path."""
        if request.method not in _METHODS:
            return None
        rules = self._current()
        if not rules.usable:
            return None
        if "HTTP_COOKIE" in request.META:
            cookies = request.COOKIES
            if rules.session_cookie in cookies:
                return None
            csrf = rules.csrf_cookie
            if csrf is not None and csrf in cookies:
                token = cookies[csrf]
                if len(token) not in _CSRF_LENGTHS or token.strip(CSRF_ALLOWED_CHARS):
                    return None  # CsrfViewMiddleware would send a new cookie
        if rules.ssl_redirect and not request.is_secure():
            return None
        if not cache_authenticated and not _user_unknown(request):
            return None
        return (getattr(request, "urlconf", None), request.path_info)

    def learn(self, key: tuple[Any, str]) -> None:
        """Remember that the normal path looked ``key`` up (its view is a cached one)."""
        learned = self.learned
        if len(learned) >= _LEARNED_SIZE:
            learned.clear()
        learned[key] = True
