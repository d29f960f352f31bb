"""The pure ASGI SessionMiddleware, through Starlette and raw ASGI, against real Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from asgi_harness import FAST, Site, vary

from rcache.sessions import SessionConfig, cookie_value
from rcache_asgi.sessions import SessionMiddleware

Hooks = dict[str, Callable[[], Awaitable[None]]]


def crash(server: Any) -> None:
    """Snapshot the data, then kill the server: start() brings it back with the data."""
    with server.client() as client:
        client.save()
    server.kill()


async def test_login_sets_a_signed_cookie_and_reads_send_none(site: Site) -> None:
    cookie = await site.login("alice")
    assert cookie.startswith(site.session_id(cookie) + ".") and site.stored(cookie)

    response = await site.get("/read", cookie)
    assert response.json() == {"user": "alice"}
    assert site.cookie_of(response) is None  # read only: no Set-Cookie
    assert "Cookie" in vary(response)

    response = await site.get("/set/k/v", cookie)  # a change of the data keeps the cookie
    assert response.status_code == 200 and site.cookie_of(response) is None
    assert (await site.get("/read", cookie)).json() == {"user": "alice", "k": "v"}


async def test_pages_that_do_not_use_the_session_neither_vary_nor_set_cookies(
    site: Site,
) -> None:
    cookie = await site.login()
    response = await site.get("/untouched", cookie)
    assert response.status_code == 200
    assert site.cookie_of(response) is None
    assert vary(response) == ""


async def test_anonymous_readers_get_no_cookie_and_store_nothing(site: Site) -> None:
    response = await site.get("/read")
    assert response.json() == {}
    assert site.cookie_of(response) is None
    assert "Cookie" in vary(response)
    assert list(site.raw.scan_iter(match=f"{site.store.config.prefix}*")) == []


async def test_regenerate_on_login_deletes_the_old_id(site: Site) -> None:
    anonymous = site.cookie_of(await site.get("/set/cart/42"))
    assert anonymous and site.stored(anonymous)

    logged_in = site.cookie_of(await site.get("/login/bob", anonymous))
    assert logged_in and logged_in != anonymous
    assert not site.stored(anonymous) and site.stored(logged_in)
    assert (await site.get("/read", anonymous)).json() == {}
    assert (await site.get("/read", logged_in)).json() == {"cart": "42", "user": "bob"}


async def test_concurrent_requests_changing_different_keys_both_persist(
    site: Site, hooks: Hooks
) -> None:
    cookie = await site.login()
    both_loaded = asyncio.Barrier(2)

    async def meet() -> None:
        await asyncio.wait_for(both_loaded.wait(), 5)

    hooks["after_load"] = meet
    first, second = await asyncio.gather(site.get("/set/a/1", cookie), site.get("/set/b/2", cookie))
    assert first.status_code == second.status_code == 200
    assert (await site.get("/read", cookie)).json() == {"user": "alice", "a": "1", "b": "2"}


async def test_a_request_ending_after_logout_does_not_resurrect_the_session(
    site: Site, hooks: Hooks
) -> None:
    cookie = await site.login()
    loaded, logged_out = asyncio.Event(), asyncio.Event()

    async def pause() -> None:
        loaded.set()
        await asyncio.wait_for(logged_out.wait(), 5)

    hooks["after_load"] = pause
    slow = asyncio.create_task(site.get("/set/x/1", cookie))
    await asyncio.wait_for(loaded.wait(), 5)
    logout = await site.get("/logout", cookie)
    logged_out.set()
    late = await slow

    assert site.cookie_of(logout) == ""  # a deletion cookie
    assert late.status_code == 200 and site.cookie_of(late) is None
    assert not site.stored(cookie)
    assert (await site.get("/read", cookie)).json() == {}


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
async def test_forged_or_oversized_cookies_get_a_fresh_session_not_an_error(
    site: Site, forge: Callable[[str, str], str]
) -> None:
    good = await site.login("alice")
    sid = site.session_id(good)
    response = await site.get("/set/k/v", forge(good, sid))
    assert response.status_code == 200
    fresh = site.cookie_of(response)
    assert fresh and site.session_id(fresh) != sid
    assert (await site.get("/read", fresh)).json() == {"k": "v"}
    assert (await site.get("/read", good)).json() == {"user": "alice"}


async def test_the_cookie_that_verifies_wins_among_several(site: Site) -> None:
    good = await site.login("alice")
    name = site.name
    headers = {"cookie": f"{name}=stale-from-another-path; other=1; {name}={good}"}
    transport = httpx.ASGITransport(app=site.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/read", headers=headers)
    assert response.json() == {"user": "alice"}


async def test_a_change_inside_a_value_is_saved_once_marked(site: Site) -> None:
    cookie = site.cookie_of(await site.get("/append/a"))
    assert cookie
    assert (await site.get("/append/b", cookie)).status_code == 200
    assert (await site.get("/read", cookie)).json() == {"cart": ["a", "b"]}


async def test_a_5xx_response_saves_nothing(site: Site) -> None:
    cookie = await site.login()
    response = await site.get("/failed", cookie)
    assert response.status_code == 500 and site.cookie_of(response) is None
    assert (await site.get("/read", cookie)).json() == {"user": "alice"}


async def test_streamed_responses_carry_the_cookie_and_the_saved_session(site: Site) -> None:
    response = await site.get("/stream")
    assert response.status_code == 200 and response.text == "one,two"
    cookie = site.cookie_of(response)
    assert cookie and (await site.get("/read", cookie)).json() == {"streamed": "yes"}


async def test_the_session_is_saved_before_the_headers_leave_and_chunks_pass_through(
    site: Site,
) -> None:
    sent: list[dict[str, Any]] = []
    stored_when_started: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["session"]["k"] = "v"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"a", b"b"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            session = scope["session"]
            stored_when_started.append(bool(site.raw.exists(site.store._storage.key(session.id))))
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": "/", "headers": []}
    await SessionMiddleware(app, site.store)(scope, receive, send)
    assert stored_when_started == [True]
    assert [m["type"] for m in sent] == ["http.response.start", *["http.response.body"] * 3]
    assert [m.get("body") for m in sent[1:]] == [b"a", b"b", b""]
    headers = dict(sent[0]["headers"])
    assert headers[b"set-cookie"].startswith(site.name.encode() + b"=")
    assert headers[b"vary"] == b"Cookie"


async def test_lifespan_and_other_scopes_pass_straight_through(site: Site) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    async def receive() -> Any:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        return None

    scope = {"type": "lifespan"}
    await SessionMiddleware(app, site.store)(scope, receive, send)
    assert seen == [(scope, receive, send)] and scope == {"type": "lifespan"}


async def test_redis_down_on_load_gives_an_anonymous_read_only_session(
    site_for: Callable[..., Site], fresh_server: Any
) -> None:
    site = site_for(fresh_server, **FAST)
    cookie = await site.login("alice")
    crash(fresh_server)

    response = await site.get("/read", cookie)
    assert response.status_code == 200 and response.json() == {}
    assert site.cookie_of(response) is None  # the visitor's cookie survives the outage
    response = await site.get("/set/k/v", cookie)
    assert response.status_code == 503 and site.cookie_of(response) is None
    response = await site.get("/login/bob", cookie)  # a rotation that fails in the endpoint
    assert response.status_code == 503 and site.cookie_of(response) is None

    fresh_server.start()
    deadline = time.monotonic() + 10
    while (await site.get("/read", cookie)).json() != {"user": "alice"}:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


async def test_redis_down_on_load_answers_503_when_configured(
    site_for: Callable[..., Site], fresh_server: Any
) -> None:
    site = site_for(fresh_server, on_load_error="raise", **FAST)
    cookie = await site.login("alice")
    fresh_server.kill()
    response = await site.get("/read", cookie)
    assert response.status_code == 503 and site.cookie_of(response) is None
    assert response.headers["cache-control"] == "no-store"
    assert (await site.get("/read")).json() == {}  # no cookie: nothing to load


async def test_redis_down_on_save_answers_503_without_a_cookie(
    site_for: Callable[..., Site], fresh_server: Any, hooks: Hooks
) -> None:
    site = site_for(fresh_server, **FAST)
    cookie = await site.login("alice")

    async def outage() -> None:
        fresh_server.kill()  # loaded fine; gone by the time it saves

    hooks["after_load"] = outage
    response = await site.get("/set/k/v", cookie)
    assert response.status_code == 503 and site.cookie_of(response) is None
    assert "Service Unavailable" in response.text
    hooks.clear()
    response = await site.get("/stream")  # creating a session fails the same way
    assert response.status_code == 503 and site.cookie_of(response) is None


async def websocket_session(site: Site, cookie: str) -> list[dict[str, Any]]:
    """Open /ws with ``cookie`` through raw ASGI messages; return what the app sent."""
    incoming = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]
    sent: list[dict[str, Any]] = []

    async def receive() -> Any:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "scheme": "ws",
        "server": ("testserver", 80),
        "headers": [(b"cookie", f"{site.name}={cookie}".encode())],
        "subprotocols": [],
    }
    await site.app(scope, receive, send)
    return sent


async def test_websockets_get_the_session_loaded_and_never_saved(site: Site) -> None:
    cookie = await site.login("ann")
    sent = await websocket_session(site, cookie)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert json.loads(sent[1]["text"]) == {"user": "ann"}
    # The endpoint set "from-websocket"; a websocket never saves.
    assert (await site.get("/read", cookie)).json() == {"user": "ann"}


async def test_websockets_are_refused_when_the_load_must_raise(
    site_for: Callable[..., Site], fresh_server: Any
) -> None:
    site = site_for(fresh_server, on_load_error="raise", **FAST)
    cookie = await site.login("ann")
    fresh_server.kill()
    sent = await websocket_session(site, cookie)
    assert sent == [{"type": "websocket.close", "code": 1013}]
