"""rcache_django.RedisCache against real Redis: verbs, async, options, signing, failures.

Django's generic backend contract runs in ``test_django_cache_suite.py``; these tests check
what it does not: the Redis side of each call, the asyncio path, the options and what
happens when Redis goes away.
"""

from __future__ import annotations

import asyncio
import pickle
import threading
from collections.abc import Callable, Iterator
from typing import Any

import django
import pytest
from django.conf import settings

if not settings.configured:  # tests/django/conftest.py may have done it already
    settings.configure(
        SECRET_KEY="django-cache-tests-secret-key-0123456789abcdef0123",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()

from django.core.cache import CacheKeyWarning, caches  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.signals import request_finished  # noqa: E402
from django.test import override_settings  # noqa: E402

from rcache.adapter import AsyncRedisAdapter  # noqa: E402
from rcache.errors import BackendError  # noqa: E402
from rcache.server import RedisServer  # noqa: E402
from rcache_django import RedisCache  # noqa: E402

FAST = {
    "socket_timeout": 0.5,
    "socket_connect_timeout": 0.5,
    "retry_attempts": 1,
    "breaker_cooldown": 0.1,
}
PWNED: list[int] = []


def _pwn() -> None:
    PWNED.append(1)


class Evil:
    """Unpickling this calls _pwn: stands in for a payload an attacker writes to Redis."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_pwn, ())


class Unpicklable:
    def __getstate__(self) -> Any:
        raise pickle.PickleError("not today")


Configure = Callable[..., RedisCache]


@pytest.fixture
def configure(key_prefix: str) -> Iterator[Configure]:
    """Return ``configure(url, alias="default", **entry) -> backend``; undone after the test."""
    overrides: list[Any] = []
    prefix = "t" + key_prefix.strip(":").replace(":", "")

    def make(url: str, *, options: dict[str, Any] | None = None, **entry: Any) -> RedisCache:
        entry.setdefault("KEY_PREFIX", prefix)
        conf = {"BACKEND": "rcache_django.RedisCache", "LOCATION": url, **entry}
        conf["OPTIONS"] = options or {}
        override = override_settings(CACHES={"default": conf})
        override.enable()
        overrides.append(override)
        backend = caches["default"]
        assert isinstance(backend, RedisCache)
        return backend

    yield make
    for override in reversed(overrides):
        override.disable()


@pytest.fixture
def backend(configure: Configure, redis_url: str) -> RedisCache:
    return configure(redis_url)


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[Any]:
    client = redis_server.client()
    yield client
    client.close()


def test_verbs_store_under_django_keys(backend: RedisCache, raw: Any) -> None:
    prefix = backend.key_prefix
    backend.set("answer", 42)
    assert raw.get(f"{prefix}:1:answer") == b"42"  # KEY_PREFIX:version:key, ints as digits
    assert backend.get("answer") == 42
    assert backend.incr("answer", 8) == 50 and backend.decr("answer") == 49
    assert backend.add("answer", 1) is False and backend.add("fresh", [1, 2]) is True
    assert backend.get_many(["answer", "fresh", "absent"]) == {"answer": 49, "fresh": [1, 2]}
    assert backend.set_many({"a": 1, "b": (2,)}) == []
    assert backend.delete_many([]) is None
    assert backend.delete_many(["a", "b"]) is None and not backend.has_key("a")
    assert backend.delete("fresh") is True and backend.delete("fresh") is False
    assert backend.get_or_set("made", lambda: {"x": 1}) == {"x": 1}
    assert "made" in backend
    with pytest.raises(ValueError):
        backend.incr("absent")
    backend.set("text", "not a number")
    with pytest.raises(TypeError):
        backend.incr("text")


def test_timeouts_follow_django(configure: Configure, redis_url: str, raw: Any) -> None:
    backend = configure(redis_url, TIMEOUT=120)
    space = f"{backend.key_prefix}:1:"
    backend.set("default", 1)
    assert 110_000 < raw.pttl(space + "default") <= 120_000
    backend.set("forever", 1, timeout=None)
    assert raw.pttl(space + "forever") == -1
    backend.set("float", 1, timeout=2.5)
    assert 2_000 < raw.pttl(space + "float") <= 2_500
    backend.set("gone", 1, timeout=0)
    assert raw.exists(space + "gone") == 0 and backend.get("gone") is None
    assert backend.add("gone", 1, timeout=-1) is True and not backend.has_key("gone")
    assert backend.touch("forever", timeout=30) is True
    assert 25_000 < raw.pttl(space + "forever") <= 30_000
    assert backend.touch("forever", timeout=None) is True and raw.pttl(space + "forever") == -1
    assert backend.touch("forever", timeout=0) is True and backend.get("forever") is None
    assert backend.touch("absent") is False


def test_versions_and_clear(configure: Configure, redis_url: str, raw: Any) -> None:
    backend = configure(redis_url, VERSION=3)
    other = RedisCache(redis_url, {"KEY_PREFIX": backend.key_prefix + "x"})
    try:
        other.set("k", "other prefix")
        backend.set("k", "v3")
        backend.set("k", "v1", version=1)
        assert raw.get(f"{backend.key_prefix}:3:k") is not None
        assert backend.get("k") == "v3" and backend.get("k", version=1) == "v1"
        assert backend.incr_version("k") == 4
        assert backend.get("k") is None and backend.get("k", version=4) == "v3"
        assert backend.decr_version("k", version=1) == 0 and backend.get("k", version=0) == "v1"
        backend.clear()  # every version of this KEY_PREFIX, nothing else
        assert backend.get("k", version=4) is None and backend.get("k", version=0) is None
        assert other.get("k") == "other prefix"
    finally:
        other.clear()


def test_key_function_and_warnings(configure: Configure, redis_url: str, raw: Any) -> None:
    backend = configure(redis_url, KEY_FUNCTION=lambda key, prefix, version: f"custom-{key}")
    with pytest.warns(CacheKeyWarning, match="longer than 250"):
        backend.set("k" * 300, "long")
    with pytest.warns(CacheKeyWarning, match="characters"):
        backend.set("has space", "spaced")
    backend.set("plain", "p")
    assert raw.get(f"{backend.key_prefix}:1:custom-plain") is not None
    with pytest.warns(CacheKeyWarning):
        assert backend.get("k" * 300) == "long"
    with pytest.warns(CacheKeyWarning):
        assert backend.get("has space") == "spaced"
    backend.clear()


def test_pickle_errors_are_pickles(backend: RedisCache) -> None:
    with pytest.raises(pickle.PickleError, match="not today"):
        backend.set("unpicklable", Unpicklable())
    with pytest.raises(TypeError):  # what pickle raises for a lock, as with Django's backends
        backend.add("lock", threading.Lock())


def test_pickle_is_signed_with_a_key_from_secret_key(backend: RedisCache, raw: Any) -> None:
    backend.set("obj", {"set": {1, 2}})
    stored = raw.get(f"{backend.key_prefix}:1:obj")
    assert stored[0] & 0x40  # the header's "signed" bit
    assert settings.SECRET_KEY.encode() not in stored
    forged = bytes([0x80 | 2 << 3]) + pickle.dumps(Evil())  # unsigned pickle, as a writer would
    raw.set(f"{backend.key_prefix}:1:obj", forged)
    assert backend.get("obj", "refused") == "refused"
    assert PWNED == []


def test_secret_key_fallbacks_still_verify(configure: Configure, redis_url: str) -> None:
    old = settings.SECRET_KEY
    backend = configure(redis_url)
    backend.set("obj", {"v": 1})
    prefix = backend.key_prefix
    with override_settings(SECRET_KEY="a-new-secret-key-" + "x" * 40, SECRET_KEY_FALLBACKS=[old]):
        assert configure(redis_url, KEY_PREFIX=prefix).get("obj") == {"v": 1}
    with override_settings(SECRET_KEY="a-new-secret-key-" + "x" * 40):
        assert configure(redis_url, KEY_PREFIX=prefix).get("obj", "refused") == "refused"


def test_json_serializer_needs_no_signing(configure: Configure, redis_url: str, raw: Any) -> None:
    backend = configure(redis_url, options={"serializer": "json", "compressor": "zlib"})
    backend.set("doc", {"a": [1, 2]})
    assert raw.get(f"{backend.key_prefix}:1:doc") == b'\x88{"a":[1,2]}'
    assert backend.get("doc") == {"a": [1, 2]}
    backend.clear()


def test_db_in_location_overrides_options(
    configure: Configure, redis_server: RedisServer, raw: Any
) -> None:
    base = f"redis://127.0.0.1:{redis_server.port}"
    backend = configure(f"{base}/3", options={"db": 5})
    backend.set("where", 1)
    db3 = redis_server.client(db=3)
    try:
        assert db3.exists(f"{backend.key_prefix}:1:where") == 1
        backend.clear()
        backend = configure(base, options={"db": 3})
        backend.set("where", 2)
        assert db3.get(f"{backend.key_prefix}:1:where") == b"2"
        backend.clear()
    finally:
        db3.close()


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"OPTIONS": {"colour": "blue"}}, "unknown rcache_django.RedisCache OPTIONS: colour"),
        ({"OPTIONS": {"hosts": []}}, "come from LOCATION"),
        ({"OPTIONS": {"on_error": "ignore"}}, "on_error"),
        ({"OPTIONS": {"serializer": "yaml"}}, "unknown serializer"),
        ({"KEY_PREFIX": "2024"}, "integer segment"),
        ({"LOCATION": ""}, "needs LOCATION"),
        ({"LOCATION": ["redis://a/0", "redis://b/0"]}, "one LOCATION"),
    ],
)
def test_bad_configuration_is_named(
    configure: Configure, redis_url: str, entry: dict[str, Any], message: str
) -> None:
    options = entry.pop("OPTIONS", None)
    url = entry.pop("LOCATION", redis_url)
    with pytest.raises(ImproperlyConfigured, match=message):
        configure(url, options=options, **entry)


def test_close_on_request_finished_keeps_the_pool(backend: RedisCache) -> None:
    backend.set("k", 1)
    adapter = backend.object_cache().adapter
    connections_before = adapter.client.connection_pool._created_connections
    request_finished.send(sender=None)  # Django's close_caches() -> backend.close()
    assert backend.get("k") == 1
    assert backend.object_cache().adapter is adapter
    assert adapter.client.connection_pool._created_connections == connections_before


def test_get_or_set_adds_through_add(backend: RedisCache, monkeypatch: Any) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(RedisCache, "add", lambda self, *a, **kw: calls.append(a) or False)
    assert backend.get_or_set("racing", "mine") == "mine"
    assert calls == [("racing", "mine")] and backend.get("racing") is None


async def test_async_verbs_run_on_the_loop(backend: RedisCache, monkeypatch: Any) -> None:
    def no_blocking_call(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an async method went through the blocking backend")

    for name in ("get", "set", "add", "delete", "get_many", "set_many", "incr", "touch"):
        monkeypatch.setattr(RedisCache, name, no_blocking_call)
    await backend.aset("a", {"v": 1})
    assert await backend.aget("a") == {"v": 1}
    assert await backend.aadd("a", 2) is False and await backend.aadd("b", 2) is True
    assert await backend.aset_many({"c": 3, "d": 4}, timeout=None) == []
    assert await backend.aget_many(["a", "b", "c", "x"]) == {"a": {"v": 1}, "b": 2, "c": 3}
    assert await backend.aincr("b", 5) == 7 and await backend.adecr("b") == 6
    assert await backend.atouch("b", 10) is True and await backend.ahas_key("b")
    assert await backend.aget_or_set("e", lambda: "made") == "made"
    assert await backend.aincr_version("e") == 2 and await backend.aget("e", version=2) == "made"
    assert await backend.adelete("a") is True
    assert await backend.adelete_many(["c", "d"]) is None and await backend.aget("c") is None
    with pytest.raises(pickle.PickleError):
        await backend.aset("unpicklable", Unpicklable())
    await backend.aclear()
    assert await backend.aget("b") is None
    await backend.aclose()


def test_one_async_cache_per_loop_closed_with_it(backend: RedisCache, monkeypatch: Any) -> None:
    closed: list[AsyncRedisAdapter] = []
    original = AsyncRedisAdapter.aclose

    async def aclose(self: AsyncRedisAdapter) -> None:
        closed.append(self)
        await original(self)

    monkeypatch.setattr(AsyncRedisAdapter, "aclose", aclose)

    async def use() -> tuple[Any, Any]:
        await backend.aset("k", 1)
        first = await backend.aobject_cache()
        assert await backend.aget("k") == 1
        assert await backend.aobject_cache() is first  # one per loop, reused
        return first, first.adapter

    cache1, adapter1 = asyncio.run(use())
    cache2, adapter2 = asyncio.run(use())
    assert cache1 is not cache2 and adapter1 is not adapter2
    assert closed == [adapter1, adapter2]  # each closed when its loop shut down


def test_redis_down_is_a_miss(configure: Configure, fresh_server: RedisServer) -> None:
    backend = configure(fresh_server.url, options=FAST)
    backend.set("k", "v")
    fresh_server.stop()
    assert backend.get("k", "fallback") == "fallback"
    assert backend.set("k", "w") is None
    assert backend.add("k", "w") is False and backend.touch("k") is False
    assert backend.set_many({"a": 1, "b": 2}) == ["a", "b"]
    assert backend.get_or_set("k", "computed") == "computed"
    with pytest.raises(ValueError):
        backend.incr("k")


async def test_redis_down_is_a_miss_async(configure: Configure, fresh_server: RedisServer) -> None:
    backend = configure(fresh_server.url, options=FAST)
    await backend.aset("k", "v")
    fresh_server.stop()
    assert await backend.aget("k", "fallback") == "fallback"
    assert await backend.aadd("k", "w") is False
    assert await backend.aget_or_set("k", "computed") == "computed"


def test_on_error_raise(configure: Configure, fresh_server: RedisServer) -> None:
    backend = configure(fresh_server.url, options={**FAST, "on_error": "raise"})
    fresh_server.stop()
    with pytest.raises(BackendError):
        backend.get("k")
