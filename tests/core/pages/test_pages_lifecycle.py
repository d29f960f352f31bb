"""Building entries (gzip, ETag, Date, ages) and classifying them over time."""

from __future__ import annotations

import gzip
import os

import pytest

from rcache.pages.conditional import make_etag, not_modified
from rcache.pages.fields import format_http_date
from rcache.pages.headers import Headers
from rcache.pages.lifecycle import build_entry, classify, gzip_compress, is_compressible
from rcache.pages.model import Request, Response, StoredEntry
from rcache.pages.policy import PageCachePolicy, storable
from rcache.pages.serving import serve_body, serve_headers

NOW = 1_700_000_000.0
POLICY = PageCachePolicy(default_ttl=60, stale_while_revalidate=10, stale_if_error=100)
REQ = Request("GET", "https", "example.com", "/")


def html_page(size: int = 20 * 1024) -> bytes:
    """A realistic page: repeated markup around varying text, about ``size`` bytes."""
    rows: list[bytes] = []
    i = 0
    while sum(len(row) for row in rows) < size:
        rows.append(
            f'<li class="item"><a href="/articles/{i}">Article number {i}</a>'
            f'<span class="date">2024-01-{i % 28 + 1:02d}</span></li>\n'.encode()
        )
        i += 1
    return b"<!doctype html><html><body><ul>\n" + b"".join(rows) + b"</ul></body></html>"


def resp(
    *headers: tuple[str, str], body: bytes | None = b"x" * 2000, status: int = 200
) -> Response:
    return Response(status, Headers(headers), body)


HTML = ("Content-Type", "text/html; charset=utf-8")


def test_a_20_kb_html_page_is_stored_at_a_third_or_less() -> None:
    page = html_page()
    assert len(page) >= 20 * 1024
    e = build_entry(REQ, resp(HTML, body=page), POLICY, NOW)
    assert e.encoding == "gzip"
    assert len(e.body) <= len(page) / 3
    assert gzip.decompress(e.body) == page


def test_gzip_is_kept_only_when_smaller() -> None:
    noise = os.urandom(4096)
    e = build_entry(REQ, resp(("Content-Type", "text/plain"), body=noise), POLICY, NOW)
    assert e.encoding == "identity" and e.body == noise
    tiny = build_entry(REQ, resp(HTML, body=b"<p>"), POLICY, NOW)
    assert tiny.encoding == "identity" and tiny.body == b"<p>"


def test_compress_callable_is_used_and_its_result_checked() -> None:
    calls: list[bytes] = []

    def bigger(data: bytes) -> bytes:
        calls.append(data)
        return data + b"!"

    e = build_entry(REQ, resp(HTML), POLICY, NOW, compress=bigger)
    assert calls == [b"x" * 2000] and e.encoding == "identity"


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/html; charset=utf-8", True),
        ("TEXT/CSS", True),
        ("application/json", True),
        ("application/javascript", True),
        ("application/xml", True),
        ("image/svg+xml", True),
        ("application/ld+json", True),
        ("application/vnd.api+json; charset=utf-8", True),
        ("image/png", False),
        ("application/octet-stream", False),
        ("application/zip", False),
        ("", False),
        (None, False),
    ],
)
def test_is_compressible(content_type: str | None, expected: bool) -> None:
    assert is_compressible(content_type) is expected


def test_binary_types_and_no_transform_are_not_compressed() -> None:
    png = build_entry(REQ, resp(("Content-Type", "image/png")), POLICY, NOW)
    assert png.encoding == "identity"
    kept = build_entry(REQ, resp(HTML, ("Cache-Control", "no-transform")), POLICY, NOW)
    assert kept.encoding == "identity"


def test_an_already_gzip_coded_response_is_stored_as_it_came() -> None:
    coded = gzip.compress(b"hello" * 100)
    e = build_entry(REQ, resp(HTML, ("Content-Encoding", "gzip"), body=coded), POLICY, NOW)
    assert e.encoding == "gzip" and e.body == coded
    assert all(name.lower() != "content-encoding" for name, _ in e.headers)


def test_gzip_compress_is_deterministic_level_6() -> None:
    data = html_page(4096)
    assert gzip_compress(data) == gzip_compress(data)
    assert gzip_compress(data) == gzip.compress(data, compresslevel=6, mtime=0)


