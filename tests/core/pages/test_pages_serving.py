"""Accept-Encoding, and the body and fields of a response served from the cache."""

from __future__ import annotations

import gzip
from dataclasses import replace

import pytest

from rcache.errors import DecodeError
from rcache.pages.model import StoredEntry
from rcache.pages.serving import _DecodedBodies, accepts_gzip, serve_body, serve_headers

HTML = b"<html>" + b"<p>hello</p>" * 200 + b"</html>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("gzip;q=0.001", True),
        ("gzip;q=0", False),
        ("gzip;q=0.000", False),
        ("gzip; q=0, *", False),
        ("*", True),
        ("*;q=0", False),
        ("br, *;q=0", False),
        ("identity", False),
        ("identity;q=1, br", False),
        ("", False),
        (None, False),
        ("gzip;q=abc", False),
        ("gzip;q=2", False),
        ("deflate, gzip;level=1", True),
    ],
)
def test_accepts_gzip(value: str | None, expected: bool) -> None:
    assert accepts_gzip(value) is expected


def entry(**changes: object) -> StoredEntry:
    base = StoredEntry(
        status=200,
        headers=(("Content-Type", "text/html"), ("ETag", 'W/"e"')),
        body=gzip.compress(HTML, mtime=0),
        encoding="gzip",
        etag='W/"e"',
        last_modified=None,
        stored_at=1000.0,
        date=1000.0,
        fresh_until=1060.0,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_gzip_entry_served_coded() -> None:
    e = entry()
    body = serve_body(e, gzip_ok=True)
    assert body == e.body
    headers = serve_headers(e, 1003.2, x_cache="HIT", gzip_ok=True, content_length=len(body))
    assert headers == [
        ("Content-Type", "text/html"),
        ("ETag", 'W/"e"'),
        ("Vary", "Accept-Encoding"),
        ("Content-Encoding", "gzip"),
        ("Content-Length", str(len(e.body))),
        ("Age", "3"),
        ("X-Cache", "HIT"),
    ]


def test_gzip_entry_served_decoded() -> None:
    e = entry()
    assert serve_body(e, gzip_ok=False) == HTML
    headers = dict(serve_headers(e, 1000.0, x_cache="STALE", gzip_ok=False))
    assert "Content-Encoding" not in headers
    assert headers["Content-Length"] == str(len(HTML))  # computed by decoding
    assert headers["Vary"] == "Accept-Encoding"
    assert headers["X-Cache"] == "STALE"


def test_identity_entry_is_served_as_is_without_vary() -> None:
    e = entry(encoding="identity", body=b"plain")
    assert serve_body(e, gzip_ok=True) == b"plain"
    headers = serve_headers(e, 1000.0, x_cache="HIT", gzip_ok=True)
    assert ("Content-Length", "5") in headers
    assert all(name not in ("Vary", "Content-Encoding") for name, _ in headers)


def test_no_content_length_on_204() -> None:
    e = entry(status=204, encoding="identity", body=b"")
    names = [name for name, _ in serve_headers(e, 1000.0, x_cache="HIT", gzip_ok=True)]
    assert "Content-Length" not in names


def test_multi_member_gzip_is_decoded_whole() -> None:
    e = entry(body=gzip.compress(b"ab") + gzip.compress(b"cd"))
    assert serve_body(e, gzip_ok=False) == b"abcd"


def test_corrupt_or_oversized_gzip_raises_decode_error() -> None:
    with pytest.raises(DecodeError, match="corrupt"):
        serve_body(entry(body=b"not gzip at all"), gzip_ok=False)
    with pytest.raises(DecodeError, match="truncated"):
        serve_body(entry(body=entry().body[:-10]), gzip_ok=False)
    with pytest.raises(DecodeError, match="more than"):
        serve_body(entry(), gzip_ok=False, max_bytes=len(HTML) - 1)
    assert serve_body(entry(), gzip_ok=False, max_bytes=len(HTML)) == HTML


def test_decoded_bodies_are_remembered_per_gzip_body() -> None:
    """A second client without gzip gets the same bytes; another page never gets them."""
    first = entry(body=gzip.compress(HTML, mtime=0), encoding="gzip")
    other_html = HTML.replace(b"hello", b"howdy")
    other = entry(body=gzip.compress(other_html, mtime=0), encoding="gzip")
    assert serve_body(first, gzip_ok=False) == HTML
    assert serve_body(other, gzip_ok=False) == other_html
    again = replace(first, body=bytes(bytearray(first.body)))  # equal bytes, new object
    assert serve_body(again, gzip_ok=False) == HTML
    assert serve_body(other, gzip_ok=False) == other_html


def test_remembered_body_still_respects_max_bytes() -> None:
    coded = entry(body=gzip.compress(HTML, mtime=0), encoding="gzip")
    assert serve_body(coded, gzip_ok=False) == HTML
    with pytest.raises(DecodeError):
        serve_body(coded, gzip_ok=False, max_bytes=len(HTML) - 1)


def test_decoded_body_memo_is_bounded() -> None:
    memo = _DecodedBodies(limit=16 * len(HTML))
    for n in range(40):
        page = HTML + str(n).encode()
        assert memo.get(gzip.compress(page, mtime=0), 1 << 20) == page
    assert 0 < memo._size <= 16 * len(HTML)
    assert sum(len(body) for body in memo._bodies.values()) == memo._size
    too_big = HTML * 3  # more than an eighth of the limit: decoded, never kept
    small = _DecodedBodies(limit=16 * len(HTML))
    assert small.get(gzip.compress(too_big, mtime=0), 1 << 20) == too_big
    assert small._size == 0
