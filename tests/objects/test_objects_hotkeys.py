"""``hot_keys=HotKeys(...)``: the reads of a cache counted into the shared hot-keys board."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from rcache.adapter import RedisAdapter
from rcache.hotkeys import HotKeys, top, top_op
from rcache.objects import ObjectCache


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_reads_of_every_kind_reach_the_board(
    make_cache: Any, redis_server: Any, key_prefix: str
) -> None:
    clock = Clock()
    board = "b" + key_prefix.strip(":").replace(":", "")
    hot = HotKeys(board, sample=1.0, flush_every=10, clock=clock)
    cache = make_cache(redis_server.url, hot_keys=hot)
    cache.set("a", 1)
    cache.set("b", 2)
    for _ in range(3):
        cache.get("a")
    cache.get_many(["a", "b"])
    cache.get("missing")  # a miss is a read too: it reached Redis

    calls = []

    def price(item: str) -> int:
        calls.append(item)
        return 42

    priced = cache.decorate(price, ttl=60)
    for _ in range(5):
        assert priced("x") == 42
    assert calls == ["x"]
    decorated_key = priced.redis_key("x")

    before = cache.stats.round_trips
    clock.now += 10
    cache.get("b")  # due: this read flushes the board
    assert cache.stats.round_trips - before == 2  # the GET and one flush

    ranked = dict(_top(redis_server.url, board, clock.now))
    key_a, key_b = cache.cache._ctx.key("a"), cache.cache._ctx.key("b")
    assert ranked[decorated_key] == 5.0
    assert ranked[key_a] == 4.0 and ranked[key_b] == 2.0
    assert ranked[cache.cache._ctx.key("missing")] == 1.0


def _top(url: str, board: str, now: float) -> list[tuple[str, float]]:
    with RedisAdapter.from_url(url) as adapter:
        return adapter.run(top_op("", board, 100, 300, now))


def test_without_hot_keys_nothing_is_counted(make_cache: Any, redis_server: Any) -> None:
    cache = make_cache(redis_server.url)
    cache.set("a", 1)
    before = cache.stats.round_trips
    cache.get("a")
    assert cache.stats.round_trips - before == 1


def test_a_failed_flush_never_fails_the_read(
    make_cache: Any, fresh_server: Any, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    hot = HotKeys("down", sample=1.0, flush_every=1, clock=clock)
    cache = make_cache(fresh_server.url, hot_keys=hot, retry_attempts=1, socket_timeout=0.5)
    cache.set("a", 1)
    assert cache.get("a") == 1
    fresh_server.stop()
    clock.now += 5
    with caplog.at_level(logging.WARNING, logger="rcache"):
        assert cache.get("a", "fallback") == "fallback"  # the read fails open; so does the flush
    assert hot.take() == {}  # the interval's counts were dropped, not kept growing


def test_top_reads_the_board_of_a_live_cache(redis_server: Any, key_prefix: str) -> None:
    board = "t" + key_prefix.strip(":").replace(":", "")
    hot = HotKeys(board, sample=1.0)
    with RedisAdapter.from_url(redis_server.url) as adapter:
        cache = ObjectCache(adapter, prefix="hk", hot_keys=hot)
        cache.set("p", 1)
        for _ in range(3):
            cache.get("p")
        hot.flush(adapter)
        assert top(adapter, board, 5) == [(cache._ctx.key("p"), 3.0)]
