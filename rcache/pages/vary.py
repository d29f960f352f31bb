"""Vary (RFC 9111 §4.1): which request headers select a stored variant, and its key suffix.

A response's ``Vary`` names request headers; a stored response may only answer a request
whose values for those headers match the ones of the request that produced it. The cache
turns those values into a key suffix::

    names = vary_names(response.headers)              # ('accept-language', 'cookie')
    values = request_vary_values(request.headers, names)
    suffix = variant_suffix(names, values)            # ':v:' + 40 hex digits

The suffix is ``":v:" + sha1_hex(material)`` where the material is, for each name in sorted
order, ``name + "=" + value + "\\n"`` when the request carries the header and ``name +
"\\n"`` when it does not (an absent header and an empty one differ). Values are normalized
first: runs of spaces and tabs become one space, and whitespace next to a comma or at either
end is removed, which RFC 9110 §5.6.1 makes insignificant for list-based fields. SHA-1 is
used because the lookup script (``lookup.lua``) recomputes the same suffix inside Redis,
where ``redis.sha1hex`` is the only digest; the material is the requester's own header
values, so only a second preimage could make two different requests share a variant.

``Accept-Encoding`` is never part of the variant: the cache stores one body, gzip-encoded
when that helps, and decodes it for clients that do not accept gzip (see
:mod:`rcache.pages.serving`). Responses coded with anything else are not stored at all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

from rcache.pages.headers import Headers

__all__ = [
    "ACCEPT_ENCODING",
    "normalize_vary_value",
    "parse_vary_spec",
    "request_vary_values",
    "variant_material",
    "variant_suffix",
    "vary_names",
    "vary_spec",
]

ACCEPT_ENCODING = "accept-encoding"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SPACES = re.compile(r"[ \t]+")
_COMMA_SPACE = re.compile(r" ?, ?")


def vary_names(headers: Headers) -> tuple[str, ...] | None:
    """Return the request header names a response varies on: lowercased, sorted, unique.

    ``Accept-Encoding`` is left out (see the module docstring). Returns None when the
    response can never be matched: ``Vary: *``, or a member that is not a valid field name.
    """
    names: set[str] = set()
    for line in headers.get_all("vary"):
        for member in line.split(","):
            name = member.strip(" \t").lower()
            if not name:
                continue
            if name == "*" or not _TOKEN.fullmatch(name):
                return None
            names.add(name)
    names.discard(ACCEPT_ENCODING)
    return tuple(sorted(names))


def normalize_vary_value(value: str) -> str:
    """Return ``value`` with insignificant whitespace removed (idempotent)."""
    return _COMMA_SPACE.sub(",", _SPACES.sub(" ", value).strip(" "))


def request_vary_values(headers: Headers, names: Iterable[str]) -> dict[str, str | None]:
    """Return the normalized value of each header ``names`` in a request; None if absent."""
    values: dict[str, str | None] = {}
    for name in names:
        value = headers.get(name)
        values[name.lower()] = None if value is None else normalize_vary_value(value)
    return values


def variant_material(names: Iterable[str], values: Mapping[str, str | None]) -> bytes:
    """Return the bytes whose SHA-1 names the variant; ``values`` may be unnormalized.

    ``names`` are lowercased and sorted here; a name missing from ``values`` counts as a
    header the request does not carry.
    """
    parts: list[str] = []
    for name in sorted({name.lower() for name in names}):
        value = values.get(name)
        if value is None:
            parts.append(f"{name}\n")
        else:
            parts.append(f"{name}={normalize_vary_value(value)}\n")
    return "".join(parts).encode("utf-8", "surrogatepass")


def variant_suffix(names: Iterable[str], values: Mapping[str, str | None]) -> str:
    """Return ``":v:" + sha1_hex(variant_material(names, values))``.

    Append it to the URL-level key exactly as sent to Redis (after any key-space prefix):
    the lookup script appends the same suffix to its ``KEYS[1]``.
    """
    return ":v:" + hashlib.sha1(variant_material(names, values)).hexdigest()


def vary_spec(names: Iterable[str]) -> str:
    """Return the value stored at the URL-level key: sorted lowercased names joined by ","."""
    return ",".join(sorted({name.lower() for name in names}))


def parse_vary_spec(raw: bytes | str) -> tuple[str, ...]:
    """Return the names in a value written by :func:`vary_spec`."""
    text = raw.decode("utf-8", "surrogatepass") if isinstance(raw, bytes) else raw
    return tuple(name for name in text.split(",") if name)
