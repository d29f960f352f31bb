"""The Flask dashboard blueprint against real Redis, through Flask's test client."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from dashboard_sources import Sources
from flask import Flask, Request

from rcache.adapter import RedisAdapter
from rcache_flask.dashboard import dashboard_blueprint

REMOTE = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture
def sources(redis_server: Any, key_prefix: str) -> Iterator[Sources]:
    made = Sources(redis_server.url, key_prefix)
    yield made
    made.close()


@pytest.fixture
def app_with(sources: Sources) -> Callable[..., Flask]:
    """Return ``make(adapter=None, **options) -> Flask``: an app with the blueprint."""

    def make(adapter: RedisAdapter | None = None, **options: Any) -> Flask:
        app = Flask(__name__)
        app.register_blueprint(dashboard_blueprint(sources.metrics, adapter, **options))

        @app.get("/")
        def home() -> str:
            return "home"

        return app

    return make


def test_the_page_lists_the_sources_and_the_server_for_a_loopback_client(
    app_with: Callable[..., Flask], sources: Sources
) -> None:
    app = app_with(sources.cache.adapter, title="blog cache")
    response = app.test_client().get("/rcache/")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    assert "<h1>blog cache</h1>" in page
    assert "<td>catalog</td>" in page and "<td>logins</td>" in page
    assert "50.0 %" in page  # one hit, one miss
    version = sources.cache.adapter.execute("INFO", "server")["redis_version"]
    assert f"<dt>version</dt><dd>{version} (standalone)</dd>" in page
    assert "Redis unreachable" not in page
    assert app.test_client().get("/").get_data(as_text=True) == "home"  # the app is untouched


def test_allow_false_gives_403_and_allow_sees_the_request(
    app_with: Callable[..., Flask],
) -> None:
    seen: list[Request] = []

    def deny(request: Request) -> bool:
        seen.append(request)
        return False

    client = app_with(allow=deny).test_client()
    for path in ("/rcache/", "/rcache/metrics", "/rcache/json"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.get_data(as_text=True)
        assert "catalog" not in text and "allow=" in text
    assert seen and isinstance(seen[0], Request) and seen[0].path == "/rcache/"


def test_the_default_denies_a_remote_client_and_allow_can_admit_it(
    app_with: Callable[..., Flask],
) -> None:
    response = app_with().test_client().get("/rcache/", environ_base=REMOTE)
    assert response.status_code == 403
    assert response.headers["Cache-Control"] == "no-store"
    assert "catalog" not in response.get_data(as_text=True)

    admitted = app_with(allow=lambda request: True).test_client()
    assert admitted.get("/rcache/", environ_base=REMOTE).status_code == 200


def test_the_default_denies_loopback_requests_that_came_through_a_proxy(
    app_with: Callable[..., Flask],
) -> None:
    client = app_with().test_client()
    assert client.get("/rcache/", headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 403
    assert client.get("/rcache/").status_code == 200


def test_metrics_is_prometheus_text(app_with: Callable[..., Flask]) -> None:
    response = app_with().test_client().get("/rcache/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data(as_text=True)
    assert re.search(r'^rcache_hits_total\{source="catalog"\} 1$', text, re.M)


def test_json_parses_and_holds_the_snapshot_and_the_server(
    app_with: Callable[..., Flask], sources: Sources
) -> None:
    response = app_with(sources.cache.adapter).test_client().get("/rcache/json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    document = json.loads(response.get_data())
    assert [s["name"] for s in document["snapshot"]["sources"]] == ["catalog", "logins"]
    assert document["server"]["redis_version"] and document["server_error"] is None


def test_an_unreachable_redis_gives_the_page_with_the_reason(
    app_with: Callable[..., Flask],
) -> None:
    adapter = RedisAdapter.from_url("redis://127.0.0.1:1", retry_attempts=1)
    try:
        client = app_with(adapter).test_client()
        response = client.get("/rcache/")
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        page = response.get_data(as_text=True)
        assert re.search(r"Redis unreachable: \w+: ", page)
        assert "<td>catalog</td>" in page
        document = client.get("/rcache/json").get_json()
        assert document["server"] is None and document["server_error"]
    finally:
        adapter.close()


def test_prefix_methods_and_refresh(app_with: Callable[..., Flask]) -> None:
    client = app_with(url_prefix="/ops/cache", refresh=0, name="ops").test_client()
    page = client.get("/ops/cache/")
    assert page.status_code == 200
    assert 'http-equiv="refresh"' not in page.get_data(as_text=True)
    posted = client.post("/ops/cache/")
    assert posted.status_code == 405 and posted.headers["Allow"] == "GET, HEAD"
    assert posted.headers["Cache-Control"] == "no-store"
    assert client.get("/rcache/").status_code == 404
