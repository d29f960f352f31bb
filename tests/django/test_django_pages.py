"""The Django page cache through Django's test clients, against real Redis.

This module is also the URLconf of its tests (``ROOT_URLCONF``): the views below count
their calls in ``CALLS`` so a test can tell a page served from the cache from one the view
produced.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.http import HttpResponse, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.template.response import TemplateResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import path
from django.utils.cache import patch_vary_headers
from django.utils.http import http_date

from rcache_django.pages import (
    PageCacheMiddleware,
    apurge_tag,
    page_cache,
    purge_tag,
    sync_page_cache,
)

PAGES = "rcache_django.pages.PageCacheMiddleware"
SESSIONS = "rcache_django.sessions.SessionMiddleware"
AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
CSRF = "django.middleware.csrf.CsrfViewMiddleware"
AUTH_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
BACKEND = f"{__name__}.Backend"
FAST = {"retry_attempts": 1, "socket_timeout": 0.5, "socket_connect_timeout": 0.5}
LAST_MODIFIED = 1_700_000_000

CALLS: Counter[str] = Counter()
STATE: dict[str, Any] = {}
BIG = b"".join(b"<tr><td>item %d</td><td>%d.00</td></tr>\n" % (i, i * 7) for i in range(600))


# -- the views --------------------------------------------------------------------------------


def plain(request: Any, name: str) -> HttpResponse:
    CALLS[name] += 1
    return HttpResponse(f"<p>{name} #{CALLS[name]}</p>")


def by_language(request: Any) -> HttpResponse:
    CALLS["lang"] += 1
    response = HttpResponse(f"<p>{request.headers.get('Accept-Language', '-')}</p>")
    patch_vary_headers(response, ("Accept-Language",))
    return response


def big(request: Any) -> HttpResponse:
    CALLS["big"] += 1
    return HttpResponse(BIG)


def dated(request: Any) -> HttpResponse:
    CALLS["dated"] += 1
    response = HttpResponse("<p>dated</p>")
    response["Last-Modified"] = http_date(LAST_MODIFIED)
    response["Cache-Control"] = "max-age=300"
    return response


def cookie(request: Any) -> HttpResponse:
    CALLS["cookie"] += 1
    response = HttpResponse("<p>cookie</p>")
    response.set_cookie("seen", "1")
    return response


@page_cache(allow_set_cookie=True)
def cookie_allowed(request: Any) -> HttpResponse:
    return cookie(request)


def with_header(name: str, value: str) -> Callable[[Any], HttpResponse]:
    def view(request: Any) -> HttpResponse:
        CALLS[name] += 1
        response = HttpResponse(f"<p>{name}</p>")
        response[name] = value
        return response

    return view


def form(request: Any) -> HttpResponse:
    CALLS["form"] += 1
    return HttpResponse(f'<form><input name="csrfmiddlewaretoken" value="{get_token(request)}">')


def whoami(request: Any) -> HttpResponse:
    CALLS["whoami"] += 1
    return HttpResponse(f"<p>{'user' if request.user.is_authenticated else 'anonymous'}</p>")


def visits(request: Any) -> HttpResponse:
    CALLS["visits"] += 1
    request.session["visits"] = request.session.get("visits", 0) + 1
    return HttpResponse(f"<p>visit {request.session['visits']}</p>")


def name_from_session(request: Any) -> HttpResponse:
    CALLS["name"] += 1
    return HttpResponse(f"<p>{request.session.get('name', '-')}</p>")


def set_name(request: Any, name: str) -> HttpResponse:
    request.session["name"] = name
    return HttpResponse("ok")


def login(request: Any) -> HttpResponse:
    request.session["_auth_user_id"] = "1"
    request.session["_auth_user_backend"] = BACKEND
    return HttpResponse("logged in")


@page_cache(tags=["posts"])
def post(request: Any, pk: int) -> HttpResponse:
    CALLS["post"] += 1
    response = HttpResponse(f"<h1>{STATE.get(pk, 'draft')}</h1>")
    response["Cache-Tag"] = f"post-{pk}"
    return response


def edit(request: Any, pk: int) -> HttpResponse:
    STATE[pk] = request.POST["title"]
    purge_tag(f"post-{pk}")
    return HttpResponse("saved")


async def aedit(request: Any, pk: int) -> HttpResponse:
    STATE[pk] = request.POST["title"]
    await apurge_tag(f"post-{pk}")
    return HttpResponse("saved")


@page_cache(ttl=0.2)
def fragile(request: Any) -> HttpResponse:
    CALLS["fragile"] += 1
    if STATE.get("fail"):
        raise RuntimeError("the database is down")
    return HttpResponse("<p>fragile</p>")


def stream(request: Any) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        CALLS["stream-started"] += 1
        yield b"one,"
        yield b"two"

    response = StreamingHttpResponse(chunks(), content_type="text/plain")
    response["Cache-Tag"] = "streamed"
    return response


async def aplain(request: Any, name: str) -> HttpResponse:
    await asyncio.sleep(0)
    return plain(request, name)


@page_cache(ttl=600, tags=["decorated"])
def decorated(request: Any) -> HttpResponse:
    return plain(request, "decorated")


@page_cache(vary=["X-Theme"])
async def adecorated(request: Any) -> HttpResponse:
    await asyncio.sleep(0)
    CALLS["adecorated"] += 1
    return HttpResponse(f"<p>{request.headers.get('X-Theme', '-')}</p>")


@page_cache
def template(request: Any) -> TemplateResponse:
    CALLS["template"] += 1
    return TemplateResponse(request, "page.html", {"name": "world"})


urlpatterns = [
    path("page/<str:name>/", plain),
    path("apage/<str:name>/", aplain),
    path("lang/", by_language),
    path("big/", big),
    path("dated/", dated),
    path("cookie/", cookie),
    path("cookie-allowed/", cookie_allowed),
    path("private/", with_header("Cache-Control", "private, max-age=60")),
    path("no-store/", with_header("Cache-Control", "no-store")),
    path("form/", form),
    path("whoami/", whoami),
    path("login/", login),
    path("visits/", visits),
    path("name/", name_from_session),
    path("name/<str:name>/", set_name),
    path("post/<int:pk>/", post),
    path("post/<int:pk>/edit/", edit),
    path("post/<int:pk>/aedit/", aedit),
    path("fragile/", fragile),
    path("stream/", stream),
    path("decorated/", decorated),
    path("adecorated/", adecorated),
    path("template/", template),
]


class _User:
    is_authenticated = True
    is_active = True

    def __init__(self, pk: int) -> None:
        self.pk = pk


class Backend:
    """An authentication backend with one user and no database."""

    def get_user(self, user_id: Any) -> _User | None:
        return _User(1) if str(user_id) == "1" else None

    async def aget_user(self, user_id: Any) -> _User | None:
        return self.get_user(user_id)


# -- fixtures and helpers -----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    CALLS.clear()
    STATE.clear()
    yield
    CALLS.clear()
    STATE.clear()


@pytest.fixture
def configure(key_prefix: str) -> Iterator[Callable[..., None]]:
    """Return ``configure(server, middleware=..., **options)``: settings for one test."""
    overrides: list[Any] = []

    def apply(server: Any, middleware: list[str] | None = None, **options: Any) -> None:
        prefix = "t" + key_prefix.strip(":").replace(":", "")
        extra = options.pop("settings", {})
        top = {name: options.pop(name) for name in ("EARLY_HITS",) if name in options}
        override = override_settings(
            ROOT_URLCONF=__name__,
            MIDDLEWARE=[PAGES] if middleware is None else middleware,
            RCACHE_PAGES={"URL": server.url, "OPTIONS": {"prefix": prefix, **options}, **top},
            RCACHE_SESSIONS={"URL": server.url, "OPTIONS": {"prefix": prefix + "s"}},
            TEMPLATES=[
                {
                    "BACKEND": "django.template.backends.django.DjangoTemplates",
                    "OPTIONS": {
                        "loaders": [
                            (
                                "django.template.loaders.locmem.Loader",
                                {"page.html": "<p>hello {{ name }}</p>"},
                            )
                        ]
                    },
                }
            ],
            **extra,
        )
        override.enable()
        overrides.append(override)

    yield apply
    for override in reversed(overrides):
        override.disable()


def xc(response: Any) -> str:
    return str(response.headers.get("X-Cache"))


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


async def aassert_one_round_trip(server: Any, action: Callable[[], Any]) -> Any:
    """:func:`assert_one_round_trip` for an awaitable ``action()``."""
    with server.client() as raw:
        before = raw.execute_command("INFO", "stats", "commandstats")
        result = await action()
        after = raw.execute_command("INFO", "stats", "commandstats")
    _assert_one_round_trip(before, after)
    return result


# -- hit, miss, bypass --------------------------------------------------------------------------


def test_miss_then_hit_then_bypass_for_post(configure: Any, redis_server: Any) -> None:
    configure(redis_server)
    client = Client()
    first, second = client.get("/page/a/"), client.get("/page/a/")
    assert (xc(first), xc(second)) == ("MISS", "HIT")
    assert first.content == second.content == b"<p>a #1</p>" and CALLS["a"] == 1
    assert second["ETag"] == first["ETag"] and second["Content-Length"] == "11"
    assert "Age" in second
    posted = client.post("/page/a/")
    assert xc(posted) == "BYPASS" and posted.content == b"<p>a #2</p>"
    assert xc(client.get("/page/b/")) == "MISS"  # another URL


async def test_async_stack_miss_then_hit(configure: Any, redis_server: Any) -> None:
    configure(redis_server)
    client = AsyncClient()
    first = await client.get("/apage/x/")
    second = await client.get("/apage/x/")
    assert (xc(first), xc(second)) == ("MISS", "HIT") and CALLS["x"] == 1
    assert second.content == b"<p>x #1</p>"
    sync_hit = await asyncio.to_thread(Client().get, "/apage/x/")  # one cache, two stacks
    assert xc(sync_hit) == "HIT" and CALLS["x"] == 1


def test_the_middleware_is_sync_and_async_capable(configure: Any, redis_server: Any) -> None:
    configure(redis_server)

    async def get_response(request: Any) -> Any:
        return HttpResponse()

    assert PageCacheMiddleware.sync_capable and PageCacheMiddleware.async_capable
    assert iscoroutinefunction(PageCacheMiddleware(get_response))
    assert not iscoroutinefunction(PageCacheMiddleware(lambda request: HttpResponse()))


# -- round trips, counted by Redis --------------------------------------------------------------


def test_a_hit_is_one_round_trip(configure: Any, fresh_server: Any) -> None:
    configure(fresh_server)
    client = Client()
    for _ in range(2):  # the first miss loads the scripts
        client.get("/page/rt/")
        client.get("/lang/", HTTP_ACCEPT_LANGUAGE="de")
    plain = assert_one_round_trip(fresh_server, lambda: client.get("/page/rt/"))
    varied = assert_one_round_trip(
        fresh_server, lambda: client.get("/lang/", HTTP_ACCEPT_LANGUAGE="de")
    )
    assert xc(plain) == xc(varied) == "HIT" and varied.content == b"<p>de</p>"


async def test_an_async_hit_is_one_round_trip(configure: Any, fresh_server: Any) -> None:
    configure(fresh_server)
    client = AsyncClient()
    for _ in range(2):
        await client.get("/apage/rt/")
        await client.get("/lang/", headers={"Accept-Language": "de"})
    plain = await aassert_one_round_trip(fresh_server, lambda: client.get("/apage/rt/"))
    varied = await aassert_one_round_trip(
        fresh_server, lambda: client.get("/lang/", headers={"Accept-Language": "de"})
    )
    assert xc(plain) == xc(varied) == "HIT" and varied.content == b"<p>de</p>"


def test_anonymous_hits_with_auth_installed_stay_one_round_trip(
    configure: Any, fresh_server: Any
) -> None:
    configure(
        fresh_server,
        [PAGES, SESSIONS, AUTH],
        settings={"INSTALLED_APPS": AUTH_APPS, "AUTHENTICATION_BACKENDS": [BACKEND]},
    )
    client = Client()
    client.get("/page/anon/")
    client.get("/page/anon/")
    hit = assert_one_round_trip(fresh_server, lambda: client.get("/page/anon/"))
    assert xc(hit) == "HIT" and "Cookie" not in hit.get("Vary", "")
    # no session was loaded to learn that the visitor is anonymous


# -- HTTP semantics -----------------------------------------------------------------------------


def test_vary_keeps_variants_apart(configure: Any, redis_server: Any) -> None:
    configure(redis_server)
    client = Client()
    en = client.get("/lang/", HTTP_ACCEPT_LANGUAGE="en")
    de = client.get("/lang/", HTTP_ACCEPT_LANGUAGE="de")
    assert (en.content, de.content) == (b"<p>en</p>", b"<p>de</p>")
    hit_en = client.get("/lang/", HTTP_ACCEPT_LANGUAGE="en")
    hit_de = client.get("/lang/", HTTP_ACCEPT_LANGUAGE="de")
    assert (xc(hit_en), hit_en.content) == ("HIT", b"<p>en</p>")
    assert (xc(hit_de), hit_de.content) == ("HIT", b"<p>de</p>")
    assert CALLS["lang"] == 2 and "Accept-Language" in hit_en["Vary"]


def test_304_for_if_none_match_and_if_modified_since(configure: Any, redis_server: Any) -> None:
    configure(redis_server)
    client = Client()
    etag = client.get("/dated/")["ETag"]
    fresh = client.get("/dated/", HTTP_IF_NONE_MATCH=etag)
    assert (fresh.status_code, fresh.content, xc(fresh)) == (304, b"", "HIT")
    for name in ("ETag", "Date", "Cache-Control", "Age"):
        assert fresh.has_header(name), name
    assert fresh["ETag"] == etag and not fresh.has_header("Content-Length")
    since = client.get("/dated/", HTTP_IF_MODIFIED_SINCE=http_date(LAST_MODIFIED + 60))
    assert (since.status_code, since.content) == (304, b"")
    assert since.has_header("ETag") and since.has_header("Date")
    older = client.get("/dated/", HTTP_IF_MODIFIED_SINCE=http_date(LAST_MODIFIED - 60))
    assert (older.status_code, older.content) == (200, b"<p>dated</p>")
    assert CALLS["dated"] == 1


def test_head_is_served_from_the_get_entry(configure: Any, redis_server: Any) -> None:
    configure(redis_server)
    client = Client()
    assert xc(client.get("/page/h/")) == "MISS"
    head = client.head("/page/h/")
    assert (xc(head), head.status_code, head.content) == ("HIT", 200, b"")
    assert head["Content-Length"] == str(len(b"<p>h #1</p>")) and CALLS["h"] == 1


def test_gzip_for_gzip_clients_decoded_for_others(configure: Any, redis_server: Any) -> None:
    configure(redis_server)
    client = Client()
    first = client.get("/big/", HTTP_ACCEPT_ENCODING="gzip, br")
    hit = client.get("/big/", HTTP_ACCEPT_ENCODING="gzip")
    plain_hit = client.get("/big/", HTTP_ACCEPT_ENCODING="identity")
    for response in (first, hit):
        assert response["Content-Encoding"] == "gzip" and gzip.decompress(response.content) == BIG
        assert int(response["Content-Length"]) == len(response.content) < len(BIG) // 3
    assert xc(plain_hit) == "HIT" and plain_hit.content == BIG
    assert not plain_hit.has_header("Content-Encoding")
    assert "Accept-Encoding" in plain_hit["Vary"] and CALLS["big"] == 1


# -- never cached -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "name", "headers"),
    [
        ("/cookie/", "cookie", {}),
        ("/private/", "Cache-Control", {}),
        ("/no-store/", "Cache-Control", {}),
        ("/page/auth/", "auth", {"HTTP_AUTHORIZATION": "Bearer secret"}),
    ],
)
def test_never_cached(
    configure: Any, redis_server: Any, url: str, name: str, headers: dict[str, str]
) -> None:
    configure(redis_server)
    client = Client()
    responses = [client.get(url, **headers) for _ in range(2)]
    assert [xc(r) for r in responses] == ["MISS", "MISS"] and CALLS[name] == 2


def test_set_cookie_allowed_per_view(configure: Any, redis_server: Any) -> None:
    configure(redis_server)
    client = Client()
    first = client.get("/cookie-allowed/")
    second = client.get("/cookie-allowed/")
    assert first.cookies["seen"].value == "1"  # the producer still gets its cookie
    assert xc(second) == "HIT" and "seen" not in second.cookies and CALLS["cookie"] == 1


def test_authenticated_users_bypass(configure: Any, redis_server: Any) -> None:
    configure(
        redis_server,
        [PAGES, SESSIONS, AUTH],
        settings={"INSTALLED_APPS": AUTH_APPS, "AUTHENTICATION_BACKENDS": [BACKEND]},
    )
    anonymous = Client()
    assert [xc(anonymous.get("/whoami/")) for _ in range(2)] == ["MISS", "HIT"]
    user = Client()
    user.get("/login/")
    for _ in range(2):
        response = user.get("/whoami/")
        assert (xc(response), response.content) == ("BYPASS", b"<p>user</p>")
    assert CALLS["whoami"] == 3


async def test_authenticated_users_bypass_on_the_async_stack(
    configure: Any, redis_server: Any
) -> None:
    configure(
        redis_server,
        [PAGES, SESSIONS, AUTH],
        settings={"INSTALLED_APPS": AUTH_APPS, "AUTHENTICATION_BACKENDS": [BACKEND]},
    )
    user = AsyncClient()
    await user.get("/login/")
    responses = [await user.get("/apage/mine/") for _ in range(2)]
    assert [xc(r) for r in responses] == ["BYPASS", "BYPASS"] and CALLS["mine"] == 2
    anonymous = AsyncClient()
    assert [xc(await anonymous.get("/apage/mine/")) for _ in range(2)] == ["MISS", "HIT"]


@pytest.mark.parametrize("order", ["pages-outside", "pages-inside"])
def test_pages_with_a_csrf_token_are_never_stored(
    configure: Any, redis_server: Any, order: str
) -> None:
    middleware = [PAGES, CSRF] if order == "pages-outside" else [CSRF, PAGES]
    configure(redis_server, middleware)
    client = Client()
    client.cookies["csrftoken"] = "a" * 32  # a returning visitor
    responses = [client.get("/form/") for _ in range(2)]
    assert [xc(r) for r in responses] == ["MISS", "MISS"] and CALLS["form"] == 2
    assert all("Cookie" in r["Vary"] for r in responses)


def test_pages_that_change_the_session_are_never_stored(configure: Any, redis_server: Any) -> None:
    configure(redis_server, [PAGES, SESSIONS])
    client = Client()
    responses = [client.get("/visits/") for _ in range(3)]  # only the 1st sets a cookie
    assert [r.content for r in responses] == [b"<p>visit %d</p>" % n for n in (1, 2, 3)]
    assert [xc(r) for r in responses] == ["MISS", "MISS", "MISS"]


def test_pages_that_read_the_session_vary_on_cookie_wherever_the_middleware_is(
    configure: Any, redis_server: Any
) -> None:
    configure(redis_server, [SESSIONS, PAGES])  # the session middleware answers last
    alice, bob = Client(), Client()
    alice.get("/name/alice/")
    bob.get("/name/bob/")
    assert [alice.get("/name/").content for _ in range(2)] == [b"<p>alice</p>"] * 2
    assert bob.get("/name/").content == b"<p>bob</p>"
    assert "Cookie" in alice.get("/name/")["Vary"] and CALLS["name"] == 2


# -- purge, stale-if-error, streaming, outages --------------------------------------------------


def test_an_edit_purges_by_tag(configure: Any, redis_server: Any) -> None:
    configure(redis_server)
    client = Client()
    STATE[7] = "First title"
    assert client.get("/post/7/").content == b"<h1>First title</h1>"
    assert xc(client.get("/post/7/")) == "HIT"
    assert xc(client.post("/post/7/edit/", {"title": "Second title"})) == "BYPASS"
    after = client.get("/post/7/")
    assert (xc(after), after.content) == ("MISS", b"<h1>Second title</h1>")
    assert "Cache-Tag" not in after and CALLS["post"] == 2


async def test_an_async_edit_purges_by_tag(configure: Any, redis_server: Any) -> None:
    configure(redis_server)
    client = AsyncClient()
    STATE[8] = "Old"
    await client.get("/post/8/")
    assert xc(await client.get("/post/8/")) == "HIT"
    await client.post("/post/8/aedit/", {"title": "New"})
    after = await client.get("/post/8/")
    assert (xc(after), after.content) == ("MISS", b"<h1>New</h1>")


@pytest.mark.parametrize("middleware", [[PAGES], []], ids=["middleware", "decorator-only"])
def test_a_failing_view_gets_its_stale_copy(
    configure: Any, redis_server: Any, middleware: list[str]
) -> None:
    configure(redis_server, middleware, stale_if_error=60)
    client = Client()
    assert xc(client.get("/fragile/")) == "MISS"
    STATE["fail"] = True
    time.sleep(0.3)  # the 0.2 s of freshness are over
    stale = client.get("/fragile/")
    assert (stale.status_code, xc(stale), stale.content) == (200, "STALE", b"<p>fragile</p>")
    assert CALLS["fragile"] == 2
    sync_page_cache().purge_url("http://testserver/fragile/")
    with pytest.raises(RuntimeError, match="database is down"):
        client.get("/fragile/")  # nothing left to serve: the error is the view's
    STATE["fail"] = False
    assert xc(client.get("/fragile/")) == "MISS"  # the lease was given back


async def test_a_failing_view_gets_its_stale_copy_on_the_async_stack(
    configure: Any, redis_server: Any
) -> None:
    configure(redis_server, stale_if_error=60)
    client = AsyncClient()
    assert xc(await client.get("/fragile/")) == "MISS"
    STATE["fail"] = True
    await asyncio.sleep(0.3)
    stale = await client.get("/fragile/")  # process_exception runs in a thread
    assert (stale.status_code, xc(stale), stale.content) == (200, "STALE", b"<p>fragile</p>")


def test_streaming_responses_pass_through_untouched(configure: Any, redis_server: Any) -> None:
    configure(redis_server)
    client = Client()
    for _ in range(2):
        response = client.get("/stream/")
        assert response.streaming and xc(response) == "MISS"
        assert "Cache-Tag" not in response
        started = CALLS["stream-started"]
        assert b"".join(response.streaming_content) == b"one,two"  # type: ignore[arg-type]
        assert CALLS["stream-started"] == started + 1  # consumed by the client, not before
    assert CALLS["stream-started"] == 2


def test_redis_down_pages_still_answer(configure: Any, fresh_server: Any) -> None:
    configure(fresh_server, **FAST)
    client = Client()
    assert [xc(client.get("/page/down/")) for _ in range(2)] == ["MISS", "HIT"]
    fresh_server.stop()
    for _ in range(3):
        response = client.get("/page/down/")
        assert (response.status_code, xc(response)) == (200, "BYPASS")
    assert CALLS["down"] == 4
    assert purge_tag("anything") is False


# -- the decorator without the middleware -------------------------------------------------------


def test_decorator_alone_caches_sync_views_and_templates(configure: Any, redis_server: Any) -> None:
    configure(redis_server, middleware=[])
    client = Client()
    assert [xc(client.get("/decorated/")) for _ in range(2)] == ["MISS", "HIT"]
    assert CALLS["decorated"] == 1
    assert xc(client.get("/page/free/")) == "None"  # undecorated: the cache never saw it
    first, second = client.get("/template/"), client.get("/template/")
    assert (xc(first), xc(second)) == ("MISS", "HIT")
    assert first.content == second.content == b"<p>hello world</p>" and CALLS["template"] == 1
    assert sync_page_cache().purge_tag("decorated")
    assert xc(client.get("/decorated/")) == "MISS"


async def test_decorator_alone_caches_async_views(configure: Any, redis_server: Any) -> None:
    configure(redis_server, middleware=[])
    client = AsyncClient()
    dark = await client.get("/adecorated/", headers={"X-Theme": "dark"})
    light = await client.get("/adecorated/", headers={"X-Theme": "light"})
    again = await client.get("/adecorated/", headers={"X-Theme": "dark"})
    assert [xc(r) for r in (dark, light, again)] == ["MISS", "MISS", "HIT"]
    assert again.content == b"<p>dark</p>" and "X-Theme" in again["Vary"]


def test_only_decorated_views_when_not_caching_all(configure: Any, redis_server: Any) -> None:
    configure(redis_server)
    from django.conf import settings

    override = override_settings(RCACHE_PAGES={**settings.RCACHE_PAGES, "CACHE_ALL_VIEWS": False})
    with override:
        client = Client()
        assert [xc(client.get("/page/opt/")) for _ in range(2)] == ["BYPASS", "BYPASS"]
        assert [xc(client.get("/decorated/")) for _ in range(2)] == ["MISS", "HIT"]
