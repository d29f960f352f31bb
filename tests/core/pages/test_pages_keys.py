"""Cache keys: normalized URLs, stable digests, variants, and the lookup script's inputs."""

from __future__ import annotations

import pytest

from rcache.errors import DecodeError
from rcache.pages.headers import Headers
from rcache.pages.keys import (
    LOOKUP_SCRIPT,
    cache_key,
    canonical_url,
    lookup_args,
    normalize_host,
    normalize_query,
    primary_key,
    read_lookup_reply,
    variant_key,
)
from rcache.pages.model import Request
from rcache.pages.policy import PageCachePolicy
from rcache.scripts import Script

POLICY = PageCachePolicy()
URL_DIGEST = "bc4b46d60831e25b26f37e818cb4101c417755ce44873b94e8d496c276ad5da0"


def req(
    query: str = "",
    *headers: tuple[str, str],
    host: str = "example.com",
    scheme: str = "https",
    path: str = "/articles/42",
    method: str = "GET",
) -> Request:
    return Request(method, scheme, host, path, query, Headers(headers))


def test_query_is_order_insensitive() -> None:
    assert normalize_query("b=2&a=1") == normalize_query("a=1&b=2") == "a=1&b=2"


def test_ignored_params_are_dropped_by_glob() -> None:
    ignored = POLICY.ignored_query_params
    query = "utm_source=x&page=2&utm_medium=y&fbclid=z&gclid=w&utmost=1"
    assert normalize_query(query, ignored) == "page=2&utmost=1"
    assert normalize_query("UTM_source=x", ignored) == "UTM_source=x"  # patterns are exact-case


def test_repeated_params_are_kept_sorted_by_value() -> None:
    assert normalize_query("tag=b&x=1&tag=a&tag=b") == "tag=a&tag=b&tag=b&x=1"


def test_query_encoding_is_consistent() -> None:
    assert normalize_query("q=a+b") == normalize_query("q=a%20b") == "q=a%20b"
    assert normalize_query("q=%7e%2F") == "q=~%2F"
    assert normalize_query("flag") == normalize_query("flag=") == "flag="
    assert normalize_query("q=caf%C3%A9") == "q=caf%C3%A9"
    # bytes that are not UTF-8 are kept exactly, so different ones never collide
    assert normalize_query("q=%FF") == "q=%FF"
    assert normalize_query("q=%FF") != normalize_query("q=%FE")
    assert normalize_query("&&a=1&") == "a=1"
    assert normalize_query("") == ""


@pytest.mark.parametrize(
    ("scheme", "host", "expected"),
    [
        ("https", "Example.COM:443", "example.com"),
        ("http", "example.com:80", "example.com"),
        ("http", "example.com:443", "example.com:443"),
        ("https", "example.com:8443", "example.com:8443"),
        ("HTTPS", "example.com:443", "example.com"),
        ("https", "[::1]:443", "[::1]"),
        ("http", "[::1]:8080", "[::1]:8080"),
        ("http", "[::1]", "[::1]"),
        ("http", "example.com:", "example.com"),
    ],
)
def test_host_normalization(scheme: str, host: str, expected: str) -> None:
    assert normalize_host(scheme, host) == expected


def test_canonical_url() -> None:
    r = req("b=2&a=1&utm_source=x&a=0", host="Example.COM:443")
    assert canonical_url(r, POLICY) == "https://example.com/articles/42?a=0&a=1&b=2"
    assert canonical_url(req(path=""), POLICY) == "https://example.com/"
    assert canonical_url(req("utm_source=x"), POLICY) == "https://example.com/articles/42"


def test_keys_are_fixed_digests() -> None:
    """Fixed hex: any change to the key algorithm breaks cross-process sharing and fails here."""
    r = req("b=2&a=1&utm_source=x&a=0", ("Accept-Language", "en"), ("Cookie", "sid=1"))
    assert primary_key(r, POLICY) == "page:{" + URL_DIGEST + "}"
    assert cache_key(r, POLICY) == (
        "page:{" + URL_DIGEST + "}:v:da39a3ee5e6b4b0d3255bfef95601890afd80709"
    )
    assert variant_key(r, POLICY, ("cookie", "Accept-Language")) == (
        "page:{" + URL_DIGEST + "}:v:b9f78419e1e62f29380e0253b0d6142adf07d65b"
    )


def test_equivalent_requests_share_keys() -> None:
    a = req("a=0&b=2&a=1", host="example.com", method="HEAD")
    b = req("utm_campaign=z&b=2&a=1&a=0", host="EXAMPLE.com:443")
    assert primary_key(a, POLICY) == primary_key(b, POLICY)


def test_different_urls_get_different_keys() -> None:
    keys = {
        primary_key(r, POLICY)
        for r in (
            req(),
            req(scheme="http"),
            req(host="example.org"),
            req(host="example.com:8443"),
            req(path="/articles/43"),
            req(path="/Articles/42"),
            req("a=1"),
            req("a=2"),
        )
    }
    assert len(keys) == 8


def test_vary_values_select_different_variants() -> None:
    en = req("", ("Accept-Language", "en"))
    fr = req("", ("Accept-Language", "fr"))
    en_spaced = req("", ("Accept-Language", "  en "))
    none = req("")
    names = ("accept-language",)
    assert variant_key(en, POLICY, names) != variant_key(fr, POLICY, names)
    assert variant_key(en, POLICY, names) == variant_key(en_spaced, POLICY, names)
    assert variant_key(none, POLICY, names) != variant_key(en, POLICY, names)
    assert variant_key(en, POLICY, names).startswith(primary_key(en, POLICY) + ":v:")
    assert cache_key(en, POLICY, {"Accept-Language": "en"}) == variant_key(en, POLICY, names)


def test_accept_encoding_never_changes_the_key() -> None:
    gzip = req("", ("Accept-Encoding", "gzip"))
    plain = req("", ("Accept-Encoding", "identity"))
    assert cache_key(gzip, POLICY) == cache_key(plain, POLICY)
    assert lookup_args(gzip, POLICY) == lookup_args(plain, POLICY)
    assert variant_key(gzip, POLICY, ()) == variant_key(plain, POLICY, ())


def test_lookup_args_pass_every_header_normalized() -> None:
    r = req(
        "b=1",
        ("Accept-Language", " en ,  fr "),
        ("Cookie", "a=1"),
        ("cookie", "b=2"),
        ("Accept-Encoding", "gzip"),
        ("X-Odd", "caf\u00e9"),
    )
    keys, args = lookup_args(r, POLICY)
    assert keys == [primary_key(r, POLICY)]
    assert args == [
        b"accept-language",
        b"en,fr",
        b"cookie",
        b"a=1; b=2",
        b"x-odd",
        "caf\u00e9".encode(),
    ]


def test_lookup_script_ships_next_to_the_module() -> None:
    script = Script.from_package("rcache.pages", LOOKUP_SCRIPT)
    assert "redis.sha1hex" in script.source
    assert "':v:'" in script.source
    assert script(["k"], [b"a", b"b"])[:3] == ("EVALSHA", script.sha, 1)


def test_read_lookup_reply() -> None:
    assert read_lookup_reply(None) is None
    assert read_lookup_reply([b"", None]) == ((), None)
    assert read_lookup_reply([b"accept-language,cookie", b"ENTRY"]) == (
        ("accept-language", "cookie"),
        b"ENTRY",
    )
    for bad in (b"x", [b"a"], [1, None], [b"a", "str"]):
        with pytest.raises(DecodeError):
            read_lookup_reply(bad)
