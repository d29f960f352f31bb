"""The lookup memo: plain reads in one round trip, and never a hit the script would refuse.

Two caches with the same prefix stand for two processes of one site: each has its own memo,
and what one writes or purges the other must see at its next lookup.
"""

from __future__ import annotations

from typing import Any

from pages_harness import View, on_the_wire, page, request, x_cache

from rcache.pages._memo import LookupMemo


def _warm(h: Any, req: Any, view: View) -> None:
    """Store the page and hit it once, so the memo knows the URL and the variant."""
    h.handle(req, view)
    assert x_cache(h.handle(req, view)) == "HIT"


def _round_trips(h: Any, req: Any, view: View) -> tuple[str | None, int]:
    rt = h.stats.round_trips
    resp = h.handle(req, view)
    return x_cache(resp), h.stats.round_trips - rt


def test_purge_from_another_process_between_hits(make_pages: Any, redis_server: Any) -> None:
    worker, admin = make_pages(redis_server.url), make_pages(redis_server.url)
    view = View(page(b"<p>post</p>", ("Cache-Tag", "post-1")))
    req = request("/blog/post")
    for purge in (
        lambda: admin.purge_tag("post-1"),
        lambda: admin.purge_url("https://example.com/blog/post"),
        lambda: admin.purge_prefix("/blog"),
        lambda: admin.purge_prefix("/"),
    ):
        _warm(worker, req, view)
        assert _round_trips(worker, req, view) == ("HIT", 1)  # plain reads
        calls = view.calls
        assert purge()
        assert x_cache(worker.handle(req, view)) == "MISS" and view.calls == calls + 1
    assert x_cache(worker.handle(req, view)) == "HIT"


def test_a_tag_change_is_followed(make_pages: Any, redis_server: Any) -> None:
    worker, other = make_pages(redis_server.url), make_pages(redis_server.url)
    tags = ["old"]
    view = View(lambda _req: page(tags[0].encode(), ("Cache-Tag", tags[0])))
    req = request("/t")
    _warm(worker, req, view)
    tags[0] = "new"
    assert other.purge_url("https://example.com/t")
    assert x_cache(other.handle(req, view)) == "MISS"  # stored with tag "new"
    resp = worker.handle(req, view)  # the remembered purge keys no longer match: the script
    assert x_cache(resp) == "HIT" and resp.body == b"new"
    assert _round_trips(worker, req, view) == ("HIT", 1)
    assert worker.purge_tag("old")  # the old tag no longer reaches the page
    assert _round_trips(worker, req, view) == ("HIT", 1)
    assert other.purge_tag("new")
    assert x_cache(worker.handle(req, view)) == "MISS"


def test_a_vary_change_is_followed(make_pages: Any, redis_server: Any) -> None:
    worker, other = make_pages(redis_server.url), make_pages(redis_server.url)
    vary: list[tuple[str, str]] = []

    def make(req: Any) -> Any:
        lang = req.headers.get("accept-language") or "none"
        return page(lang.encode(), *vary)

    view = View(make)
    de, en = request("/v", ("Accept-Language", "de")), request("/v", ("Accept-Language", "en"))
    _warm(worker, de, view)
    assert worker.handle(en, view).body == b"de"  # no Vary yet: one page for everyone
    vary.append(("Vary", "Accept-Language"))
    assert other.purge_url("https://example.com/v")
    assert other.handle(en, view).body == b"en"  # now it varies
    assert other.handle(de, view).body == b"de"
    for req, body in ((en, b"en"), (de, b"de"), (en, b"en"), (de, b"de")):
        resp = worker.handle(req, view)
        assert (x_cache(resp), resp.body) == ("HIT", body)
    assert _round_trips(worker, en, view) == ("HIT", 1)
    assert _round_trips(worker, de, view) == ("HIT", 1)


def test_an_evicted_purge_key_is_a_purge(make_pages: Any, redis_server: Any) -> None:
    worker = make_pages(redis_server.url)
    view = View(page(b"x", ("Cache-Tag", "gone")))
    req = request("/e")
    _warm(worker, req, view)
    raw = redis_server.client()
    try:
        assert raw.delete(worker.cache._ctx.layout.tag_purge_key("gone")) == 1
    finally:
        raw.close()
    calls = view.calls
    assert x_cache(worker.handle(req, view)) == "MISS" and view.calls == calls + 1


def test_an_evicted_entry_or_spec_is_a_miss(make_pages: Any, redis_server: Any) -> None:
    worker = make_pages(redis_server.url)
    view = View(page(b"x"))
    req = request("/gone")
    _warm(worker, req, view)
    raw = redis_server.client()
    try:
        url_key = worker.cache._ctx.layout.url_key(req)
        for key in (url_key + worker.cache._ctx.layout.variant_key("", req, ()), url_key):
            assert raw.delete(key) == 1
            assert x_cache(worker.handle(req, view)) == "MISS"
            assert _round_trips(worker, req, view) == ("HIT", 1)
    finally:
        raw.close()


def test_the_memo_is_bounded(make_pages: Any, fresh_server: Any) -> None:
    worker = make_pages(fresh_server.url)
    worker.cache._ctx.memo = memo = LookupMemo(size=2)
    view = View(lambda req: page(req.path.encode()))
    reqs = [request(f"/m/{i}") for i in range(6)]
    for req in reqs:
        worker.handle(req, view)
    assert len(memo.specs) <= 2 and len(memo.variants) <= 2 and len(memo.urls) <= 2
    raw = fresh_server.client()
    try:
        for req in reqs:  # forgotten URLs go through the script: still one round trip
            resp, commands, reads = on_the_wire(raw, lambda: worker.handle(req, view))  # noqa: B023
            assert (x_cache(resp), resp.body, reads) == ("HIT", req.path.encode(), 1)
            assert "evalsha" in commands or commands == {"hmget": 1, "mget": 1}
    finally:
        raw.close()
    assert view.calls == 6 and len(memo.specs) <= 2


def test_a_corrupt_spec_or_field_falls_back_to_the_script(
    make_pages: Any, redis_server: Any
) -> None:
    worker = make_pages(redis_server.url)
    view = View(page(b"x", ("Cache-Tag", "a")))
    req = request("/c")
    _warm(worker, req, view)
    layout = worker.cache._ctx.layout
    url_key = layout.url_key(req)
    variant = layout.variant_key(url_key, req, ())
    raw = redis_server.client()
    try:
        raw.hset(variant, "t", raw.hget(variant, "t") + b"\n" + layout.tag_purge_key("b").encode())
        calls = view.calls  # a purge key that does not exist: the script says purged
        assert x_cache(worker.handle(req, view)) == "MISS" and view.calls == calls + 1
        raw.hset(variant, "g", b"not a number")  # an epoch that is not one: purged
        assert x_cache(worker.handle(req, view)) == "MISS"
    finally:
        raw.close()
