"""The ASGI dashboard, mounted in Starlette and on its own, against real Redis."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from demo_sites import status_site
from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.metrics import Metrics
from rcache.objects import AsyncObjectCache
from rcache.sessions import AsyncSessionStore, SessionConfig
from rcache_asgi.dashboard import Dashboard

SECRET = "asgi-dashboard-secret-0123456789abcdef"
CLOSED_PORT = "redis://127.0.0.1:1"
REMOTE = ("203.0.113.9", 5000)


class Sources:
    """An object cache and a session store on the test's Redis, registered in ``metrics``."""

    def __init__(self, url: str, prefix: str) -> None:
        self.cache = AsyncObjectCache.from_url(url, prefix=prefix)
        config = SessionConfig(secret_keys=[SECRET], prefix=prefix + "s:", secure=False)
        self.sessions = AsyncSessionStore.from_url(url, config)
        self.metrics = Metrics()
        self.metrics.add("catalog", self.cache)
        self.metrics.add("logins", self.sessions)

    async def aclose(self) -> None:
        await self.cache.aclose()
        await self.sessions.aclose()


@pytest.fixture
async def sources(redis_server: Any, key_prefix: str) -> AsyncIterator[Sources]:
    made = Sources(redis_server.url, key_prefix)
    await made.cache.set("k", 1)
    await made.cache.get("k")  # a hit
    await made.cache.get("nope")  # a miss
    yield made
    await made.aclose()


def mounted(dashboard: Dashboard) -> Starlette:
    return Starlette(routes=[Mount("/rcache", app=dashboard)])


async def get(
    app: Any, path: str, *, client: tuple[str, int] = ("127.0.0.1", 123), **kwargs: Any
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=client)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        return await c.request(kwargs.pop("method", "GET"), path, **kwargs)


