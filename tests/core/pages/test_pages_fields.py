"""Field parsing: Cache-Control (case, quotes, spaces, duplicates, bad numbers), HTTP-dates."""

from __future__ import annotations

import pytest

from rcache.pages.fields import (
    MAX_DELTA_SECONDS,
    directive_seconds,
    format_http_date,
    parse_cache_control,
    parse_http_date,
)

# -- Cache-Control ---------------------------------------------------------------------------


def test_empty_values() -> None:
    assert parse_cache_control(None) == {}
    assert parse_cache_control("") == {}
    assert parse_cache_control(" , ,, ") == {}


def test_names_are_case_insensitive_and_arguments_keep_case() -> None:
    assert parse_cache_control("Public, MAX-AGE=60, X-Ext=AbC") == {
        "public": None,
        "max-age": "60",
        "x-ext": "AbC",
    }


def test_spaces_around_members_and_equals_are_ignored() -> None:
    assert parse_cache_control("  no-cache ,max-age = 5 ,\tmust-revalidate\t") == {
        "no-cache": None,
        "max-age": "5",
        "must-revalidate": None,
    }


def test_quoted_arguments_are_unquoted_and_may_hold_commas() -> None:
    parsed = parse_cache_control('private="Set-Cookie, X-A", max-age="60", x="a\\"b"')
    assert parsed == {"private": "Set-Cookie, X-A", "max-age": "60", "x": 'a"b'}


def test_unterminated_quote_runs_to_the_end() -> None:
    assert parse_cache_control('no-cache="a, b') == {"no-cache": "a, b"}


def test_junk_after_a_closing_quote_is_ignored() -> None:
    assert parse_cache_control('x="1"junk, max-age=3') == {"x": "1", "max-age": "3"}


def test_first_occurrence_wins() -> None:
    assert parse_cache_control("max-age=60, MAX-AGE=5")["max-age"] == "60"
    assert parse_cache_control("max-age=5, max-age=60")["max-age"] == "5"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("max-age=60", 60),
        ('max-age="60"', 60),
        ("max-age=0", 0),
        ("max-age", 0),
        ("max-age=", 0),
        ("max-age=-5", 0),
        ("max-age=1.5", 0),
        ("max-age=soon", 0),
        ("max-age=\uff16\uff10", 0),  # fullwidth digits are not delta-seconds
        ("max-age=99999999999999999999", MAX_DELTA_SECONDS),
        ("max-age=" + "9" * 5000, MAX_DELTA_SECONDS),
        ("no-cache", None),
    ],
)
def test_directive_seconds(value: str, expected: int | None) -> None:
    assert directive_seconds(parse_cache_control(value), "max-age") == expected


# -- HTTP-date -------------------------------------------------------------------------------

NOV_6_1994 = 784111777.0


@pytest.mark.parametrize(
    "text",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
        "  Sun, 06 Nov 1994 08:49:37 GMT ",
        "sun, 06 nov 1994 08:49:37 GMT",
    ],
)
def test_accepted_date_formats(text: str) -> None:
    assert parse_http_date(text) == NOV_6_1994


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "0",
        "-1",
        "tomorrow",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT",
    ],
)
def test_invalid_dates_give_none(text: str | None) -> None:
    assert parse_http_date(text) is None


def test_two_digit_years_follow_the_fifty_year_rule() -> None:
    now_2023 = 1_700_000_000.0
    assert parse_http_date("Wednesday, 06-Nov-30 08:49:37 GMT", now=now_2023) == 1920185377.0
    # "80" would be 2080, more than 50 years ahead of 2023: it is 1980.
    assert parse_http_date("Thursday, 06-Nov-80 08:49:37 GMT", now=now_2023) == 342348577.0
    assert parse_http_date("Thursday, 06-Nov-80 08:49:37 GMT") == 342348577.0


def test_format_is_imf_fixdate_and_round_trips() -> None:
    assert format_http_date(NOV_6_1994 + 0.9) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert parse_http_date(format_http_date(1_700_000_123.0)) == 1_700_000_123.0
