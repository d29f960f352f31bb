"""When Redis fails: the view answers, nothing raises, one warning per outage."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pages_harness import View, page, request, x_cache

from rcache.errors import BackendError

FAST_FAIL = {"retry_attempts": 1, "socket_connect_timeout": 0.5, "socket_timeout": 0.5}


def test_redis_down_lets_the_view_answer(
    make_pages: Any, fresh_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    h = make_pages(fresh_server.url, **FAST_FAIL)
    view = View(page(b"<p>live</p>", ("Cache-Tag", "t")))
    assert x_cache(h.handle(request("/"), view)) == "MISS"
    assert x_cache(h.handle(request("/"), view)) == "HIT"
    fresh_server.stop()
    caplog.set_level(logging.WARNING, logger="rcache.pages")
    for path in ("/", "/", "/other", "/"):
        resp = h.handle(request(path), view)
        assert (resp.status, resp.body, x_cache(resp)) == (200, b"<p>live</p>", "BYPASS")
        assert "cache-tag" not in resp.headers
    assert view.calls == 5
    result = h.lookup(request("/"))
    assert (result.response, result.x_cache, result.reason) == (None, "BYPASS", "redis error")
    assert h.purge_tag("t") is False and h.purge_url("https://example.com/") is False
    warnings = [r for r in caplog.records if r.name == "rcache.pages"]
    assert len(warnings) == 1 and "lookup failed" in warnings[0].getMessage()


def test_on_error_raise(make_pages: Any, fresh_server: Any) -> None:
    h = make_pages(fresh_server.url, on_error="raise", **FAST_FAIL)
    fresh_server.stop()
    view = View(page(b"x"))
    with pytest.raises(BackendError):
        h.handle(request("/"), view)
    with pytest.raises(BackendError):
        h.purge_prefix("/")
    assert view.calls == 0


def test_an_unreadable_entry_is_a_miss(
    make_pages: Any, redis_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    h = make_pages(redis_server.url)
    view = View(page(b"x"))
    h.handle(request("/c"), view)
    raw = redis_server.client()
    try:
        (variant,) = raw.scan_iter(match=f"*{h.key_space.prefix}*:v:*")
        raw.hset(variant, "e", b"garbage")
    finally:
        raw.close()
    caplog.set_level(logging.WARNING, logger="rcache.pages")
    assert x_cache(h.handle(request("/c"), view)) == "MISS"
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    assert x_cache(h.handle(request("/c"), view)) == "HIT"  # overwritten by the miss
    assert view.calls == 2


def test_an_evicted_purge_key_is_a_miss(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    view = View(page(b"x", ("Cache-Tag", "gone")))
    h.handle(request("/e"), view)
    raw = redis_server.client()
    try:
        raw.delete(h.cache._ctx.layout.tag_purge_key("gone"))  # as maxmemory eviction would
    finally:
        raw.close()
    assert x_cache(h.handle(request("/e"), view)) == "MISS"  # never a hit it cannot vouch for
    assert x_cache(h.handle(request("/e"), view)) == "HIT"


def test_purges_an_outage_lost_are_redone_once_redis_answers(
    make_pages: Any, fresh_server: Any
) -> None:
    # A stalled (not restarted) Redis keeps its pages: a purge that failed meanwhile would
    # leave them served until their TTL. The first round trip that succeeds redoes it.
    import signal
    import time

    h = make_pages(fresh_server.url, retry_attempts=1, socket_timeout=0.2, breaker_cooldown=0.2)
    view = View(page(b"<p>v1</p>", ("Cache-Tag", "t")))
    for path in ("/a", "/b"):
        assert x_cache(h.handle(request(path), view)) == "MISS"
        assert x_cache(h.handle(request(path), view)) == "HIT"
    fresh_server.kill(signal.SIGSTOP)
    try:
        assert h.purge_url("https://example.com/a") is False
        assert h.purge_tag("t") is False
    finally:
        fresh_server.kill(signal.SIGCONT)
    deadline = time.monotonic() + 10
    while x_cache(h.handle(request("/other"), view)) == "BYPASS":  # until Redis answers
        assert time.monotonic() < deadline, "the page cache did not recover"
        time.sleep(0.05)
    for path in ("/a", "/b"):  # both purges were redone: the stale pages are gone
        while x_cache(h.handle(request(path), view)) == "HIT":
            assert time.monotonic() < deadline, f"the lost purge of {path} was not redone"
            time.sleep(0.05)
