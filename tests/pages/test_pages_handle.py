"""handle(): hit, miss, bypass, Vary, 304, HEAD, gzip, and what is never stored."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from pages_harness import View, on_the_wire, page, request, space_prefix, x_cache

from rcache.errors import ConfigurationError
from rcache.pages import PageCache, Request, Response
from rcache.pages.fields import format_http_date


def test_miss_then_hit(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    view = View(page(b"<p>hello</p>", ("Cache-Tag", "home, front")))
    first = h.handle(request("/"), view)
    second = h.handle(request("/"), view)
    assert (x_cache(first), x_cache(second)) == ("MISS", "HIT")
    assert first.body == second.body == b"<p>hello</p>"
    assert view.calls == 1
    for resp in (first, second):
        assert "cache-tag" not in resp.headers  # an instruction to the cache, never sent
        assert resp.headers.get("etag") == first.headers.get("etag") is not None
        assert resp.headers.get("content-length") == "12"
        assert resp.headers.get("age") is not None
    assert (h.stats.hits, h.stats.misses) == (1, 1)


def test_other_urls_and_query_order(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    view = View(lambda req: page(req.path.encode() + b"?" + req.query_string.encode()))
    assert h.handle(request("/a", query="x=1&y=2"), view).body == b"/a?x=1&y=2"
    assert x_cache(h.handle(request("/a", query="y=2&x=1&utm_source=z"), view)) == "HIT"
    assert h.handle(request("/b"), view).body == b"/b?"
    assert view.calls == 2


@pytest.mark.parametrize(
    ("req", "reason"),
    [
        (request("/", method="POST"), "method POST"),
        (request("/", ("Cache-Control", "no-store")), "request no-store"),
        (request("/", authenticated=True), "authenticated"),
    ],
)
def test_bypass(make_pages: Any, redis_server: Any, req: Request, reason: str) -> None:
    h = make_pages(redis_server.url)
    view = View(page(b"x", ("Cache-Tag", "t")))
    rt = h.stats.round_trips
    for _ in range(2):
        resp = h.handle(req, view)
        assert x_cache(resp) == "BYPASS" and "cache-tag" not in resp.headers
    assert view.calls == 2 and h.stats.round_trips == rt  # Redis was not even asked
    assert h.lookup(req).reason == reason
    assert x_cache(h.handle(request("/"), view)) == "MISS"  # nothing was stored for GET /


def test_a_hit_is_one_round_trip_on_the_wire(make_pages: Any, fresh_server: Any) -> None:
    h = make_pages(fresh_server.url)
    plain = View(page(b"plain"))
    varied = View(page(b"varied", ("Vary", "Accept-Language, Cookie"), ("Cache-Tag", "t1 t2")))
    lang = ("Accept-Language", "de")
    cases = ((request("/plain"), plain, 3), (request("/v/x", lang), varied, 6))
    for _ in range(2):  # the first miss loads the scripts (NOSCRIPT, then EVAL)
        h.handle(request("/plain"), plain)
        h.handle(request("/v/x", lang), varied)
    raw = fresh_server.client()
    try:
        # purge keys: the URL, "/", each path prefix, each tag
        for req, view, _ in cases:  # steady state: plain reads in one pipeline
            rt = h.stats.round_trips
            resp, commands, reads = on_the_wire(raw, lambda: h.handle(req, view))  # noqa: B023
            assert x_cache(resp) == "HIT" and h.stats.round_trips - rt == 1
            assert commands == {"hmget": 1, "mget": 1} and reads == 1
        other = make_pages(fresh_server.url)  # another process: it has not learned the URLs
        other.resolve(other.cache.adapter.ping())  # connected beforehand
        for req, view, gets in cases:
            for script in (1, 0):  # lookup.lua first, which teaches; then plain reads
                resp, commands, reads = on_the_wire(raw, lambda: other.handle(req, view))  # noqa: B023
                assert x_cache(resp) == "HIT" and reads == 1
                in_script = {"evalsha": 1, "get": 1 + gets, "hmget": 1}  # GETs: spec, purge keys
                assert commands == (in_script if script else {"hmget": 1, "mget": 1})
    finally:
        raw.close()
    assert plain.calls == varied.calls == 1


def test_vary_keeps_variants_apart(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)

    def make(req: Request) -> Response:
        lang = req.headers.get("accept-language") or "none"
        return page(f"<p>{lang}</p>".encode(), ("Vary", "Accept-Language"))

    view = View(make)
    en, de = ("Accept-Language", "en"), ("Accept-Language", "de")
    assert h.handle(request("/", en), view).body == b"<p>en</p>"
    assert h.handle(request("/", de), view).body == b"<p>de</p>"
    hit_en = h.handle(request("/", en), view)
    hit_de = h.handle(request("/", de), view)
    assert (x_cache(hit_en), hit_en.body) == ("HIT", b"<p>en</p>")
    assert (x_cache(hit_de), hit_de.body) == ("HIT", b"<p>de</p>")
    assert h.handle(request("/"), view).body == b"<p>none</p>"  # absent is its own variant
    assert x_cache(h.handle(request("/", ("Accept-Language", "en ")), view)) == "HIT"
    assert view.calls == 3


def test_vary_option_adds_to_the_response(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    view = View(lambda req: page((req.headers.get("x-theme") or "-").encode()))
    dark = h.handle(request("/", ("X-Theme", "dark")), view, vary=["X-Theme"])
    assert "X-Theme" in (dark.headers.get("vary") or "")
    light = h.handle(request("/", ("X-Theme", "light")), view, vary=["X-Theme"])
    assert (x_cache(light), light.body) == ("MISS", b"light")
    assert h.handle(request("/", ("X-Theme", "dark")), view, vary=["X-Theme"]).body == b"dark"
    assert view.calls == 2


def test_304_if_none_match(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    view = View(page(b"<p>x</p>", ("Cache-Control", "max-age=300"), ("Vary", "Cookie")))
    etag = h.handle(request("/"), view).headers.get("etag")
    resp = h.handle(request("/", ("If-None-Match", f'"nope", {etag}')), view)
    assert (resp.status, resp.body, x_cache(resp)) == (304, b"", "HIT")
    for name in ("ETag", "Date", "Cache-Control", "Vary", "Age"):
        assert name in resp.headers, name
    assert resp.headers.get("etag") == etag and "content-length" not in resp.headers
    other = h.handle(request("/", ("If-None-Match", '"nope"')), view)
    assert (other.status, other.body) == (200, b"<p>x</p>")
    assert view.calls == 1


def test_304_if_modified_since(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    modified = format_http_date(1_700_000_000)
    view = View(page(b"<p>x</p>", ("Last-Modified", modified)))
    h.handle(request("/"), view)
    resp = h.handle(request("/", ("If-Modified-Since", format_http_date(1_700_000_100))), view)
    assert (resp.status, resp.body) == (304, b"")
    assert resp.headers.get("etag") and resp.headers.get("date")
    older = h.handle(request("/", ("If-Modified-Since", format_http_date(1_600_000_000))), view)
    assert (older.status, older.body) == (200, b"<p>x</p>")


def test_head_is_served_from_the_get_entry(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    view = View(page(b"<p>body</p>"))
    cold_head = h.handle(request("/h", method="HEAD"), view)
    assert x_cache(cold_head) == "MISS"
    assert x_cache(h.handle(request("/h"), view)) == "MISS"  # HEAD did not fill the entry
    resp = h.handle(request("/h", method="HEAD"), view)
    assert (x_cache(resp), resp.status, resp.body) == ("HIT", 200, b"")
    assert resp.headers.get("content-length") == str(len(b"<p>body</p>"))
    assert view.calls == 2 and [r.method for r in view.requests] == ["HEAD", "GET"]


def test_gzip_served_as_stored_or_decoded(
    make_pages: Any, redis_server: Any, key_prefix: str
) -> None:
    h = make_pages(redis_server.url)
    html = b"".join(
        b'<tr><td class="name">Item %d</td><td class="price">%d.00</td></tr>\n' % (i, i * 7)
        for i in range(320)
    )
    assert len(html) >= 20_000
    view = View(page(html))
    gz = ("Accept-Encoding", "gzip, deflate, br")
    first = h.handle(request("/big", gz), view)
    hit = h.handle(request("/big", gz), view)
    plain = h.handle(request("/big", ("Accept-Encoding", "identity")), view)
    none = h.handle(request("/big"), view)
    assert view.calls == 1
    for resp in (first, hit):
        assert resp.headers.get("content-encoding") == "gzip"
        assert gzip.decompress(resp.body) == html
        assert resp.headers.get("content-length") == str(len(resp.body))
    assert hit.body == first.body  # served as stored, not re-compressed
    for resp in (plain, none):
        assert x_cache(resp) == "HIT" and resp.body == html
        assert "content-encoding" not in resp.headers
    assert all("Accept-Encoding" in (r.headers.get("vary") or "") for r in (hit, plain))
    raw = redis_server.client()
    try:
        variants = [k for k in raw.scan_iter(match=f"*{h.key_space.prefix}*:v:*")]
        assert len(variants) == 1
        assert raw.hstrlen(variants[0], "e") * 3 <= len(html)
    finally:
        raw.close()


NEVER_STORED = {
    "set-cookie": (request("/"), page(b"x", ("Set-Cookie", "sid=1"))),
    "private": (request("/"), page(b"x", ("Cache-Control", "private, max-age=60"))),
    "no-store": (request("/"), page(b"x", ("Cache-Control", "no-store"))),
    "authorization": (request("/", ("Authorization", "Bearer t")), page(b"x")),
    "vary-star": (request("/"), page(b"x", ("Vary", "*"))),
    "streaming": (request("/"), page(None)),
    "post": (request("/", method="POST"), page(b"x")),
    "status-500": (request("/"), page(b"x", status=500)),
}


@pytest.mark.parametrize("case", sorted(NEVER_STORED))
def test_never_stored(make_pages: Any, redis_server: Any, case: str) -> None:
    h = make_pages(redis_server.url)
    req, resp = NEVER_STORED[case]
    view = View(resp)
    first = h.handle(req, view)
    second = h.handle(req, view)
    assert view.calls == 2
    assert x_cache(second) in ("MISS", "BYPASS")
    assert second.headers.get_all("set-cookie") == resp.headers.get_all("set-cookie")
    assert first.body == resp.body
    raw = redis_server.client()
    try:
        assert not list(raw.scan_iter(match=f"*{h.key_space.prefix}*:v:*"))
    finally:
        raw.close()


def test_set_cookie_allowed_per_view(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    view = View(page(b"x", ("Set-Cookie", "seen=1")))
    first = h.handle(request("/"), view, allow_set_cookie=True)
    second = h.handle(request("/"), view, allow_set_cookie=True)
    assert first.headers.get("set-cookie") == "seen=1"  # the producer still gets its cookie
    assert x_cache(second) == "HIT" and "set-cookie" not in second.headers


def test_streaming_passes_through(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    original = page(None, ("Cache-Tag", "t"), ("X-Custom", "1"))
    resp = h.handle(request("/s"), View(original))
    assert resp.body is None and resp.status == 200
    assert resp.headers.without("x-cache") == original.headers.without("cache-tag")


def test_ttl_option_overrides_freshness(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    view = View(page(b"x", ("Cache-Control", "max-age=5")))
    h.handle(request("/"), view, ttl=3600)
    h.advance(60)
    assert x_cache(h.handle(request("/"), view, ttl=3600)) == "HIT"
    assert x_cache(h.handle(request("/other"), view, ttl=0)) == "MISS"
    assert x_cache(h.handle(request("/other"), view, ttl=0)) == "MISS"


def test_split_lookup_and_store(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    req = request("/split")
    result = h.lookup(req)
    assert result.response is None and (result.x_cache, result.reason) == ("MISS", "miss")
    stored = h.store(req, page(b"split", ("Cache-Tag", "s")), result, tags=["extra"])
    assert x_cache(stored) == "MISS" and "cache-tag" not in stored.headers
    again = h.lookup(req)
    assert again.response is not None and again.response.body == b"split"
    assert x_cache(again.response) == "HIT"
    h.purge_tag("extra")
    assert h.lookup(req).response is None
    untouched = h.store(request("/x"), page(b"y", ("Cache-Tag", "s")), None)
    assert x_cache(untouched) == "BYPASS" and "cache-tag" not in untouched.headers


def test_the_sync_cache_refuses_an_async_view(redis_server: Any, key_prefix: str) -> None:
    view = View(page(b"x"))
    with PageCache.from_url(redis_server.url, prefix=space_prefix(key_prefix)) as cache:
        with pytest.raises(TypeError, match="AsyncPageCache"):
            cache.handle(request("/"), view.asynchronous)  # type: ignore[arg-type]
        assert view.calls == 0  # refused unawaited (closed: no "never awaited" warning)
        assert x_cache(cache.handle(request("/"), view.sync)) == "MISS"


def test_a_view_must_return_a_response(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    with pytest.raises(TypeError, match="must return"):
        h.handle(request("/"), View(lambda req: "not a response"))  # type: ignore[arg-type,return-value]
    view = View(page(b"ok"))
    assert x_cache(h.handle(request("/"), view)) == "MISS"  # the lease was given up


@pytest.mark.parametrize(
    "options",
    [{"lock_timeout": 0}, {"wait_timeout": -1}, {"on_error": "ignore"}, {"policy": object()}],
)
def test_options_are_validated(redis_server: Any, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        PageCache.from_url(redis_server.url, **options)


def test_tags_and_vary_must_not_be_a_single_str(make_pages: Any, redis_server: Any) -> None:
    h = make_pages(redis_server.url)
    with pytest.raises(TypeError):
        h.handle(request("/"), View(page(b"x")), tags="news")
    with pytest.raises(TypeError):
        h.handle(request("/"), View(page(b"x")), vary="Cookie")
