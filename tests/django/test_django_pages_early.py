"""Hits answered by the middleware before Django resolves the URL, and when they are not.

A request the middleware answered early leaves ``request.resolver_match`` unset: Django
never resolved its URL, so no middleware's ``process_view`` and no view ran for it.
"""

from __future__ import annotations

from typing import Any

from django.test import AsyncClient, Client
from test_django_pages import (  # the URLconf, its views and fixtures
    AUTH,
    AUTH_APPS,
    BACKEND,
    CALLS,
    CSRF,
    PAGES,
    SESSIONS,
    _fresh_state,
    aassert_one_round_trip,
    assert_one_round_trip,
    configure,
    xc,
)

from rcache_django.pages import sync_page_cache

__all__ = ["_fresh_state", "configure"]

SECURITY = "django.middleware.security.SecurityMiddleware"
COMMON = "django.middleware.common.CommonMiddleware"
MESSAGES = "django.contrib.messages.middleware.MessageMiddleware"
XFRAME = "django.middleware.clickjacking.XFrameOptionsMiddleware"
GZIP = "django.middleware.gzip.GZipMiddleware"
PROBE = f"{__name__}.Probe"
VIEWING = f"{__name__}.Viewing"
STACK = [PROBE, PAGES, SECURITY, SESSIONS, COMMON, CSRF, AUTH, MESSAGES, XFRAME]
AUTH_SETTINGS = {"INSTALLED_APPS": AUTH_APPS, "AUTHENTICATION_BACKENDS": [BACKEND]}


