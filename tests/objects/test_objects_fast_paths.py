"""The object cache's one-step paths, held to what the operations do.

A plain ``get`` is one ``GET`` decoded in place, a decorated hit one batch read and served
without an operation, a local-tier hit one look into the tier; anything else they meet
(an envelope, bytes that do not decode, a stale entry, a tier that is not live) goes on
through the full path. Also here: per-call key ``version=``, the memo of derived keys,
and the errors of ``incr`` and of values that cannot be pickled.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from objects_harness import CacheHarness, Counter
from test_objects_local import go_live, hold, settle, tier, until

import rcache
from rcache.codecs import Codec
from rcache.errors import BackendError, DecodeError, EncodeError
from rcache.objects import MISSING, LocalTier, NotAnInteger, ObjectCache, _decorator, function_key
from rcache.objects._arguments import memoizable, scalar_call
from rcache.objects._context import remember

HERE = Path(__file__).parent
ROOT = Path(rcache.__file__).resolve().parents[1]


def trips(c: CacheHarness) -> int:
    return int(c.stats.round_trips)


# -- plain get ----------------------------------------------------------------------------


def test_a_plain_get_is_one_round_trip_hit_or_miss(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    assert c.set("k", {"items": [1, 2]}) and c.set("n", 7) and c.set("none", None)
    hits, misses, rt = c.stats.hits, c.stats.misses, trips(c)
    assert c.get("k") == {"items": [1, 2]} and c.get("n") == 7
    assert c.get("none", "dflt") is None  # a stored None is a hit
    assert c.get("absent", "dflt") == "dflt" and c.get("absent") is None
    assert trips(c) - rt == 5
    assert c.stats.hits - hits == 3 and c.stats.misses - misses == 2
    assert c.has_key("k") and c.has_key("none") and not c.has_key("absent")
    assert trips(c) - rt == 8


def test_a_tagged_entry_falls_back_to_the_full_path(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    assert c.set("k", "v", tags=["t1", "t2"])
    rt, hits = trips(c), c.stats.hits
    assert c.get("k") == "v"  # the envelope: its tags' tokens are read, then the value
    assert trips(c) - rt == 2 and c.stats.hits - hits == 1
    assert c.invalidate_tags("t2")
    misses = c.stats.misses
    assert c.get("k", "dflt") == "dflt" and not c.has_key("k")
    assert c.stats.misses - misses == 2


def test_bytes_that_do_not_decode_are_a_miss_and_deleted(
    make_cache: Any, redis_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    c = make_cache(redis_server.url)
    raw = redis_server.client()
    try:
        raw.set(c.make_key("bad"), b"\xff\x00garbage")
        raw.set(c.make_key("envelope"), b"\x01garbage")
        with caplog.at_level(logging.WARNING, logger="rcache.objects"):
            assert c.get("bad", "dflt") == "dflt" and c.get("envelope") is None
        assert raw.exists(c.make_key("bad"), c.make_key("envelope")) == 0
        assert sum("unreadable" in r.getMessage() for r in caplog.records) == 2
    finally:
        raw.close()


def test_bytes_that_do_not_decode_raise_in_raise_mode(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url, on_error="raise")
    raw = redis_server.client()
    try:
        raw.set(c.make_key("bad"), b"\xff\x00garbage")
        with pytest.raises(DecodeError):
            c.get("bad")
        assert raw.exists(c.make_key("bad")) == 0  # deleted first
    finally:
        raw.close()


def test_a_value_of_another_type_is_a_failed_read(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    raw = redis_server.client()
    try:
        raw.lpush(c.make_key("list"), b"x")
    finally:
        raw.close()
    assert c.get("list", "dflt") == "dflt"  # WRONGTYPE: a miss in "miss" mode
    strict = make_cache(redis_server.url, prefix=c.cache.key_space.prefix, on_error="raise")
    with pytest.raises(BackendError, match="WRONGTYPE"):
        strict.get("list")


def test_redis_down_a_plain_get_is_a_miss_with_one_warning(
    make_cache: Any, fresh_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    c = make_cache(fresh_server.url, breaker_cooldown=0.3)
    assert c.set("k", "v") and c.get("k") == "v"
    fresh_server.stop()
    with caplog.at_level(logging.WARNING, logger="rcache.objects"):
        for _ in range(50):
            assert c.get("k", "dflt") == "dflt"
    assert len([r for r in caplog.records if r.name == "rcache.objects"]) == 1


# -- decorated hits -----------------------------------------------------------------------


def test_a_decorated_hit_is_one_round_trip(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()

    def plain(x: int) -> list[int]:
        return [x, counter()]

    def tagged(x: int) -> list[int]:
        return [x, counter()]

    def per_call(x: int) -> list[int]:
        return [x, counter()]

    f = c.decorate(plain, ttl=60)
    g = c.decorate(tagged, ttl=60, tags=["t"])
    h = c.decorate(per_call, ttl=60, tags=lambda x: [f"t{x}"])
    assert f(1) == [1, 1] and g(1) == [1, 2] and h(1) == [1, 3]
    rt, hits = trips(c), c.stats.hits
    assert f(1) == [1, 1] and g(1) == [1, 2] and h(1) == [1, 3]
    assert trips(c) - rt == 3 and c.stats.hits - hits == 3 and counter.n == 3
    assert c.invalidate_tags("t", "t1")
    assert g(1) == [1, 4] and h(1) == [1, 5] and f(1) == [1, 1]


def test_a_decorated_entry_that_does_not_decode_is_recomputed(
    make_cache: Any, redis_server: Any
) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()
    f = c.decorate(lambda x: [x, counter()], ttl=60)
    assert f(1) == [1, 1]
    raw = redis_server.client()
    try:
        raw.set(f.redis_key(1), b"\x01\x09broken")
        assert f(1) == [1, 2] and f(1) == [1, 2]
        assert raw.pttl(f.redis_key(1)) > 0
    finally:
        raw.close()


def test_a_stale_decorated_entry_is_served_while_one_caller_refreshes(
    make_cache: Any, redis_server: Any
) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()
    f = c.decorate(lambda x: [x, counter()], ttl=60, stale_ttl=60)
    assert f(1) == [1, 1]
    raw = redis_server.client()
    try:
        raw.pexpire(f.redis_key(1), 30_000)  # inside the stale window
        assert f(1) == [1, 2]  # this caller took the fill lock and recomputed
        assert f(1) == [1, 2] and counter.n == 2
        assert raw.pttl(f.redis_key(1)) > 100_000
    finally:
        raw.close()


def test_redis_down_a_decorated_function_just_computes(
    make_cache: Any, fresh_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    c = make_cache(fresh_server.url, breaker_cooldown=0.3)
    counter = Counter()
    f = c.decorate(lambda x: [x, counter()], ttl=60, tags=["t"])
    assert f(1) == [1, 1] and f(1) == [1, 1]
    fresh_server.stop()
    with caplog.at_level(logging.WARNING, logger="rcache.objects"):
        assert [f(1) for _ in range(20)] == [[1, n] for n in range(2, 22)]
    assert len([r for r in caplog.records if r.name == "rcache.objects"]) == 1
    strict = make_cache(fresh_server.url, prefix=c.cache.key_space.prefix, on_error="raise")
    g = strict.decorate(lambda x: x, ttl=60)
    with pytest.raises(BackendError):
        g(1)


# -- the memo of derived keys -------------------------------------------------------------


def test_equal_arguments_of_other_types_get_their_own_entries(
    make_cache: Any, redis_server: Any
) -> None:
    c = make_cache(redis_server.url)
    seen: list[Any] = []

    def show(x: Any) -> str:
        return f"{type(x).__name__}:{x!r}"

    def impl(x: Any) -> str:
        seen.append(x)
        return show(x)

    f = c.decorate(impl, ttl=60)
    args = [1, 1.0, True, "1", b"1", 0.0, -0.0, None, 0, False, "", math.nan]
    first = [f(a) for a in args]
    again = [f(a) for a in args]  # the memo, then Redis: every one its own entry, a hit
    assert first == again == [show(a) for a in args]
    assert len(seen) == len(args)
    keys = [f.key_for(a) for a in args]
    assert len(set(keys)) == len(args)
    for a, key in zip(args, keys, strict=True):
        assert key == function_key(impl, {"x": a})  # what the module docs promise


def test_keyword_and_positional_calls_share_one_key(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()

    def impl(a: int, b: str = "x", *rest: int, **extra: Any) -> int:
        return counter()

    f = c.decorate(impl, ttl=60)
    assert f(1) == 1 and f(a=1) == 1 and f(1, "x") == 1 and f(1, b="x") == 1
    assert f(1, "y") == 2 and f(1, "y", 3) == 3 and f(1, "y", 3, k=1.5) == 4
    assert f(1, "y", 3, k=1.5) == 4 and f(1, "y", 3, k=2.5) == 5
    with pytest.raises(TypeError):
        f()  # a call the signature refuses is refused, memo or not
    with pytest.raises(TypeError):
        f(1, a=2)


def test_mutable_and_unhashable_arguments_are_keyed_by_their_value_now(
    make_cache: Any, redis_server: Any
) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()
    f = c.decorate(lambda items: [sorted(items), counter()], ttl=60)
    items = [3, 1]
    assert f(items) == [[1, 3], 1] and f([3, 1]) == [[1, 3], 1]
    items.append(2)  # the same list, another value: another key
    assert f(items) == [[1, 2, 3], 2]
    d = {"a": [1]}
    g = c.decorate(lambda d: [d, counter()], ttl=60)
    assert g(d) == [{"a": [1]}, 3] and g({"a": [1]}) == [{"a": [1]}, 3]
    d["a"].append(2)
    assert g(d) == [{"a": [1, 2]}, 4]


def test_a_mutable_default_turns_the_memo_off(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()
    options: list[int] = []

    def impl(x: int, opts: list[int] = options) -> list[Any]:
        return [x, list(opts), counter()]

    assert not memoizable(impl, None) and memoizable(lambda x, y=1.5, z=None: 0, None)
    assert memoizable(lambda x: 0, "k:{x}") and not memoizable(lambda x: 0, lambda x: "k")
    f = c.decorate(impl, ttl=60)
    assert f(1) == [1, [], 1] and f(1) == [1, [], 1]
    options.append(9)  # the default changed in place: so did the key
    assert f(1) == [1, [9], 2]


def test_format_string_and_callable_keys(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()
    f = c.decorate(lambda user_id: [user_id, counter()], ttl=60, key="user:{user_id}")
    assert f(1) == [1, 1] and f(True) == [True, 2] and f(1) == [1, 1] and f(True) == [True, 2]
    assert f.key_for(1) == "user:1" and f.key_for(True) == "user:True"
    names = iter(["a", "b"])
    g = c.decorate(lambda x: [x, counter()], ttl=60, key=lambda x: next(names))
    assert g.key_for(1) == "a" and g.key_for(1) == "b"  # never remembered


def test_scalar_call_tells_types_apart() -> None:
    calls = [
        ((1,), {}),
        ((1.0,), {}),
        ((True,), {}),
        (("1",), {}),
        ((b"1",), {}),
        ((0.0,), {}),
        ((-0.0,), {}),
        ((None,), {}),
        ((), {"x": 1}),
        ((), {"x": 1.0}),
        ((1, 2), {}),
        ((1,), {"y": 2}),
        ((("**",),), {}),
    ]
    memo_keys = [scalar_call(args, kwargs) for args, kwargs in calls[:-1]]
    assert None not in memo_keys and len(set(memo_keys)) == len(memo_keys)
    assert scalar_call(*calls[-1]) is None  # a tuple is not a scalar
    assert scalar_call((math.nan,), {}) == scalar_call((float("nan"),), {})
    for odd in ([1], {1: 2}, {1}, bytearray(b"1"), object()):
        assert scalar_call((odd,), {}) is None and scalar_call((), {"x": odd}) is None

    class Text(str):
        pass

    assert scalar_call((Text("1"),), {}) is None  # subclasses may hash or encode otherwise


def test_the_memo_is_bounded(
    make_cache: Any, redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_decorator, "KEY_MEMO_SIZE", 8)
    c = make_cache(redis_server.url)
    f = c.decorate(lambda x: x * 2, ttl=60)
    for i in range(50):
        assert f(i) == 2 * i
    plan_of = inspect.getclosurevars(f.fn.key_for).nonlocals["plan_of"]
    memo = inspect.getclosurevars(plan_of).nonlocals["memo"]
    assert len(memo) == 8 and scalar_call((49,), {}) in memo
    assert all(f(i) == 2 * i for i in range(50))
    bounded: dict[int, int] = {}
    for i in range(20):
        remember(bounded, i, i, 5)
    assert list(bounded) == [15, 16, 17, 18, 19]


SCALARS = (1, 1.0, True, "1", b"1", -0.0, None, 2**70)
KEYS_IN_A_CHILD = """
import objects_keyfuncs
args = (1, 1.0, True, "1", b"1", -0.0, None, 2**70)
print(repr([objects_keyfuncs.lookup.key_for(a, b=2) for a in args]))
print(repr([objects_keyfuncs.lookup.key_for(a, b=2) for a in args]))
"""


def test_remembered_keys_are_the_same_in_every_process() -> None:
    import objects_keyfuncs

    here = repr([objects_keyfuncs.lookup.key_for(a, b=2) for a in SCALARS])
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": f"{HERE}{os.pathsep}{ROOT}"}
        out = subprocess.run(
            [sys.executable, "-c", KEYS_IN_A_CHILD],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout.splitlines()
        assert out == [here, here]  # derived, then remembered: the same keys everywhere


# -- the local tier's direct path ---------------------------------------------------------


def test_a_local_hit_skips_redis_and_a_tagged_one_is_held_too(
    make_cache: Any, redis_server: Any
) -> None:
    c = make_cache(redis_server.url, local=LocalTier(health_check_interval=60))
    assert go_live(c)
    assert c.set("k", [1]) and c.set("t", "tagged", tags=["x"])
    settle(c)
    hold(c, "k", [1])
    hold(c, "t", "tagged")  # an envelope: the full path, still answered locally
    rt = trips(c)
    for _ in range(20):
        assert c.get("k") == [1] and c.get("t") == "tagged" and c.has_key("k")
    assert trips(c) == rt
    assert c.get("absent", "dflt") == "dflt" and trips(c) == rt + 1


def test_a_local_tier_that_is_not_live_is_bypassed(make_cache: Any, fresh_server: Any) -> None:
    c = make_cache(fresh_server.url, local=LocalTier())
    assert go_live(c)
    assert c.set("k", "old")
    settle(c)
    hold(c, "k", "old")
    raw = fresh_server.client()
    try:
        clients = int(raw.info("clients")["connected_clients"])
        raw.config_set("maxclients", clients - 1)  # the listener cannot come back for now
        assert raw.client_kill_filter(_id=tier(c).connection_id) == 1
        assert until(c, lambda: not tier(c).live)
        raw.set(c.cache.make_key("k"), c.cache.codec.encode("new"))  # a write nobody reports
        rt, bypassed = trips(c), tier(c).stats.bypassed
        assert c.get("k") == "new" and c.get("k") == "new"
        assert trips(c) - rt == 2 and tier(c).stats.bypassed - bypassed == 2
        raw.config_set("maxclients", 1000)
        assert until(c, lambda: tier(c).live)
        hold(c, "k", "new")
    finally:
        raw.close()


def test_other_versions_are_never_held_locally(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url, local=LocalTier())
    assert go_live(c)
    assert c.set("k", "v2", version=2) and c.set("k", "v1")
    settle(c)
    hold(c, "k", "v1")
    rt = trips(c)
    assert c.get("k", version=2) == "v2" and c.get("k", version=2) == "v2"
    assert trips(c) - rt == 2 and tier(c).entries == 1
    assert c.get("k", version=1) == "v1" and trips(c) - rt == 2  # the cache's own version


# -- per-call key versions ----------------------------------------------------------------


def test_every_verb_takes_a_key_version(make_cache: Any, server: Any) -> None:
    c = make_cache(server.url)
    assert c.set("k", 1, version=2) and c.get("k") is None and c.get("k", version=2) == 1
    assert c.has_key("k", version=2) and not c.has_key("k")
    assert c.add("k", 5, version=2) is False and c.add("k", 5) is True
    assert c.incr("k", 10, version=2) == 11 and c.decr("k", version=2) == 10
    assert c.get("k") == 5
    assert c.touch("k", 100, version=2) and 99 < c.ttl("k", version=2) <= 100
    assert c.persist("k", version=2) and c.ttl("k", version=2) is None
    assert c.expire("k", 50, version=2) and c.ttl("k", version=2) <= 50
    assert c.set_many({"a": 1, "b": 2}, version=3) == []
    assert c.get_many(["a", "b"], version=3) == {"a": 1, "b": 2} and c.get_many(["a"]) == {}
    assert c.delete_many(["a", "b"], version=3) == 2
    assert c.get_or_set("g", "made", version=3) == "made" and c.get("g") is None
    assert c.get_or_set("g", "other", version=3) == "made"
    assert c.delete("k", version=2) and c.get("k", version=2) is None and c.get("k") == 5
    assert c.ttl("absent", version=2) is MISSING
    assert c.set("own", "x", version=1) and c.get("own") == "x"
    with pytest.raises(TypeError):
        c.get("k", version="2")
    with pytest.raises(TypeError):
        c.get("k", version=True)


def test_tags_are_the_caches_own_whatever_the_version(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    assert c.set("k", "v", tags=["t"], version=7) and c.get("k", version=7) == "v"
    assert c.invalidate_tags("t")
    assert c.get("k", "gone", version=7) == "gone"
    keys = redis_server.client()
    try:
        head = c.make_key("")
        assert keys.exists(head.replace(":1:", ":7:") + "k") == 1
    finally:
        keys.close()


# -- incr of a non-integer, values that cannot be pickled --------------------------------


def test_incr_of_a_non_integer_is_its_own_error(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    assert c.set("s", "text") and c.set("big", 2**63 - 1)
    for call in (lambda: c.incr("s"), lambda: c.decr("s", version=1)):
        with pytest.raises(NotAnInteger, match="is not an integer") as info:
            call()
        assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)
        assert type(info.value.__cause__) is BackendError
    with pytest.raises(NotAnInteger, match="would overflow"):
        c.incr("big")
    with pytest.raises(ValueError, match="not found") as missing:
        c.incr("absent")
    assert not isinstance(missing.value, NotAnInteger)
    assert c.get("s") == "text" and c.get("big") == 2**63 - 1


class Unpicklable:
    def __reduce__(self) -> Any:
        raise pickle.PicklingError("not today")


def test_a_value_pickle_refuses_is_an_encode_error_caused_by_pickle(redis_server: Any) -> None:
    cache = ObjectCache.from_url(redis_server.url, codec=Codec(serializer="pickle"), prefix="pk")
    try:
        for write in (
            lambda: cache.set("k", Unpicklable()),
            lambda: cache.add("k", Unpicklable()),
            lambda: cache.set_many({"k": Unpicklable()}),
            lambda: cache.get_or_set("k", Unpicklable),
            lambda: cache.cached(ttl=60)(lambda: Unpicklable())(),
        ):
            with pytest.raises(EncodeError) as info:
                write()
            assert isinstance(info.value.__cause__, pickle.PickleError)
        assert cache.get("k", "never stored") == "never stored"
    finally:
        cache.close()
