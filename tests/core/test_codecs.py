"""Tests for rcache.codecs: round trips, the stored format, and the decoding security rules."""

from __future__ import annotations

import ast
import hashlib
import hmac
import importlib.util
import inspect
import json
import math
import pickle
import random
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rcache.codecs
from rcache.codecs import (
    Codec,
    JSONSerializer,
    LZ4Compressor,
    MsgpackSerializer,
    PickleSerializer,
    ZlibCompressor,
    ZstdCompressor,
)
from rcache.errors import ConfigurationError, DecodeError, EncodeError

HAS_LZ4 = importlib.util.find_spec("lz4") is not None
needs_lz4 = pytest.mark.skipif(not HAS_LZ4, reason="lz4 is not installed")

COMPRESSORS = [None, "zlib", "zstd", pytest.param("lz4", marks=needs_lz4)]
COMPRESSOR_IDS = {"zlib": 1, "zstd": 2, "lz4": 3}
KEY = b"k" * 32
OLD_KEY = b"old-key-0123456789abcdef01234567"
NEW_KEY = b"new-key-0123456789abcdef01234567"

ROUND_TRIP = settings(max_examples=60, deadline=None)


# --- helpers ------------------------------------------------------------------------------


def fields(payload: bytes) -> tuple[bool, int, int]:
    """Return (signed, serializer id, compressor id) read from a payload's header byte."""
    header = payload[0]
    assert header & 0x80, f"not a headed payload: first byte 0x{header:02x}"
    return bool(header & 0x40), (header >> 3) & 7, header & 7


def same(a: Any, b: Any) -> bool:
    """Return whether a and b are equal with the same types all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb)
            for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    return bool(a == b)


def check_round_trip(codec: Codec, value: Any) -> None:
    for candidate in (value, [value], {"v": value}):
        payload = codec.encode(candidate)
        assert isinstance(payload, bytes)
        if type(candidate) is not int:
            assert fields(payload)[0] is codec.signed
        decoded = codec.decode(payload)
        assert same(decoded, candidate), (candidate, decoded)


def flip(payload: bytes, index: int) -> bytes:
    changed = bytearray(payload)
    changed[index] ^= 0x01
    return bytes(changed)


# A value whose unpickling has a visible side effect: proof that pickle.loads ran.
UNPICKLED: list[str] = []


def _record_unpickling(tag: str) -> str:
    UNPICKLED.append(tag)
    return tag


class Exploit:
    def __reduce__(self) -> tuple[Callable[[str], str], tuple[str]]:
        return (_record_unpickling, ("unpickled",))


@pytest.fixture
def pickle_spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Count calls to pickle.loads and clear the side-effect list around the test."""
    calls: list[bytes] = []
    real_loads = pickle.loads

    def spy(data: bytes, /, **kwargs: Any) -> Any:
        calls.append(data)
        return real_loads(data, **kwargs)

    monkeypatch.setattr(pickle, "loads", spy)
    UNPICKLED.clear()
    yield calls
    UNPICKLED.clear()


class SpyZlib(ZlibCompressor):
    """zlib that counts decompress calls."""

    def __init__(self) -> None:
        super().__init__()
        self.decompressed = 0

    def decompress(self, data: bytes) -> bytes:
        self.decompressed += 1
        return super().decompress(data)


# --- strategies ---------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)

int64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)
msgpack_scalars = (
    st.none() | st.booleans() | int64 | st.floats(allow_nan=False) | st.text() | st.binary()
)
msgpack_values = st.recursive(
    msgpack_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | int64 | st.binary(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)

pickle_scalars = (
    json_scalars
    | st.binary()
    | st.complex_numbers(allow_nan=False)
    | st.datetimes()
    | st.frozensets(st.integers(), max_size=4)
)
pickle_values = st.recursive(
    pickle_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4)
    ),
    max_leaves=16,
)

_codecs: dict[tuple[str, str | None, bytes | None], Codec] = {}


def codec_for(serializer: str, compressor: str | None, key: bytes | None) -> Codec:
    """Return a cached codec that compresses whenever it helps (compress_min_size=0)."""
    spec = (serializer, compressor, key)
    if spec not in _codecs:
        _codecs[spec] = Codec(
            serializer=serializer, compressor=compressor, compress_min_size=0, signing_keys=key
        )
    return _codecs[spec]


