"""Single-flight misses, stale-while-revalidate, stale-if-error."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from pages_harness import View, page, request, space_prefix, x_cache

from rcache.pages import AsyncPageCache, PageCache, Request, Response


def counting_page(view_calls: list[int], *headers: tuple[str, str]) -> Any:
    def make(req: Request) -> Response:
        view_calls.append(1)
        return page(b"version %d" % len(view_calls), *headers)

    return make


def test_twenty_concurrent_misses_run_the_view_once(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    view = View(page(b"<p>expensive</p>"), delay=0.3)
    results = h.concurrently(20, request("/hot"), view)
    assert view.calls == 1
    assert all(isinstance(r, Response) and r.body == b"<p>expensive</p>" for r in results)
    assert sorted(x_cache(r) for r in results) == ["HIT"] * 19 + ["MISS"]


def test_without_waiting_every_miss_runs_the_view(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url, wait_timeout=0)
    view = View(page(b"x"), delay=0.2)
    h.concurrently(5, request("/hot"), view)
    assert view.calls == 5  # what waiting prevents above


def test_unstorable_pages_do_not_queue(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    view = View(page(b"x", ("Set-Cookie", "csrf=1")), delay=0.3)
    t0 = time.monotonic()
    results = h.concurrently(10, request("/form"), view)
    elapsed = time.monotonic() - t0
    assert view.calls == 10 and all(r.headers.get("set-cookie") for r in results)
    assert elapsed < 1.5  # one after the other would take 3 s


def test_waiters_take_over_a_dead_lease(
    make_pages: Any, redis_server: Any, key_prefix: str
) -> None:
    h = make_pages(redis_server.url, lock_timeout=0.3)
    req = request("/orphan")
    lock_key = h.cache._ctx.layout.lock_key(h.cache._ctx.layout.url_key(req))
    raw = redis_server.client()
    try:  # a worker died holding the lease
        raw.set(lock_key, b"someone-else", px=300)
    finally:
        raw.close()
    view = View(page(b"x"))
    t0 = time.monotonic()
    assert x_cache(h.handle(req, view)) == "MISS"
    assert 0.25 < time.monotonic() - t0 < 2
    assert x_cache(h.handle(req, view)) == "HIT" and view.calls == 1


def test_waiters_give_up_after_wait_timeout(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url, wait_timeout=0.2)
    req = request("/slow")
    lock_key = h.cache._ctx.layout.lock_key(h.cache._ctx.layout.url_key(req))
    raw = redis_server.client()
    try:
        raw.set(lock_key, b"someone-else", px=30_000)
        view = View(page(b"x"))
        t0 = time.monotonic()
        resp = h.handle(req, view)
        assert 0.15 < time.monotonic() - t0 < 1.5
        assert x_cache(resp) == "MISS" and view.calls == 1
        assert raw.get(lock_key) == b"someone-else"  # not ours to release
    finally:
        raw.close()


def test_stale_while_revalidate_serves_stale_and_revalidates_once(
    make_pages: Any, redis_server: Any
) -> None:
    h = make_pages(redis_server.url)
    calls: list[int] = []
    swr = ("Cache-Control", "max-age=10, stale-while-revalidate=600")
    view = View(counting_page(calls, swr), delay=0.3)
    assert h.handle(request("/news"), view).body == b"version 1"
    h.advance(30)  # stale, inside the window
    results = h.concurrently(10, request("/news"), view)
    assert view.calls == 2  # one revalidation only
    winners = [r for r in results if x_cache(r) == "MISS"]
    stale = [r for r in results if x_cache(r) == "STALE"]
    assert len(winners) == 1 and winners[0].body == b"version 2"
    assert len(stale) == 9 and all(r.body == b"version 1" for r in stale)
    after = h.handle(request("/news"), view)
    assert (x_cache(after), after.body) == ("HIT", b"version 2")
    h.advance(10_000)  # past every window: a plain miss
    assert x_cache(h.handle(request("/news"), view)) == "MISS"


@pytest.mark.parametrize("failure", ["raises", "503"])
def test_stale_if_error(make_pages: Any, redis_server: Any, failure: str) -> None:
    h = make_pages(redis_server.url)
    state = {"broken": False}

    def make(req: Request) -> Response:
        if not state["broken"]:
            return page(b"good", ("Cache-Control", "max-age=10, stale-if-error=600"))
        if failure == "raises":
            raise RuntimeError("database down")
        return page(b"oops", status=503)

    view = View(make)
    h.handle(request("/p"), view)
    state["broken"] = True
    h.advance(60)
    resp = h.handle(request("/p"), view)
    assert (x_cache(resp), resp.status, resp.body) == ("STALE", 200, b"good")
    assert view.calls == 2
    h.advance(10_000)  # past the window: the failure shows
    if failure == "raises":
        with pytest.raises(RuntimeError, match="database down"):
            h.handle(request("/p"), view)
    else:
        resp = h.handle(request("/p"), view)
        assert (x_cache(resp), resp.status) == ("MISS", 503)


def test_without_a_stale_copy_the_error_propagates(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)

    def make(req: Request) -> Response:
        raise LookupError("no such thing")

    with pytest.raises(LookupError):
        h.handle(request("/e"), View(make))
    view = View(page(b"fine"))
    assert x_cache(h.handle(request("/e"), view)) == "MISS" and view.calls == 1


def test_a_purge_during_the_view_wins(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    # another worker (blocking, so it can run inside either kind of view) purges meanwhile
    other = PageCache.from_url(redis_server.url, prefix=h.key_space.prefix)

    def make(req: Request) -> Response:
        assert other.purge_tag("news")
        return page(b"built from data read before the purge", ("Cache-Tag", "news"))

    view = View(make)
    try:
        h.handle(request("/race"), view)
    finally:
        other.close()
    assert x_cache(h.handle(request("/race"), View(page(b"new", ("Cache-Tag", "news"))))) == "MISS"
    assert x_cache(h.handle(request("/race"), view)) == "HIT"  # the fresh one is kept


def test_a_cancelled_view_gives_its_lease_back(redis_server: Any, key_prefix: str) -> None:
    async def scenario() -> tuple[str | None, float]:
        prefix = space_prefix(key_prefix)
        async with AsyncPageCache.from_url(redis_server.url, prefix=prefix) as cache:
            slow, quick = View(page(b"slow"), delay=30), View(page(b"quick"))
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await cache.handle(request("/c"), slow.asynchronous)
            t0 = time.monotonic()
            resp = await cache.handle(request("/c"), quick.asynchronous)
            return x_cache(resp), time.monotonic() - t0

    status, elapsed = asyncio.run(scenario())
    assert status == "MISS" and elapsed < 1  # not the 5 s wait_timeout behind a dead lease
