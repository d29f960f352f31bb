"""May a request be looked up, may a response be stored, and what of it is kept."""

from __future__ import annotations

from typing import Any

import pytest

from rcache.errors import ConfigurationError
from rcache.pages.headers import Headers
from rcache.pages.model import Request, Response
from rcache.pages.policy import (
    DEFAULT_CACHEABLE_STATUSES,
    PageCachePolicy,
    is_request_cacheable,
    parse_tags,
    response_coding,
    storable,
    strip_for_storage,
)

POLICY = PageCachePolicy()


def request(method: str = "GET", *headers: tuple[str, str], authenticated: bool = False) -> Request:
    return Request(
        method, "https", "example.com", "/", "", Headers(headers), is_authenticated=authenticated
    )


def response(*headers: tuple[str, str], status: int = 200, body: bytes | None = b"ok") -> Response:
    return Response(status, Headers(headers), body)


# -- lookups ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_get_and_head_are_looked_up(method: str) -> None:
    assert is_request_cacheable(request(method), POLICY) == (True, "cacheable")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get"])
def test_other_methods_bypass(method: str) -> None:
    assert is_request_cacheable(request(method), POLICY) == (False, f"method {method}")


def test_request_no_store_bypasses() -> None:
    req = request("GET", ("Cache-Control", "max-age=0, NO-STORE"))
    assert is_request_cacheable(req, POLICY) == (False, "request no-store")


@pytest.mark.parametrize(
    "header",
    [("Cache-Control", "no-cache"), ("Cache-Control", "max-age=0"), ("Pragma", "no-cache")],
)
def test_request_preferences_do_not_bypass(header: tuple[str, str]) -> None:
    assert is_request_cacheable(request("GET", header), POLICY)[0]


def test_authenticated_users_bypass_unless_the_policy_caches_them() -> None:
    req = request(authenticated=True)
    assert is_request_cacheable(req, POLICY) == (False, "authenticated")
    assert is_request_cacheable(req, PageCachePolicy(cache_authenticated=True))[0]


def test_authorization_requests_may_be_looked_up() -> None:
    assert is_request_cacheable(request("GET", ("Authorization", "Basic eDp5")), POLICY)[0]


# -- storing ---------------------------------------------------------------------------------


def test_a_plain_response_is_storable() -> None:
    assert storable(request(), response(), POLICY) == (True, "storable")


@pytest.mark.parametrize(
    ("req", "resp", "reason"),
    [
        (request("HEAD"), response(), "HEAD response"),
        (request("POST"), response(), "method POST"),
        (request("GET", ("Cache-Control", "no-store")), response(), "request no-store"),
        (request(authenticated=True), response(), "authenticated"),
        (request(), response(status=206), "status 206"),
        (request(), response(status=500), "status 500"),
        (request(), response(status=302), "status 302"),
        (request(), response(body=None), "streaming body"),
        (request(), response(("Cache-Control", "public, No-Store")), "no-store"),
        (request(), response(("Cache-Control", "private")), "private"),
        (request(), response(("Cache-Control", 'private="Set-Cookie"')), "private"),
        (request(), response(("Set-Cookie", "sid=1")), "set-cookie"),
        (request(), response(("Vary", "Cookie"), ("Vary", "*")), "vary *"),
        (request(), response(("Vary", "Bad Name")), "vary *"),
        (request(), response(("Content-Encoding", "br")), "content-encoding"),
        (request(), response(("Content-Encoding", "gzip, gzip")), "content-encoding"),
    ],
)
def test_never_stored(req: Request, resp: Response, reason: str) -> None:
    assert storable(req, resp, POLICY) == (False, reason)


def test_body_size_limit_is_inclusive() -> None:
    policy = PageCachePolicy(max_body_bytes=10)
    assert storable(request(), response(body=b"x" * 10), policy)[0]
    assert storable(request(), response(body=b"x" * 11), policy) == (False, "body too large")
    assert storable(request(), response(body=b"x" * (1 << 20)), POLICY)[0]
    assert not storable(request(), response(body=b"x" * ((1 << 20) + 1)), POLICY)[0]


def test_set_cookie_may_be_allowed_by_policy_or_per_view() -> None:
    resp = response(("Set-Cookie", "sid=1"))
    assert storable(request(), resp, PageCachePolicy(allow_set_cookie=True))[0]
    assert storable(request(), resp, POLICY, allow_set_cookie=True)[0]
    view_says_no = storable(
        request(), resp, PageCachePolicy(allow_set_cookie=True), allow_set_cookie=False
    )
    assert view_says_no == (False, "set-cookie")


