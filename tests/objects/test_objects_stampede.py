"""Stampede protection: single-flight, XFetch early refresh, stale-while-revalidate."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from objects_harness import Counter

from rcache.objects import _fill


def test_a_cold_key_is_computed_once_for_100_concurrent_callers(
    make_cache: Any, redis_server: Any
) -> None:
    c = make_cache(redis_server.url, max_connections=128)
    counter = Counter()
    f = c.decorate(lambda x: {"x": x, "run": counter()}, delay=0.2, ttl=60)
    results = f.concurrently(100, 7)
    assert counter.n == 1
    assert results == [{"x": 7, "run": 1}] * 100


def test_without_the_lock_every_caller_computes(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()
    f = c.decorate(lambda: counter(), delay=0.1, ttl=60, lock=False)
    f.concurrently(10)
    assert counter.n == 10  # what the lock above prevents


def test_waiters_take_over_when_the_filler_fails(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()

    def first_one_fails() -> str:
        if counter() == 1:
            raise RuntimeError("filler failed")
        return "ok"

    f = c.decorate(first_one_fails, delay=0.2, ttl=60, lock=30)
    t0 = time.monotonic()
    results = f.concurrently(10)
    assert time.monotonic() - t0 < 3  # nobody waited out the 30 s lease
    errors = [r for r in results if isinstance(r, RuntimeError)]
    assert len(errors) == 1 and results.count("ok") == 9
    assert counter.n == 2


def test_waiters_compute_themselves_after_the_lease(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()
    f = c.decorate(lambda: counter(), ttl=60, lock=0.3)
    raw = redis_server.client()
    try:  # a filler that died holding the lock
        raw.set(f.redis_key() + "#fill", b"someone-else", px=10_000)
    finally:
        raw.close()
    t0 = time.monotonic()
    assert f() == 1
    assert 0.25 < time.monotonic() - t0 < 2
    assert f() == 1  # and its value was stored


def test_xfetch_refreshes_early_when_the_dice_say_so(
    make_cache: Any, redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()
    f = c.decorate(lambda: counter(), delay=0.05, ttl=60)
    assert f() == 1
    monkeypatch.setattr(_fill, "random_source", lambda: 0.999999)  # -ln(u) ~ 0: far from expiry
    assert f() == 1 and counter.n == 1
    monkeypatch.setattr(_fill, "random_source", lambda: 0.0)  # -ln(0) = inf: refresh now
    rt = c.stats.round_trips
    assert f() == 2  # the caller that refreshes returns the new value
    assert c.stats.round_trips - rt == 3  # read; take the lock; store and release
    monkeypatch.setattr(_fill, "random_source", lambda: 0.999999)
    assert f() == 2 and counter.n == 2
    # someone else holds the fill lock: a caller that wants to refresh serves what it has
    raw = redis_server.client()
    try:
        raw.set(f.redis_key() + "#fill", b"other", px=10_000)
        monkeypatch.setattr(_fill, "random_source", lambda: 0.0)
        assert f() == 2 and counter.n == 2
    finally:
        raw.close()


def test_xfetch_is_off_with_beta_zero(
    make_cache: Any, redis_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()
    f = c.decorate(lambda: counter(), delay=0.05, ttl=60, xfetch_beta=0)
    assert f() == 1
    monkeypatch.setattr(_fill, "random_source", lambda: 0.0)
    assert f() == 1 and counter.n == 1


def test_stale_while_revalidate(make_cache: Any, redis_server: Any) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()
    f = c.decorate(lambda: counter(), delay=0.3, ttl=0.3, stale_ttl=30, xfetch_beta=0)
    assert f() == 1
    assert 30 < c.ttl(f.key_for()) <= 30.3  # Redis keeps it ttl + stale_ttl
    time.sleep(0.35)  # now stale
    t0 = time.monotonic()
    results = f.concurrently(10)
    assert counter.n == 2  # one caller recomputed...
    assert sorted(results) == [1] * 9 + [2]  # ...while the others got the stale value
    t0 = time.monotonic()
    assert f() == 2 and time.monotonic() - t0 < 0.25  # fresh again: a plain hit
    assert counter.n == 2


def test_stale_if_error(
    make_cache: Any, redis_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    c = make_cache(redis_server.url)
    counter = Counter()

    def fails_after_the_first() -> int:
        if counter() > 1:
            raise ConnectionError("database down")
        return 1

    f = c.decorate(fails_after_the_first, ttl=0.2, stale_ttl=30, xfetch_beta=0)
    assert f() == 1
    time.sleep(0.25)
    caplog.set_level(logging.WARNING, logger="rcache.objects")
    assert f() == 1  # the recompute raised: the stale value is served
    assert counter.n == 2
    warnings = [r for r in caplog.records if r.name == "rcache.objects"]
    assert len(warnings) == 1 and "ConnectionError" in warnings[0].getMessage()
    assert "database down" not in warnings[0].getMessage()
    assert f() == 1 and counter.n == 3  # still stale: the next caller tries again
    # without a stale value to fall back on, the exception rises
    assert f.invalidate() is True
    with pytest.raises(ConnectionError):
        f()
