"""The Flask page cache through Flask's test client, against real Redis."""

from __future__ import annotations

import gzip
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask, Response, has_request_context, request, session
from werkzeug.http import http_date

from rcache.errors import ConfigurationError
from rcache.pages import PageCache as CorePageCache
from rcache_flask.pages import PageCache

FAST = {"retry_attempts": 1, "socket_timeout": 0.5, "socket_connect_timeout": 0.5}
LAST_MODIFIED = 1_700_000_000
BIG = b"".join(b"<tr><td>item %d</td><td>%d.00</td></tr>\n" % (i, i * 7) for i in range(600))


class Site:
    """One app on the page cache, the views' call counts and the shared state they show."""

    def __init__(self, pages: PageCache, app: Flask) -> None:
        self.pages = pages
        self.app = app
        self.calls: Counter[str] = Counter()
        self.state: dict[Any, Any] = {}
        self.client = app.test_client(use_cookies=False)  # each request: a new visitor

    def get(self, path: str, **headers: str) -> Any:
        return self.client.get(path, headers=headers)

    @property
    def cache(self) -> CorePageCache:
        return self.pages.cache_for(self.app)


def build(pages: PageCache, config: dict[str, Any]) -> Site:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="flask-pages-secret", **config)
    pages.init_app(app)
    site = Site(pages, app)
    calls, state = site.calls, site.state

    @app.route("/page/<name>", methods=["GET", "POST"])
    def plain(name: str) -> str:
        calls[name] += 1
        return f"<p>{name} #{calls[name]}</p>"

    @app.get("/lang")
    def by_language() -> Response:
        calls["lang"] += 1
        response = Response(f"<p>{request.headers.get('Accept-Language', '-')}</p>")
        response.vary.add("Accept-Language")
        return response

    @app.get("/big")
    def big() -> bytes:
        calls["big"] += 1
        return BIG

    @app.get("/dated")
    def dated() -> Response:
        calls["dated"] += 1
        headers = {"Last-Modified": http_date(LAST_MODIFIED), "Cache-Control": "max-age=300"}
        return Response("<p>dated</p>", headers=headers)

    @app.get("/cookie")
    def cookie() -> Response:
        calls["cookie"] += 1
        response = Response("<p>cookie</p>")
        response.set_cookie("seen", "1")
        return response

    @app.get("/cookie-allowed")
    @pages.cached(allow_set_cookie=True)
    def cookie_allowed() -> Response:
        return cookie()

    @app.get("/private")
    def private() -> Response:
        calls["private"] += 1
        return Response("<p>mine</p>", headers={"Cache-Control": "private, max-age=60"})

    @app.get("/no-store")
    def no_store() -> Response:
        calls["no-store"] += 1
        return Response("<p>never</p>", headers={"Cache-Control": "no-store"})

    @app.get("/visits")
    def visits() -> str:
        calls["visits"] += 1
        session["visits"] = session.get("visits", 0) + 1
        return f"<p>visit {session['visits']}</p>"

    @app.get("/login")
    def login() -> str:
        session["user"] = "alice"
        return "logged in"

    @app.get("/whoami")
    def whoami() -> str:
        calls["whoami"] += 1
        return f"<p>{session.get('user', 'anonymous')}</p>"

    @app.get("/post/<int:pk>")
    @pages.cached(tags=["posts"])
    def post(pk: int) -> Response:
        calls["post"] += 1
        return Response(f"<h1>{state.get(pk, 'draft')}</h1>", headers={"Cache-Tag": f"post-{pk}"})

    @app.post("/post/<int:pk>")
    def edit(pk: int) -> str:
        state[pk] = request.form["title"]
        pages.purge_tag(f"post-{pk}")
        return "saved"

    @app.get("/fragile")
    @pages.cached(ttl=0.2)
    async def fragile() -> str:
        calls["fragile"] += 1
        if state.get("fail"):
            raise RuntimeError("the database is down")
        return "<p>fragile</p>"

    @app.get("/undecorated-fragile")
    def undecorated_fragile() -> str:
        calls["undecorated"] += 1
        if state.get("fail"):
            raise RuntimeError("the database is down")
        return "<p>still here</p>"

    @app.get("/stream")
    def stream() -> Response:
        def chunks() -> Iterator[bytes]:
            calls["stream-started"] += 1
            if has_request_context():  # some hook read the body before it left Flask
                calls["read-early"] += 1
            yield b"one,"
            yield b"two"

        return Response(chunks(), mimetype="text/plain", headers={"Cache-Tag": "streamed"})

    @app.get("/opted-in")
    @pages.cached
    def opted_in() -> str:
        calls["opted-in"] += 1
        return "<p>opted in</p>"

    return site


