"""The apps of the sessions suite: one tiny app per framework, and a driver per app.

Every app has the same three views, whatever its session library:

- ``/login``: puts :data:`LOGIN` into a new session (the response sets the cookie);
- ``/read``: reads one key and answers it (a read-only request);
- ``/modify``: reads one key, changes another (``n``, a counter) and answers the new value.

A driver (:class:`DjangoSite`, :class:`FlaskSite`, :class:`AsgiSite`) sends requests in
process, the same way for every library of that framework: as direct WSGI calls to
Django's handler, through Flask's test client, and as direct ASGI calls. It logs in once
(:meth:`Site.login`) and sends that cookie, explicitly, with every later request, so no
cookie jar is involved and every request names the same stored session.

Django reads its settings from one ``settings.configure()`` per process (see
:func:`configure_django`); each Django site builds its own request handler with its own
``SESSION_ENGINE`` and middleware, so both libraries run side by side in one process.
Third-party imports stay inside functions: importing this module needs none of them.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

from bench._loop import OwnLoop, asgi_get

_EMPTY_INPUT = io.BytesIO(b"")  # a GET has no body: nothing ever reads from it
_ERRORS = io.StringIO()

__all__ = [
    "LIFETIME",
    "LOGIN",
    "SECRET",
    "USER",
    "AsgiSite",
    "DjangoSite",
    "FlaskSite",
    "Site",
    "configure_django",
    "flask_app",
    "starlette_app",
]

SECRET = "bench-sessions-secret-0123456789abcdef0123456789abcdef"
USER = "alice"
#: What a login stores: a few keys of the kinds real apps keep in a session.
LOGIN: dict[str, Any] = {
    "user": USER,
    "auth_backend": "accounts.backends.EmailBackend",
    "csrf": "x7Rk2pQw9ZbTn4YcLm8VfJ3sHd6GaE1u",
    "cart": [1042, 2077, 3199],
    "prefs": {"theme": "dark", "lang": "en", "tz": "Europe/Paris"},
}
LIFETIME = 14 * 24 * 3600  # seconds: Django's SESSION_COOKIE_AGE default, used everywhere


def _cookie(set_cookie_headers: list[str], name: str) -> str:
    """Return the value of cookie ``name`` among ``Set-Cookie`` headers (fails if absent)."""
    for header in set_cookie_headers:
        morsels = SimpleCookie(header)
        if name in morsels and morsels[name].value:
            return morsels[name].value
    raise AssertionError(f"the login response set no {name!r} cookie: {set_cookie_headers!r}")


class Site:
    """A driver: ``read()`` and ``modify()`` send one request each with the login cookie.

    ``adapter``: the rcache adapter that serves the app (its stats count round trips), or
    None for a peer library.
    """

    adapter: Any = None

    def login(self) -> None:
        """Log in, then check a read and two modifications see the stored session."""
        raise NotImplementedError

    def read(self) -> Any:
        raise NotImplementedError

    def modify(self) -> Any:
        raise NotImplementedError

    def check(self) -> None:
        got = self._text(self.read())
        if got != USER:
            raise AssertionError(f"{type(self).__name__}: /read answered {got!r}, not {USER!r}")
        first = int(self._text(self.modify()))
        second = int(self._text(self.modify()))
        if second != first + 1:
            raise AssertionError(f"{type(self).__name__}: /modify did not persist ({first=})")

    def _text(self, response: Any) -> str:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the site holds (clients, stores, its event loop)."""


# -- Django ----------------------------------------------------------------------------------


def configure_django(peer_cache_url: str, rcache_url: str) -> None:
    """Configure Django for both session engines; this module is the URLconf.

    ``CACHES["default"]`` is django-redis (for ``django.contrib.sessions.backends.cache``),
    ``RCACHE_SESSIONS`` the rcache engine's Redis. Neither engine nor middleware is set
    here: each :class:`DjangoSite` picks its own.
    """
    import django
    from django.conf import settings

    if settings.configured:
        raise RuntimeError("the sessions suite configures Django itself; run it on its own")
    settings.configure(
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[],
        DATABASES={},
        MIDDLEWARE=[],
        ROOT_URLCONF=__name__,
        USE_TZ=True,
        SESSION_COOKIE_AGE=LIFETIME,
        CACHES={
            "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": peer_cache_url}
        },
        RCACHE_SESSIONS={"URL": rcache_url},
    )
    django.setup()


def _django_views() -> list[Any]:
    from django.http import HttpResponse
    from django.urls import path

    def login(request: Any) -> Any:
        request.session.update(LOGIN)
        return HttpResponse("ok")

    def read(request: Any) -> Any:
        return HttpResponse(request.session.get("user", ""))

    def modify(request: Any) -> Any:
        request.session.get("user")  # a view that checks the login first
        n = request.session.get("n", 0) + 1
        request.session["n"] = n
        return HttpResponse(str(n))

    return [path("login/", login), path("read/", read), path("modify/", modify)]


def __getattr__(name: str) -> Any:
    # Django's URL resolver asks this module for ``urlpatterns`` (ROOT_URLCONF) once the
    # settings are configured; building them on demand keeps Django out of the import.
    if name == "urlpatterns":
        patterns = _django_views()
        globals()["urlpatterns"] = patterns
        return patterns
    raise AttributeError(name)


class _WsgiReply:
    """What a WSGI app answered: the status code, the headers and the body."""

    __slots__ = ("body", "headers", "status_code")

    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status_code = int(status.split(" ", 1)[0])
        self.headers = headers
        self.body = body


