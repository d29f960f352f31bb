"""Flask's full-page cache on rcache: request hooks, a view decorator, purges.

::

    pages = PageCache()                      # or PageCache(app)

    def create_app():
        app = Flask(__name__)
        app.config["RCACHE_PAGES_URL"] = "redis://127.0.0.1:6379/0"
        app.config["RCACHE_PAGES_STALE_IF_ERROR"] = 300
        pages.init_app(app)
        return app

    @app.get("/post/<int:pk>")
    @pages.cached(ttl=600, tags=["posts"])
    def post(pk):
        ...

    @app.post("/post/<int:pk>")
    def edit(pk):
        ...
        pages.purge_tag(f"post-{pk}")        # or a "Cache-Tag: post-42" header on the page

Config keys read by :meth:`PageCache.init_app`:

- ``RCACHE_PAGES_URL`` (required unless a ready :class:`rcache.pages.PageCache` is given
  as ``PageCache(cache=...)``): the Redis URL.
- ``RCACHE_PAGES_OPTIONS``: a dict of :class:`~rcache.config.RedisSettings` overrides
  (``socket_timeout``, ``key_prefix``, ...).
- ``RCACHE_PAGES_<FIELD>`` for every :class:`~rcache.pages.PageCachePolicy` field:
  ``DEFAULT_TTL``, ``STALE_WHILE_REVALIDATE``, ``STALE_IF_ERROR``, ``CACHE_AUTHENTICATED``,
  ``ALLOW_SET_COOKIE``, ``IGNORED_QUERY_PARAMS``, ``MAX_BODY_BYTES``,
  ``CACHEABLE_STATUSES``, ``TAG_HEADER``; and for the engine: ``PREFIX``, ``ON_ERROR``,
  ``LOCK_TIMEOUT``, ``WAIT_TIMEOUT``.
- ``RCACHE_PAGES_CACHE_ALL_VIEWS`` (default True): False caches only views decorated with
  :meth:`PageCache.cached`.
- ``RCACHE_PAGES_EARLY_HITS`` (default True): answer hits before Flask builds its request
  (see "Early hits" below); False always goes through the hooks.

How a request goes. A ``before_request`` hook looks it up (one Redis round trip for a hit,
with or without ``Vary``) and returns the cached page, which skips the view. Otherwise the
view runs and an ``after_request`` hook stores its response (the core decides what may be
stored: not ``Set-Cookie``, ``private``, ``no-store``, ``Authorization`` requests, logged-in
users...). A streamed response (``response.is_streamed``: a generator, ``send_file``) passes
through untouched and is never stored. Every response says how it was answered in
``X-Cache``.

Early hits. ``init_app`` also wraps ``app.wsgi_app``: once the hooks have looked a URL up
(so its route and view are known to be cached), the wrapper looks later requests for that
URL up before Flask builds a request context, and answers a hit with the stored fields and
body directly. Nothing Flask would have done is skipped: the wrapper only answers when the
app has no ``before_request``, ``after_request`` or URL value preprocessor besides the
cache's own, no ``request_started``/``request_finished`` receivers, the default response
class, no ``is_authenticated`` function (or ``CACHE_AUTHENTICATED``), and the request
carries no session cookie; and when the URL was learned from a request whose fields no
WSGI middleware inside the wrapper had changed. Anything else (a miss, a 304, a redirect)
goes on through Flask with the lookup already made, so it still costs one lookup.

Sessions. Flask saves the session after the ``after_request`` hooks, so the hook looks at
it itself: a page whose request changed the session (a flashed message, a cart) is not
stored, and one that read it varies on ``Cookie``, as Flask will say.

Logged-in users. Flask has no standard user; give ``is_authenticated``, a function of no
arguments called inside the request, e.g. ``lambda: current_user.is_authenticated`` with
Flask-Login. Its pages then bypass the cache (unless ``CACHE_AUTHENTICATED``). Requests
with ``Authorization`` are handled by the core whatever the function says.

Errors. A view decorated with :meth:`PageCache.cached` that raises gets a stale copy served
in its place while one is within its stale-if-error window. For other views, Flask turns
the exception into a 500 response, which the ``after_request`` hook replaces by the stale
copy the same way; with ``PROPAGATE_EXCEPTIONS`` (debug and testing) the exception leaves
Flask instead, and a ``teardown_request`` hook only gives the single-flight lease back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, overload

from flask import Flask, current_app, request, request_finished, request_started, session
from flask import Response as FlaskResponse
from flask.globals import request_ctx
from werkzeug.exceptions import HTTPException

from rcache.pages import Headers, LookupResult
from rcache.pages import PageCache as CorePageCache
from rcache.pages import Request as PageRequest
from rcache_flask._pages_http import (
    EARLY_HITS_KEY,
    PageOptions,
    cache_from_config,
    flask_response,
    page_request,
    page_response,
    wsgi_answer,
)

__all__ = ["PageCache", "PageOptions"]

V = TypeVar("V", bound=Callable[..., Any])

_EXTENSION = "rcache_pages"
_ENVIRON_KEY = "rcache.pages"
#: The lookup the WSGI wrapper made, for the hook: ``(where, page request, result)``.
_EARLY_KEY = "rcache.pages.early"
#: What the hook looked up, for the wrapper to learn: ``(where, page request)``.
_LEARN_KEY = "rcache.pages.learn"
_WHERE_KEYS = (
    "REQUEST_METHOD",
    "wsgi.url_scheme",
    "HTTP_HOST",
    "SERVER_NAME",
    "SERVER_PORT",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
)
_LEARNED_SIZE = 4096
#: The attribute a decorated view carries its :class:`PageOptions` in.
OPTIONS_ATTR = "rcache_page_options"
_DEFAULT_OPTIONS = PageOptions()


@dataclass(slots=True)
class _AppState:
    cache: CorePageCache
    cache_all_views: bool
    owned: bool
    early_hits: bool = True


@dataclass(slots=True)
class _Pending:
    """A request looked up: what the later hooks need (in ``request.environ``)."""

    cache: CorePageCache
    page: PageRequest
    result: LookupResult
    options: PageOptions
    done: bool = False


class PageCache:
    """The page cache as a Flask extension (see the module docstring).

    ``cache``: a ready :class:`rcache.pages.PageCache` shared by every app this extension
    serves (None: ``init_app`` builds one per app from its config). ``is_authenticated``:
    a function of no arguments telling whether the current request is a logged-in user's.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        cache: CorePageCache | None = None,
        is_authenticated: Callable[[], bool] | None = None,
    ) -> None:
        self._cache = cache
        self._is_authenticated = is_authenticated
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Install the hooks on ``app`` (building its cache from the config if needed)."""
        if self._cache is not None:
            cache_all = bool(app.config.get("RCACHE_PAGES_CACHE_ALL_VIEWS", True))
            state = _AppState(self._cache, cache_all, owned=False)
        else:
            cache, cache_all = cache_from_config(app)
            state = _AppState(cache, cache_all, owned=True)
        state.early_hits = bool(app.config.get(EARLY_HITS_KEY, True))
        app.extensions[_EXTENSION] = state
        before, after = self._before_request, self._after_request
        app.before_request(before)
        app.after_request(after)
        app.teardown_request(self._teardown_request)
        if state.early_hits:
            app.wsgi_app = _EarlyHits(  # type: ignore[method-assign]
                app, app.wsgi_app, state, before, after, self._is_authenticated is not None
            )

    # -- the cache of an app ---------------------------------------------------------------

    @staticmethod
    def _state(app: Flask | None = None) -> _AppState:
        app = app if app is not None else current_app
        try:
            state: _AppState = app.extensions[_EXTENSION]
        except KeyError:
            raise RuntimeError("the rcache PageCache is not set up: call init_app(app)") from None
        return state

    def cache_for(self, app: Flask | None = None) -> CorePageCache:
        """Return the :class:`rcache.pages.PageCache` serving ``app`` (default: the current)."""
        return self._state(app).cache

    def close(self, app: Flask | None = None) -> None:
        """Close the connections of the cache ``init_app`` built for ``app``."""
        state = self._state(app)
        if state.owned:
            state.cache.close()

    def purge_tag(self, *tags: str) -> bool:
        """Purge every page stored with any of ``tags``; False if Redis could not be reached."""
        return self.cache_for().purge_tag(*tags)

    def purge_url(self, *urls: str) -> bool:
        """Purge every variant of each absolute URL (``url_for(..., _external=True)``)."""
        return self.cache_for().purge_url(*urls)

    def purge_prefix(self, path_prefix: str) -> bool:
        """Purge every page whose path starts with ``path_prefix`` (whole segments)."""
        return self.cache_for().purge_prefix(path_prefix)

    # -- the decorator ---------------------------------------------------------------------

    @overload
    def cached(self, view: V, /) -> V: ...

    @overload
    def cached(
        self,
        /,
        *,
        ttl: float | timedelta | None = None,
        tags: Sequence[str] = (),
        vary: Sequence[str] = (),
        allow_set_cookie: bool | None = None,
    ) -> Callable[[V], V]: ...

    def cached(
        self,
        view: V | None = None,
        /,
        *,
        ttl: float | timedelta | None = None,
        tags: Sequence[str] = (),
        vary: Sequence[str] = (),
        allow_set_cookie: bool | None = None,
    ) -> V | Callable[[V], V]:
        """Give a view options of its own: ``@pages.cached`` or ``@pages.cached(...)``.

        ``ttl``: seconds the page stays fresh here, whatever the response says about its
        freshness (``no-store``, ``private`` and ``no-cache`` still win); None: from the
        response, else ``DEFAULT_TTL``; 0: never stored. ``tags``: purge tags, added to those
        of the ``Cache-Tag`` header. ``vary``: request header names added to ``Vary``.
        ``allow_set_cookie``: store the page even if it sets cookies (without them).

        Put it below the route decorator. The view may be ``async def``.
        """
        options = PageOptions.of(ttl, tags, vary, allow_set_cookie)
        if view is not None:
            return self._decorate(view, options)
        return lambda fn: self._decorate(fn, options)

    def _decorate(self, view: V, options: PageOptions) -> V:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return current_app.ensure_sync(view)(*args, **kwargs)
            except HTTPException:
                raise  # an answer, not a failure: the after_request hook sees it
            except Exception:
                stale = self._recover()
                if stale is None:
                    raise
                return stale

        setattr(wrapper, OPTIONS_ATTR, options)
        return wrapper  # type: ignore[return-value]

    # -- the hooks -------------------------------------------------------------------------

    def _options(self, state: _AppState) -> PageOptions | None:
        """Return the options of the request's view; None: not looked up (nor unrouted)."""
        if request.routing_exception is not None or request.endpoint is None:
            return None  # a 404 or 405 from routing: scanners must not fill the cache
        view = current_app.view_functions.get(request.endpoint)
        options = getattr(view, OPTIONS_ATTR, None)
        if isinstance(options, PageOptions):
            return options
        return _DEFAULT_OPTIONS if state.cache_all_views else None

    def _before_request(self) -> FlaskResponse | None:
        state = self._state()
        options = self._options(state)
        if options is None:
            return None
        cache = state.cache
        authenticated = (
            not cache.policy.cache_authenticated
            and self._is_authenticated is not None
            and bool(self._is_authenticated())
        )
        environ = request.environ
        early = environ.pop(_EARLY_KEY, None)
        if early is not None and early[0] == _where(environ):
            page, result = early[1], early[2]
        else:
            if early is not None:  # something changed the request: give the lease back
                cache.recover(early[1], early[2])
            page = page_request(request, authenticated=authenticated)
            if state.early_hits and not authenticated:
                environ[_LEARN_KEY] = (_where(environ), page)
            result = cache.lookup(page)
        pending = _Pending(cache, page, result, options)
        request.environ[_ENVIRON_KEY] = pending
        if result.response is None:
            return None
        pending.done = True
        return flask_response(result.response)

    def _after_request(self, response: FlaskResponse) -> FlaskResponse:
        pending: _Pending | None = request.environ.get(_ENVIRON_KEY)
        if pending is None or pending.done:
            return _mark(response, pending, self._state().cache.policy.tag_header)
        pending.done = True
        reason = _prepare_for_storage(response)
        sent = page_response(response)
        kwargs = pending.options.store_kwargs(storable=reason is None)
        out = pending.cache.store(pending.page, sent, pending.result, **kwargs)
        return flask_response(out, response, sent.body)

    def _teardown_request(self, exc: BaseException | None) -> None:
        self._recover()  # the lease, if the response never reached after_request

    def _recover(self) -> FlaskResponse | None:
        pending: _Pending | None = request.environ.get(_ENVIRON_KEY)
        if pending is None or pending.done:
            return None
        pending.done = True
        out = pending.cache.recover(pending.page, pending.result)
        return None if out is None else flask_response(out)


