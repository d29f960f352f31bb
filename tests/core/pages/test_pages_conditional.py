"""ETags, If-None-Match / If-Modified-Since, 304 fields and Age."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rcache.pages.conditional import (
    age,
    build_304,
    etag_matches,
    make_etag,
    not_modified,
    representation_headers,
)
from rcache.pages.headers import Headers
from rcache.pages.model import Request, StoredEntry

LAST_MODIFIED = "Sun, 06 Nov 1994 08:49:37 GMT"  # 784111777
BEFORE = "Sun, 06 Nov 1994 08:49:36 GMT"
AFTER = "Sun, 06 Nov 1994 08:49:38 GMT"
DATE = "Mon, 07 Nov 1994 08:49:37 GMT"  # 784198177
NOW = 784198177.0 + 100


def entry(**changes: object) -> StoredEntry:
    base = StoredEntry(
        status=200,
        headers=(
            ("Content-Type", "text/html"),
            ("Cache-Control", "max-age=60"),
            ("Date", DATE),
            ("ETag", '"v1"'),
            ("Expires", "Mon, 07 Nov 1994 08:50:37 GMT"),
            ("Vary", "Cookie"),
            ("Content-Location", "/en/page"),
            ("Last-Modified", LAST_MODIFIED),
            ("X-Frame-Options", "DENY"),
        ),
        body=b"<p>hi</p>",
        encoding="identity",
        etag='"v1"',
        last_modified=LAST_MODIFIED,
        stored_at=784198177.0,
        date=784198177.0,
        fresh_until=784198177.0 + 60,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def get(*headers: tuple[str, str], method: str = "GET") -> Request:
    return Request(method, "https", "example.com", "/", "", Headers(headers))


def test_make_etag_is_strong_quoted_and_stable() -> None:
    assert make_etag(b"hello") == '"2cf24dba5fb0a30e26e83b2ac5b9e29e"'
    assert make_etag(b"hello") != make_etag(b"hello!")


@pytest.mark.parametrize(
    ("a", "b", "weak_match"),
    [  # RFC 9110 §8.8.3.2
        ('W/"1"', 'W/"1"', True),
        ('W/"1"', 'W/"2"', False),
        ('W/"1"', '"1"', True),
        ('"1"', '"1"', True),
    ],
)
def test_weak_comparison_table(a: str, b: str, weak_match: bool) -> None:
    assert etag_matches(a, b) is weak_match
    assert etag_matches(b, a) is weak_match


def test_if_none_match_lists_and_star() -> None:
    assert etag_matches('"a", W/"v1" ,"c"', '"v1"')
    assert etag_matches('"x,y", "v1"', 'W/"v1"')  # commas inside a tag do not split it
    assert not etag_matches('"x,y"', '"x"')
    assert etag_matches("*", '"anything"')
    assert etag_matches(" * ", '"anything"')
    assert not etag_matches('"a", "b"', '"c"')
    assert not etag_matches("", '"c"')
    assert etag_matches("v1", '"v1"')  # unquoted, as some clients send


def test_if_none_match_match_gives_304_for_get_and_head() -> None:
    assert not_modified(get(("If-None-Match", 'W/"v1"')), entry(), NOW)
    assert not_modified(get(("If-None-Match", '"v1"'), method="HEAD"), entry(), NOW)
    assert not_modified(get(("If-None-Match", "*")), entry(), NOW)
    assert not not_modified(get(("If-None-Match", '"v2"')), entry(), NOW)


def test_only_get_and_head_and_only_2xx() -> None:
    assert not not_modified(get(("If-None-Match", '"v1"'), method="POST"), entry(), NOW)
    assert not not_modified(get(("If-None-Match", '"v1"')), entry(status=404), NOW)


def test_if_none_match_wins_over_if_modified_since() -> None:
    # the date alone would say "not modified"; the non-matching tag says otherwise
    req = get(("If-None-Match", '"v2"'), ("If-Modified-Since", AFTER))
    assert not not_modified(req, entry(), NOW)
    # and a matching tag wins over a date that alone would say "modified"
    req = get(("If-None-Match", '"v1"'), ("If-Modified-Since", BEFORE))
    assert not_modified(req, entry(), NOW)


def test_if_none_match_without_a_stored_etag() -> None:
    assert not not_modified(get(("If-None-Match", '"v1"')), entry(etag=None), NOW)
    assert not_modified(get(("If-None-Match", "*")), entry(etag=None), NOW)


def test_if_modified_since() -> None:
    assert not_modified(get(("If-Modified-Since", LAST_MODIFIED)), entry(), NOW)
    assert not_modified(get(("If-Modified-Since", AFTER)), entry(), NOW)
    assert not not_modified(get(("If-Modified-Since", BEFORE)), entry(), NOW)


@pytest.mark.parametrize(
    "headers",
    [
        [("If-Modified-Since", "yesterday")],
        [("If-Modified-Since", AFTER), ("If-Modified-Since", AFTER)],
        [("If-Modified-Since", "Mon, 01 Jan 2100 00:00:00 GMT")],  # later than now
    ],
)
def test_if_modified_since_is_ignored_when_invalid(headers: list[tuple[str, str]]) -> None:
    assert not not_modified(get(*headers), entry(), NOW)


def test_if_modified_since_falls_back_to_date_then_stored_at() -> None:
    no_lm = entry(last_modified=None)
    assert not not_modified(get(("If-Modified-Since", AFTER)), no_lm, NOW)  # Date is later
    assert not_modified(get(("If-Modified-Since", DATE)), no_lm, NOW)
    no_date = entry(last_modified=None, headers=(), stored_at=784111777.0)
    assert not_modified(get(("If-Modified-Since", LAST_MODIFIED)), no_date, NOW)
    assert not not_modified(get(("If-Modified-Since", BEFORE)), no_date, NOW)


def test_304_carries_the_required_fields_and_age() -> None:
    headers = build_304(entry(), NOW)
    assert headers == [
        ("Cache-Control", "max-age=60"),
        ("Date", DATE),
        ("ETag", '"v1"'),
        ("Expires", "Mon, 07 Nov 1994 08:50:37 GMT"),
        ("Vary", "Cookie"),
        ("Content-Location", "/en/page"),
        ("Age", "100"),
    ]


def test_304_of_a_gzip_entry_varies_on_accept_encoding() -> None:
    names = [name for name, _ in build_304(entry(encoding="gzip"), NOW)]
    assert names.count("Vary") == 2
    assert ("Vary", "Accept-Encoding") in build_304(entry(encoding="gzip"), NOW)


def test_304_sends_last_modified_only_without_an_etag() -> None:
    no_tag = entry(etag=None, headers=(("Date", DATE),))
    assert build_304(no_tag, NOW) == [
        ("Date", DATE),
        ("Last-Modified", LAST_MODIFIED),
        ("Age", "100"),
    ]


def test_representation_headers_add_a_missing_etag_once() -> None:
    headers = representation_headers(entry(headers=(("Vary", "accept-encoding"),)))
    assert headers == [("Vary", "accept-encoding"), ("ETag", '"v1"')]
    gz = representation_headers(entry(encoding="gzip", headers=(("Vary", "Cookie, *"),)))
    assert ("Vary", "Accept-Encoding") not in gz  # "*" already covers it


def test_age_is_whole_non_negative_seconds() -> None:
    e = entry(stored_at=1000.0, date=990.0)
    assert age(e, 1000.0) == 10  # it was already 10 s old when stored
    assert age(e, 1005.9) == 15
    assert age(e, 900.0) == 10  # a clock that went back never makes it younger
    assert age(entry(stored_at=1000.0, date=2000.0), 1000.5) == 0
    assert isinstance(age(e, 1005.5), int)