def test_cacheable_statuses_are_the_heuristic_ones_without_206() -> None:
    assert DEFAULT_CACHEABLE_STATUSES == {200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501}
    for status in sorted(DEFAULT_CACHEABLE_STATUSES):
        assert storable(request(), response(status=status), POLICY)[0], status


def test_no_cache_responses_may_be_stored() -> None:
    assert storable(request(), response(("Cache-Control", "no-cache")), POLICY)[0]


def test_authorization_needs_public_s_maxage_or_must_revalidate() -> None:
    req = request("GET", ("Authorization", "Bearer t"))
    assert storable(req, response(), POLICY) == (False, "authorization")
    assert storable(req, response(("Cache-Control", "max-age=60")), POLICY) == (
        False,
        "authorization",
    )
    for value in ("public", "s-maxage=60", "must-revalidate", "Max-Age=5, PUBLIC"):
        assert storable(req, response(("Cache-Control", value)), POLICY)[0], value


def test_vary_accept_encoding_and_gzip_coding_are_fine() -> None:
    resp = response(("Vary", "Accept-Encoding"), ("Content-Encoding", "x-gzip"))
    assert storable(request(), resp, POLICY)[0]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], "identity"),
        (["identity"], "identity"),
        (["GZIP"], "gzip"),
        (["x-gzip"], "gzip"),
        (["identity, gzip"], "gzip"),
        (["gzip", "gzip"], None),
        (["br"], None),
        (["deflate"], None),
    ],
)
def test_response_coding(values: list[str], expected: str | None) -> None:
    assert response_coding(Headers(("Content-Encoding", v) for v in values)) == expected


@pytest.mark.parametrize(
    "settings",
    [
        {"default_ttl": -1},
        {"default_ttl": float("nan")},
        {"default_ttl": float("inf")},
        {"default_ttl": True},
        {"stale_if_error": "10"},
        {"max_body_bytes": 1.5},
        {"max_body_bytes": -1},
        {"ignored_query_params": "utm_*"},
        {"cacheable_statuses": frozenset({99})},
        {"tag_header": ""},
    ],
)
def test_bad_settings_raise_configuration_error(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        PageCachePolicy(**settings)


def test_default_settings() -> None:
    assert POLICY.default_ttl == 60
    assert POLICY.ignored_query_params == ("utm_*", "fbclid", "gclid")
    assert not POLICY.cache_authenticated and not POLICY.allow_set_cookie
    assert POLICY.max_body_bytes == 1024 * 1024
    assert POLICY.tag_header == "Cache-Tag"


# -- what is kept ---------------------------------------------------------------------------


def test_hop_by_hop_private_and_recomputed_fields_are_dropped() -> None:
    resp = Response(
        200,
        Headers(
            [
                ("Content-Type", "text/html"),
                ("Connection", "close, X-Secret"),
                ("x-secret", "1"),
                ("Keep-Alive", "timeout=5"),
                ("TE", "trailers"),
                ("Trailer", "Expires"),
                ("Transfer-Encoding", "chunked"),
                ("Upgrade", "h2c"),
                ("Proxy-Authenticate", "Basic"),
                ("Proxy-Connection", "keep-alive"),
                ("Set-Cookie", "sid=1"),
                ("Age", "10"),
                ("Content-Length", "2"),
                ("Content-Encoding", "gzip"),
                ("Cache-Tag", "a"),
                ("Cache-Control", "max-age=60"),
                ("Vary", "Cookie"),
                ("ETag", '"x"'),
            ]
        ),
        b"ok",
    )
    kept, tags = strip_for_storage(resp)
    assert kept.to_list() == [
        ("Content-Type", "text/html"),
        ("Cache-Control", "max-age=60"),
        ("Vary", "Cookie"),
        ("ETag", '"x"'),
    ]
    assert tags == ("a",)


def test_tags_are_comma_or_space_separated_unique_and_ordered() -> None:
    resp = Response(
        200, Headers([("Cache-Tag", "post:1, home  user:7"), ("cache-tag", "home,,post:2")])
    )
    assert strip_for_storage(resp)[1] == ("post:1", "home", "user:7", "post:2")
    assert parse_tags([" ", ""]) == ()


def test_the_tag_header_is_configurable() -> None:
    resp = Response(200, Headers([("Surrogate-Key", "a b"), ("Cache-Tag", "c")]))
    kept, tags = strip_for_storage(resp, tag_header="Surrogate-Key")
    assert tags == ("a", "b")
    assert kept.to_list() == [("Cache-Tag", "c")]