# --- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, KEY], ids=["unsigned", "signed"])
@pytest.mark.parametrize("compressor", COMPRESSORS)
@ROUND_TRIP
@given(value=json_values)
def test_json_round_trip(compressor: str | None, key: bytes | None, value: Any) -> None:
    check_round_trip(codec_for("json", compressor, key), value)


@pytest.mark.parametrize("key", [None, KEY], ids=["unsigned", "signed"])
@pytest.mark.parametrize("compressor", COMPRESSORS)
@ROUND_TRIP
@given(value=pickle_values)
def test_pickle_round_trip(compressor: str | None, key: bytes | None, value: Any) -> None:
    check_round_trip(codec_for("pickle", compressor, key), value)


@pytest.mark.parametrize("key", [None, KEY], ids=["unsigned", "signed"])
@pytest.mark.parametrize("compressor", COMPRESSORS)
@ROUND_TRIP
@given(value=msgpack_values)
def test_msgpack_round_trip(compressor: str | None, key: bytes | None, value: Any) -> None:
    check_round_trip(codec_for("msgpack", compressor, key), value)


def test_json_turns_tuples_into_lists_and_keys_into_strings() -> None:
    codec = Codec()
    assert codec.decode(codec.encode({"t": (1, 2), 3: "x", None: 1})) == {
        "t": [1, 2],
        "3": "x",
        "null": 1,
    }


def test_json_is_compact_utf8() -> None:
    payload = Codec().encode({"a": [1, 2], "é": "ü"})
    assert payload == b"\x88" + '{"a":[1,2],"é":"ü"}'.encode()


EDGE_VALUES = [
    b"",
    "",
    0,
    -0,
    1,
    -1,
    2**64,
    -(2**100),
    10**4000,
    True,
    False,
    None,
    0.0,
    -0.0,
    1.5,
    float("inf"),
    float("-inf"),
    "ünïcødé 🎉",
    "lone surrogate \ud800",
    b"\x00\xff\x80",
    "42",
    b"42",
    "-1",
    b"-",
    [],
    {},
    [True, 1, 1.0, "1", None],
]


@pytest.mark.parametrize("key", [None, KEY], ids=["unsigned", "signed"])
@pytest.mark.parametrize("serializer", ["json", "pickle", "msgpack"])
@pytest.mark.parametrize("value", EDGE_VALUES, ids=repr)
def test_edge_values_keep_value_and_type(serializer: str, key: bytes | None, value: Any) -> None:
    codec = codec_for(serializer, "zlib", key)
    assert same(codec.decode(codec.encode(value)), value)


@pytest.mark.parametrize("serializer", ["json", "pickle", "msgpack"])
def test_bools_stay_bools(serializer: str) -> None:
    codec = Codec(serializer=serializer)
    assert codec.decode(codec.encode(True)) is True
    assert codec.decode(codec.encode(False)) is False
    assert codec.encode(True) not in (b"1", b"True")


@pytest.mark.parametrize("serializer", ["json", "pickle", "msgpack"])
def test_bytes_and_str_skip_the_serializer(serializer: str) -> None:
    for key, signed_bit in ((None, 0), (KEY, 0x40)):
        codec = Codec(serializer=serializer, signing_keys=key)
        raw = codec.encode(b"\x00abc")
        text = codec.encode("héllo")
        body_start = 33 if key else 1
        assert raw[0] == 0x80 | signed_bit
        assert raw[body_start:] == b"\x00abc"
        assert text[0] == 0x80 | signed_bit | 4 << 3
        assert text[body_start:] == "héllo".encode()


class Name(str):
    """A str subclass: its type must survive a pickle round trip."""


def test_subclasses_of_str_go_through_the_serializer() -> None:
    payload = Codec(serializer="pickle").encode(Name("x"))
    assert fields(payload)[1] == 2
    assert type(Codec(serializer="pickle").decode(payload)) is Name


# --- integers ------------------------------------------------------------------------------

INT_CODECS = [
    Codec(),
    Codec(serializer="pickle", compressor="zlib", compress_min_size=0, signing_keys=KEY),
    Codec(serializer="msgpack", compressor="zstd", compress_min_size=0),
]