@pytest.fixture
def make_site(key_prefix: str) -> Iterator[Callable[..., Site]]:
    """Return ``make(server, **config) -> Site``: config keys without ``RCACHE_PAGES_``."""
    sites: list[Site] = []

    def make(server: Any, is_authenticated: Any = None, **config: Any) -> Site:
        prefix = "t" + key_prefix.strip(":").replace(":", "")
        settings = {"RCACHE_PAGES_URL": server.url, "RCACHE_PAGES_PREFIX": prefix}
        settings.update({f"RCACHE_PAGES_{name.upper()}": v for name, v in config.items()})
        site = build(PageCache(is_authenticated=is_authenticated), settings)
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.pages.close(site.app)


def xc(response: Any) -> str:
    return str(response.headers.get("X-Cache"))


def assert_one_round_trip(server: Any, action: Callable[[], Any]) -> Any:
    """Run ``action``: Redis must have served it in one round trip.

    Counted by the server: the commands it ran (those a Lua script runs included; the INFO
    calls that read the counters left out) and the requests it read. Steady state is plain
    reads (HMGET of the variant, MGET of the spec and purge keys); a process's first lookup
    of a URL may be one EVALSHA of ``lookup.lua`` instead. Either way one read: one round
    trip, and no second one.
    """
    with server.client() as raw:
        before = raw.execute_command("INFO", "stats", "commandstats")
        result = action()
        after = raw.execute_command("INFO", "stats", "commandstats")
    _assert_one_round_trip(before, after)
    return result


def _assert_one_round_trip(before: dict[str, Any], after: dict[str, Any]) -> None:
    calls = {
        name.removeprefix("cmdstat_"): stats["calls"] - before.get(name, {"calls": 0})["calls"]
        for name, stats in after.items()
        if name.startswith("cmdstat_")
    }
    calls["info"] -= 1
    changed = {name: n for name, n in calls.items() if n}
    assert changed in (
        {"hmget": 1, "mget": 1},
        {"evalsha": 1, "hmget": 1, "get": changed.get("get")},
    ), changed
    assert after["total_reads_processed"] - before["total_reads_processed"] == 2  # + one INFO


# -- hit, miss, bypass, round trips -------------------------------------------------------------