async def test_the_page_lists_the_sources_and_the_server_for_a_loopback_client(
    sources: Sources,
) -> None:
    app = mounted(Dashboard(sources.metrics, sources.cache.adapter, title="shop cache"))
    response = await get(app, "/rcache/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    page = response.text
    assert "<h1>shop cache</h1>" in page
    assert "<td>catalog</td>" in page and "<td>logins</td>" in page
    assert "<h2>object cache</h2>" in page and "<h2>session store</h2>" in page
    assert "50.0 %" in page  # one hit, one miss
    version = (await sources.cache.adapter.execute("INFO", "server"))["redis_version"]
    assert f"<dt>version</dt><dd>{version} (standalone)</dd>" in page
    assert "Redis unreachable" not in page


async def test_a_sync_adapter_feeds_the_server_panel_from_a_thread(
    sources: Sources, redis_server: Any
) -> None:
    adapter = RedisAdapter.from_url(redis_server.url)
    try:
        response = await get(mounted(Dashboard(sources.metrics, adapter)), "/rcache/")
        assert response.status_code == 200
        assert "<dt>maxmemory policy</dt>" in response.text
        assert adapter.stats.round_trips == 1  # the INFO round trip went through it
    finally:
        adapter.close()


async def test_allow_false_gives_403_and_allow_sees_the_scope(sources: Sources) -> None:
    seen: list[Any] = []

    def deny(scope: Any) -> bool:
        seen.append(scope)
        return False

    app = mounted(Dashboard(sources.metrics, allow=deny))
    for path in ("/rcache/", "/rcache/metrics", "/rcache/json"):
        response = await get(app, path)
        assert response.status_code == 403, path
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-type"].startswith("text/plain")
        assert "catalog" not in response.text and "allow=" in response.text
    assert seen and seen[0]["type"] == "http" and seen[0]["client"] == ("127.0.0.1", 123)


async def test_the_default_denies_a_remote_client_and_allow_can_admit_it(
    sources: Sources,
) -> None:
    response = await get(mounted(Dashboard(sources.metrics)), "/rcache/", client=REMOTE)
    assert response.status_code == 403
    assert response.headers["cache-control"] == "no-store"
    assert "catalog" not in response.text

    admitted = mounted(Dashboard(sources.metrics, allow=lambda scope: True))
    assert (await get(admitted, "/rcache/", client=REMOTE)).status_code == 200


async def test_the_default_denies_loopback_requests_that_came_through_a_proxy(
    sources: Sources,
) -> None:
    app = mounted(Dashboard(sources.metrics))
    headers = {"X-Forwarded-For": "198.51.100.7"}
    assert (await get(app, "/rcache/", headers=headers)).status_code == 403


async def test_starlettes_testclient_is_not_loopback(sources: Sources) -> None:
    client = ("testclient", 50000)  # what starlette.testclient.TestClient reports
    assert (
        await get(mounted(Dashboard(sources.metrics)), "/rcache/", client=client)
    ).status_code == 403


async def test_metrics_is_prometheus_text(sources: Sources) -> None:
    response = await get(mounted(Dashboard(sources.metrics)), "/rcache/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert re.search(r'^rcache_hits_total\{source="catalog"\} 1$', response.text, re.M)
    assert "# TYPE rcache_round_trips_total counter" in response.text


async def test_json_parses_and_holds_the_snapshot_and_the_server(sources: Sources) -> None:
    app = mounted(Dashboard(sources.metrics, sources.cache.adapter))
    response = await get(app, "/rcache/json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    document = json.loads(response.content)
    names = [s["name"] for s in document["snapshot"]["sources"]]
    assert names == ["catalog", "logins"]
    assert document["server"]["redis_version"] and document["server_error"] is None


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_an_unreachable_redis_gives_the_page_with_the_reason(
    sources: Sources, kind: str
) -> None:
    adapter: RedisAdapter | AsyncRedisAdapter
    if kind == "sync":
        adapter = RedisAdapter.from_url(CLOSED_PORT, retry_attempts=1)
    else:
        adapter = AsyncRedisAdapter.from_url(CLOSED_PORT, retry_attempts=1)
    try:
        app = mounted(Dashboard(sources.metrics, adapter))
        response = await get(app, "/rcache/")
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        assert re.search(r"Redis unreachable: \w+: ", response.text)
        assert "<td>catalog</td>" in response.text

        document = (await get(app, "/rcache/json")).json()
        assert document["server"] is None and document["server_error"]
    finally:
        if isinstance(adapter, RedisAdapter):
            adapter.close()
        else:
            await adapter.aclose()


async def test_other_paths_and_methods_are_refused_without_caching(sources: Sources) -> None:
    app = mounted(Dashboard(sources.metrics))
    missing = await get(app, "/rcache/nope")
    assert missing.status_code == 404 and missing.headers["cache-control"] == "no-store"
    posted = await get(app, "/rcache/", method="POST")
    assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"
    assert posted.headers["cache-control"] == "no-store"
    head = await get(app, "/rcache/", method="HEAD")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 0


async def test_a_bare_app_honours_root_path(sources: Sources) -> None:
    dashboard = Dashboard(sources.metrics, refresh=0)
    transport = httpx.ASGITransport(app=dashboard, root_path="/ops/rcache")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        metrics = await c.get("/ops/rcache/metrics")
        page = await c.get("/ops/rcache/")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert page.status_code == 200 and 'http-equiv="refresh"' not in page.text


async def test_the_status_site_serves_its_dashboard_to_loopback_only(redis_server: Any) -> None:
    app = status_site.make_app(redis_server.url)
    async with app.router.lifespan_context(app):
        assert (await get(app, "/")).status_code == 200  # the existing pages still work
        assert (await get(app, "/api/status")).json()["ok"] is True
        page = await get(app, "/dashboard/")
        assert page.status_code == 200
        assert "<td>status</td>" in page.text and "<dt>version</dt>" in page.text
        metrics = await get(app, "/dashboard/metrics")
        assert 'rcache_round_trips_total{source="status"}' in metrics.text
        assert (await get(app, "/dashboard/", client=REMOTE)).status_code == 403