@pytest.mark.parametrize("codec", INT_CODECS, ids=repr)
@pytest.mark.parametrize(
    ("value", "stored"),
    [(42, b"42"), (-7, b"-7"), (0, b"0"), (-0, b"0"), (2**70, b"1180591620717411303424")],
)
def test_ints_are_stored_as_plain_ascii(codec: Codec, value: int, stored: bytes) -> None:
    assert codec.encode(value) == stored
    decoded = codec.decode(stored)
    assert type(decoded) is int and decoded == value


@given(value=st.integers())
def test_int_payloads_read_back_after_incr(value: int) -> None:
    codec = Codec(signing_keys=KEY)
    stored = codec.encode(value)
    assert stored == str(value).encode("ascii")
    incremented = str(int(stored) + 1).encode("ascii")  # what Redis INCR would store
    assert codec.decode(incremented) == value + 1


def test_int_too_long_for_str_falls_back_to_the_serializer() -> None:
    huge = 10 ** (sys.get_int_max_str_digits() + 10)
    codec = Codec(serializer="pickle")
    payload = codec.encode(huge)
    assert fields(payload)[1] == 2
    assert codec.decode(payload) == huge
    with pytest.raises(EncodeError, match=r"\bint\b"):
        Codec().encode(huge)


@pytest.mark.parametrize(
    "payload",
    [b"12a", b"-", b"--1", b"-a", b"1_000", b"4 2", b"12\n", b"1.5", b"9" * 5000, b"0x10"],
)
def test_invalid_int_payloads_are_decode_errors(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        Codec().decode(payload)


# --- compression ---------------------------------------------------------------------------

AVAILABLE_COMPRESSORS = ["zlib", "zstd", pytest.param("lz4", marks=needs_lz4)]


@pytest.mark.parametrize("compressor", AVAILABLE_COMPRESSORS)
def test_small_values_are_stored_uncompressed(compressor: str) -> None:
    codec = Codec(compressor=compressor)
    value = "x" * 100
    payload = codec.encode(value)
    assert payload == b"\xa0" + value.encode()
    assert codec.decode(payload) == value


@pytest.mark.parametrize("compressor", AVAILABLE_COMPRESSORS)
def test_large_compressible_values_are_compressed(compressor: str) -> None:
    codec = Codec(compressor=compressor)
    value = {"rows": [{"id": i % 10, "name": "name"} for i in range(500)]}
    serialized = JSONSerializer().dumps(value)
    assert len(serialized) > 10_000
    payload = codec.encode(value)
    assert fields(payload) == (False, 1, COMPRESSOR_IDS[compressor])
    assert len(payload) < len(serialized) // 4
    assert codec.decode(payload) == value


@pytest.mark.parametrize("compressor", AVAILABLE_COMPRESSORS)
def test_incompressible_values_are_stored_uncompressed(compressor: str) -> None:
    codec = Codec(compressor=compressor)
    noise = random.Random(1234).randbytes(10 * 1024)
    payload = codec.encode(noise)
    assert payload == b"\x80" + noise
    assert codec.decode(payload) == noise


def test_threshold_is_inclusive_and_counts_serialized_bytes() -> None:
    codec = Codec(compressor="zlib", compress_min_size=1000)
    assert fields(codec.encode("a" * 999))[2] == 0
    assert fields(codec.encode("a" * 1000))[2] == 1
    # json adds quotes: 998 characters serialize to 1000 bytes
    assert fields(codec.encode(["a" * 996]))[2] == 1
    assert fields(codec.encode(["a" * 995]))[2] == 0


def test_zstd_threads_do_not_share_contexts() -> None:
    codec = Codec(compressor="zstd", compress_min_size=0)
    values = [{"n": n, "text": "abc" * (n % 50 + 100)} for n in range(400)]

    def work(value: dict[str, Any]) -> bool:
        return bool(codec.decode(codec.encode(value)) == value)

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(work, values))


# --- reading values written by other configurations ---------------------------------------

BIG = {"items": list(range(300)), "name": "ü" * 100}