class Probe:
    """A middleware before the page cache's with no ``process_view``: it may sit there."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        response["X-Probe"] = "1"
        return response


class Viewing(Probe):
    """One with a ``process_view``, which a hit answered early would skip."""

    def process_view(self, request: Any, view: Any, args: Any, kwargs: Any) -> None:
        CALLS["process_view"] += 1


def resolved(response: Any) -> bool:
    """Return whether Django resolved the URL of the request ``response`` answers."""
    request = getattr(response, "wsgi_request", None) or response.asgi_request
    return request.resolver_match is not None


def without_age(response: Any) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in response.items() if k != "Age")


def test_an_early_hit_equals_a_normal_hit(configure: Any, redis_server: Any) -> None:
    configure(redis_server, STACK, settings=AUTH_SETTINGS)
    early = Client()
    first = early.get("/page/e/", HTTP_ACCEPT_ENCODING="gzip")
    fast = early.get("/page/e/", HTTP_ACCEPT_ENCODING="gzip")  # the miss taught the URL
    assert (xc(first), xc(fast), resolved(first), resolved(fast)) == ("MISS", "HIT", True, False)
    head = early.head("/page/e/")
    assert (xc(head), head.content, head["Content-Length"], resolved(head)) == (
        "HIT",
        b"",
        "11",
        False,
    )

    configure(redis_server, STACK, EARLY_HITS=False, settings=AUTH_SETTINGS)
    slow = Client().get("/page/e/", HTTP_ACCEPT_ENCODING="gzip")
    assert (xc(slow), resolved(slow)) == ("HIT", True)
    assert fast.status_code == slow.status_code == 200
    assert fast.content == slow.content == b"<p>e #1</p>" and CALLS["e"] == 1
    assert without_age(fast) == without_age(slow)
    assert fast["X-Probe"] == "1" and "X-Frame-Options" in fast  # stored as first sent


def test_an_early_hit_is_one_round_trip(configure: Any, fresh_server: Any) -> None:
    configure(fresh_server)
    client = Client()
    for _ in range(3):  # the first miss loads the scripts; the first hit learns the URL
        client.get("/page/rt/")
        client.get("/lang/", HTTP_ACCEPT_LANGUAGE="de")
    plain = assert_one_round_trip(fresh_server, lambda: client.get("/page/rt/"))
    varied = assert_one_round_trip(
        fresh_server, lambda: client.get("/lang/", HTTP_ACCEPT_LANGUAGE="de")
    )
    assert xc(plain) == xc(varied) == "HIT" and varied.content == b"<p>de</p>"
    assert not resolved(plain) and not resolved(varied)
    other = client.get("/lang/", HTTP_ACCEPT_LANGUAGE="fr")  # a new variant: a miss
    assert (xc(other), other.content, resolved(other)) == ("MISS", b"<p>fr</p>", True)


async def test_an_async_early_hit_is_one_round_trip(configure: Any, fresh_server: Any) -> None:
    configure(fresh_server)
    client = AsyncClient()
    for _ in range(3):
        await client.get("/apage/rt/")
    hit = await aassert_one_round_trip(fresh_server, lambda: client.get("/apage/rt/"))
    assert (xc(hit), hit.content, resolved(hit), CALLS["rt"]) == ("HIT", b"<p>rt #1</p>", False, 1)
    head = await client.head("/apage/rt/")
    assert (xc(head), head.content, resolved(head)) == ("HIT", b"", False)


def test_304_and_a_purged_page_go_through_django_with_one_lookup(
    configure: Any, redis_server: Any, monkeypatch: Any
) -> None:
    configure(redis_server)
    client = Client()
    etag = client.get("/page/n/")["ETag"]
    client.get("/page/n/")  # learned
    cache = sync_page_cache()
    lookups: list[str] = []
    real = cache.lookup

    def counted(page: Any) -> Any:
        lookups.append(page.path)
        return real(page)

    monkeypatch.setattr(cache, "lookup", counted)
    not_modified = client.get("/page/n/", HTTP_IF_NONE_MATCH=etag)
    assert (not_modified.status_code, xc(not_modified), resolved(not_modified)) == (
        304,
        "HIT",
        True,
    )
    assert "Content-Type" not in not_modified and lookups == ["/page/n/"]
    assert cache.purge_url("http://testserver/page/n/")
    again = client.get("/page/n/")  # a learned URL, now a miss: the view runs, is stored
    assert (xc(again), again.content, resolved(again)) == ("MISS", b"<p>n #2</p>", True)
    assert lookups == ["/page/n/"] * 2 and CALLS["n"] == 2
    hit = client.get("/page/n/")
    assert (xc(hit), hit.content, resolved(hit)) == ("HIT", b"<p>n #2</p>", False)
    assert lookups == ["/page/n/"] * 3


def test_plain_http_under_ssl_redirect_is_left_to_security_middleware(
    configure: Any, redis_server: Any
) -> None:
    configure(redis_server, [PAGES, SECURITY], settings={"SECURE_SSL_REDIRECT": True})
    client = Client()
    secure = [client.get("/page/s/", secure=True) for _ in range(2)]
    assert [(xc(r), resolved(r)) for r in secure] == [("MISS", True), ("HIT", False)]
    redirected = client.get("/page/s/")
    assert (redirected.status_code, xc(redirected)) == (301, "BYPASS")


def test_session_and_bad_csrf_cookies_and_users_keep_hits_inside_django(
    configure: Any, redis_server: Any
) -> None:
    configure(redis_server, [PAGES, SESSIONS, CSRF, AUTH], settings=AUTH_SETTINGS)
    client = Client()
    assert [xc(client.get("/page/c/")) for _ in range(2)] == ["MISS", "HIT"]
    assert not resolved(client.get("/page/c/"))
    client.cookies["sessionid"] = "nosuchsession"
    stale_session = client.get("/page/c/")
    assert (xc(stale_session), resolved(stale_session)) == ("HIT", True)
    del client.cookies["sessionid"]
    client.cookies["csrftoken"] = "x" * 32
    assert not resolved(client.get("/page/c/"))  # a valid one: nothing to renew
    client.cookies["csrftoken"] = "bad!"
    renewed = client.get("/page/c/")
    assert (xc(renewed), resolved(renewed)) == ("HIT", True)
    assert "csrftoken" in renewed.cookies  # CsrfViewMiddleware replaced it, as always

    user = Client()
    user.get("/login/")
    for _ in range(2):
        response = user.get("/whoami/")
        assert (xc(response), response.content, resolved(response)) == (
            "BYPASS",
            b"<p>user</p>",
            True,
        )
    assert CALLS["whoami"] == 2 and CALLS["c"] == 1


def test_a_url_not_learned_yet_goes_the_normal_path(configure: Any, redis_server: Any) -> None:
    configure(redis_server)
    Client().get("/page/l/")  # stored through another stack
    client = Client()
    first, second = client.get("/page/l/"), client.get("/page/l/")
    assert (xc(first), resolved(first)) == ("HIT", True)
    assert (xc(second), resolved(second)) == ("HIT", False)
    posted = client.post("/page/l/")
    assert (xc(posted), resolved(posted)) == ("BYPASS", True)
    assert xc(client.get("/page/l/?q=1")) == "MISS"  # another URL: another page
    refused = client.get("/page/l/", HTTP_HOST="evil.example")  # not in ALLOWED_HOSTS
    assert (refused.status_code, xc(refused)) == (400, "BYPASS")


def test_the_switch_off_and_stacks_that_could_add_to_a_hit(
    configure: Any, redis_server: Any
) -> None:
    for stack, options, extra in (
        ([PAGES], {"EARLY_HITS": False}, {}),
        ([VIEWING, PAGES], {}, {}),
        ([PAGES, GZIP], {}, {}),
        ([PAGES, COMMON], {}, {"DISALLOWED_USER_AGENTS": ["x"]}),
    ):
        configure(redis_server, stack, settings=extra, **options)
        client = Client()
        responses = [client.get(f"/page/off{len(stack)}{len(extra)}/") for _ in range(4)]
        assert [xc(r) for r in responses[1:]] == ["HIT"] * 3, stack
        assert all(resolved(r) for r in responses), stack
    assert CALLS["process_view"] == 4
    # the switch on (the default), CommonMiddleware with nothing to say on its own
    configure(redis_server, [PROBE, PAGES, COMMON], settings={"DISALLOWED_USER_AGENTS": []})
    client = Client()
    responses = [client.get("/page/on/") for _ in range(3)]
    assert [resolved(r) for r in responses] == [True, False, False]
    assert responses[2]["X-Probe"] == "1" and responses[2]["Content-Length"] == "12"
