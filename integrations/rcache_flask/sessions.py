"""Flask sessions on the rcache session store: a ``SessionInterface``.

::

    # alone, with a store you built
    store = SessionStore.from_url("redis://127.0.0.1:6379/0", SessionConfig(secret_keys=[key]))
    app.session_interface = RCacheSessionInterface(store)

    # or from the app's config (keys prefixed RCACHE_SESSION_)
    app.config["RCACHE_SESSION_URL"] = "redis://127.0.0.1:6379/0"
    RCacheSessionInterface().init_app(app)

``flask.session`` is then an :class:`RCacheSession`: a mapping loaded from Redis on first
use (a request that never touches it costs no round trip). It records which keys the
request set or deleted and only those are saved, so concurrent requests that change
different keys both keep their change, and a session deleted meanwhile (logout elsewhere)
is never written back. ``session.regenerate()`` gives it a new id (do it at login);
``session.flush()`` deletes it (logout).

Responses: ``Set-Cookie`` only when the cookie changes (a new session was stored, the id
rotated, the session was flushed), ``Vary: Cookie`` when the request read or wrote the
session. Nothing is saved for a 5xx response (as Django does); a new cookie is still sent
after a rotation or flush, which Redis already holds.

Failures: a save that fails makes the response a 503 (built by the app's 503 error handler,
if it has one) without ``Set-Cookie``: never a page that claims a change that was not
stored. A failed load gives an empty read-only session (``on_load_error="anonymous"``) or
a 503 (``"raise"``), as do a failed ``regenerate()`` or ``flush()``.

Config keys read by :meth:`RCacheSessionInterface.init_app`:

- ``RCACHE_SESSION_URL`` (required): the Redis URL.
- ``RCACHE_SESSION_OPTIONS``: a dict of :class:`~rcache.config.RedisSettings` overrides.
- ``RCACHE_SESSION_<FIELD>`` for every :class:`~rcache.sessions.SessionConfig` field, e.g.
  ``RCACHE_SESSION_IDLE_TIMEOUT``, ``RCACHE_SESSION_ON_LOAD_ERROR``. Defaults:
  ``SECRET_KEYS`` = ``[SECRET_KEY, *SECRET_KEY_FALLBACKS]``; the cookie fields from Flask's
  ``SESSION_COOKIE_NAME``, ``_DOMAIN``, ``_PATH`` (or ``APPLICATION_ROOT``), ``_SECURE``,
  ``_HTTPONLY`` and ``_SAMESITE`` (``"Lax"`` when unset); the rest from SessionConfig.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.exceptions import ServiceUnavailable

from rcache.adapter import RedisAdapter
from rcache.errors import BackendError, ConfigurationError
from rcache.sessions import Session, SessionConfig, SessionStore

__all__ = ["RCacheSession", "RCacheSessionInterface"]

_EXTENSION = "rcache_session"
_CONFIG_PREFIX = "RCACHE_SESSION_"
_SESSION_FIELDS = tuple(f.name for f in fields(SessionConfig) if f.init)
_UNAVAILABLE = "The session store cannot be reached; please retry."


def _unavailable(exc: BaseException) -> ServiceUnavailable:
    error = ServiceUnavailable(_UNAVAILABLE)
    error.__cause__ = exc
    return error


class RCacheSession(SessionMixin):
    """``flask.session``: an rcache :class:`~rcache.sessions.Session`, loaded on first use.

    A mapping of ``str`` keys to codec-encodable values. A change inside a value
    (``session["cart"].append(1)``) is saved once ``session.modified = True`` says so, as
    with Flask's own sessions; that writes every key, so
    ``session.rcache_session.mark_modified("cart")`` is the finer way (only that key).
    """

    def __init__(self, store: SessionStore, cookie: str | None) -> None:
        self.store = store
        self._cookie = cookie
        self._session: Session | None = None

    @property
    def loaded(self) -> Session | None:
        """The underlying rcache session, or None if this request has not used it."""
        return self._session

    @property
    def rcache_session(self) -> Session:
        """The underlying rcache session (loaded now if need be; 503 if Redis fails)."""
        session = self._session
        if session is None:
            try:
                session = self.store.load(self._cookie)
            except BackendError as exc:  # on_load_error="raise"
                raise _unavailable(exc) from exc
            self._session = session
        return session

    # -- the mapping -------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self.rcache_session[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.rcache_session.get(key, default)

    def __setitem__(self, key: str, value: Any) -> None:
        self.rcache_session[key] = value

    def __delitem__(self, key: str) -> None:
        del self.rcache_session[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.rcache_session)

    def __len__(self) -> int:
        return len(self.rcache_session)

    def __contains__(self, key: object) -> bool:
        return key in self.rcache_session

    def clear(self) -> None:
        """Remove every key (each is deleted from the stored session when saved)."""
        self.rcache_session.clear()

    def __repr__(self) -> str:
        if self._session is None:
            return "<RCacheSession not loaded>"
        return f"<RCacheSession {self._session!r}>"

    # -- rotation and logout -----------------------------------------------------------------

    def regenerate(self) -> None:
        """Give the session a new id, keeping its data; the old id stops working at once.

        Call it when privileges change (login), against session fixation. The response
        carries the new cookie.
        """
        try:
            self.store.rotate(self.rcache_session)
        except BackendError as exc:
            raise _unavailable(exc) from exc

    def flush(self) -> None:
        """Delete the stored session and start a new empty one (logout).

        The response deletes the cookie, or sets the new session's if data is added.
        """
        try:
            self.store.flush(self.rcache_session)
        except BackendError as exc:
            raise _unavailable(exc) from exc

    # -- SessionMixin ------------------------------------------------------------------------

    @property
    def new(self) -> bool:
        """True when no stored session was found for this request."""
        return self.rcache_session.is_new

    @new.setter
    def new(self, value: bool) -> None:
        pass  # derived from the store, not settable

    @property
    def modified(self) -> bool:
        """True when a save has something to write."""
        return self._session is not None and self._session.modified

    @modified.setter
    def modified(self, value: bool) -> None:
        # Flask's idiom after a change inside a value: write every key at the next save.
        if value:
            self.rcache_session.mark_modified()

    @property
    def accessed(self) -> bool:
        """True once a key was read or written (the response gets ``Vary: Cookie``)."""
        return self._session is not None and self._session.accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        pass  # Flask sets it when the proxy is touched; only real reads count here

    @property
    def permanent(self) -> bool:
        """Whether the cookie outlives the browser: ``SessionConfig.persistent_cookie``.

        Assigning it is accepted and changes nothing (the config decides).
        """
        return self.store.config.persistent_cookie

    @permanent.setter
    def permanent(self, value: bool) -> None:
        pass


class RCacheSessionInterface(SessionInterface):
    """Store Flask's sessions in Redis through an rcache :class:`SessionStore`.

    ``RCacheSessionInterface(store)`` uses that store for every app it serves;
    ``RCacheSessionInterface(adapter, config)`` builds one; ``RCacheSessionInterface()``
    followed by :meth:`init_app` builds one per app from its ``RCACHE_SESSION_*`` config.
    """

    session_class = RCacheSession

    def __init__(
        self,
        store: SessionStore | RedisAdapter | None = None,
        config: SessionConfig | None = None,
    ) -> None:
        if isinstance(store, RedisAdapter):
            if config is None:
                raise ConfigurationError("RCacheSessionInterface(adapter, config) needs a config")
            store = SessionStore(store, config)
        elif store is not None and config is not None and config != store.config:
            raise ConfigurationError("config differs from the store's own config")
        elif store is None and config is not None:
            raise ConfigurationError("a config without a store or adapter: use init_app(app)")
        self._store = store

    def init_app(self, app: Flask) -> None:
        """Install this interface on ``app``, building its store from the config if needed."""
        if self._store is None:
            app.extensions[_EXTENSION] = store_from_config(app)
        app.session_interface = self

    def store_for(self, app: Flask) -> SessionStore:
        """Return the store that serves ``app``."""
        if self._store is not None:
            return self._store
        try:
            store: SessionStore = app.extensions[_EXTENSION]
        except KeyError:
            raise RuntimeError(
                "RCacheSessionInterface has no store for this app: call init_app(app)"
            ) from None
        return store

    def get_cookie_name(self, app: Flask) -> str:
        return self.store_for(app).config.cookie_name

    def is_null_session(self, obj: object) -> bool:
        return not isinstance(obj, RCacheSession)

    def open_session(self, app: Flask, request: Request) -> RCacheSession:
        store = self.store_for(app)
        return RCacheSession(store, request.cookies.get(store.config.cookie_name))

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, RCacheSession) or session.loaded is None:
            return  # never used: nothing to save, nothing to vary on
        data, store = session.loaded, session.store
        if response.status_code < 500:
            try:
                store.save(data)
            except BackendError as exc:
                _become_unavailable(app, response, exc)
                return
        if store.vary_cookie(data):
            response.vary.add("Cookie")
        if store.should_set_cookie(data):
            response.headers.add("Set-Cookie", store.cookie_header(data))


def _become_unavailable(app: Flask, response: Response, exc: BaseException) -> None:
    """Turn ``response`` into the app's 503 (save_session cannot return a new response)."""
    replacement = app.make_response(app.handle_http_exception(_unavailable(exc)))
    response.status = replacement.status
    response.headers = replacement.headers.copy()
    response.headers["Cache-Control"] = "no-store"
    response.response = replacement.response
    response.direct_passthrough = False


