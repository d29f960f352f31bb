"""The Django dashboard views, included under ``rcache/``, against real Redis."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import django
import pytest
from django.conf import settings

if not settings.configured:  # tests/django/conftest.py may have done it already
    settings.configure(
        SECRET_KEY="django-dashboard-tests-secret-key-0123456789abcdef",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()

from dashboard_sources import Sources  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import include, path, reverse  # noqa: E402

from rcache.adapter import RedisAdapter  # noqa: E402
from rcache_django.dashboard import dashboard_urls  # noqa: E402

REMOTE = "203.0.113.9"


class URLConf:
    """A URLconf made at run time (``ROOT_URLCONF`` may be any object with urlpatterns)."""

    def __init__(self, urlpatterns: list[Any]) -> None:
        self.urlpatterns = urlpatterns


@pytest.fixture
def sources(redis_server: Any, key_prefix: str) -> Iterator[Sources]:
    made = Sources(redis_server.url, key_prefix)
    yield made
    made.close()


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("home")


@pytest.fixture
def mount(sources: Sources) -> Iterator[Callable[..., Client]]:
    """Return ``mount(adapter=None, **options) -> Client``: the views under ``rcache/``."""
    overrides: list[Any] = []

    def use(adapter: RedisAdapter | None = None, **options: Any) -> Client:
        urls = dashboard_urls(sources.metrics, adapter, **options)
        conf = URLConf([path("", home), path("rcache/", include(urls))])
        override = override_settings(ROOT_URLCONF=conf, MIDDLEWARE=[])
        override.enable()
        overrides.append(override)
        return Client()

    yield use
    for override in reversed(overrides):
        override.disable()


def test_the_page_lists_the_sources_and_the_server_for_a_loopback_client(
    mount: Callable[..., Client], sources: Sources
) -> None:
    client = mount(sources.cache.adapter, title="shop cache")
    response = client.get("/rcache/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    assert "<h1>shop cache</h1>" in page
    assert "<td>catalog</td>" in page and "<td>logins</td>" in page
    assert "50.0 %" in page  # one hit, one miss
    version = sources.cache.adapter.execute("INFO", "server")["redis_version"]
    assert f"<dt>version</dt><dd>{version} (standalone)</dd>" in page
    assert "Redis unreachable" not in page
    assert reverse("rcache_dashboard_json") == "/rcache/json"
    assert client.get("/").content == b"home"


def test_allow_false_gives_403_and_allow_sees_the_request(
    mount: Callable[..., Client],
) -> None:
    seen: list[Any] = []

    def deny(request: HttpRequest) -> bool:
        seen.append(request)
        return False

    client = mount(allow=deny)
    for url in ("/rcache/", "/rcache/metrics", "/rcache/json"):
        response = client.get(url)
        assert response.status_code == 403, url
        assert response["Cache-Control"] == "no-store"
        assert response["Content-Type"].startswith("text/plain")
        assert b"catalog" not in response.content and b"is_staff" in response.content
    assert seen and isinstance(seen[0], HttpRequest) and seen[0].path == "/rcache/"


def test_the_default_denies_a_remote_client_and_allow_can_admit_it(
    mount: Callable[..., Client],
) -> None:
    response = mount().get("/rcache/", REMOTE_ADDR=REMOTE)
    assert response.status_code == 403
    assert response["Cache-Control"] == "no-store"
    assert b"catalog" not in response.content

    staff_only = mount(allow=lambda r: r.META.get("HTTP_X_STAFF") == "yes")
    assert (
        staff_only.get("/rcache/", REMOTE_ADDR=REMOTE, headers={"X-Staff": "yes"}).status_code
        == 200
    )
    assert staff_only.get("/rcache/").status_code == 403  # allow replaces the default


def test_the_default_denies_loopback_requests_that_came_through_a_proxy(
    mount: Callable[..., Client],
) -> None:
    client = mount()
    assert client.get("/rcache/", headers={"X-Forwarded-For": REMOTE}).status_code == 403
    assert client.get("/rcache/", headers={"X-Real-IP": REMOTE}).status_code == 403
    assert client.get("/rcache/").status_code == 200


def test_metrics_is_prometheus_text(mount: Callable[..., Client]) -> None:
    response = mount().get("/rcache/metrics")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response["Cache-Control"] == "no-store"
    text = response.content.decode()
    assert re.search(r'^rcache_hits_total\{source="catalog"\} 1$', text, re.M)


def test_json_parses_and_holds_the_snapshot_and_the_server(
    mount: Callable[..., Client], sources: Sources
) -> None:
    response = mount(sources.cache.adapter).get("/rcache/json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    document = json.loads(response.content)
    assert [s["name"] for s in document["snapshot"]["sources"]] == ["catalog", "logins"]
    assert document["server"]["redis_version"] and document["server_error"] is None


def test_an_unreachable_redis_gives_the_page_with_the_reason(
    mount: Callable[..., Client],
) -> None:
    adapter = RedisAdapter.from_url("redis://127.0.0.1:1", retry_attempts=1)
    try:
        client = mount(adapter)
        response = client.get("/rcache/")
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"
        page = response.content.decode()
        assert re.search(r"Redis unreachable: \w+: ", page)
        assert "<td>catalog</td>" in page
        document = json.loads(client.get("/rcache/json").content)
        assert document["server"] is None and document["server_error"]
    finally:
        adapter.close()


def test_methods_and_refresh(mount: Callable[..., Client]) -> None:
    client = mount(refresh=0)
    assert b'http-equiv="refresh"' not in client.get("/rcache/").content
    posted = client.post("/rcache/")
    assert posted.status_code == 405 and posted["Allow"] == "GET, HEAD"
    assert posted["Cache-Control"] == "no-store"
    head = client.head("/rcache/metrics")
    assert head.status_code == 200 and head["Cache-Control"] == "no-store"
