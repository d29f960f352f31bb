"""Tests for rcache.eviction: policy verdicts, and the two operations driven by hand."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

import rcache.eviction
from rcache.errors import (
    AuthenticationFailed,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    ConfigurationError,
)
from rcache.eviction import (
    MemoryPolicy,
    MemoryReport,
    Verdict,
    check_for_cache,
    check_for_sessions,
    read_policy,
    sample_memory,
)
from rcache.ops import Batch

CONFIG_BATCH = Batch([("CONFIG", "GET", "maxmemory"), ("CONFIG", "GET", "maxmemory-policy")])
INFO_BATCH = Batch([("INFO", "memory")])

EVICTING = [
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
]


def finish(op: Any, reply: Any) -> Any:
    """Send the last reply and return the operation's result (it must stop there)."""
    with pytest.raises(StopIteration) as stop:
        op.send(reply)
    return stop.value.value


def scan(cursor: Any, pattern: str = "app:1:*", count: int = 500) -> Batch:
    return Batch([("SCAN", cursor, "MATCH", pattern, "COUNT", count)])


def usage(*keys: Any) -> Batch:
    return Batch([("MEMORY", "USAGE", k, "SAMPLES", "0") for k in keys], raise_on_error=False)


# --- verdicts -----------------------------------------------------------------------------


def test_sessions_are_safe_only_with_noeviction() -> None:
    v = check_for_sessions(MemoryPolicy(2**30, "noeviction"))
    assert (v.ok, v.level) == (True, "ok")
    assert "OOM" in v.message
    for policy in EVICTING:
        v = check_for_sessions(MemoryPolicy(2**30, policy))
        assert (v.ok, v.level) == (False, "error"), policy
        assert policy in v.message and "evicted" in v.message


def test_sessions_with_unbounded_memory_are_ok_with_a_note() -> None:
    for policy in ["noeviction", *EVICTING]:
        v = check_for_sessions(MemoryPolicy(0, policy))
        assert (v.ok, v.level) == (True, "ok"), policy
        assert "unbounded" in v.message


def test_sessions_with_an_unknown_policy_are_an_error() -> None:
    v = check_for_sessions(MemoryPolicy(100, "allkeys-something-new"))
    assert (v.ok, v.level) == (False, "error")  # an allkeys- policy evicts whatever its rule
    v = check_for_sessions(MemoryPolicy(100, "mystery"))
    assert (v.ok, v.level) == (False, "error")
    assert "unknown" in v.message and "mystery" in v.message


def test_cache_is_safe_with_evicting_policies() -> None:
    for policy in EVICTING:
        v = check_for_cache(MemoryPolicy(2**30, policy))
        assert (v.ok, v.level) == (True, "ok"), policy
    assert "TTL" in check_for_cache(MemoryPolicy(2**30, "volatile-lru")).message
    assert check_for_cache(MemoryPolicy(2**30, "ALLKEYS-LRU")).level == "ok"


def test_cache_with_noeviction_fails_writes_when_full() -> None:
    v = check_for_cache(MemoryPolicy(2**30, "noeviction"))
    assert (v.ok, v.level) == (False, "error")
    assert "OOM" in v.message


def test_cache_with_unbounded_memory_or_unknown_policy_is_a_warning() -> None:
    for policy in ["noeviction", "allkeys-lru"]:
        v = check_for_cache(MemoryPolicy(0, policy))
        assert (v.ok, v.level) == (True, "warning"), policy
        assert "unbounded" in v.message
    v = check_for_cache(MemoryPolicy(100, "mystery"))
    assert (v.ok, v.level) == (True, "warning")
    assert "mystery" in v.message


def test_verdict_is_consistent() -> None:
    assert Verdict(True, "warning", "m").ok
    with pytest.raises(ConfigurationError):
        Verdict(True, "error", "m")
    with pytest.raises(ConfigurationError):
        Verdict(False, "ok", "m")
    with pytest.raises(ConfigurationError):
        Verdict(True, "fine", "m")  # type: ignore[arg-type]


# --- read_policy --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "replies",
    [
        [{b"maxmemory": b"1048576"}, {b"maxmemory-policy": b"allkeys-lru"}],  # redis-py, RESP2
        [{"maxmemory": "1048576"}, {"maxmemory-policy": "allkeys-lru"}],  # decode_responses
        [[b"maxmemory", b"1048576"], [b"maxmemory-policy", b"allkeys-lru"]],  # raw lists
        [["maxmemory", 1048576], ["maxmemory-policy", "allkeys-lru"]],
    ],
)
def test_read_policy_from_config_get(replies: list[Any]) -> None:
    op = read_policy()
    assert next(op) == CONFIG_BATCH
    assert finish(op, replies) == MemoryPolicy(1048576, "allkeys-lru")


@pytest.mark.parametrize(
    "error",
    [
        BackendError("Redis error: ERR unknown command 'CONFIG'"),
        AuthenticationFailed("the Redis user may not run this command: NOPERM"),
    ],
)
def test_read_policy_falls_back_to_info_when_config_is_refused(error: BackendError) -> None:
    op = read_policy()
    assert next(op) == CONFIG_BATCH
    assert op.throw(error) == INFO_BATCH
    info = {"used_memory": 1000, "maxmemory": 0, "maxmemory_policy": "noeviction"}
    assert finish(op, [info]) == MemoryPolicy(0, "noeviction")


