"""Headers: case-insensitive, multi-value, immutable."""

from __future__ import annotations

from rcache.pages.headers import Headers


def sample() -> Headers:
    return Headers(
        [
            ("Content-Type", "text/html"),
            ("Vary", "Cookie"),
            ("Set-Cookie", "a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT"),
            ("vary", " Accept-Language "),
            ("set-cookie", "b=2"),
        ]
    )


def test_get_is_case_insensitive_and_joins_repeated_fields() -> None:
    h = sample()
    assert h.get("content-type") == "text/html"
    assert h.get("VARY") == "Cookie, Accept-Language"
    assert h.get("x-missing") is None


def test_set_cookie_is_never_joined() -> None:
    h = sample()
    assert h.get("Set-Cookie") == "a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT"
    assert h.get_all("SET-COOKIE") == ["a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT", "b=2"]


def test_cookie_lines_join_with_semicolon() -> None:
    h = Headers([("Cookie", "a=1"), ("cookie", "b=2")])
    assert h.get("Cookie") == "a=1; b=2"


def test_values_lose_surrounding_whitespace() -> None:
    assert sample().get_all("vary") == ["Cookie", "Accept-Language"]


def test_contains_and_iteration_keep_order_and_spelling() -> None:
    h = sample()
    assert "CONTENT-type" in h
    assert "x-missing" not in h
    assert 42 not in h
    assert [name for name, _ in h] == ["Content-Type", "Vary", "Set-Cookie", "vary", "set-cookie"]
    assert len(h) == 5
    assert h.names() == ["content-type", "vary", "set-cookie"]
    assert h.first("vary") == "Cookie"
    assert h.first("nope") is None


def test_with_replaces_every_occurrence_in_place_and_copies() -> None:
    h = sample()
    replaced = h.with_("VARY", "Origin")
    assert replaced.get_all("vary") == ["Origin"]
    assert [name for name, _ in replaced][:2] == ["Content-Type", "VARY"]
    assert h.get("vary") == "Cookie, Accept-Language"  # the original is unchanged
    assert h.with_("Age", "3").to_list()[-1] == ("Age", "3")


def test_without_and_add_return_copies() -> None:
    h = sample()
    trimmed = h.without("set-cookie", "VARY")
    assert trimmed.to_list() == [("Content-Type", "text/html")]
    assert len(h) == 5
    assert h.add("Vary", "Origin").get("vary") == "Cookie, Accept-Language, Origin"


def test_equality_and_hash() -> None:
    assert sample() == sample()
    assert hash(sample()) == hash(sample())
    assert sample() != sample().without("vary")
    assert not Headers()
    assert sample().__eq__(object()) is NotImplemented
    assert "Content-Type" in repr(sample())
