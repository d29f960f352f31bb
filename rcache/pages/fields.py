"""Parsing header field values: ``Cache-Control`` directives and HTTP-dates.

Cache-Control (RFC 9111 §5.2)::

    parse_cache_control('Public, max-age="60", no-cache="Set-Cookie, X-A", max-age=5')
    # {'public': None, 'max-age': '60', 'no-cache': 'Set-Cookie, X-A'}

Rules, chosen to be robust rather than strict:

- directive names are case-insensitive and returned lowercased; arguments keep their case;
- an argument is a token or a quoted-string; quotes are removed and ``\\`` escapes resolved,
  since RFC 9111 §5.2 asks recipients to accept both forms for every directive;
- commas inside a quoted-string do not split directives; empty list members are skipped;
- whitespace around names, ``=`` and arguments is ignored;
- a directive given twice keeps its first occurrence (RFC 9111 §4.2.1).

:func:`directive_seconds` reads delta-seconds arguments: a directive present with a missing
or malformed number counts as 0, so a response with ``max-age=soon`` is stale rather than
cached for a guessed time (RFC 9111 §4.2.1 allows either the first value or "stale").

HTTP-date (RFC 9110 §5.6.7): recipients must accept three formats; senders generate only
the first::

    Sun, 06 Nov 1994 08:49:37 GMT    IMF-fixdate
    Sunday, 06-Nov-94 08:49:37 GMT   obsolete RFC 850 format (two-digit year)
    Sun Nov  6 08:49:37 1994         obsolete asctime() format

All times are float seconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Mapping
from email.utils import formatdate

__all__ = [
    "MAX_DELTA_SECONDS",
    "directive_seconds",
    "format_http_date",
    "parse_cache_control",
    "parse_http_date",
]

MAX_DELTA_SECONDS = 2**31
"""Larger delta-seconds values are read as this many seconds (RFC 9111 §1.2.2)."""

_SPACE = " \t"


def _quoted(value: str, start: int) -> tuple[str, int]:
    """Return the content of the quoted-string opening at ``value[start]`` and the index after.

    An unterminated quoted-string runs to the end of ``value``.
    """
    out: list[str] = []
    i = start + 1
    n = len(value)
    while i < n and value[i] != '"':
        if value[i] == "\\" and i + 1 < n:
            i += 1
        out.append(value[i])
        i += 1
    return "".join(out), i + 1


def parse_cache_control(value: str | None) -> dict[str, str | None]:
    """Return the directives of a Cache-Control value: name -> argument (None if it has none).

    ``value`` None or empty gives ``{}``. Repeated header lines should be joined with ``", "``
    first, which :meth:`rcache.pages.headers.Headers.get` does.
    """
    directives: dict[str, str | None] = {}
    if not value:
        return directives
    i = 0
    n = len(value)
    while i < n:
        while i < n and (value[i] in _SPACE or value[i] == ","):
            i += 1
        if i >= n:
            break
        start = i
        while i < n and value[i] not in "=,":
            i += 1
        name = value[start:i].strip(_SPACE).lower()
        argument: str | None = None
        if i < n and value[i] == "=":
            i += 1
            while i < n and value[i] in _SPACE:
                i += 1
            if i < n and value[i] == '"':
                argument, i = _quoted(value, i)
                while i < n and value[i] != ",":  # ignore anything after the closing quote
                    i += 1
            else:
                start = i
                while i < n and value[i] != ",":
                    i += 1
                argument = value[start:i].strip(_SPACE)
        if name and name not in directives:
            directives[name] = argument
    return directives


def directive_seconds(directives: Mapping[str, str | None], name: str) -> int | None:
    """Return directive ``name`` as whole seconds; None if absent, 0 if its number is invalid.

    Valid is one or more ASCII digits (quotes already removed by the parser); values above
    :data:`MAX_DELTA_SECONDS` are capped to it.
    """
    if name not in directives:
        return None
    argument = directives[name]
    if argument is None or not argument.isascii() or not argument.isdigit():
        return 0
    if len(argument) > 10:  # skip int() on huge digit strings; 10 digits already cap
        return MAX_DELTA_SECONDS
    return min(int(argument), MAX_DELTA_SECONDS)


_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_TIME = r"(\d{2}):(\d{2}):(\d{2})"
_IMF_FIXDATE = re.compile(r"[A-Za-z]{3}, (\d{2}) ([A-Za-z]{3}) (\d{4}) " + _TIME + r" GMT")
_RFC850 = re.compile(r"[A-Za-z]{6,9}, (\d{2})-([A-Za-z]{3})-(\d{2}) " + _TIME + r" GMT")
_ASCTIME = re.compile(r"[A-Za-z]{3} ([A-Za-z]{3}) ([ \d]\d) " + _TIME + r" (\d{4})")


def _timestamp(year: int, month_name: str, day: int, hms: tuple[str, str, str]) -> float | None:
    """Return the epoch seconds of a calendar date and time, None if it does not exist."""
    month = _MONTHS.get(month_name.lower())
    hour, minute, second = (int(part) for part in hms)
    if month is None or hour > 23 or minute > 59 or second > 60:  # 60: a leap second
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


def _two_digit_year(yy: int, now: float | None) -> int:
    """Return the full year of an RFC 850 date.

    RFC 9110 says a year that looks more than 50 years in the future is in the past. With
    ``now`` (epoch seconds) that rule is applied exactly; without it, 70-99 mean 19xx and
    00-69 mean 20xx.
    """
    if now is None:
        return 1900 + yy if yy >= 70 else 2000 + yy
    this_year = time.gmtime(now).tm_year
    year = this_year - this_year % 100 + yy
    if year > this_year + 50:
        year -= 100
    return year


def parse_http_date(value: str | None, *, now: float | None = None) -> float | None:
    """Return the epoch seconds of an HTTP-date; None if ``value`` is None or not a date.

    ``now`` (epoch seconds) only settles the century of the obsolete two-digit-year format.
    Surrounding whitespace is ignored; anything else that is not one of the three formats
    gives None, which callers must treat as "invalid" per the header's own rules.
    """
    if value is None:
        return None
    text = value.strip()
    match = _IMF_FIXDATE.fullmatch(text)
    if match:
        day, month, year, *hms = match.groups()
        return _timestamp(int(year), month, int(day), (hms[0], hms[1], hms[2]))
    match = _RFC850.fullmatch(text)
    if match:
        day, month, yy, *hms = match.groups()
        year = _two_digit_year(int(yy), now)
        return _timestamp(year, month, int(day), (hms[0], hms[1], hms[2]))
    match = _ASCTIME.fullmatch(text)
    if match:
        month, day, *hms, year = match.groups()
        return _timestamp(int(year), month, int(day), (hms[0], hms[1], hms[2]))
    return None


def format_http_date(timestamp: float) -> str:
    """Return ``timestamp`` (epoch seconds, fraction dropped) as an IMF-fixdate."""
    return formatdate(float(int(timestamp // 1)), usegmt=True)
