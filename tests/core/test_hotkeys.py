"""Hot keys: sampled counts, flushed in one round trip, merged over two windows."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.errors import ConfigurationError
from rcache.hotkeys import HotKeys, top, top_op


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_counts_flush_in_one_round_trip_and_rank(
    make_runner: Any, redis_server: Any, key_prefix: str
) -> None:
    runner = make_runner(redis_server.url, key_prefix=key_prefix)
    clock = Clock()
    hot = HotKeys("shop", sample=1.0, flush_every=5, clock=clock)
    for key, n in (("a", 5), ("b", 2), ("c", 9)):
        for _ in range(n):
            assert hot.note(key) is False  # not due yet
    clock.now += 5
    assert hot.note("a") is True
    lead = key_prefix
    before = runner.adapter.stats.round_trips
    assert runner.run(hot.flush_op(lead, hot.take())) == 3
    assert runner.adapter.stats.round_trips - before == 1
    assert hot.note("x") is False  # the next flush is flush_every away again
    ranked = runner.run(top_op(lead, "shop", 2, 300, clock.now))
    assert ranked == [("c", 9.0), ("a", 6.0)]
    board = f"{key_prefix}hotkeys:{{shop}}:{int(clock.now) // 300 * 300}"
    assert 0 < runner.execute("TTL", board) <= 2 * 300 + 60


def test_windows_merge_current_and_previous_then_age_out(
    redis_server: Any, key_prefix: str
) -> None:
    adapter = RedisAdapter.from_url(redis_server.url, key_prefix=key_prefix)
    clock = Clock(3000.0)  # a window boundary
    hot = HotKeys("w", sample=1.0, window=60, clock=clock)
    try:
        hot.note("old")
        hot.note("old")
        hot.flush(adapter)
        clock.now += 60  # next window
        hot.note("new")
        hot.flush(adapter)
        assert adapter.run(top_op(key_prefix, "w", 10, 60, clock.now)) == [
            ("old", 2.0),
            ("new", 1.0),
        ]
        clock.now += 60  # two windows on: "old" is no longer counted
        assert adapter.run(top_op(key_prefix, "w", 10, 60, clock.now)) == [("new", 1.0)]
    finally:
        adapter.close()


def test_sampling_scales_counts_back() -> None:
    hot = HotKeys(sample=0.25)
    hot._random = iter([0.1, 0.9, 0.2, 0.3, 0.0] * 20).__next__  # 3 of every 5 counted
    for _ in range(100):
        hot.note("k")
    taken = hot.take()
    assert taken["k"] == 60
    commands = list(_batch_commands(hot.flush_op("p:", taken)))
    assert commands[0][2] == 240.0  # 60 counted reads at weight 1 / 0.25


def _batch_commands(op: Any) -> Any:
    batch = next(op)
    return batch.commands


def test_pending_keys_are_bounded_but_known_keys_keep_counting() -> None:
    hot = HotKeys(sample=1.0, max_pending=2)
    for key in ("a", "b", "c", "a"):
        hot.note(key)
    assert hot.take() == {"a": 2, "b": 1}
    assert hot.take() == {}


def test_trim_keeps_the_hottest(redis_server: Any, key_prefix: str) -> None:
    adapter = RedisAdapter.from_url(redis_server.url, key_prefix=key_prefix)
    hot = HotKeys("t", sample=1.0, keep=3)
    try:
        for i in range(10):
            for _ in range(i + 1):
                hot.note(f"k{i}")
        hot.flush(adapter)
        assert [k for k, _ in top(adapter, "t", 10)] == ["k9", "k8", "k7"]
    finally:
        adapter.close()


async def test_async_flush(redis_server: Any, key_prefix: str) -> None:
    adapter = AsyncRedisAdapter.from_url(redis_server.url, key_prefix=key_prefix)
    hot = HotKeys("a", sample=1.0)
    try:
        hot.note("k")
        assert await hot.aflush(adapter) == 1
        assert await hot.aflush(adapter) == 0  # nothing pending: no round trip needed
        ranked = await adapter.run(top_op(key_prefix, "a", 5, 300, time.time()))
        assert ranked == [("k", 1.0)]
    finally:
        await adapter.aclose()
    await asyncio.sleep(0)


def test_cluster_merges_both_windows_in_one_slot(cluster: Any, key_prefix: str) -> None:
    adapter = RedisAdapter.from_url(cluster.url, key_prefix=key_prefix)
    clock = Clock(6000.0)
    hot = HotKeys("c", sample=1.0, window=60, clock=clock)
    try:
        hot.note("x")
        hot.flush(adapter)
        clock.now += 60
        hot.note("y")
        hot.note("y")
        hot.flush(adapter)
        assert adapter.run(top_op(key_prefix, "c", 5, 60, clock.now)) == [("y", 2.0), ("x", 1.0)]
    finally:
        adapter.close()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample": 0},
        {"sample": 1.5},
        {"flush_every": 0},
        {"window": 0},
        {"keep": 0},
        {"max_pending": 0},
        {"name": ""},
        {"name": "a{b}"},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        HotKeys(**kwargs)


def test_top_needs_a_positive_n() -> None:
    with pytest.raises(ConfigurationError):
        next(top_op("", "x", 0, 300, 0.0))
