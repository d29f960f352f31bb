"""The eviction helpers against a real server, through both drivers."""

from __future__ import annotations

from typing import Any

from rcache.eviction import check_for_cache, check_for_sessions, read_policy, sample_memory
from rcache.keys import KeySpace


def test_read_policy_and_verdicts(make_runner: Any, fresh_server: Any) -> None:
    r = make_runner(fresh_server.url)
    r.execute("CONFIG", "SET", "maxmemory", "64mb")
    r.execute("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    policy = r.run(read_policy())
    assert (policy.maxmemory, policy.policy) == (64 * 1024 * 1024, "allkeys-lru")
    assert check_for_cache(policy).ok
    assert not check_for_sessions(policy).ok  # sessions could be evicted
    r.execute("CONFIG", "SET", "maxmemory-policy", "noeviction")
    policy = r.run(read_policy())
    assert check_for_sessions(policy).ok
    assert check_for_cache(policy).level != "ok"  # full cache = failing writes


def test_read_policy_without_config_permission(make_runner: Any, fresh_server: Any) -> None:
    admin = fresh_server.client()
    admin.execute_command("ACL", "SETUSER", "limited", "on", ">pw", "~*", "&*", "+@all", "-config")
    admin.close()
    r = make_runner(f"redis://limited:pw@127.0.0.1:{fresh_server.port}/0")
    policy = r.run(read_policy())  # falls back to INFO memory
    assert policy.policy == "noeviction"


def test_sample_memory_of_a_key_space(make_runner: Any, redis_server: Any, key_prefix: str) -> None:
    r = make_runner(redis_server.url)
    ks = KeySpace(prefix=key_prefix.rstrip(":"))
    other = KeySpace(prefix=key_prefix.rstrip(":") + "other")
    from rcache.ops import Batch

    r.batch(Batch([("SET", ks.key(f"k{i}"), b"x" * 1000) for i in range(50)]))
    r.batch(Batch([("SET", other.key(f"k{i}"), b"y" * 10) for i in range(20)]))
    report = r.run(sample_memory(ks.pattern(), sample=1000, count=100))
    assert report.keys_sampled == 50
    assert report.scanned_all
    assert report.mean_bytes > 1000
    assert report.estimated_total_bytes == report.bytes_sampled
    partial = r.run(sample_memory(ks.pattern(), sample=10, count=100))
    assert partial.keys_sampled == 10
