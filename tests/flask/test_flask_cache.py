"""rcache_flask.RCache against real Redis: config, @rc.cached on views and functions, outages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, jsonify, make_response, request, session
from flask.views import MethodView

from rcache.errors import ConfigurationError
from rcache.server import RedisServer
from rcache_flask import RCache

rc = RCache()  # one extension object for every app of these tests: it never stores one
CALLS: Counter[str] = Counter()
FAST = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5, "retry_attempts": 1}


@rc.cached(60)
def price(product_id: int) -> dict[str, int]:
    CALLS["price"] += 1
    return {"id": product_id, "cents": product_id * 100}


@rc.cached(60)
def page() -> Any:
    CALLS["page"] += 1
    response = make_response(f"page {CALLS['page']} {request.query_string.decode()}")
    response.headers["X-Made"] = "yes"
    return response


@rc.cached(60)
def data() -> Any:
    CALLS["data"] += 1
    return {"n": CALLS["data"]}


@rc.cached(60, key="item:{item_id}")
def item(item_id: int) -> Any:
    CALLS["item"] += 1
    return jsonify(item=item_id)


@rc.cached(60)
def with_session() -> str:
    CALLS["with_session"] += 1
    return f"hello {session.get('name', 'anonymous')}"


@rc.cached(60)
def with_cookie() -> Any:
    CALLS["with_cookie"] += 1
    response = make_response("cookie")
    response.set_cookie("seen", "1")
    return response


@rc.cached(60)
def varying() -> Any:
    CALLS["varying"] += 1
    return "hi", 200, {"Vary": "Accept-Language"}


@rc.cached(60)
def missing() -> Any:
    CALLS["missing"] += 1
    return "nothing here", 404


@rc.cached(60)
def decorated_inside() -> str:
    CALLS["decorated_inside"] += 1
    return "inner"


def outer(fn: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


class Thing(MethodView):
    decorators = [rc.cached(60)]

    def get(self, thing_id: int) -> str:
        CALLS["thing"] += 1
        return f"thing {thing_id}"


def build_app(url: str, prefix: str, **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        RCACHE_URL=url, RCACHE_PREFIX=prefix, SECRET_KEY="flask-cache-tests-secret", **config
    )
    rc.init_app(app)
    for name, view in [
        ("page", page),
        ("data", data),
        ("with_session", with_session),
        ("with_cookie", with_cookie),
        ("varying", varying),
        ("missing", missing),
    ]:
        app.add_url_rule(f"/{name}/", view_func=view, methods=["GET", "HEAD", "POST"])
    app.add_url_rule("/item/<int:item_id>/", view_func=item)
    app.add_url_rule("/inside/", view_func=outer(decorated_inside))
    app.add_url_rule("/thing/<int:thing_id>/", view_func=Thing.as_view("thing"))
    return app


@pytest.fixture
def make_app(key_prefix: str) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []
    prefix = "t" + key_prefix.strip(":").replace(":", "")

    def make(url: str, *, prefix: str = prefix, **config: Any) -> Flask:
        app = build_app(url, prefix, **config)
        apps.append(app)
        return app

    CALLS.clear()
    yield make
    for app in apps:
        app.extensions["rcache"].close()


@pytest.fixture
def app(make_app: Callable[..., Flask], redis_url: str) -> Flask:
    return make_app(redis_url)


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[Any]:
    client = redis_server.client()
    yield client
    client.close()


def test_config_builds_the_apps_cache(app: Flask, raw: Any) -> None:
    with app.app_context():
        assert rc.cache is app.extensions["rcache"]
        rc.cache.set("k", {"v": 1}, ttl=30)
        assert rc.cache.get("k") == {"v": 1}
        assert rc.cache.codec.serializer.name == "json"
    prefix = app.config["RCACHE_PREFIX"]
    assert 25_000 < raw.pttl(f"{prefix}:1:k") <= 30_000
    assert not hasattr(rc, "app") and not any(isinstance(v, Flask) for v in vars(rc).values())


def test_functions_are_cached_by_arguments(app: Flask, raw: Any) -> None:
    with app.app_context():
        assert price(3) == price(3) == {"id": 3, "cents": 300}
        assert price(4)["cents"] == 400
        assert CALLS["price"] == 2
        assert raw.exists(rc.cache.make_key(price.key_for(3))) == 1  # type: ignore[attr-defined]
        assert price.invalidate(3) is True  # type: ignore[attr-defined]
        price(3)
    with app.test_request_context("/page/"):
        price(3)  # a function call inside a request is still a function call
    assert CALLS["price"] == 3


def test_each_app_has_its_own_cache(make_app: Callable[..., Flask], redis_url: str) -> None:
    one = make_app(redis_url)
    two = make_app(redis_url, prefix=one.config["RCACHE_PREFIX"] + "two")
    with one.app_context():
        price(1)
    with two.app_context():
        price(1)
    with one.app_context():
        price(1)
    assert CALLS["price"] == 2


def test_views_are_cached_by_url(app: Flask) -> None:
    client = app.test_client()
    first = client.get("/page/?b=2&a=1")
    again = client.get("/page/?a=1&b=2")  # the same canonical URL
    other = client.get("/page/?a=3")
    assert first.status_code == again.status_code == other.status_code == 200
    assert first.data == again.data == b"page 1 b=2&a=1" and other.data == b"page 2 a=3"
    assert again.headers["X-Made"] == "yes" and again.mimetype == "text/html"
    assert client.head("/page/?a=3").status_code == 200 and CALLS["page"] == 2
    assert client.post("/page/?a=3").data == b"page 3 a=3"
    assert client.get("/data/").json == client.get("/data/").json == {"n": 1}
    assert client.get("/data/").headers["Content-Type"] == "application/json"


def test_view_forms(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/item/5/").json == client.get("/item/5/?x=1").json == {"item": 5}
    assert client.get("/inside/").data == client.get("/inside/").data == b"inner"
    assert client.get("/thing/2/").data == client.get("/thing/2/").data == b"thing 2"
    assert (CALLS["item"], CALLS["decorated_inside"], CALLS["thing"]) == (1, 1, 1)


def test_view_invalidate_in_a_request_context(app: Flask) -> None:
    client = app.test_client()
    client.get("/page/")
    with app.test_request_context("/page/"):
        assert page.invalidate() is True  # type: ignore[attr-defined]
    client.get("/page/")
    assert CALLS["page"] == 2


@pytest.mark.parametrize("name", ["with_session", "with_cookie", "varying", "missing"])
def test_personal_or_odd_responses_are_not_stored(app: Flask, name: str) -> None:
    client = app.test_client()
    first = client.get(f"/{name}/")
    second = client.get(f"/{name}/")
    assert first.status_code == second.status_code
    assert CALLS[name] == 2


def test_views_still_answer_when_redis_is_down(
    make_app: Callable[..., Flask], fresh_server: RedisServer
) -> None:
    app = make_app(fresh_server.url, RCACHE_OPTIONS=FAST)
    client = app.test_client()
    assert client.get("/page/").status_code == 200
    fresh_server.stop()
    for _ in range(3):
        response = client.get("/page/")
        assert response.status_code == 200 and response.data.startswith(b"page")
    with app.app_context():
        assert price(2)["cents"] == 200 and rc.cache.get("k", "default") == "default"


def test_pickle_is_signed_from_secret_key(make_app: Callable[..., Flask], raw: Any) -> None:
    app = make_app(raw_url(raw), RCACHE_SERIALIZER="pickle")
    with app.app_context():
        rc.cache.set("obj", {1, 2})
        assert rc.cache.get("obj") == {1, 2}
        assert raw.get(rc.cache.make_key("obj"))[0] & 0x40  # the header's "signed" bit


def raw_url(raw: Any) -> str:
    kwargs = raw.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/0"


@pytest.mark.parametrize(
    "config, message",
    [
        ({"RCACHE_URL": None}, "RCACHE_URL"),
        ({"RCACHE_SERIALIZER": "pickle", "SECRET_KEY": None}, "SECRET_KEY"),
        ({"RCACHE_OPTIONS": {"colour": "blue"}}, "colour"),
        ({"RCACHE_PREFIX": "2024"}, "integer segment"),
    ],
)
def test_bad_config_is_named(redis_url: str, config: dict[str, Any], message: str) -> None:
    app = Flask(__name__)
    app.config.update(RCACHE_URL=redis_url, SECRET_KEY="s")
    app.config.update(config)
    with pytest.raises(ConfigurationError, match=message):
        RCache(app)


def test_coroutine_functions_are_refused() -> None:
    async def view() -> str:
        return "x"

    with pytest.raises(TypeError, match="coroutine"):
        rc.cached(60)(view)


def test_needs_init_app(redis_url: str) -> None:
    app = Flask(__name__)
    with app.app_context(), pytest.raises(RuntimeError, match="init_app"):
        price(1)
