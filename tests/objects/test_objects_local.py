"""The local tier against real Redis: hits without round trips, coherence across processes,
bounds, and what happens when the invalidation connection goes away."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from objects_harness import CacheHarness, Counter

import rcache
from rcache.adapter import RedisAdapter
from rcache.config import RedisSettings
from rcache.errors import ConfigurationError
from rcache.objects import LocalTier, ObjectCache
from rcache.objects._local_listen import Listener

HERE = Path(__file__).parent
ROOT = Path(rcache.__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

# A second process that writes when told to: through an ObjectCache, or plain redis-py.
WRITER = r"""
import json, sys, time
import redis
from rcache.objects import ObjectCache
caches, clients = {}, {}
for line in sys.stdin:
    cmd = json.loads(line)
    url, op = cmd["url"], cmd["op"]
    if op == "raw":
        client = clients.get(url) or clients.setdefault(url, redis.Redis.from_url(url))
        args = [bytes.fromhex(a[4:]) if a.startswith("hex:") else a for a in cmd["args"]]
        t0 = time.monotonic()
        out = client.execute_command(*args)
        out = out if isinstance(out, (int, type(None))) else str(out)
    else:
        c = caches.get((url, cmd["prefix"]))
        if c is None:
            c = caches[(url, cmd["prefix"])] = ObjectCache.from_url(url, prefix=cmd["prefix"])
        t0 = time.monotonic()
        if op == "set":
            out = c.set(cmd["key"], cmd["value"], tags=cmd.get("tags", ()))
        elif op == "invalidate_tags":
            out = c.invalidate_tags(*cmd["tags"])
        else:
            out = c.delete(cmd["key"])
    print(json.dumps({"t0": t0, "out": out}), flush=True)
