"""The demo sites: one login and one cart across Django, Flask and Starlette; cached lookups
and cached pages that an edit refreshes, never serving one visitor's page to another; and
the launcher serving the three over HTTP.

Each app runs in process with its framework's test client against the shared test Redis;
the session cookie is copied by hand from one client to the next, as a browser would send
it to every port of 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
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

from django.test import Client, override_settings  # noqa: E402

from demo_sites import django_shop, flask_blog, starlette_api  # noqa: E402
from demo_sites.shared import COOKIE_NAME, POSTS, PRODUCTS, Catalog, DemoConfig  # noqa: E402
from rcache.objects import ObjectCache  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config(redis_server: Any, key_prefix: str) -> DemoConfig:
    return DemoConfig(
        url=redis_server.url, secret="demo-test-secret-0123456789abcdef", prefix=key_prefix
    )


@pytest.fixture
def cache(config: DemoConfig) -> Iterator[ObjectCache]:
    with ObjectCache.from_url(config.url, prefix=config.cache_prefix) as cache:
        yield cache


@pytest.fixture
def shop(cache: ObjectCache) -> Catalog:
    return Catalog("product", PRODUCTS, cache, delay=0)


@pytest.fixture
def blog(cache: ObjectCache) -> Catalog:
    return Catalog("post", POSTS, cache, delay=0)


@pytest.fixture
def django_client(config: DemoConfig, shop: Catalog) -> Iterator[Client]:
    with override_settings(**django_shop.settings_for(config, shop)):
        yield Client()


@pytest.fixture
def flask_client(config: DemoConfig, blog: Catalog) -> Iterator[Any]:
    app = flask_blog.make_app(config, blog)
    yield app.test_client(use_cookies=False)
    flask_blog.close(app)


@pytest.fixture
async def api(config: DemoConfig, shop: Catalog) -> AsyncIterator[httpx.AsyncClient]:
    app = starlette_api.make_app(config, shop)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def header(cookie: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE_NAME}={cookie}"}


def django_login(client: Client, name: str) -> str:
    response = client.post("/login", {"username": name})
    assert response.status_code == 302
    cookie: str = response.cookies[COOKIE_NAME].value
    assert "." in cookie  # the core's signed id
    return cookie


async def test_a_django_login_is_seen_by_flask_and_starlette(
    django_client: Client, flask_client: Any, api: httpx.AsyncClient
) -> None:
    cookie = django_login(django_client, "alice")

    page = flask_client.get("/", headers=header(cookie)).get_data(as_text=True)
    assert "signed in as <b>alice</b>" in page
    assert (await api.get("/api/whoami", headers=header(cookie))).json() == {"user": "alice"}
    landing = (await api.get("/", headers=header(cookie))).text
    assert "signed in as <b>alice</b>" in landing

    # Without the cookie nobody is signed in.
    assert "not signed in" in flask_client.get("/").get_data(as_text=True)
    assert (await api.get("/api/whoami")).json() == {"user": None}

    # Logging out on Flask logs out everywhere.
    response = flask_client.post("/logout", headers=header(cookie))
    assert response.status_code == 302
    assert (await api.get("/api/whoami", headers=header(cookie))).json() == {"user": None}
    assert "not signed in" in django_client.get("/", headers=header(cookie)).content.decode()


async def test_a_cart_filled_on_starlette_shows_in_django_and_flask(
    django_client: Client, flask_client: Any, api: httpx.AsyncClient
) -> None:
    cookie = django_login(django_client, "bob")
    response = await api.post("/api/cart", json={"product": "teapot"}, headers=header(cookie))
    assert response.json() == {"cart": ["teapot"]}
    response = await api.post("/api/cart", json={"product": "mug"}, headers=header(cookie))
    assert response.json() == {"cart": ["teapot", "mug"]}
    assert "set-cookie" not in response.headers  # the same session, the same cookie

    cart = django_client.get("/cart", headers=header(cookie)).content.decode()
    assert "Teapot" in cart and "Mug" in cart and "signed in as <b>bob</b>" in cart
    assert "cart: 2 items" in flask_client.get("/", headers=header(cookie)).get_data(as_text=True)

    # Django removes one; Starlette sees it.
    assert django_client.post("/cart/remove/teapot", headers=header(cookie)).status_code == 302
    response = await api.get("/api/cart", headers=header(cookie))
    assert response.json() == {"cart": ["mug"]}
    bad = await api.post("/api/cart", json={"product": "nope"}, headers=header(cookie))
    assert bad.status_code == 404


async def test_editing_a_product_refreshes_its_cached_lookup(
    django_client: Client, api: httpx.AsyncClient, shop: Catalog
) -> None:
    assert "Mug" in django_client.get("/products/mug/").content.decode()
    assert "Teapot" in django_client.get("/products/teapot/").content.decode()
    assert django_client.get("/products/mug/").status_code == 200
    assert (await api.get("/api/products/mug")).json()["name"] == "Mug"  # the same entry
    assert shop.computed == 2  # mug and teapot once each: the rest were cache hits

    response = django_client.post("/products/mug/edit", {"name": "Jumbo mug", "price": "9"})
    assert response.status_code == 302
    page = django_client.get("/products/mug/").content.decode()
    assert "Jumbo mug" in page and "9.00" in page
    assert (await api.get("/api/products/mug")).json()["name"] == "Jumbo mug"
    assert shop.computed == 3  # only the edited product was computed again
    assert "Teapot" in django_client.get("/products/teapot/").content.decode()
    assert shop.computed == 3
    assert django_client.get("/products/nope/").status_code == 404


def test_editing_a_post_refreshes_its_cached_lookup(flask_client: Any, blog: Catalog) -> None:
    assert "Hello, cache" in flask_client.get("/posts/hello").get_data(as_text=True)
    assert "Hello, cache" in flask_client.get("/posts/hello").get_data(as_text=True)
    assert blog.computed == 1

    response = flask_client.post("/posts/hello/edit", data={"title": "Hello again"})
    assert response.status_code == 302
    assert "Hello again" in flask_client.get("/posts/hello").get_data(as_text=True)
    assert blog.computed == 2
    assert flask_client.get("/posts/nope").status_code == 404


# -- the page caches ---------------------------------------------------------------------------


def x_cache(response: Any) -> str:
    return str(response.headers.get("X-Cache"))


async def test_product_pages_are_cached_until_an_edit_purges_them(
    django_client: Client, api: httpx.AsyncClient, shop: Catalog
) -> None:
    first = django_client.get("/products/mug/")
    assert x_cache(first) == "MISS" and "Mug" in first.content.decode()
    assert "Cache-Tag" not in first.headers  # the tags stay on the server
    again = django_client.get("/products/mug/")
    assert x_cache(again) == "HIT" and again.content == first.content
    assert x_cache(django_client.head("/products/mug/")) == "HIT"  # curl -I
    assert x_cache(django_client.get("/products/teapot/")) == "MISS"
    assert x_cache(await api.get("/api/products/mug")) == "MISS"
    assert x_cache(hit := await api.get("/api/products/mug")) == "HIT"
    assert hit.json()["name"] == "Mug"
    assert x_cache(await api.get("/api/products")) == "MISS"
    assert x_cache(await api.get("/api/products")) == "HIT"
    assert shop.computed == 3  # one lookup per product: the rest were cache hits

    # The edit purges product:mug in the key space the three sites share.
    django_client.post("/products/mug/edit", {"name": "Jumbo mug", "price": "9"})
    edited = django_client.get("/products/mug/")
    assert x_cache(edited) == "MISS"
    assert "Jumbo mug" in edited.content.decode() and "9.00" in edited.content.decode()
    assert x_cache(django_client.get("/products/mug/")) == "HIT"
    assert x_cache(django_client.get("/products/teapot/")) == "HIT"  # not purged
    response = await api.get("/api/products/mug")
    assert x_cache(response) == "MISS" and response.json()["name"] == "Jumbo mug"
    response = await api.get("/api/products")
    assert x_cache(response) == "MISS" and "Jumbo mug" in response.text
    assert shop.computed == 4
    # Per-visitor endpoints are left out of the API's page cache.
    assert x_cache(await api.get("/api/whoami")) == "BYPASS"


def test_post_pages_are_cached_until_an_edit_purges_them(flask_client: Any) -> None:
    assert x_cache(flask_client.get("/posts/hello")) == "MISS"
    hit = flask_client.get("/posts/hello")
    assert x_cache(hit) == "HIT" and "Hello, cache" in hit.get_data(as_text=True)
    assert x_cache(flask_client.get("/posts/tags")) == "MISS"
    assert x_cache(flask_client.get("/")) == "BYPASS"  # only post pages are cached

    flask_client.post("/posts/hello/edit", data={"title": "Hello again"})
    edited = flask_client.get("/posts/hello")
    assert x_cache(edited) == "MISS" and "Hello again" in edited.get_data(as_text=True)
    assert x_cache(flask_client.get("/posts/hello")) == "HIT"
    assert x_cache(flask_client.get("/posts/tags")) == "HIT"


async def test_signed_in_visitors_never_get_a_shared_page(
    django_client: Client, flask_client: Any, api: httpx.AsyncClient
) -> None:
    for _ in range(2):  # an anonymous copy in both caches
        django_client.get("/products/teapot/")
        flask_client.get("/posts/hello")
    alice, bob = django_login(Client(), "alice"), django_login(Client(), "bob")

    for name, cookie in (("alice", alice), ("bob", bob), ("alice", alice), ("bob", bob)):
        shop_page = django_client.get("/products/teapot/", headers=header(cookie))
        blog_page = flask_client.get("/posts/hello", headers=header(cookie))
        for response, text in (
            (shop_page, shop_page.content.decode()),
            (blog_page, blog_page.get_data(as_text=True)),
        ):
            assert x_cache(response) == "BYPASS", name  # rendered for them, never stored
            assert f"signed in as <b>{name}</b>" in text
            assert "not signed in" not in text

    # A visitor with only a cart sees their own cart size, not the anonymous copy.
    response = await api.post("/api/cart", json={"product": "mug"})
    cart_only = response.cookies[COOKIE_NAME]
    blog_page = flask_client.get("/posts/hello", headers=header(cart_only))
    assert x_cache(blog_page) == "BYPASS"
    assert "cart: 1 item" in blog_page.get_data(as_text=True)

    # Nobody's name (nor cart) reached the shared copies.
    shop_page = django_client.get("/products/teapot/")
    blog_page = flask_client.get("/posts/hello")
    assert x_cache(shop_page) == x_cache(blog_page) == "HIT"
    assert "cart: 0 items" in blog_page.get_data(as_text=True)
    for text in (shop_page.content.decode(), blog_page.get_data(as_text=True)):
        assert "not signed in" in text and "alice" not in text and "bob" not in text


# -- the launcher ------------------------------------------------------------------------------


def free_base_port() -> int:
    """A port p such that p, p+1 and p+2 are free on 127.0.0.1 (right now)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base > 65000:
            continue
        try:
            for port in (base, base + 1, base + 2):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no three consecutive free ports")


def wait_for(url: str, proc: subprocess.Popen[str], deadline: float) -> httpx.Response:
    while True:
        assert proc.poll() is None, "the demo exited early"
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_launcher_serves_the_three_sites_and_stops_on_sigterm(redis_server: Any) -> None:
    port = free_base_port()
    env = {**os.environ, "RCACHE_URL": redis_server.url, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "demo_sites", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        landing = wait_for(f"http://127.0.0.1:{port}/", proc, deadline)
        assert landing.status_code == 200
        assert f"http://127.0.0.1:{port + 1}/" in landing.text
        assert f"http://127.0.0.1:{port + 2}/" in landing.text
        blog = wait_for(f"http://127.0.0.1:{port + 1}/", proc, deadline)
        assert blog.status_code == 200 and "Blog" in blog.text
        shop = wait_for(f"http://127.0.0.1:{port + 2}/", proc, deadline)
        assert shop.status_code == 200 and "Teapot" in shop.text
        status = wait_for(f"http://127.0.0.1:{port}/status/", proc, deadline)
        assert status.status_code == 200 and "adapter status" in status.text

        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM, output
    assert f"http://127.0.0.1:{port + 2}/" in output
    assert "started a private redis-server" not in output  # RCACHE_URL was used
