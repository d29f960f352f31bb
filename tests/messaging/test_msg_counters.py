"""Counters, the fixed-window rate limiter and leaderboards (sync and async)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from messaging_helpers import Side

from rcache.errors import ConfigurationError


def test_plain_counter(side: Side, redis_server: Any) -> None:
    c = side.counter(redis_server.url)
    assert side(c.get("visits")) == 0
    assert side(c.incr("visits")) == 1
    assert side(c.incr("visits", 5)) == 6
    assert side(c.incr("visits", -2)) == 4
    assert side(c.get("visits")) == 4
    with redis_server.client() as r:
        assert r.pttl(c.key("visits")) == -1  # no window: never expires
    assert side(c.reset("visits")) is True
    assert side(c.reset("visits")) is False and side(c.get("visits")) == 0


def test_windowed_counter_expires(side: Side, redis_server: Any) -> None:
    c = side.counter(redis_server.url)
    assert side(c.incr("w", window=0.5)) == 1
    assert side(c.incr("w", 2, window=0.5)) == 3
    with redis_server.client() as r:
        assert 0 < r.pttl(c.key("w")) <= 500  # set by the first hit only
    time.sleep(0.8)
    assert side(c.get("w")) == 0
    assert side(c.incr("w", window=0.5)) == 1  # a new window


def test_rate_limiter(side: Side, redis_server: Any) -> None:
    c = side.counter(redis_server.url)
    results = [side(c.hit("login:10.0.0.1", limit=3, window=1)) for _ in range(4)]
    assert [r.allowed for r in results] == [True, True, True, False]
    assert [r.count for r in results] == [1, 2, 3, 4]
    allowed, count, reset_in = results[-1]
    assert not allowed and count == 4 and 0 < reset_in <= 1.0
    assert side(c.hit("login:10.0.0.2", limit=3, window=1)).allowed  # keys are separate
    time.sleep(reset_in + 0.2)
    assert tuple(side(c.hit("login:10.0.0.1", limit=3, window=1)))[:2] == (True, 1)
    assert side(c.hit("big", limit=5, window=1, cost=5)).allowed
    assert not side(c.hit("big", limit=5, window=1)).allowed
    with pytest.raises(ConfigurationError):
        side(c.hit("x", limit=1, window=0))


def test_leaderboard(side: Side, redis_server: Any) -> None:
    lb = side.leaderboard(redis_server.url, "weekly")
    for member, score in (("ada", 30), ("bob", 10), ("cy", 20), ("dee", 5)):
        side(lb.incr(member, score))
    assert side(lb.incr("bob", 15)) == 25.0
    assert side(lb.top(3)) == [("ada", 30.0), ("bob", 25.0), ("cy", 20.0)]
    assert side(lb.top(0)) == []
    assert side(lb.rank("ada")) == 0 and side(lb.rank("dee")) == 3
    assert side(lb.rank("nobody")) is None
    assert side(lb.score("cy")) == 20.0 and side(lb.score("nobody")) is None
    assert side(lb.trim(2)) == 2
    assert side(lb.top(10)) == [("ada", 30.0), ("bob", 25.0)]
    assert side(lb.remove("bob", "nobody")) == 1
    assert side(lb.size()) == 1
    assert side(lb.clear()) is True and side(lb.size()) == 0


def test_any_adapter_key_prefix_works(redis_server: Any, key_prefix: str) -> None:
    # "shop:2024" would be refused as a KeySpace prefix (integer segment); the adapter's
    # prefix is only ever prepended here.
    from rcache.adapter import RedisAdapter
    from rcache.counters import Counter, Leaderboard
    from rcache.messaging import ReliableQueue

    with RedisAdapter.from_url(redis_server.url, key_prefix=key_prefix + "2024") as adapter:
        counter, board = Counter(adapter), Leaderboard(adapter, "b")
        queue = ReliableQueue(adapter, "q", "c")
        assert counter.incr("n") == 1 and board.incr("m") == 1.0
        queue.put(1)
        assert queue.get(timeout=1) is not None
        assert counter.key("n") == key_prefix + "2024:counters:1:n"
        assert board.key == key_prefix + "2024:leaderboards:1:b"
        assert queue.keys.pending == key_prefix + "2024:rq:1:{q}:pending"
