"""Freshness lifetime, RFC 5861 stale windows, classify and entry_ttl."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rcache.pages.freshness import (
    TTL_MARGIN,
    classify,
    entry_ttl,
    freshness_lifetime,
    stale_windows,
)
from rcache.pages.headers import Headers
from rcache.pages.model import Response, StoredEntry
from rcache.pages.policy import PageCachePolicy

POLICY = PageCachePolicy(default_ttl=60, stale_while_revalidate=10, stale_if_error=100)
DATE = "Sun, 06 Nov 1994 08:49:37 GMT"
DATE_PLUS_300 = "Sun, 06 Nov 1994 08:54:37 GMT"


def resp(*headers: tuple[str, str]) -> Response:
    return Response(200, Headers(headers), b"")


def test_precedence_s_maxage_then_max_age_then_expires_then_default() -> None:
    expires = [("Date", DATE), ("Expires", DATE_PLUS_300)]
    assert freshness_lifetime(resp(), POLICY) == 60
    assert freshness_lifetime(resp(*expires), POLICY) == 300
    assert freshness_lifetime(resp(*expires, ("Cache-Control", "max-age=120")), POLICY) == 120
    both = ("Cache-Control", "max-age=120, s-maxage=30")
    assert freshness_lifetime(resp(*expires, both), POLICY) == 30


def test_no_cache_means_zero_whatever_else_is_said() -> None:
    value = "max-age=600, s-maxage=600, no-cache"
    assert freshness_lifetime(resp(("Cache-Control", value)), POLICY) == 0


def test_repeated_cache_control_lines_combine_and_first_wins() -> None:
    r = resp(("Cache-Control", "public"), ("Cache-Control", "max-age=5, max-age=500"))
    assert freshness_lifetime(r, POLICY) == 5


@pytest.mark.parametrize("value", ["max-age=abc", "max-age=-1", "max-age", "s-maxage=1e3"])
def test_invalid_numbers_mean_stale(value: str) -> None:
    assert freshness_lifetime(resp(("Cache-Control", value)), POLICY) == 0


def test_invalid_expires_means_already_expired() -> None:
    assert freshness_lifetime(resp(("Date", DATE), ("Expires", "0")), POLICY) == 0
    assert freshness_lifetime(resp(("Date", DATE), ("Expires", "never")), POLICY) == 0


def test_expires_in_the_past_is_zero_not_negative() -> None:
    assert freshness_lifetime(resp(("Date", DATE_PLUS_300), ("Expires", DATE)), POLICY) == 0


def test_expires_without_date_uses_now_else_zero() -> None:
    r = resp(("Expires", DATE_PLUS_300))
    assert freshness_lifetime(r, POLICY, now=784111777.0 + 100) == 200
    assert freshness_lifetime(r, POLICY) == 0


def test_first_expires_line_is_used() -> None:
    r = resp(("Date", DATE), ("Expires", DATE_PLUS_300), ("Expires", DATE))
    assert freshness_lifetime(r, POLICY) == 300


def test_default_ttl_is_the_policy_one() -> None:
    assert freshness_lifetime(resp(), PageCachePolicy(default_ttl=7.5)) == 7.5


def test_stale_windows_from_the_response_then_the_policy() -> None:
    assert stale_windows(resp(), POLICY) == (10, 100)
    value = "max-age=60, stale-while-revalidate=30, stale-if-error=86400"
    assert stale_windows(resp(("Cache-Control", value)), POLICY) == (30, 86400)
    one = "max-age=60, stale-if-error=5"
    assert stale_windows(resp(("Cache-Control", one)), POLICY) == (10, 5)
    assert stale_windows(resp(), PageCachePolicy()) == (0, 0)


def test_invalid_stale_numbers_are_zero() -> None:
    value = "stale-while-revalidate=x, stale-if-error"
    assert stale_windows(resp(("Cache-Control", value)), POLICY) == (0, 0)


@pytest.mark.parametrize("directive", ["no-cache", "must-revalidate", "proxy-revalidate"])
def test_directives_that_forbid_stale(directive: str) -> None:
    value = f"max-age=60, {directive}, stale-while-revalidate=30, stale-if-error=30"
    assert stale_windows(resp(("Cache-Control", value)), POLICY) == (0, 0)


def test_s_maxage_drops_the_policy_defaults_but_keeps_explicit_windows() -> None:
    assert stale_windows(resp(("Cache-Control", "s-maxage=60")), POLICY) == (0, 0)
    value = "s-maxage=60, stale-while-revalidate=30"
    assert stale_windows(resp(("Cache-Control", value)), POLICY) == (30, 0)


def entry(fresh_until: float, swr: float, sie: float) -> StoredEntry:
    return StoredEntry(
        status=200,
        headers=(),
        body=b"",
        encoding="identity",
        etag=None,
        last_modified=None,
        stored_at=1000.0,
        date=1000.0,
        fresh_until=fresh_until,
        stale_while_revalidate=swr,
        stale_if_error=sie,
    )


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (1000.0, "fresh"),
        (1059.9, "fresh"),
        (1060.0, "stale-revalidate"),
        (1069.9, "stale-revalidate"),
        (1070.0, "stale-if-error"),
        (1159.9, "stale-if-error"),
        (1160.0, "expired"),
        (5000.0, "expired"),
    ],
)
def test_classify_windows(now: float, state: str) -> None:
    assert classify(entry(1060.0, 10.0, 100.0), now) == state


def test_classify_when_stale_if_error_is_shorter_or_absent() -> None:
    e = entry(1060.0, 30.0, 5.0)
    assert classify(e, 1080.0) == "stale-revalidate"
    assert classify(e, 1090.0) == "expired"
    no_windows = entry(1060.0, 0.0, 0.0)
    assert classify(no_windows, 1059.0) == "fresh"
    assert classify(no_windows, 1060.0) == "expired"


def test_entry_ttl() -> None:
    assert entry_ttl(entry(1060.0, 10.0, 100.0)) == 60 + 100 + TTL_MARGIN
    assert entry_ttl(entry(1060.0, 30.0, 5.0)) == 60 + 30 + TTL_MARGIN
    assert entry_ttl(entry(1000.5, 0.0, 0.0)) == 1 + TTL_MARGIN  # rounded up
    assert entry_ttl(entry(900.0, 0.0, 0.0)) == TTL_MARGIN  # stored already stale
    assert entry_ttl(replace(entry(900.0, 0.0, 0.0), stored_at=10**6)) >= 1
