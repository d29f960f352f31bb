"""Vary names, value normalization and the variant suffix."""

from __future__ import annotations

import hashlib

from rcache.pages.headers import Headers
from rcache.pages.vary import (
    normalize_vary_value,
    parse_vary_spec,
    request_vary_values,
    variant_material,
    variant_suffix,
    vary_names,
    vary_spec,
)


def test_names_are_lowercased_sorted_unique_without_accept_encoding() -> None:
    h = Headers([("Vary", "Cookie, Accept-Encoding"), ("vary", "accept-language,, COOKIE")])
    assert vary_names(h) == ("accept-language", "cookie")
    assert vary_names(Headers()) == ()
    assert vary_names(Headers([("Vary", "Accept-Encoding")])) == ()


def test_star_or_invalid_names_can_never_match() -> None:
    assert vary_names(Headers([("Vary", "Cookie, *")])) is None
    assert vary_names(Headers([("Vary", "Bad=Name")])) is None
    assert vary_names(Headers([("Vary", "a\nb")])) is None


def test_values_lose_insignificant_whitespace_only() -> None:
    assert normalize_vary_value("  en-US ,  en;q=0.9\t, fr ") == "en-US,en;q=0.9,fr"
    assert normalize_vary_value("a  b") == "a b"
    assert normalize_vary_value("CaSe") == "CaSe"
    once = normalize_vary_value(" x ,\t y  z ")
    assert normalize_vary_value(once) == once


def test_request_values_mark_absent_headers_with_none() -> None:
    h = Headers([("Accept-Language", "en , fr"), ("Cookie", "a=1"), ("cookie", "b=2")])
    values = request_vary_values(h, ["Accept-Language", "cookie", "x-absent"])
    assert values == {"accept-language": "en,fr", "cookie": "a=1; b=2", "x-absent": None}


def test_material_is_documented_format() -> None:
    material = variant_material(
        ["Cookie", "accept-language", "x-empty", "x-absent"],
        {
            "cookie": "a=1",
            "accept-language": "en ,fr",
            "x-empty": "",
        },
    )
    assert material == b"accept-language=en,fr\ncookie=a=1\nx-absent\nx-empty=\n"


def test_suffix_is_sha1_of_the_material() -> None:
    assert variant_suffix([], {}) == ":v:da39a3ee5e6b4b0d3255bfef95601890afd80709"
    expected = hashlib.sha1(b"cookie=a=1\n").hexdigest()
    assert variant_suffix(["cookie"], {"cookie": "a=1"}) == ":v:" + expected


def test_absent_and_empty_headers_are_different_variants() -> None:
    assert variant_suffix(["x"], {"x": None}) != variant_suffix(["x"], {"x": ""})
    assert variant_suffix(["x"], {"x": "1"}) != variant_suffix(["x"], {"x": "2"})
    assert variant_suffix(["x"], {"x": None}) != variant_suffix([], {})


def test_spec_round_trip() -> None:
    assert vary_spec(["Cookie", "accept-language", "cookie"]) == "accept-language,cookie"
    assert parse_vary_spec(b"accept-language,cookie") == ("accept-language", "cookie")
    assert parse_vary_spec("") == ()
    assert vary_spec([]) == ""
