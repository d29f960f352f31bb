"""The Flask session interface through Flask's test client, against real Redis."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import flask_session_app
import pytest
from flask_harness import FAST, SECRET, Site

from rcache.adapter import RedisAdapter
from rcache.errors import ConfigurationError
from rcache.sessions import SessionConfig, SessionStore, cookie_value
from rcache_flask.sessions import RCacheSession, RCacheSessionInterface


def crash(server: Any) -> None:
    """Snapshot the data, then kill the server: start() brings it back with the data."""
    with server.client() as client:
        client.save()
    server.kill()


def test_login_sets_a_signed_cookie_and_reads_send_none(site: Site) -> None:
    cookie = site.login("alice")
    session_id = site.session_id(cookie)
    assert cookie.startswith(session_id + ".") and site.stored(cookie)

    response = site.get("/read", cookie)
    assert response.json == {"user": "alice"}
    assert site.cookie_of(response) is None  # read only: no Set-Cookie
    assert "Cookie" in response.headers["Vary"]

    response = site.get("/set/k/v", cookie)  # a change of the data keeps the same cookie
    assert response.status_code == 200 and site.cookie_of(response) is None
    assert site.get("/read", cookie).json == {"user": "alice", "k": "v"}


def test_pages_that_do_not_use_the_session_cost_no_round_trip(site: Site) -> None:
    cookie = site.login()
    before = site.store.adapter.stats.round_trips
    response = site.get("/untouched", cookie)
    assert response.status_code == 200
    assert site.store.adapter.stats.round_trips == before  # loaded lazily: never here
    assert site.cookie_of(response) is None
    assert "Vary" not in response.headers


def test_anonymous_readers_get_no_cookie_and_store_nothing(site: Site) -> None:
    response = site.get("/read")
    assert response.json == {}
    assert site.cookie_of(response) is None
    assert "Cookie" in response.headers["Vary"]
    assert list(site.raw.scan_iter(match=f"{site.store.config.prefix}*")) == []


def test_regenerate_on_login_deletes_the_old_id(site: Site) -> None:
    anonymous = site.cookie_of(site.get("/set/cart/42"))
    assert anonymous and site.stored(anonymous)

    logged_in = site.cookie_of(site.get("/login/bob", anonymous))
    assert logged_in and logged_in != anonymous
    assert not site.stored(anonymous) and site.stored(logged_in)
    assert site.get("/read", anonymous).json == {}
    assert site.get("/read", logged_in).json == {"cart": "42", "user": "bob"}


def test_concurrent_requests_changing_different_keys_both_persist(
    site: Site, hooks: dict[str, Callable[[], None]]
) -> None:
    cookie = site.login()
    hooks["after_load"] = threading.Barrier(2, timeout=5).wait
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda p: site.get(p, cookie), ["/set/a/1", "/set/b/2"]))
    assert [r.status_code for r in responses] == [200, 200]
    assert site.get("/read", cookie).json == {"user": "alice", "a": "1", "b": "2"}


def test_a_request_ending_after_logout_does_not_resurrect_the_session(
    site: Site, hooks: dict[str, Callable[[], None]]
) -> None:
    cookie = site.login()
    loaded, logged_out = threading.Event(), threading.Event()

    def pause() -> None:
        loaded.set()
        assert logged_out.wait(5)

    hooks["after_load"] = pause
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(site.get, "/set/x/1", cookie)
        assert loaded.wait(5)
        logout = site.get("/logout", cookie)
        logged_out.set()
        late = slow.result(timeout=10)

    assert site.cookie_of(logout) == ""  # a deletion cookie
    assert late.status_code == 200 and site.cookie_of(late) is None
    assert not site.stored(cookie)
    assert site.get("/read", cookie).json == {}


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda good, sid: good[:-2] + ("AA" if good[-2:] != "AA" else "BB"), id="sig"),
        pytest.param(lambda good, sid: sid, id="unsigned-live-id"),
        pytest.param(
            lambda good, sid: cookie_value(sid, SessionConfig(secret_keys=["another-key" * 4])),
            id="other-key",
        ),
        pytest.param(lambda good, sid: good + "x" * 10_000, id="oversized"),
        pytest.param(lambda good, sid: "not a session", id="garbage"),
    ],
)
def test_forged_or_oversized_cookies_get_a_fresh_session_not_an_error(
    site: Site, forge: Callable[[str, str], str]
) -> None:
    good = site.login("alice")
    sid = site.session_id(good)
    response = site.get("/set/k/v", forge(good, sid))
    assert response.status_code == 200
    fresh = site.cookie_of(response)
    assert fresh and site.session_id(fresh) != sid
    assert site.get("/read", fresh).json == {"k": "v"}
    assert site.get("/read", good).json == {"user": "alice"}


def test_a_change_inside_a_value_is_saved_once_marked_modified(site: Site) -> None:
    cookie = site.cookie_of(site.get("/append/a"))
    assert cookie
    assert site.get("/append/b", cookie).status_code == 200
    assert site.get("/read", cookie).json == {"cart": ["a", "b"]}


def test_a_failed_view_saves_nothing(site: Site) -> None:
    cookie = site.login()
    app = site.app
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = site.get("/crash", cookie)
    assert response.status_code == 500
    assert site.get("/read", cookie).json == {"user": "alice"}


def test_streamed_responses_carry_the_cookie_and_the_saved_session(site: Site) -> None:
    response = site.get("/stream")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "one,two,yes"
    cookie = site.cookie_of(response)
    assert cookie and site.get("/read", cookie).json == {"streamed": "yes"}


def test_redis_down_on_load_gives_an_anonymous_read_only_session(
    site_for: Callable[..., Site], fresh_server: Any
) -> None:
    site = site_for(fresh_server, **FAST)
    cookie = site.login("alice")
    crash(fresh_server)

    response = site.get("/read", cookie)
    assert response.status_code == 200 and response.json == {}
    assert site.cookie_of(response) is None  # the visitor's cookie survives the outage
    response = site.get("/set/k/v", cookie)
    assert response.status_code == 503
    assert site.cookie_of(response) is None

    fresh_server.start()
    deadline = time.monotonic() + 10
    while site.get("/read", cookie).json != {"user": "alice"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_redis_down_on_load_answers_503_when_configured(
    site_for: Callable[..., Site], fresh_server: Any
) -> None:
    site = site_for(fresh_server, on_load_error="raise", **FAST)
    cookie = site.login("alice")
    fresh_server.kill()
    response = site.get("/read", cookie)
    assert response.status_code == 503 and site.cookie_of(response) is None
    assert site.get("/untouched", cookie).status_code == 200
    assert site.get("/login/bob", cookie).status_code == 503  # regenerate needs the session


def test_redis_down_on_save_answers_503_from_the_apps_handler(
    site_for: Callable[..., Site],
    fresh_server: Any,
    hooks: dict[str, Callable[[], None]],
) -> None:
    site = site_for(fresh_server, **FAST)
    site.app.register_error_handler(503, lambda e: ("come back soon", 503))
    cookie = site.login("alice")
    hooks["after_load"] = fresh_server.kill  # loaded fine; gone by the time it saves

    response = site.get("/set/k/v", cookie)
    assert response.status_code == 503
    assert response.get_data(as_text=True) == "come back soon"
    assert site.cookie_of(response) is None
    hooks.clear()
    response = site.get("/set/k/v")  # creating a session fails the same way
    assert response.status_code == 503 and site.cookie_of(response) is None


def test_init_app_reads_the_apps_config(redis_server: Any, key_prefix: str) -> None:
    app = flask_session_app.make_app(
        RCACHE_SESSION_URL=redis_server.url,
        RCACHE_SESSION_PREFIX="t" + key_prefix.strip(":").replace(":", ""),
        RCACHE_SESSION_IDLE_TIMEOUT=600,
        RCACHE_SESSION_OPTIONS={"socket_timeout": 2.0},
        SESSION_COOKIE_NAME="sid",
        SECRET_KEY_FALLBACKS=["an-older-secret-key-0123456789"],
    )
    interface = RCacheSessionInterface()
    interface.init_app(app)
    store = interface.store_for(app)
    try:
        assert app.session_interface is interface
        assert store.config.cookie_name == "sid" and store.config.idle_ms == 600_000
        assert store.config.secure is False  # Flask's SESSION_COOKIE_SECURE default
        assert store.adapter.settings.socket_timeout == 2.0
        old = cookie_value("A" * 43, SessionConfig(secret_keys="an-older-secret-key-0123456789"))
        assert store.load_id_from_cookie(old) == "A" * 43  # fallback keys verify

        client = app.test_client()
        response = client.get("/login/ann")
        header = response.headers["Set-Cookie"]
        assert header.startswith("sid=") and "HttpOnly" in header and "Secure" not in header
        assert client.get("/read").json == {"user": "ann"}
        with client.session_transaction() as sess:  # Flask's own testing helper works
            assert isinstance(sess, RCacheSession) and sess["user"] == "ann"
            sess["extra"] = 1
        assert client.get("/read").json == {"user": "ann", "extra": 1}
    finally:
        store.close()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "RCACHE_SESSION_URL"),
        ({"RCACHE_SESSION_URL": "redis://x", "RCACHE_SESSION_COLOUR": "blue"}, "COLOUR"),
        ({"RCACHE_SESSION_URL": "redis://x", "RCACHE_SESSION_IDLE_TIMEOUT": 0}, "idle_timeout"),
    ],
)
def test_bad_config_is_reported(config: dict[str, Any], message: str) -> None:
    app = flask_session_app.make_app(**config)
    with pytest.raises(ConfigurationError, match=message):
        RCacheSessionInterface().init_app(app)


def test_the_interface_takes_a_store_or_an_adapter_and_a_config(redis_server: Any) -> None:
    config = SessionConfig(secret_keys=[SECRET])
    with RedisAdapter.from_url(redis_server.url) as adapter:
        interface = RCacheSessionInterface(adapter, config)
        app = flask_session_app.make_app()
        interface.init_app(app)
        assert interface.store_for(app).adapter is adapter
        with pytest.raises(ConfigurationError):
            RCacheSessionInterface(adapter)
        store = SessionStore(adapter, config)
        with pytest.raises(ConfigurationError):
            RCacheSessionInterface(store, SessionConfig(secret_keys=["other-key" * 4]))
    with pytest.raises(RuntimeError, match="init_app"):
        RCacheSessionInterface().store_for(flask_session_app.make_app())