def test_etag_made_when_absent_and_weak_when_gzip() -> None:
    png = build_entry(REQ, resp(("Content-Type", "image/png")), POLICY, NOW)
    assert png.etag == make_etag(b"x" * 2000)
    assert ("ETag", png.etag) in png.headers
    page = build_entry(REQ, resp(HTML), POLICY, NOW)
    assert page.etag == "W/" + make_etag(b"x" * 2000)
    assert ("ETag", page.etag) in page.headers


def test_origin_etag_is_kept() -> None:
    png = build_entry(REQ, resp(("Content-Type", "image/png"), ("ETag", '"o"')), POLICY, NOW)
    assert png.etag == '"o"'
    page = build_entry(REQ, resp(HTML, ("ETag", '"o"')), POLICY, NOW)
    assert page.etag == 'W/"o"'
    assert not_modified(
        Request("GET", "https", "h", "/", "", Headers([("If-None-Match", '"o"')])), page, NOW
    )
    weak = build_entry(REQ, resp(HTML, ("etag", 'W/"o"')), POLICY, NOW)
    assert weak.etag == 'W/"o"'


def test_date_is_added_when_missing() -> None:
    e = build_entry(REQ, resp(), POLICY, NOW)
    assert ("Date", format_http_date(NOW)) in e.headers
    assert e.stored_at == e.date == NOW
    assert e.fresh_until == NOW + 60


def test_received_age_shortens_freshness() -> None:
    old_date = ("Date", format_http_date(NOW - 20))
    e = build_entry(REQ, resp(old_date, ("Cache-Control", "max-age=100")), POLICY, NOW)
    assert ("Date", format_http_date(NOW - 20)) in e.headers
    assert e.date == NOW - 20 and e.fresh_until == NOW + 80
    aged = build_entry(REQ, resp(("Age", "30"), ("Cache-Control", "max-age=100")), POLICY, NOW)
    assert aged.fresh_until == NOW + 70 and aged.date == NOW - 30
    assert all(name != "Age" for name, _ in aged.headers)
    future = build_entry(REQ, resp(("Date", format_http_date(NOW + 50))), POLICY, NOW)
    assert future.date == NOW and future.fresh_until == NOW + 60


def test_fields_from_the_response() -> None:
    lm = "Sun, 06 Nov 1994 08:49:37 GMT"
    e = build_entry(
        REQ,
        resp(
            ("Last-Modified", lm),
            ("Vary", "Cookie, Accept-Encoding"),
            ("Cache-Tag", "post:1 home"),
            ("Cache-Control", "max-age=30, stale-if-error=600"),
            ("Set-Cookie", "sid=1"),
            status=404,
        ),
        POLICY,
        NOW,
        tags=("site", "home"),
    )
    assert e.status == 404 and e.last_modified == lm
    assert e.vary == ("cookie",)
    assert e.tags == ("site", "home", "post:1")
    assert (e.stale_while_revalidate, e.stale_if_error) == (10, 600)
    assert all(name not in ("Set-Cookie", "Cache-Tag") for name, _ in e.headers)
    bad_lm = build_entry(REQ, resp(("Last-Modified", "yesterday")), POLICY, NOW)
    assert bad_lm.last_modified is None


def test_no_cache_entries_are_never_served_without_the_application() -> None:
    no_cache = build_entry(REQ, resp(("Cache-Control", "no-cache, max-age=60")), POLICY, NOW)
    assert classify(no_cache, NOW) == "expired"


@pytest.mark.parametrize(
    "response",
    [resp(body=None), resp(("Vary", "*")), resp(("Content-Encoding", "br"))],
)
def test_unstorable_responses_raise(response: Response) -> None:
    with pytest.raises(ValueError):
        build_entry(REQ, response, POLICY, NOW)


def test_build_store_read_serve_round_trip() -> None:
    page = html_page()
    response = resp(HTML, ("Cache-Control", "max-age=300"), body=page)
    assert storable(REQ, response, POLICY)[0]
    stored = StoredEntry.from_bytes(build_entry(REQ, response, POLICY, NOW).to_bytes())
    assert classify(stored, NOW + 299) == "fresh"
    assert serve_body(stored, gzip_ok=False) == page
    headers = dict(serve_headers(stored, NOW + 42, x_cache="HIT", gzip_ok=True))
    assert headers["Content-Encoding"] == "gzip" and headers["Age"] == "42"
    assert headers["Cache-Control"] == "max-age=300"
    assert int(headers["Content-Length"]) == len(stored.body)
