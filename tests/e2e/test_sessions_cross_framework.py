"""One session, three frameworks: Django, Flask and Starlette share a login.

The three apps use one store configuration (the same Redis, key prefix, secret key,
cookie name and lifetimes). A session created by a login in Django is read and updated by
Flask and by Starlette with the very same cookie (copied between their test clients), and
what each wrote is visible to the others. Rotation in one framework and logout in another
hold everywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from http.cookies import SimpleCookie
from typing import Any

import django
import httpx
import pytest
from django.conf import settings

if not settings.configured:
    settings.configure(
        SECRET_KEY="placeholder-secret-key-for-the-e2e-settings-0123",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[],
        DATABASES={},
        MIDDLEWARE=["rcache_django.sessions.SessionMiddleware"],
        SESSION_ENGINE="rcache_django.sessions",
        USE_TZ=True,
    )
    django.setup()

import flask  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import path  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from rcache.sessions import AsyncSessionStore, SessionConfig, SessionStore  # noqa: E402
from rcache_asgi.sessions import SessionMiddleware, flush_session  # noqa: E402
from rcache_flask.sessions import RCacheSessionInterface  # noqa: E402

SECRET = "one-secret-for-all-three-frameworks-0123456789"
COOKIE = "rc_session"
LIFETIME = 14 * 24 * 3600  # Django's SESSION_COOKIE_AGE default: its absolute lifetime


# -- the Django app ----------------------------------------------------------------------------


def django_login(request: Any, name: str) -> JsonResponse:
    request.session.cycle_key()
    request.session["user"] = name
    request.session["visits"] = 1
    return JsonResponse({"user": name})


def django_read(request: Any) -> JsonResponse:
    return JsonResponse(dict(request.session.items()))


urlpatterns = [
    path("django/login/<str:name>/", django_login),
    path("django/read/", django_read),
]


# -- the Flask app -----------------------------------------------------------------------------


def make_flask(store: SessionStore) -> flask.Flask:
    app = flask.Flask(__name__)
    app.session_interface = RCacheSessionInterface(store)

    @app.get("/flask/visit")
    def visit() -> Any:
        session = flask.session
        session["visits"] = session.get("visits", 0) + 1
        session["flask"] = "yes"
        return flask.jsonify(dict(session.items()))

    @app.get("/flask/regenerate")
    def regenerate() -> Any:
        flask.session.regenerate()  # type: ignore[attr-defined]
        return flask.jsonify(dict(flask.session.items()))

    return app


# -- the Starlette app -------------------------------------------------------------------------


async def asgi_visit(request: Request) -> Response:
    request.session["visits"] = request.session.get("visits", 0) + 1
    request.session["asgi"] = "yes"
    return JSONResponse(dict(request.session.items()))


async def asgi_logout(request: Request) -> Response:
    await flush_session(request.scope)
    return JSONResponse({})


def make_starlette(store: AsyncSessionStore) -> Starlette:
    return Starlette(
        routes=[Route("/asgi/visit", asgi_visit), Route("/asgi/logout", asgi_logout)],
        middleware=[Middleware(SessionMiddleware, store=store)],
    )


# -- the shared configuration ------------------------------------------------------------------


@pytest.fixture
def prefix(key_prefix: str) -> str:
    return "t" + key_prefix.strip(":").replace(":", "")


@pytest.fixture
def config(prefix: str) -> SessionConfig:
    return SessionConfig(
        secret_keys=[SECRET],
        cookie_name=COOKIE,
        prefix=prefix,
        secure=False,
        idle_timeout=LIFETIME,
        absolute_lifetime=LIFETIME,
    )


@pytest.fixture
def django_site(redis_server: Any, prefix: str) -> Iterator[None]:
    with override_settings(
        SECRET_KEY=SECRET,
        SECRET_KEY_FALLBACKS=[],
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_AGE=LIFETIME,
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["rcache_django.sessions.SessionMiddleware"],
        RCACHE_SESSIONS={"URL": redis_server.url, "OPTIONS": {"prefix": prefix}},
    ):
        yield


@pytest.fixture
def flask_app(redis_server: Any, config: SessionConfig) -> Iterator[flask.Flask]:
    store = SessionStore.from_url(redis_server.url, config)
    yield make_flask(store)
    store.close()


@pytest.fixture
async def starlette_client(
    redis_server: Any, config: SessionConfig
) -> AsyncIterator[httpx.AsyncClient]:
    store = AsyncSessionStore.from_url(redis_server.url, config)
    transport = httpx.ASGITransport(app=make_starlette(store))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await store.aclose()


def set_cookie(headers: list[str]) -> str | None:
    """The session cookie among Set-Cookie header values ("" = deleted), None if absent."""
    values = [SimpleCookie(h)[COOKIE].value for h in headers if COOKIE in SimpleCookie(h)]
    assert len(values) <= 1, values
    return values[0] if values else None


def django_get(url: str, cookie: str) -> Any:
    return Client().get(url, HTTP_COOKIE=f"{COOKIE}={cookie}")


def django_cookie(response: Any) -> str | None:
    morsel = response.cookies.get(COOKIE)
    return None if morsel is None else morsel.value


# -- the walk ----------------------------------------------------------------------------------


async def test_a_django_login_is_shared_with_flask_and_starlette(
    django_site: None,
    flask_app: flask.Flask,
    starlette_client: httpx.AsyncClient,
    redis_server: Any,
    prefix: str,
) -> None:
    flask_client = flask_app.test_client(use_cookies=False)

    # Django logs in: the cookie is the core's signed id.
    response = Client().get("/django/login/alice/")
    cookie = django_cookie(response)
    assert response.status_code == 200 and cookie and "." in cookie

    # Flask reads and updates that session; its cookie does not change.
    response = flask_client.get("/flask/visit", headers={"Cookie": f"{COOKIE}={cookie}"})
    assert response.json == {"user": "alice", "visits": 2, "flask": "yes"}
    assert set_cookie(response.headers.getlist("Set-Cookie")) is None

    # Starlette too.
    response = await starlette_client.get("/asgi/visit", headers={"cookie": f"{COOKIE}={cookie}"})
    assert response.json() == {"user": "alice", "visits": 3, "flask": "yes", "asgi": "yes"}
    assert set_cookie(response.headers.get_list("set-cookie")) is None

    # Django sees what Flask and Starlette wrote.
    response = django_get("/django/read/", cookie)
    assert response.json() == {"user": "alice", "visits": 3, "flask": "yes", "asgi": "yes"}

    # Flask rotates the id: the new cookie works in Django, the old one nowhere.
    response = flask_client.get("/flask/regenerate", headers={"Cookie": f"{COOKIE}={cookie}"})
    rotated = set_cookie(response.headers.getlist("Set-Cookie"))
    assert rotated and rotated != cookie
    assert django_get("/django/read/", rotated).json()["user"] == "alice"
    assert django_get("/django/read/", cookie).json() == {}
    response = await starlette_client.get("/asgi/visit", headers={"cookie": f"{COOKIE}={cookie}"})
    assert response.json() == {"visits": 1, "asgi": "yes"}  # a fresh session, not alice's

    # Starlette logs out: Django and Flask see an anonymous visitor.
    response = await starlette_client.get("/asgi/logout", headers={"cookie": f"{COOKIE}={rotated}"})
    assert set_cookie(response.headers.get_list("set-cookie")) == ""
    assert django_get("/django/read/", rotated).json() == {}
    response = flask_client.get("/flask/visit", headers={"Cookie": f"{COOKIE}={rotated}"})
    assert response.json == {"visits": 1, "flask": "yes"}

    with redis_server.client() as raw:  # what is left: only the two fresh anonymous sessions
        assert len(list(raw.scan_iter(match=f"{prefix}*"))) == 2