class DjangoSite(Site):
    """Django's WSGI handler running ``middleware`` with ``engine``, called as a server would.

    Django's ``SessionMiddleware`` reads ``SESSION_ENGINE`` when it is built, so building
    the handler under ``override_settings`` gives this site its own engine for good. The
    requests are plain WSGI calls (a fresh environ each, the body read and the response
    closed), not ``django.test.Client``: the test client connects signal receivers on
    every request and its bound-method receivers leave three ``weakref.finalize``
    objects behind each time, a heap that grows through the run and makes the
    collector's full passes (tens of milliseconds, growing) land on whichever contender
    happens to be running.
    """

    def __init__(self, engine: str, middleware: str) -> None:
        from django.conf import settings
        from django.core.handlers.wsgi import WSGIHandler
        from django.test import override_settings

        with override_settings(SESSION_ENGINE=engine, MIDDLEWARE=[middleware]):
            self.handler = WSGIHandler()
        self.name = settings.SESSION_COOKIE_NAME
        self.cookie = ""
        if engine == "rcache_django.sessions":
            from rcache_django._sessions_stores import stores

            self.adapter = stores.sync().adapter

    def _get(self, path: str) -> _WsgiReply:
        environ = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "testserver",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": _EMPTY_INPUT,
            "wsgi.errors": _ERRORS,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if self.cookie:
            environ["HTTP_COOKIE"] = self.cookie
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return None

        result = self.handler(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return _WsgiReply(started[0], started[1], body)

    def login(self) -> None:
        response = self._get("/login/")
        assert response.status_code == 200, response.status_code
        headers = [v for k, v in response.headers if k.lower() == "set-cookie"]
        self.cookie = f"{self.name}={_cookie(headers, self.name)}"
        self.check()

    def read(self) -> Any:
        return self._get("/read/")

    def modify(self) -> Any:
        return self._get("/modify/")

    def _text(self, response: Any) -> str:
        assert response.status_code == 200, response.status_code
        return str(response.body.decode())


# -- Flask -----------------------------------------------------------------------------------


def flask_app(configure: Callable[[Any], None]) -> Any:
    """Return the Flask app; ``configure(app)`` installs its session library."""
    from flask import Flask, session

    app = Flask("bench_sessions")
    app.config.update(SECRET_KEY=SECRET)

    @app.get("/login")
    def login() -> str:
        session.update(LOGIN)
        return "ok"

    @app.get("/read")
    def read() -> str:
        return str(session.get("user", ""))

    @app.get("/modify")
    def modify() -> str:
        session.get("user")
        n = session.get("n", 0) + 1
        session["n"] = n
        return str(n)

    configure(app)
    return app


class FlaskSite(Site):
    """Flask's ``test_client`` without its cookie jar (the cookie goes in each request)."""

    def __init__(self, app: Any, adapter: Any = None) -> None:
        self.app = app
        self.client = app.test_client(use_cookies=False)
        self.name = app.config.get("SESSION_COOKIE_NAME") or "session"
        self.headers: dict[str, str] = {}
        self.adapter = adapter
        self.closers: list[Callable[[], Any]] = []

    def login(self) -> None:
        response = self.client.get("/login")
        assert response.status_code == 200, response.status_code
        value = _cookie(response.headers.getlist("Set-Cookie"), self.name)
        self.headers = {"Cookie": f"{self.name}={value}"}
        self.check()

    def read(self) -> Any:
        return self.client.get("/read", headers=self.headers)

    def modify(self) -> Any:
        return self.client.get("/modify", headers=self.headers)

    def _text(self, response: Any) -> str:
        assert response.status_code == 200, response.status_code
        return str(response.get_data(as_text=True))

    def close(self) -> None:
        while self.closers:
            self.closers.pop()()


# -- ASGI (Starlette) ------------------------------------------------------------------------


def starlette_app(middleware: list[Any]) -> Any:
    """Return the Starlette app with ``middleware`` (``starlette.middleware.Middleware``)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def login(request: Request) -> PlainTextResponse:
        request.session.update(LOGIN)
        return PlainTextResponse("ok")

    async def read(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.session.get("user", "")))

    async def modify(request: Request) -> PlainTextResponse:
        session = request.session
        session.get("user")
        n = session.get("n", 0) + 1
        session["n"] = n
        return PlainTextResponse(str(n))

    routes = [Route("/login", login), Route("/read", read), Route("/modify", modify)]
    return Starlette(routes=routes, middleware=middleware)


class _Reply:
    """What an ASGI app sent back: the status, the headers and the body."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header_values(self, name: bytes) -> list[str]:
        return [v.decode("latin-1") for k, v in self.headers if k.lower() == name]


class AsgiSite(OwnLoop, Site):
    """An ASGI app called directly, as an ASGI server would, in an event loop of its own.

    The scope is what a server gives a ``GET`` from ``http://testserver``. The site's loop
    is made when it is built: the app's Redis clients are built in it (:meth:`build`) and
    every request is one ``loop.run_until_complete``.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.app: Any = None
        self.headers: list[tuple[bytes, bytes]] = []

    def serve(self, app: Any) -> None:
        self.app = app

    async def _get(self, path: str, headers: list[tuple[bytes, bytes]]) -> _Reply:
        return _Reply(*await asgi_get(self.app, path, [(b"host", b"testserver"), *headers]))

    def login(self) -> None:
        response = self.run(self._get("/login", []))
        assert response.status == 200, response.status
        value = _cookie(response.header_values(b"set-cookie"), self.name)
        self.headers = [(b"cookie", f"{self.name}={value}".encode("latin-1"))]
        self.check()

    def read(self) -> Any:
        return self.run(self._get("/read", self.headers))

    def modify(self) -> Any:
        return self.run(self._get("/modify", self.headers))

    def _text(self, response: Any) -> str:
        assert response.status == 200, response.status
        return str(response.body.decode())
