"""The Django session engine through Django's test client, against real Redis."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.cookies import SimpleCookie
from typing import Any

import pytest
from django.contrib.sessions.backends.base import UpdateError
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient, Client, override_settings
from django_harness import FAST, Engine

from rcache.sessions import SessionConfig, cookie_value
from rcache_django._sessions_stores import stores
from rcache_django.sessions import SessionStore

COOKIE = "sessionid"  # Django's SESSION_COOKIE_NAME


def get(path: str, cookie: str | None = None) -> Any:
    """GET ``path`` with a fresh client, sending ``cookie`` as the session cookie."""
    extra = {"HTTP_COOKIE": f"{COOKIE}={cookie}"} if cookie is not None else {}
    return Client().get(path, **extra)


def cookie_of(response: Any) -> str | None:
    """The session cookie the response sets ("" for a deletion), or None if it sets none."""
    morsel = response.cookies.get(COOKIE)
    return None if morsel is None else morsel.value


def login(name: str = "alice") -> str:
    response = get(f"/login/{name}/")
    assert response.status_code == 200
    cookie = cookie_of(response)
    assert cookie
    return cookie


def crash(server: Any) -> None:
    """Snapshot the data, then kill the server: start() brings it back with the data."""
    with server.client() as client:
        client.save()
    server.kill()


def wait_until_back(cookie: str, expected: dict[str, Any]) -> None:
    deadline = time.monotonic() + 10
    while (response := get("/read/", cookie)).json() != expected:
        assert time.monotonic() < deadline, response.content
        time.sleep(0.05)


def test_login_sets_a_signed_cookie_for_a_stored_session(engine: Engine) -> None:
    cookie = login("alice")
    session_id = engine.session_id(cookie)  # the cookie is <id>.<signature>
    assert cookie.startswith(session_id + ".") and len(session_id) == 43
    assert engine.stored(cookie)

    response = get("/read/", cookie)
    assert response.json() == {"user": "alice"}
    assert cookie_of(response) is None  # read only: no Set-Cookie
    assert "Cookie" in response.headers["Vary"]

    response = get("/set/k/v/", cookie)  # a change of the data keeps the same key
    assert response.status_code == 200 and cookie_of(response) is None
    assert get("/read/", cookie).json() == {"user": "alice", "k": "v"}


def test_pages_that_do_not_use_the_session_neither_vary_nor_set_cookies(engine: Engine) -> None:
    cookie = login()
    response = get("/untouched/", cookie)
    assert response.status_code == 200
    assert cookie_of(response) is None
    assert "Vary" not in response.headers


def test_anonymous_readers_get_no_cookie_and_store_nothing(engine: Engine) -> None:
    response = get("/read/")
    assert response.json() == {}
    assert cookie_of(response) is None
    assert "Cookie" in response.headers["Vary"]
    assert list(engine.raw.scan_iter(match=f"{engine.prefix}*")) == []


def test_rotation_on_login_deletes_the_old_id(engine: Engine) -> None:
    anonymous = cookie_of(get("/set/cart/42/"))
    assert anonymous and engine.stored(anonymous)

    response = get("/login/bob/", anonymous)
    logged_in = cookie_of(response)
    assert logged_in and logged_in != anonymous
    assert not engine.stored(anonymous) and engine.stored(logged_in)
    assert get("/read/", anonymous).json() == {}  # the old id no longer works
    assert get("/read/", logged_in).json() == {"cart": "42", "user": "bob"}


def test_concurrent_requests_changing_different_keys_both_persist(
    engine: Engine, hooks: dict[str, Callable[[], None]]
) -> None:
    cookie = login()
    both_loaded = threading.Barrier(2, timeout=5)
    hooks["after_load"] = both_loaded.wait  # each saves only after both have loaded

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda p: get(p, cookie), ["/set/a/1/", "/set/b/2/"]))
    assert [r.status_code for r in responses] == [200, 200]
    assert get("/read/", cookie).json() == {"user": "alice", "a": "1", "b": "2"}


def test_a_request_ending_after_logout_does_not_resurrect_the_session(
    engine: Engine, hooks: dict[str, Callable[[], None]]
) -> None:
    cookie = login()
    loaded, logged_out = threading.Event(), threading.Event()

    def pause() -> None:
        loaded.set()
        assert logged_out.wait(5)

    hooks["after_load"] = pause
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(get, "/set/x/1/", cookie)
        assert loaded.wait(5)
        logout = get("/logout/", cookie)
        logged_out.set()
        late = slow.result(timeout=10)

    assert cookie_of(logout) == ""  # Django deletes the cookie of an emptied session
    assert late.status_code == 400  # SessionInterrupted: Django's answer to this race
    assert cookie_of(late) is None
    assert not engine.stored(cookie)
    assert get("/read/", cookie).json() == {}


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
    engine: Engine, forge: Callable[[str, str], str]
) -> None:
    good = login("alice")
    sid = engine.session_id(good)
    response = get("/set/k/v/", forge(good, sid))
    assert response.status_code == 200
    fresh = cookie_of(response)
    assert fresh and engine.session_id(fresh) != sid
    assert get("/read/", fresh).json() == {"k": "v"}
    assert get("/read/", good).json() == {"user": "alice"}  # the real session is untouched


def test_a_change_inside_a_value_is_saved_once_marked_modified(engine: Engine) -> None:
    cookie = cookie_of(get("/append/a/"))
    assert cookie
    assert get("/append/b/", cookie).status_code == 200
    assert get("/read/", cookie).json() == {"cart": ["a", "b"]}


def test_a_change_inside_a_value_keeps_a_concurrent_change_of_another_key(
    engine: Engine, hooks: dict[str, Callable[[], None]]
) -> None:
    cookie = cookie_of(get("/append/a/"))
    assert cookie
    both_loaded = threading.Barrier(2, timeout=5)
    hooks["after_load"] = both_loaded.wait
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda p: get(p, cookie), ["/append/b/", "/set/k/v/"]))
    assert [r.status_code for r in responses] == [200, 200]
    assert get("/read/", cookie).json() == {"cart": ["a", "b"], "k": "v"}


def test_set_expiry_in_seconds_shortens_the_idle_timeout(engine: Engine) -> None:
    cookie = login()
    assert get("/expire/60/", cookie).json() == {"expiry": 60}
    assert 0 < engine.raw.pttl(engine.key(cookie)) <= 60_000
    assert get("/read/", cookie).json()["user"] == "alice"
    # Loading slides the expiry; the custom, shorter one still holds afterwards.
    assert 0 < engine.raw.pttl(engine.key(cookie)) <= 60_000


def test_set_expiry_with_a_deadline_and_in_the_past(engine: Engine) -> None:
    session = SessionStore()
    session["user"] = "alice"
    session.set_expiry(timedelta(seconds=30))
    session.save()
    key = engine.key(session.session_key)
    assert 0 < engine.raw.pttl(key) <= 30_000
    assert SessionStore(session.session_key)["user"] == "alice"

    session.set_expiry(-1)  # "expired": the save deletes it
    session.save()
    assert not engine.raw.exists(key)
    assert SessionStore(session.session_key).load() == {}


@override_settings(SESSION_COOKIE_AGE=600)
def test_cookie_max_age_is_what_is_left_of_the_absolute_lifetime(engine: Engine) -> None:
    cookie = login("alice")
    key = engine.key(cookie)
    created = int(engine.raw.hget(key, b"\x00created"))
    engine.raw.hset(key, b"\x00created", created - 100_000)  # created 100 s earlier
    loaded = SessionStore(cookie)
    assert loaded["user"] == "alice"
    assert 490 <= loaded.get_expiry_age() <= 500  # not SESSION_COOKIE_AGE

    response = get("/login/bob/", cookie)  # the rotated cookie lives as long as the session
    assert 490 <= int(response.cookies[COOKIE]["max-age"]) <= 500


def test_save_refuses_to_recreate_a_deleted_session(engine: Engine) -> None:
    session = SessionStore()
    session["a"] = 1
    session.save()
    SessionStore(session.session_key).delete()
    session["a"] = 2
    with pytest.raises(UpdateError):
        session.save()
    assert not engine.stored(session.session_key)


def test_flush_deletes_the_session_even_when_it_was_never_loaded(engine: Engine) -> None:
    cookie = login("alice")
    session = SessionStore(cookie)
    session.flush()
    assert session.session_key is None
    assert not engine.stored(cookie)


@override_settings(MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"])
def test_the_engine_works_under_djangos_own_middleware(engine: Engine) -> None:
    cookie = login("alice")
    assert get("/read/", cookie).json() == {"user": "alice"}
    response = get("/set/k/v/", cookie)
    assert cookie_of(response) == cookie  # Django re-sends the cookie on every change
    assert get("/read/", cookie).json() == {"user": "alice", "k": "v"}


def test_keys_signed_with_a_fallback_secret_still_load(engine: Engine) -> None:
    old_key, new_key = "old-secret-key-" * 3, "new-secret-key-" * 3
    with override_settings(SECRET_KEY=old_key):
        old = login("alice")
    with override_settings(SECRET_KEY=new_key, SECRET_KEY_FALLBACKS=[old_key]):
        assert get("/read/", old).json() == {"user": "alice"}
        new = login("bob")
        assert new.rsplit(".", 1)[1] != old.rsplit(".", 1)[1]
    with override_settings(SECRET_KEY=new_key):  # the old key retired
        assert get("/read/", old).json() == {}
        assert get("/read/", new).json() == {"user": "bob"}


def test_redis_down_on_load_gives_an_anonymous_read_only_session(
    engine_for: Callable[..., Engine], fresh_server: Any
) -> None:
    engine_for(fresh_server, **FAST)
    cookie = login("alice")
    crash(fresh_server)

    response = get("/read/", cookie)
    assert response.status_code == 200 and response.json() == {}
    assert cookie_of(response) is None  # the visitor's cookie survives the outage
    response = get("/set/k/v/", cookie)
    assert response.status_code == 503  # writing the stand-in would clobber the real one
    assert cookie_of(response) is None

    fresh_server.start()
    wait_until_back(cookie, {"user": "alice"})


def test_redis_down_on_load_answers_503_when_configured(
    engine_for: Callable[..., Engine], fresh_server: Any
) -> None:
    engine_for(fresh_server, on_load_error="raise", **FAST)
    cookie = login("alice")
    fresh_server.kill()

    response = get("/read/", cookie)
    assert response.status_code == 503
    assert cookie_of(response) is None
    assert get("/untouched/", cookie).status_code == 200  # no session, no Redis needed
    assert get("/read/").json() == {}  # no cookie: nothing to load


def test_redis_down_on_save_answers_503_without_a_cookie(
    engine_for: Callable[..., Engine],
    fresh_server: Any,
    hooks: dict[str, Callable[[], None]],
) -> None:
    engine_for(fresh_server, **FAST)
    cookie = login("alice")
    hooks["after_load"] = fresh_server.kill  # loaded fine; gone by the time it saves

    response = get("/set/k/v/", cookie)
    assert response.status_code == 503
    assert cookie_of(response) is None
    hooks.clear()
    response = get("/login/bob/")  # creating a session fails the same way
    assert response.status_code == 503
    assert cookie_of(response) is None


async def test_async_views_use_the_asyncio_store_of_their_loop(engine: Engine) -> None:
    client = AsyncClient()
    response = await client.get("/alogin/ann/")
    cookie = cookie_of(response)
    assert response.status_code == 200 and cookie

    client.cookies = SimpleCookie({COOKIE: cookie})
    response = await client.get("/aset/k/v/")
    assert response.status_code == 200
    assert cookie_of(response) is None
    response = await client.get("/aread/")
    assert response.json() == {"user": "ann", "k": "v"}
    assert asyncio.get_running_loop() in stores._async  # no thread hop to the blocking store


def test_each_event_loop_gets_a_store_that_closes_with_the_loop(engine: Engine) -> None:
    async def use() -> Any:
        session = SessionStore()
        await session.aset("k", 1)
        await session.asave()
        assert await session.aexists(session.session_key)
        return await stores.async_()

    first, second = asyncio.run(use()), asyncio.run(use())
    assert first is not second
    for store in (first, second):
        adapter = store.adapter
        assert adapter.stats.round_trips > 0
        # The loop's end closed the adapter: its transport holds no connection any more.
        assert adapter._transport is not None and adapter._transport.connections == 0


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        (None, "needs RCACHE_SESSIONS"),
        ({"URL": "redis://x", "CACHE": "default"}, "unknown RCACHE_SESSIONS key"),
        ({"URL": "redis://x", "OPTIONS": {"samesite": "Lax"}}, "SESSION_COOKIE_SAMESITE"),
        ({"URL": "redis://x", "OPTIONS": {"absolute_lifetime": 9}}, "SESSION_COOKIE_AGE"),
        ({"URL": "redis://x", "OPTIONS": {"colour": "blue"}}, "colour"),
        ({"URL": "redis://x", "OPTIONS": {"idle_timeout": 0}}, "idle_timeout"),
        ({"URL": "redis://x?bogus=1"}, "bogus"),
    ],
)
def test_bad_settings_are_reported(conf: Any, message: str) -> None:
    with override_settings(RCACHE_SESSIONS=conf):
        with pytest.raises(ImproperlyConfigured, match=message):
            SessionStore().exists("x" * 40)
