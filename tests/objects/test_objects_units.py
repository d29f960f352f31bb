"""Pure parts of the object cache: the envelope, argument keys, tag ids, ops without Redis."""

from __future__ import annotations

import datetime as dt
import enum
import logging
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rcache.adapter import AdapterStats
from rcache.codecs import Codec
from rcache.errors import DecodeError
from rcache.keys import KeySpace
from rcache.objects import canonical, function_key
from rcache.objects._context import CacheContext, tag_id
from rcache.objects._envelope import Entry, is_envelope, pack, unpack
from rcache.objects._failures import Failures
from rcache.objects._verbs import get, get_many, redo
from rcache.ops import Batch, Op

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)


@given(json_values | st.binary())
def test_no_codec_payload_looks_like_an_envelope(value: Any) -> None:
    assert not is_envelope(Codec().encode(value))
    assert not is_envelope(Codec(serializer="pickle", compressor="zlib").encode(value))


@given(
    st.binary(min_size=1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=30)), max_size=5),
)
def test_envelope_round_trip(value: bytes, compute: int, stale: int, tags: list[Any]) -> None:
    entry = Entry(value, compute, stale, tuple(tags))
    blob = pack(entry)
    assert is_envelope(blob) and unpack(blob) == entry


def test_envelope_layout_is_compact() -> None:
    blob = pack(Entry(b"\x88[1]", compute_ms=12, stale_ms=3000, tags=(("t", b"tok"),)))
    assert blob == (
        b"\x01\x01" + (12).to_bytes(4, "big") + (3000).to_bytes(4, "big") + b"\x01"
        b"\x01t\x03tok" + b"\x88[1]"
    )


@pytest.mark.parametrize(
    "blob",
    [
        b"\x01",
        b"\x01\x01\x00\x00",
        b"\x01\x02" + bytes(9) + b"x",
        b"\x01\x01" + bytes(9),
        b"\x01\x01" + bytes(8) + b"\x02\x01t",
        b"\x01\x01" + bytes(8) + b"\x01\x02\xff\xfe\x00x",
    ],
)
def test_corrupt_envelopes_raise_decode_error(blob: bytes) -> None:
    with pytest.raises(DecodeError):
        unpack(blob)


class Color(enum.Enum):
    RED = 1


class Point:
    def __init__(self, x: int) -> None:
        self.x = x

    def __cache_key__(self) -> int:
        return self.x


def test_canonical_encoding_tells_types_apart() -> None:
    values = [1, 1.0, True, "1", b"1", [1], (1,), {1}, None, Decimal(1), Color.RED, Point(1)]
    encoded = [canonical(v) for v in values]
    assert len(set(encoded)) == len(values)
    assert canonical(Point(1)) == canonical(Point(1)) != canonical(Point(2))
    assert canonical({1, 2}) == canonical(frozenset({2, 1}))
    assert canonical(dt.datetime(2024, 1, 1)) != canonical(dt.date(2024, 1, 1))
    assert canonical(uuid.UUID(int=5)) == canonical(uuid.UUID(int=5))
    assert canonical(int) != canonical(str)


@given(st.dictionaries(st.text(max_size=5), st.integers(), max_size=8), st.randoms())
def test_canonical_ignores_dict_and_set_order(d: dict[str, int], rnd: Any) -> None:
    items = list(d.items())
    rnd.shuffle(items)
    assert canonical(dict(items)) == canonical(d)
    assert canonical(set(d)) == canonical(frozenset(reversed(list(d))))


def test_canonical_refuses_unknown_types() -> None:
    with pytest.raises(TypeError, match="__cache_key__.*key="):
        canonical(object())
    with pytest.raises(TypeError, match="argument 'x'"):
        function_key(test_canonical_refuses_unknown_types, {"x": [object()]})


def test_function_key_names_the_function() -> None:
    key = function_key(test_function_key_names_the_function, {"a": 1})
    module = test_function_key_names_the_function.__module__
    assert key.startswith(f"{module}.test_function_key_names_the_function:")
    assert len(key.split(":")[-1]) == 32


