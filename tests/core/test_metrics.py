"""Metrics: snapshots and Prometheus text read from real adapters, caches and subscribers."""

from __future__ import annotations

import asyncio
import gc
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

import rcache
from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.errors import BackendError
from rcache.messaging import Subscriber
from rcache.metrics import Metrics, server_info
from rcache.objects import AsyncObjectCache, LocalTier, ObjectCache
from rcache.pages import PageCache
from rcache.sessions import SessionConfig, SessionStore

SOURCE_KEYS = {
    "name",
    "kind",
    "adapter",
    "counters",
    "hit_ratio",
    "breaker",
    "pool",
    "local",
    "connected",
}
ADAPTER_COUNTERS = {
    "round_trips",
    "commands",
    "errors",
    "retries",
    "fast_failures",
    "breaker_trips",
    "hits",
    "misses",
}

_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    rf"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{{(?:{_LABEL}(?:,{_LABEL})*)?\}})?"
    r" (?P<value>-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|NaN|[+-]Inf)"
)
COMMENT = re.compile(r"# (?P<what>HELP|TYPE) (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*) (?P<rest>.+)")


@pytest.fixture
def adapter(redis_url: str) -> Iterator[RedisAdapter]:
    a = RedisAdapter.from_url(redis_url)
    yield a
    a.close()


def sources(metrics: Metrics) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in metrics.snapshot()["sources"]}