def _where(environ: dict[str, Any]) -> tuple[Any, ...]:
    """Return what a request's URL (and so its route) is made of, as the server gave it."""
    return tuple([environ.get(key) for key in _WHERE_KEYS])


def _only(funcs: dict[Any, list[Any]], own: Any) -> bool:
    """Return whether ``funcs`` (an app's hooks by blueprint) hold ``own`` and nothing else."""
    for scope, registered in funcs.items():
        if registered and (scope is not None or registered != [own]):
            return False
    return True


class _EarlyHits:
    """The WSGI wrapper that answers hits before Flask builds a request (see the docs).

    It knows a URL (``where``) once the hooks looked it up without a change to the request
    fields on the way, and keeps the page request the hooks built for it (scheme, host and
    path as Flask reads them), with this request's header fields.
    """

    def __init__(
        self,
        app: Flask,
        wsgi_app: Callable[[dict[str, Any], Any], Any],
        state: _AppState,
        before: Any,
        after: Any,
        has_user: bool,
    ) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self.state = state
        self.before = before
        self.after = after
        self.has_user = has_user
        self.learned: dict[tuple[Any, ...], PageRequest] = {}

    def _plain_app(self) -> bool:
        """Return whether Flask would do nothing to a hit besides sending it."""
        app = self.app
        return (
            app.response_class is FlaskResponse
            and not (self.has_user and not self.state.cache.policy.cache_authenticated)
            and _only(app.before_request_funcs, self.before)
            and _only(app.after_request_funcs, self.after)
            and _only(app.url_value_preprocessors, None)
            and not request_started.receivers
            and not request_finished.receivers
        )

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        where = _where(environ)
        known = self.learned.get(where)
        if known is not None and self._plain_app():
            cookie = environ.get("HTTP_COOKIE")
            if not cookie or self.app.config["SESSION_COOKIE_NAME"] + "=" not in cookie:
                return self._early(where, known, environ, start_response)
        return self._through(where, environ, start_response)

    def _through(self, where: tuple[Any, ...], environ: dict[str, Any], start_response: Any) -> Any:
        """Call the app; learn the URL if the hooks looked it up as the server gave it."""
        before = None if where in self.learned else Headers.from_environ(environ)
        try:
            return self.wsgi_app(environ, start_response)
        finally:
            early = environ.pop(_EARLY_KEY, None)
            if early is not None:  # the hook never took it: give the lease back
                self.state.cache.recover(early[1], early[2])
            seen = environ.pop(_LEARN_KEY, None)
            if before is not None and seen is not None and seen[0] == where:
                page: PageRequest = seen[1]
                if page.headers == before:
                    learned = self.learned
                    if len(learned) >= _LEARNED_SIZE:
                        learned.clear()
                    learned[where] = page

    def _early(
        self,
        where: tuple[Any, ...],
        known: PageRequest,
        environ: dict[str, Any],
        start_response: Any,
    ) -> Any:
        page = PageRequest(
            known.method,
            known.scheme,
            known.host,
            known.path,
            known.query_string,
            Headers.from_environ(environ),
        )
        result = self.state.cache.lookup(page)
        out = result.response
        if out is not None:
            sent = wsgi_answer(out, start_response)
            if sent is not None:
                return sent
        environ[_EARLY_KEY] = (where, page, result)
        return self._through(where, environ, start_response)


def _mark(response: FlaskResponse, pending: _Pending | None, tag_header: str) -> FlaskResponse:
    """Mark a response not stored by the hook: ``X-Cache`` (if missing), no tag header."""
    if "X-Cache" not in response.headers:
        response.headers.pop(tag_header, None)
        response.headers["X-Cache"] = "BYPASS" if pending is None else pending.result.x_cache
    return response


def _current_session() -> Any:
    """Return the request's session without marking it accessed.

    Flask 3.1 marks the session accessed on every read of ``flask.session`` (which would
    make every page vary on ``Cookie``), so the request context's own slot is read.
    """
    ctx = request_ctx._get_current_object()  # type: ignore[attr-defined]
    if hasattr(ctx, "_session"):
        return ctx._session
    return session._get_current_object()  # type: ignore[attr-defined]


def _prepare_for_storage(response: FlaskResponse) -> str | None:
    """Say what the session will add; return why the page must not be stored, or None."""
    sess = _current_session()
    if sess is None or current_app.session_interface.is_null_session(sess):
        return None
    if getattr(sess, "accessed", True) or getattr(sess, "modified", True):
        response.vary.add("Cookie")
    return "session modified" if getattr(sess, "modified", True) else None
