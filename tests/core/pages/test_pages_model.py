"""StoredEntry's binary layout: round trips, is stable, and refuses anything corrupt."""

from __future__ import annotations

import math
import zlib
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rcache.errors import DecodeError, EncodeError
from rcache.pages.headers import Headers
from rcache.pages.model import Request, Response, StoredEntry

texts = st.text(max_size=40)
times = st.floats(allow_nan=False, allow_infinity=False)

entries = st.builds(
    StoredEntry,
    status=st.integers(100, 599),
    headers=st.lists(st.tuples(texts, texts), max_size=8).map(tuple),
    body=st.binary(max_size=2000),
    encoding=st.sampled_from(["gzip", "identity"]),
    etag=st.none() | texts,
    last_modified=st.none() | texts,
    stored_at=times,
    date=times,
    fresh_until=times,
    stale_while_revalidate=times,
    stale_if_error=times,
    vary=st.lists(texts, max_size=4).map(tuple),
    tags=st.lists(texts, max_size=4).map(tuple),
)


def sample() -> StoredEntry:
    return StoredEntry(
        status=200,
        headers=(("Content-Type", "text/html"), ("ETag", '"abc"')),
        body=b"<p>hi</p>",
        encoding="identity",
        etag='"abc"',
        last_modified=None,
        stored_at=1000.0,
        date=999.0,
        fresh_until=1060.0,
        stale_while_revalidate=30.0,
        stale_if_error=300.0,
        vary=("cookie",),
        tags=("post:1", "home"),
    )


@given(entries)
def test_round_trip(entry: StoredEntry) -> None:
    assert StoredEntry.from_bytes(entry.to_bytes()) == entry


def test_layout_is_stable() -> None:
    data = sample().to_bytes()
    assert data[:5] == b"RCPE\x01"
    assert data[5:7] == (200).to_bytes(2, "big")
    assert data[-4:] == zlib.crc32(data[:-4]).to_bytes(4, "big")
    # 59-byte fixed part | etag | 2 headers | vary | 2 tags | body | CRC-32
    assert len(data) == 59 + 9 + 46 + 10 + 18 + 9 + 4
    assert data.hex() == (
        "524350450100c80001408f400000000000408f3800000000004090900000000000403e0000000000"
        "004072c00000000000000200010002000000090000000522616263220000000c436f6e74656e742d"
        "5479706500000009746578742f68746d6c000000044554616700000005226162632200000006636f"
        "6f6b696500000006706f73743a3100000004686f6d653c703e68693c2f703ecc0e36db"
    )


def test_lone_surrogates_survive() -> None:
    entry = replace(sample(), headers=(("X-Odd", "\udcff"),))
    assert StoredEntry.from_bytes(entry.to_bytes()) == entry


@given(st.data())
def test_any_single_byte_change_is_refused(data: st.DataObject) -> None:
    raw = bytearray(sample().to_bytes())
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(DecodeError):
        StoredEntry.from_bytes(bytes(raw))


@given(st.data())
def test_any_truncation_or_extension_is_refused(data: st.DataObject) -> None:
    raw = sample().to_bytes()
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        StoredEntry.from_bytes(raw[:cut])
    with pytest.raises(DecodeError):
        StoredEntry.from_bytes(raw + data.draw(st.binary(min_size=1, max_size=8)))


def _resealed(payload: bytes) -> bytes:
    """Return ``payload`` with a valid checksum, to reach the checks behind it."""
    return payload + zlib.crc32(payload).to_bytes(4, "big")


@pytest.mark.parametrize(
    ("offset", "byte", "message"),
    [
        (0, b"X", "magic"),
        (4, b"\x02", "version"),
        (7, b"\x07", "encoding"),
        (8, b"\x80", "flag"),
    ],
)
def test_bad_header_fields_are_refused(offset: int, byte: bytes, message: str) -> None:
    payload = bytearray(sample().to_bytes()[:-4])
    payload[offset : offset + 1] = byte
    with pytest.raises(DecodeError, match=message):
        StoredEntry.from_bytes(_resealed(bytes(payload)))


def test_inconsistent_lengths_are_refused_even_with_a_valid_checksum() -> None:
    payload = bytearray(sample().to_bytes()[:-4])
    payload[55:59] = (10**6).to_bytes(4, "big")  # body length larger than the data
    with pytest.raises(DecodeError, match="truncated"):
        StoredEntry.from_bytes(_resealed(bytes(payload)))
    payload[55:59] = (0).to_bytes(4, "big")  # body length shorter: bytes left over
    with pytest.raises(DecodeError, match="trailing"):
        StoredEntry.from_bytes(_resealed(bytes(payload)))


def test_invalid_utf8_and_non_finite_times_are_refused() -> None:
    entry = replace(sample(), etag="é")
    payload = entry.to_bytes()[:-4].replace("é".encode(), b"\xff\xfe")
    with pytest.raises(DecodeError, match="UTF-8"):
        StoredEntry.from_bytes(_resealed(payload))
    nan = bytearray(sample().to_bytes()[:-4])
    nan[9:17] = bytes.fromhex("7ff8000000000000")  # stored_at = NaN
    with pytest.raises(DecodeError, match="non-finite"):
        StoredEntry.from_bytes(_resealed(bytes(nan)))


def test_short_input_is_refused() -> None:
    with pytest.raises(DecodeError):
        StoredEntry.from_bytes(b"")
    with pytest.raises(DecodeError):
        StoredEntry.from_bytes(b"RCPE")


def test_unencodable_entries_raise_encode_error() -> None:
    with pytest.raises(EncodeError):
        replace(sample(), fresh_until=math.inf).to_bytes()
    with pytest.raises(EncodeError):
        replace(sample(), status=70000).to_bytes()
    with pytest.raises(EncodeError):
        replace(sample(), encoding="br").to_bytes()  # type: ignore[arg-type]


def test_request_and_response_defaults() -> None:
    req = Request("GET", "https", "example.com", "/")
    assert req.query_string == "" and req.headers == Headers() and not req.is_authenticated
    assert Response(200).body == b""