@pytest.mark.parametrize(
    ("writer", "expected_fields"),
    [
        (Codec(), (False, 1, 0)),
        (Codec(compressor="zlib", compress_min_size=0), (False, 1, 1)),
        (Codec(compressor="zstd", compress_min_size=0, signing_keys=KEY), (True, 1, 2)),
        (Codec(serializer="msgpack", compressor="zlib", compress_min_size=0), (False, 3, 1)),
        (Codec(serializer="msgpack", signing_keys=[KEY, OLD_KEY]), (True, 3, 0)),
    ],
    ids=repr,
)
def test_reads_values_written_by_other_configurations(
    writer: Codec, expected_fields: tuple[bool, int, int]
) -> None:
    reader = Codec(serializer="json", compressor="zstd", signing_keys=KEY)
    payload = writer.encode(BIG)
    assert fields(payload) == expected_fields
    assert reader.decode(payload) == BIG


def test_a_pickle_codec_reads_json_values() -> None:
    assert Codec(serializer="pickle").decode(Codec().encode({"a": 1})) == {"a": 1}


def test_a_signed_value_cannot_be_read_without_keys() -> None:
    payload = Codec(signing_keys=KEY).encode({"a": 1})
    with pytest.raises(DecodeError, match="no keys"):
        Codec().decode(payload)


def test_missing_optional_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    zstd_payload = Codec(compressor="zstd", compress_min_size=0).encode(BIG)
    msgpack_payload = Codec(serializer="msgpack").encode(BIG)
    for module in ("zstandard", "msgpack", "lz4", "lz4.frame"):
        monkeypatch.setitem(sys.modules, module, None)

    with pytest.raises(ConfigurationError, match="zstandard"):
        Codec(compressor="zstd")
    with pytest.raises(ConfigurationError, match="msgpack"):
        Codec(serializer="msgpack")
    with pytest.raises(ConfigurationError, match="lz4"):
        Codec(compressor="lz4")
    with pytest.raises(ConfigurationError, match="lz4"):
        LZ4Compressor()

    reader = Codec(compressor="zlib")  # creating it does not need the optional libraries
    with pytest.raises(DecodeError, match="zstd"):
        reader.decode(zstd_payload)
    with pytest.raises(DecodeError, match="msgpack"):
        reader.decode(msgpack_payload)
    assert reader.decode(reader.encode(BIG)) == BIG


# --- malformed payloads --------------------------------------------------------------------


def _malformed() -> list[Any]:
    json_payload = Codec().encode({"a": [1, 2, 3]})
    zlib_payload = Codec(compressor="zlib", compress_min_size=0).encode(BIG)
    zstd_payload = Codec(compressor="zstd", compress_min_size=0).encode(BIG)
    signed = Codec(signing_keys=KEY).encode({"a": 1})
    cases: list[Any] = [
        pytest.param(b"", id="empty"),
        pytest.param(json_payload[:-1], id="truncated-json"),
        pytest.param(b"\x88", id="header-only-json"),
        pytest.param(b"\x88{not json", id="corrupt-json"),
        pytest.param(b"\x89not zlib at all", id="corrupt-zlib"),
        pytest.param(zlib_payload[:-5], id="truncated-zlib"),
        pytest.param(b"\x8a" + b"\x00" * 20, id="corrupt-zstd"),
        pytest.param(zstd_payload[:-5], id="truncated-zstd"),
        pytest.param(b"\x98\xc1", id="corrupt-msgpack"),
        pytest.param(b"\x98\x01extra", id="msgpack-extra-data"),
        pytest.param(b"\x98\x92\x01", id="truncated-msgpack"),
        pytest.param(b"\xa0\xff\xfe", id="bad-utf8-str"),
        pytest.param(signed[:20], id="truncated-mac"),
        pytest.param(signed[:33], id="mac-without-body"),
        pytest.param(signed[:-1], id="truncated-signed-body"),
        pytest.param(b"\x00abc", id="nul-first-byte"),
        pytest.param(b"hello", id="plain-text"),
        pytest.param(b" 42", id="leading-space"),
        pytest.param(b"+5", id="plus-sign"),
        pytest.param(b"\x7f", id="del-byte"),
    ]
    for serializer_id in (5, 6, 7):
        header = 0x80 | serializer_id << 3
        cases.append(pytest.param(bytes([header]) + b"{}", id=f"unknown-serializer-{header:#x}"))
    for compressor_id in (4, 5, 6, 7):
        header = 0x80 | 1 << 3 | compressor_id
        cases.append(pytest.param(bytes([header]) + b"{}", id=f"unknown-compressor-{header:#x}"))
    return cases