@pytest.mark.parametrize(
    "replies", [[{}, {}], [{b"maxmemory": b"0"}, {}], [[], [b"maxmemory-policy", b"noeviction"]]]
)
def test_read_policy_falls_back_when_config_answers_without_the_values(
    replies: list[Any],
) -> None:
    op = read_policy()
    next(op)
    assert op.send(replies) == INFO_BATCH
    info = {b"maxmemory": b"2048", b"maxmemory_policy": b"volatile-lfu"}
    assert finish(op, [info]) == MemoryPolicy(2048, "volatile-lfu")


def test_read_policy_parses_an_unparsed_info_section() -> None:
    op = read_policy()
    next(op)
    assert op.throw(BackendError("no CONFIG")) == INFO_BATCH
    text = b"# Memory\r\nused_memory:123\r\nmaxmemory:4096\r\nmaxmemory_policy:allkeys-lfu\r\n"
    assert finish(op, [text]) == MemoryPolicy(4096, "allkeys-lfu")


@pytest.mark.parametrize(
    "error", [BackendUnavailable("down"), CircuitOpen("open"), BackendTimeout("slow")]
)
def test_read_policy_does_not_hide_connection_failures(error: BackendError) -> None:
    op = read_policy()
    next(op)
    with pytest.raises(type(error)) as raised:
        op.throw(error)
    assert raised.value is error


def test_read_policy_raises_when_info_lacks_the_values() -> None:
    op = read_policy()
    next(op)
    op.throw(BackendError("no CONFIG"))
    with pytest.raises(BackendError, match="neither"):
        op.send([{"used_memory": 1}])


def test_read_policy_rejects_a_non_numeric_maxmemory() -> None:
    op = read_policy()
    next(op)
    with pytest.raises(BackendError, match="maxmemory"):
        op.send([{b"maxmemory": b"lots"}, {b"maxmemory-policy": b"noeviction"}])


def test_read_policy_lets_an_info_failure_rise() -> None:
    op = read_policy()
    next(op)
    op.throw(BackendError("no CONFIG"))
    err = BackendError("no INFO either")
    with pytest.raises(BackendError) as raised:
        op.throw(err)
    assert raised.value is err


# --- sample_memory ------------------------------------------------------------------------


def test_sample_memory_scans_then_measures_every_key() -> None:
    op = sample_memory("app:1:*")
    assert next(op) == scan(0)
    assert op.send([[b"17", [b"app:1:a", b"app:1:b"]]]) == scan(17)
    assert op.send([[0, [b"app:1:b", b"app:1:c"]]]) == usage(b"app:1:a", b"app:1:b", b"app:1:c")
    report = finish(op, [100, None, 300])  # b vanished between SCAN and MEMORY USAGE
    assert report == MemoryReport(
        keys_sampled=2,
        bytes_sampled=400,
        mean_bytes=200.0,
        scanned_all=True,
        estimated_total_bytes=400,  # of the three keys seen, one is gone
        keys_seen=3,
    )


def test_sample_memory_stops_at_the_sample_size() -> None:
    op = sample_memory("p:*", sample=3, count=2)
    assert next(op) == scan(0, "p:*", 2)
    assert op.send([[5, [b"k1", b"k2"]]]) == scan(5, "p:*", 2)
    assert op.send([[9, [b"k3", b"k4"]]]) == usage(b"k1", b"k2", b"k3")
    report = finish(op, [10, 20, 30])
    assert report == MemoryReport(3, 60, 20.0, False, None, 4)


def test_sample_memory_estimates_all_keys_from_a_sample_when_the_scan_ended() -> None:
    op = sample_memory("p:*", sample=2)
    next(op)
    assert op.send([[0, [b"k1", b"k2", b"k3", b"k4"]]]) == usage(b"k1", b"k2")
    report = finish(op, [10, 30])
    assert report.scanned_all and report.keys_seen == 4
    assert report.estimated_total_bytes == 80


def test_sample_memory_batches_100_keys_per_round_trip_and_skips_errors() -> None:
    keys = [f"k{i}".encode() for i in range(250)]
    op = sample_memory("*", sample=1000)
    next(op)
    assert op.send([[0, keys]]) == usage(*keys[:100])
    assert op.send([1] * 100) == usage(*keys[100:200])
    assert op.send([2] * 100) == usage(*keys[200:])
    replies: list[Any] = [3] * 50
    replies[0] = BackendError("Redis error: something")
    replies[1] = True  # not a byte count
    report = finish(op, replies)
    assert report.keys_sampled == 248
    assert report.bytes_sampled == 100 + 200 + 48 * 3
    assert report.keys_seen == 250


def test_sample_memory_with_no_matching_key() -> None:
    op = sample_memory("nothing:*")
    next(op)
    assert finish(op, [[b"0", []]]) == MemoryReport(0, 0, 0.0, True, 0, 0)


def test_sample_memory_rejects_a_bad_cursor() -> None:
    op = sample_memory("p:*")
    next(op)
    with pytest.raises(BackendError, match="cursor"):
        op.send([[b"not-a-cursor", []]])


@pytest.mark.parametrize("kwargs", [{"sample": 0}, {"count": 0}, {"sample": True}, {"count": 1.5}])
def test_sample_memory_validates_when_called(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        sample_memory("p:*", **kwargs)  # raised at the call, before any round trip


def test_module_never_imports_redis() -> None:
    tree = ast.parse(Path(rcache.eviction.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert "rcache.ops" in imported
    assert not any(str(m).split(".")[0] == "redis" for m in imported)
