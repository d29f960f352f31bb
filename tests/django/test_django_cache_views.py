"""rcache_django.cached on functions and views, through Django's test clients and real Redis."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import django
import pytest
from django.conf import settings

if not settings.configured:  # tests/django/conftest.py may have done it already
    settings.configure(
        SECRET_KEY="django-cache-tests-secret-key-0123456789abcdef0123",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()

from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.http import HttpResponse, JsonResponse  # noqa: E402
from django.middleware.csrf import get_token  # noqa: E402
from django.test import AsyncClient, Client, RequestFactory, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

from rcache.server import RedisServer  # noqa: E402
from rcache_django import cached  # noqa: E402

CALLS: Counter[str] = Counter()
FAST = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5, "retry_attempts": 1}


@cached(60)
def square(x: int) -> int:
    CALLS["square"] += 1
    return x * x


@cached(60, tags=lambda x: [f"n:{x}"])
async def asquare(x: int) -> int:
    CALLS["asquare"] += 1
    return x * x


@cached(0)
def never(x: int) -> int:
    CALLS["never"] += 1
    return x


@cached(60)
def page(request: Any) -> HttpResponse:
    CALLS["page"] += 1
    response = HttpResponse(f"page {CALLS['page']} {request.GET.urlencode()}")
    response["X-Made"] = "yes"
    response["Content-Type"] = "text/plain; charset=utf-8"
    return response


@cached(60)
async def apage(request: Any) -> HttpResponse:
    CALLS["apage"] += 1
    return HttpResponse(f"apage {CALLS['apage']}")


@cached(60)
def with_session(request: Any) -> HttpResponse:
    CALLS["with_session"] += 1
    return HttpResponse(f"hello {request.session.get('name', 'anonymous')}")


@cached(60)
def with_cookie(request: Any) -> HttpResponse:
    CALLS["with_cookie"] += 1
    response = HttpResponse("cookie")
    response.set_cookie("seen", "1")
    return response


@cached(60)
def with_csrf(request: Any) -> HttpResponse:
    CALLS["with_csrf"] += 1
    return HttpResponse(f'<input name="csrfmiddlewaretoken" value="{get_token(request)}">')


@cached(60)
def varying(request: Any) -> HttpResponse:
    CALLS["varying"] += 1
    response = HttpResponse(request.headers.get("Accept-Language", ""))
    response["Vary"] = "Accept-Language"
    return response


@cached(60)
def missing(request: Any) -> HttpResponse:
    CALLS["missing"] += 1
    return HttpResponse("no such thing", status=404)


@cached(60, key="item:{item_id}")
def item(request: Any, item_id: int) -> JsonResponse:
    CALLS["item"] += 1
    return JsonResponse({"item": item_id})


@cached(60, cache="locmem")
def wrong_backend(request: Any) -> HttpResponse:
    return HttpResponse("never")


urlpatterns = [
    path("page/", page),
    path("apage/", apage),
    path("session/", with_session),
    path("cookie/", with_cookie),
    path("csrf/", with_csrf),
    path("varying/", varying),
    path("missing/", missing),
    path("item/<int:item_id>/", item),
    path("wrong/", wrong_backend),
]


@pytest.fixture
def use_redis(key_prefix: str) -> Iterator[Callable[..., None]]:
    """Return ``use(url, **options)``: CACHES, urls and middleware for this module's views."""
    overrides: list[Any] = []

    def use(url: str, **options: Any) -> None:
        override = override_settings(
            CACHES={
                "default": {
                    "BACKEND": "rcache_django.RedisCache",
                    "LOCATION": url,
                    "KEY_PREFIX": "t" + key_prefix.strip(":").replace(":", ""),
                    "OPTIONS": options,
                },
                "locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            },
            ROOT_URLCONF=__name__,
            MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
            SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        )
        override.enable()
        overrides.append(override)

    CALLS.clear()
    yield use
    for override in reversed(overrides):
        override.disable()


@pytest.fixture
def client(use_redis: Callable[..., None], redis_url: str) -> Client:
    use_redis(redis_url)
    return Client()


def test_function_results_are_cached(client: Client) -> None:
    assert [square(3), square(3), square(4)] == [9, 9, 16]
    assert CALLS["square"] == 2
    assert square.invalidate(3) is True
    assert square(3) == 9 and CALLS["square"] == 3
    assert [never(1), never(1)] == [1, 1] and CALLS["never"] == 2


async def test_coroutine_results_are_cached(client: Client) -> None:
    assert [await asquare(5), await asquare(5)] == [25, 25]
    assert CALLS["asquare"] == 1
    assert await asquare.invalidate(5) is True
    assert await asquare(5) == 25 and CALLS["asquare"] == 2


def test_view_is_cached_by_url(client: Client) -> None:
    first = client.get("/page/?b=2&a=1")
    again = client.get("/page/?a=1&b=2")  # same canonical URL
    other = client.get("/page/?a=3")
    assert first.status_code == again.status_code == other.status_code == 200
    assert first.content == again.content == b"page 1 b=2&a=1"
    assert other.content == b"page 2 a=3"
    assert again["X-Made"] == "yes" and again["Content-Type"] == "text/plain; charset=utf-8"
    assert CALLS["page"] == 2
    assert client.head("/page/?a=3").status_code == 200 and CALLS["page"] == 2
    assert client.post("/page/?a=3").content == b"page 3 a=3"  # POST is never cached
    assert client.get("/page/", headers={"Cache-Control": "no-store"}).content.startswith(b"page 4")


def test_view_invalidate_takes_a_request(client: Client) -> None:
    client.get("/page/")
    client.get("/page/")
    assert page.invalidate(RequestFactory().get("/page/")) is True
    client.get("/page/")
    assert CALLS["page"] == 2


def test_explicit_key_over_view_arguments(client: Client) -> None:
    assert client.get("/item/7/").json() == {"item": 7}
    assert client.get("/item/7/?ignored=1").json() == {"item": 7}
    assert CALLS["item"] == 1
    assert item.invalidate(RequestFactory().get("/"), item_id=7) is True


@pytest.mark.parametrize(
    "url, name",
    [
        ("/session/", "with_session"),
        ("/cookie/", "with_cookie"),
        ("/csrf/", "with_csrf"),
        ("/varying/", "varying"),
        ("/missing/", "missing"),
    ],
)
def test_personal_or_odd_responses_are_not_stored(client: Client, url: str, name: str) -> None:
    first = client.get(url)
    second = client.get(url)
    assert first.status_code == second.status_code
    assert CALLS[name] == 2


def test_async_view_through_the_sync_client(client: Client) -> None:
    # Each request runs the async view on a fresh event loop: a cache per loop.
    assert client.get("/apage/").content == client.get("/apage/").content == b"apage 1"
    assert CALLS["apage"] == 1


async def test_async_view_through_the_async_client(client: Client) -> None:
    aclient = AsyncClient()
    first = await aclient.get("/apage/")
    second = await aclient.get("/apage/")
    assert first.content == second.content == b"apage 1"


def test_views_still_answer_when_redis_is_down(
    use_redis: Callable[..., None], fresh_server: RedisServer
) -> None:
    use_redis(fresh_server.url, **FAST)
    client = Client()
    assert client.get("/page/").status_code == 200
    fresh_server.stop()
    for _ in range(3):
        response = client.get("/page/")
        assert response.status_code == 200 and response.content.startswith(b"page")
    assert client.get("/apage/").status_code == 200
    assert square(2) == 4 and square(2) == 4 and CALLS["square"] == 2


def test_needs_an_rcache_backend(client: Client) -> None:
    with pytest.raises(ImproperlyConfigured, match="rcache_django.RedisCache"):
        client.get("/wrong/")
