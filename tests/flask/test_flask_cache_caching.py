"""Flask-Caching on rcache_flask.flask_caching.RCacheBackend, against real Redis."""

from __future__ import annotations

import pickle
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask_caching import Cache

from rcache.errors import ConfigurationError
from rcache.server import RedisServer
from rcache_flask.flask_caching import RCacheBackend

CALLS: Counter[str] = Counter()
FAST = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5, "retry_attempts": 1}
PWNED: list[int] = []


def _pwn() -> None:
    PWNED.append(1)


class Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (_pwn, ())


class Unpicklable:
    def __getstate__(self) -> Any:
        raise pickle.PickleError("not today")


class Site:
    """A Flask app using Flask-Caching the usual ways."""

    def __init__(self, url: str, prefix: str, options: dict[str, Any]) -> None:
        self.app = app = Flask(__name__)
        app.config.update(
            SECRET_KEY="flask-caching-tests-secret",
            CACHE_TYPE="rcache_flask.flask_caching.RCacheBackend",
            CACHE_REDIS_URL=url,
            CACHE_KEY_PREFIX=prefix,
            CACHE_DEFAULT_TIMEOUT=120,
            CACHE_OPTIONS=options,
        )
        self.cache = cache = Cache(app)

        @app.get("/page/")
        @cache.cached(timeout=60, query_string=True)
        def page() -> str:
            CALLS["page"] += 1
            return f"page {CALLS['page']}"

        @cache.memoize(60)
        def square(x: int) -> int:
            CALLS["square"] += 1
            return x * x

        self.square = square
        self.client = app.test_client()

    @property
    def backend(self) -> RCacheBackend:
        with self.app.app_context():
            backend = self.cache.cache
        assert isinstance(backend, RCacheBackend)
        return backend

    def close(self) -> None:
        self.backend.object_cache.close()


@pytest.fixture
def site_for(key_prefix: str) -> Iterator[Callable[..., Site]]:
    sites: list[Site] = []
    prefix = "t" + key_prefix.strip(":").replace(":", "")

    def make(url: str, **options: Any) -> Site:
        site = Site(url, prefix, options)
        sites.append(site)
        return site

    CALLS.clear()
    yield make
    for site in sites:
        site.close()


@pytest.fixture
def site(site_for: Callable[..., Site], redis_url: str) -> Site:
    return site_for(redis_url)


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[Any]:
    client = redis_server.client()
    yield client
    client.close()


def test_cache_type_path_builds_our_backend(site: Site) -> None:
    backend = site.backend
    assert backend.object_cache.key_space.prefix == site.app.config["CACHE_KEY_PREFIX"]
    assert backend.object_cache.codec.serializer.name == "pickle"
    assert backend.object_cache.codec.signed


def test_cached_view_and_memoize(site: Site) -> None:
    assert site.client.get("/page/?a=1").data == site.client.get("/page/?a=1").data
    assert site.client.get("/page/?a=2").data == b"page 2"
    assert CALLS["page"] == 2
    with site.app.app_context():
        assert site.square(4) == site.square(4) == 16
        site.cache.delete_memoized(site.square, 4)
        assert site.square(4) == 16
    assert CALLS["square"] == 2


def test_cachelib_api(site: Site, raw: Any) -> None:
    backend = site.backend
    space = f"{site.app.config['CACHE_KEY_PREFIX']}:1:"
    assert backend.set("a", {"x": 1}) is True and backend.get("a") == {"x": 1}
    assert 110_000 < raw.pttl(space + "a") <= 120_000  # CACHE_DEFAULT_TIMEOUT
    assert backend.add("a", 2) is False and backend.add("b", 2, timeout=30) is True
    assert 25_000 < raw.pttl(space + "b") <= 30_000
    assert backend.set("forever", 1, timeout=0) and raw.pttl(space + "forever") == -1
    assert backend.set("gone", 1, timeout=-1) and backend.get("gone") is None
    assert backend.get_many("a", "b", "nope") == [{"x": 1}, 2, None]
    assert backend.get_dict("a", "nope") == {"a": {"x": 1}, "nope": None}
    assert backend.set_many({"c": 3, "d": 4}) == ["c", "d"]
    assert backend.has("c") and not backend.has("nope")
    assert backend.inc("counter") == 1 and backend.inc("counter", 5) == 6
    assert backend.dec("counter", 2) == 4 and backend.get("counter") == 4
    assert backend.delete("c") is True and backend.delete("c") is False
    assert backend.delete_many("d", "nope") == ["d", "nope"] and backend.get("d") is None
    assert backend.clear() is True and backend.get("a") is None
    assert backend.get("forever") is None


def test_unpicklable_values_raise_pickle_errors(site: Site) -> None:
    with pytest.raises(pickle.PickleError, match="not today"):
        site.backend.set("bad", Unpicklable())


def test_forged_pickle_is_refused(site: Site, raw: Any) -> None:
    backend = site.backend
    backend.set("obj", {"safe": True})
    assert raw.get(backend.object_cache.make_key("obj"))[0] & 0x40  # signed
    raw.set(backend.object_cache.make_key("obj"), bytes([0x90]) + pickle.dumps(Evil()))
    assert backend.get("obj") is None
    assert PWNED == []


def test_json_serializer_option(site_for: Callable[..., Site], redis_url: str, raw: Any) -> None:
    backend = site_for(redis_url, serializer="json").backend
    backend.set("doc", {"a": 1})
    assert raw.get(backend.object_cache.make_key("doc")) == b'\x88{"a":1}'


def test_views_still_answer_when_redis_is_down(
    site_for: Callable[..., Site], fresh_server: RedisServer
) -> None:
    site = site_for(fresh_server.url, **FAST)
    assert site.client.get("/page/").status_code == 200
    fresh_server.stop()
    for _ in range(2):
        assert site.client.get("/page/").status_code == 200
    with site.app.app_context():
        assert site.square(3) == 9
    backend = site.backend
    assert backend.set("k", 1) is False and backend.get("k") is None
    assert backend.inc("k") is None


def test_missing_url_is_named() -> None:
    app = Flask(__name__)
    app.config.update(CACHE_TYPE="rcache_flask.flask_caching.RCacheBackend", SECRET_KEY="s")
    with pytest.raises(ConfigurationError, match="CACHE_REDIS_URL"):
        Cache(app)