"""


class Writer:
    """The other process (CLOCK_MONOTONIC is system-wide, so its times compare with ours)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
            cwd=HERE,
        )

    def __call__(self, c: CacheHarness, op: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        cmd = {"url": c.url, "prefix": c.cache.key_space.prefix, "op": op, **args}
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            assert self.proc.stderr is not None
            raise RuntimeError(f"the writer process died: {self.proc.stderr.read()}")
        return json.loads(line)  # type: ignore[no-any-return]

    def raw(self, c: CacheHarness, *args: str | bytes) -> Any:
        encoded = [f"hex:{a.hex()}" if isinstance(a, bytes) else a for a in args]
        return self(c, "raw", args=encoded)["out"]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture(scope="module")
def writer() -> Iterator[Writer]:
    w = Writer()
    yield w
    w.close()


@pytest.fixture
def tiered(make_cache: Any) -> Callable[..., CacheHarness]:
    """Return ``make(url, **tier_options)``: a sync or async cache with a live local tier."""

    def make(url: str, **tier_options: Any) -> CacheHarness:
        c: CacheHarness = make_cache(url, local=LocalTier(**tier_options))
        c.url = url  # type: ignore[attr-defined]
        assert go_live(c)
        return c

    return make


def tier(c: CacheHarness) -> LocalTier:
    local = c.cache.local
    assert local is not None
    return local


def go_live(c: CacheHarness, timeout: float = 5.0) -> bool:
    if c.kind == "async":
        return bool(c.wait(tier(c).await_live(timeout)))
    return tier(c).wait_live(timeout)


def pause(c: CacheHarness, seconds: float) -> None:
    """Sleep; for the async cache, with its loop running (so the listener task works)."""
    if c.kind == "async":
        c.wait(asyncio.sleep(seconds))
    else:
        time.sleep(seconds)


def until(c: CacheHarness, predicate: Callable[[], Any], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        pause(c, 0.001)
    return True


def settle(c: CacheHarness) -> None:
    """Let Redis's reports of our own writes arrive (they drop what a read filled meanwhile)."""
    pause(c, 0.05)


def hold(c: CacheHarness, key: str, expected: Any) -> None:
    """Read ``key`` until it is answered locally (our own write's echo may delay the fill)."""

    def served_locally() -> bool:
        hits = tier(c).stats.hits
        assert c.get(key) == expected
        return tier(c).stats.hits > hits

    assert until(c, served_locally)


def processed(raw: Any) -> int:
    return int(raw.info("stats")["total_commands_processed"])


# -- hits -------------------------------------------------------------------------------------


def test_a_local_hit_costs_no_round_trip(tiered: Any, redis_server: Any) -> None:
    c = tiered(redis_server.url, health_check_interval=60)
    assert c.set("k", {"items": [1, 2]}) and c.set("other", 7)
    settle(c)
    hold(c, "k", {"items": [1, 2]})
    hold(c, "other", 7)
    raw = redis_server.client()
    try:
        rt, before = c.stats.round_trips, processed(raw)
        for _ in range(100):
            assert c.get("k") == {"items": [1, 2]}
        assert c.get_many(["k", "other"]) == {"k": {"items": [1, 2]}, "other": 7}
        assert c.has_key("k")
        assert c.stats.round_trips == rt
        assert processed(raw) - before == 1  # the second INFO itself, nothing else
    finally:
        raw.close()
    value = c.get("k")
    value["items"].append(3)  # a caller mutating its copy changes nothing for the next
    assert c.get("k") == {"items": [1, 2]}
    assert tier(c).stats.hits >= 104


def test_first_reads_bypass_until_live_and_misses_fill(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url, local=LocalTier())
    assert c.set("k", 1)
    assert not tier(c).live
    assert c.get("k") == 1  # starts the listener; until it is live: straight to Redis
    assert tier(c).stats.bypassed + tier(c).stats.misses == 1
    assert go_live(c)
    tier(c).flush()
    rt = c.stats.round_trips
    assert c.get_many(["k", "absent"]) == {"k": 1}
    assert c.stats.round_trips - rt == 1  # MGET + PTTLs in one batch
    assert tier(c).entries == 1  # absent keys are not held
    hold(c, "k", 1)
    rt = c.stats.round_trips
    assert c.get_many(["k", "absent"]) == {"k": 1}  # one local, one from Redis
    assert c.stats.round_trips - rt == 1


def test_a_decorated_hit_is_local(tiered: Any, redis_server: Any, writer: Writer) -> None:
    c = tiered(redis_server.url)
    counter = Counter()
    f = c.decorate(lambda x: [x, counter()], ttl=60, tags=["catalog"])
    assert f(1) == [1, 1]
    settle(c)
    assert until(c, lambda: f(1) == [1, 1] and tier(c).entries == 1)
    rt = c.stats.round_trips
    assert [f(1) for _ in range(20)] == [[1, 1]] * 20
    assert c.stats.round_trips == rt and counter.n == 1
    writer(c, "invalidate_tags", tags=["catalog"])
    assert until(c, lambda: tier(c).entries == 0)
    assert f(1) == [1, 2]  # recomputed: the tag changed in the other process


# -- coherence --------------------------------------------------------------------------------


def test_a_write_in_another_process_invalidates(
    tiered: Any, redis_server: Any, writer: Writer
) -> None:
    c = tiered(redis_server.url)
    store = tier(c)._store
    seen: dict[str, float] = {}
    invalidate = store.invalidate

    def record(keys: Any) -> None:
        keys = list(keys)
        now = time.monotonic()
        for k in keys:
            seen.setdefault(k, now)
        invalidate(keys)

    store.invalidate = record  # type: ignore[method-assign]
    key = c.cache.make_key("k")
    writer(c, "set", key="k", value=-1)
    delays = []
    for i in range(50):
        hold(c, "k", i - 1)
        seen.pop(key, None)
        t0 = writer(c, "set", key="k", value=i)["t0"]
        assert until(c, lambda: key in seen, timeout=1.0), f"write {i} was not reported"
        delays.append(seen[key] - t0)
        assert c.get("k") == i
    median, worst = statistics.median(delays), max(delays)
    print(f"\n{c.kind}: invalidation delay median {median * 1e3:.2f} ms, max {worst * 1e3:.2f} ms")
    assert worst < 1.0


def test_plain_redis_py_writes_in_another_process(
    tiered: Any, redis_server: Any, writer: Writer
) -> None:
    c = tiered(redis_server.url)
    assert c.set("k", "old")
    hold(c, "k", "old")
    key = c.cache.make_key("k")
    writer.raw(c, "SET", key, c.cache.codec.encode("new"))
    assert until(c, lambda: tier(c).entries == 0)
    assert c.get("k") == "new"
    hold(c, "k", "new")
    writer.raw(c, "DEL", key)
    assert until(c, lambda: c.get("k") is None)
    assert c.set("k", 1)
    hold(c, "k", 1)
    writer.raw(c, "FLUSHDB")  # a null message: everything goes
    assert until(c, lambda: tier(c).entries == 0)
    assert tier(c).stats.flushes >= 1 and c.get("k") is None


def test_tags_invalidated_in_another_process(
    tiered: Any, redis_server: Any, writer: Writer
) -> None:
    c = tiered(redis_server.url)
    assert c.set("a", 1, tags=["red"]) and c.set("b", 2, tags=["blue"])
    settle(c)
    hold(c, "a", 1)
    hold(c, "b", 2)
    assert writer(c, "invalidate_tags", tags=["red"])["out"] is True
    assert until(c, lambda: tier(c).entries == 1)
    rt = c.stats.round_trips
    assert c.get("a") is None  # not served locally: Redis says the tag changed
    assert c.stats.round_trips > rt
    rt = c.stats.round_trips
    assert c.get("b") == 2 and c.stats.round_trips == rt  # other tags: still local


def test_own_writes_are_read_at_once(
    tiered: Any, redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Redis's reports of our own writes are ignored here: only the write path may evict.
    monkeypatch.setattr(Listener, "_invalidate", lambda self, payload: None)
    c = tiered(redis_server.url)
    steps: list[tuple[Callable[[], Any], Any]] = [
        (lambda: c.set("k", 2), 2),
        (lambda: c.set_many({"k": 3}), 3),
        (lambda: c.incr("k"), 4),
        (lambda: c.decr("k", 2), 2),
        (lambda: c.delete("k"), None),
        (lambda: c.add("k", 5), 5),
        (lambda: c.delete_many(["k"]), None),
        (lambda: c.get_or_set("k", 6), 6),
        (lambda: c.delete_pattern("k*"), None),
        (lambda: c.set("k", 7, tags=["t"]), 7),
        (lambda: c.invalidate_tags("t"), None),
    ]
    assert c.set("k", 1)
    hold(c, "k", 1)
    for write, expected in steps:
        write()
        assert c.get("k") == expected
        if expected is not None:
            hold(c, "k", expected)
    assert c.set("k", 8, ttl=60)
    hold(c, "k", 8)
    assert c.touch("k", 0.2)  # the local copy must not outlive the new TTL
    pause(c, 0.3)
    assert c.get("k") is None
    assert c.set("k", 9)
    hold(c, "k", 9)
    c.clear()
    assert tier(c).entries == 0 and c.get("k") is None


def test_expiry_is_respected_locally(
    tiered: Any, redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Listener, "_invalidate", lambda self, payload: None)
    c = tiered(redis_server.url, ttl=0.2)
    assert c.set("short", 1, ttl=0.3) and c.set("long", 2, ttl=60)
    hold(c, "short", 1)
    hold(c, "long", 2)
    pause(c, 0.21)
    rt = c.stats.round_trips
    assert c.get("long") == 2 and c.stats.round_trips - rt == 1  # the local cap: re-read
    pause(c, 0.1)
    assert c.get("short") is None  # Redis's expiry, without waiting for its message


# -- bounds -----------------------------------------------------------------------------------


def test_lru_bounds_entries_and_bytes(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url, local=LocalTier(max_entries=5))
    assert go_live(c)
    assert c.set_many({f"k{i}": i for i in range(10)}) == []
    settle(c)
    for i in range(10):
        hold(c, f"k{i}", i)
    local = tier(c)
    assert local.entries == 5 and local.stats.evictions >= 5
    rt = c.stats.round_trips
    assert c.get_many([f"k{i}" for i in range(5, 10)]) == {f"k{i}": i for i in range(5, 10)}
    assert c.stats.round_trips == rt  # the five most recent are held
    assert c.get("k0") == 0 and c.stats.round_trips == rt + 1  # an evicted one is not

    b = make_cache(redis_server.url, local=LocalTier(max_bytes=1000))
    assert go_live(b)
    size = len(b.cache.codec.encode("x" * 290))
    assert b.set_many({f"v{i}": "x" * 290 for i in range(6)}) == []
    settle(b)
    for i in range(6):
        hold(b, f"v{i}", "x" * 290)
    assert tier(b).entries == 1000 // size and tier(b).nbytes <= 1000
    assert b.set("huge", "y" * 2000)
    rt = b.stats.round_trips
    for _ in range(3):
        assert b.get("huge") == "y" * 2000
    assert b.stats.round_trips - rt == 3  # never held: bigger than the whole tier


# -- losing the invalidation connection -------------------------------------------------------


def test_client_kill_flushes_and_bypasses_until_back(tiered: Any, fresh_server: Any) -> None:
    c = tiered(fresh_server.url)
    assert c.set("k", "old")
    hold(c, "k", "old")
    raw = fresh_server.client()
    try:
        clients = int(raw.info("clients")["connected_clients"])
        raw.config_set("maxclients", clients - 1)  # no room for the listener to come back
        assert raw.client_kill_filter(_id=tier(c).connection_id) == 1
        assert until(c, lambda: not tier(c).live)
        assert tier(c).entries == 0 and tier(c).stats.disconnects == 1
        raw.set(c.cache.make_key("k"), c.cache.codec.encode("new"))  # a write nobody reports
        rt = c.stats.round_trips
        for _ in range(5):
            assert c.get("k") == "new"
            pause(c, 0.05)
        assert c.stats.round_trips - rt == 5  # bypassed: every read went to Redis
        assert not tier(c).live and tier(c).stats.bypassed >= 5
        raw.config_set("maxclients", 1000)
        assert until(c, lambda: tier(c).live)
        hold(c, "k", "new")
        assert tier(c).stats.connects == 2
    finally:
        raw.close()


def test_server_crash_and_restart(tiered: Any, fresh_server: Any, writer: Writer) -> None:
    c = tiered(fresh_server.url)
    assert c.set("k", "old")
    hold(c, "k", "old")
    fresh_server.kill()
    assert until(c, lambda: not tier(c).live)
    assert tier(c).entries == 0
    assert c.get("k") is None  # Redis is down: a miss, never the local copy
    fresh_server.start()
    writer.raw(c, "SET", c.cache.make_key("k"), c.cache.codec.encode("new"))
    values = []

    def back() -> bool:
        values.append(c.get("k"))
        return tier(c).live and values[-1] == "new"

    assert until(c, back, timeout=5.0)
    assert "old" not in values
    hold(c, "k", "new")


def test_a_missed_pong_drops_the_connection(tiered: Any, fresh_server: Any) -> None:
    c = tiered(fresh_server.url, health_check_interval=0.2, reply_timeout=0.3)
    assert c.set("k", 1)
    hold(c, "k", 1)
    fresh_server.kill(signal.SIGSTOP)  # hangs: the TCP connection stays open
    try:
        t0 = time.monotonic()
        assert until(c, lambda: not tier(c).live, timeout=3.0)
        assert time.monotonic() - t0 < 1.5 and tier(c).entries == 0
    finally:
        fresh_server.kill(signal.SIGCONT)
    assert until(c, lambda: tier(c).live, timeout=5.0)
    hold(c, "k", 1)


# -- setup ------------------------------------------------------------------------------------


def test_one_tier_per_cache_and_no_cluster(redis_server: Any) -> None:
    local = LocalTier()
    with ObjectCache.from_url(redis_server.url, local=local):
        with pytest.raises(ConfigurationError, match="one cache"):
            ObjectCache.from_url(redis_server.url, local=local)
    settings = RedisSettings(mode="cluster", hosts=(("127.0.0.1", 1),))
    adapter = RedisAdapter(settings, client=object())
    with pytest.raises(ConfigurationError, match="standalone or Sentinel"):
        ObjectCache(adapter, local=LocalTier())


FORK = r"""
import os, sys, time
from rcache.objects import LocalTier, ObjectCache
tier = LocalTier()
c = ObjectCache.from_url(sys.argv[1], prefix=sys.argv[2], local=tier)
c.set("k", 1)
assert tier.wait_live()
while tier.entries == 0:
    c.get("k")
pid = os.fork()
if pid == 0:
    ok = not tier.live and tier.entries == 0 and c.get("k") == 1
    ok = ok and tier.stats.bypassed >= 1 and tier.wait_live() and tier.connection_id
    os._exit(0 if ok else 1)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), tier.live, tier.entries)
c.close()
"""


def test_a_forked_child_starts_bypassed_with_its_own_listener(
    redis_server: Any, key_prefix: str
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", FORK, redis_server.url, key_prefix.strip(":").replace(":", "-")],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=HERE,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", "True", "1"]
