"""Purging by URL, tag and path prefix: seen by every worker at once, one round trip each."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pages_harness import View, page, request, x_cache

from rcache.errors import ConfigurationError
from rcache.ops import Batch
from rcache.pages import Request, Response, build_entry
from rcache.pages.freshness import entry_ttl


def echo(*headers: tuple[str, str]) -> View:
    """A view answering with its request's host, path and language."""

    def make(req: Request) -> Response:
        lang = req.headers.get("accept-language") or "-"
        return page(f"{req.host}{req.path}?{req.query_string} {lang}".encode(), *headers)

    return View(make)


def cached(h: Any, req: Request, view: View) -> bool:
    """Return whether ``req`` is answered from the cache (a HIT) now."""
    return x_cache(h.handle(req, view)) == "HIT"


def test_purge_url_is_seen_by_another_worker(make_pages: Any, redis_server: Any) -> None:
    a = make_pages(redis_server.url)
    b = make_pages(redis_server.url)  # same prefix, its own adapter: another worker
    view = echo(("Vary", "Accept-Language"))
    en, de = ("Accept-Language", "en"), ("Accept-Language", "de")
    pages = [request("/a", en), request("/a", de), request("/a", query="p=2"), request("/b")]
    for req in pages:
        a.handle(req, view)
    assert all(cached(b, req, view) for req in pages)
    rt = b.stats.round_trips
    assert b.purge_url("https://example.com/a")
    assert b.stats.round_trips - rt == 1
    assert not cached(a, pages[0], view) and not cached(a, pages[1], view)  # every variant
    assert cached(a, pages[2], view) and cached(a, pages[3], view)
    assert b.purge_url(pages[2], "https://example.com:443/b")
    assert not cached(a, pages[2], view) and not cached(a, pages[3], view)


def test_purge_tag(make_pages: Any, redis_server: Any) -> None:
    a = make_pages(redis_server.url)
    b = make_pages(redis_server.url)
    view = echo(("Cache-Tag", "product-1 catalog"))
    a.handle(request("/p/1"), view)
    a.handle(request("/p/2"), echo(("Cache-Tag", "product-2, catalog")))
    a.handle(request("/home"), echo(), tags=["home"])
    a.handle(request("/about"), echo())
    rt, commands = b.stats.round_trips, b.stats.commands
    assert b.purge_tag("product-1", "home")
    assert (b.stats.round_trips - rt, b.stats.commands - commands) == (1, 1)
    assert not cached(a, request("/p/1"), view)
    assert not cached(a, request("/home"), echo())
    assert cached(a, request("/p/2"), view) and cached(a, request("/about"), echo())
    assert b.purge_tag("catalog")
    assert not cached(a, request("/p/1"), view) and not cached(a, request("/p/2"), view)
    assert cached(a, request("/about"), echo())
    assert b.purge_tag()  # nothing to purge: no round trip
    assert b.stats.round_trips - rt == 2


def test_purge_prefix(make_pages: Any, redis_server: Any) -> None:
    a = make_pages(redis_server.url)
    b = make_pages(redis_server.url)
    view = echo()
    under = [request("/blog"), request("/blog/"), request("/blog/a"), request("/blog/b/c")]
    under.append(request("/blog/a", host="other.example"))
    outside = [request("/blogroll"), request("/shop"), request("/")]
    for req in under + outside:
        a.handle(req, view)
    assert b.purge_prefix("/blog/")
    assert not any(cached(a, req, view) for req in under)
    assert all(cached(a, req, view) for req in outside)
    assert b.purge_prefix("/")
    assert not any(cached(a, req, view) for req in outside)


def test_purge_prefix_deeper_than_the_tracked_depth(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    view = echo()
    deep = request("/1/2/3/4/5/6/7/8/9/10")
    sibling = request("/1/2/3/4/5/6/7/8/other")
    elsewhere = request("/1/2/3/4/5/6/7/x")
    for req in (deep, sibling, elsewhere):
        h.handle(req, view)
    assert h.purge_prefix("/1/2/3/4/5/6/7/8/9/10")
    assert not cached(h, deep, view)
    assert not cached(h, sibling, view)  # over-purged: same depth-8 ancestor (documented)
    assert cached(h, elsewhere, view)


def test_tag_purge_of_10000_pages_is_one_round_trip(make_pages: Any, fresh_server: Any) -> None:
    h = make_pages(fresh_server.url)
    layout = h.cache._ctx.layout
    h.handle(request("/other"), echo(), tags=["other"])  # loads the scripts, starts the clock
    raw = fresh_server.client()
    try:
        epoch = raw.get(layout.epoch_key)
        resp = page(b"<p>bulk</p>", ("Cache-Tag", "bulk"))
        entry = build_entry(request("/bulk"), resp, layout.policy, time.time())
        ttl_ms = entry_ttl(entry) * 1000
        reqs = [request(f"/bulk/{i}") for i in range(10_000)]

        def in_batches(commands: list[Any]) -> list[Any]:
            replies: list[Any] = []
            for i in range(0, len(commands), 1000):
                replies += h.resolve(h.adapter.execute_batch(Batch(commands[i : i + 1000])))
            return replies

        stores = []
        for req in reqs:
            url_key = layout.url_key(req)
            lock = layout.lock_key(url_key)
            stores.append(
                layout.store(
                    url_key, req, entry, epoch=epoch, ttl_ms=ttl_ms, lock_key=lock, token=None
                )
            )
        in_batches(stores)
        lookups = [layout.lookup(req)[1] for req in reqs]
        assert sum(reply[1] is not None for reply in in_batches(lookups)) == 10_000

        assert h.purge_tag("warm-up")  # loads purge.lua: NOSCRIPT is a round trip of its own
        before = raw.info("commandstats")
        rt, commands = h.stats.round_trips, h.stats.commands
        assert h.purge_tag("bulk")
        assert (h.stats.round_trips - rt, h.stats.commands - commands) == (1, 1)
        after = raw.info("commandstats")
        # the server's work does not grow with the pages either: the clock and one tag key
        assert after["cmdstat_evalsha"]["calls"] - before["cmdstat_evalsha"]["calls"] == 1
        assert after["cmdstat_set"]["calls"] - before["cmdstat_set"]["calls"] == 2

        assert sum(reply[1] is not None for reply in in_batches(lookups)) == 0
        assert cached(h, request("/other"), echo())
        assert not cached(h, request("/bulk/7"), View(resp))
    finally:
        raw.close()


def test_purge_url_needs_an_absolute_url(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    for bad in ("/relative", "ftp://example.com/x", "example.com/x"):
        with pytest.raises(ConfigurationError):
            h.purge_url(bad)