def store_from_config(app: Flask) -> SessionStore:
    """Build a :class:`SessionStore` from ``app.config`` (see the module docstring)."""
    conf = app.config
    url = conf.get(_CONFIG_PREFIX + "URL")
    if not isinstance(url, str):
        raise ConfigurationError(f"{_CONFIG_PREFIX}URL must be set to a Redis URL")
    known = {_CONFIG_PREFIX + name.upper() for name in (*_SESSION_FIELDS, "url", "options")}
    unknown = sorted(k for k in conf if k.startswith(_CONFIG_PREFIX) and k not in known)
    if unknown:
        raise ConfigurationError(f"unknown config key(s): {', '.join(unknown)}")
    keys = [conf.get("SECRET_KEY"), *(conf.get("SECRET_KEY_FALLBACKS") or ())]
    options: dict[str, Any] = {
        "secret_keys": [k for k in keys if k],
        "cookie_name": conf.get("SESSION_COOKIE_NAME") or "session",
        "cookie_domain": conf.get("SESSION_COOKIE_DOMAIN") or None,
        "cookie_path": conf.get("SESSION_COOKIE_PATH") or conf.get("APPLICATION_ROOT") or "/",
        "secure": bool(conf.get("SESSION_COOKIE_SECURE", False)),
        "httponly": bool(conf.get("SESSION_COOKIE_HTTPONLY", True)),
        "samesite": conf.get("SESSION_COOKIE_SAMESITE") or "Lax",
    }
    for name in _SESSION_FIELDS:
        if _CONFIG_PREFIX + name.upper() in conf:
            options[name] = conf[_CONFIG_PREFIX + name.upper()]
    redis_options = conf.get(_CONFIG_PREFIX + "OPTIONS") or {}
    return SessionStore.from_url(url, SessionConfig(**options), **redis_options)