@pytest.mark.parametrize("key", [None, KEY], ids=["unsigned", "signed"])
@pytest.mark.parametrize("payload", _malformed())
def test_malformed_payloads_are_decode_errors(payload: bytes, key: bytes | None) -> None:
    with pytest.raises(DecodeError):
        Codec(compressor="zstd", signing_keys=key).decode(payload)


def test_corrupt_pickle_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="pickle"):
        Codec(serializer="pickle").decode(b"\x90not a pickle")


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(DecodeError, match="bytes"):
        Codec().decode("42")  # type: ignore[arg-type]


def test_zstd_frame_declaring_a_huge_size_is_refused_without_allocating() -> None:
    # A 17-byte frame header that claims 1 TiB of content.
    frame = b"\x28\xb5\x2f\xfd\xe0" + (1 << 40).to_bytes(8, "little") + b"\x01\x00\x00"
    with pytest.raises(DecodeError, match="max_output_size"):
        Codec().decode(b"\x82" + frame)


@settings(max_examples=300, deadline=None)
@given(
    payload=st.binary(max_size=64)
    | st.builds(lambda h, b: bytes([h]) + b, st.integers(0x80, 0xFF), st.binary(max_size=64))
)
def test_arbitrary_bytes_decode_or_raise_decode_error(payload: bytes) -> None:
    for codec in (
        codec_for("json", "zstd", None),
        codec_for("json", "zlib", KEY),
        codec_for("pickle", None, KEY),
    ):
        try:
            codec.decode(payload)
        except DecodeError:
            pass


def test_error_messages_never_contain_the_payload_or_value() -> None:
    secret = "SECRET-TOKEN-1234"
    for payload in (
        b"\x88" + f'{{"token": "{secret}"'.encode(),
        b"\x98\x91\xb1" + secret.encode()[:10],
        b"\x90" + f"c{secret}\nthing\n.".encode(),
        b"\xa0" + secret.encode() + b"\xff",
    ):
        with pytest.raises(DecodeError) as info:
            Codec(serializer="pickle").decode(payload)
        assert secret not in str(info.value)

    class Secretive:
        def __repr__(self) -> str:
            return secret

    for serializer in ("json", "msgpack"):
        with pytest.raises(EncodeError) as error:
            Codec(serializer=serializer).encode({"x": Secretive()})
        assert secret not in str(error.value)
        assert "dict" in str(error.value)


# --- pickle security -----------------------------------------------------------------------


def test_the_side_effect_detector_works(pickle_spy: list[bytes]) -> None:
    codec = Codec(serializer="pickle", signing_keys=KEY)
    assert codec.decode(codec.encode(Exploit())) == "unpickled"
    assert UNPICKLED == ["unpickled"]
    assert len(pickle_spy) == 1


def test_signature_is_hmac_sha256_of_header_and_body() -> None:
    payload = Codec(serializer="pickle", signing_keys=[KEY, OLD_KEY]).encode({"a": 1})
    assert fields(payload) == (True, 2, 0)
    expected = hmac.new(KEY, payload[:1] + payload[33:], hashlib.sha256).digest()
    assert payload[1:33] == expected
    assert pickle.loads(payload[33:]) == {"a": 1}


def _tampered() -> list[Any]:
    codec = Codec(serializer="pickle", signing_keys=KEY)
    payload = codec.encode(Exploit())
    body = payload[33:]
    return [
        pytest.param(flip(payload, len(payload) - 2), id="bit-flipped-in-body"),
        pytest.param(flip(payload, 5), id="bit-flipped-in-mac"),
        pytest.param(payload[:1] + body, id="mac-stripped"),
        pytest.param(bytes([payload[0] & ~0x40]) + body, id="mac-stripped-unsigned-header"),
        pytest.param(bytes([payload[0] | 0x01]) + payload[1:], id="header-changed"),
        pytest.param(payload[:1] + b"\x00" * 32 + body, id="zeroed-mac"),
        pytest.param(payload[:-1], id="truncated"),
        pytest.param(
            Codec(serializer="pickle", signing_keys=OLD_KEY).encode(Exploit()), id="other-key"
        ),
    ]