def samples(text: str) -> dict[str, float]:
    """Return ``{'name{labels}': value}`` of every sample line."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            head, value = line.rsplit(" ", 1)
            found[head] = float(value)
    return found


def check_exposition(text: str) -> None:
    """Fail unless ``text`` is well-formed exposition text (0.0.4) as rcache writes it."""
    assert text.endswith("\n")
    helped: set[str] = set()
    typed: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            m = COMMENT.fullmatch(line)
            assert m, line
            seen = helped if m["what"] == "HELP" else typed
            assert m["name"] not in seen, f"second {m['what']} for {m['name']}"
            if m["what"] == "TYPE":
                assert m["rest"] in ("counter", "gauge"), line
                assert (m["rest"] == "counter") == m["name"].endswith("_total"), line
                typed[m["name"]] = m["rest"]
            else:
                helped.add(m["name"])
            continue
        m = SAMPLE.fullmatch(line)
        assert m, line
        assert m["name"] in typed and m["name"] in helped, f"no HELP/TYPE before {line}"


# -- snapshot --------------------------------------------------------------------------------


def test_counters_and_hit_ratio_move_after_real_gets(
    adapter: RedisAdapter, key_prefix: str
) -> None:
    cache = ObjectCache(adapter, prefix=key_prefix)
    metrics = Metrics()
    metrics.add("cache", cache)
    before = sources(metrics)["cache"]
    assert before["counters"] == dict.fromkeys(ADAPTER_COUNTERS, 0)
    assert before["hit_ratio"] is None

    assert cache.set("k", {"v": 1})
    assert cache.get("k") == {"v": 1} and cache.get("k") == {"v": 1}
    assert cache.get("absent") is None

    snap = metrics.snapshot()
    assert json.loads(json.dumps(snap)) == snap  # plain JSON types only
    (src,) = snap["sources"]
    assert set(src) == SOURCE_KEYS
    assert src["name"] == "cache" and src["kind"] == "object cache"
    assert set(src["counters"]) == ADAPTER_COUNTERS
    assert src["counters"]["hits"] == 2 and src["counters"]["misses"] == 1
    assert src["counters"]["round_trips"] >= 4 and src["counters"]["errors"] == 0
    assert src["hit_ratio"] == pytest.approx(2 / 3)
    assert src["breaker"] == "closed" and src["connected"] is None and src["local"] is None
    assert src["adapter"] == f"{adapter.settings.redacted_url()}#{id(adapter)}"


def test_every_kind_of_backend_reports_its_adapter(adapter: RedisAdapter, key_prefix: str) -> None:
    cache = ObjectCache(adapter, prefix=key_prefix)
    pages = PageCache(adapter, prefix=key_prefix + "p")
    store = SessionStore(adapter, SessionConfig(secret_keys="k" * 32))
    metrics = Metrics()
    for name, source in (("a", adapter), ("c", cache), ("p", pages), ("s", store)):
        metrics.add(name, source)
    found = sources(metrics)
    assert {n: s["kind"] for n, s in found.items()} == {
        "a": "adapter",
        "c": "object cache",
        "p": "page cache",
        "s": "session store",
    }
    assert len({s["adapter"] for s in found.values()}) == 1
    assert all(set(s) == SOURCE_KEYS for s in found.values())
    pool = found["a"]["pool"]
    assert pool is not None and all(s["pool"] == pool for s in found.values())


def test_shared_adapter_is_reported_once_in_prometheus(
    adapter: RedisAdapter, key_prefix: str
) -> None:
    cache = ObjectCache(adapter, prefix=key_prefix)
    pages = PageCache(adapter, prefix=key_prefix + "p")
    store = SessionStore(adapter, SessionConfig(secret_keys="k" * 32))
    metrics = Metrics()
    metrics.add("cache", cache)
    metrics.add("pages", pages)
    metrics.add("sessions", store)
    cache.get("absent")

    found = sources(metrics)
    assert len({s["adapter"] for s in found.values()}) == 1
    assert [s["kind"] for s in found.values()] == ["object cache", "page cache", "session store"]

    text = metrics.prometheus()
    check_exposition(text)
    values = samples(text)
    assert [k for k in values if k.startswith("rcache_misses_total")] == [
        'rcache_misses_total{source="cache"}'
    ]
    assert values['rcache_misses_total{source="cache"}'] == 1
    others = [k for k in values if 'source="pages"' in k or 'source="sessions"' in k]
    assert all(k.startswith("rcache_source_info{") for k in others) and len(others) == 2
    assert values['rcache_source_info{source="sessions",kind="session store",adapter="cache"}'] == 1


def test_breaker_state_after_a_forced_failure() -> None:
    down = RedisAdapter.from_url(
        "redis://127.0.0.1:1/0", retry_attempts=1, breaker_threshold=1, breaker_cooldown=60
    )
    metrics = Metrics()
    metrics.add("down", down)
    assert sources(metrics)["down"]["breaker"] == "closed"
    assert samples(metrics.prometheus())['rcache_breaker_open{source="down"}'] == 0
    with pytest.raises(BackendError):
        down.execute("GET", "k")
    with pytest.raises(BackendError):
        down.execute("GET", "k")  # refused at once: a fast failure

    src = sources(metrics)["down"]
    assert src["breaker"] == "open"
    assert src["counters"]["breaker_trips"] == 1 and src["counters"]["fast_failures"] == 1
    assert src["counters"]["errors"] == 2
    text = metrics.prometheus()
    check_exposition(text)
    values = samples(text)
    assert values['rcache_breaker_open{source="down"}'] == 1
    assert values['rcache_breaker_trips_total{source="down"}'] == 1
    down.close()


def test_pool_gauges_follow_the_sync_pool(redis_url: str) -> None:
    a = RedisAdapter.from_url(redis_url, max_connections=7)
    metrics = Metrics()
    metrics.add("a", a)
    assert sources(metrics)["a"]["pool"] == {"in_use": 0, "idle": 0, "max": 7}
    a.execute("PING")
    assert sources(metrics)["a"]["pool"] == {"in_use": 0, "idle": 1, "max": 7}
    pool = a.client.connection_pool
    conn = pool.get_connection()
    try:
        assert sources(metrics)["a"]["pool"] == {"in_use": 1, "idle": 0, "max": 7}
        values = samples(metrics.prometheus())
        assert values['rcache_pool_in_use{source="a"}'] == 1
        assert values['rcache_pool_idle{source="a"}'] == 0
        assert values['rcache_pool_max{source="a"}'] == 7
    finally:
        pool.release(conn)
    a.close()


def test_async_sources_have_no_pool_and_read_the_same_counters(
    redis_url: str, key_prefix: str
) -> None:
    async def main() -> None:
        a = AsyncRedisAdapter.from_url(redis_url)
        cache = AsyncObjectCache(a, prefix=key_prefix)
        metrics = Metrics()
        metrics.add("acache", cache)
        await cache.set("k", 1)
        assert await cache.get("k") == 1 and await cache.get("absent") is None
        src = sources(metrics)["acache"]
        assert src["pool"] is None and src["breaker"] == "closed"
        assert src["counters"]["hits"] == 1 and src["counters"]["misses"] == 1
        assert "rcache_pool_in_use" not in metrics.prometheus()
        await a.aclose()

    asyncio.run(main())


def test_local_tier_counters(redis_url: str, key_prefix: str) -> None:
    a = RedisAdapter.from_url(redis_url)
    cache = ObjectCache(a, prefix=key_prefix, local=LocalTier())
    try:
        local = cache.local
        assert local is not None and local.wait_live(5.0)
        metrics = Metrics()
        metrics.add("cache", cache)
        assert cache.set("k", "v")
        for _ in range(50):  # our own write's echo may drop the first fill
            if local.stats.hits:
                break
            assert cache.get("k") == "v"
        src = sources(metrics)["cache"]
        assert src["local"] == local.stats.as_dict() and src["local"]["hits"] >= 1
        values = samples(metrics.prometheus())
        assert values['rcache_local_hits_total{source="cache"}'] == local.stats.hits
        assert 'rcache_local_fills_total{source="cache"}' in values
    finally:
        cache.close()
        a.close()


def test_subscriber_connected_flag_and_counters(adapter: RedisAdapter, key_prefix: str) -> None:
    metrics = Metrics()
    with Subscriber(adapter) as sub:
        metrics.add("sub", sub)
        src = sources(metrics)["sub"]
        assert src["connected"] is False and src["kind"] == "subscriber"
        sub.subscribe(key_prefix + "ch")
        src = sources(metrics)["sub"]
        assert src["connected"] is True
        assert src["adapter"] is None and src["breaker"] is None and src["hit_ratio"] is None
        assert src["counters"]["connects"] == 1
        assert all(type(v) in (int, float) for v in src["counters"].values())
        text = metrics.prometheus()
        check_exposition(text)
        values = samples(text)
        assert values['rcache_subscriber_connected{source="sub"}'] == 1
        assert values['rcache_subscriber_connects_total{source="sub"}'] == 1
    assert sources(metrics)["sub"]["connected"] is False


def test_sources_are_held_weakly(redis_url: str, key_prefix: str) -> None:
    a = RedisAdapter.from_url(redis_url)
    cache = ObjectCache(a, prefix=key_prefix)
    metrics = Metrics()
    metrics.add("cache", cache)
    metrics.add("adapter", a)
    assert set(sources(metrics)) == {"cache", "adapter"}
    del cache
    gc.collect()
    assert set(sources(metrics)) == {"adapter"}
    assert 'source="cache"' not in metrics.prometheus()
    metrics.add("cache", ObjectCache(a, prefix=key_prefix))  # the name is free again
    a.close()
    del a
    gc.collect()
    assert metrics.snapshot()["sources"] == [] and metrics.prometheus() == ""


def test_remove_forgets_a_source(adapter: RedisAdapter) -> None:
    metrics = Metrics()
    metrics.add("a", adapter)
    metrics.remove("a")
    metrics.remove("a")
    assert metrics.snapshot()["sources"] == []
    metrics.add("a", adapter)
    assert list(sources(metrics)) == ["a"]


# -- what add() refuses -----------------------------------------------------------------------


@pytest.mark.parametrize("source", [object(), "redis://127.0.0.1", None, 42])
def test_unknown_sources_are_a_type_error(source: Any) -> None:
    with pytest.raises(TypeError, match="metrics sources are RedisAdapter"):
        Metrics().add("x", source)


def test_names_must_be_non_empty_and_unique(adapter: RedisAdapter) -> None:
    metrics = Metrics()
    with pytest.raises(ValueError, match="empty"):
        metrics.add("", adapter)
    with pytest.raises(TypeError, match="must be a str"):
        metrics.add(b"a", adapter)  # type: ignore[arg-type]
    metrics.add("a", adapter)
    with pytest.raises(ValueError, match="already added"):
        metrics.add("a", adapter)
    assert list(sources(metrics)) == ["a"]


# -- Prometheus text --------------------------------------------------------------------------


def test_label_values_are_escaped(adapter: RedisAdapter) -> None:
    metrics = Metrics()
    metrics.add('we"ird\\na\nme', adapter)
    text = metrics.prometheus()
    check_exposition(text)
    assert 'rcache_round_trips_total{source="we\\"ird\\\\na\\nme"} 0\n' in text


def test_exposition_is_well_formed_with_every_kind(adapter: RedisAdapter, key_prefix: str) -> None:
    cache = ObjectCache(adapter, prefix=key_prefix)
    other = RedisAdapter.from_url(adapter.settings.redacted_url())
    metrics = Metrics()
    metrics.add("cache", cache)
    metrics.add("other", other)
    with Subscriber(adapter) as sub:
        sub.subscribe(key_prefix + "ch")
        metrics.add("sub", sub)
        cache.get("absent")
        text = metrics.prometheus()
    check_exposition(text)
    values = samples(text)
    # two distinct adapters: each has its own series
    assert values['rcache_misses_total{source="cache"}'] == 1
    assert values['rcache_misses_total{source="other"}'] == 0
    assert text.count("# TYPE rcache_misses_total counter") == 1
    other.close()


# -- secrets ----------------------------------------------------------------------------------


def test_no_password_in_snapshot_or_prometheus(redis_server: Any) -> None:
    port = redis_server.url.rsplit(":", 1)[1].split("/")[0]
    a = RedisAdapter.from_url(f"redis://user:s3cr3t-pw@127.0.0.1:{port}/0")
    metrics = Metrics()
    metrics.add("a", a)
    snap = metrics.snapshot()
    dumped = json.dumps(snap) + metrics.prometheus()
    assert "s3cr3t-pw" not in dumped
    assert snap["sources"][0]["adapter"].startswith(f"redis://user:***@127.0.0.1:{port}/0#")
    assert a.stats.round_trips == 0 and a.stats.errors == 0  # reading never connects
    a.close()


# -- server_info --------------------------------------------------------------------------------

SERVER_KEYS = {
    "redis_version",
    "redis_mode",
    "uptime_s",
    "used_memory",
    "maxmemory",
    "maxmemory_policy",
    "connected_clients",
    "ops_per_sec",
    "keyspace_hits",
    "keyspace_misses",
    "hit_ratio",
    "evicted_keys",
    "expired_keys",
    "keys",
    "expires",
    "keyspace",
}


def test_server_info_against_a_real_server(adapter: RedisAdapter, key_prefix: str) -> None:
    for i in range(5):
        adapter.execute("SET", f"{key_prefix}{i}", "x", "EX", 60)
    adapter.execute("GET", f"{key_prefix}0")
    adapter.execute("GET", f"{key_prefix}absent")
    trips = adapter.stats.round_trips
    info = adapter.run(server_info())
    assert adapter.stats.round_trips == trips + 1
    assert json.loads(json.dumps(info)) == info
    assert SERVER_KEYS <= set(info)
    assert str(info["redis_version"]).startswith("7.")
    assert info["redis_mode"] == "standalone"
    assert isinstance(info["uptime_s"], int) and info["uptime_s"] >= 0
    assert info["used_memory"] > 0 and isinstance(info["maxmemory"], int)
    assert isinstance(info["maxmemory_policy"], str)
    assert info["connected_clients"] >= 1 and isinstance(info["ops_per_sec"], int)
    assert info["keyspace_hits"] >= 1 and info["keyspace_misses"] >= 1
    hits, misses = info["keyspace_hits"], info["keyspace_misses"]
    assert info["hit_ratio"] == pytest.approx(hits / (hits + misses))
    assert info["keys"] >= 5 and info["expires"] >= 5
    assert info["keyspace"]["db0"]["keys"] >= 5
    assert info["keys"] == sum(db["keys"] for db in info["keyspace"].values())
    assert info["evicted_keys"] >= 0 and info["expired_keys"] >= 0


def test_server_info_on_a_fresh_server_through_both_drivers(fresh_server: Any) -> None:
    a = RedisAdapter.from_url(fresh_server.url)
    info = a.run(server_info())
    assert info["hit_ratio"] is None and info["keyspace_hits"] == 0
    assert info["keys"] == 0 and info["keyspace"] == {}
    a.execute("SET", "a", "1")
    db3 = RedisAdapter.from_url(fresh_server.url.rsplit("/", 1)[0] + "/3")
    db3.execute("SET", "b", "1")
    db3.execute("SET", "c", "1", "EX", 100)

    async def read() -> dict[str, Any]:
        aa = AsyncRedisAdapter.from_url(fresh_server.url)
        try:
            return await aa.run(server_info())
        finally:
            await aa.aclose()

    info = asyncio.run(read())
    assert info["keys"] == 3 and info["expires"] == 1
    assert info["keyspace"] == {"db0": {"keys": 1, "expires": 0}, "db3": {"keys": 2, "expires": 1}}
    a.close()
    db3.close()


def test_exported_from_the_package() -> None:
    assert rcache.Metrics is Metrics and rcache.server_info is server_info