def test_tag_ids() -> None:
    assert tag_id("user:42") == "user:42"
    assert tag_id("with space").startswith("#") and tag_id("x" * 200).startswith("#")
    assert tag_id("{brace}") != "{brace}"
    with pytest.raises(TypeError):
        tag_id(42)  # type: ignore[arg-type]


def drive(op: Op[Any], replies: list[Any]) -> tuple[Any, list[Batch]]:
    """Run ``op`` against canned replies; return its result and the batches it sent."""
    sent: list[Batch] = []
    try:
        effect = next(op)
        while True:
            assert isinstance(effect, Batch)
            sent.append(effect)
            effect = op.send(replies.pop(0))
    except StopIteration as stop:
        return stop.value, sent


def context() -> CacheContext:
    return CacheContext(KeySpace("app"), Codec(), 300, Failures(), AdapterStats())


def test_get_is_one_get_and_get_many_one_mget() -> None:
    ctx = context()
    value, sent = drive(get(ctx, "k"), [[Codec().encode([1])]])
    assert value == [1] and [b.commands for b in sent] == [[("GET", "app:1:k")]]
    values, sent = drive(get_many(ctx, ["a", "b"]), [[[b"1", None]]])
    assert values == {"a": 1} and [b.commands for b in sent] == [[("MGET", "app:1:a", "app:1:b")]]
    assert ctx.stats.hits == 2 and ctx.stats.misses == 1


def test_key_layout() -> None:
    ctx = context()
    assert ctx.fill_key(ctx.key("k")) == "app:1:k#fill"
    assert ctx.lock_key("job") == "app:1:job#lock"
    assert ctx.tag_key("t") == "app:1:{app:1:tags}#tag:t"
    assert ctx.user_key(b"app:1:k") == "k" and ctx.user_key(b"app:1:k#fill") is None
    hashed = ctx.key("has space")
    assert ctx.user_key(hashed) == hashed.removeprefix("app:1:")
    assert ctx.space_pattern() == "app:[-0-9]*" and ctx.entry_pattern("u*") == "app:1:u*"


def test_writes_to_redo_are_bounded_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    from rcache._degrade import REDO_LIMIT

    failures = Failures()
    with caplog.at_level(logging.WARNING, logger="rcache.objects"):
        failures.lost("key", [f"k{i}" for i in range(REDO_LIMIT - 3)])
        failures.lost("tag", ["t1", "t2", "t3"])
        failures.lost("key", ["more"])
    lost = failures.take_redo()
    assert len(lost["key"]) + len(lost["tag"]) == REDO_LIMIT and "more" not in lost["key"]
    assert len([r for r in caplog.records if "redo" in r.getMessage()]) == 1
    assert not failures.redo_due and failures.take_redo() == {}
    failures.lost("key", ["a", "b"])
    failures.lost("tag", ["t"])
    failures.done("key", ["a"])  # written since: nothing to redo for it
    failures.done("tag", ["t"])
    assert failures.take_redo() == {"key": ["b"]}


def test_a_redo_that_fails_waits_before_the_next_attempt() -> None:
    from rcache._degrade import REDO_PAUSE

    failures = Failures()
    calls: list[int] = []
    failures.on_redo = lambda: calls.append(1)
    failures.lost("key", ["k"])
    failures.ok()
    assert calls == [1]  # due, and nothing failed yet: at once
    failures.redo_failed()
    for _ in range(100):  # Redis read-only, say: every read succeeds, every redo fails
        failures.ok()
        failures.written()
    assert calls == [1]
    failures._redo_not_before -= REDO_PAUSE  # a second later
    failures.ok()
    assert calls == [1, 1]


def test_an_interrupted_redo_keeps_what_it_took() -> None:
    ctx = context()
    ctx.failures.lost("key", ["app:1:a"])
    ctx.failures.lost("tag", ["app:1:#tag:t"])
    op = redo(ctx)
    effect = next(op)  # the redo's batch is on its way...
    assert isinstance(effect, Batch) and not ctx.failures.redo_due
    op.close()  # ...and its task is cancelled: nothing may be forgotten
    assert ctx.failures.take_redo() == {"key": ["app:1:a"], "tag": ["app:1:#tag:t"]}