@pytest.mark.parametrize("payload", _tampered())
def test_tampered_signed_pickle_is_never_unpickled(payload: bytes, pickle_spy: list[bytes]) -> None:
    codec = Codec(serializer="pickle", signing_keys=KEY)
    with pytest.raises(DecodeError):
        codec.decode(payload)
    assert UNPICKLED == []
    assert pickle_spy == []


def test_signature_is_checked_before_decompression(pickle_spy: list[bytes]) -> None:
    spy = SpyZlib()
    codec = Codec(serializer="pickle", compressor=spy, compress_min_size=0, signing_keys=KEY)
    payload = codec.encode([Exploit(), "padding" * 100])
    assert fields(payload) == (True, 2, 1)
    with pytest.raises(DecodeError, match="signature"):
        codec.decode(flip(payload, len(payload) - 1))
    assert spy.decompressed == 0
    assert pickle_spy == [] and UNPICKLED == []

    assert codec.decode(payload)[0] == "unpickled"
    assert spy.decompressed == 1


def test_unsigned_pickle_is_refused_by_a_signing_codec(pickle_spy: list[bytes]) -> None:
    payload = Codec(serializer="pickle").encode(Exploit())
    with pytest.raises(DecodeError, match="unsigned pickle"):
        Codec(serializer="pickle", signing_keys=KEY).decode(payload)
    with pytest.raises(DecodeError, match="unsigned pickle"):
        Codec(signing_keys=KEY, accept_pickle=True).decode(payload)
    assert pickle_spy == [] and UNPICKLED == []


def test_pickle_is_refused_by_a_json_codec(pickle_spy: list[bytes]) -> None:
    unsigned = Codec(serializer="pickle").encode(Exploit())
    signed = Codec(serializer="pickle", signing_keys=KEY).encode(Exploit())
    with pytest.raises(DecodeError, match="does not accept pickle"):
        Codec().decode(unsigned)
    with pytest.raises(DecodeError, match="does not accept pickle"):
        Codec(signing_keys=KEY).decode(signed)
    assert pickle_spy == [] and UNPICKLED == []


def test_signed_pickle_is_refused_without_keys(pickle_spy: list[bytes]) -> None:
    signed = Codec(serializer="pickle", signing_keys=KEY).encode(Exploit())
    with pytest.raises(DecodeError):
        Codec(serializer="pickle").decode(signed)
    assert pickle_spy == [] and UNPICKLED == []


def test_accept_pickle_opts_a_json_codec_in(pickle_spy: list[bytes]) -> None:
    payload = Codec(serializer="pickle").encode(Exploit())
    assert Codec(accept_pickle=True).decode(payload) == "unpickled"
    assert len(pickle_spy) == 1


def test_accept_pickle_defaults() -> None:
    assert Codec().accept_pickle is False
    assert Codec(serializer="msgpack").accept_pickle is False
    assert Codec(serializer="pickle").accept_pickle is True
    assert Codec(accept_pickle=True).accept_pickle is True


def test_key_rotation() -> None:
    old_writer = Codec(serializer="pickle", signing_keys=OLD_KEY)
    rotated = Codec(serializer="pickle", signing_keys=[NEW_KEY, OLD_KEY])
    new_only = Codec(serializer="pickle", signing_keys=[NEW_KEY])

    old_payload = old_writer.encode({"v": 1})
    assert rotated.decode(old_payload) == {"v": 1}
    with pytest.raises(DecodeError, match="signature"):
        new_only.decode(old_payload)

    new_payload = rotated.encode({"v": 2})  # the first key signs
    assert new_only.decode(new_payload) == {"v": 2}
    with pytest.raises(DecodeError, match="signature"):
        old_writer.decode(new_payload)


def test_str_and_bytes_keys_are_the_same_key() -> None:
    payload = Codec(signing_keys="sëcret").encode({"a": 1})
    assert Codec(signing_keys=["sëcret".encode()]).decode(payload) == {"a": 1}


# --- encode errors ------------------------------------------------------------------------