def test_miss_then_hit_then_bypass_for_post(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    first, second = site.get("/page/a"), site.get("/page/a")
    assert (xc(first), xc(second)) == ("MISS", "HIT") and site.calls["a"] == 1
    assert first.data == second.data == b"<p>a #1</p>"
    assert second.headers["ETag"] == first.headers["ETag"] and second.headers["Age"]
    assert second.headers["Content-Length"] == "11"
    posted = site.client.post("/page/a")
    assert xc(posted) == "BYPASS" and posted.data == b"<p>a #2</p>"


def test_a_hit_is_one_round_trip_with_and_without_vary(make_site: Any, fresh_server: Any) -> None:
    site = make_site(fresh_server)
    for _ in range(2):  # the first miss loads the scripts
        site.get("/page/rt")
        site.get("/lang", **{"Accept-Language": "de"})
    plain = assert_one_round_trip(fresh_server, lambda: site.get("/page/rt"))
    varied = assert_one_round_trip(
        fresh_server, lambda: site.get("/lang", **{"Accept-Language": "de"})
    )
    assert xc(plain) == xc(varied) == "HIT"


# -- HTTP semantics -----------------------------------------------------------------------------


def test_vary_keeps_variants_apart(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    for lang in ("en", "de"):
        assert site.get("/lang", **{"Accept-Language": lang}).data == f"<p>{lang}</p>".encode()
    for lang in ("en", "de"):
        hit = site.get("/lang", **{"Accept-Language": lang})
        assert (xc(hit), hit.data) == ("HIT", f"<p>{lang}</p>".encode())
    assert site.calls["lang"] == 2


def test_304_for_if_none_match_and_if_modified_since(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    etag = site.get("/dated").headers["ETag"]
    fresh = site.get("/dated", **{"If-None-Match": etag})
    assert (fresh.status_code, fresh.data, xc(fresh)) == (304, b"", "HIT")
    for name in ("ETag", "Date", "Cache-Control", "Age"):
        assert name in fresh.headers, name
    assert fresh.headers["ETag"] == etag and "Content-Length" not in fresh.headers
    since = site.get("/dated", **{"If-Modified-Since": http_date(LAST_MODIFIED + 60)})
    assert (since.status_code, since.data) == (304, b"")
    assert "ETag" in since.headers and "Date" in since.headers
    older = site.get("/dated", **{"If-Modified-Since": http_date(LAST_MODIFIED - 60)})
    assert (older.status_code, older.data) == (200, b"<p>dated</p>")
    assert site.calls["dated"] == 1


def test_head_is_served_from_the_get_entry(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    assert xc(site.get("/page/h")) == "MISS"
    head = site.client.head("/page/h")
    assert (xc(head), head.status_code, head.data) == ("HIT", 200, b"")
    assert head.headers["Content-Length"] == str(len(b"<p>h #1</p>")) and site.calls["h"] == 1


def test_gzip_for_gzip_clients_decoded_for_others(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    first = site.get("/big", **{"Accept-Encoding": "gzip, br"})
    hit = site.get("/big", **{"Accept-Encoding": "gzip"})
    plain = site.get("/big")
    for response in (first, hit):
        assert response.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(response.data) == BIG
        assert int(response.headers["Content-Length"]) == len(response.data) < len(BIG) // 3
    assert (xc(plain), plain.data) == ("HIT", BIG) and "Content-Encoding" not in plain.headers
    assert "Accept-Encoding" in plain.headers.get_all("Vary") and site.calls["big"] == 1


# -- never cached -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name", "headers"),
    [
        ("/cookie", "cookie", {}),
        ("/private", "private", {}),
        ("/no-store", "no-store", {}),
        ("/page/auth", "auth", {"Authorization": "Bearer secret"}),
        ("/visits", "visits", {}),  # the session changed: Flask sets the cookie later
    ],
)
def test_never_cached(
    make_site: Any, redis_server: Any, path: str, name: str, headers: dict[str, str]
) -> None:
    site = make_site(redis_server)
    responses = [site.get(path, **headers) for _ in range(2)]
    assert [xc(r) for r in responses] == ["MISS", "MISS"] and site.calls[name] == 2


def test_set_cookie_allowed_per_view(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    first, second = site.get("/cookie-allowed"), site.get("/cookie-allowed")
    assert "seen=1" in first.headers["Set-Cookie"]  # the producer still gets its cookie
    assert xc(second) == "HIT" and "Set-Cookie" not in second.headers
    assert site.calls["cookie"] == 1


def test_logged_in_users_bypass(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server, is_authenticated=lambda: "user" in session)
    anonymous = site.app.test_client()
    assert [xc(anonymous.get("/whoami")) for _ in range(2)] == ["MISS", "HIT"]
    user = site.app.test_client()
    user.get("/login")
    for _ in range(2):
        response = user.get("/whoami")
        assert (xc(response), response.data) == ("BYPASS", b"<p>alice</p>")
    assert site.calls["whoami"] == 3
    assert "Cookie" in anonymous.get("/whoami").headers["Vary"]  # the check read the session


# -- purge, stale-if-error, streaming, outages --------------------------------------------------


def test_an_edit_purges_by_tag(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    site.state[7] = "First title"
    assert site.get("/post/7").data == b"<h1>First title</h1>"
    assert xc(site.get("/post/7")) == "HIT"
    assert xc(site.client.post("/post/7", data={"title": "Second title"})) == "BYPASS"
    after = site.get("/post/7")
    assert (xc(after), after.data) == ("MISS", b"<h1>Second title</h1>")
    assert "Cache-Tag" not in after.headers and site.calls["post"] == 2


def test_a_failing_decorated_view_gets_its_stale_copy(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server, stale_if_error=60)
    site.app.testing = True  # exceptions propagate: the decorator still serves stale
    assert xc(site.get("/fragile")) == "MISS"
    site.state["fail"] = True
    time.sleep(0.3)  # the 0.2 s of freshness are over
    stale = site.get("/fragile")
    assert (stale.status_code, xc(stale), stale.data) == (200, "STALE", b"<p>fragile</p>")
    site.cache.purge_url("http://localhost/fragile")
    with pytest.raises(RuntimeError, match="database is down"):
        site.get("/fragile")
    site.state["fail"] = False
    assert xc(site.get("/fragile")) == "MISS"  # the lease was given back meanwhile
    assert site.calls["fragile"] == 4


def test_a_500_from_any_view_is_replaced_by_a_stale_copy(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server, stale_if_error=60, default_ttl=0.2)
    assert xc(site.get("/undecorated-fragile")) == "MISS"
    site.state["fail"] = True
    time.sleep(0.3)
    stale = site.get("/undecorated-fragile")
    assert (stale.status_code, xc(stale), stale.data) == (200, "STALE", b"<p>still here</p>")
    site.cache.purge_prefix("/")
    failed = site.get("/undecorated-fragile")
    assert (failed.status_code, xc(failed)) == (500, "MISS")


def test_streamed_responses_pass_through_untouched(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    for _ in range(2):
        response = site.client.get("/stream", buffered=False)
        assert response.is_streamed and xc(response) == "MISS"
        assert "Cache-Tag" not in response.headers
        assert response.get_data() == b"one,two"
        response.close()
    assert (site.calls["stream-started"], site.calls["read-early"]) == (2, 0)


def test_redis_down_pages_still_answer(make_site: Any, fresh_server: Any) -> None:
    site = make_site(fresh_server, options=FAST)
    assert [xc(site.get("/page/down")) for _ in range(2)] == ["MISS", "HIT"]
    fresh_server.stop()
    for _ in range(3):
        response = site.get("/page/down")
        assert (response.status_code, xc(response)) == (200, "BYPASS")
    assert site.calls["down"] == 4
    with site.app.test_request_context():
        assert site.pages.purge_tag("anything") is False


# -- configuration ------------------------------------------------------------------------------


def test_only_decorated_views_when_not_caching_all(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server, cache_all_views=False)
    assert [xc(site.get("/page/x")) for _ in range(2)] == ["BYPASS", "BYPASS"]
    assert [xc(site.get("/opted-in")) for _ in range(2)] == ["MISS", "HIT"]


def test_unrouted_requests_are_not_looked_up(make_site: Any, redis_server: Any) -> None:
    site = make_site(redis_server)
    for _ in range(2):
        missing = site.get("/no/such/page")
        assert (missing.status_code, xc(missing)) == (404, "BYPASS")


def test_a_given_cache_is_shared_and_config_is_checked(redis_server: Any, key_prefix: str) -> None:
    prefix = "t" + key_prefix.strip(":").replace(":", "")
    with CorePageCache.from_url(redis_server.url, prefix=prefix) as cache:
        pages = PageCache(cache=cache)
        one, two = build(pages, {}), build(pages, {})
        assert xc(one.get("/page/shared")) == "MISS"
        assert xc(two.get("/page/shared")) == "HIT"  # two apps (workers), one cache
    with pytest.raises(ConfigurationError, match="RCACHE_PAGES_URL"):
        build(PageCache(), {})
    with pytest.raises(ConfigurationError, match="RCACHE_PAGES_DEFAULT_TLL"):
        build(PageCache(), {"RCACHE_PAGES_URL": redis_server.url, "RCACHE_PAGES_DEFAULT_TLL": 1})