def _circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    ("serializer", "value", "type_name"),
    [
        ("json", object(), "object"),
        ("json", {1, 2}, "set"),
        ("json", b"x".decode, "builtin_function_or_method"),
        ("json", {"nested": {1, 2}}, "dict"),
        ("json", _circular(), "list"),
        ("json", {(1, 2): "tuple key"}, "dict"),
        ("msgpack", object(), "object"),
        ("msgpack", {1, 2}, "set"),
        ("msgpack", [2**64], "list"),
        ("pickle", lambda: None, "function"),
        ("pickle", threading.Lock(), "lock"),
    ],
    ids=repr,
)
def test_unserializable_values_are_encode_errors(
    serializer: str, value: Any, type_name: str
) -> None:
    with pytest.raises(EncodeError) as info:
        Codec(serializer=serializer).encode(value)
    assert type_name in str(info.value)
    assert serializer in str(info.value)
    assert info.value.__cause__ is not None


# --- configuration -------------------------------------------------------------------------


def test_unknown_serializer_name() -> None:
    with pytest.raises(ConfigurationError) as info:
        Codec(serializer="yaml")
    message = str(info.value)
    assert "'yaml'" in message
    assert all(name in message for name in ("'json'", "'msgpack'", "'pickle'"))
    assert isinstance(info.value, ValueError)


def test_unknown_compressor_name() -> None:
    with pytest.raises(ConfigurationError) as info:
        Codec(compressor="gzip")
    message = str(info.value)
    assert "'gzip'" in message
    assert all(name in message for name in ("'lz4'", "'zlib'", "'zstd'"))


@pytest.mark.parametrize(
    "make",
    [
        lambda: Codec(compress_min_size=-1),
        lambda: Codec(compress_min_size=True),
        lambda: Codec(signing_keys=[]),
        lambda: Codec(signing_keys=b""),
        lambda: Codec(signing_keys=[KEY, ""]),
        lambda: Codec(signing_keys=[KEY, 3]),  # type: ignore[list-item]
        lambda: Codec(signing_keys=3),  # type: ignore[arg-type]
        lambda: Codec(serializer="pickle", accept_pickle=False),
        lambda: Codec(accept_pickle="yes"),  # type: ignore[arg-type]
        lambda: Codec(serializer=object()),  # type: ignore[arg-type]
        lambda: Codec(compressor=object()),  # type: ignore[arg-type]
        lambda: ZlibCompressor(level=10),
        lambda: ZstdCompressor(level=23),
        lambda: PickleSerializer(protocol=pickle.HIGHEST_PROTOCOL + 1),
    ],
)
def test_bad_settings_are_configuration_errors(make: Callable[[], object]) -> None:
    with pytest.raises(ConfigurationError):
        make()


class ReprSerializer:
    """A custom serializer on a spare id: Python literals via repr."""

    id = 5
    name = "repr"

    def dumps(self, obj: Any) -> bytes:
        return repr(obj).encode()

    def loads(self, data: bytes) -> Any:
        return ast.literal_eval(data.decode())


def test_custom_serializer_uses_its_id() -> None:
    codec = Codec(serializer=ReprSerializer())
    payload = codec.encode((1, {2: 3}))
    assert payload == b"\xa8(1, {2: 3})"
    assert codec.decode(payload) == (1, {2: 3})
    with pytest.raises(DecodeError, match="unknown serializer id 5"):
        Codec().decode(payload)


@pytest.mark.parametrize("ident", [0, 4, 8, -1])
def test_custom_serializer_ids_are_checked(ident: int) -> None:
    serializer = ReprSerializer()
    serializer.id = ident
    with pytest.raises(ConfigurationError, match="id"):
        Codec(serializer=serializer)


def test_repr_hides_keys() -> None:
    text = repr(Codec(compressor="zlib", signing_keys=[b"top-secret-key", b"older-secret"]))
    assert "top-secret" not in text and "older-secret" not in text
    assert text == (
        "Codec(serializer='json', compressor='zlib', compress_min_size=1024, signed=True, "
        "accept_pickle=False)"
    )


def test_codec_module_is_pure() -> None:
    tree = ast.parse(inspect.getsource(rcache.codecs))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert "redis" not in imported
    assert set(rcache.codecs.__all__) <= set(dir(rcache.codecs))


def test_msgpack_serializer_alone() -> None:
    serializer = MsgpackSerializer()
    assert serializer.loads(serializer.dumps({1: b"x", "s": [1.5]})) == {1: b"x", "s": [1.5]}
    assert json.loads(JSONSerializer().dumps({"a": "é"})) == {"a": "é"}
